"""``healthtrace score`` and ``healthtrace models``: the weighted, explainable score, and its model files."""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from extractors.errors import InputError

if TYPE_CHECKING:
    from scoring.model import ScoringModel
    from scoring.engine import AccountScore as Result


class ScoreFormat(str, Enum):
    jsonl = "jsonl"
    json = "json"
    table = "table"


def _parse_dates(values: list[str] | None) -> list[date]:
    from extractors.dates import parse_day

    if not values:
        return [date.today()]  # the edge may read the clock; the scorer never does
    return sorted({parse_day(v, "--as-of") for v in values})


def _record(res: Result, full: bool) -> dict[str, object]:
    if full:
        return res.to_health_score().model_dump(mode="json")
    return {
        "account_id": res.account_id,
        "as_of": res.as_of.isoformat(),
        "score": res.total_h / 100,
        "tier": res.tier,
        "model_id": res.model_id,
        "model_version": res.model_version,
    }


def score_command(
    as_of: Annotated[list[str] | None, typer.Option("--as-of", help="Date to score at (repeatable); default today.")] = None,
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder (accounts.csv, usage.csv, documents/); "
                                                       "without it the stored memory is scored.")] = None,
    model: Annotated[Path | None, typer.Option(help="Model file (YAML); default HEALTHTRACE_MODEL_FILE, the active stored model, or the bundled one.")] = None,
    format: Annotated[ScoreFormat, typer.Option("--format", "-f", help="Output format.")] = ScoreFormat.table,
    account: Annotated[list[str] | None, typer.Option(help="Only these account ids (repeatable).")] = None,
    save: Annotated[bool, typer.Option(help="Workspace runs: also store snapshots and alerts in the memory.")] = False,
    full: Annotated[bool, typer.Option(help="JSON output with categories, contributions and evidence.")] = False,
    extractor: Annotated[str, typer.Option(help="Extractor for workspace documents.")] = "offline",
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
    workers: Annotated[int, typer.Option(min=0, max=32, help="Processes for big jobs; 0 = one per core (up to 8).")] = 0,
) -> None:
    """Score accounts as of one or more dates. Only data dated on or before each date counts."""
    from api.commands.common import services
    from memory.scoring_inputs import inputs_from_ledger, inputs_from_workspace, store_results
    from scoring.batch import score_inputs, score_totals

    svc = services()
    settings = svc.settings
    dates = _parse_dates(as_of)
    ledger = None
    try:
        scoring_model = svc.model(model, tenant=tenant)
        if workspace is not None:
            from memory.workspace import load_workspace
            from memory.scoring_inputs import inputs_for_totals

            # totals only (the contract's jsonl): usage.csv straight into columns; None = malformed rows
            quick = format is ScoreFormat.jsonl and not save and not full
            inputs = inputs_for_totals(workspace, max_rows=settings.max_csv_rows, max_bytes=settings.max_file_bytes,
                                       extractor=extractor, vendor_domains=settings.vendor_domains,
                                       unresponsive_days=settings.unresponsive_days,
                                       model=scoring_model) if quick else None
            if inputs is None:
                ws = load_workspace(workspace, max_rows=settings.max_csv_rows)
                inputs = inputs_from_workspace(ws, max_bytes=settings.max_file_bytes, extractor=extractor,
                                               vendor_domains=settings.vendor_domains,
                                               unresponsive_days=settings.unresponsive_days, model=scoring_model)
            for p in inputs.problems[:20]:
                print(f"warning: {p}", file=sys.stderr)
            if len(inputs.problems) > 20:
                print(f"warning: {len(inputs.problems) - 20} more input problem(s)", file=sys.stderr)
        else:
            ledger = svc.ledger
            inputs = inputs_from_ledger(ledger, tenant=tenant, vendor_domains=settings.vendor_domains,
                                        until=max(dates), unresponsive_days=settings.unresponsive_days,
                                        model=scoring_model, mapping_file=svc.mapping(tenant))
        print_mapping_warnings(inputs.metric_mapping)
        ids = None
        if account:
            unknown = [a for a in account if a not in inputs.accounts]
            if unknown:
                raise InputError(f"unknown account(s): {', '.join(unknown)}")
            ids = account
        store = ledger is not None or save
        # the inputs digest is stored with snapshots and shown in full output; plain jsonl skips its cost
        results = score_inputs(inputs, scoring_model, dates, account_ids=ids, digest=store or full)
        kept = []
        out = sys.stdout
        if format is ScoreFormat.jsonl and not store and not full:
            # the contract's lines only: totals, computed over several processes for big workspaces
            import os

            from scoring.batch import write_totals_jsonl

            n_workers = workers or min(8, os.cpu_count() or 1)
            write_totals_jsonl(out, score_totals(inputs, scoring_model, dates, workers=n_workers, account_ids=ids),
                               scoring_model.id, scoring_model.version)
        elif format is ScoreFormat.jsonl:
            dumps = json.dumps
            for res in results:
                out.write(dumps(_record(res, full), ensure_ascii=False) + "\n")
                if store:
                    kept.append(res)
        else:
            kept = list(results)
            if format is ScoreFormat.json:
                json.dump([_record(r, full) for r in kept], out, ensure_ascii=False, indent=2)
                out.write("\n")
            else:
                _table(kept)
        out.flush()
        if store:
            ledger = svc.ledger
            saved, alerts = store_results(ledger, kept, drop_points=settings.alert_drop_points,
                                          extractor_versions=inputs.extractor_versions, tenant=tenant)
            print(f"{saved} snapshot(s) saved, {len(alerts)} new alert(s)", file=sys.stderr)
            for ev in alerts[:20]:
                p = ev.payload
                print(f"alert {ev.kind}: {ev.account_id} {p['from_score']} ({p['from_tier']}) -> "
                      f"{p['to_score']} ({p['to_tier']}) on {p['to_as_of']}", file=sys.stderr)
    finally:
        svc.close()


def print_mapping_warnings(mm: object, limit: int = 30) -> None:
    """The metric mapping's warnings (conversions, unused metrics), once per command, on stderr."""
    if mm is None:
        return
    lines = mm.warnings()  # type: ignore[attr-defined]
    for line in lines[:limit]:
        print(f"warning: {line}", file=sys.stderr)
    if len(lines) > limit:
        print(f"warning: {len(lines) - limit} more metric warning(s): see healthtrace metrics check", file=sys.stderr)


def _table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(results)} score(s)")
    for col in ("account", "as of", "score", "tier", "top reasons"):
        table.add_column(col, overflow="fold")
    for r in results:
        worst = sorted((it for it in r.items if it.kind in ("signal", "metric", "fact", "cap") and it.h <= -5),
                       key=lambda it: it.h)[:2]
        reasons = "; ".join(f"{it.reason} ({it.h / 100:+.1f})" for it in worst)
        table.add_row(r.account_id, r.as_of.isoformat(), f"{r.total_h / 100:.2f}", r.tier, reasons)
    Console().print(table)


# ----------------------------------------------------------------------------------------- models
models_app = typer.Typer(help="Scoring model files: list the bundled ones, show or validate a file.",
                         no_args_is_help=True)


def _resolve(name_or_file: str | None) -> tuple[str, ScoringModel]:
    from scoring.model import bundled_models, load_model

    if name_or_file is None:
        return "default", load_model(None)
    bundled = bundled_models()
    if name_or_file in bundled and not Path(name_or_file).exists():
        return str(bundled[name_or_file]), load_model(bundled[name_or_file])
    return name_or_file, load_model(name_or_file)


@models_app.command("list")
def models_list() -> None:
    """Bundled model files with id, version and content hash."""
    from scoring.model import bundled_models, load_model

    for name, path in bundled_models().items():
        m = load_model(path)
        print(f"{name}\t{m.id}\tv{m.version}\t{m.content_hash[:16]}\t{path}")


@models_app.command("show")
def models_show(
    model: Annotated[str | None, typer.Argument(help="A model file or a bundled model name; default the default.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
) -> None:
    """Id, version, hash, category weights, signal points, metric rubrics and profiles of a model."""
    source, m = _resolve(model)
    if format == "json":
        print(json.dumps({"source": source, "content_hash": m.content_hash, **m.model_dump(mode="json")}, indent=2))
        return
    total = sum(c.weight for c in m.categories.values())
    print(f"model {m.id} v{m.version}  hash {m.content_hash}\nsource {source}")
    if m.description:
        print(m.description)
    print("categories:")
    for name, c in m.categories.items():
        print(f"  {name:<13} weight {c.weight:g} ({c.weight / total * 100:.0f}%)  neutral {c.neutral:g}")
    print(f"signals ({len(m.signals)}):")
    for t, r in sorted(m.signals.items()):
        print(f"  {t:<22} {r.points:+g} pts  half-life {r.half_life_days:g} d  severity x{r.severity_scaling:g}")
    print(f"metrics ({len(m.metrics)}):")
    for r in m.metrics:
        extra = f" / {r.denominator}" if r.denominator else ""
        print(f"  {r.key + extra:<50} {r.category:<12} weight {r.weight:g}  window {r.window_days} d")
    if m.unknown_metrics and m.unknown_metrics.enabled:
        u = m.unknown_metrics
        print(f"unknown metrics: {u.transform} over {u.window_days} d in {u.category}, weight {u.weight:g}")
    print(f"facts ({len(m.facts)}): " + ", ".join(f"{f.fact} ({f.category}, weight {f.weight:g})" for f in m.facts))
    if m.profiles:
        print("profiles: " + ", ".join(sorted(m.profiles)))


@models_app.command("validate")
def models_validate(file: Annotated[Path, typer.Argument(help="Model file to check.")]) -> None:
    """Check a model file; prints one clear line per problem and exits 1 when it is invalid."""
    from scoring.model import load_model

    m = load_model(file)
    print(f"ok: {file}: model {m.id} v{m.version} hash {m.content_hash}")


def register(app: typer.Typer) -> None:
    app.command("score")(score_command)
    app.add_typer(models_app, name="models")
