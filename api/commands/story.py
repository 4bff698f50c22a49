"""``healthtrace why | recap | demo``: narrated score changes, account recaps, and the bundled demo.

Scores come from stored snapshots when one exists for the exact date, else they are computed from the ledger
with the scorer (nothing is saved by ``why``/``recap``); ``demo`` ingests the bundled workspace into the store,
saves monthly snapshots and writes a static HTML report.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from extractors.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from api.settings import Settings
    from extractors.models import Account, HealthScore, UsageRow
    from memory.ledger import Ledger
    from scoring.model import ScoringModel
    from extractors.models import Narrative
    from scoring.playbooks import Playbooks

DEMO_VENDOR_DOMAINS = ("lumenly.example",)  # the demo's vendor: its people are not customer contacts
DEFAULT_REPORT_DIR = Path("healthtrace-report")
MAX_DAYS = 3650


class TextOrJson(str, Enum):
    text = "text"
    json = "json"


class Audience(str, Enum):
    csm = "csm"
    exec = "exec"


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    from extractors.dates import parse_day

    return parse_day(value, option)


# ----------------------------------------------------------------------------------------- scores
def score_from_ledger(
    ledger: Ledger, account: Account, model: ScoringModel, as_of: date, *, vendor_domains: tuple[str, ...] = (),
    tenant: str = "default", rows: list[UsageRow] | None = None, mapping_file: Any = None,
) -> HealthScore | None:
    """Score one account from the stored memory as the batch scorer does (None before the account started).

    ``rows``: the account's usage up to ``as_of`` when the caller has already read it (saves a second query)."""
    from memory.scoring_inputs import inputs_for_account
    from scoring.batch import score_inputs

    inputs = inputs_for_account(ledger, account, as_of, vendor_domains=vendor_domains, tenant=tenant, rows=rows,
                                model=model, mapping_file=mapping_file)
    for res in score_inputs(inputs, model, [as_of]):
        return res.to_health_score()
    return None


def resolve_score(
    ledger: Ledger, account: Account, model: ScoringModel, as_of: date, *, vendor_domains: tuple[str, ...] = (),
    tenant: str = "default", mapping_file: Any = None,
) -> HealthScore:
    """The stored snapshot of that exact date, else a fresh score from the ledger, else the latest earlier one."""
    aid = account.account_id
    snap = ledger.snapshot_at(aid, as_of, model_id=model.id, tenant=tenant)
    if snap is not None and snap.as_of == as_of:
        return snap
    rows = ledger.usage_for(aid, until=as_of, tenant=tenant)
    if rows or ledger.signals_for(aid, until=as_of, tenant=tenant):  # any input at all, verified or not
        fresh = score_from_ledger(ledger, account, model, as_of, vendor_domains=vendor_domains, tenant=tenant,
                                  rows=rows, mapping_file=mapping_file)
        if fresh is not None:
            return fresh
    if snap is not None:
        return snap
    raise NotFoundError(
        f"no score for account {aid!r} on or before {as_of.isoformat()}: ingest its data or run "
        "`healthtrace score` first"
    )


def _override(ledger: Ledger, account_id: str, tenant: str, on: date) -> dict[str, Any] | None:
    """The CSM's latest override dated on or before ``on`` (shown beside the computed score)."""
    from memory.feedback import FeedbackStore
    from scoring.overrides import latest_override

    return latest_override(FeedbackStore(ledger).overrides(account_id=account_id, tenant=tenant), on)


def _json_override(ov: dict[str, Any] | None) -> dict[str, Any] | None:
    if ov is None:
        return None
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in ov.items()}


def _mapping(settings: Any, tenant: str) -> Any:
    """The tenant's metric mapping file kept by ``ingest --workspace`` (None: aliases and unit detection only)."""
    from memory.metric_files import tenant_mapping

    return tenant_mapping(settings.home, tenant)


def _latest_date(ledger: Ledger, aid: str, model_id: str, tenant: str) -> date:
    snaps = ledger.snapshots_for(aid, model_id=model_id, tenant=tenant)
    return snaps[-1].as_of if snaps else date.today()  # the edge may read the clock; the core never does


def source_kinds(ledger: Ledger, aid: str, tenant: str = "default") -> dict[str, str]:
    return {d.id: d.kind for d in ledger.documents_for(aid, tenant)}


def _context(
    model_file: Path | None, playbooks_file: Path | None, tenant: str = "default"
) -> tuple[Settings, ScoringModel, Playbooks, tuple[str, ...]]:
    from api.container import current_settings
    from api.commands.common import resolve_model
    from scoring.playbooks import load_playbooks

    settings = current_settings()
    model = resolve_model(model_file, settings, tenant=tenant)
    playbooks = load_playbooks(playbooks_file)
    return settings, model, playbooks, tuple(settings.vendor_domains)


def _driver_lines(narrative: Narrative, kinds: dict[str, str]) -> list[str]:
    from scoring.wording import source_label

    from scoring.narrate import notable
    from scoring.wording import short_quote

    lines = []
    shown = notable(narrative.drivers)
    for d in shown:
        line = f"  {d.points:+6.1f}  {d.description}"
        for c in d.citations[:1]:
            when = c.occurred_at.date().isoformat() if c.occurred_at else "undated"
            who = f", {c.speaker}" if c.speaker else ""
            line += f"\n          {source_label(c, kinds)}, {when}{who}: \"{short_quote(c.quote)}\""
        lines.append(line)
    hidden = sum(d.points for d in narrative.drivers if d not in shown)
    other = narrative.other_points + hidden
    if abs(other) >= 0.05:
        lines.append(f"  {other:+6.1f}  smaller changes")
    return lines


# ----------------------------------------------------------------------------------------- why
def why_command(
    account: Annotated[str, typer.Argument(help="Account id.")],
    since: Annotated[str | None, typer.Option(help="Compare the latest score with this date (YYYY-MM-DD).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start date (YYYY-MM-DD); with --to.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End date (YYYY-MM-DD); default the latest snapshot.")] = None,
    format: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
    playbooks: Annotated[Path | None, typer.Option(help="Playbook file (YAML); default the bundled one.")] = None,
    model: Annotated[Path | None, typer.Option(help="Model file; default HEALTHTRACE_MODEL_FILE or bundled.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
) -> None:
    """Why did ACCOUNT's score change? Drivers by impact, with citations, the tier move and the next action."""
    from api.container import build_services
    from scoring.narrate import narrate, narrative_json

    if since is not None and from_ is not None:
        raise InputError("give either --since DATE or --from DATE [--to DATE], not both")
    settings, scoring_model, pb, vendors = _context(model, playbooks, tenant)
    ledger = build_services(settings).ledger
    try:
        acc = ledger.get_account(account, tenant)
        end = _day(to, "--to") or _latest_date(ledger, account, scoring_model.id, tenant)
        start = _day(since, "--since") or _day(from_, "--from") or end - timedelta(days=30)
        if start >= end:
            raise InputError(f"the start date {start.isoformat()} must be before the end date {end.isoformat()}")
        if (end - start).days > MAX_DAYS:
            raise InputError(f"the period is over {MAX_DAYS} days")
        if acc.start_date is not None and start < acc.start_date:
            start = acc.start_date
        after = resolve_score(ledger, acc, scoring_model, end, vendor_domains=vendors, tenant=tenant,
                               mapping_file=_mapping(settings, tenant))
        before = resolve_score(ledger, acc, scoring_model, start, vendor_domains=vendors, tenant=tenant,
                               mapping_file=_mapping(settings, tenant))
        kinds = source_kinds(ledger, account, tenant)
        override = _override(ledger, account, tenant, end)
    finally:
        ledger.close()
    n = narrate(before, after, account=acc, playbooks=pb, source_kinds=kinds)
    if format is TextOrJson.json:
        data = narrative_json(n)
        data["override"] = _json_override(override)
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    print(n.text)
    if override is not None:
        from scoring.overrides import override_sentence

        print(override_sentence(override, after.score))
    if n.drivers:
        print()
        print(f"Drivers ({n.from_as_of.isoformat()} -> {n.to_as_of.isoformat()}, {n.delta:+.1f} points):")
        print("\n".join(_driver_lines(n, kinds)))


# ----------------------------------------------------------------------------------------- recap
def recap_command(
    account: Annotated[str, typer.Argument(help="Account id.")],
    days: Annotated[int, typer.Option(min=1, max=MAX_DAYS, help="Period the recap covers, in days.")] = 30,
    audience: Annotated[Audience, typer.Option(help="csm (full detail) or exec (short email).")] = Audience.csm,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Recap date (YYYY-MM-DD); default the latest snapshot.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the Markdown to this file instead of stdout.")] = None,
    playbooks: Annotated[Path | None, typer.Option(help="Playbook file (YAML); default the bundled one.")] = None,
    model: Annotated[Path | None, typer.Option(help="Model file; default HEALTHTRACE_MODEL_FILE or bundled.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
) -> None:
    """A Markdown recap of ACCOUNT for a CSM or an executive: score, changes, evidence, risks, next steps."""
    from api.container import build_services
    from scoring.narrate import narrate, narrative_json
    from scoring.recap import render_recap

    settings, scoring_model, pb, vendors = _context(model, playbooks, tenant)
    ledger = build_services(settings).ledger
    try:
        acc = ledger.get_account(account, tenant)
        end = _day(as_of, "--as-of") or _latest_date(ledger, account, scoring_model.id, tenant)
        start = end - timedelta(days=days)
        current = resolve_score(ledger, acc, scoring_model, end, vendor_domains=vendors, tenant=tenant,
                               mapping_file=_mapping(settings, tenant))
        previous = None
        if acc.start_date is None or start >= acc.start_date:
            try:
                previous = resolve_score(ledger, acc, scoring_model, start, vendor_domains=vendors, tenant=tenant,
                               mapping_file=_mapping(settings, tenant))
            except NotFoundError:
                previous = None
        kinds = source_kinds(ledger, account, tenant)
        override = _override(ledger, account, tenant, end)
    finally:
        ledger.close()
    n = narrate(previous, current, account=acc, playbooks=pb, source_kinds=kinds) if previous is not None else None
    md = render_recap(acc, current, n, audience=audience.value, days=days, source_kinds=kinds,  # type: ignore[arg-type]
                      override=override)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md, encoding="utf-8")
        print(f"recap written to {out}", file=sys.stderr)
    else:
        sys.stdout.write(md)


# ----------------------------------------------------------------------------------------- demo
def demo_workspace() -> Path:
    """The bundled demo workspace (package data of ``api``)."""
    from importlib import resources

    root = Path(str(resources.files("api").joinpath("demo_data", "workspace")))
    if not (root / "accounts.csv").exists():
        raise NotFoundError(f"the bundled demo workspace is missing at {root}; reinstall healthtrace")
    return root


def month_ends(first: date, last: date) -> list[date]:
    """Last day of every month from ``first``'s month to ``last``'s."""
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append(date(ny, nm, 1) - timedelta(days=1))
        y, m = ny, nm
    return out


def run_demo(
    out_dir: Path, *, vectors: bool = False, top: int = 4, months_back: int = 5, progress: Any = None,
) -> dict[str, Any]:
    """The demo flow; returns everything it showed as data. Prints nothing (the command does)."""
    from api.container import build_services
    from memory.ingest import IngestOptions, ingest_workspace
    from memory.workspace import load_workspace
    from memory.scoring_inputs import inputs_from_ledger, store_results
    from scoring.batch import score_inputs
    from scoring.model import load_model
    from scoring.narrate import narrate, narrative_json
    from scoring.playbooks import load_playbooks
    from scoring.report import ReportEntry, render_report

    t0 = time.perf_counter()
    services = build_services()
    settings = services.settings
    root = demo_workspace()
    ws = load_workspace(root, with_documents=False)
    days = sorted({u.date for u in ws.usage})
    dates = month_ends(days[0], days[-1])
    vendors = tuple(dict.fromkeys((*DEMO_VENDOR_DOMAINS, *settings.vendor_domains)))
    model = load_model(settings.model_file)
    playbooks = load_playbooks()
    ledger = services.ledger
    timings: dict[str, float] = {}
    try:
        vector_store = services.vectors if vectors else None
        options = IngestOptions(
            vectors=vectors,
            max_file_bytes=settings.max_file_bytes,
            metadata_options={"unresponsive_days": settings.unresponsive_days, "vendor_domains": list(vendors)},
        )
        report = ingest_workspace(ledger, root, options, vectors=vector_store, progress=progress)
        timings["ingest_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        inputs = inputs_from_ledger(ledger, vendor_domains=vendors, until=dates[-1],
                                    unresponsive_days=settings.unresponsive_days, model=model)
        results = list(score_inputs(inputs, model, dates))
        saved, alerts = store_results(ledger, results, drop_points=settings.alert_drop_points,
                                      extractor_versions=inputs.extractor_versions)
        timings["score_s"] = time.perf_counter() - t1
        histories: dict[str, list[HealthScore]] = {}
        for r in sorted(results, key=lambda r: (r.account_id, r.as_of)):
            histories.setdefault(r.account_id, []).append(r.to_health_score())
        kinds: dict[str, str] = {}
        for aid in inputs.accounts:
            kinds.update(source_kinds(ledger, aid))
    finally:
        ledger.close()

    t2 = time.perf_counter()
    compare_from = dates[max(0, len(dates) - 1 - months_back)]
    entries: list[ReportEntry] = []
    narratives = []
    for aid, acc in sorted(inputs.accounts.items()):
        hist = histories.get(aid, [])
        if not hist:
            entries.append(ReportEntry(account=acc, history=[]))
            continue
        before = next((s for s in reversed(hist) if s.as_of <= compare_from), hist[0])
        n = narrate(before, hist[-1], account=acc, playbooks=playbooks, source_kinds=kinds)
        narratives.append(n)
        entries.append(ReportEntry(account=acc, history=hist, narrative=n))
    portfolio = sorted(
        ({"account_id": e.account.account_id, "name": e.account.name, "score": round(e.history[-1].score, 2),
          "tier": e.history[-1].tier, "as_of": e.history[-1].as_of.isoformat(),
          "change": round(e.narrative.delta, 2) if e.narrative else None,
          "renewal": e.account.end_date.isoformat() if e.account.end_date else None,
          "action": e.narrative.recommendation.action if e.narrative and e.narrative.recommendation else None}
         for e in entries if e.history),
        key=lambda r: (r["score"], r["account_id"]),
    )
    biggest = sorted(narratives, key=lambda n: (-abs(n.delta), n.account_id))[:top]
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "index.html"
    html_path.write_text(
        render_report(entries, title="healthtrace demo portfolio",
                      subtitle=f"{len(entries)} accounts, monthly scores {dates[0].isoformat()} to "
                               f"{dates[-1].isoformat()}; changes since {compare_from.isoformat()}",
                      source_kinds=kinds),
        encoding="utf-8",
    )
    timings["narrate_report_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    return {
        "workspace": str(root),
        "store": settings.resolved_database_url,
        "vectors": vectors,
        "ingest": {k: v for k, v in report.to_dict().items() if k not in ("problems", "failures", "notes")},
        "ingest_failures": report.failures,
        "dates": [d.isoformat() for d in dates],
        "snapshots_saved": saved,
        "alerts_raised": len(alerts),
        "portfolio": portfolio,
        "changes_since": compare_from.isoformat(),
        "changes": [narrative_json(n) for n in biggest],
        "report": str(html_path.resolve()),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def _print_demo(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from scoring.report import TIER_COLOURS

    con = Console()
    ing = data["ingest"]
    con.print(f"[bold]healthtrace demo[/bold]: ingested {ing['documents_added']} new document(s) "
              f"({ing['documents_unchanged']} unchanged), {ing['signals_added']} signal(s), {ing['usage_added']} "
              f"usage row(s) into {escape(data['store'])}"
              + ("" if data["vectors"] else " (ledger only: vectors skipped, use --vectors to embed)"))
    con.print(f"scored {len(data['portfolio'])} accounts at {len(data['dates'])} month ends; "
              f"{data['snapshots_saved']} new snapshot(s), {data['alerts_raised']} new alert(s)")
    for f in data["ingest_failures"][:10]:
        con.print(f"[yellow]failed:[/yellow] {escape(f)}")
    t = Table(title=f"Portfolio by risk (change since {data['changes_since']})")
    for col, just in (("account", "left"), ("score", "right"), ("tier", "left"), ("change", "right"),
                      ("renewal", "left"), ("next action", "left")):
        t.add_column(col, justify=just, overflow="fold")  # type: ignore[arg-type]
    for r in data["portfolio"]:
        colour = TIER_COLOURS.get(r["tier"], "white")
        action = (r["action"] or "").split(":")[0].split(",")[0]
        t.add_row(escape(r["name"] or r["account_id"]), f"{r['score']:.0f}", f"[{colour}]{r['tier']}[/]",
                  "" if r["change"] is None else f"{r['change']:+.0f}", r["renewal"] or "", escape(action if len(action) <= 60 else action[:59] + "\u2026"))
    con.print(t)
    con.print("[bold]Biggest changes[/bold]")
    for ch in data["changes"]:
        con.print(f"\n[bold]{escape(ch['account_name'] or ch['account_id'])}[/bold] "
                  f"({ch['from']['as_of']} -> {ch['to']['as_of']}, {ch['delta']:+.0f})")
        con.print(escape(ch["text"]), soft_wrap=False)
    con.print(f"\nreport: {data['report']}")
    con.print(f"done in {data['timings']['total_s']:.1f}s "
              f"(ingest {data['timings']['ingest_s']:.1f}s, scoring {data['timings']['score_s']:.1f}s)")


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the HTML report.")] = DEFAULT_REPORT_DIR,
    vectors: Annotated[bool, typer.Option("--vectors/--no-vectors",
                                          help="Also embed the documents (offline MiniLM) for `healthtrace search`.")] = False,
    top: Annotated[int, typer.Option(min=1, max=50, help="How many of the biggest changes to narrate.")] = 4,
    months: Annotated[int, typer.Option(min=1, max=24, help="Narrate changes over this many months.")] = 5,
    format: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json.")] = TextOrJson.text,
) -> None:
    """Ingest the bundled demo workspace into the store, score it monthly, narrate the biggest changes and write
    an HTML report (HEALTHTRACE_HOME is the only place written to besides --out)."""
    data = run_demo(out, vectors=vectors, top=top, months_back=months)
    if format is TextOrJson.json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_demo(data)


def register(app: typer.Typer) -> None:
    app.command("why")(why_command)
    app.command("recap")(recap_command)
    app.command("demo")(demo_command)
