"""``healthtrace metrics check``: how each metric of a workspace (or the stored memory) is read, or why not."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

metrics_app = typer.Typer(help="Usage metrics: how export names map to the model's metrics.", no_args_is_help=True)


@metrics_app.command("check")
def metrics_check(
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w", help="Workspace folder (usage.csv, "
                                                   "optional metrics.yaml); without it the stored memory.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Metric mapping file (default: the workspace's metrics.yaml, "
                                                      "or the tenant's copy kept by ingest).")] = None,
    model: Annotated[Path | None, typer.Option(help="Model file; default HEALTHTRACE_MODEL_FILE, active or bundled.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
) -> None:
    """Every metric: raw name -> canonical metric, unit, the rubric that reads it, or "not used" and why."""
    from api.commands.common import services
    from extractors.errors import InputError
    from scoring.metrics import check_lines, resolve_for_model, stats_of_rows

    if format not in ("text", "json"):
        raise InputError(f"--format must be text or json, got {format!r}")
    with services() as svc:
        scoring_model = svc.model(model, tenant=tenant)
        rows, mf = _rows_and_mapping(svc, workspace, mapping, tenant)
    if mf is not None:
        unmatched = sorted(set(mf.entries) - {r[2] for r in rows})
        for name in unmatched[:20]:
            print(f"warning: {mf.source}: {name!r} names no metric in the data", file=sys.stderr)
    mm = resolve_for_model(stats_of_rows(rows), scoring_model, mf)
    if format == "json":
        out = [{"raw": d.raw, "canonical": d.canonical, "used": d.used, "source": d.source or None,
                "unit_read": d.unit, "conversion": d.convert, "note": d.note, "reason_unused": d.reason,
                "rubrics": list(d.rubrics), "values": d.n, "min": d.lo, "max": d.hi}
               for d in sorted(mm.decisions.values(), key=lambda x: x.raw)]
        json.dump({"model": scoring_model.id, "mapping_file": mf.source if mf is not None else None, "metrics": out},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(f"model {scoring_model.id} v{scoring_model.version}; mapping file: "
          f"{mf.source if mf is not None else 'none (built-in aliases and unit detection)'}")
    if not mm.decisions:
        print("no usage metrics found")
    for line in check_lines(mm):
        print(line)
    used, unused = mm.counted(), mm.unused()
    print(f"{len(used)} metric(s) used, {len(unused)} not used")


def _rows_and_mapping(svc: Any, workspace: Path | None, mapping: Path | None, tenant: str) -> tuple[list[Any], Any]:
    """The usage rows and the metric mapping file of a workspace folder or of the stored memory."""
    from memory.metric_files import read_mapping_file, workspace_mapping

    settings = svc.settings
    if workspace is not None:
        from memory.workspace import load_workspace

        ws = load_workspace(workspace, max_rows=settings.max_csv_rows, with_documents=False)
        rows = ws.usage
        mf = read_mapping_file(mapping) if mapping is not None else workspace_mapping(workspace)
        for p in ws.problems[:20]:
            print(f"warning: {p}", file=sys.stderr)
    else:
        ledger = svc.ledger
        rows = []
        for acc in ledger.list_accounts(tenant):
            rows.extend(ledger.usage_for(acc.account_id, tenant=tenant))
        mf = read_mapping_file(mapping) if mapping is not None else svc.mapping(tenant)
    return rows, mf


def register(app: typer.Typer) -> None:
    app.add_typer(metrics_app, name="metrics")
