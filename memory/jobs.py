"""Job records of the queue: what was asked, where it stands, what came out (table ``jobs``, migration 0005).

The broker (Redis or RabbitMQ, through Celery: api/tasks.py) carries the messages; this table is the record a
person reads (`healthtrace jobs`, ``GET /v1/jobs/{id}``). A job is written ``queued`` before its message is
sent, so a caller waiting on a group never sees it finished early; a job that starts again after its worker
was killed counts one more attempt and ends like any other. ``failed``: the input is bad (retrying cannot help);
``dead``: retries ran out on an error that might have passed (the dead-letter list: ``jobs --failed``).
Pure bookkeeping on the ledger's engine: nothing here imports Celery.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from extractors.errors import NotFoundError

from .ledger import DEFAULT_TENANT, JobRow, Ledger, _jsonable

# "finishing": the work is done and recorded, its follow-ups are being queued (still counts as unfinished)
STATUSES = ("queued", "running", "retrying", "finishing", "done", "failed", "dead")
FINISHED = ("done", "failed", "dead")
PROBLEMS = ("failed", "dead")

_t = JobRow.__table__


def _now() -> datetime:
    return datetime.now(timezone.utc)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobStore:
    """Job rows on a ledger's engine (SQLite or PostgreSQL)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    # ------------------------------------------------------------------ writes
    def create(self, job_id: str, kind: str, *, subject: str | None = None, group_id: str | None = None,
               tenant: str = DEFAULT_TENANT, account_id: str | None = None) -> bool:
        return self.create_many([(job_id, kind, subject)], group_id=group_id, tenant=tenant,
                                account_id=account_id) == 1

    def create_many(self, jobs: Sequence[tuple[str, str, str | None]], *, group_id: str | None = None,
                    tenant: str = DEFAULT_TENANT, account_id: str | None = None,
                    accounts: Sequence[str | None] | None = None) -> int:
        """Records ``queued`` jobs (id, kind, subject); an id already recorded is left alone. Returns how many
        were new (so of two processes creating the same follow-up job, one sends it)."""
        now = _now()
        rows = [{"id": j, "kind": k, "subject": s, "group_id": group_id, "tenant": tenant, "status": "queued",
                 "account_id": accounts[i] if accounts is not None else account_id, "attempts": 0, "result": {},
                 "created_at": now} for i, (j, k, s) in enumerate(jobs)]
        with self.ledger.write() as conn:
            return self.ledger.insert_ignore(conn, JobRow, rows)

    def start(self, job_id: str, *, kind: str = "unknown", subject: str | None = None) -> int:
        """The job runs (again, after a crash or a retry): attempts + 1. A job sent without a record (another
        process's helper) gets one now. Returns the attempt number."""
        with self.ledger.write() as conn:
            n = conn.execute(update(_t).where(_t.c.id == job_id).values(
                status="running", attempts=_t.c.attempts + 1, worker=worker_name(), started_at=_now(),
                error=None)).rowcount
            if not n:
                conn.execute(insert(_t).values(id=job_id, kind=kind, subject=subject, status="running", attempts=1,
                                               worker=worker_name(), result={}, created_at=_now(), started_at=_now()))
            return int(conn.scalar(select(_t.c.attempts).where(_t.c.id == job_id)) or 1)

    def finish(self, job_id: str, status: str, *, result: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        from extractors.redact import redact, redact_any

        if status not in STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        values: dict[str, Any] = {"status": status, "error": redact(error)[:4000] if error else None}
        if result is not None:
            values["result"] = redact_any(_jsonable(result))
        if status in FINISHED:
            values["finished_at"] = _now()
        with self.ledger.write() as conn:
            conn.execute(update(_t).where(_t.c.id == job_id).values(**values))

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _row(r: Any) -> dict[str, Any]:
        return dict(r._mapping)

    def get(self, job_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        q = select(_t).where(_t.c.id == job_id)
        if tenant is not None:
            q = q.where(_t.c.tenant == tenant)
        with self.ledger.read() as conn:
            r = conn.execute(q).first()
        if r is None:
            raise NotFoundError(f"no job {job_id!r}")
        return self._row(r)

    def list(self, *, failed: bool = False, limit: int = 50, group_id: str | None = None,
             tenant: str | None = None) -> list[dict[str, Any]]:
        q = select(_t)
        if failed:
            q = q.where(_t.c.status.in_(PROBLEMS))
        if group_id is not None:
            q = q.where(_t.c.group_id == group_id)
        if tenant is not None:
            q = q.where(_t.c.tenant == tenant)
        q = q.order_by(_t.c.created_at.desc(), _t.c.id).limit(max(1, min(limit, 10_000)))
        with self.ledger.read() as conn:
            return [self._row(r) for r in conn.execute(q)]

    def group_counts(self, group_id: str) -> dict[str, int]:
        q = select(_t.c.status, func.count()).where(_t.c.group_id == group_id).group_by(_t.c.status)
        with self.ledger.read() as conn:
            return {s: int(n) for s, n in conn.execute(q)}

    def group_results(self, group_id: str) -> list[dict[str, Any]]:
        q = select(_t.c.id, _t.c.kind, _t.c.status, _t.c.subject, _t.c.result, _t.c.error).where(
            _t.c.group_id == group_id).order_by(_t.c.id)
        with self.ledger.read() as conn:
            return [self._row(r) for r in conn.execute(q)]

    def wait_group(self, group_id: str, *, timeout_s: float | None = None, poll_s: float = 0.5,
                   progress: Any = None) -> dict[str, int]:
        """Until every job of the group is finished (or the timeout): returns the status counts."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            counts = self.group_counts(group_id)
            total = sum(counts.values())
            done = sum(counts.get(s, 0) for s in FINISHED)
            if progress is not None:
                progress("jobs", done, total)
            if done >= total:
                return counts
            if deadline is not None and time.monotonic() > deadline:
                return counts
            time.sleep(poll_s)


# ----------------------------------------------------------------------------------------- account lock
_local_locks: dict[str, threading.RLock] = {}
_local_guard = threading.Lock()
_held = threading.local()  # key -> depth, per thread: a job that runs a follow-up inline may lock again


@contextmanager
def account_lock(ledger: Ledger, tenant: str, account_id: str) -> Iterator[None]:
    """One writer of an account's derived state (metadata signals) at a time across processes: a PostgreSQL
    advisory lock, or a lock file beside the SQLite database. Whoever takes it last reads every document
    committed before, so concurrent workers end where one sequential ingest ends. Re-entrant per thread."""
    from extractors.models import stable_id

    key = stable_id(f"account-lock:{tenant}:{account_id}")
    depth: dict[str, int] = getattr(_held, "depth", None) or {}
    _held.depth = depth
    if depth.get(key):
        depth[key] += 1
        try:
            yield
        finally:
            depth[key] -= 1
        return
    with _local_guard:
        local = _local_locks.setdefault(key, threading.RLock())
    with local, _process_lock(ledger, key):
        depth[key] = 1
        try:
            yield
        finally:
            depth[key] = 0


@contextmanager
def _process_lock(ledger: Ledger, key: str) -> Iterator[None]:
    if ledger.dialect == "postgresql":
        from sqlalchemy import text

        lock_id = int(key[:15], 16)  # 60 bits: fits a signed bigint
        with ledger.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_id})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
                conn.commit()
        return
    import fcntl

    from sqlalchemy.engine import make_url

    db = make_url(ledger.url).database
    folder = Path(db).resolve().parent if db and db != ":memory:" else Path(os.environ.get("TMPDIR", "/tmp"))
    with open(folder / f".healthtrace-lock-{key[:16]}", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------- vectors of a job
def embed_pending(ledger: Ledger, vectors: Any, *, tenant: str, account_id: str, path: str | None = None,
                  documents: bool = True, batch_docs: int = 32) -> dict[str, int]:
    """Embed what the ledger marks as not indexed for one account (one file's documents and their signals when
    ``path`` is given; else the account's remaining signals too), upserted by deterministic id, then marked."""
    from sqlalchemy import and_

    from .ledger import DocumentRow, SignalRow
    from .vectors import index_batch

    d, s = DocumentRow.__table__, SignalRow.__table__
    stats = {"chunks_embedded": 0, "signals_embedded": 0}
    with ledger.read() as conn:
        q = select(d.c.id).where(d.c.tenant == tenant, d.c.account_id == account_id, d.c.indexed.is_(False))
        if path is not None:
            q = q.where(d.c.path == path)
        doc_ids = list(conn.scalars(q.order_by(d.c.id))) if documents else []
        sq = select(s.c.id).where(and_(s.c.tenant == tenant, s.c.account_id == account_id, s.c.indexed.is_(False)))
        if path is not None:
            file_docs = select(d.c.id).where(d.c.tenant == tenant, d.c.account_id == account_id, d.c.path == path)
            sq = sq.where(s.c.source_id.in_(file_docs))
        sig_ids = list(conn.scalars(sq.order_by(s.c.id)))
    for i in range(0, len(doc_ids), batch_docs):
        group = ledger.documents_by_ids(doc_ids[i : i + batch_docs])
        n, _ = index_batch(vectors, group, [])
        ledger.mark_indexed(documents=[doc.id for doc, _ in group])
        stats["chunks_embedded"] += n
    for i in range(0, len(sig_ids), batch_docs * 4):
        sigs = ledger.signals_by_ids(sig_ids[i : i + batch_docs * 4])
        index_batch(vectors, [], sigs)
        ledger.mark_indexed(signals=[sig.id for sig, _ in sigs])
        stats["signals_embedded"] += len(sigs)
    return stats


# ----------------------------------------------------------------------------------------- a queued ingest run
def aggregate_report(base: dict[str, Any] | None, results: Sequence[dict[str, Any]]) -> Any:
    """The summary of a queued ingest: what the caller loaded directly (accounts, usage, outcomes) plus every
    job's part (documents, signals, metadata signals, embeddings), as one :class:`IngestReport`."""
    from dataclasses import fields

    from .ingest import IngestReport

    rep = IngestReport()
    names = {f.name: f for f in fields(IngestReport)}
    for part in [base or {}] + [r.get("result") or {} for r in results]:
        for k, v in part.items():
            if k not in names:
                continue
            cur = getattr(rep, k)
            if isinstance(cur, list) and isinstance(v, list):
                cur.extend(str(x) for x in v)
            elif isinstance(cur, int) and isinstance(v, (int, float)):
                setattr(rep, k, cur + int(v))
    for r in results:  # a job that died or failed without a document report still says why
        if r.get("status") in PROBLEMS and not (r.get("result") or {}).get("failures"):
            rep.failures.append(f"{r.get('subject') or r.get('id')}: job {r.get('status')}: {r.get('error') or '?'}")
            if r.get("kind") == "ingest_file":
                rep.documents_failed += 1
    return rep


def finish_group_run(ledger: Ledger, run_id: int | None, group_id: str) -> bool:
    """When every job of the group is finished, the group's extraction run gets its summary (once: only a run
    still ``running`` is finished). Returns True when this call finished it."""
    from .ledger import RunRow

    if run_id is None:
        return False
    store = JobStore(ledger)
    counts = store.group_counts(group_id)
    if sum(counts.get(s, 0) for s in FINISHED) < sum(counts.values()):
        return False
    t = RunRow.__table__
    with ledger.read() as conn:
        row = conn.execute(select(t.c.status, t.c.meta).where(t.c.id == run_id)).first()
    if row is None or row.status != "running":
        return False
    rep = aggregate_report((row.meta or {}).get("base"), store.group_results(group_id))
    status = "failed" if any(counts.get(s) for s in PROBLEMS) else "ok"
    from extractors.redact import redact_any

    with ledger.write() as conn:
        n = conn.execute(update(t).where(t.c.id == run_id, t.c.status == "running").values(
            status=status, stats=redact_any(_jsonable(rep.to_dict())), finished_at=_now(),
            error=None if status == "ok" else f"{sum(counts.get(s, 0) for s in PROBLEMS)} job(s) failed")).rowcount
    return bool(n)


def others_unfinished(ledger: Ledger, group_id: str, account_id: str, kind: str, job_id: str) -> int:
    """How many other jobs of ``kind`` for this account in this group are still to do their work (``finishing``
    ones have done it). A job marks itself ``finishing`` before it asks, so of two jobs ending together at
    least the later one sees the other as done: the account's follow-up is queued at least once (and, by its
    deterministic id, sent at most once)."""
    q = select(func.count()).select_from(_t).where(
        _t.c.group_id == group_id, _t.c.account_id == account_id, _t.c.kind == kind, _t.c.id != job_id,
        _t.c.status.not_in(FINISHED + ("finishing",)))
    with ledger.read() as conn:
        return int(conn.scalar(q) or 0)
