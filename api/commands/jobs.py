"""``healthtrace worker`` and ``healthtrace jobs``: the job queue of the scaled deployment (HEALTHTRACE_BROKER_URL);
also the queued path of ``healthtrace ingest --workspace DIR --queue [--wait]``."""

from __future__ import annotations

import json
import os
import socket
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer


class Pool(str, Enum):
    prefork = "prefork"
    threads = "threads"
    solo = "solo"


class Format(str, Enum):
    table = "table"
    json = "json"


def _require_broker(settings: Any) -> None:
    from extractors.errors import ConfigError

    if not settings.broker_url:
        raise ConfigError("no job queue configured: set HEALTHTRACE_BROKER_URL (e.g. redis://127.0.0.1:6379/0)")


def queued_ingest(settings: Any, ledger: Any, workspace: Path, options: Any, *, wait: bool,
                  progress: Any = None, timeout_s: float | None = None) -> tuple[Any, str, int]:
    """Load accounts, usage and outcomes directly (bulk, idempotent), then queue one job per document file.
    With ``wait``: until every job (and its follow-ups: metadata pass, embedding) is finished; returns the same
    report a plain ingest gives. Returns (report, group id, jobs queued)."""
    from api import tasks
    from extractors.base import get_extractor
    from memory.ingest import IngestReport
    from memory.jobs import JobStore, aggregate_report, finish_group_run
    from memory.workspace import load_workspace

    _require_broker(settings)
    tasks.configure(settings)
    root = Path(workspace).resolve()  # workers read the files: the same absolute path on a shared file system
    ws = load_workspace(root, max_documents=options.max_files)
    rep = IngestReport()
    rep.problems.extend(str(p) for p in ws.problems)
    tenant = options.tenant
    accounts = [a.model_copy(update={"tenant": tenant}) for a in ws.accounts.values()]
    rep.accounts_changed = ledger.upsert_accounts(accounts)
    rep.usage_added = ledger.add_usage(ws.usage, tenant=tenant)
    rep.usage_unchanged = len(ws.usage) - rep.usage_added
    rep.outcomes_added = ledger.add_outcomes(ws.outcomes, tenant=tenant)
    rep.outcomes_unchanged = len(ws.outcomes) - rep.outcomes_added
    ex = get_extractor(options.extractor, **options.extractor_options)
    group_id = tasks.new_job_id()
    files = [(aid, str(p)) for aid, paths in ws.documents.items() for p in paths]
    run_id = ledger.start_run(ex.name, ex.version, workspace=str(root), vectors=options.vectors, queued=True,
                              group=group_id, jobs=len(files), base=rep.to_dict())
    store = JobStore(ledger)
    job_ids = [tasks.new_job_id() for _ in files]
    store.create_many([(j, "ingest_file", path) for j, (_, path) in zip(job_ids, files)], group_id=group_id,
                      tenant=tenant, accounts=[aid for aid, _ in files])
    opts = {"extractor": options.extractor, "tenant": tenant, "max_file_bytes": options.max_file_bytes,
            "metadata_options": dict(options.metadata_options), "vectors": options.vectors,
            "extractor_options": {k: str(v) for k, v in options.extractor_options.items()}}
    for job_id, (aid, path) in zip(job_ids, files):
        tasks.send(tasks.ingest_file, job_id, path=path, account_id=aid, options=opts, group_id=group_id,
                   run_id=run_id)
    if not files:
        finish_group_run(ledger, run_id, group_id)
        return rep, group_id, 0
    if not wait:
        return rep, group_id, len(files)
    store.wait_group(group_id, timeout_s=timeout_s, progress=progress)
    finish_group_run(ledger, run_id, group_id)
    return aggregate_report(rep.to_dict(), store.group_results(group_id)), group_id, len(files)


def worker_command(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=256,
                                             help="Jobs at a time (processes with the prefork pool).")] = 1,
    queues: Annotated[str, typer.Option("--queues", "-Q", help="Comma list of queues to take jobs from.")]
    = "ingest,embed,score,webhooks",
    pool: Annotated[Pool, typer.Option(help="prefork: one process per slot (CPU-bound extraction); solo: in this "
                                            "process; threads.")] = Pool.prefork,
    name: Annotated[str | None, typer.Option(help="Worker node name (default: healthtrace-PID@HOST).")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "info",
) -> None:
    """Run a queue worker: takes ingest, embedding, rescoring and webhook jobs from HEALTHTRACE_BROKER_URL."""
    from api import tasks
    from api.container import current_settings
    from extractors.errors import InputError

    settings = current_settings()
    _require_broker(settings)
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(wanted) - set(tasks.QUEUES))
    if not wanted or unknown:
        raise InputError(f"--queues: unknown queue(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(tasks.QUEUES)}")
    from api.container import build_services

    build_services(settings).ledger.close()  # migrations (the jobs table) before the first job
    app = tasks.configure(settings)
    node = name or f"healthtrace-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(["worker", "-Q", ",".join(wanted), "-c", str(concurrency), "-P", pool.value, "-n", node,
                     "--without-gossip", "--without-mingle", "-l", loglevel])


def jobs_command(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed (bad input) and dead (retries ran out) jobs.")]
    = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first.")] = 50,
    group: Annotated[str | None, typer.Option(help="Only the jobs of one `ingest --queue` call.")] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """List recent jobs of the queue and where they stand (with --failed: the dead-letter list)."""
    from api.container import build_services
    from memory.jobs import JobStore

    ledger = build_services().ledger
    try:
        rows = JobStore(ledger).list(failed=failed, limit=limit, group_id=group)
    finally:
        ledger.close()
    if format is Format.json:
        print(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="dead-letter jobs (failed or dead)" if failed else "jobs", show_header=True)
    for col in ("id", "kind", "status", "attempts", "subject", "finished", "error"):
        t.add_column(col)
    for r in rows:
        subject = str(r.get("subject") or "")
        t.add_row(r["id"], r["kind"], r["status"], str(r["attempts"]), subject[-60:],
                  str(r["finished_at"] or "")[:19], (r.get("error") or "")[:80])
    Console().print(t)
    if not rows:
        print("no failed jobs" if failed else "no jobs")


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
    app.command("jobs")(jobs_command)
