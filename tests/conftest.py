"""Shared fixtures. Tests never touch the network or the user's data folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from memory.testing import store_backends

# Property tests explore at random when a developer asks (HYPOTHESIS_PROFILE=explore); the gate that decides
# whether a change lands runs a fixed, reproducible set of examples, so CI never fails on a draw it never saw.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_EVAL = ROOT.parent / "shared" / "eval"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HEALTHTRACE_HOME and fresh settings."""
    home = tmp_path / "ht-home"
    monkeypatch.setenv("HEALTHTRACE_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HEALTHTRACE_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEALTHTRACE_CHROMA_URL", raising=False)
    monkeypatch.delenv("HEALTHTRACE_LLM_BASE_URL", raising=False)
    from api.settings import get_settings

    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def shared_eval_or_skip() -> Path:
    if not (SHARED_EVAL / "evaluate.py").exists():
        pytest.skip(f"shared evaluation data not found at {SHARED_EVAL}")
    return SHARED_EVAL


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("HEALTHTRACE_TEST_DATABASE_URL")
    return f"healthtrace store tests: sqlite{' + ' + url.split('@')[-1] if url else ' only'}"


@pytest.fixture(scope="session")
def _pg_ledger_url() -> Iterator[str | None]:
    """One scratch PostgreSQL database per session (None without HEALTHTRACE_TEST_DATABASE_URL)."""
    from memory.testing import temporary_postgres_database

    if "postgresql" not in store_backends():
        yield None
        return
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture(params=store_backends())
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path, _pg_ledger_url: str | None) -> Iterator[str]:
    """An empty ledger URL on each store backend: a SQLite file, or the session's PostgreSQL database with
    every table the previous test left behind dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    from sqlalchemy import inspect, text

    from memory.ledger import Ledger

    assert _pg_ledger_url
    led = Ledger(_pg_ledger_url)
    with led.engine.begin() as conn:
        for t in inspect(conn).get_table_names():
            conn.execute(text(f'DROP TABLE IF EXISTS "{t}" CASCADE'))
    led.close()
    yield _pg_ledger_url
