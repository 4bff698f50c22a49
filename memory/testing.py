"""Helpers for tests (and for anyone checking a deployment): throwaway PostgreSQL databases, free ports.

``HEALTHTRACE_TEST_DATABASE_URL`` names a server database we may connect to (CI: the ``test`` database); each
test session gets its own randomly named database created through it and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEST_DB_ENV = "HEALTHTRACE_TEST_DATABASE_URL"


def store_backends() -> list[str]:
    """Store backends to run against: always 'sqlite', plus 'postgresql' when the env var is set."""
    return ["sqlite"] + (["postgresql"] if os.environ.get(TEST_DB_ENV) else [])


@contextmanager
def temporary_postgres_database(base_url: str | None = None, prefix: str = "ht_test") -> Iterator[str]:
    """Create a fresh database next to ``base_url`` (a SQLAlchemy URL) and drop it on exit."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(base_url or os.environ[TEST_DB_ENV])
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early (with the log's tail) if the process exits first."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
            raise AssertionError(f"{url}: the process exited with {proc.returncode} {tail}".rstrip())
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout_s} s")
        time.sleep(0.2)


def chroma_command() -> str | None:
    """The ``chroma`` CLI installed next to this Python (chromadb's own server), else one on PATH."""
    local = Path(sys.executable).parent / "chroma"
    return str(local) if local.exists() else shutil.which("chroma")


@contextmanager
def chroma_server(data_dir: Path, timeout_s: float = 45) -> Iterator[str]:
    """A throwaway ``chroma run`` server on a free loopback port, storing under ``data_dir``; yields its URL."""
    cmd = chroma_command()
    if cmd is None:
        raise FileNotFoundError("the `chroma` command (from the chromadb package) is not installed next to this Python")
    port = free_port()
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([cmd, "run", "--path", str(data_dir / "db"), "--port", str(port),
                                 "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/api/v2/heartbeat", proc, timeout_s, log_path)
            yield url
        finally:
            proc.kill()
            proc.wait(timeout=30)
