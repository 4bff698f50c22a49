"""``calibrate``, ``backtest``, ``whatif``, ``override``, ``outcome`` and ``models activate|versions|register``:
fitting the model to outcomes, checking it walk-forward, asking what-if, and recording the team's feedback."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from extractors.errors import InputError

if TYPE_CHECKING:
    from memory.ledger import Ledger
    from scoring.calibrate import TrainingData
    from scoring.model import ScoringModel

MAX_SNAPSHOTS = 40_000


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _day(value: str | None, what: str) -> date | None:
    from memory.workspace import parse_day

    if value is None:
        return None
    try:
        return parse_day(value)
    except (ValueError, OverflowError):
        raise InputError(f"{what} {value!r} is not a date (expected YYYY-MM-DD)") from None


def _ledger() -> Ledger:
    from api.container import build_services

    return build_services().ledger


def _ledger_if_exists() -> Ledger | None:
    """The stored memory only when there is one (calibrating a folder must not create a database)."""
    from api.container import build_services

    return build_services().ledger_if_exists()


def _in_range(option: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise InputError(f"{option} must be {lo}-{hi}, got {value}")


def _check_window(horizon: int, every: int) -> None:
    _in_range("--horizon (days)", horizon, 1, 3650)
    _in_range("--every (days)", every, 1, 365)


def _model(path: Path | None) -> ScoringModel:
    from api.commands.common import resolve_model
    from api.container import current_settings

    return resolve_model(path, current_settings())


def _vendors() -> tuple[str, ...]:
    from api.container import current_settings

    return tuple(current_settings().vendor_domains)


def _unresponsive() -> int:
    from api.container import current_settings

    return current_settings().unresponsive_days


def _training_data(workspace: Path | None, tenant: str) -> tuple[TrainingData, Any]:
    """(data, batch inputs) from a workspace folder, or from the stored memory."""
    from memory.scoring_inputs import inputs_from_ledger, inputs_from_workspace
    from scoring.calibrate import TrainingData

    if workspace is not None:
        from memory.workspace import load_workspace

        ws = load_workspace(workspace)
        if ws.problems:
            _err(f"{len(ws.problems)} bad row(s) skipped; first: {ws.problems[0]}")
        data = TrainingData.from_rows(ws.accounts, ws.usage, ws.outcomes, source=str(workspace))
        return data, (lambda: inputs_from_workspace(ws))
    ledger = _ledger()
    accounts = {a.account_id: a for a in ledger.list_accounts(tenant)}
    if not accounts:
        raise InputError("the memory has no accounts: pass --workspace DIR or run `healthtrace ingest` first")
    rows, outcomes = [], []
    for aid in sorted(accounts):
        rows.extend(ledger.usage_for(aid, tenant=tenant))
        outcomes.extend(ledger.outcomes_for(aid, tenant=tenant))
    data = TrainingData.from_rows(accounts, rows, outcomes, source=f"memory (tenant {tenant})")
    return data, (lambda: inputs_from_ledger(ledger, tenant=tenant))


def _override_agreement(model: ScoringModel, inputs_fn: Any, tenant: str) -> dict[str, Any] | None:
    """How often the model's tier matched the CSMs' overrides (stored feedback), at each override's date."""
    ledger = _ledger_if_exists()
    if ledger is None:
        return None
    from memory.feedback import FeedbackStore
    from scoring.batch import score_inputs

    rows = FeedbackStore(ledger).overrides(tenant=tenant)
    if not rows:
        return None
    inputs = inputs_fn()
    agree = judged = 0
    for r in rows:
        if r["account_id"] not in inputs.accounts:
            continue
        for res in score_inputs(inputs, model, [r["as_of"]], digest=False, account_ids=[r["account_id"]]):
            judged += 1
            agree += res.tier == r["tier"]
    return {"overrides": len(rows), "judged": judged, "agreed": agree,
            "agreement": round(agree / judged, 4) if judged else None}


# ----------------------------------------------------------------------------------------- calibrate
def calibrate_command(
    out: Annotated[Path, typer.Option("--out", help="Model file to write (YAML, loadable by --model).")],
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder with outcomes.csv; default the stored "
                                                       "memory (accounts, usage, recorded outcomes).")] = None,
    horizon: Annotated[int, typer.Option(help="Label: churned within this many days after a snapshot.")] = 60,
    every: Annotated[int, typer.Option(help="Days between snapshot dates.")] = 10,
    base: Annotated[Path | None, typer.Option(help="Model to start from (signal rules, neutral levels); default "
                                                   "the bundled model.")] = None,
    model_id: Annotated[str, typer.Option("--id", help="Id of the calibrated model.")] = "calibrated",
    max_snapshots: Annotated[int, typer.Option(help="Bound on snapshots (whole accounts are subsampled, "
                                                    "deterministically, beyond it).")] = MAX_SNAPSHOTS,
    folds: Annotated[int, typer.Option(help="Cross-validation folds, grouped by account.")] = 3,
    register: Annotated[bool, typer.Option(help="Also store the model version in the memory.")] = False,
    activate: Annotated[bool, typer.Option(help="With --register: make it the active model.")] = False,
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
) -> None:
    """Fit category and metric weights and rubric maps to outcomes; writes a new versioned model file."""
    from scoring.calibrate import calibrate
    from scoring.model import dump_model
    from scoring.snapshots import build_snapshots

    _check_window(horizon, every)
    _in_range("--max-snapshots", max_snapshots, 1_000, 2_000_000)
    _in_range("--folds", folds, 2, 10)
    base_model = _model(base)
    data, inputs_fn = _training_data(workspace, tenant)
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=horizon, every=every, max_snapshots=max_snapshots,
                            start=data.first_usage_day)
    _err(f"calibrate: {len(snaps)} snapshots, {sum(s.label for s in snaps)} churned within {horizon} days")
    res = calibrate(data, snaps, base=base_model, horizon=horizon, every=every, model_id=model_id, folds=folds,
                    log=lambda m: _err("calibrate: " + m))
    model = res.model
    agreement = _override_agreement(model, inputs_fn, tenant)
    if agreement is not None:
        from scoring.model import parse_model

        data_json = model.model_dump(mode="json")
        data_json["calibration"] = {**(model.calibration or {}), "override_agreement": agreement}
        model = parse_model(data_json, source="calibration")
    text = dump_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if register:
        from memory.feedback import FeedbackStore

        FeedbackStore(_ledger()).register_model(model, text, tenant=tenant, activate=activate)
    cv = "-" if res.cv_auc is None else f"{res.cv_auc:.4f}"
    print(f"wrote {out}: model {model.id}@{model.version} ({len(model.metrics)} metric rubrics, "
          f"{len(model.facts)} fact rubrics)")
    print(f"snapshots {res.snapshots}, churned {res.positives}; CV AUC (grouped by account) {cv}; "
          f"train AUC {res.train_auc:.4f}; {res.seconds:.1f}s")
    for label, a in res.selected:
        print(f"  {label:<55} univariate AUC {max(a, 1 - a):.3f} ({'higher = riskier' if a >= 0.5 else 'higher = healthier'})")
    if agreement is not None:
        print(f"overrides: the model agreed with {agreement['agreed']} of {agreement['judged']} CSM override tiers")


# ----------------------------------------------------------------------------------------- backtest
def backtest_command(
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder with outcomes.csv; default the memory.")] = None,
    model: Annotated[Path | None, typer.Option(help="Model file; default HEALTHTRACE_MODEL_FILE or bundled.")] = None,
    horizon: Annotated[int, typer.Option(help="Label: churned within this many days after a snapshot.")] = 60,
    every: Annotated[int, typer.Option(help="Days between snapshot dates.")] = 30,
    out: Annotated[Path | None, typer.Option(help="Folder for backtest.json, per_snapshot.csv, backtest.html.")] = None,
    start: Annotated[str | None, typer.Option(help="First snapshot date (default: the first usage date).")] = None,
    max_snapshots: Annotated[int, typer.Option(help="Bound on snapshots (accounts subsampled beyond it).")] = 150_000,
    baselines: Annotated[bool, typer.Option(help="Also compute the recency and logistic baselines.")] = True,
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
) -> None:
    """Walk-forward: score each snapshot date with only the data known then; AUC, PR-AUC, lift, baselines."""
    from scoring.backtest import backtest, write_report
    from scoring.snapshots import build_snapshots

    _check_window(horizon, every)
    m = _model(model)
    data, inputs_fn = _training_data(workspace, tenant)
    first = _day(start, "--start") or data.first_usage_day
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=horizon, every=every, start=first,
                            max_snapshots=max_snapshots)
    report = backtest(inputs_fn(), data, m, snaps, horizon=horizon, every=every, with_baselines=baselines,
                      log=lambda s: _err("backtest: " + s))
    print(f"model {report.model}: {report.snapshots} snapshots ({report.accounts} accounts), "
          f"{report.positives} churned within {horizon} days")
    print(f"{'model':<22}{'AUC':>8}{'PR-AUC':>9}{'lift@10%':>10}{'coverage':>10}")
    for name, mm in report.models.items():
        print(f"{name:<22}{_f(mm['auc']):>8}{_f(mm['pr_auc']):>9}{_f(mm['top_decile_lift']):>10}"
              f"{_f(mm['coverage']):>10}")
    print("churn rate by tier: " + ", ".join(f"{t['tier']} {_f(t['churn_rate'])} (n={t['n']})" for t in report.tiers))
    print(f"churners still Healthy at their last snapshot before churning: {_f(report.churners_not_below_healthy)} "
          f"of {report.churned_accounts}")
    print("per snapshot: " + "; ".join(f"{r['as_of']} n={r['n']} churn={r['churners']} auc={_f(r.get('model'))}"
                                       for r in report.per_date))
    if out is not None:
        for p in write_report(report, out):
            print(f"wrote {p}")
    print("RESULT " + json.dumps(report.result(), sort_keys=True))


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


# ----------------------------------------------------------------------------------------- what-if
def whatif_command(
    account: Annotated[str, typer.Argument(help="Account id.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="METRIC=-20% | METRIC=30 | METRIC=+=5 (repeatable).")] = None,
    add_signal: Annotated[list[str] | None, typer.Option("--add-signal", help="A signal type to add at as-of (repeatable).")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date (default today).")] = None,
    workspace: Annotated[Path | None, typer.Option(help="Workspace folder; default the stored memory.")] = None,
    model: Annotated[Path | None, typer.Option(help="Model file; default HEALTHTRACE_MODEL_FILE or bundled.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text or json")] = "text",
    tenant: Annotated[str, typer.Option(help="Tenant of the stored memory.")] = "default",
) -> None:
    """The score, tier and contributions if a metric changed or a signal appeared."""
    from scoring.whatif import parse_change, whatif

    d = _day(as_of, "--as-of") or date.today()
    changes = [parse_change(s) for s in set_ or []]
    m = _model(model)
    if workspace is not None:
        from memory.workspace import load_workspace
        from memory.scoring_inputs import inputs_from_workspace

        ws = load_workspace(workspace)
        if account not in ws.accounts:
            raise InputError(f"account {account!r} is not in {workspace}/accounts.csv")
        inputs = inputs_from_workspace(ws, vendor_domains=_vendors(), unresponsive_days=_unresponsive(), model=m)
        acc = ws.accounts[account]
        rows = [r for r in ws.usage if r.account_id == account]
    else:
        from memory.scoring_inputs import inputs_from_ledger

        ledger = _ledger()
        acc = ledger.get_account(account, tenant)
        from api.container import build_services

        inputs = inputs_from_ledger(ledger, tenant=tenant, until=d, account_ids=[account], vendor_domains=_vendors(),
                                    unresponsive_days=_unresponsive(), model=m,
                                    mapping_file=build_services().mapping(tenant))
        rows = ledger.usage_for(account, until=d, tenant=tenant)
    mm = inputs.metric_mapping
    if mm is not None:  # the rows and the changed metrics in the model's names and units, as scoring reads them
        from extractors.models import UsageRow
        from scoring.whatif import map_change

        rows = mm.apply_rows(rows, lambda r, name, v: UsageRow(r[0], r[1], name, v))
        changes = [map_change(mm, c) for c in changes]
    from memory.scoring_inputs import account_view

    signals, facts, expected = account_view(inputs, account, d)
    res = whatif(signals, rows, acc, m, d, set_metrics=changes, add_signals=list(add_signal or []), facts=facts,
                 expected_metrics=expected)
    if format == "json":
        print(json.dumps(res.to_dict(), indent=2))
        return
    print(f"{account} as of {d}: {res.before.score:.2f} ({res.before.tier}) -> {res.after.score:.2f} "
          f"({res.after.tier}), {res.delta:+.2f} points; changes: {', '.join(res.changes)}")
    for c in res.contributions[:15]:
        print(f"  {c.delta:+7.2f}  {c.reason_after or c.reason_before}")


# ----------------------------------------------------------------------------------------- feedback
def override_command(
    account: Annotated[str, typer.Argument(help="Account id (in the stored memory).")],
    reason: Annotated[str, typer.Option("--reason-code", "--reason",
                                        help="Reason code (champion_risk, budget_cut, competitor, ...); the API's "
                                             "reason_code.")],
    tier: Annotated[str | None, typer.Option(help="Healthy | Attention | At Risk | Critical.")] = None,
    score: Annotated[float | None, typer.Option(help="The CSM's score 0-100.")] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the judgement applies to (default today).")] = None,
    author: Annotated[str | None, typer.Option(help="Who made the call.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
) -> None:
    """Record a CSM's override of an account's score or tier (the model's latest score is kept beside it)."""
    from memory.feedback import FeedbackStore

    d = _day(as_of, "--as-of") or date.today()
    ledger = _ledger()
    snap = ledger.snapshot_at(account, d, tenant=tenant)
    row = FeedbackStore(ledger).add_override(
        account, as_of=d, tier=tier, score=score, reason=reason, note=note, author=author, tenant=tenant,
        model_ref=f"{snap.model_id}@{snap.model_version}" if snap is not None else None,
        model_score=snap.score if snap is not None else None)
    seen = f"; the model said {row['model_score']:.1f} ({row['model_tier']})" if row["model_score"] is not None else ""
    print(f"override #{row['id']}: {account} {row['tier']} as of {d} ({reason}){seen}")


def outcome_command(
    account: Annotated[str, typer.Argument(help="Account id (in the stored memory).")],
    kind: Annotated[str, typer.Argument(help="churned | renewed | expanded | contracted")],
    on: Annotated[str | None, typer.Option("--date", help="When it happened (default today).")] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
) -> None:
    """Record what happened to an account; calibrate learns from recorded outcomes."""
    from extractors.models import Outcome

    kinds = ("churned", "renewed", "expanded", "contracted")
    if kind not in kinds:
        raise InputError(f"unknown outcome {kind!r}; expected one of {', '.join(kinds)}")
    if note is not None and len(note) > 4000:
        raise InputError("note longer than 4000 characters")
    d = _day(on, "--date") or date.today()
    ledger = _ledger()
    ledger.get_account(account, tenant)
    n = ledger.add_outcomes([Outcome(account_id=account, date=d, outcome=kind, note=note)], tenant=tenant)  # type: ignore[arg-type]
    print(f"outcome {kind} for {account} on {d} {'recorded' if n else 'was already recorded'}")


def models_activate(ref: Annotated[str, typer.Argument(help="ID@VERSION of a stored model version.")],
                    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default") -> None:
    """Make a stored model version the active one."""
    from memory.feedback import FeedbackStore, parse_model_ref

    mid, ver = parse_model_ref(ref)
    FeedbackStore(_ledger()).activate(mid, ver, tenant=tenant)
    print(f"active model: {mid}@{ver}")


def models_versions(tenant: Annotated[str, typer.Option(help="Tenant.")] = "default") -> None:
    """Stored model versions (calibrated or registered), the active one marked with *."""
    from memory.feedback import FeedbackStore

    rows = FeedbackStore(_ledger()).model_versions(tenant=tenant)
    if not rows:
        print("no stored model versions (calibrate --register or models register FILE)")
    for r in rows:
        cal = r.get("calibration") or {}
        print(f"{'*' if r['active'] else ' '} {r['model_id']}@{r['version']}\t{r['content_hash'][:16]}\t"
              f"{r['created_at']:%Y-%m-%d %H:%M}\tCV AUC {cal.get('cv_auc', '-')}")


def models_register(file: Annotated[Path, typer.Argument(help="Model file to store as a version.")],
                    activate: Annotated[bool, typer.Option(help="Make it the active model.")] = False,
                    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default") -> None:
    """Store a model file as a version (idempotent on id and version)."""
    from memory.feedback import FeedbackStore
    from scoring.model import dump_model, load_model

    m = load_model(file)
    new = FeedbackStore(_ledger()).register_model(m, dump_model(m), tenant=tenant, activate=activate)
    print(f"{'stored' if new else 'already stored'}: {m.id}@{m.version}{' (active)' if activate else ''}")


def register(app: typer.Typer) -> None:
    from api.commands.scoring import models_app  # the models group lives with `score`

    app.command("calibrate")(calibrate_command)
    app.command("backtest")(backtest_command)
    app.command("whatif")(whatif_command)
    app.command("override")(override_command)
    app.command("outcome")(outcome_command)
    models_app.command("activate")(models_activate)
    models_app.command("versions")(models_versions)
    models_app.command("register")(models_register)
