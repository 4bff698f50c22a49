"""The named migrations and the ORM models describe the same schema, on SQLite and on PostgreSQL.

Why: migrations are hand-named and append-only. This builds the schema only through ``Ledger`` (the
migrations) and compares every table, column, nullability and primary key with the models, so a new model
table without its migration, or a column whose nullability differs between dialects, fails here; and it
re-runs the latest migration over a database holding data, which must be idempotent and keep the rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from extractors.models import Account
from memory import ledger as ledger_mod
from memory.feedback import FeedbackStore, _Base
from memory.ledger import Ledger
from memory.testing import store_backends, temporary_postgres_database


@pytest.fixture(params=store_backends())
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'drift.db'}"
        return
    with temporary_postgres_database() as pg:
        yield pg


def _expected() -> dict[str, dict[str, tuple[bool, bool]]]:
    out: dict[str, dict[str, tuple[bool, bool]]] = {}
    for metadata in (ledger_mod.Base.metadata, _Base.metadata):
        for table in metadata.sorted_tables:
            out[table.name] = {c.name: (bool(c.nullable) and not c.primary_key, c.primary_key) for c in table.columns}
    return out


def test_migrated_schema_matches_the_models(url: str) -> None:
    led = Ledger(url)
    FeedbackStore(led)
    with led.engine.connect() as conn:
        insp = inspect(conn)
        actual: dict[str, dict[str, tuple[bool, bool]]] = {}
        for name in insp.get_table_names():
            pk = set(insp.get_pk_constraint(name)["constrained_columns"])
            actual[name] = {c["name"]: (bool(c["nullable"]) and c["name"] not in pk, c["name"] in pk)
                            for c in insp.get_columns(name)}
    led.close()
    expected = _expected()
    assert set(expected) <= set(actual), f"tables without a migration: {sorted(set(expected) - set(actual))}"
    for name, columns in expected.items():
        assert set(actual[name]) == set(columns), f"{name}: columns differ {set(actual[name]) ^ set(columns)}"
        for col, (nullable, pk) in columns.items():
            assert actual[name][col][1] == pk, f"{name}.{col}: primary key differs"
            if not pk:
                assert actual[name][col][0] == nullable, f"{name}.{col}: nullability differs"


def test_every_migration_is_recorded_and_data_survives_a_reopen(url: str) -> None:
    led = Ledger(url)
    led.upsert_accounts([Account(account_id="a1", name="Acme")])
    with led.engine.begin() as conn:
        conn.execute(text("DELETE FROM schema_migrations WHERE name = :n"), {"n": ledger_mod.MIGRATIONS[-1][0]})
    led.close()
    again = Ledger(url)  # the last migration runs again on a database that holds data: it must be idempotent
    assert again.applied_migrations() == [name for name, _ in ledger_mod.MIGRATIONS]
    assert again.get_account("a1").name == "Acme"
    again.close()
