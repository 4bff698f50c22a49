"""Calibration: point-in-time snapshots and labels, the fitted model is a valid weighted rubric model that ranks
churners below retained accounts on held-out accounts, and the CLI writes a file `score --model` can use."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from churn_synth import write_workspace
from extractors.errors import InputError
from extractors.models import Account, Outcome
from memory.workspace import load_workspace
from scoring.backtest import roc_auc
from scoring.calibrate import TrainingData, calibrate, candidates_for, feature_matrix, fit_gam, predict, select
from scoring.model import default_model, dump_model, load_model, parse_model
from scoring.snapshots import build_snapshots, snapshot_dates

runner = CliRunner()


def _acc(aid: str, start: str, end: str | None = None) -> Account:
    return Account(account_id=aid, start_date=date.fromisoformat(start),
                   end_date=date.fromisoformat(end) if end else None)


# ----------------------------------------------------------------------------------------- snapshots
def test_snapshots_active_accounts_and_labels() -> None:
    accounts = {"a": _acc("a", "2023-01-01", "2023-12-31"), "b": _acc("b", "2023-03-01", "2023-12-31"),
                "c": _acc("c", "2023-01-01", "2023-02-15")}
    outcomes = [Outcome(account_id="a", date=date(2023, 3, 10), outcome="churned"),
                Outcome(account_id="b", date=date(2023, 12, 31), outcome="renewed")]
    snaps = build_snapshots(accounts, outcomes, horizon=30, every=30, start=date(2023, 1, 1),
                            end=date(2023, 5, 1))
    got = {(s.account_id, s.as_of): s.label for s in snaps}
    # a: active until it churned on 2023-03-10; label 1 only within 30 days before
    assert got[("a", date(2023, 1, 31))] == 0  # churns 38 days later: outside the horizon
    assert got[("a", date(2023, 3, 2))] == 1
    assert ("a", date(2023, 4, 1)) not in got  # churned before: not active
    # b only from its start, c only before its end
    assert ("b", date(2023, 1, 31)) not in got and got[("b", date(2023, 3, 2))] == 0
    assert ("c", date(2023, 1, 1)) in got and ("c", date(2023, 3, 2)) not in got


def test_snapshots_drop_unknown_labels_and_subsample_deterministically() -> None:
    accounts = {f"x{i}": _acc(f"x{i}", "2023-01-01") for i in range(200)}
    outcomes = [Outcome(account_id="x0", date=date(2023, 6, 1), outcome="renewed")]
    snaps = build_snapshots(accounts, outcomes, horizon=60, every=30, start=date(2023, 1, 1), end=date(2023, 7, 1))
    # observed until 2023-06-01: a snapshot whose 60-day horizon runs past it has no known label
    assert snaps and max(s.as_of for s in snaps) + timedelta(days=60) <= date(2023, 6, 1)
    a = build_snapshots(accounts, outcomes, horizon=60, every=30, start=date(2023, 1, 1), max_snapshots=300)
    b = build_snapshots(accounts, outcomes, horizon=60, every=30, start=date(2023, 1, 1), max_snapshots=300)
    assert a == b and 0 < len(a) <= 450
    per_account = {s.account_id for s in a}
    assert all(sum(1 for s in a if s.account_id == x) == 4 for x in per_account)  # whole accounts kept


def test_snapshot_inputs_are_bounded() -> None:
    with pytest.raises(InputError, match="limit"):
        snapshot_dates(date(2000, 1, 1), date(2030, 1, 1), 1)
    with pytest.raises(InputError, match="horizon"):
        build_snapshots({}, [], horizon=0, every=30)
    with pytest.raises(InputError, match="outcomes"):
        build_snapshots({"a": _acc("a", "2023-01-01")}, [], horizon=30, every=30)


# ----------------------------------------------------------------------------------------- fitting
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainingData]:
    root = write_workspace(tmp_path_factory.mktemp("cal") / "ws")
    ws = load_workspace(root)
    return root, TrainingData.from_rows(ws.accounts, ws.usage, ws.outcomes, source="synthetic")


def test_calibrated_model_generalises_to_held_out_accounts(synth) -> None:  # type: ignore[no-untyped-def]
    _root, data = synth
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=60, every=14, start=data.first_usage_day)
    ids = sorted({s.account_id for s in snaps})
    train_ids = set(ids[: len(ids) * 2 // 3])
    train = [s for s in snaps if s.account_id in train_ids]
    test = [s for s in snaps if s.account_id not in train_ids]
    sub = TrainingData(data.accounts, data.usage, data.outcomes, data.metric_first_day)
    res = calibrate(sub, train, base=default_model(), horizon=60, every=14, folds=3)
    assert res.cv_auc is not None and res.cv_auc > 0.8
    # the written model, scored by the real scorer, ranks the held-out churners lower
    from scoring.backtest import model_scores
    from scoring.batch import Inputs

    inputs = Inputs(accounts=data.accounts, usage=data.usage, metric_first_day=data.metric_first_day)
    scores = model_scores(inputs, res.model, test)
    held_out_auc = roc_auc([(-v, s.label) for v, s in zip(scores, test)])  # type: ignore[operator]
    assert held_out_auc is not None and held_out_auc > 0.8
    # and the fitted log-odds rank exactly like the scores (the score is affine in them)
    cands = candidates_for(data.metrics)
    labels = [c.label() for c in cands]
    assert any("logins" in lab for lab, _ in res.selected)
    assert all(lab in labels for lab, _ in res.selected)


def test_model_file_is_a_valid_weighted_model(synth) -> None:  # type: ignore[no-untyped-def]
    _root, data = synth
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=60, every=14, start=data.first_usage_day)
    m = calibrate(data, snaps, base=default_model(), horizon=60, every=14, folds=2).model
    again = parse_model(json.loads(json.dumps(m.model_dump(mode="json"))))
    assert again.content_hash == m.content_hash
    cal = m.calibration or {}
    for key in ("data_from", "data_to", "snapshots", "cv_auc", "horizon_days", "features", "positives"):
        assert key in cal
    assert cal["horizon_days"] == 60 and cal["snapshots"] == len(snaps)
    keys = [r.key for r in m.metrics]
    assert len(keys) == len(set(keys)) and m.metrics
    for r in m.metrics:
        ys = [p[1] for p in r.map.points]
        assert all(0 <= y <= 100 for y in ys) and r.missing is not None
        assert ys == sorted(ys) or ys == sorted(ys, reverse=True)
    assert m.unknown_metrics is None  # every metric the model reads is calibrated; nothing else is guessed
    # recent logins: "more logins = healthier" (churners fade before they leave)
    logins = [r for r in m.metrics if r.key == "metric:logins:level:mean-90d"]
    assert logins and logins[0].map.points[-1][1] > logins[0].map.points[0][1]


def test_selection_keeps_signal_and_drops_noise() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.2).astype(np.int8)
    signal = rng.normal(0, 1, n) + 1.5 * y
    noise = rng.normal(0, 1, n)
    X = np.stack([signal, noise], 1)
    from scoring.calibrate import Candidate

    cands = [Candidate("s", "level"), Candidate("n", "level")]
    chosen = select(X, y, cands, 0.02)
    assert [j for j, _ in chosen] == [0]
    fit = fit_gam(X, y, cands, chosen)
    z = predict(fit, X, cands)
    assert roc_auc(list(zip(z.tolist(), y.tolist()))) > 0.8
    assert fit.shapes[0].values == sorted(fit.shapes[0].values)  # monotone: higher value, more churn


def test_calibrate_refuses_data_without_churn() -> None:
    accounts = {f"a{i}": _acc(f"a{i}", "2023-01-01", "2023-12-31") for i in range(30)}
    outcomes = [Outcome(account_id=a, date=date(2023, 12, 31), outcome="renewed") for a in accounts]
    data = TrainingData.from_rows(accounts, [], outcomes)
    snaps = build_snapshots(accounts, outcomes, horizon=60, every=30)
    with pytest.raises(InputError, match="churned"):
        calibrate(data, snaps, base=default_model(), horizon=60, every=30)


# ----------------------------------------------------------------------------------------- CLI
def test_cli_calibrate_writes_a_model_score_can_use(synth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, _data = synth
    out = tmp_path / "model.yaml"
    r = runner.invoke(app, ["calibrate", "--workspace", str(root), "--horizon", "60", "--every", "14",
                            "--out", str(out), "--register", "--activate"])
    assert r.exit_code == 0, r.output
    m = load_model(out)
    assert m.id == "calibrated" and m.calibration and m.calibration["cv_auc"] > 0.8
    assert load_model(out).content_hash == m.content_hash  # file round trip
    assert dump_model(m).startswith("# healthtrace scoring model")
    s = runner.invoke(app, ["score", "--workspace", str(root), "--model", str(out), "--as-of", "2023-08-01",
                            "--format", "jsonl"])
    assert s.exit_code == 0, s.output
    rows = [json.loads(x) for x in s.output.splitlines() if x.startswith("{")]
    assert rows and all(0 <= x["score"] <= 100 for x in rows)
    v = runner.invoke(app, ["models", "versions"])
    assert v.exit_code == 0 and f"* calibrated@{m.version}" in v.output


@pytest.mark.slow
def test_oulad_dev_calibration_beats_logistic_baseline(tmp_path: Path) -> None:
    """On the shared OULAD dev workspace (skipped when absent): CV AUC above the logistic baseline's ~0.68."""
    from conftest import shared_eval_or_skip

    ws = shared_eval_or_skip() / "data" / "churn" / "workspace"
    if not (ws / "accounts.csv").exists():
        pytest.skip("no OULAD dev workspace")
    out = tmp_path / "m.yaml"
    r = runner.invoke(app, ["calibrate", "--workspace", str(ws), "--horizon", "60", "--out", str(out),
                            "--max-snapshots", "15000", "--folds", "2"])
    assert r.exit_code == 0, r.output
    assert load_model(out).calibration["cv_auc"] > 0.69  # type: ignore[index]


def test_cli_calibrate_from_memory_reports_override_agreement(synth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Without --workspace, calibrate learns from the stored accounts, usage and recorded outcomes; stored CSM
    overrides are compared with the new model's tiers."""
    from api.settings import get_settings
    from memory.feedback import FeedbackStore
    from memory.ledger import Ledger

    root, _data = synth
    ws = load_workspace(root)
    ledger = build_services(get_settings()).ledger
    ledger.upsert_accounts(ws.accounts.values())
    ledger.add_usage(ws.usage)
    ledger.add_outcomes(ws.outcomes)
    FeedbackStore(ledger).add_override("acct-0001", as_of=date(2023, 7, 1), tier="At Risk", reason="champion_risk")
    out = tmp_path / "mem.yaml"
    r = runner.invoke(app, ["calibrate", "--horizon", "60", "--every", "14", "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = load_model(out)
    assert m.calibration and m.calibration["source"].startswith("memory")
    agreement = m.calibration["override_agreement"]
    assert agreement["overrides"] == 1 and agreement["judged"] == 1 and agreement["agreed"] in (0, 1)
    assert "overrides: the model agreed with" in r.output


# ----------------------------------------------------------------------------------------- tier stretch
def test_calibrated_tiers_are_used_and_ordered_by_churn(synth) -> None:  # type: ignore[no-untyped-def]
    """The stretched model, scored by the real scorer on its training snapshots, spreads them over at least three
    tiers whose churn rates fall from Critical to Healthy; the stretch and its tier table are in the metadata."""
    from extractors.models import TIERS, tier_for
    from scoring.backtest import model_scores
    from scoring.batch import Inputs

    _root, data = synth
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=60, every=14, start=data.first_usage_day)
    res = calibrate(data, snaps, base=default_model(), horizon=60, every=14, folds=3)
    st = (res.model.calibration or {})["tier_stretch"]
    assert st["factor"] >= 1.0 and 0 <= st["centre"] <= 100
    assert st["target_shares"] == {"Critical": 0.1, "At Risk": 0.2, "Attention": 0.3, "Healthy": 0.4}
    assert st["monotone"] and st["monotone_in_folds"] and len(st["fold_churn_rate_by_tier"]) == 3
    assert st["train_auc_after"] >= st["train_auc_before"] - 0.003 - 1e-4
    inputs = Inputs(accounts=data.accounts, usage=data.usage, metric_first_day=data.metric_first_day)
    scores = model_scores(inputs, res.model, snaps)
    by_tier: dict[str, list[int]] = {t: [] for t in TIERS}
    for v, s in zip(scores, snaps):
        assert v is not None
        by_tier[tier_for(v)].append(s.label)
    used = [t for t in ("Critical", "At Risk", "Attention", "Healthy") if by_tier[t]]
    assert len(used) >= 3, {t: len(v) for t, v in by_tier.items()}
    rates = [sum(by_tier[t]) / len(by_tier[t]) for t in used]
    assert all(a >= b for a, b in zip(rates, rates[1:])), dict(zip(used, rates))
    assert rates[0] > rates[-1]
    # the metadata's shares are what the scorer gives (same maps, same readings)
    for t in used:
        assert abs(len(by_tier[t]) / len(snaps) - st["tier_shares"][t]) < 0.01


def test_stretch_keeps_maps_exact_and_monotone() -> None:
    """Each stretched map is exactly clip(c + k*(old - c), 0, 100), with points added where it meets 0 or 100."""
    from scoring.calibrate import Stretch, _stretch_points
    from scoring.model import PiecewiseMap

    old = PiecewiseMap(points=[(0.0, 10.0), (5.0, 45.0), (10.0, 90.0), (20.0, 95.0)])
    s = Stretch(40.0, 2.5)
    new = PiecewiseMap(points=[tuple(p) for p in _stretch_points(old.points, s)])  # type: ignore[misc]
    for x in np.linspace(-1, 21, 221):
        want = min(100.0, max(0.0, 40.0 + 2.5 * (old(float(x)) - 40.0)))
        assert abs(new(float(x)) - want) < 1e-2
    ys = [p[1] for p in new.points]
    assert ys == sorted(ys) and ys[0] == 0.0 and ys[-1] == 100.0


def test_tier_target_is_validated(synth) -> None:  # type: ignore[no-untyped-def]
    _root, data = synth
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=60, every=28, start=data.first_usage_day)
    with pytest.raises(InputError, match="tier target"):
        calibrate(data, snaps, base=default_model(), horizon=60, every=28, folds=2, tier_target=(0.5, 0.5, 0.5, 0.5))
