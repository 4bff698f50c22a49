"""Integrity under failure: SIGKILL mid-ingest, re-runs, and concurrent ingests of the same documents.

Each test runs the real CLI in subprocesses against a real SQLite ledger (and PostgreSQL when
HEALTHTRACE_TEST_DATABASE_URL is set) and a real persisted Chroma store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from memory.ledger import Ledger
from memory.synthetic import generate_workspace
from memory.testing import store_backends, temporary_postgres_database

ROOT = Path(__file__).resolve().parent.parent
N_DOCS = 150


def _env(home: Path, db_url: str | None = None, embedder: str = "hashing") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHTRACE_")}
    env.update({"HEALTHTRACE_HOME": str(home), "HEALTHTRACE_EMBEDDER": embedder, "HF_HUB_OFFLINE": "1"})
    if db_url:
        env["HEALTHTRACE_DATABASE_URL"] = db_url
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", *args]


def _run(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(_cli(*args, "--format", "json"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _sqlite_url(home: Path) -> str:
    return f"sqlite:///{(home / 'healthtrace.db').resolve()}"


def _count(url: str, sql: str) -> int:
    """Read-only peek at a ledger another process is writing (no migrations, no Ledger object)."""
    from sqlalchemy import create_engine

    eng = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    try:
        with eng.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    except Exception:  # noqa: BLE001 - table not created yet
        return 0
    finally:
        eng.dispose()


def _kill_when(proc: subprocess.Popen[str], url: str, sql: str, threshold: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        n = _count(url, sql)
        if n >= threshold:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return n
        time.sleep(0.02)
    raise AssertionError(f"the ingest ended (rc={proc.poll()}) before it could be killed: {proc.stderr.read() if proc.stderr else ''}")


def _assert_consistent(url: str) -> None:
    """Every stored document was fully extracted, every signal's source exists, no orphan state."""
    led = Ledger(url)
    try:
        with led.read() as conn:
            docs = set(conn.execute(text("SELECT id FROM documents")).scalars())
            extracted = set(conn.execute(text("SELECT subject FROM extractions WHERE extractor = 'offline'")).scalars())
            sources = set(conn.execute(text("SELECT DISTINCT source_id FROM signals WHERE source_id IS NOT NULL")).scalars())
            if led.dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert docs == extracted  # document + signals + extraction record commit together
        assert sources <= docs
    finally:
        led.close()


def _snapshot(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(_cli("stats", "--format", "json"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)["counts"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_workspace(tmp_path_factory.mktemp("ws") / "w", N_DOCS, n_accounts=8)


@pytest.fixture(scope="module")
def reference(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Counts after one clean, uninterrupted ingest."""
    env = _env(tmp_path_factory.mktemp("ref"))
    _run(env, "ingest", "--workspace", str(workspace))
    return _snapshot(env)


def test_sigkill_during_extraction_leaves_a_consistent_store_and_a_rerun_completes_it(
    workspace: Path, reference: dict[str, int], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = _env(home)
    proc = subprocess.Popen(_cli("ingest", "--workspace", str(workspace)), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_at = _kill_when(proc, _sqlite_url(home), "SELECT count(*) FROM documents", 40)
    assert proc.returncode == -signal.SIGKILL
    _assert_consistent(_sqlite_url(home))
    partial = _count(_sqlite_url(home), "SELECT count(*) FROM documents")
    assert killed_at <= partial < reference["documents"]

    rerun = _run(env, "ingest", "--workspace", str(workspace))
    assert rerun["documents_unchanged"] == partial
    assert rerun["documents_added"] == reference["documents"] - partial
    assert _snapshot(env) == reference
    _assert_consistent(_sqlite_url(home))
    assert _run(env, "ingest", "--workspace", str(workspace))["documents_added"] == 0


def test_sigkill_during_embedding_then_rerun_fills_the_vector_gaps(
    workspace: Path, reference: dict[str, int], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = _env(home)
    proc = subprocess.Popen(_cli("ingest", "--workspace", str(workspace)), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _kill_when(proc, _sqlite_url(home), "SELECT count(*) FROM documents WHERE indexed", 64)
    assert proc.returncode == -signal.SIGKILL
    _assert_consistent(_sqlite_url(home))
    before = _snapshot(env)
    # documents are embedded on a worker thread while later ones are still being extracted
    assert 64 <= before["documents_indexed"] <= before["documents"] and before["documents_indexed"] < N_DOCS
    assert before["vector_chunks"] > 0

    rerun = _run(env, "ingest", "--workspace", str(workspace))
    assert rerun["documents_added"] == N_DOCS - before["documents"] and rerun["chunks_embedded"] > 0
    after = _snapshot(env)
    assert after == reference  # every chunk and signal embedded exactly once (deterministic ids, upserts)


@pytest.fixture(params=store_backends())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    with temporary_postgres_database() as url:
        yield url


def test_concurrent_ingests_store_each_document_once(workspace: Path, tmp_path: Path, db_url: str | None) -> None:
    home = tmp_path / "home"
    env = _env(home, db_url)
    home.mkdir()
    url = db_url or _sqlite_url(home)
    Ledger(url).close()  # schema first, so both processes race on data, not on DDL
    single = workspace / "documents" / "acct0001" / "000001.eml"
    procs = [subprocess.Popen(_cli("ingest", str(single), "--account", "acct0001", "--create-account", "--no-vectors", "--format", "json"),
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    procs += [subprocess.Popen(_cli("ingest", "--workspace", str(workspace), "--no-vectors", "--format", "json"),
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
        reports.append(json.loads(out))
    assert sum(r["documents_added"] for r in reports) == N_DOCS  # each document stored by exactly one process
    assert sum(r["usage_added"] for r in reports) == _count(url, "SELECT count(*) FROM usage_points")
    assert _count(url, "SELECT count(*) FROM documents") == N_DOCS
    assert _count(url, "SELECT count(*) FROM extractions WHERE extractor = 'offline'") == N_DOCS
    # document signals exactly once; account-level (metadata) signals are replaced per account, not added up
    assert sum(r["signals_added"] for r in reports) == _count(url, "SELECT count(*) FROM signals WHERE extractor <> 'metadata'")
    assert _count(url, "SELECT count(*) FROM signals WHERE extractor = 'metadata'") <= sum(
        r["metadata_signals_added"] for r in reports)
    _assert_consistent(url)
