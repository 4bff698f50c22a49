"""The relational ledger: the source of truth for accounts, documents, signals, usage, outcomes and scores.

SQLite file by default (WAL, busy timeout), PostgreSQL through a ``postgresql+psycopg://`` URL. Every write is
idempotent (deterministic ids + ``INSERT ... ON CONFLICT DO NOTHING``), so re-running an ingest adds nothing and
a killed run can simply be run again. The vector store is derived from this ledger (``indexed`` flags record what
was embedded), never the other way round.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    bindparam,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    exists,
    func,
    nulls_first,
    select,
    update,
)
from sqlalchemy import text as text_sql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from extractors.errors import InputError, NotFoundError, StoreError
from extractors.models import Account, HealthScore, Outcome, Signal, SourceDocument, UsagePoint, UsageRow

DEFAULT_TENANT = "default"
_BATCH = 5_000  # rows per executemany: bounds memory on 100k-row usage files
_IN_BATCH = 500  # ids per IN (...) list: stays under SQLite's bound-parameter limit
REVIEW_VERDICTS = ("confirm", "reject")
MAX_REVIEW_REASON = 2000


# 64-bit ids (the API allows since_id up to 2^62). SQLite's INTEGER PRIMARY KEY is already a 64-bit rowid and
# must stay spelled INTEGER to keep autoincrement; PostgreSQL gets BIGINT (migration 0004 widens old tables).
Id64 = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC in every table: stored as naive UTC (the columns' type is unchanged, so no
    migration), handed back aware (``+00:00``), and an aware value of any offset is converted on the way in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def _utcnow() -> datetime:
    """Now, aware UTC (UTCDateTime columns store it as naive UTC)."""
    return datetime.now(timezone.utc)


# ----------------------------------------------------------------------------------------- schema
class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class AccountRow(Base):
    __tablename__ = "accounts"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    segment: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class DocumentRow(Base):
    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # content hash
    tenant: Mapped[str] = mapped_column(String(100), default=DEFAULT_TENANT)
    account_id: Mapped[str | None] = mapped_column(String(200))
    path: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)  # 1 + earlier versions at the same path
    kind: Mapped[str] = mapped_column(String(20))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # naive UTC, for ordering
    day: Mapped[date | None] = mapped_column(Date)  # the date as written in the source
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # participants, segments, metadata, occurred_at
    indexed: Mapped[bool] = mapped_column(Boolean, default=False)  # chunks are in the vector store
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    __table_args__ = (Index("ix_documents_account", "tenant", "account_id"), Index("ix_documents_path", "tenant", "path"))


class SignalRow(Base):
    __tablename__ = "signals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), default=DEFAULT_TENANT)
    account_id: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(20))
    polarity: Mapped[int] = mapped_column(Integer)
    verified: Mapped[bool] = mapped_column(Boolean)
    day: Mapped[date | None] = mapped_column(Date)
    source_id: Mapped[str | None] = mapped_column(String(64))
    extractor: Mapped[str] = mapped_column(String(60))
    extractor_version: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Signal, citations included
    indexed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    __table_args__ = (Index("ix_signals_account_day", "tenant", "account_id", "day"), Index("ix_signals_source", "source_id"))


class SignalReviewRow(Base):
    """A CSM's current verdict on one signal (confirm or reject, with a reason); a rejected signal stops counting."""

    __tablename__ = "signal_reviews"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(10))  # confirm | reject
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class UsageRowDb(Base):
    __tablename__ = "usage_points"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(100), primary_key=True)
    # n-th row for the same (account, date, metric) in input order: real exports repeat keys (two assessments
    # due the same day), and each row is a fact; re-ingesting the same file gives the same seq (idempotent).
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    value: Mapped[float] = mapped_column(Float)


class OutcomeRow(Base):
    __tablename__ = "outcomes"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20), primary_key=True)
    note: Mapped[str | None] = mapped_column(Text)


class SnapshotRow(Base):
    __tablename__ = "score_snapshots"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(100), default=DEFAULT_TENANT)
    account_id: Mapped[str] = mapped_column(String(200))
    as_of: Mapped[date] = mapped_column(Date)
    model_id: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    model_hash: Mapped[str] = mapped_column(String(100), default="")
    inputs_digest: Mapped[str] = mapped_column(String(100), default="")
    score: Mapped[float] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    extractor_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    __table_args__ = (
        UniqueConstraint("tenant", "account_id", "as_of", "model_id", "model_version", name="uq_snapshot"),
        Index("ix_snapshots_account", "tenant", "account_id", "as_of"),
    )


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(100), default=DEFAULT_TENANT)
    kind: Mapped[str] = mapped_column(String(60))
    account_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    __table_args__ = (Index("ix_events_account", "account_id", "id"),)


class RunRow(Base):
    __tablename__ = "extraction_runs"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    extractor: Mapped[str] = mapped_column(String(60))
    version: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20), default="running")
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExtractionRow(Base):
    """Which extractor version has read which document (or, for account-level extractors, which set of
    documents): ingest skips what is recorded here, so a re-run only does the missing work."""

    __tablename__ = "extractions"

    subject: Mapped[str] = mapped_column(String(300), primary_key=True)  # document id or "account:<tenant>:<id>"
    extractor: Mapped[str] = mapped_column(String(60), primary_key=True)
    version: Mapped[str] = mapped_column(String(60), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), default="")  # input digest for account-level runs
    signals: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class JobRow(Base):
    """One job of the queue (memory/jobs.py): what it is, where it stands, and its result or last error.
    The queue's broker carries the message; this row is what `healthtrace jobs` and ``GET /v1/jobs/{id}`` read."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the Celery task id
    kind: Mapped[str] = mapped_column(String(40))  # ingest_file | ingest_texts | embed | rescore | webhook
    tenant: Mapped[str] = mapped_column(String(100), default=DEFAULT_TENANT)
    group_id: Mapped[str | None] = mapped_column(String(64))  # jobs of one `ingest --queue` call
    account_id: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)  # a file path, an account id, a delivery id
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued|running|retrying|done|failed|dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_jobs_group", "group_id", "status"), Index("ix_jobs_status", "status", "created_at"))


class ExtractorVersionRow(Base):
    """A fitted offline-extractor artefact of a tenant (like a scoring model version): where its files live
    under HEALTHTRACE_HOME, their hash, how it was made and its out-of-fold report. At most one is active per
    tenant (a partial unique index); none active means the artefact bundled in the package."""

    __tablename__ = "extractor_versions"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(60), primary_key=True)
    origin: Mapped[str] = mapped_column(String(20))  # bundled | fit | distill
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(Text)  # folder relative to HEALTHTRACE_HOME; None for the bundled one
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # out-of-fold report, comparison, training facts
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)

    __table_args__ = (Index("ux_extractor_versions_active", "tenant", unique=True,
                            sqlite_where=text_sql("active"), postgresql_where=text_sql("active")),)


class MigrationRow(Base):
    __tablename__ = "schema_migrations"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


# ----------------------------------------------------------------------------------------- migrations
Migration = tuple[str, Callable[[Connection], None]]


def _create(*tables: type[Base]) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        for t in tables:
            t.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]

    return run


def _usage_seq(conn: Connection) -> None:
    """usage_points gains ``seq`` in its key (databases created before it keep every row, as seq 0)."""
    from sqlalchemy import inspect, text

    if "seq" in {c["name"] for c in inspect(conn).get_columns("usage_points")}:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE usage_points ADD COLUMN seq INTEGER NOT NULL DEFAULT 0"))
        conn.execute(text("ALTER TABLE usage_points DROP CONSTRAINT usage_points_pkey"))
        conn.execute(text("ALTER TABLE usage_points ADD PRIMARY KEY (tenant, account_id, date, metric, seq)"))
        return
    # SQLite cannot change a primary key in place: copy into a new table, then swap.
    conn.execute(text("ALTER TABLE usage_points RENAME TO usage_points_v1"))
    UsageRowDb.__table__.create(conn)  # type: ignore[attr-defined]
    conn.execute(text("INSERT INTO usage_points (tenant, account_id, date, metric, seq, value) "
                      "SELECT tenant, account_id, date, metric, 0, value FROM usage_points_v1"))
    conn.execute(text("DROP TABLE usage_points_v1"))


def _bigint_ids(conn: Connection) -> None:
    """events, score_snapshots and extraction_runs ids become BIGINT on PostgreSQL (SQLite: already 64-bit)."""
    from sqlalchemy import text

    if conn.dialect.name != "postgresql":
        return
    for table in ("events", "score_snapshots", "extraction_runs"):
        conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN id TYPE BIGINT"))
        seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
        if seq:
            conn.execute(text(f"ALTER SEQUENCE {seq} AS BIGINT"))


# Named, ordered, append-only. A migration never drops or rewrites data; later issues append entries
# (new tables via _create, new columns via ALTER TABLE ... ADD COLUMN with a default).
MIGRATIONS: list[Migration] = [
    (
        "0001_initial",
        _create(AccountRow, DocumentRow, SignalRow, UsageRowDb, OutcomeRow, SnapshotRow, EventRow, RunRow),
    ),
    ("0002_extractions", _create(ExtractionRow)),
    ("0003_usage_seq", _usage_seq),
    ("0004_bigint_ids", _bigint_ids),
    ("0005_signal_reviews", _create(SignalReviewRow)),
    ("0006_queue_jobs", _create(JobRow)),
    ("0007_extractor_versions", _create(ExtractorVersionRow)),
]


# ----------------------------------------------------------------------------------------- helpers
def _naive_utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def _db_error(e: SQLAlchemyError) -> str:
    """The driver's first line only: SQLAlchemy's full text repeats the statement and its parameters."""
    return f"{e.__class__.__name__}: {e.args[0] if e.args else e}"


def _in_batches(ids: Iterable[str]) -> Iterator[list[str]]:
    ids = list(ids)
    for i in range(0, len(ids), _IN_BATCH):
        yield ids[i : i + _IN_BATCH]


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _signal_row(sig: Signal, tenant: str) -> dict[str, Any]:
    return {
        "id": sig.id,
        "tenant": tenant,
        "account_id": sig.account_id,
        "type": sig.type,
        "category": sig.category,
        "polarity": int(sig.polarity or 0),
        "verified": sig.verified,
        "day": sig.occurred_at.date() if sig.occurred_at else None,
        "source_id": sig.source_id,
        "extractor": sig.extractor,
        "extractor_version": sig.extractor_version,
        "payload": sig.model_dump(mode="json"),
        "indexed": False,
        "created_at": _utcnow(),
    }


def _document_row(doc: SourceDocument, tenant: str, version: int) -> dict[str, Any]:
    payload = doc.model_dump(mode="json", exclude={"text"})
    return {
        "id": doc.id,
        "tenant": tenant,
        "account_id": doc.account_id,
        "path": doc.path,
        "version": version,
        "kind": doc.kind,
        "occurred_at": _naive_utc(doc.occurred_at),
        "day": doc.occurred_at.date() if doc.occurred_at else None,
        "title": doc.title,
        "text": doc.text,
        "payload": payload,
        "indexed": False,
        "created_at": _utcnow(),
    }


def _document_from(row: Any) -> SourceDocument:
    data = dict(row.payload)
    data["text"] = row.text
    return SourceDocument.model_validate(data)


# The API's hot read path as prepared text statements: no per-request statement building or cache-key work.
# Portable SQL for SQLite and PostgreSQL, over the tables above.
_SNAP_COLS = "SELECT id, created_at, payload FROM score_snapshots WHERE tenant = :t AND account_id = :a"
_Q_ACCOUNT = text_sql("SELECT tenant, account_id, name, start_date, end_date, segment, metadata FROM accounts "
                      "WHERE tenant = :t AND account_id = :a").columns(start_date=Date(), end_date=Date(),
                                                                     metadata=JSON())
_Q_LATEST_OF_MODEL = text_sql(_SNAP_COLS + " AND model_id = :m ORDER BY as_of DESC, id DESC LIMIT 1")
_Q_LATEST_ANY = text_sql(_SNAP_COLS + " ORDER BY as_of DESC, id DESC LIMIT 1")
_Q_DAY_OF_MODEL = text_sql(_SNAP_COLS + " AND model_id = :m AND as_of = :d ORDER BY id DESC LIMIT 1").bindparams(
    bindparam("d", type_=Date()))
_Q_KINDS = text_sql("SELECT id, kind FROM documents WHERE tenant = :t AND account_id = :a")


# ----------------------------------------------------------------------------------------- the ledger
def default_sqlite_url(home: str | Path) -> str:
    """Where the ledger lives when no database URL is configured."""
    return f"sqlite:///{(Path(home) / 'healthtrace.db').resolve()}"


_SCHEMA_LOCK = 7312001


def hold_schema_lock(conn: Connection) -> None:
    """Serialise schema changes across processes for the rest of ``conn``'s transaction. PostgreSQL's
    ``CREATE TABLE`` is not safe against a concurrent create of the same name (a unique violation on
    ``pg_type``), so every DDL path (migrations, feedback and API tables) takes this advisory lock first;
    SQLite's ``BEGIN IMMEDIATE`` already serialises writers."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})


class Ledger:
    """Connection to the ledger database; cheap to create, safe to share within one process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        try:
            self.engine: Engine = _make_engine(url, echo=echo)
            self.dialect = self.engine.dialect.name
            self._migrate()
        except SQLAlchemyError as e:
            raise StoreError(f"cannot open the ledger at {_safe_url(url)}: {_db_error(e)}") from e

    @classmethod
    def open(cls, database_url: str | None, *, home: str | Path) -> Ledger:
        """The ledger at ``database_url``, or the SQLite file ``healthtrace.db`` in ``home`` (created when
        missing; it must be writable). Values, not settings: the container (api/container.py) reads those."""
        home = Path(home)
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"HEALTHTRACE_HOME {home} cannot be created: {e.strerror or e}") from e
        if not database_url and not os.access(home, os.W_OK):
            raise StoreError(f"HEALTHTRACE_HOME {home} is not writable")
        return cls(database_url or default_sqlite_url(home))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction. SQLite takes the write lock up front (BEGIN IMMEDIATE) so two writers
        queue on the busy timeout instead of failing on a lock upgrade; PostgreSQL relies on ON CONFLICT."""
        try:
            with self.engine.connect() as conn:
                conn.execution_options(ht_write=True)
                with conn.begin():
                    yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"ledger write failed: {_db_error(e)}") from e

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"ledger read failed: {_db_error(e)}") from e

    def _insert(self, model: type[Base]) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - only the two supported dialects are tested
            raise StoreError(f"unsupported database dialect {self.dialect!r}; use SQLite or PostgreSQL")
        return insert(model)

    def insert_ignore(self, conn: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> int:
        """Bulk insert, skipping rows whose key exists; returns how many were new."""
        if not rows:
            return 0
        stmt = self._insert(model).on_conflict_do_nothing()
        if self.dialect == "postgresql":
            # psycopg's executemany reports no rowcount; RETURNING (batched by SQLAlchemy's insertmanyvalues)
            # yields exactly the rows that were inserted.
            stmt = stmt.returning(*model.__table__.primary_key.columns)  # type: ignore[attr-defined]
        added = 0
        for i in range(0, len(rows), _BATCH):
            res = conn.execute(stmt, list(rows[i : i + _BATCH]))
            added += len(res.all()) if self.dialect == "postgresql" else max(res.rowcount or 0, 0)
        return added

    def _migrate(self) -> None:
        with self.write() as conn:
            hold_schema_lock(conn)
            MigrationRow.__table__.create(conn, checkfirst=True)  # type: ignore[attr-defined]
            done = set(conn.scalars(select(MigrationRow.name)))
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(conn)
                    conn.execute(self._insert(MigrationRow).on_conflict_do_nothing(), [{"name": name, "applied_at": _utcnow()}])

    def applied_migrations(self) -> list[str]:
        with self.read() as conn:
            return sorted(conn.scalars(select(MigrationRow.name)))

    # ------------------------------------------------------------------ accounts
    def upsert_accounts(self, accounts: Iterable[Account]) -> int:
        """Insert new accounts and update changed ones; returns how many rows were inserted or changed."""
        rows = [
            {
                "tenant": a.tenant or DEFAULT_TENANT,
                "account_id": a.account_id,
                "name": a.name,
                "start_date": a.start_date,
                "end_date": a.end_date,
                "segment": a.segment,
                "metadata": _jsonable(a.metadata or {}),
                "updated_at": _utcnow(),
            }
            for a in accounts
        ]
        if not rows:
            return 0
        changed = 0
        with self.write() as conn:
            existing: dict[tuple[str, str], tuple[Any, ...]] = {}
            tenants = {r["tenant"] for r in rows}
            for t in tenants:
                for r in conn.execute(select(AccountRow.__table__).where(AccountRow.tenant == t)):
                    existing[(r.tenant, r.account_id)] = (r.name, r.start_date, r.end_date, r.segment, r.metadata)
            new = [r for r in rows if (r["tenant"], r["account_id"]) not in existing]
            changed += self.insert_ignore(conn, AccountRow, new)
            table = AccountRow.__table__
            for r in rows:
                old = existing.get((r["tenant"], r["account_id"]))
                if old is not None and old != (r["name"], r["start_date"], r["end_date"], r["segment"], r["metadata"]):
                    conn.execute(
                        update(table)
                        .where(table.c.tenant == r["tenant"], table.c.account_id == r["account_id"])
                        .values(name=r["name"], start_date=r["start_date"], end_date=r["end_date"],
                                segment=r["segment"], metadata=r["metadata"], updated_at=r["updated_at"])
                    )
                    changed += 1
        return changed

    @staticmethod
    def _account(r: Any) -> Account:
        return Account(account_id=r.account_id, name=r.name, start_date=r.start_date, end_date=r.end_date,
                       segment=r.segment, tenant=r.tenant, metadata=r.metadata or {})

    def get_account(self, account_id: str, tenant: str = DEFAULT_TENANT) -> Account:
        t = AccountRow.__table__
        with self.read() as conn:
            r = conn.execute(select(t).where(t.c.tenant == tenant, t.c.account_id == account_id)).first()
        if r is None:
            raise NotFoundError(f"account {account_id!r} not found (tenant {tenant!r})")
        return self._account(r)

    def list_accounts(self, tenant: str = DEFAULT_TENANT) -> list[Account]:
        t = AccountRow.__table__
        with self.read() as conn:
            rows = conn.execute(select(t).where(t.c.tenant == tenant).order_by(t.c.account_id)).all()
        return [self._account(r) for r in rows]

    # ------------------------------------------------------------------ documents
    def _add_document(self, conn: Connection, doc: SourceDocument, tenant: str) -> bool:
        t = DocumentRow.__table__
        if conn.execute(select(t.c.id).where(t.c.id == doc.id)).first() is not None:
            return False
        version = 1
        if doc.path:
            prior = conn.scalar(select(func.max(t.c.version)).where(t.c.tenant == tenant, t.c.path == doc.path))
            version = (prior or 0) + 1
        return self.insert_ignore(conn, DocumentRow, [_document_row(doc, tenant, version)]) == 1

    def add_document(self, doc: SourceDocument, *, tenant: str = DEFAULT_TENANT) -> bool:
        with self.write() as conn:
            return self._add_document(conn, doc, tenant)

    def record_document(
        self,
        doc: SourceDocument,
        signals: Iterable[Signal],
        *,
        extractor: str,
        version: str,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[bool, int]:
        """Document + its signals + the extraction record in ONE transaction: a crash leaves either all or
        nothing, and a re-run redoes exactly the documents without a record. Returns (new document, new signals)."""
        sigs = list(signals)
        with self.write() as conn:
            new_doc = self._add_document(conn, doc, tenant)
            added = self.insert_ignore(conn, SignalRow, [_signal_row(s, tenant) for s in sigs])
            self.insert_ignore(
                conn, ExtractionRow,
                [{"subject": doc.id, "extractor": extractor, "version": version, "digest": "", "signals": len(sigs), "at": _utcnow()}],
            )
        return new_doc, added

    def extracted(self, extractor: str, version: str, subjects: Collection[str] | None = None) -> dict[str, str]:
        """subject -> digest of what ``extractor@version`` has already read."""
        t = ExtractionRow.__table__
        q = select(t.c.subject, t.c.digest).where(t.c.extractor == extractor, t.c.version == version)
        out: dict[str, str] = {}
        with self.read() as conn:
            if subjects is None:
                return {r.subject: r.digest for r in conn.execute(q)}
            for batch in _in_batches(subjects):
                out.update({r.subject: r.digest for r in conn.execute(q.where(t.c.subject.in_(batch)))})
        return out

    def replace_account_signals(
        self,
        account_id: str,
        signals: Iterable[Signal],
        *,
        extractor: str,
        version: str,
        digest: str,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[int, list[str]]:
        """For account-level extractors (metadata): their signals are a function of the whole document set, so
        a new set replaces the old one. Returns (new signals, ids removed) in one transaction."""
        sigs = list(signals)
        keep = {s.id for s in sigs}
        t = SignalRow.__table__
        subject = f"account:{tenant}:{account_id}"
        with self.write() as conn:
            old = set(conn.scalars(select(t.c.id).where(t.c.tenant == tenant, t.c.account_id == account_id, t.c.extractor == extractor)))
            removed = sorted(old - keep)
            for batch in _in_batches(removed):
                conn.execute(delete(t).where(t.c.id.in_(batch)))
            added = self.insert_ignore(conn, SignalRow, [_signal_row(s, tenant) for s in sigs])
            e = ExtractionRow.__table__
            conn.execute(delete(e).where(e.c.subject == subject, e.c.extractor == extractor))
            self.insert_ignore(conn, ExtractionRow, [{"subject": subject, "extractor": extractor, "version": version,
                                                      "digest": digest, "signals": len(sigs), "at": _utcnow()}])
        return added, removed

    def get_document(self, source_id: str) -> SourceDocument:
        t = DocumentRow.__table__
        with self.read() as conn:
            r = conn.execute(select(t).where(t.c.id == source_id)).first()
        if r is None:
            raise NotFoundError(f"document {source_id!r} not found")
        return _document_from(r)

    def documents_for(self, account_id: str, tenant: str = DEFAULT_TENANT) -> list[SourceDocument]:
        t = DocumentRow.__table__
        with self.read() as conn:
            rows = conn.execute(
                select(t).where(t.c.tenant == tenant, t.c.account_id == account_id).order_by(nulls_first(t.c.occurred_at), t.c.path, t.c.version, t.c.id)
            ).all()
        return [_document_from(r) for r in rows]

    def _ids(self, model: type[DocumentRow] | type[SignalRow], indexed: bool | None) -> list[str]:
        t = model.__table__
        q = select(t.c.id).order_by(t.c.id)
        if indexed is not None:
            q = q.where(t.c.indexed == indexed)
        with self.read() as conn:
            return list(conn.scalars(q))

    def document_ids(self, *, indexed: bool | None = None) -> list[str]:
        return self._ids(DocumentRow, indexed)

    def addresses_by_account(self, tenant: str = DEFAULT_TENANT) -> dict[str, set[str]]:
        """Every address that takes part in each account's documents (participants and message authors),
        read from the stored payloads without the texts: what vendor-domain inference needs."""
        t = DocumentRow.__table__
        out: dict[str, set[str]] = {}
        with self.read() as conn:
            for aid, payload in conn.execute(select(t.c.account_id, t.c.payload).where(t.c.tenant == tenant)):
                if not aid or not isinstance(payload, dict):
                    continue
                found = out.setdefault(aid, set())
                for item in [*(payload.get("participants") or ()), *(payload.get("segments") or ())]:
                    addr = item.get("address") if isinstance(item, dict) else None
                    if isinstance(addr, str) and "@" in addr:
                        found.add(addr.lower())
        return out

    def documents_stamp(self, tenant: str = DEFAULT_TENANT) -> tuple[int, str]:
        """(count, newest created_at) of the tenant's documents: changes whenever a document is added."""
        t = DocumentRow.__table__
        with self.read() as conn:
            n, newest = conn.execute(select(func.count(), func.max(t.c.created_at)).where(t.c.tenant == tenant)).one()
        return int(n or 0), str(newest)

    def documents_by_ids(self, ids: Sequence[str]) -> list[tuple[SourceDocument, str]]:
        """(document, tenant) for each id found, in the given order."""
        t = DocumentRow.__table__
        found: dict[str, tuple[SourceDocument, str]] = {}
        with self.read() as conn:
            for batch in _in_batches(ids):
                for r in conn.execute(select(t).where(t.c.id.in_(batch))):
                    found[r.id] = (_document_from(r), r.tenant)
        return [found[i] for i in ids if i in found]

    # ------------------------------------------------------------------ signals
    def add_signals(self, signals: Iterable[Signal], *, tenant: str = DEFAULT_TENANT) -> int:
        rows = [_signal_row(s, tenant) for s in signals]
        with self.write() as conn:
            return self.insert_ignore(conn, SignalRow, rows)

    def signals_for(
        self,
        account_id: str,
        *,
        until: date | None = None,
        since: date | None = None,
        types: Collection[str] | None = None,
        verified_only: bool = True,
        include_rejected: bool = False,
        tenant: str = DEFAULT_TENANT,
    ) -> list[Signal]:
        """Signals of an account, oldest first. With ``until``/``since`` an undated signal is left out: it cannot
        be shown to fall inside the window (scoring must never see the future). Signals a CSM rejected are left
        out unless ``include_rejected``: every reader (scores, why, evidence) stops counting them at once."""
        t = SignalRow.__table__
        q = select(t.c.payload).where(t.c.tenant == tenant, t.c.account_id == account_id)
        if not include_rejected:
            r = SignalReviewRow.__table__
            q = q.where(~exists().where(r.c.tenant == t.c.tenant, r.c.signal_id == t.c.id, r.c.verdict == "reject"))
        if until is not None:
            q = q.where(t.c.day <= until)
        if since is not None:
            q = q.where(t.c.day >= since)
        if types is not None:
            q = q.where(t.c.type.in_(list(types)))
        if verified_only:
            q = q.where(t.c.verified.is_(True))
        q = q.order_by(nulls_first(t.c.day), t.c.id)  # same order on both dialects
        with self.read() as conn:
            return [Signal.model_validate(p) for p in conn.scalars(q)]

    def review_signal(self, signal_id: str, verdict: str, reason: str, *, author: str | None = None,
                      account_id: str | None = None, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
        """Record (or replace) a CSM's verdict on a stored signal of ``tenant`` (of ``account_id`` when given);
        returns the stored review."""
        if verdict not in REVIEW_VERDICTS:
            raise InputError(f"unknown verdict {verdict!r}; expected one of {', '.join(REVIEW_VERDICTS)}")
        reason = (reason or "").strip()
        if not reason:
            raise InputError("a review needs a reason (what is right or wrong about the signal)")
        if len(reason) > MAX_REVIEW_REASON:
            raise InputError(f"reason is {len(reason)} characters; the limit is {MAX_REVIEW_REASON}")
        if author is not None and len(author) > 200:
            raise InputError("author longer than 200 characters")
        t, r = SignalRow.__table__, SignalReviewRow.__table__
        with self.write() as conn:
            found = conn.execute(select(t.c.account_id).where(t.c.id == signal_id, t.c.tenant == tenant)).first()
            if found is None or (account_id is not None and found.account_id != account_id):
                where = f"account {account_id!r}" if account_id is not None else f"tenant {tenant!r}"
                raise NotFoundError(f"no stored signal {signal_id!r} in {where}")
            row = {"tenant": tenant, "signal_id": signal_id, "account_id": found.account_id, "verdict": verdict,
                   "reason": reason, "author": author, "created_at": _utcnow()}
            conn.execute(r.delete().where(r.c.tenant == tenant, r.c.signal_id == signal_id))
            conn.execute(r.insert().values(**row))
        return row

    def signal_reviews(self, *, account_id: str | None = None, verdict: str | None = None,
                       tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        r = SignalReviewRow.__table__
        q = select(r).where(r.c.tenant == tenant)
        if account_id is not None:
            q = q.where(r.c.account_id == account_id)
        if verdict is not None:
            q = q.where(r.c.verdict == verdict)
        with self.read() as conn:
            return [dict(x._mapping) for x in conn.execute(q.order_by(r.c.created_at, r.c.signal_id))]

    def signals_by_ids(self, ids: Sequence[str]) -> list[tuple[Signal, str]]:
        t = SignalRow.__table__
        found: dict[str, tuple[Signal, str]] = {}
        with self.read() as conn:
            for batch in _in_batches(ids):
                for r in conn.execute(select(t.c.id, t.c.payload, t.c.tenant).where(t.c.id.in_(batch))):
                    found[r.id] = (Signal.model_validate(r.payload), r.tenant)
        return [found[i] for i in ids if i in found]

    def signal_ids(self, *, indexed: bool | None = None) -> list[str]:
        return self._ids(SignalRow, indexed)

    # ------------------------------------------------------------------ vector state
    def mark_indexed(self, *, documents: Sequence[str] = (), signals: Sequence[str] = (), value: bool = True) -> None:
        with self.write() as conn:
            for model, ids in ((DocumentRow, documents), (SignalRow, signals)):
                t = model.__table__
                for batch in _in_batches(ids):
                    conn.execute(update(t).where(t.c.id.in_(batch)).values(indexed=value))

    def reset_indexed(self) -> None:
        """Everything becomes 'not embedded' (reindex)."""
        with self.write() as conn:
            conn.execute(update(DocumentRow.__table__).values(indexed=False))
            conn.execute(update(SignalRow.__table__).values(indexed=False))

    # ------------------------------------------------------------------ usage and outcomes
    def add_usage(self, rows: Iterable[UsageRow | UsagePoint], *, tenant: str = DEFAULT_TENANT) -> int:
        """Idempotent on (account, date, metric, n-th occurrence in ``rows``); returns rows added."""
        seen: dict[tuple[str, date, str], int] = {}
        data = []
        for r in rows:
            key = (r.account_id, r.date, r.metric)
            seq = seen[key] = seen.get(key, -1) + 1
            data.append({"tenant": tenant, "account_id": r.account_id, "date": r.date, "metric": r.metric,
                         "seq": seq, "value": float(r.value)})
        with self.write() as conn:
            if self.dialect == "postgresql" and len(data) > 1000:
                return self._copy_usage(conn, data)
            return self.insert_ignore(conn, UsageRowDb, data)

    @staticmethod
    def _copy_usage(conn: Connection, data: list[dict[str, Any]]) -> int:
        """PostgreSQL bulk path: COPY into a transaction-scoped staging table, then one INSERT ... SELECT ...
        ON CONFLICT DO NOTHING whose rowcount is exactly the new rows (~10x faster than executemany)."""
        cols = ("tenant", "account_id", "date", "metric", "seq", "value")
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS ht_usage_stage (LIKE usage_points) ON COMMIT DROP")
            with cur.copy(f"COPY ht_usage_stage ({', '.join(cols)}) FROM STDIN") as copy:
                for row in data:
                    copy.write_row(tuple(row[c] for c in cols))
            cur.execute(f"INSERT INTO usage_points ({', '.join(cols)}) SELECT {', '.join(cols)} FROM ht_usage_stage "
                        "ON CONFLICT DO NOTHING")
            return max(cur.rowcount, 0)

    def usage_for(self, account_id: str, *, until: date | None = None, tenant: str = DEFAULT_TENANT) -> list[UsageRow]:
        t = UsageRowDb.__table__
        q = select(t.c.account_id, t.c.date, t.c.metric, t.c.value).where(t.c.tenant == tenant, t.c.account_id == account_id)
        if until is not None:
            q = q.where(t.c.date <= until)
        with self.read() as conn:
            return [UsageRow(*r) for r in conn.execute(q.order_by(t.c.date, t.c.metric, t.c.seq))]

    def add_outcomes(self, outcomes: Iterable[Outcome], *, tenant: str = DEFAULT_TENANT) -> int:
        data = [{"tenant": tenant, "account_id": o.account_id, "date": o.date, "outcome": o.outcome, "note": o.note} for o in outcomes]
        with self.write() as conn:
            return self.insert_ignore(conn, OutcomeRow, data)

    def outcomes_for(self, account_id: str, *, tenant: str = DEFAULT_TENANT) -> list[Outcome]:
        t = OutcomeRow.__table__
        q = select(t).where(t.c.tenant == tenant, t.c.account_id == account_id).order_by(t.c.date, t.c.outcome)
        with self.read() as conn:
            return [Outcome(account_id=r.account_id, date=r.date, outcome=r.outcome, note=r.note) for r in conn.execute(q)]

    # ------------------------------------------------------------------ score snapshots
    def save_snapshots(
        self,
        scores: Iterable[HealthScore],
        *,
        extractor_versions: dict[str, str] | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> int:
        versions = dict(extractor_versions or {})
        rows = [
            {
                "tenant": tenant,
                "account_id": s.account_id,
                "as_of": s.as_of,
                "model_id": s.model_id,
                "model_version": s.model_version,
                "model_hash": s.model_hash,
                "inputs_digest": s.inputs_digest,
                "score": float(s.score),
                "tier": s.tier,
                "payload": s.model_dump(mode="json"),
                "extractor_versions": versions,
                "created_at": _utcnow(),
            }
            for s in scores
        ]
        with self.write() as conn:
            return self.insert_ignore(conn, SnapshotRow, rows)

    def account_snapshots(
        self, tenant: str, account_id: str, days: Sequence[date | None | int], model_id: str, *,
        parse: Callable[[int, Any, Any], HealthScore], today: date, with_kinds: bool = False,
    ) -> tuple[Account, list[HealthScore | None], dict[str, str]]:
        """The API's hot read in ONE connection: the account, its snapshot of ``model_id`` for each day (None =
        the latest, of any model when the active one has none yet; an int N = N days before the first
        day's snapshot, or before ``today``) and optionally its documents' kinds. ``parse(id, created_at,
        payload)`` turns a row into a score (the caller caches). NotFoundError when the account is absent."""
        from datetime import timedelta

        out: list[HealthScore | None] = []
        kinds: dict[str, str] = {}
        key = {"t": tenant, "a": account_id}
        with self.read() as conn:
            row = conn.execute(_Q_ACCOUNT, key).first()
            if row is None:
                raise NotFoundError(f"account {account_id!r} not found (tenant {tenant!r})")
            account = Ledger._account(row)
            for day in days:
                if isinstance(day, int):
                    ref = out[0].as_of if out and out[0] is not None else today
                    day = ref - timedelta(days=day)
                if day is None:
                    p = conn.execute(_Q_LATEST_OF_MODEL, key | {"m": model_id}).first() or \
                        conn.execute(_Q_LATEST_ANY, key).first()
                else:
                    p = conn.execute(_Q_DAY_OF_MODEL, key | {"m": model_id, "d": day}).first()
                out.append(None if p is None else parse(p.id, p.created_at, p.payload))
            if with_kinds:
                kinds = {r.id: r.kind for r in conn.execute(_Q_KINDS, key)}
        return account, out, kinds

    def source_kinds(self, tenant: str, account_id: str) -> dict[str, str]:
        """Document id -> kind, without loading the texts."""
        with self.read() as conn:
            return {r.id: r.kind for r in conn.execute(_Q_KINDS, {"t": tenant, "a": account_id})}

    def latest_snapshot_payloads(self, tenant: str, model_id: str) -> dict[str, tuple[Any, datetime | None]]:
        """Account id -> (payload, created_at) of its latest snapshot, ``model_id``'s preferred, in one query."""
        t = SnapshotRow.__table__
        latest: dict[str, tuple[bool, Any, datetime | None]] = {}
        q = select(t.c.account_id, t.c.model_id, t.c.payload, t.c.created_at).where(t.c.tenant == tenant)
        with self.read() as conn:
            for r in conn.execute(q.order_by(t.c.as_of, t.c.id)):
                preferred = r.model_id == model_id
                cur = latest.get(r.account_id)
                if cur is None or preferred or not cur[0]:
                    latest[r.account_id] = (preferred, r.payload, r.created_at)
        return {k: (v[1], v[2]) for k, v in latest.items()}

    def replace_snapshot(self, score: HealthScore, *, tenant: str = DEFAULT_TENANT) -> None:
        """One snapshot per account, day and model version: a same-day rescore replaces the old one."""
        t = SnapshotRow.__table__
        with self.write() as conn:
            conn.execute(delete(t).where(
                t.c.tenant == tenant, t.c.account_id == score.account_id, t.c.as_of == score.as_of,
                t.c.model_id == score.model_id, t.c.model_version == score.model_version))
        self.save_snapshots([score], tenant=tenant)

    def snapshots_for(self, account_id: str, *, model_id: str | None = None, tenant: str = DEFAULT_TENANT) -> list[HealthScore]:
        t = SnapshotRow.__table__
        q = select(t.c.payload).where(t.c.tenant == tenant, t.c.account_id == account_id)
        if model_id is not None:
            q = q.where(t.c.model_id == model_id)
        with self.read() as conn:
            return [HealthScore.model_validate(p) for p in conn.scalars(q.order_by(t.c.as_of, t.c.id))]

    def snapshot_at(
        self, account_id: str, as_of: date, *, model_id: str | None = None, tenant: str = DEFAULT_TENANT
    ) -> HealthScore | None:
        t = SnapshotRow.__table__
        q = select(t.c.payload).where(t.c.tenant == tenant, t.c.account_id == account_id, t.c.as_of <= as_of)
        if model_id is not None:
            q = q.where(t.c.model_id == model_id)
        with self.read() as conn:
            p = conn.scalars(q.order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1)).first()
        return None if p is None else HealthScore.model_validate(p)

    # ------------------------------------------------------------------ events
    def add_event(
        self,
        kind: str,
        account_id: str,
        payload: dict[str, Any],
        *,
        occurred_at: datetime,
        dedupe_key: str,
        tenant: str = DEFAULT_TENANT,
    ) -> bool:
        row = {"tenant": tenant, "kind": kind, "account_id": account_id, "payload": _jsonable(payload),
               "occurred_at": _naive_utc(occurred_at), "dedupe_key": dedupe_key, "created_at": _utcnow()}
        with self.write() as conn:
            return self.insert_ignore(conn, EventRow, [row]) == 1

    def events(self, *, since_id: int = 0, account_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        limit = max(1, min(int(limit), 10_000))
        t = EventRow.__table__
        q = select(t).where(t.c.id > since_id)
        if account_id is not None:
            q = q.where(t.c.account_id == account_id)
        with self.read() as conn:
            rows = conn.execute(q.order_by(t.c.id).limit(limit)).all()
        return [
            {"id": r.id, "tenant": r.tenant, "kind": r.kind, "account_id": r.account_id, "payload": r.payload,
             "occurred_at": r.occurred_at, "dedupe_key": r.dedupe_key, "created_at": r.created_at}
            for r in rows
        ]

    # ------------------------------------------------------------------ extraction runs
    def start_run(self, extractor: str, version: str, **meta: Any) -> int:
        """A run is recorded as ``running`` with the host and pid that run it, so a killed one can be told
        from a live one later (:meth:`mark_stale_runs`)."""
        import socket

        self.mark_stale_runs()
        meta = {**meta, "host": socket.gethostname(), "pid": os.getpid()}
        with self.write() as conn:
            res = conn.execute(RunRow.__table__.insert().values(extractor=extractor, version=version, status="running",
                                                                meta=_jsonable(meta), stats={}, started_at=_utcnow()))
            return int(res.inserted_primary_key[0])

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any], error: str | None = None) -> None:
        """Stats and error are stored redacted (extractors/redact.py): upstream errors may echo keys."""
        from extractors.redact import redact, redact_any

        stats = redact_any(_jsonable(stats))  # type: ignore[assignment]
        error = redact(error) if error else error
        t = RunRow.__table__
        with self.write() as conn:
            conn.execute(update(t).where(t.c.id == run_id).values(status=status, stats=_jsonable(stats), error=error,
                                                                   finished_at=_utcnow()))

    def mark_stale_runs(self, *, max_age_s: float = 24 * 3600) -> int:
        """``running`` runs whose process is gone (same host, pid dead) become ``killed``; ones from another
        host older than ``max_age_s`` become ``stale``. Returns how many were marked."""
        import socket
        from datetime import timedelta

        t = RunRow.__table__
        host = socket.gethostname()
        now = datetime.now(timezone.utc)
        marked: list[tuple[int, str]] = []
        with self.read() as conn:
            rows = conn.execute(select(t.c.id, t.c.meta, t.c.started_at).where(t.c.status == "running")).all()
        for r in rows:
            meta = r.meta or {}
            if meta.get("queued"):  # done by workers, finished by the last job of its group: only age counts
                if r.started_at is not None and now - r.started_at > timedelta(seconds=max_age_s):
                    marked.append((r.id, "stale"))
                continue
            if meta.get("host") == host and isinstance(meta.get("pid"), int):
                if meta["pid"] != os.getpid() and not _pid_alive(meta["pid"]):
                    marked.append((r.id, "killed"))
            elif r.started_at is not None and now - r.started_at > timedelta(seconds=max_age_s):
                marked.append((r.id, "stale"))
        for run_id, status in marked:
            with self.write() as conn:
                conn.execute(update(t).where(t.c.id == run_id, t.c.status == "running").values(
                    status=status, error="the process running it ended without finishing", finished_at=now))
        return len(marked)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        self.mark_stale_runs()
        t = RunRow.__table__
        with self.read() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.id.desc()).limit(limit))]

    # ------------------------------------------------------------------ stats
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        with self.read() as conn:
            for model in (AccountRow, DocumentRow, SignalRow, UsageRowDb, OutcomeRow, SnapshotRow, EventRow, RunRow):
                out[model.__tablename__] = int(conn.scalar(select(func.count()).select_from(model.__table__)) or 0)
            for key, model, flag in (("documents_indexed", DocumentRow, DocumentRow.indexed),
                                     ("signals_indexed", SignalRow, SignalRow.indexed),
                                     ("signals_verified", SignalRow, SignalRow.verified)):
                out[key] = int(conn.scalar(select(func.count()).select_from(model.__table__).where(flag.is_(True))) or 0)
        return out

    def digest_documents(self, account_id: str, tenant: str = DEFAULT_TENANT) -> str:
        t = DocumentRow.__table__
        with self.read() as conn:
            ids = conn.scalars(select(t.c.id).where(t.c.tenant == tenant, t.c.account_id == account_id).order_by(t.c.id))
            return _digest(ids)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


# ----------------------------------------------------------------------------------------- engine
def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for an error message
        return "<unparseable url>"


def _clean_params(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> Any:
    """The store's last line of defence for text: every bound string with NUL or a lone surrogate is made
    storable (extractors/text.py), so no account name, note, path or URL can make a write fail for ever.
    (Document text is already cleaned when the document is built, so its citations' offsets hold.)"""
    from extractors.text import storable_any

    return statement, storable_any(parameters)


def _make_engine(url: str, *, echo: bool) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, hide_parameters=True,
                               connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "before_cursor_execute", _clean_params, retval=True)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's own handling breaks DDL)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 60000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("ht_write") else "BEGIN")

        return engine
    if url.startswith("postgresql"):
        engine = create_engine(url, echo=echo, hide_parameters=True, pool_pre_ping=True,
                               insertmanyvalues_page_size=5000)
        event.listen(engine, "before_cursor_execute", _clean_params, retval=True)
        return engine
    raise StoreError(f"unsupported database URL {_safe_url(url)}: use sqlite:///PATH or postgresql+psycopg://...")
