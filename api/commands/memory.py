"""``healthtrace ingest | reindex | search | stats``: the account memory (ledger + vector store)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer


class Format(str, Enum):
    table = "table"
    json = "json"


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr (only on a terminal: scripts and logs get the summary alone)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total or None)
            progress.update(tasks[stage], completed=done, total=total or None)

        yield update


def _open(no_vectors: bool = False) -> tuple[Any, Any, Any]:
    """(services, ledger, vectors) from the container; closing the ledger closes what it opened."""
    from api.commands.common import services

    svc = services()
    return svc, svc.ledger, None if no_vectors else svc.vectors


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    from extractors.dates import parse_day

    return parse_day(value, option)


def _print_report(report: Any, fmt: Format) -> None:
    from extractors.redact import redact_any

    data = redact_any(report.to_dict())
    report.problems, report.failures = data["problems"], data["failures"]
    if fmt is Format.json:
        print(json.dumps(data, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="ingest", show_header=True)
        t.add_column("what")
        t.add_column("added", justify="right")
        t.add_column("unchanged", justify="right")
        t.add_column("failed", justify="right")
        t.add_row("accounts (new or changed)", str(report.accounts_changed), "", "")
        t.add_row("usage rows", str(report.usage_added), str(report.usage_unchanged), "")
        t.add_row("outcomes", str(report.outcomes_added), str(report.outcomes_unchanged), "")
        t.add_row("documents", str(report.documents_added), str(report.documents_unchanged), str(report.documents_failed))
        t.add_row("signals", str(report.signals_added), "", "")
        t.add_row("metadata signals", f"{report.metadata_signals_added} (-{report.metadata_signals_removed})", "", "")
        t.add_row("chunks embedded", str(report.chunks_embedded), "", "")
        t.add_row("signals embedded", str(report.signals_embedded), "", "")
        Console().print(t)
        if not report.changed and not report.documents_failed:
            print("nothing new: everything was already ingested")
    for items, label, more in ((report.problems, "skipped row", "bad rows"), (report.failures, "failed", "failed documents"),
                               (getattr(report, "warnings", []), "warning", "warnings")):
        for item in items[:200]:
            print(f"{label}: {item}", file=sys.stderr)
        if len(items) > 200:
            print(f"... and {len(items) - 200} more {more}", file=sys.stderr)


def _score_after_ingest(svc: Any, ledger: Any, workspace: Path | None,
                        account_ids: list[str] | None = None) -> tuple[int, int]:
    """Keep the workspace's metrics.yaml for the tenant, print the mapping's warnings once, and store a score of
    every account as of its latest data."""
    from api.commands.scoring import print_mapping_warnings
    from memory.metric_files import save_tenant_mapping, workspace_mapping_path
    from memory.scoring_inputs import score_latest

    settings = svc.settings
    tenant = "default"
    if workspace is not None:
        src = workspace_mapping_path(workspace)
        if src is not None:
            save_tenant_mapping(settings.home, tenant, src)
    model = svc.model(tenant=tenant)
    mapping = svc.mapping(tenant)
    n, alerts, mm = score_latest(ledger, model, tenant=tenant, vendor_domains=tuple(settings.vendor_domains),
                                 unresponsive_days=settings.unresponsive_days, mapping_file=mapping,
                                 drop_points=settings.alert_drop_points, account_ids=account_ids)
    print_mapping_warnings(mm)
    return n, alerts


def ingest_command(
    files: Annotated[list[Path] | None, typer.Argument(help="Single documents to ingest (needs --account).")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Workspace folder (accounts.csv, usage.csv, outcomes.csv, documents/).")] = None,
    account: Annotated[str | None, typer.Option(help="Account the FILES belong to (must exist).")] = None,
    create_account: Annotated[bool, typer.Option("--create-account", help="Create --account when it is new.")] = False,
    extractor: Annotated[str | None, typer.Option(help="Extractor: offline, rules, learned, llm, hybrid (default: HEALTHTRACE_EXTRACTOR, offline).")] = None,
    no_vectors: Annotated[bool, typer.Option("--no-vectors", help="Skip the vector store (ledger only).")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="Summary format.")] = Format.table,
    no_score: Annotated[bool, typer.Option("--no-score", help="Do not score the accounts after the ingest.")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="With --workspace: queue one job per document file for "
                                        "`healthtrace worker` processes (HEALTHTRACE_BROKER_URL); accounts, usage "
                                        "and outcomes load here.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="With --queue: wait until every job is done, then print "
                                       "the summary a plain ingest prints.")] = False,
) -> None:
    """Load a workspace or single documents into the ledger and the vector memory, then score every account as
    of its latest data (the metric mapping's warnings are printed once). Re-running adds nothing."""
    from extractors.errors import InputError
    from memory.ingest import ingest_files, ingest_workspace

    if (workspace is None) == (not files):
        raise InputError("give either --workspace DIR or FILE... --account ID")
    if files and not account:
        raise InputError("single documents need --account ID")
    if (queue or wait) and workspace is None:
        raise InputError("--queue works with --workspace DIR")
    if wait and not queue:
        raise InputError("--wait goes with --queue")
    svc, ledger, vectors = _open(no_vectors or queue)  # queued: the workers write the vectors
    settings = svc.settings
    options = svc.ingest_options(  # the API's ingest uses the same options (HEALTHTRACE_EXTRACTOR by default)
        extractor=extractor, vectors=not no_vectors, create_account=create_account,
        max_files=settings.max_files_per_call if files else 200_000)
    scored = None
    try:
        with _progress(True) as progress:
            if queue:
                from api.commands.jobs import queued_ingest

                report, group, n = queued_ingest(settings, ledger, workspace, options, wait=wait,  # type: ignore[arg-type]
                                                 progress=progress)
                if not wait:
                    print(f"queued {n} document file(s) as group {group}; follow with `healthtrace jobs --group "
                          f"{group}`", file=sys.stderr)
            elif workspace is not None:
                report = ingest_workspace(ledger, workspace, options, vectors=vectors, progress=progress)
            else:
                report = ingest_files(ledger, files or [], account or "", options, vectors=vectors, progress=progress)
        if not no_score and (wait or not queue):  # queued without --wait: the documents are not in yet
            scored = _score_after_ingest(svc, ledger, workspace, None if workspace is not None else [account])
    finally:
        svc.close()
    _print_report(report, format)
    if scored is not None:
        print(f"{scored[0]} account(s) scored as of their latest data, {scored[1]} new alert(s)", file=sys.stderr)
    if report.documents_failed:  # the others were stored; the exit code still says something failed
        print(f"error: {report.documents_failed} document(s) failed (listed above); the others were stored",
              file=sys.stderr)
        raise typer.Exit(1)


def reindex_command(
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Rebuild the vector store from the ledger (the source of truth)."""
    from memory.ingest import reindex

    svc, ledger, vectors = _open()
    try:
        with _progress(True) as progress:
            stats = reindex(ledger, vectors, progress=progress)
    finally:
        svc.close()
    if format is Format.json:
        print(json.dumps(stats))
    else:
        print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in stats.items()))


def search_command(
    account: Annotated[str, typer.Argument(help="Account id.")],
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    since: Annotated[str | None, typer.Option(help="Only evidence dated on/after YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Only evidence dated on/before YYYY-MM-DD.")] = None,
    type: Annotated[str | None, typer.Option("--type", "-t", help="A signal type (signals only) or a source kind such as email (passages only).")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=200, help="How many results.")] = 10,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Cited passages and signals of one account, best first."""
    from memory.search import search_evidence

    d_since = _parse_date(since, "--since")
    d_until = _parse_date(until, "--until")
    svc, ledger, vectors = _open()
    try:
        results = search_evidence(ledger, vectors, account, query, since=d_since, until=d_until, type=type, k=k)
    finally:
        svc.close()
    if format is Format.json:
        print(json.dumps(results, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{account}: {query}", show_lines=True)
    for col in ("#", "score", "kind", "type", "date", "source", "evidence"):
        t.add_column(col, overflow="fold")
    for i, r in enumerate(results, 1):
        name = Path(r["source_path"]).name if r.get("source_path") else (r.get("source_id") or "")[:12]
        src = f"{name} [{r['start']}:{r['end']}]" if r.get("start") is not None else name
        t.add_row(str(i), f"{r['score']:.3f}", r["kind"], r.get("type") or "", (r.get("date") or "")[:10], src,
                  (r.get("quote") or r.get("text") or "")[:400])
    Console().print(t)
    if not results:
        print("no matching evidence", file=sys.stderr)


def stats_command(
    no_vectors: Annotated[bool, typer.Option("--no-vectors", help="Ledger counts only.")] = False,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Row counts of the ledger and the vector store."""
    svc, ledger, vectors = _open(no_vectors)
    try:
        counts = ledger.counts()
        runs = counts.pop("extraction_runs", 0)
        if vectors is not None:
            counts.update(vectors.counts())
        migrations = ledger.applied_migrations()
    finally:
        svc.close()
    if format is Format.json:
        print(json.dumps({"counts": counts, "ingest_runs": runs, "migrations": migrations}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="healthtrace memory")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in counts.items():
        t.add_row(name, str(n))
    Console().print(t)
    print(f"ingest runs: {runs}; schema: {migrations[-1] if migrations else 'empty'}")


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_command)
    app.command("reindex")(reindex_command)
    app.command("search")(search_command)
    app.command("stats")(stats_command)
