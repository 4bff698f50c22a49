"""Backtest metrics against independent computations, and the CLI's report and RESULT line."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path

import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from typer.testing import CliRunner

from api.cli import app
from churn_synth import write_workspace
from scoring.backtest import pr_auc, roc_auc, summarize, top_decile_lift
from scoring.snapshots import Snapshot

runner = CliRunner()


def test_roc_and_pr_auc_match_sklearn() -> None:
    rng = random.Random(3)
    items = [(float(rng.randrange(0, 20)), int(rng.random() < 0.3)) for _ in range(500)]  # many ties
    risk = [r for r, _ in items]
    labels = [y for _, y in items]
    assert roc_auc(items) == pytest.approx(roc_auc_score(labels, risk), abs=1e-12)
    assert pr_auc(items) == pytest.approx(average_precision_score(labels, risk), abs=1e-12)
    assert roc_auc([(1.0, 1), (1.0, 0)]) == 0.5
    assert roc_auc([(1.0, 0), (2.0, 0)]) is None


def test_top_decile_lift() -> None:
    d = date(2024, 1, 1)
    # 100 accounts, 10 churners, all ranked on top: the top decile is all churners -> lift 10
    items = [(100.0 - i, int(i < 10)) for i in range(100)]
    assert top_decile_lift({d: items}) == pytest.approx(10.0)
    # all tied: the top decile holds the base rate -> lift 1
    assert top_decile_lift({d: [(1.0, y) for _, y in items]}) == pytest.approx(1.0)


def test_summarize_imputes_missing_with_date_median() -> None:
    d = date(2024, 1, 1)
    snaps = [Snapshot(f"a{i}", d, int(i < 6), 0) for i in range(20)]
    risk: list[float | None] = [float(20 - i) for i in range(20)]
    risk[19] = None
    m = summarize(snaps, risk)
    assert m["coverage"] == 0.95 and m["auc"] == 1.0
    assert m["per_date_auc"][d.isoformat()] == 1.0


def test_cli_backtest_report(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    model = tmp_path / "m.yaml"
    r = runner.invoke(app, ["calibrate", "--workspace", str(root), "--horizon", "60", "--every", "14",
                            "--out", str(model)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "bt"
    b = runner.invoke(app, ["backtest", "--workspace", str(root), "--model", str(model), "--horizon", "60",
                            "--every", "30", "--out", str(out)])
    assert b.exit_code == 0, b.output
    last = b.output.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    res = json.loads(last[len("RESULT "):])
    assert res["auc"] > 0.8 and res["snapshots"] > 100
    assert set(res["baselines"]) == {"recency_days", "logistic_raw_counts"}
    assert res["auc"] > res["baselines"]["recency_days"] - 0.05
    html = (out / "backtest.html").read_text()
    assert html.count("<svg") == 2 and "<script" not in html
    per = (out / "per_snapshot.csv").read_text().splitlines()
    assert per[0].startswith("as_of,n,churners,mean_score,auc_model")
    report = json.loads((out / "backtest.json").read_text())
    tiers = {t["tier"]: t for t in report["tiers"]}
    # the calibrated tiers mean something: Critical accounts churn more often than Healthy ones
    crit, healthy = tiers["Critical"]["churn_rate"], tiers["Healthy"]["churn_rate"]
    assert healthy is not None and (crit is None or crit > healthy)


def test_cli_backtest_default_model_runs(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", n_accounts=60)
    b = runner.invoke(app, ["backtest", "--workspace", str(root), "--horizon", "60", "--every", "60",
                            "--no-baselines"])
    assert b.exit_code == 0, b.output
    assert json.loads(b.output.strip().splitlines()[-1][7:])["baselines"] == {}


def test_cli_backtest_rejects_bad_horizon(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", n_accounts=20)
    b = runner.invoke(app, ["backtest", "--workspace", str(root), "--horizon", "0"])
    assert b.exit_code != 0
