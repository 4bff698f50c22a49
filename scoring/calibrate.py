"""Calibrating a scoring model against outcomes: the result is still the deterministic weighted scorer.

Steps (all on point-in-time snapshots from :mod:`scoring.snapshots`):

1. candidate readings per usage metric (level, count in a window, days since last, trend, ratio to another
   metric) and per account fact, each read from the same usage columns with the engine's own vectorised
   readings (:class:`scoring.columns.View`), so a feature is exactly what the engine will read, and nothing
   dated after as-of is used;
2. univariate screening: per (metric, transform) the best window/aggregate by AUC, kept when it carries signal;
3. a monotone additive logistic model (a GAM): every kept reading gets a piecewise-linear shape with knots at
   training quantiles, its slope sign fixed by the univariate direction, plus a "no reading yet" level; fitted
   by bounded L-BFGS (ridge, plus an L1 penalty on shape ranges), checked by cross-validation grouped by account;
4. the shapes become rubric maps (0-100, monotone) and their ranges become weights, so the score is an affine,
   decreasing function of the fitted churn log-odds; the tier cut points are placed on churn rates;
5. a tier stretch: every map output f becomes clip(c + k*(f - c), 0, 100) (missing and neutral values too, signal
   points x k), so the total is c + k*(score - c) up to clipping and stays a plain weighted sum of cited
   contributions; c and k are chosen on the training snapshots so the fixed tiers hold shares close to
   ``TIER_TARGET`` without losing more than ``MAX_AUC_LOSS`` training AUC, with churn rates monotone across tiers.

numpy/scipy/scikit-learn are imported lazily (only calibrate and backtest need them).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from extractors.errors import InputError
from extractors.models import Account, Outcome, UsageRow
from scoring.model import ScoringModel, parse_model
from scoring.snapshots import Snapshot
from scoring.columns import UsageColumns, View, columns_from_usage, first_days, metrics_as_of
from scoring.engine import CompiledModel, compile_model, rubric_totals

if TYPE_CHECKING:
    import numpy as np

MAX_METRICS = 20
MAX_FEATURES = 40
FACTS = ("tenure_days", "days_to_renewal")
WINDOWS = (30, 90, 3650)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One reading the scorer can make: a metric transform, or an account fact."""

    metric: str  # fact name when transform == "fact"
    transform: str
    window: int = 30
    aggregate: str = "mean"
    denominator: str | None = None
    denominator_aggregate: str | None = None

    @property
    def name(self) -> str | None:
        """Rubric name telling this reading apart from others of the same metric and transform."""
        if self.transform in ("fact", "days_since_last"):
            return None
        if self.transform == "ratio":
            raw = f"{self.denominator}-{self.window}d"
        elif self.transform == "level":
            raw = f"{self.aggregate}-{self.window}d"
        else:
            raw = f"{self.window}d"
        return re.sub(r"[^A-Za-z0-9_.\-]", "_", raw)[:50]

    @property
    def key(self) -> str:
        if self.transform == "fact":
            return f"fact:{self.metric}"
        base = f"metric:{self.metric}:{self.transform}"
        return f"{base}:{self.name}" if self.name else base

    def label(self) -> str:
        if self.transform == "fact":
            return self.metric
        if self.transform == "ratio":
            return f"{self.metric}/{self.denominator} ({self.aggregate}, {self.window}d)"
        if self.transform == "days_since_last":
            return f"days since last {self.metric}"
        if self.transform == "level":
            return f"{self.metric} {self.aggregate} over {self.window}d"
        return f"{self.metric} {self.transform} over {self.window}d"


def candidates_for(metrics: Sequence[str]) -> list[Candidate]:
    """Candidate readings for a workspace's metrics (generic: no metric name is special)."""
    out: list[Candidate] = [Candidate(f, "fact") for f in FACTS]
    ms = sorted(metrics)[:MAX_METRICS]
    for m in ms:
        out.append(Candidate(m, "days_since_last", 30, "sum"))
        for w in WINDOWS[1:]:
            out.append(Candidate(m, "count", w, "sum"))
            out.append(Candidate(m, "level", w, "mean"))
        out.append(Candidate(m, "level", WINDOWS[-1], "sum"))
        out.append(Candidate(m, "level", WINDOWS[-1], "last"))
        out.append(Candidate(m, "trend", 90, "mean"))
        for d in ms[:6]:
            if d != m:
                for w in WINDOWS[1:]:
                    out.append(Candidate(m, "ratio", w, "count", d, "count"))
    return out


# ----------------------------------------------------------------------------------------- data
@dataclass
class TrainingData:
    """Accounts, grouped usage and outcomes, from a workspace or the ledger."""

    accounts: dict[str, Account]
    usage: UsageColumns
    outcomes: list[Outcome]
    metric_first_day: dict[str, int] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def from_rows(cls, accounts: Mapping[str, Account], rows: Iterable[UsageRow], outcomes: Iterable[Outcome],
                  source: str = "") -> TrainingData:
        rows = list(rows)
        starts = {a: acc.start_date for a, acc in accounts.items()}
        return cls(dict(accounts), columns_from_usage(rows, list(accounts)), list(outcomes), first_days(rows, starts),
                   source)

    @property
    def metrics(self) -> list[str]:
        return sorted(self.metric_first_day)

    @property
    def first_usage_day(self) -> date | None:
        """The first day any started account reported usage: snapshots before it have nothing to learn from."""
        return date.fromordinal(min(self.metric_first_day.values())) if self.metric_first_day else None


def feature_matrix(data: TrainingData, snaps: Sequence[Snapshot], cands: Sequence[Candidate]) -> np.ndarray:
    """Readings per snapshot (rows) and candidate (columns); NaN = no reading. Only rows dated <= as-of count,
    because :func:`reading` only reads prefixes up to as-of, and "reported" metrics are those seen by then."""
    import numpy as np

    X = np.full((len(snaps), len(cands)), np.nan)
    by_date: dict[date, list[int]] = {}
    for i, s in enumerate(snaps):
        by_date.setdefault(s.as_of, []).append(i)
    cols = data.usage
    for d, rows_i in by_date.items():
        a = d.toordinal()
        idx = np.asarray(rows_i, dtype=np.int64)
        accs = [data.accounts[snaps[i].account_id] for i in rows_i]
        has_start = np.array([x.start_date is not None for x in accs], dtype=bool)
        start = np.array([x.start_date.toordinal() if x.start_date else 0 for x in accs], dtype=np.int64)
        has_end = np.array([x.end_date is not None for x in accs], dtype=bool)
        end = np.array([x.end_date.toordinal() if x.end_date else 0 for x in accs], dtype=np.int64)
        view = View(cols, np.array([cols.account_row.get(x.account_id, -1) for x in accs], dtype=np.int64), a,
                    start, has_start, end, has_end)
        exp = metrics_as_of(data.metric_first_day, d)
        for j, c in enumerate(cands):
            if c.transform == "fact":
                if c.metric == "days_to_renewal":
                    have, v = has_end, (end - a).astype(np.float64)
                elif c.metric == "tenure_days":
                    have, v = has_start & (start <= a), (a - start).astype(np.float64)
                else:
                    continue
                X[idx[have], j] = v[have]
                continue
            reported = np.ones(len(accs), dtype=bool) if c.metric in exp else view.present(c.metric)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ok, v = view.reading(c.metric, c.transform, c.window, c.aggregate, c.denominator, start,
                                     has_start & reported, c.denominator_aggregate)
            ok = ok & np.isfinite(v)
            X[idx[ok], j] = v[ok]
    return X


# ----------------------------------------------------------------------------------------- statistics
def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC (scikit-learn; ties count half), None when one class is missing."""
    from sklearn.metrics import roc_auc_score

    pos = int(labels.sum())
    if not pos or pos == len(labels):
        return None
    return float(roc_auc_score(labels, scores))


def univariate(x: np.ndarray, y: np.ndarray, bins: int = 10) -> tuple[float, float]:
    """(direction AUC, strength AUC) of a reading alone.

    Direction: AUC of the values where there is a reading (> 0.5: higher values mean more churn). Strength: AUC
    of the churn rate of the reading's quantile bin, "no reading" being a bin of its own, so a reading whose
    absence is the signal (no scores yet) is not undersold.
    """
    import numpy as np

    ok = ~np.isnan(x)
    if ok.sum() < 10:
        return 0.5, 0.5
    a = auc(x[ok], y[ok])
    qs = np.unique(np.quantile(x[ok], np.linspace(0, 1, bins + 1)[1:-1]))
    b = np.where(ok, np.searchsorted(qs, np.where(ok, x, 0.0), side="right"), -1) + 1
    # bin churn rates from one half of the rows score the other half (no in-sample optimism)
    half = np.arange(len(y)) % 2
    score = np.empty(len(y))
    for h in (0, 1):
        fit_rows, use_rows = half != h, half == h
        counts = np.bincount(b[fit_rows], minlength=len(qs) + 2).astype(float)
        pos = np.bincount(b[fit_rows], weights=y[fit_rows].astype(float), minlength=len(qs) + 2)
        rate = (pos + y.mean()) / (counts + 1.0)
        score[use_rows] = rate[b[use_rows]]
    strength = auc(score, y)
    return (0.5 if a is None else a), (0.5 if strength is None else strength)


@dataclass
class Shape:
    """One fitted reading: knots, log-odds at each knot, log-odds with no reading."""

    cand: Candidate
    direction: int  # +1: higher value = more churn
    knots: list[float]
    values: list[float]
    missing: float
    uni_auc: float


@dataclass
class Fit:
    shapes: list[Shape]
    intercept: float


def select(X: np.ndarray, y: np.ndarray, cands: Sequence[Candidate], min_signal: float) -> list[tuple[int, float]]:
    """Readings with univariate signal (identical columns once), strongest first, bounded: [(column, auc)]."""
    import numpy as np

    seen: set[bytes] = set()
    kept: list[tuple[float, int, float]] = []
    for j, _c in enumerate(cands):
        col = X[:, j]
        if np.isnan(col).all():
            continue
        fp = hashlib.sha256(np.nan_to_num(col, nan=-1.2345e300).tobytes()).digest()
        if fp in seen:
            continue
        seen.add(fp)
        a, st = univariate(col, y)
        if st - 0.5 < min_signal:
            continue
        kept.append((st - 0.5, j, a))
    ranked = sorted(kept, key=lambda t: (-t[0], t[1]))[:MAX_FEATURES]
    return sorted((j, a) for _, j, a in ranked)


def _knots(col: np.ndarray, n_knots: int) -> list[float]:
    import numpy as np

    v = col[~np.isnan(col)]
    if not len(v):
        return []
    qs = np.unique(np.round(np.quantile(v, np.linspace(0, 1, n_knots)), 6))
    return [float(q) for q in qs]


def _basis(X: np.ndarray, cols: Sequence[int], knots: Sequence[Sequence[float]]) -> np.ndarray:
    """Ramp basis (monotone piecewise-linear pieces) plus a no-reading indicator per feature."""
    import numpy as np

    parts = []
    for j, kn in zip(cols, knots):
        c = X[:, j]
        miss = np.isnan(c)
        cc = np.where(miss, kn[0], c)
        for a, b in zip(kn, kn[1:]):
            parts.append(np.clip((cc - a) / (b - a), 0.0, 1.0))
        parts.append(miss.astype(float))
    return np.stack(parts, 1).astype(np.float32) if parts else np.zeros((len(X), 0), dtype=np.float32)


def fit_gam(X: np.ndarray, y: np.ndarray, cands: Sequence[Candidate], chosen: Sequence[tuple[int, float]], *,
            n_knots: int = 10, l2: float = 1e-4, l1: float = 0.0, max_iter: int = 400) -> Fit:
    """Monotone additive logistic regression by bounded L-BFGS.

    ``l1`` penalises each shape's range (the ramp coefficients' absolute sum, their signs being fixed, plus a
    smoothed absolute value of the no-reading level): correlated readings then stop cancelling out with large
    opposite shapes, which would squeeze the weighted-mean score into a narrow band."""
    import numpy as np
    from scipy.optimize import minimize

    cols = [j for j, _ in chosen]
    knots = [_knots(X[:, j], n_knots) for j in cols]
    keep = [(j, a, k) for (j, a), k in zip(chosen, knots) if len(k) >= 2]
    cols = [j for j, _, _ in keep]
    knots = [k for _, _, k in keep]
    B = _basis(X, cols, knots)
    n, p = B.shape
    yf = y.astype(np.float64)
    bounds: list[tuple[float | None, float | None]] = []
    for (_j, a, k) in keep:
        sign = 1 if a >= 0.5 else -1
        bounds += [(0.0, None) if sign > 0 else (None, 0.0)] * (len(k) - 1) + [(None, None)]
    bounds.append((None, None))
    prior = float(np.clip(yf.mean(), 1e-6, 1 - 1e-6))
    sign = np.concatenate([[1.0 if a >= 0.5 else -1.0] * (len(k) - 1) + [0.0] for (_j, a, k) in keep] or [[]])
    is_miss = sign == 0

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = (B @ w[:-1].astype(np.float32)).astype(np.float64) + w[-1]
        loss = np.logaddexp(0.0, z) - yf * z
        pz = 0.5 * (1.0 + np.tanh(0.5 * z))
        r = (pz - yf) / n
        grad = np.empty(p + 1)
        grad[:-1] = (B.T @ r.astype(np.float32)).astype(np.float64) + 2 * l2 * w[:-1]
        grad[-1] = r.sum()
        pen = l2 * float(w[:-1] @ w[:-1])
        if l1:
            wm = w[:-1][is_miss]
            sm = np.sqrt(wm * wm + 1e-8)
            grad[:-1] += l1 * sign
            grad[:-1][is_miss] += l1 * wm / sm
            pen += l1 * (float(sign @ w[:-1]) + float(sm.sum()))
        return float(loss.mean() + pen), grad

    w0 = np.zeros(p + 1)
    w0[-1] = math.log(prior / (1 - prior))
    res = minimize(f, w0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": max_iter})
    w = res.x
    shapes: list[Shape] = []
    pos = 0
    for (j, a, k) in keep:
        m = len(k) - 1
        coefs = w[pos: pos + m]
        vals = [0.0] + list(np.cumsum(coefs))
        shapes.append(Shape(cands[j], 1 if a >= 0.5 else -1, k, [float(v) for v in vals], float(w[pos + m]), a))
        pos += m + 1
    return Fit(shapes, float(w[-1]))


def predict(fit: Fit, X: np.ndarray, cands: Sequence[Candidate]) -> np.ndarray:
    """Fitted log-odds (the calibrated model's risk before it becomes a score)."""
    import numpy as np

    index = {c: j for j, c in enumerate(cands)}
    z = np.full(len(X), fit.intercept)
    for s in fit.shapes:
        c = X[:, index[s.cand]]
        miss = np.isnan(c)
        z += np.where(miss, s.missing, np.interp(np.where(miss, s.knots[0], c), s.knots, s.values))
    return z


# ----------------------------------------------------------------------------------------- model file
def _round_sig(x: float, sig: int = 6) -> float:
    if x == 0 or not math.isfinite(x):
        return 0.0
    return round(x, max(0, sig - 1 - int(math.floor(math.log10(abs(x))))))


def fit_to_model(
    fit: Fit,
    base: ScoringModel,
    *,
    model_id: str,
    version: str,
    base_rate: float,
    metadata: dict[str, Any],
) -> ScoringModel:
    """The fitted shapes as a weighted rubric model: score = L + (U - L) * (1 - normalised log-odds).

    Each reading's map is its shape flipped and scaled to 0-100 over the shape's range (no-reading level
    included); its weight is that range, so the weighted mean of the maps is affine in the log-odds. L and U put
    score 70 at the base churn rate and 50 at twice it (clipped to 0-100), so tiers mean churn-risk levels.
    """
    items: list[tuple[Shape, float, float, float]] = []  # shape, lo, hi, span
    for s in fit.shapes:
        vals = s.values + [s.missing]
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-6:
            continue
        items.append((s, lo, hi, hi - lo))
    if not items:
        raise InputError("calibration found no usage metric or fact that predicts churn in this data")
    total_span = sum(t[3] for t in items)
    g_max = sum(t[2] for t in items)
    # log-odds z = b0 + g_max - S * raw / 100 where raw is the 0-100 weighted map mean; score = L + (U-L) raw/100
    z0 = fit.intercept + g_max  # z at raw 0
    p70 = min(max(base_rate, 1e-4), 0.45)
    p50 = min(2 * p70, 0.9)
    z70, z50 = math.log(p70 / (1 - p70)), math.log(p50 / (1 - p50))
    slope = (z50 - z70) / 20.0  # log-odds per score point, > 0
    span = total_span / slope  # U - L
    if span >= 100:
        lo_s, hi_s = 0.0, 100.0
    else:
        lo_s = 70.0 - (z0 - z70) / slope
        lo_s = min(max(lo_s, 0.0), 100.0 - span)
        hi_s = lo_s + span

    def y_of(g: float, lo: float, hi: float) -> float:
        return round(lo_s + (hi_s - lo_s) * (hi - g) / (hi - lo), 3)

    metrics: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    cat_weight = {"adoption": 0.0, "risk": 0.0}
    for s, lo, hi, sp in items:
        pts: list[list[float]] = []
        for x, g in zip(s.knots, s.values):
            xr = _round_sig(x)
            if pts and xr <= pts[-1][0]:
                continue
            pts.append([xr, y_of(g, lo, hi)])
        if len(pts) < 2:
            pts.append([pts[-1][0] + 1.0, pts[-1][1]])
        # enforce exact monotonicity after rounding
        ys = [p[1] for p in pts]
        if s.direction > 0:  # more churn with higher x: subscores fall
            for i in range(1, len(ys)):
                ys[i] = min(ys[i], ys[i - 1])
        else:
            for i in range(1, len(ys)):
                ys[i] = max(ys[i], ys[i - 1])
        pts = [[x, yv] for (x, _), yv in zip(pts, ys)]
        weight = round(sp / total_span * 100, 4)
        desc = f"calibrated: {s.cand.label()} (univariate AUC {max(s.uni_auc, 1 - s.uni_auc):.3f})"
        c = s.cand
        if c.transform == "fact":
            facts.append({"fact": c.metric, "category": "risk", "weight": weight, "map": {"points": pts},
                          "description": desc})
            cat_weight["risk"] += weight
        else:
            m: dict[str, Any] = {"metric": c.metric, "transform": c.transform, "aggregate": c.aggregate,
                                 "window_days": c.window, "category": "adoption", "weight": weight,
                                 "map": {"points": pts}, "missing": y_of(s.missing, lo, hi), "description": desc}
            if c.denominator:
                m["denominator"] = c.denominator
                m["denominator_aggregate"] = c.denominator_aggregate
            if c.name:
                m["name"] = c.name
            metrics.append(m)
            cat_weight["adoption"] += weight
    base_json = base.model_dump(mode="json")
    total = sum(cat_weight.values())
    categories = {
        "adoption": {"weight": round(cat_weight["adoption"], 4), "neutral": base.categories["adoption"].neutral},
        # relationship and outcome carry only text signals here: a quarter of the weight each when present
        "relationship": {"weight": round(total * 0.25, 4), "neutral": base.categories["relationship"].neutral},
        "outcome": {"weight": round(total * 0.25, 4), "neutral": base.categories["outcome"].neutral},
        "risk": {"weight": round(max(cat_weight["risk"], 0.0), 4), "neutral": base.categories["risk"].neutral},
    }
    data = {
        "id": model_id,
        "version": version,
        "description": f"Calibrated from {base.id} v{base.version} on outcomes "
                       f"({metadata.get('snapshots')} snapshots, horizon {metadata.get('horizon_days')} days).",
        "categories": categories,
        "no_data_score": base.no_data_score,
        "signal_defaults": base_json["signal_defaults"],
        "signals": base_json["signals"],
        "metrics": metrics,
        "unknown_metrics": None,
        "facts": facts,
        "profiles": {},
        "calibration": metadata | {"score_range": [round(lo_s, 3), round(hi_s, 3)],
                                   "log_odds_per_point": round(-slope, 6)},
    }
    return parse_model(data, source="calibration")


# ----------------------------------------------------------------------------------------- tier stretch
# Shares of training snapshots the tiers should hold after calibration, riskiest first:
# (Critical 0-29, At Risk 30-49, Attention 50-69, Healthy 70-100).
TIER_TARGET: tuple[float, float, float, float] = (0.10, 0.20, 0.30, 0.40)
TIER_NAMES = ("Critical", "At Risk", "Attention", "Healthy")
TIER_CUTS = (30.0, 50.0, 70.0)  # extractors.models.tier_for
MAX_AUC_LOSS = 0.003  # the stretch may cost at most this much training AUC (clipping flattens map ends)
L1 = 1e-4  # range penalty of the fit (see fit_gam): less cancelling between correlated readings, wider scores
STRETCH_ROWS = 12_000  # snapshots the (c, k) grid is searched on (a fixed stride over the training snapshots)
_K_GRID = tuple(round(1.0 + 0.05 * i, 2) for i in range(61))  # 1.0 .. 4.0
_C_GRID = tuple(2.5 * i for i in range(41))  # 0 .. 100


@dataclass(frozen=True)
class Stretch:
    """f' = clip(c + k * (f - c), 0, 100) on every map output (and missing / neutral values), signal points x k:
    the total becomes c + k * (score - c) wherever no map hits 0 or 100."""

    centre: float
    factor: float

    def apply(self, f: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.clip(self.centre + self.factor * (f - self.centre), 0.0, 100.0)

    def value(self, f: float) -> float:
        return round(min(100.0, max(0.0, self.centre + self.factor * (f - self.centre))), 3)


def item_scores(model: ScoringModel, X: np.ndarray, cands: Sequence[Candidate]) -> np.ndarray:
    """Map outputs of the model's rubrics then facts per snapshot (NaN = the item is absent, as the scorer leaves
    it out), in the compiled model's order; the same piecewise-linear maps the scorer evaluates, on the same
    readings."""
    import numpy as np

    index = {c.key: j for j, c in enumerate(cands)}
    rubrics: list[tuple[str, Any, float | None]] = [(r.key, r.map, r.missing) for r in model.metrics] + [
        (f.key, f.map, None) for f in model.facts]
    F = np.full((len(X), len(rubrics)), np.nan)
    for i, (key, mp, missing) in enumerate(rubrics):
        if key not in index:
            raise InputError(f"calibration: rubric {key} has no reading column (internal mismatch)")
        col = X[:, index[key]]
        xs = [p[0] for p in mp.points]
        ys = [p[1] for p in mp.points]
        miss = np.isnan(col)
        F[:, i] = np.where(miss, np.nan if missing is None else missing, np.interp(np.where(miss, xs[0], col), xs, ys))
    return F


def model_totals(F: np.ndarray, cm: CompiledModel, stretch: Stretch | None = None) -> np.ndarray:
    """The scorer's total without text signals, computed by the engine (:func:`scoring.engine.rubric_totals`)
    from the rubric outputs ``F``; with ``stretch``, of the stretched model (outputs and no-data score)."""
    if stretch is None:
        return rubric_totals(cm, F)
    return rubric_totals(cm, stretch.apply(F), no_data_score=stretch.value(cm.no_data_score))


def tier_index(total: np.ndarray) -> np.ndarray:
    """0 Critical, 1 At Risk, 2 Attention, 3 Healthy (the fixed cut points of tier_for)."""
    import numpy as np

    return np.searchsorted(np.array(TIER_CUTS), total, side="right")


def tier_table(total: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float | None]]:
    """(share of snapshots, churn rate) per tier, riskiest first."""
    import numpy as np

    t = tier_index(total)
    n = np.bincount(t, minlength=4).astype(float)
    pos = np.bincount(t, weights=y.astype(float), minlength=4)
    shares = [float(v) / max(len(total), 1) for v in n]
    rates = [float(p / c) if c else None for p, c in zip(pos, n)]
    return shares, rates


def monotone_rates(rates: Sequence[float | None]) -> bool:
    """Churn rate never rises from a riskier tier to a healthier one (empty tiers skipped)."""
    used = [r for r in rates if r is not None]
    return all(a >= b for a, b in zip(used, used[1:]))


def _mismatch(shares: Sequence[float], target: Sequence[float]) -> float:
    """KL divergence of the target tier shares from the achieved ones (an empty tier costs a lot, not infinity)."""
    return sum(t * math.log(t / (s + 1e-3)) for s, t in zip(shares, target) if t > 0)


def choose_stretch(
    F: np.ndarray,
    cm: CompiledModel,
    y: np.ndarray,
    *,
    target: Sequence[float] = TIER_TARGET,
    max_auc_loss: float = MAX_AUC_LOSS,
    rows: int = STRETCH_ROWS,
) -> tuple[Stretch, float]:
    """The (centre, factor) whose tier shares on the training snapshots come closest to ``target`` while the
    training AUC drops by at most ``max_auc_loss`` and churn rates stay monotone across tiers; (stretch, KL)."""
    step = max(1, math.ceil(len(F) / rows))
    Fs, ys = F[::step], y[::step]
    if ys.min() == ys.max():  # a stride that lost a class: search on everything
        Fs, ys = F, y
    base_sub = auc(-model_totals(Fs, cm), ys) or 0.5
    base_all = auc(-model_totals(F, cm), y) or 0.5
    identity = Stretch(50.0, 1.0)
    found: list[tuple[float, float, float, Stretch]] = [
        (_mismatch(tier_table(model_totals(Fs, cm), ys)[0], target), 1.0, 50.0, identity)]
    for k in _K_GRID[1:]:
        for c in _C_GRID:
            s = Stretch(c, k)
            tot = model_totals(Fs, cm, s)
            shares, rates = tier_table(tot, ys)
            m = _mismatch(shares, target)
            if m >= found[0][0] - 1e-9 or not monotone_rates(rates):
                continue
            a = auc(-tot, ys)
            if a is not None and a >= base_sub - max_auc_loss:
                found.append((m, k, c, s))
    # the search ran on a sample: the best candidate that also keeps the AUC bound on all snapshots wins
    for m, _k, _c, s in sorted(found, key=lambda t: t[:3])[:60]:
        if s == identity:
            return s, m
        tot = model_totals(F, cm, s)
        a = auc(-tot, y)
        if a is not None and a >= base_all - max_auc_loss and monotone_rates(tier_table(tot, y)[1]):
            return s, m
    return identity, found[0][0]


def _stretch_points(points: Sequence[Sequence[float]], s: Stretch) -> list[list[float]]:
    """A map's points after the stretch, with a point added where a segment meets 0 or 100, so the new map is
    exactly clip(c + k * (old map - c))."""
    out: list[list[float]] = []
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if not out:
            out.append([x0, s.value(y0)])
        u0, u1 = s.centre + s.factor * (y0 - s.centre), s.centre + s.factor * (y1 - s.centre)
        cross = sorted((_round_sig(x0 + (x1 - x0) * (b - u0) / (u1 - u0)), b) for b in (0.0, 100.0)
                       if (u0 - b) * (u1 - b) < 0)
        for xb, b in cross:
            if out[-1][0] < xb < x1:
                out.append([xb, b])
        out.append([x1, s.value(y1)])
    return out


def stretch_model(model: ScoringModel, s: Stretch, stats: dict[str, Any]) -> ScoringModel:
    """The model with its map outputs, missing and neutral values stretched and signal points scaled by k."""
    data = model.model_dump(mode="json")
    for m in data["metrics"] + data["facts"]:
        m["map"] = {"points": _stretch_points(m["map"]["points"], s)}
        if m.get("missing") is not None:
            m["missing"] = s.value(m["missing"])
    for c in data["categories"].values():
        c["neutral"] = s.value(c["neutral"])
    for rule in data["signals"].values():
        rule["points"] = round(max(-100.0, min(100.0, rule["points"] * s.factor)), 3)
    data["no_data_score"] = s.value(data["no_data_score"])
    data["calibration"] = {**(data.get("calibration") or {}), "tier_stretch": stats}
    return parse_model(data, source="calibration")


def _check_target(target: Sequence[float]) -> None:
    if len(target) != 4 or any(not 0 <= t <= 1 for t in target) or not math.isclose(sum(target), 1.0, abs_tol=1e-6):
        raise InputError(f"tier target must be 4 shares (Critical, At Risk, Attention, Healthy) summing to 1, "
                         f"got {list(target)}")


def fit_tiers(
    model: ScoringModel,
    X: np.ndarray,
    cands: Sequence[Candidate],
    y: np.ndarray,
    groups: np.ndarray,
    *,
    folds: int,
    target: Sequence[float] = TIER_TARGET,
    max_auc_loss: float = MAX_AUC_LOSS,
) -> tuple[ScoringModel, dict[str, Any]]:
    """Stretch the calibrated model so its tiers line up with risk on the training snapshots (no other data)."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    _check_target(target)
    F = item_scores(model, X, cands)
    cm = compile_model(model)
    s, kl = choose_stretch(F, cm, y, target=target, max_auc_loss=max_auc_loss)
    before = model_totals(F, cm)
    after = model_totals(F, cm, s)
    shares_b, _ = tier_table(before, y)
    shares, rates = tier_table(after, y)
    fold_rates: list[list[float | None]] = []
    n_groups = len(set(groups.tolist()))
    if min(folds, n_groups) >= 2:
        for _tr, te in GroupKFold(n_splits=min(folds, n_groups)).split(F, y, groups):
            fold_rates.append([None if r is None else round(r, 4) for r in tier_table(after[te], y[te])[1]])
    a_b, a_a = auc(-before, y), auc(-after, y)
    stats: dict[str, Any] = {
        "rule": "every map output, missing and neutral value f -> clip(c + k*(f - c), 0, 100); signal points x k",
        "centre": s.centre,
        "factor": s.factor,
        "target_shares": dict(zip(TIER_NAMES, [round(t, 4) for t in target])),
        "max_auc_loss": max_auc_loss,
        "tier_shares_before": dict(zip(TIER_NAMES, [round(v, 4) for v in shares_b])),
        "tier_shares": dict(zip(TIER_NAMES, [round(v, 4) for v in shares])),
        "churn_rate_by_tier": dict(zip(TIER_NAMES, [None if r is None else round(r, 4) for r in rates])),
        "fold_churn_rate_by_tier": [dict(zip(TIER_NAMES, fr)) for fr in fold_rates],
        "monotone": monotone_rates(rates),
        "monotone_in_folds": all(monotone_rates(fr) for fr in fold_rates),
        "kl_to_target": round(kl, 4),
        "train_auc_before": None if a_b is None else round(a_b, 4),
        "train_auc_after": None if a_a is None else round(a_a, 4),
    }
    return stretch_model(model, s, stats), stats


# ----------------------------------------------------------------------------------------- driver
@dataclass
class CalibrationResult:
    model: ScoringModel
    cv_auc: float | None
    fold_aucs: list[float]
    train_auc: float | None
    selected: list[tuple[str, float]]
    snapshots: int
    positives: int
    seconds: float


def calibrate(
    data: TrainingData,
    snaps: Sequence[Snapshot],
    *,
    base: ScoringModel,
    horizon: int,
    every: int,
    model_id: str = "calibrated",
    folds: int = 3,
    n_knots: int = 8,
    l2: float = 1e-4,
    l1: float = L1,
    min_signal: float = 0.02,
    tier_target: Sequence[float] = TIER_TARGET,
    max_auc_loss: float = MAX_AUC_LOSS,
    log: Callable[[str], None] = lambda _m: None,
) -> CalibrationResult:
    """Fit a model on labelled snapshots; CV AUC is grouped by account (selection redone inside each fold).

    After the fit the score is stretched (see :func:`fit_tiers`) so that the fixed tiers hold roughly
    ``tier_target`` of the training snapshots (Critical, At Risk, Attention, Healthy), at a cost of at most
    ``max_auc_loss`` training AUC; the stretch, the tier shares and churn rates go into the calibration metadata.
    """
    import numpy as np
    from sklearn.model_selection import GroupKFold

    t0 = time.monotonic()
    _check_target(tier_target)
    if not 0 <= max_auc_loss <= 0.1:
        raise InputError(f"max AUC loss must be 0-0.1, got {max_auc_loss}")
    if not snaps:
        raise InputError("no snapshots to calibrate on (no active accounts with known outcomes)")
    y = np.array([s.label for s in snaps], dtype=np.int8)
    pos = int(y.sum())
    if pos < 10 or len(y) - pos < 10:
        raise InputError(f"calibration needs at least 10 churned and 10 retained snapshots; got {pos} churned of "
                         f"{len(y)} (more outcomes, a longer --horizon or a smaller --every)")
    cands = candidates_for(data.metrics)
    X = feature_matrix(data, snaps, cands)
    log(f"features: {len(snaps)} snapshots x {len(cands)} candidate readings ({time.monotonic() - t0:.1f}s)")
    groups = np.array([s.account_id for s in snaps])
    fold_aucs: list[float] = []
    n_groups = len(set(groups.tolist()))
    k = min(folds, n_groups)
    if k >= 2:
        for i, (tr, te) in enumerate(GroupKFold(n_splits=k).split(X, y, groups)):
            chosen = select(X[tr], y[tr], cands, min_signal)
            if not chosen:
                continue
            f = fit_gam(X[tr], y[tr], cands, chosen, n_knots=n_knots, l2=l2, l1=l1)
            a = auc(predict(f, X[te], cands), y[te])
            if a is not None:
                fold_aucs.append(a)
            log(f"fold {i + 1}/{k}: AUC {a if a is None else round(a, 4)} ({time.monotonic() - t0:.1f}s)")
    chosen = select(X, y, cands, min_signal)
    if not chosen:
        raise InputError("no usage metric or account fact carries churn signal in this data")
    fit = fit_gam(X, y, cands, chosen, n_knots=n_knots, l2=l2, l1=l1)
    train_auc = auc(predict(fit, X, cands), y)
    dates = sorted({s.as_of for s in snaps})
    cv = float(np.mean(fold_aucs)) if fold_aucs else None
    digest = hashlib.sha256(
        repr((data.source, len(snaps), pos, dates[0], dates[-1], horizon, every, n_knots, l2, l1,
              [round(t, 6) for t in tier_target], max_auc_loss,
              [(s.cand.key, s.knots, [round(v, 6) for v in s.values]) for s in fit.shapes])).encode()
    ).hexdigest()[:8]
    version = f"{dates[-1].strftime('%Y%m%d')}-{digest}"
    meta: dict[str, Any] = {
        "base_model": f"{base.id}@{base.version}",
        "source": data.source,
        "horizon_days": horizon,
        "every_days": every,
        "data_from": dates[0].isoformat(),
        "data_to": dates[-1].isoformat(),
        "snapshots": len(snaps),
        "accounts": n_groups,
        "positives": pos,
        "base_rate": round(pos / len(snaps), 5),
        "cv": f"GroupKFold({k}) by account" if k >= 2 else "none (too few accounts)",
        "cv_auc": None if cv is None else round(cv, 4),
        "cv_fold_aucs": [round(a, 4) for a in fold_aucs],
        "train_auc": None if train_auc is None else round(train_auc, 4),
        "knots": n_knots,
        "l2": l2,
        "l1": l1,
        "features": [{"reading": s.cand.label(), "key": s.cand.key,
                      "univariate_auc": round(s.uni_auc, 4)} for s in fit.shapes],
    }
    model = fit_to_model(fit, base, model_id=model_id, version=version, base_rate=pos / len(snaps), metadata=meta)
    model, st = fit_tiers(model, X, cands, y, groups, folds=folds, target=tier_target, max_auc_loss=max_auc_loss)
    log(f"tier stretch: centre {st['centre']:g}, factor {st['factor']:g}; tier shares {st['tier_shares']}; "
        f"churn rate by tier {st['churn_rate_by_tier']}; train AUC {st['train_auc_before']} -> "
        f"{st['train_auc_after']} ({time.monotonic() - t0:.1f}s)")
    return CalibrationResult(model, cv, fold_aucs, train_auc, [(s.cand.label(), s.uni_auc) for s in fit.shapes],
                             len(snaps), pos, time.monotonic() - t0)
