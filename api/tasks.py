"""The job queue of the scaled deployment: a Celery app and its tasks (on only when HEALTHTRACE_BROKER_URL is set).

Tasks (queue in brackets): ingest one workspace file [ingest], ingest texts sent to the API [ingest], the
account-level metadata pass of a queued ingest [ingest], embed one file's chunks and signals [embed], rescore one
account [score], deliver one webhook delivery [webhooks]. Every task goes through the same services as a plain
run (memory/ingest.py's Ingestor, api/service.py's rescore, api/webhooks.py's sender), so a queued document is
stored exactly as a plain ingest stores it, and re-running a task adds nothing (ids are deterministic).

Delivery guarantees: messages are acknowledged after the task ran (``acks_late``) and requeued when the worker
process dies (``reject_on_worker_lost``; with Redis a message a SIGKILLed worker held comes back after
HEALTHTRACE_QUEUE_VISIBILITY_S), one message per worker slot at a time (prefetch 1). An error that may pass (the
database or vector store unreachable) is retried with exponential backoff up to HEALTHTRACE_TASK_MAX_RETRIES,
then the job is ``dead``; bad input makes it ``failed`` at once. Both are listed by ``healthtrace jobs --failed``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from celery import Celery

from api.container import Services, build_services, current_settings
from api.settings import Settings
from extractors.errors import HealthtraceError, StoreError

log = logging.getLogger("healthtrace.tasks")

QUEUES = ("ingest", "embed", "score", "webhooks")
_ROUTES = {
    "healthtrace.ingest_file": "ingest",
    "healthtrace.ingest_texts": "ingest",
    "healthtrace.account_meta": "ingest",
    "healthtrace.embed": "embed",
    "healthtrace.rescore": "score",
    "healthtrace.deliver_webhook": "webhooks",
}

app = Celery("healthtrace")


def configure(settings: Settings | None = None) -> Celery:
    """Point the app at the configured broker (idempotent; every entry point calls it)."""
    s = settings or current_settings()
    vis = float(s.queue_visibility_s)
    app.conf.update(
        broker_url=s.broker_url or "memory://",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # the jobs table is the result store
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="ingest",
        task_routes={name: {"queue": q} for name, q in _ROUTES.items()},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_transport_options={
            "visibility_timeout": vis,
            # look for messages of dead workers every min(10 s, visibility/2), scanning on every look
            "unacked_restore_interval": max(1, min(10, int(vis // 2) or 1)),
            "unacked_restore_throttle": 1,
        },
    )
    return app


configure()


def new_job_id() -> str:
    return uuid.uuid4().hex


def enabled(settings: Settings) -> bool:
    return bool(settings.broker_url)


# ----------------------------------------------------------------------------------------- worker resources
_res: dict[str, Any] = {}
_res_lock = threading.Lock()


def _services() -> Services:
    """This worker process's container (api/container.py): one ledger, vector memory and service."""
    with _res_lock:
        if "services" not in _res:
            _res["services"] = build_services()
        return _res["services"]


def _ledger() -> Any:
    return _services().ledger


def _vectors() -> Any:
    return _services().vectors


def reset_resources() -> None:
    """Forget the cached container (tests switch databases; a forked child starts afresh)."""
    with _res_lock:
        services = _res.pop("services", None)
        _res.clear()
    if services is not None:
        services.close()


def _jobs() -> Any:
    from memory.jobs import JobStore

    return JobStore(_ledger())


# ----------------------------------------------------------------------------------------- sending
def send(task: Any, job_id: str, **kwargs: Any) -> None:
    task.apply_async(kwargs=kwargs, task_id=job_id)


class _Retryable(Exception):
    pass


def _run(task: Any, kind: str, fn: Any, *, subject: str | None = None, after: Any = None) -> Any:
    """The life of one job: running (attempt + 1) -> done | failed (bad input) | retrying -> ... | dead.
    ``fn`` returns (result, status, error); ``after(status, mark)`` must call ``mark()``, which records the end:
    follow-up jobs are recorded before it, so a waiting caller never sees the group end early."""
    job_id = task.request.id
    settings = _services().settings
    n = task.request.retries

    def retry(e: BaseException, msg: str) -> Any:
        try:
            _jobs().finish(job_id, "retrying", error=msg)
        except HealthtraceError:  # the ledger itself is down: the retry is still scheduled
            pass
        log.warning("job %s (%s) attempt %d failed, retrying: %s", job_id, kind, n + 1, msg)
        return task.retry(exc=e, countdown=min(600.0, settings.task_backoff_s * 2 ** n),
                          max_retries=settings.task_max_retries)

    try:
        _jobs().start(job_id, kind=kind, subject=subject)
        result, status, error = fn()
    except (StoreError, OSError, ConnectionError, TimeoutError, _Retryable) as e:
        msg = f"{e.__class__.__name__}: {e}"
        if n < settings.task_max_retries:
            raise retry(e, msg) from e
        result, status, error = {}, "dead", f"gave up after {n + 1} attempts: {msg}"
    except HealthtraceError as e:  # bad input: retrying cannot help
        result, status, error = {}, "failed", str(e)
    except Exception as e:  # noqa: BLE001 - a bug on one job must not kill the worker; recorded as dead
        log.exception("job %s (%s) crashed", job_id, kind)
        result, status, error = {}, "dead", f"{e.__class__.__name__}: {e}"

    def mark() -> None:
        _jobs().finish(job_id, status, result=result, error=error)

    try:
        if after is not None:
            after(status, mark)
        else:
            mark()
    except StoreError as e:  # recording the end failed: run again (the work itself is idempotent)
        if n < settings.task_max_retries:
            raise retry(e, f"{e.__class__.__name__}: {e}") from e
        raise
    return {"status": status}


def _options(opts: dict[str, Any]) -> Any:
    from memory.ingest import IngestOptions

    keep = {k: v for k, v in opts.items()
            if k in ("extractor", "tenant", "max_file_bytes", "metadata_options", "extractor_options")}
    return IngestOptions(vectors=bool(opts.get("vectors", True)), **keep)


def _after_group(run_id: int | None, group_id: str | None) -> None:
    if group_id:
        from memory.jobs import finish_group_run

        try:
            finish_group_run(_ledger(), run_id, group_id)
        except HealthtraceError:
            log.warning("could not finish the run of group %s", group_id, exc_info=True)


def queue_delivery(d: Any, jobs: Any) -> None:
    """The API dispatcher's sender in queue mode: one job per claimed delivery attempt."""
    job_id = new_job_id()
    jobs.create(job_id, "deliver_webhook", subject=str(d.id), tenant=d.tenant)
    send(deliver_webhook, job_id, delivery_id=d.id, attempts=d.attempts)


# ----------------------------------------------------------------------------------------- tasks
@app.task(name="healthtrace.ingest_file", bind=True, acks_late=True, reject_on_worker_lost=True)
def ingest_file(self: Any, *, path: str, account_id: str, options: dict[str, Any], group_id: str | None = None,
                run_id: int | None = None) -> Any:
    """One workspace file (an mbox gives several documents): parse, extract, store, as a plain ingest does.
    The account's metadata pass runs once its last file is done (``account_meta``); embedding is a job too."""
    from memory.ingest import Ingestor
    from memory.jobs import JobStore, others_unfinished

    opts = _options(options)
    ledger = _ledger()
    job_id = self.request.id

    def work() -> tuple[dict[str, Any], str, str | None]:
        ing = Ingestor(ledger, opts, vectors=None)
        ing.ingest_documents(account_id, [Path(path)])
        rep = ing.report
        if opts.vectors and (rep.documents_added or rep.documents_unchanged):
            embed_id = new_job_id()
            if JobStore(ledger).create(embed_id, "embed", subject=path, group_id=group_id, tenant=opts.tenant,
                                       account_id=account_id):
                send(embed, embed_id, account_id=account_id, tenant=opts.tenant, path=path, group_id=group_id,
                     run_id=run_id)
        status = "failed" if rep.documents_failed else "done"
        return rep.to_dict(), status, "; ".join(rep.failures)[:2000] or None

    def after(status: str, mark: Any) -> None:
        if not group_id:
            mark()
            return
        # the last file of the account queues its metadata pass (see memory.jobs.others_unfinished)
        JobStore(ledger).finish(job_id, "finishing")
        if others_unfinished(ledger, group_id, account_id, "ingest_file", job_id) == 0:
            from extractors.models import stable_id

            meta_id = "meta_" + stable_id("account_meta", group_id, opts.tenant, account_id)[:27]
            if JobStore(ledger).create(meta_id, "account_meta", subject=account_id, group_id=group_id,
                                       tenant=opts.tenant, account_id=account_id):
                send(account_meta, meta_id, account_id=account_id, options=options, group_id=group_id,
                     run_id=run_id)
        mark()

    out = _run(self, "ingest_file", work, subject=path, after=after)
    _after_group(run_id, group_id)
    return out


@app.task(name="healthtrace.account_meta", bind=True, acks_late=True, reject_on_worker_lost=True)
def account_meta(self: Any, *, account_id: str, options: dict[str, Any], group_id: str | None = None,
                 run_id: int | None = None) -> Any:
    """The account-level metadata signals (silence, sponsor gone quiet ...) from the account's whole document
    set, under the account's lock; then those signals are embedded."""
    from memory.ingest import Ingestor
    from memory.jobs import account_lock, embed_pending

    opts = _options(options)
    ledger = _ledger()

    def work() -> tuple[dict[str, Any], str, str | None]:
        vectors = _vectors() if opts.vectors else None
        with account_lock(ledger, opts.tenant, account_id):
            ing = Ingestor(ledger, opts, vectors=vectors)
            ing.run_metadata(account_id)
            rep = ing.report
            out = {"metadata_signals_added": rep.metadata_signals_added,
                   "metadata_signals_removed": rep.metadata_signals_removed, "failures": rep.failures}
            if vectors is not None:
                out.update(embed_pending(ledger, vectors, tenant=opts.tenant, account_id=account_id, documents=False))
        return out, "done", None

    out = _run(self, "account_meta", work, subject=account_id)
    _after_group(run_id, group_id)
    return out


@app.task(name="healthtrace.embed", bind=True, acks_late=True, reject_on_worker_lost=True)
def embed(self: Any, *, account_id: str, tenant: str, path: str | None = None, group_id: str | None = None,
          run_id: int | None = None) -> Any:
    """Embed one file's chunks and signals (or an account's pending ones) into the vector store, by id."""
    from memory.jobs import embed_pending

    def work() -> tuple[dict[str, Any], str, str | None]:
        return embed_pending(_ledger(), _vectors(), tenant=tenant, account_id=account_id, path=path), "done", None

    out = _run(self, "embed", work, subject=path or account_id)
    _after_group(run_id, group_id)
    return out


def _service() -> Any:
    return _services().health


@app.task(name="healthtrace.ingest_texts", bind=True, acks_late=True, reject_on_worker_lost=True)
def ingest_texts(self: Any, *, tenant: str, items: list[list[Any]]) -> Any:
    """Documents sent to ``POST /v1/documents`` (or uploaded): the API's own parse and ingest service, then
    the touched accounts are rescored (jobs on the score queue) and the new documents embedded (embed jobs)."""
    from api.routes.ingest import _parse
    from extractors.redact import redact
    from memory.ingest import Ingestor
    from memory.jobs import JobStore, account_lock

    def work() -> tuple[dict[str, Any], str, str | None]:
        from datetime import datetime

        svc = _service()
        docs = [_parse(text, kind, path, aid, tenant, datetime.fromisoformat(when) if when else None)
                for text, kind, path, aid, when in items]
        svc._require_accounts(tenant, {d.account_id for d in docs if d.account_id})
        ing = Ingestor(svc.ledger, svc.ingest_options(tenant))
        ing.ingest_parsed(docs)
        touched = list(dict.fromkeys(d.account_id for d in docs if d.account_id))
        for aid in touched:
            with account_lock(svc.ledger, tenant, aid):
                ing.run_metadata(aid)
        rep = ing.report
        jobs = JobStore(svc.ledger)
        follow: list[str] = []
        for aid in touched:
            rid = new_job_id()
            jobs.create(rid, "rescore", subject=aid, tenant=tenant, account_id=aid)
            send(rescore, rid, tenant=tenant, account_id=aid)
            follow.append(rid)
            if rep.documents_added or rep.metadata_signals_added:
                eid = new_job_id()
                jobs.create(eid, "embed", subject=aid, tenant=tenant, account_id=aid)
                send(embed, eid, tenant=tenant, account_id=aid)
        result = {"received": len(docs), "added": rep.documents_added,
                  "signals_added": rep.signals_added + rep.metadata_signals_added, "failed": rep.documents_failed,
                  "failures": [redact(f) for f in rep.failures[:100]], "rescore_jobs": follow}
        return result, "failed" if rep.documents_failed and not rep.documents_added else "done", \
            "; ".join(rep.failures)[:2000] or None

    return _run(self, "ingest_texts", work, subject=f"{len(items)} document(s)")


@app.task(name="healthtrace.rescore", bind=True, acks_late=True, reject_on_worker_lost=True)
def rescore(self: Any, *, tenant: str, account_id: str) -> Any:
    """Score one account now, store the snapshot and write its score/tier events (the API's webhook dispatcher
    picks them up from the ledger)."""

    def work() -> tuple[dict[str, Any], str, str | None]:
        r = _service().rescore(tenant, account_id)
        return {"account_id": account_id, "score": r.score.score, "tier": r.score.tier,
                "previous": r.previous.score if r.previous else None, "events": r.events}, "done", None

    return _run(self, "rescore", work, subject=account_id)


@app.task(name="healthtrace.deliver_webhook", bind=True, acks_late=True, reject_on_worker_lost=True)
def deliver_webhook(self: Any, *, delivery_id: int, attempts: int | None = None) -> Any:
    """Send one claimed delivery (signed, SSRF-checked, recorded with backoff like the in-process sender)."""

    def work() -> tuple[dict[str, Any], str, str | None]:
        from api.webhooks import dispatcher_for

        d = dispatcher_for(_service().store, _ledger(), _services().settings)
        try:
            out = d.deliver_one(delivery_id, attempts=attempts)
        finally:
            d.client.close()
        if out is not None and out.status == "pending":  # not delivered yet: the dispatcher retries it when due
            return {"delivery_id": delivery_id, "status": "pending", "attempts": out.attempts}, "done", None
        return {"delivery_id": delivery_id, "status": out.status if out else "skipped",
                "attempts": out.attempts if out else 0}, "done", None

    return _run(self, "deliver_webhook", work, subject=str(delivery_id))
