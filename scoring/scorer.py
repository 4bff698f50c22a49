"""The pure, deterministic weighted scorer: no clock, no database, no randomness.

Arithmetic is done in integer hundredths of a point: every contribution is rounded once, a clamp is its own
contribution, and the total is the sum of the contributions, so they add up to the score exactly.

Per category: subscore = weighted mean of its metric and fact subscores (or the category's ``neutral`` when it has
signals only) + the decayed, saturated points of its verified signals, clamped to 0-100. The total is the sum of
category subscores times their effective weights (configured weights shared out among categories with data).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from extractors.models import (
    CATEGORIES,
    Account,
    CategoryScore,
    Citation,
    Contribution,
    HealthScore,
    MetricRef,
    Signal,
    UsageRow,
    tier_for,
)
from scoring.facts import Fact, account_facts
from scoring.model import PiecewiseMap, ScoringModel
from scoring.usage import AccountUsage, Series, account_usage, reading

_FACT_LABELS = {
    "days_to_renewal": "days to renewal",
    "tenure_days": "days as a customer",
    "distinct_contacts_90d": "distinct customer contacts (90 days)",
    "days_since_last_conversation": "days since the last conversation",
    "documents_90d": "conversations (90 days)",
}


# ----------------------------------------------------------------------------------------- compiled model
class _Rubric(NamedTuple):
    key: str
    metric: str
    transform: str
    aggregate: str
    window: int
    denominator: str | None
    category: str
    weight: float
    map: PiecewiseMap
    description: str
    denominator_aggregate: str | None = None
    missing: float | None = None


@dataclass(slots=True)
class Compiled:
    """A model flattened into plain values once, so the hot loop reads tuples, not pydantic attributes."""

    model: ScoringModel
    model_hash: str
    weights: dict[str, float]
    neutral: dict[str, float]
    signals: dict[str, tuple[float, float, float, str]]  # type -> (points, half-life, severity scaling, category)
    saturation: float
    hedged_factor: float
    min_confidence: float
    max_age: int
    rubrics: list[_Rubric]
    facts: list[tuple[str, str, float, PiecewiseMap, str, bool]]  # (fact, category, weight, map, text, needs other)
    unknown: _Rubric | None
    unknown_max: int
    known_metrics: frozenset[str]


_compiled: dict[int, tuple[ScoringModel, Compiled]] = {}


def compile_model(model: ScoringModel) -> Compiled:
    hit = _compiled.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    from extractors.models import taxonomy

    tax = taxonomy()
    um = model.unknown_metrics
    c = Compiled(
        model=model,
        model_hash=model.content_hash,
        weights={k: v.weight for k, v in model.categories.items()},
        neutral={k: v.neutral for k, v in model.categories.items()},
        signals={t: (r.points, r.half_life_days, r.severity_scaling, tax[t].category) for t, r in model.signals.items()},
        saturation=model.signal_defaults.saturation,
        hedged_factor=model.signal_defaults.hedged_factor,
        min_confidence=model.signal_defaults.min_confidence,
        max_age=model.signal_defaults.max_age_days,
        rubrics=[
            _Rubric(m.key, m.metric, m.transform, m.aggregate, m.window_days, m.denominator, m.category, m.weight,
                    m.map, m.description, m.denominator_aggregate, m.missing)
            for m in model.metrics
        ],
        facts=[(f.fact, f.category, f.weight, f.map, f.description, f.needs_other_data) for f in model.facts],
        unknown=(
            _Rubric("", "", um.transform, "sum", um.window_days, None, um.category, um.weight, um.map, "")
            if um is not None and um.enabled and um.max_metrics > 0
            else None
        ),
        unknown_max=um.max_metrics if um is not None else 0,
        known_metrics=model.known_metrics,
    )
    if len(_compiled) > 64:
        _compiled.clear()
    _compiled[id(model)] = (model, c)
    return c


# ----------------------------------------------------------------------------------------- result
class Item(NamedTuple):
    """One contribution in hundredths of a point (plain tuple: cheap to build for 100k accounts)."""

    key: str
    kind: str
    category: str | None
    h: int
    reason: str
    reason_code: str
    signal: Signal | None = None
    metric: tuple[str, str, float | None, date | None, date | None, float | None] | None = None
    evidence: tuple[Citation, ...] = ()


@dataclass(slots=True)
class Result:
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
                key=it.key,
                kind=it.kind,
                category=it.category,
                points=it.h / 100,
                reason=it.reason,
                reason_code=it.reason_code,
                signal_id=it.signal.id if it.signal is not None else None,
                signal_type=it.signal.type if it.signal is not None else None,
                extractor=it.signal.extractor if it.signal is not None else None,
                evidence=list(it.signal.evidence) if it.signal is not None else list(it.evidence),
                metric=(
                    MetricRef.model_construct(
                        metric=it.metric[0], transform=it.metric[1], value=it.metric[2], window_start=it.metric[3],
                        window_end=it.metric[4], subscore=it.metric[5],
                    )
                    if it.metric is not None
                    else None
                ),
            )
            for it in self.items
        ]
        cats = [
            CategoryScore.model_construct(
                category=c, weight=w, effective_weight=ew, subscore=sub, points=ph / 100, has_data=has
            )
            for c, w, ew, sub, ph, has in self.categories
        ]
        return HealthScore.model_construct(
            account_id=self.account_id,
            as_of=self.as_of,
            score=self.score,
            tier=self.tier,
            categories=cats,
            contributions=contributions,
            notes=list(self.notes),
            model_id=self.model_id,
            model_version=self.model_version,
            model_hash=self.model_hash,
            inputs_digest=self.inputs_digest,
        )


# ----------------------------------------------------------------------------------------- helpers
def signal_day(sig: Signal) -> date | None:
    """The day a signal happened: its own date, else the earliest dated citation."""
    if sig.occurred_at is not None:
        return sig.occurred_at.date()
    days = [c.occurred_at.date() for c in sig.evidence if c.occurred_at is not None]
    return min(days) if days else None


def _fact_code(name: str, value: float) -> str:
    if name == "days_to_renewal":
        return "renewal_passed" if value < 0 else "renewal_near" if value <= 90 else "renewal_far"
    if name == "distinct_contacts_90d":
        return "single_threaded" if value < 2 else "multi_threaded"
    if name == "days_since_last_conversation":
        return "conversation_gap" if value > 30 else "recent_conversation"
    if name == "documents_90d":
        return "low_touch" if value < 2 else "regular_touch"
    if name == "tenure_days":
        return "new_customer" if value < 180 else "established_customer"
    return name


def _metric_code(metric: str, transform: str, value: float, sub: float) -> str:
    if transform in ("trend", "change"):
        return f"usage_{'decline' if value < 0 else 'growth' if value > 0 else 'flat'}:{metric}"
    if transform == "days_since_last":
        return f"{'inactive' if sub < 50 else 'recent_activity'}:{metric}"
    return f"{'metric_low' if sub < 50 else 'metric_healthy'}:{metric}"


def _day_of(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


# ----------------------------------------------------------------------------------------- core
def compute(
    signals: Iterable[Signal],
    usage: AccountUsage,
    account: Account,
    cm: Compiled,
    as_of: date,
    *,
    facts: Mapping[str, Fact] | None = None,
    expected_metrics: Collection[str] | None = None,
    digest: bool = True,
) -> Result:
    """The scorer's arithmetic on prepared inputs (grouped usage, compiled model): the batch hot path."""
    a = as_of.toordinal()
    notes: list[str] = []
    start_ord = account.start_date.toordinal() if account.start_date is not None else None
    # per category: list of (item weight, subscore, partial item without points)
    base: dict[str, list[tuple[float, float, Item]]] = {c: [] for c in CATEGORIES}
    sig_items: dict[str, list[tuple[float, Item]]] = {c: [] for c in CATEGORIES}
    digest_parts: list[Any] = []

    # metrics named by the model
    # a metric counts as reported once it has a row on or before as-of (a future row must change nothing)
    reported = {m for m, ser in usage.items() if ser.days and ser.days[0] <= a}
    if expected_metrics is not None:
        reported.update(expected_metrics)
    for r in cm.rubrics:
        # "no rows since start" is a reading only for a metric the tenant reports; otherwise it is no data
        known = r.metric in reported
        if not known and r.missing is None:
            continue
        # a rubric with a calibrated "missing" level still counts when the tenant has no such rows yet
        rd = reading(usage, r.metric, r.transform, a, r.window, r.aggregate, r.denominator,
                     start_ord if known else None, r.denominator_aggregate)
        if rd is None:
            if r.missing is None:
                continue
            # the model gives "no reading yet" its own subscore (calibrated), so the item still counts
            label = r.description or f"{r.metric} {r.transform}"
            it = Item(r.key, "metric", r.category, 0, f"{label}: no {r.metric} data yet -> {r.missing:.0f}/100",
                      f"no_data:{r.metric}", metric=(r.metric, r.transform, None, None, _day_of(a), r.missing))
            base[r.category].append((r.weight, r.missing, it))
            digest_parts.append((r.key, None))
            continue
        sub = r.map(rd.value)
        label = r.description or f"{r.metric} {r.transform}"
        reason = f"{label}: {r.metric} {r.transform} = {_fmt(rd.value)} -> {sub:.0f}/100"
        it = Item(r.key, "metric", r.category, 0, reason, _metric_code(r.metric, r.transform, rd.value, sub),
                  metric=(r.metric, r.transform, rd.value, rd.window_start, rd.window_end, round(sub, 2)))
        base[r.category].append((r.weight, sub, it))
        digest_parts.append((r.key, rd.value))

    # metrics the model does not name: generic activity reading
    if cm.unknown is not None:
        u = cm.unknown
        unknown = sorted(m for m in reported if m not in cm.known_metrics)
        if len(unknown) > cm.unknown_max:
            notes.append(f"{len(unknown) - cm.unknown_max} unknown metric(s) beyond the first {cm.unknown_max} ignored")
            unknown = unknown[: cm.unknown_max]
        for m in unknown:
            rd = reading(usage, m, u.transform, a, u.window, "sum", None, start_ord)
            if rd is None:
                continue
            sub = u.map(rd.value)
            key = f"metric:{m}:{u.transform}"
            reason = f"{m} (not in the model, read as activity): {u.transform} = {_fmt(rd.value)} -> {sub:.0f}/100"
            it = Item(key, "metric", u.category, 0, reason, _metric_code(m, u.transform, rd.value, sub),
                      metric=(m, u.transform, rd.value, rd.window_start, rd.window_end, round(sub, 2)))
            base[u.category].append((u.weight, sub, it))
            digest_parts.append((key, rd.value))

    # facts: from the account, overridden/extended by the caller's (documents); nothing dated after as-of
    all_facts = account_facts(account, as_of)
    if facts:
        all_facts.update(facts)
    dependent: list[tuple[str, float, float, Item]] = []
    for name, cat, weight, fmap, desc, needs_other in cm.facts:
        f = all_facts.get(name)
        if f is None or (f.on is not None and f.on > as_of):
            continue
        sub = fmap(f.value)
        reason = f"{desc or _FACT_LABELS.get(name, name)}: {f.detail} -> {sub:.0f}/100"
        it = Item(f"fact:{name}", "fact", cat, 0, reason, _fact_code(name, f.value),
                  metric=(name, "fact", f.value, None, f.on, round(sub, 2)), evidence=tuple(f.evidence))
        if needs_other:
            dependent.append((cat, weight, sub, it))
        else:
            base[cat].append((weight, sub, it))

    # signals: verified, dated on/before as-of, decayed, saturated per type
    by_type: dict[str, list[tuple[float, str, Signal, int]]] = {}
    undated = unverified = 0
    for s in signals:
        day = signal_day(s)
        age = a - day.toordinal() if day is not None else 0
        if age < 0:  # after as-of: as if it did not exist (not even in the notes)
            continue
        if not s.evidence or s.unverified_quotes:
            unverified += 1
            continue
        if s.negated:
            continue
        rule = cm.signals.get(s.type)
        if rule is None or s.confidence < cm.min_confidence:
            continue
        if day is None:
            undated += 1
            continue
        if age > cm.max_age:
            continue
        points, hl, sev_scale, _cat = rule
        raw = points * (0.5 ** (age / hl)) * (1.0 + sev_scale * (2.0 * s.severity - 1.0))
        if s.hedged:
            raw *= cm.hedged_factor
        by_type.setdefault(s.type, []).append((raw, s.id, s, age))
    signal_cats = {cm.signals[t][3] for t in by_type}
    for cat, weight, sub, it in dependent:
        if base[cat] or cat in signal_cats:
            base[cat].append((weight, sub, it))
    for items_ in base.values():
        for _w, _s, it in items_:
            if it.kind == "fact":
                digest_parts.append((it.key, it.metric[2] if it.metric else None))
    if unverified:
        notes.append(f"{unverified} unverified signal(s) not scored")
    if undated:
        notes.append(f"{undated} undated signal(s) not scored (no date to place them before as-of)")
    sat = cm.saturation
    for t in sorted(by_type):
        group = sorted(by_type[t], key=lambda g: (-abs(g[0]), g[1]))
        cat = cm.signals[t][3]
        for k, (raw, sid, s, age) in enumerate(group):
            delta = raw / (1.0 + sat * k)
            quote = " ".join(s.evidence[0].quote.split())
            if len(quote) > 100:
                quote = quote[:97] + "..."
            reason = (
                f"{t.replace('_', ' ')}: \"{quote}\" ({age} days ago"
                + (", hedged" if s.hedged else "")
                + (f", #{k + 1} of its type" if k else "")
                + ")"
            )
            sig_items[cat].append((delta, Item(f"signal:{sid}", "signal", cat, 0, reason, t, signal=s)))
            digest_parts.append((sid, t, s.severity, s.confidence, age, s.hedged))

    # categories with data, effective weights
    has = {c: bool(base[c]) or bool(sig_items[c]) for c in CATEGORIES}
    wsum = sum(cm.weights[c] for c in CATEGORIES if has[c])
    items: list[Item] = []
    cats: list[tuple[str, float, float, float | None, int, bool]] = []
    total_h = 0
    if wsum <= 0:
        total_h = round(cm.model.no_data_score * 100)
        items.append(Item("baseline:no_data", "baseline", None, total_h,
                          "no usage, facts or verified signals as of this date: the model's no-data score",
                          "no_data"))
        notes.append("no data in any category with weight: score is the model's no-data score")
        for c in CATEGORIES:
            cats.append((c, cm.weights[c], 0.0, None, 0, False))
    else:
        missing = [c for c in CATEGORIES if not has[c]]
        if missing:
            moved = sum(cm.weights[c] for c in missing)
            notes.append(
                f"no data for {', '.join(missing)}: their weight ({moved:g}) is shared among "
                f"{', '.join(c for c in CATEGORIES if has[c])}"
            )
        for c in CATEGORIES:
            w = cm.weights[c]
            if not has[c]:
                cats.append((c, w, 0.0, None, 0, False))
                continue
            ew = w / wsum
            cat_h = 0
            bl = base[c]
            bw = sum(x[0] for x in bl)
            if bw > 0:
                # Centred decomposition: the category starts at its neutral value and each metric or fact adds
                # share * (subscore - neutral). A weak metric then shows as negative points and a new metric does
                # not make the others look worse by shrinking their share of a positive sum.
                neutral = cm.neutral[c]
                h = round(ew * neutral * 100)
                items.append(Item(f"baseline:{c}", "baseline", c, h,
                                  f"{c} starts from the model's neutral {neutral:g}/100",
                                  "neutral_baseline"))
                cat_h += h
                sub = 0.0
                for iw, isub, it in bl:
                    share = iw / bw
                    sub += share * isub
                    h = round(ew * share * (isub - neutral) * 100)
                    items.append(it._replace(h=h))
                    cat_h += h
            else:
                for _iw, _isub, it in bl:  # zero-weight items: shown, worth nothing
                    items.append(it._replace(h=0))
                sub = cm.neutral[c]
                h = round(ew * sub * 100)
                items.append(Item(f"baseline:{c}", "baseline", c, h,
                                  f"{c} starts from the model's neutral {sub:g}/100 (no metric or fact for it)",
                                  "neutral_baseline"))
                cat_h += h
            for delta, it in sig_items[c]:
                sub += delta
                h = round(ew * delta * 100)
                items.append(it._replace(h=h))
                cat_h += h
            clamped = min(100.0, max(0.0, sub))
            if clamped != sub:
                target = round(ew * clamped * 100)
                h = target - cat_h
                items.append(Item(f"clamp:{c}", "clamp", c, h,
                                  f"{c} subscore {sub:.1f} clamped to {clamped:g} (0-100)",
                                  "clamp_high" if sub > 100 else "clamp_low"))
                cat_h = target
            total_h += cat_h
            cats.append((c, w, round(ew * 100, 4), round(clamped, 2), cat_h, True))
        if total_h > 10000 or total_h < 0:
            fix = (10000 if total_h > 10000 else 0) - total_h
            items.append(Item("clamp:total", "clamp", None, fix, "rounding kept the total within 0-100", "clamp_total"))
            total_h += fix

    model = cm.model
    dg = ""
    if digest:
        payload = [
            account.account_id, account.start_date, account.end_date, account.segment, as_of, cm.model_hash,
            digest_parts,  # built in a fixed order (rubrics, sorted metrics, facts, signals by type/strength/id)
        ]
        dg = hashlib.sha256(json.dumps(payload, default=str, separators=(",", ":")).encode()).hexdigest()
    return Result(
        account_id=account.account_id,
        as_of=as_of,
        total_h=total_h,
        items=items,
        categories=cats,
        notes=notes,
        model_id=model.id,
        model_version=model.version,
        model_hash=cm.model_hash,
        inputs_digest=dg,
    )


def score(
    signals: Iterable[Signal],
    usage: Iterable[UsageRow] | Mapping[str, Series],
    account: Account,
    model: ScoringModel,
    as_of: date | datetime,
    *,
    facts: Mapping[str, Fact] | None = None,
    expected_metrics: Collection[str] | None = None,
) -> HealthScore:
    """Score one account as of a date. Pure: same inputs, same score, same digest.

    ``usage`` is the account's rows (or already grouped series); ``facts`` adds document-derived facts (see
    :mod:`scoring.facts`); ``expected_metrics`` are the metrics the tenant reports as of this date, so a metric
    the account never had reads as "no activity since start" instead of "no data".
    """
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    seg_model = model.for_segment(account.segment)
    cm = compile_model(seg_model)
    grouped = usage if isinstance(usage, Mapping) else account_usage(
        r for r in usage if r[0] == account.account_id
    )
    res = compute(signals, grouped, account, cm, as_of, facts=facts, expected_metrics=expected_metrics)
    if seg_model is not model:  # the score names the model file (its hash); the note names the profile
        res.model_hash = model.content_hash
        res.notes.append(f"segment profile {account.segment!r} of model {model.id} applied")
    return res.to_health_score()
