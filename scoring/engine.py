"""The one scoring engine: ``score_batch(inputs, compiled_model, as_of)``; one account is a batch of one.

Pure numpy over prepared inputs (usage columns, signal arrays, facts): no clock, no database, no files. Every
caller (the per-account API, ``why``, ``whatif``, calibration, backtests, ``score``, snapshots, the demo) goes
through it, so a rule is written once.

Per account:

* a category with metric or fact items ("measured") has subscore = weighted mean of its item subscores + the
  decayed, saturated points of its verified signals, clamped to 0-100; the measured categories share the weights
  of all categories with such data, and their weighted mean is the account's level M (the model's no-data score
  when no category is measured);
* a category with signals only moves the score by its nominal share of all category weights times its signal
  points (its virtual subscore M + points clamped to 0-100): it never pulls the score towards a baseline, so
  adding bad news can only lower the score and good news only raise it;
* caps: while a verified, unhedged signal of a capping type counts, the score is at most the cap.

Every operation is monotone, so adding a negative signal or worsening a metric in its unhealthy direction never
raises the total. The total is computed in floating point and rounded once into hundredths; contributions are
rounded per item and the rounding residue (a few hundredths at most) is carried by the largest item, so the
contributions add up to the total exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np

from extractors.models import (
    CATEGORIES,
    Account,
    CategoryScore,
    Citation,
    Contribution,
    HealthScore,
    MetricRef,
    Signal,
    taxonomy,
    tier_for,
)
from scoring.columns import UsageColumns, View, empty_columns, map_values
from scoring.facts import Fact
from scoring.model import PiecewiseMap, ScoringModel
from scoring.wording import describe_fact, describe_metric, fact_code, metric_code, signal_reason

N_CAT = len(CATEGORIES)
_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
ACCOUNT_FACTS = ("days_to_renewal", "tenure_days")


# ----------------------------------------------------------------------------------------- compiled model
@dataclass(frozen=True, slots=True)
class Rubric:
    """One metric reading of the model, flattened (direction and unit explicit for narration)."""

    key: str
    metric: str
    transform: str
    aggregate: str
    window: int
    denominator: str | None
    denominator_aggregate: str | None
    category: str
    weight: float
    map: PiecewiseMap
    missing: float | None
    label: str
    healthy: str | None
    unit: str | None
    needs_other: bool = False


@dataclass(frozen=True, slots=True)
class FactRule:
    name: str
    category: str
    weight: float
    map: PiecewiseMap
    label: str
    needs_other: bool
    healthy: str | None
    unit: str | None


@dataclass(frozen=True, slots=True)
class Cap:
    signal_type: str
    max_h: int
    within_days: int
    min_severity: float
    min_confidence: float
    reason: str


@dataclass(slots=True)
class CompiledModel:
    """A model flattened once into plain values and arrays (per segment profile)."""

    model: ScoringModel
    model_hash: str
    weights: np.ndarray  # per category
    weight_total: float
    neutral: np.ndarray
    types: list[str]  # taxonomy names, sorted: the signal type index
    type_index: dict[str, int]
    type_cat: np.ndarray  # category index per type, -1 when the model gives the type no points
    type_points: np.ndarray
    type_sev: np.ndarray
    type_half_life: np.ndarray
    saturation: float
    hedged_factor: float
    min_confidence: float
    max_age: int
    rubrics: list[Rubric]
    facts: list[FactRule]
    unknown: Rubric | None
    unknown_max: int
    known_metrics: frozenset[str]
    caps: list[Cap]
    no_data_score: float
    _decay: np.ndarray | None = None

    @property
    def decay(self) -> np.ndarray:
        """0.5 ** (age / half-life) per type and age in days, built on first use."""
        if self._decay is None:
            ages = np.arange(self.max_age + 1, dtype=np.float64)
            hl = np.where(self.type_half_life > 0, self.type_half_life, 1.0)
            self._decay = np.power(0.5, ages[None, :] / hl[:, None])
        return self._decay


_compiled: dict[int, tuple[ScoringModel, CompiledModel]] = {}


def compile_model(model: ScoringModel) -> CompiledModel:
    """The model (already profiled for a segment) as arrays; cached per model object."""
    hit = _compiled.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    tax = taxonomy()
    types = sorted(tax)
    tcat = np.full(len(types), -1, dtype=np.int64)
    pts, sev, hl = np.zeros(len(types)), np.zeros(len(types)), np.ones(len(types))
    for i, t in enumerate(types):
        r = model.signals.get(t)
        if r is not None:
            tcat[i] = _CAT_INDEX[tax[t].category]
            pts[i], sev[i], hl[i] = r.points, r.severity_scaling, r.half_life_days
    um = model.unknown_metrics
    cm = CompiledModel(
        model=model,
        model_hash=model.content_hash,
        weights=np.array([model.categories[c].weight for c in CATEGORIES], dtype=np.float64),
        weight_total=float(sum(model.categories[c].weight for c in CATEGORIES)),
        neutral=np.array([model.categories[c].neutral for c in CATEGORIES], dtype=np.float64),
        types=types,
        type_index={t: i for i, t in enumerate(types)},
        type_cat=tcat,
        type_points=pts,
        type_sev=sev,
        type_half_life=hl,
        saturation=model.signal_defaults.saturation,
        hedged_factor=model.signal_defaults.hedged_factor,
        min_confidence=model.signal_defaults.min_confidence,
        max_age=model.signal_defaults.max_age_days,
        rubrics=[
            Rubric(m.key, m.metric, m.transform, m.aggregate, m.window_days, m.denominator, m.denominator_aggregate,
                   m.category, m.weight, m.map, m.missing, m.description or f"{m.metric} {m.transform}",
                   m.healthy or m.map.healthy, m.unit, m.needs_other_data)
            for m in model.metrics
        ],
        facts=[FactRule(f.fact, f.category, f.weight, f.map, f.description, f.needs_other_data,
                        f.healthy or f.map.healthy, f.unit) for f in model.facts],
        unknown=(
            Rubric("", "", um.transform, "sum", um.window_days, None, None, um.category, um.weight, um.map, None,
                   "", um.map.healthy, "days" if um.transform == "days_since_last" else None)
            if um is not None and um.enabled and um.max_metrics > 0
            else None
        ),
        unknown_max=um.max_metrics if um is not None else 0,
        known_metrics=model.known_metrics,
        caps=[Cap(c.signal, round(c.max_score * 100), c.within_days, c.min_severity, c.min_confidence,
                  c.reason or f"a recent {c.signal.replace('_', ' ')} caps the score") for c in model.caps],
        no_data_score=model.no_data_score,
    )
    if len(_compiled) > 64:
        _compiled.clear()
    _compiled[id(model)] = (model, cm)
    return cm


# ----------------------------------------------------------------------------------------- inputs
@dataclass
class SignalBatch:
    """Verified, dated, non-negated signals of many accounts as columns (see :func:`signal_batch`).

    ``account`` indexes the batch's accounts; ``type`` the compiled model's ``types``; ``rank`` breaks ties
    between equally strong signals of one type (the ids' sort order); ``objects`` keeps the signals themselves
    for explanations (None for bulk arrays)."""

    account: np.ndarray
    type: np.ndarray
    day: np.ndarray
    severity: np.ndarray
    hedged: np.ndarray
    rank: np.ndarray
    confidence: np.ndarray | None = None
    objects: list[Signal] | None = None


def signal_day(sig: Signal) -> date | None:
    """The day a signal happened: its own date, else the earliest dated citation."""
    if sig.occurred_at is not None:
        return sig.occurred_at.date()
    days = [c.occurred_at.date() for c in sig.evidence if c.occurred_at is not None]
    return min(days) if days else None


def signal_batch(per_account: Sequence[Sequence[Signal]], cm: CompiledModel, as_of: date
                 ) -> tuple[SignalBatch, list[list[str]]]:
    """The signals that can count as of a date, as columns, and per account the notes on those that cannot."""
    a = as_of.toordinal()
    acc: list[int] = []
    typ: list[int] = []
    day: list[int] = []
    sev: list[float] = []
    hed: list[bool] = []
    conf: list[float] = []
    objs: list[Signal] = []
    notes: list[list[str]] = []
    for i, sigs in enumerate(per_account):
        unverified = undated = 0
        for s in sigs:
            d = signal_day(s)
            if d is not None and d.toordinal() > a:
                continue  # after as-of: as if it did not exist (not even in the notes)
            if not s.evidence or s.unverified_quotes:
                unverified += 1
                continue
            if s.negated:
                continue
            ti = cm.type_index.get(s.type)
            if ti is None or cm.type_cat[ti] < 0 or s.confidence < cm.min_confidence:
                continue
            if d is None:
                undated += 1
                continue
            if a - d.toordinal() > cm.max_age:
                continue
            acc.append(i)
            typ.append(ti)
            day.append(d.toordinal())
            sev.append(s.severity)
            hed.append(s.hedged)
            conf.append(s.confidence)
            objs.append(s)
        n: list[str] = []
        if unverified:
            n.append(f"{unverified} unverified signal(s) not scored")
        if undated:
            n.append(f"{undated} undated signal(s) not scored (no date to place them before as-of)")
        notes.append(n)
    order = sorted(range(len(objs)), key=lambda j: objs[j].id)
    rank = np.empty(len(objs), dtype=np.int64)
    rank[order] = np.arange(len(objs))
    return SignalBatch(np.asarray(acc, dtype=np.int64), np.asarray(typ, dtype=np.int64),
                       np.asarray(day, dtype=np.int64), np.asarray(sev, dtype=np.float64),
                       np.asarray(hed, dtype=bool), rank, np.asarray(conf, dtype=np.float64), objs), notes


@dataclass
class BatchInputs:
    """What the engine reads for a batch of accounts (all of one compiled model, i.e. one segment)."""

    accounts: Sequence[Account]
    usage: UsageColumns | None = None
    signals: SignalBatch | None = None
    facts: Sequence[Mapping[str, Fact] | None] | None = None  # document facts per account (override account facts)
    expected_metrics: frozenset[str] = frozenset()  # metrics the tenant reports by as-of
    notes: Sequence[Sequence[str]] | None = None  # per account, from input preparation


# ----------------------------------------------------------------------------------------- result
@dataclass(slots=True)
class Item:
    """One contribution of one account (floats until rounded)."""

    key: str
    kind: str
    category: str | None
    value: float  # points, float
    weight: float | None
    reason: str
    reason_code: str
    signal: Signal | None = None
    metric: MetricRef | None = None
    evidence: tuple[Citation, ...] = ()
    h: int = 0


@dataclass(slots=True)
class AccountScore:
    """One account's explained score (hundredths), convertible to the stored :class:`HealthScore`."""

    account_id: str
    as_of: date
    total_h: int
    items: list[Item]
    categories: list[tuple[str, float, float, float | None, int, bool]]  # cat, weight, eff %, sub, points_h, data
    notes: list[str]
    model_id: str
    model_version: str
    model_hash: str
    inputs_digest: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.total_h / 100

    @property
    def tier(self) -> str:
        return tier_for(self.score)

    def to_health_score(self) -> HealthScore:
        """The stored model, built without re-validation (every value was produced here)."""
        contributions = [
            Contribution.model_construct(
                key=it.key, kind=it.kind, category=it.category, points=it.h / 100,
                weight=None if it.weight is None else round(it.weight, 6), reason=it.reason,
                reason_code=it.reason_code,
                signal_id=it.signal.id if it.signal is not None else None,
                signal_type=it.signal.type if it.signal is not None else None,
                extractor=it.signal.extractor if it.signal is not None else None,
                evidence=list(it.signal.evidence) if it.signal is not None else list(it.evidence),
                metric=it.metric,
            )
            for it in self.items
        ]
        cats = [CategoryScore.model_construct(category=c, weight=w, effective_weight=ew, subscore=sub,
                                              points=ph / 100, has_data=has)
                for c, w, ew, sub, ph, has in self.categories]
        return HealthScore.model_construct(
            account_id=self.account_id, as_of=self.as_of, score=self.score, tier=self.tier, categories=cats,
            contributions=contributions, notes=list(self.notes), model_id=self.model_id,
            model_version=self.model_version, model_hash=self.model_hash, inputs_digest=self.inputs_digest,
        )


@dataclass
class BatchResult:
    as_of: date
    account_ids: list[str]
    totals: np.ndarray  # hundredths per account
    accounts: list[AccountScore] | None = None  # with explain=True


# ----------------------------------------------------------------------------------------- the engine
@dataclass
class _Col:
    """One base item (metric or fact reading) for every account of the batch."""

    key: str
    kind: str
    cat: int
    weight: float
    present: np.ndarray
    sub: np.ndarray
    value: np.ndarray
    has_value: np.ndarray
    needs_other: bool
    metric: str
    transform: str
    window: int
    label: str
    healthy: str | None
    unit: str | None
    missing: float | None = None
    unknown: bool = False
    fact_objs: list[Fact | None] | None = None


def _clip(x: np.ndarray) -> np.ndarray:
    return np.minimum(100.0, np.maximum(0.0, x))


def score_batch(inputs: BatchInputs, cm: CompiledModel, as_of: date, *, explain: bool = False,
                digest: bool = True) -> BatchResult:
    """Scores of every account of the batch as of a date (accounts that had not started are scored anyway:
    the caller chooses whom to score). ``explain`` builds each account's contributions and notes."""
    accounts = inputs.accounts
    n = len(accounts)
    a = as_of.toordinal()
    ids = [x.account_id for x in accounts]
    has_start = np.array([x.start_date is not None for x in accounts], dtype=bool)
    start = np.array([x.start_date.toordinal() if x.start_date else 0 for x in accounts], dtype=np.int64)
    has_end = np.array([x.end_date is not None for x in accounts], dtype=bool)
    end = np.array([x.end_date.toordinal() if x.end_date else 0 for x in accounts], dtype=np.int64)
    cols = inputs.usage if inputs.usage is not None else empty_columns(ids)
    rows = np.array([cols.account_row.get(x, -1) for x in ids], dtype=np.int64)
    view = View(cols, rows, a, start, has_start, end, has_end)
    expected = inputs.expected_metrics
    items: list[_Col] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        _metric_items(items, cm, view, expected, n, start, has_start)
        _fact_items(items, cm, inputs, n, a, start, has_start, end, has_end)
        sig = _signal_points(inputs.signals, cm, a, n)
        res = _combine(items, sig, cm, n)
    totals, capped_by = _caps(res["total_h"], inputs.signals, sig, cm, a, n)
    out = BatchResult(as_of, ids, totals)
    if explain:
        out.accounts = [_explain(i, accounts[i], as_of, items, sig, res, totals, capped_by, cm, inputs, digest)
                        for i in range(n)]
    return out


def rubric_totals(cm: CompiledModel, subs: np.ndarray, *, no_data_score: float | None = None) -> np.ndarray:
    """Float totals (0-100, before rounding and caps) of rows whose rubric outputs are given, without text
    signals: column j of ``subs`` is ``cm.rubrics[j]``, then ``cm.facts`` in order; NaN = the item is absent.
    The engine's own category arithmetic (:func:`_combine`: dependent facts, weights shared among measured
    categories, the no-data score), so calibration ranks candidates exactly as :func:`score_batch` scores.
    ``no_data_score`` replaces the model's (a stretched model's, while the stretch is being chosen)."""
    subs = np.asarray(subs, dtype=np.float64)
    n, k = subs.shape if subs.ndim == 2 else (len(subs), 0)
    rules: list[tuple[str, str, float, bool]] = [(r.key, r.category, r.weight, False) for r in cm.rubrics] + \
        [(f"fact:{f.name}", f.category, f.weight, f.needs_other) for f in cm.facts]
    if k != len(rules):
        raise ValueError(f"rubric_totals: {k} columns for {len(rules)} rubrics and facts")
    items = []
    for j, (key, cat, weight, needs_other) in enumerate(rules):
        col = subs[:, j]
        present = ~np.isnan(col)
        items.append(_Col(key, "fact" if key.startswith("fact:") else "metric", _CAT_INDEX[cat], weight, present,
                          np.where(present, col, 0.0), col, present, needs_other, key, "", 0, key, None, None))
    if no_data_score is not None:
        cm = replace(cm, no_data_score=float(no_data_score))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        res = _combine(items, _signal_points(None, cm, 0, n), cm, n)
    return res["level"]


def _metric_items(items: list[_Col], cm: CompiledModel, view: View, expected: frozenset[str], n: int,
                  start: np.ndarray, has_start: np.ndarray) -> None:
    reported: dict[str, np.ndarray] = {}

    def is_reported(metric: str) -> np.ndarray:
        hit = reported.get(metric)
        if hit is None:
            hit = reported[metric] = np.ones(n, dtype=bool) if metric in expected else view.present(metric)
        return hit

    for r in cm.rubrics:
        known = is_reported(r.metric)
        if r.missing is None and not known.any():
            continue
        # "no rows since start" is a reading only for a metric the tenant reports; otherwise it is no data
        ok, value = view.reading(r.metric, r.transform, r.window, r.aggregate, r.denominator, start,
                                 has_start & known, r.denominator_aggregate)
        sub = map_values(r.map, value)
        if r.missing is None:
            present = known & ok
        else:  # a calibrated "no reading yet" level: the item always counts
            present = np.ones(n, dtype=bool)
            sub = np.where(ok, sub, r.missing)
        items.append(_Col(r.key, "metric", _CAT_INDEX[r.category], r.weight, present, sub, value, ok, r.needs_other,
                          r.metric, r.transform, r.window, r.label, r.healthy, r.unit, r.missing))
    u = cm.unknown
    if u is None:
        return
    taken = np.zeros(n, dtype=np.int64)
    for m in sorted(set(view.c.metric_names) | expected):
        if m in cm.known_metrics:
            continue
        rep = is_reported(m)
        if not rep.any():
            continue
        use = rep & (taken < cm.unknown_max)
        taken += rep
        ok, value = view.reading(m, u.transform, u.window, "sum", None, start, has_start, None)
        items.append(_Col(f"metric:{m}:{u.transform}", "metric", _CAT_INDEX[u.category], u.weight, use & ok,
                          map_values(u.map, value), value, ok, False, m, u.transform, u.window,
                          f"{m.replace('_', ' ')} (not in the model, read as activity)", u.healthy, u.unit,
                          unknown=True))


def _fact_items(items: list[_Col], cm: CompiledModel, inputs: BatchInputs, n: int, a: int, start: np.ndarray,
                has_start: np.ndarray, end: np.ndarray, has_end: np.ndarray) -> None:
    given = inputs.facts
    for f in cm.facts:
        if f.name == "days_to_renewal":
            have, v = has_end.copy(), (end - a).astype(np.float64)
        elif f.name == "tenure_days":
            have, v = has_start & (start <= a), (a - start).astype(np.float64)
        else:
            have, v = np.zeros(n, dtype=bool), np.zeros(n)
        objs: list[Fact | None] | None = None
        if given is not None:
            objs = [None] * n
            for i, fs in enumerate(given):
                fo = fs.get(f.name) if fs else None
                if fo is None:
                    continue
                if fo.on is not None and fo.on.toordinal() > a:
                    have[i] = False  # facts dated after as-of never count
                    continue
                have[i], v[i] = True, fo.value
                objs[i] = fo
        if have.any():
            items.append(_Col(f"fact:{f.name}", "fact", _CAT_INDEX[f.category], f.weight, have,
                              map_values(f.map, v), v, have, f.needs_other, f.name, "fact", 0,
                              f.label, f.healthy, f.unit, fact_objs=objs))


def _run_starts(key: np.ndarray) -> np.ndarray:
    """For each element of a grouped array, the index where its run of equal keys starts."""
    m = len(key)
    first = np.ones(m, dtype=bool)
    if m:
        first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    return np.repeat(starts, np.diff(np.append(starts, m)))


def _strength_rank(strength: np.ndarray, gfirst: np.ndarray) -> np.ndarray:
    """Rank of each element in its run (runs given by start index), strongest first, ties by position.

    Pass d compares every element with the one d places later in the same run: the work is the sum of the
    squared run sizes (an account's signals of one type: small), with no float sort."""
    m = len(strength)
    k = np.zeros(m, dtype=np.int64)
    if not m:
        return k
    first = np.flatnonzero(gfirst == np.arange(m))
    size = np.diff(np.append(first, m))
    run_size = np.repeat(size, size)
    local = np.arange(m) - gfirst
    active = np.flatnonzero(run_size > 1)
    d = 1
    while len(active):
        active = active[local[active] + d < run_size[active]]
        if not len(active):
            break
        later = active + d
        si, sl = strength[active], strength[later]
        k[active] += sl > si  # a later one (higher id) outranks only when strictly stronger
        k[later] += si >= sl  # an earlier one outranks on a tie
        d += 1
    return k


@dataclass
class _Sig:
    idx: np.ndarray  # position in the SignalBatch
    acc: np.ndarray
    cat: np.ndarray
    delta: np.ndarray  # subscore points after decay, severity, hedging and saturation
    k: np.ndarray  # rank within its (account, type) group
    age: np.ndarray


def _signal_points(sb: SignalBatch | None, cm: CompiledModel, a: int, n: int) -> _Sig:
    if sb is None or not len(sb.account):
        e = np.zeros(0, dtype=np.int64)
        return _Sig(e, e, e, np.zeros(0), e, e)
    age = a - np.asarray(sb.day, dtype=np.int64)
    typ = np.asarray(sb.type, dtype=np.int64)
    keep = (age >= 0) & (age <= cm.max_age) & (cm.type_cat[typ] >= 0)
    idx = np.flatnonzero(keep)
    acc = np.asarray(sb.account, dtype=np.int64)[idx]
    typ, age = typ[idx], age[idx]
    sev = np.asarray(sb.severity, dtype=np.float64)[idx]
    hedged = np.asarray(sb.hedged, dtype=bool)[idx]
    rank = np.asarray(sb.rank)[idx]
    raw = cm.type_points[typ] * cm.decay[typ, age] * (1.0 + cm.type_sev[typ] * (2.0 * sev - 1.0))
    raw = np.where(hedged, raw * cm.hedged_factor, raw)
    # group by (account, type) in id order, then rank by strength inside each small group
    by_id = np.argsort(rank, kind="stable")
    idx, acc, typ, raw, age = idx[by_id], acc[by_id], typ[by_id], raw[by_id], age[by_id]
    order = np.argsort(acc * len(cm.types) + typ, kind="stable")
    idx, acc, typ, raw, age = idx[order], acc[order], typ[order], raw[order], age[order]
    gfirst = _run_starts(acc * len(cm.types) + typ)
    k = _strength_rank(np.abs(raw), gfirst)
    delta = raw / (1.0 + cm.saturation * k)
    return _Sig(idx, acc, cm.type_cat[typ], delta, k, age)


def _combine(items: list[_Col], sig: _Sig, cm: CompiledModel, n: int) -> dict[str, Any]:
    """Category arithmetic for all accounts: the float total and what the explanations need."""
    w = cm.weights
    # measured categories: items with weight whose category has data (dependent facts need another item)
    bw = np.zeros((N_CAT, n))
    for it in items:
        if not it.needs_other and it.weight > 0:
            bw[it.cat] += np.where(it.present, it.weight, 0.0)
    own = bw > 0
    for it in items:
        if it.needs_other and it.weight > 0:
            bw[it.cat] += np.where(it.present & own[it.cat], it.weight, 0.0)
    measured = bw > 0  # (cat, account)
    wb = (w[:, None] * measured).sum(0)
    any_measured = wb > 0
    ew = np.where(measured, w[:, None] / np.where(any_measured, wb, 1.0)[None, :], 0.0)
    safe_bw = np.where(measured, bw, 1.0)
    s = np.zeros((N_CAT, n))
    for it in items:
        take = it.present & measured[it.cat] & (~it.needs_other | own[it.cat])
        s[it.cat] += np.where(take, (it.weight / safe_bw[it.cat]) * it.sub, 0.0)
    sig_sum = np.zeros((N_CAT, n))
    np.add.at(sig_sum, (sig.cat, sig.acc), sig.delta)
    has_sig = np.zeros((N_CAT, n), dtype=bool)
    has_sig[sig.cat, sig.acc] = True
    s = s + sig_sum
    cl = _clip(s)
    level = np.where(any_measured, (ew * cl).sum(0), cm.no_data_score)
    signal_only = has_sig & ~measured
    alpha = w / cm.weight_total  # nominal share of all category weights
    v = level[None, :] + sig_sum
    clv = _clip(v)
    total = level + (np.where(signal_only, alpha[:, None] * (clv - level[None, :]), 0.0)).sum(0)
    no_data = ~any_measured & ~signal_only.any(0)
    total_h = np.where(no_data, round(cm.no_data_score * 100), np.clip(np.rint(total * 100), 0, 10000))
    return {"measured": measured, "own": own, "ew": ew, "bw": bw, "s": s, "cl": cl, "level": level,
            "signal_only": signal_only, "alpha": alpha, "v": v, "clv": clv, "no_data": no_data,
            "total_h": total_h.astype(np.int64)}


def _caps(total_h: np.ndarray, sb: SignalBatch | None, sig: _Sig, cm: CompiledModel, a: int, n: int
          ) -> tuple[np.ndarray, dict[int, tuple[Cap, int]]]:
    """The totals after caps, and per capped account (cap, position of the capping signal in the batch)."""
    capped: dict[int, tuple[Cap, int]] = {}
    if not cm.caps or sb is None or not len(sig.idx):
        return total_h, capped
    out = total_h.copy()
    conf = sb.confidence if sb.confidence is not None else np.ones(len(sb.account))
    for cap in cm.caps:
        ti = cm.type_index[cap.signal_type]
        j = sig.idx
        ok = ((np.asarray(sb.type)[j] == ti) & ~np.asarray(sb.hedged)[j] & (sig.age <= cap.within_days)
              & (np.asarray(sb.severity)[j] >= cap.min_severity) & (conf[j] >= cap.min_confidence))
        for pos in np.flatnonzero(ok).tolist():
            acc = int(sig.acc[pos])
            if out[acc] > cap.max_h:
                out[acc] = cap.max_h
                capped[acc] = (cap, int(sig.idx[pos]))
    return out, capped


# ----------------------------------------------------------------------------------------- explanations
def _day(o: int) -> date:
    return date.fromordinal(o)


def _metric_ref(it: _Col, i: int, a: int) -> MetricRef:
    if it.kind == "fact":
        fo = it.fact_objs[i] if it.fact_objs is not None else None
        return MetricRef.model_construct(metric=it.metric, transform="fact", value=float(it.value[i]),
                                         window_start=None, window_end=fo.on if fo is not None else _day(a),
                                         subscore=round(float(it.sub[i]), 2), unit=it.unit, healthy=it.healthy)
    if not it.has_value[i]:
        return MetricRef.model_construct(metric=it.metric, transform=it.transform, value=None, window_start=None,
                                         window_end=_day(a), subscore=it.missing, unit=it.unit, healthy=it.healthy)
    val = float(it.value[i])
    if it.transform == "days_since_last":
        ws = _day(a - int(val))
    elif it.transform == "change":
        ws = _day(a - 2 * it.window + 1)
    else:
        ws = _day(a - it.window + 1)
    return MetricRef.model_construct(metric=it.metric, transform=it.transform, value=val, window_start=ws,
                                     window_end=_day(a), subscore=round(float(it.sub[i]), 2), unit=it.unit,
                                     healthy=it.healthy)


def _explain(i: int, account: Account, as_of: date, items: list[_Col], sig: _Sig, res: dict[str, Any],
             totals: np.ndarray, capped_by: dict[int, tuple[Cap, int]], cm: CompiledModel, inputs: BatchInputs,
             digest: bool) -> AccountScore:
    a = as_of.toordinal()
    notes = list(inputs.notes[i]) if inputs.notes is not None else []
    measured, own, ew, bw = res["measured"][:, i], res["own"][:, i], res["ew"][:, i], res["bw"][:, i]
    s, cl, level = res["s"][:, i], res["cl"][:, i], float(res["level"][i])
    signal_only, alpha, v, clv = res["signal_only"][:, i], res["alpha"], res["v"][:, i], res["clv"][:, i]
    out: list[Item] = []
    parts: list[Any] = []
    per_cat: dict[int, list[Item]] = {c: [] for c in range(N_CAT)}
    for it in items:
        if not it.present[i]:
            continue
        if it.needs_other and not own[it.cat]:
            continue
        ref = _metric_ref(it, i, a)
        c = it.cat
        if measured[c] and it.weight > 0:
            share = it.weight / bw[c]
            m = float(ew[c] * share)
            val = m * (float(it.sub[i]) - float(cm.neutral[c]))
        else:
            m, val = 0.0, 0.0  # zero-weight item: shown, worth nothing
        if it.kind == "fact":
            fo = it.fact_objs[i] if it.fact_objs is not None else None
            reason = describe_fact(it.metric, None, ref.value)
            code = fact_code(it.metric, float(it.value[i]))
            ev = tuple(fo.evidence) if fo is not None else ()
        else:
            reason = describe_metric(None, ref, label=it.label if it.unknown else None)
            code = metric_code(it.metric, it.transform, ref.value, ref.subscore, it.healthy)
            ev = ()
        per_cat[c].append(Item(it.key, it.kind, CATEGORIES[c], val, m, reason, code, metric=ref, evidence=ev))
        parts.append((it.key, ref.value))
    objs = inputs.signals.objects if inputs.signals is not None else None
    mine = np.flatnonzero(sig.acc == i)
    for pos in mine.tolist():
        c = int(sig.cat[pos])
        d = float(sig.delta[pos])
        m = float(ew[c]) if measured[c] else float(alpha[c])
        so = objs[int(sig.idx[pos])] if objs is not None else None
        t = so.type if so is not None else cm.types[int(np.asarray(inputs.signals.type)[sig.idx[pos]])]  # type: ignore[union-attr]
        key = f"signal:{so.id}" if so is not None else f"signal:{int(sig.idx[pos])}"
        quote = so.evidence[0].quote if so is not None and so.evidence and so.extractor != "whatif" else None
        reason = signal_reason(t, quote,
                               int(sig.age[pos]), bool(so.hedged) if so is not None else False, int(sig.k[pos]))
        per_cat[c].append(Item(key, "signal", CATEGORIES[c], m * d, m, reason, t, signal=so))
        if so is not None:
            parts.append((so.id, t, so.severity, so.confidence, int(sig.age[pos]), so.hedged))
    # category bookkeeping: baselines (the centre items are shown against) and clamps
    cats: list[tuple[str, float, float, float | None, int, bool]] = []
    missing = []
    for c in range(N_CAT):
        name = CATEGORIES[c]
        lst = per_cat[c]
        if measured[c]:
            e = float(ew[c])
            lst.insert(0, Item(f"baseline:{name}", "baseline", name, e * float(cm.neutral[c]), e,
                               f"starting point of the {name} category", "neutral_baseline"))
            if cl[c] != s[c]:
                lst.append(Item(f"clamp:{name}", "clamp", name, e * (float(cl[c]) - float(s[c])), e,
                                f"the {name} subscore is kept within 0-100",
                                "clamp_high" if s[c] > 100 else "clamp_low"))
        elif signal_only[c]:
            al = float(alpha[c])
            if clv[c] != v[c]:
                lst.append(Item(f"clamp:{name}", "clamp", name, al * (float(clv[c]) - float(v[c])), al,
                                f"the {name} subscore is kept within 0-100",
                                "clamp_high" if v[c] > 100 else "clamp_low"))
        elif not lst:
            missing.append(name)
        out.extend(lst)
    no_measured = not measured.any()
    if bool(res["no_data"][i]):
        out.append(Item("baseline:no_data", "baseline", None, cm.no_data_score, None,
                        "no usage, facts or verified signals as of this date: the model's no-data score", "no_data"))
        notes.append("no data in any category with weight: score is the model's no-data score")
    elif no_measured:
        out.insert(0, Item("baseline:no_data", "baseline", None, level, None,
                           "no usage or facts yet: the score starts from the model's no-data score", "no_data"))
    counted_metrics = sorted({it.metric for it in items if it.kind == "metric" and it.present[i] and it.has_value[i]
                              and measured[it.cat]})
    counted_facts = sorted({it.metric for it in items if it.kind == "fact" and it.present[i]
                            and (not it.needs_other or own[it.cat])})
    n_sig = len(mine)
    notes.append("data coverage: " + "; ".join((
        f"metrics {', '.join(counted_metrics)}" if counted_metrics else "no usage metrics",
        f"facts {', '.join(counted_facts)}" if counted_facts else "no facts",
        f"{n_sig} verified signal(s)")))
    if missing and not bool(res["no_data"][i]):
        notes.append(f"no data for {', '.join(missing)}: their weight is shared among the categories with data")
    so_names = [CATEGORIES[c] for c in range(N_CAT) if signal_only[c]]
    if so_names and not no_measured:
        notes.append(f"{', '.join(so_names)}: signals only (no metric or fact), counted at the category's share "
                     "of all weights")
    # rounding: items to hundredths; the residue goes to the largest item so they add up to the total
    pre_cap = int(res["total_h"][i])
    for it in out:
        it.h = int(round(it.value * 100))
    if out:
        diff = pre_cap - sum(it.h for it in out)
        if diff:
            big = max(range(len(out)), key=lambda j: (abs(out[j].h), -j))
            out[big].h += diff
    total = int(totals[i])
    if i in capped_by:
        cap, spos = capped_by[i]
        so = objs[spos] if objs is not None else None
        out.append(Item(f"cap:{cap.signal_type}", "cap", None, (total - pre_cap) / 100, None,
                        f"score capped at {cap.max_h / 100:g} ({tier_for(cap.max_h / 100)}): {cap.reason}",
                        f"cap:{cap.signal_type}", evidence=tuple(so.evidence) if so is not None else (),
                        h=total - pre_cap))
        notes.append(f"score capped at {cap.max_h / 100:g}: {cap.reason}")
    for c in range(N_CAT):
        name = CATEGORIES[c]
        ph = sum(it.h for it in out if it.category == name)
        if measured[c]:
            cats.append((name, float(cm.weights[c]), round(float(ew[c]) * 100, 4), round(float(cl[c]), 2), ph, True))
        elif signal_only[c]:
            cats.append((name, float(cm.weights[c]), round(float(alpha[c]) * 100, 4), round(float(clv[c]), 2), ph,
                         True))
        else:
            cats.append((name, float(cm.weights[c]), 0.0, None, 0, False))
    dg = ""
    if digest:
        payload = [account.account_id, account.start_date, account.end_date, account.segment, as_of, cm.model_hash,
                   sorted(parts, key=repr)]
        dg = hashlib.sha256(json.dumps(payload, default=str, separators=(",", ":")).encode()).hexdigest()
    model = cm.model
    return AccountScore(account.account_id, as_of, total, out, cats, notes, model.id, model.version, cm.model_hash,
                        dg)


def window_start(as_of: date, days: int) -> date:
    return as_of - timedelta(days=days - 1)


__all__ = [
    "AccountScore", "BatchInputs", "BatchResult", "CompiledModel", "SignalBatch", "compile_model", "score_batch",
    "signal_batch", "signal_day",
]
