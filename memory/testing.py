"""Helpers for tests (and for anyone checking a deployment): throwaway PostgreSQL databases, free ports.

``HEALTHTRACE_TEST_DATABASE_URL`` names a server database we may connect to (CI: the ``test`` database); each
test session gets its own randomly named database created through it and dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

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
