"""Walk-forward backtest: score every active account at each snapshot date with only the data known then,
and compare the scores with what happened in the following horizon.

Metrics: ROC AUC and PR-AUC of risk = -score, top-decile lift (per date), the share of churners that were still
Healthy at their last snapshot before churning, churn rate by tier, and a per-date table; beside the model, two
plain baselines on the same snapshots: recency of the last activity of any metric, and a logistic regression on
raw counts (cross-fitted by account, so it never predicts an account it was trained on).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from extractors.models import TIERS, tier_for
from scoring.batch import Inputs, score_inputs
from scoring.calibrate import Candidate, TrainingData, feature_matrix
from scoring.model import ScoringModel
from scoring.snapshots import Snapshot, split_by_date

MIN_CLASS = 5  # per-date AUC needs this many churners and non-churners


# ----------------------------------------------------------------------------------------- metrics (pure)
def roc_auc(items: Sequence[tuple[float, int]]) -> float | None:
    """AUC of (risk, label) with ties counted half (scikit-learn); None when one class is missing."""
    from sklearn.metrics import roc_auc_score

    labels = [t[1] for t in items]
    if not any(labels) or all(labels):
        return None
    return float(roc_auc_score(labels, [t[0] for t in items]))


def pr_auc(items: Sequence[tuple[float, int]]) -> float | None:
    """Average precision (scikit-learn); None without positives."""
    from sklearn.metrics import average_precision_score

    labels = [t[1] for t in items]
    if not any(labels):
        return None
    return float(average_precision_score(labels, [t[0] for t in items]))


def top_decile_lift(by_date: dict[date, list[tuple[float, int]]], frac: float = 0.1) -> float | None:
    """Churn rate among the riskiest `frac` of each date (ties shared) over the overall churn rate."""
    sel_pos = sel_n = all_pos = all_n = 0.0
    for items in by_date.values():
        n = len(items)
        if not n:
            continue
        k = max(1, round(frac * n))
        srt = sorted(items, key=lambda t: -t[0])
        taken = 0
        i = 0
        while i < n and taken < k:
            j = i
            while j < n and srt[j][0] == srt[i][0]:
                j += 1
            take = min(j - i, k - taken)
            sel_pos += sum(t[1] for t in srt[i:j]) * take / (j - i)
            taken += take
            i = j
        sel_n += k
        all_pos += sum(t[1] for t in items)
        all_n += n
    if not all_pos or not sel_n:
        return None
    return (sel_pos / sel_n) / (all_pos / all_n)


def summarize(snaps: Sequence[Snapshot], risk: Sequence[float | None]) -> dict[str, Any]:
    """Metrics of one risk column over the snapshots (missing risk = that date's median)."""
    by_date_vals: dict[date, list[float]] = defaultdict(list)
    for s, r in zip(snaps, risk):
        if r is not None:
            by_date_vals[s.as_of].append(r)
    med = {d: sorted(v)[len(v) // 2] for d, v in by_date_vals.items()}
    items = [(r if r is not None else med.get(s.as_of, 0.0), s.label) for s, r in zip(snaps, risk)]
    by_date: dict[date, list[tuple[float, int]]] = defaultdict(list)
    for s, it in zip(snaps, items):
        by_date[s.as_of].append(it)
    per_date = {}
    for d, v in sorted(by_date.items()):
        pos = sum(t[1] for t in v)
        per_date[d.isoformat()] = _r(roc_auc(v)) if MIN_CLASS <= pos <= len(v) - MIN_CLASS else None
    return {
        "auc": _r(roc_auc(items)),
        "pr_auc": _r(pr_auc(items)),
        "top_decile_lift": _r(top_decile_lift(by_date), 3),
        "coverage": _r(sum(r is not None for r in risk) / len(snaps)) if snaps else None,
        "per_date_auc": per_date,
    }


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, nd)


# ----------------------------------------------------------------------------------------- scoring
def model_scores(inputs: Inputs, model: ScoringModel, snaps: Sequence[Snapshot]) -> list[float | None]:
    """The model's score per snapshot, each computed as of its date by the batch scorer."""
    out: dict[tuple[str, date], float] = {}
    for d, group in split_by_date(snaps).items():
        ids = sorted({s.account_id for s in group if s.account_id in inputs.accounts})
        for res in score_inputs(inputs, model, [d], digest=False, account_ids=ids):
            out[(res.account_id, d)] = res.score
    return [out.get((s.account_id, s.as_of)) for s in snaps]


def baseline_risks(data: TrainingData, snaps: Sequence[Snapshot], *, folds: int = 5) -> dict[str, list[float | None]]:
    """Recency of any activity, and a cross-fitted logistic regression on raw counts and contract facts."""
    import numpy as np

    metrics = data.metrics
    rec = [Candidate(m, "days_since_last", 30, "sum") for m in metrics]
    counts = [Candidate(m, "count", 3650, "sum") for m in metrics] + [
        Candidate("tenure_days", "fact"), Candidate("days_to_renewal", "fact")]
    out: dict[str, list[float | None]] = {}
    if rec:
        R = feature_matrix(data, snaps, rec)
        with np.errstate(all="ignore"):
            r = np.nanmin(np.where(np.isnan(R), np.inf, R), axis=1)
        out["recency_days"] = [None if not math.isfinite(v) else float(v) for v in r]
    X = feature_matrix(data, snaps, counts)
    y = np.array([s.label for s in snaps])
    groups = np.array([s.account_id for s in snaps])
    n_groups = len(set(groups.tolist()))
    if n_groups >= 2 and 0 < y.sum() < len(y):
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = np.where(np.isnan(X).all(axis=0), 0.0, X)
        pred = np.zeros(len(y))
        ok = True
        for tr, te in GroupKFold(n_splits=min(folds, n_groups)).split(X, y, groups):
            if y[tr].min() == y[tr].max():
                ok = False
                break
            m = make_pipeline(SimpleImputer(strategy="mean", add_indicator=True), StandardScaler(),
                              LogisticRegression(max_iter=2000))
            m.fit(X[tr], y[tr])
            pred[te] = m.predict_proba(X[te])[:, 1]
        if ok:
            out["logistic_raw_counts"] = [float(p) for p in pred]
    return out


# ----------------------------------------------------------------------------------------- report
@dataclass
class BacktestReport:
    model: str
    horizon: int
    every: int
    snapshots: int
    accounts: int
    positives: int
    models: dict[str, dict[str, Any]]
    per_date: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    churners_not_below_healthy: float | None
    churned_accounts: int
    notes: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        m = self.models.get("model", {})
        return {
            "model": self.model, "snapshots": self.snapshots, "accounts": self.accounts, "positives": self.positives,
            "horizon_days": self.horizon, "every_days": self.every, "auc": m.get("auc"), "pr_auc": m.get("pr_auc"),
            "top_decile_lift": m.get("top_decile_lift"),
            "churners_not_below_healthy": self.churners_not_below_healthy,
            "baselines": {k: v.get("auc") for k, v in self.models.items() if k != "model"},
        }

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, default=str)


def backtest(
    inputs: Inputs,
    data: TrainingData,
    model: ScoringModel,
    snaps: Sequence[Snapshot],
    *,
    horizon: int,
    every: int,
    with_baselines: bool = True,
    log: Callable[[str], None] = lambda _m: None,
) -> BacktestReport:
    if not snaps:
        from extractors.errors import InputError

        raise InputError("no snapshots to backtest (no active accounts with known outcomes in the date range)")
    log(f"scoring {len(snaps)} snapshots at {len({s.as_of for s in snaps})} dates")
    scores = model_scores(inputs, model, snaps)
    risks: dict[str, list[float | None]] = {"model": [None if v is None else -v for v in scores]}
    if with_baselines:
        log("baselines")
        risks.update(baseline_risks(data, snaps))
    models = {name: summarize(snaps, r) for name, r in risks.items()}
    # per date
    per_date = []
    by_date: dict[date, list[int]] = defaultdict(list)
    for i, s in enumerate(snaps):
        by_date[s.as_of].append(i)
    for d, idx in sorted(by_date.items()):
        sc = [scores[i] for i in idx if scores[i] is not None]
        row: dict[str, Any] = {"as_of": d.isoformat(), "n": len(idx), "churners": sum(snaps[i].label for i in idx),
                               "mean_score": _r(sum(sc) / len(sc), 2) if sc else None}
        for name, m in models.items():
            row[name] = m["per_date_auc"].get(d.isoformat())
        per_date.append(row)
    # churn rate by tier
    tiers = []
    for t in TIERS:
        labs = [s.label for s, v in zip(snaps, scores) if v is not None and tier_for(v) == t]
        tiers.append({"tier": t, "n": len(labs), "churn_rate": _r(sum(labs) / len(labs)) if labs else None})
    # churners still Healthy at their last snapshot before churning
    last: dict[str, tuple[date, float | None]] = {}
    for s, v in zip(snaps, scores):
        if s.label and (s.account_id not in last or s.as_of > last[s.account_id][0]):
            last[s.account_id] = (s.as_of, v)
    judged = [v for _, v in last.values() if v is not None]
    healthy = sum(1 for v in judged if tier_for(v) == "Healthy")
    return BacktestReport(
        model=f"{model.id}@{model.version}", horizon=horizon, every=every, snapshots=len(snaps),
        accounts=len({s.account_id for s in snaps}), positives=sum(s.label for s in snaps), models=models,
        per_date=per_date, tiers=tiers, churners_not_below_healthy=_r(healthy / len(judged)) if judged else None,
        churned_accounts=len(judged),
    )


def write_report(report: BacktestReport, out_dir: Path) -> list[Path]:
    """backtest.json, per_snapshot.csv and backtest.html (inline SVG) under ``out_dir``."""
    import csv

    from scoring.plots import bar_chart, html_page, html_table, line_chart

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "backtest.json", out_dir / "per_snapshot.csv", out_dir / "backtest.html"]
    paths[0].write_text(report.to_json(), encoding="utf-8")
    names = list(report.models)
    with paths[1].open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["as_of", "n", "churners", "mean_score"] + [f"auc_{n}" for n in names])
        for r in report.per_date:
            w.writerow([r["as_of"], r["n"], r["churners"], r["mean_score"]] + [r.get(n) for n in names])
    dates = [r["as_of"] for r in report.per_date]
    auc_chart = line_chart("AUC per snapshot date", dates, {n: [r.get(n) for r in report.per_date] for n in names},
                           y_min=0.4, y_max=1.0, y_label="ROC AUC")
    tier_chart = bar_chart(f"Churn rate within {report.horizon} days by tier",
                           [(t["tier"], t["churn_rate"], f"n={t['n']}") for t in report.tiers], y_label="churn rate")
    summary = html_table(["model", "AUC", "PR-AUC", "top-decile lift", "coverage"],
                         [[n, m["auc"], m["pr_auc"], m["top_decile_lift"], m["coverage"]]
                          for n, m in report.models.items()])
    per = html_table(["as_of", "n", "churners", "mean score"] + names,
                     [[r["as_of"], r["n"], r["churners"], r["mean_score"]] + [r.get(n) for n in names]
                      for r in report.per_date])
    text = (f"<p>{report.snapshots} snapshots, {report.accounts} accounts, {report.positives} churned within "
            f"{report.horizon} days. Churners still Healthy at their last snapshot before churning: "
            f"{report.churners_not_below_healthy} of {report.churned_accounts}.</p>")
    paths[2].write_text(html_page(f"Backtest of {report.model}", [
        ("Summary", text + summary), ("AUC over time", auc_chart), ("Churn rate by tier", tier_chart),
        ("Per snapshot", per)]), encoding="utf-8")
    return paths
