"""Narrated score changes: two health scores of one account -> the drivers of the change, in words.

Contributions are matched by their stable ``key``. A matched item's change is split in two with its weight
(points = weight x its own subscore points): what its own reading did, and what the new sharing of weights did
when categories or items gained or lost data. The second part, with the baselines, is one driver, "data coverage
changed", never a list of baseline drivers. A clamp's change is folded into the drivers of its category it
absorbed, so a floor never looks like it gives points back. Every driver is a sentence with its citation or its
reading before and after in the metric's own unit; raw codes stay in the JSON. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extractors.models import (
    Account,
    ChangeKind,
    Contribution,
    Driver,
    HealthScore,
    MetricChange,
    Narrative,
    tier_for,
)
from scoring.playbooks import Playbooks, Recommendation, context_for, recommend, tier_move
from scoring.wording import (
    SIGNAL_PHRASES,
    cite_in_text,
    describe_fact,
    describe_metric,
    fmt_points,
    metric_label,
    short_quote,
    source_label,
)

DEFAULT_MIN_POINTS = 0.5
DEFAULT_TEXT_DRIVERS = 4
COVERAGE_KEY = "coverage"

__all__ = [
    "DEFAULT_MIN_POINTS", "Driver", "Narrative", "SIGNAL_PHRASES", "describe_fact", "describe_metric",
    "diff_scores", "fmt_points", "metric_label", "narrate", "narrative_json", "notable", "short_quote",
    "source_label",
]


def _describe(change: ChangeKind, before: Contribution | None, after: Contribution | None, points: float) -> str:
    c = after or before
    assert c is not None
    mb = before.metric if before is not None else None
    ma = after.metric if after is not None else None
    if c.kind == "fact" and (ma or mb):
        ref = ma or mb
        assert ref is not None
        return describe_fact(ref.metric, mb.value if mb else None, ma.value if ma else None)
    if c.kind == "metric" and (ma or mb):
        if change == "removed":
            ref = mb
            assert ref is not None
            return f"{metric_label(ref.metric)} is no longer reported"
        return describe_metric(mb, ma)
    if c.kind == "signal" and c.signal_type in SIGNAL_PHRASES:
        now, aged = SIGNAL_PHRASES[c.signal_type]
        if change == "added":
            return now
        if change == "removed":
            return f"{aged} no longer counts"
        return f"{aged} weighs {'less' if abs(after.points) < abs(before.points) else 'more'} as it ages"  # type: ignore[union-attr]
    if c.kind == "cap":
        if change == "removed":
            return "the cap on the score no longer applies"
        return c.reason[:1].lower() + c.reason[1:]
    if c.kind == "clamp" and c.category:
        return f"the {c.category} subscore is at its {'ceiling' if c.reason_code == 'clamp_high' else 'floor'}"
    reason = " ".join(c.reason.split()) or c.reason_code.replace("_", " ")
    if change == "removed":
        return f"{reason} no longer applies"
    return reason if reason[:2].isupper() else reason[:1].lower() + reason[1:]


def _coverage_words(before: HealthScore, after: HealthScore) -> str:
    had = {c.category for c in before.categories if c.has_data}
    has = {c.category for c in after.categories if c.has_data}
    gained, lost = sorted(has - had), sorted(had - has)
    parts = []
    if gained:
        parts.append(f"{' and '.join(gained)} now ha{'s' if len(gained) == 1 else 've'} data")
    if lost:
        parts.append(f"no {' or '.join(lost)} data any more")
    items_b = {c.key for c in before.contributions if c.kind in ("metric", "fact")}
    items_a = {c.key for c in after.contributions if c.kind in ("metric", "fact")}
    if not parts and items_a != items_b:
        parts.append("readings came or went, so the weights were shared anew")
    return "data coverage changed" + (f" ({'; '.join(parts)})" if parts else "")


def diff_scores(before: HealthScore, after: HealthScore, *, min_points: float = DEFAULT_MIN_POINTS
                ) -> tuple[list[Driver], float]:
    """Drivers of the change (|points| >= min_points), by absolute impact, and the sum of the rest."""
    b = {c.key: c for c in before.contributions}
    a = {c.key: c for c in after.contributions}
    own: dict[str, float] = {}
    coverage = 0.0
    clamps: dict[str | None, float] = {}
    kept_clamps: dict[str, float] = {}
    for key in list(a) + [k for k in b if k not in a]:
        cb, ca = b.get(key), a.get(key)
        pb = cb.points if cb else 0.0
        pa = ca.points if ca else 0.0
        c = ca or cb
        assert c is not None
        if c.kind == "baseline":
            coverage += pa - pb
            continue
        if c.kind == "clamp":
            clamps[c.category] = clamps.get(c.category, 0.0) + pa - pb
            continue
        if c.kind == "cap" and cb is not None and ca is not None:
            kept_clamps[key] = pa - pb  # a cap that held: it absorbed the other changes
            continue
        part = pa - pb
        if cb is not None and ca is not None and cb.weight and ca.weight and c.kind != "cap":
            reweighted = pb * (ca.weight / cb.weight)  # the old reading under the new weight
            coverage += reweighted - pb
            part = pa - reweighted
        elif (cb is not None and ca is not None and cb.metric is not None and ca.metric is not None
              and cb.metric.subscore is not None and ca.metric.subscore is not None):
            # no weights stored (older snapshots): points that moved against the item's own reading only changed
            # because weights were shared anew; that is coverage, never a driver of the wrong sign
            moved = ca.metric.subscore - cb.metric.subscore
            if abs(moved) < 0.5 or moved * part < 0:
                coverage += part
                continue
        own[key] = part
    # a clamp's change is folded into the drivers of its category that it absorbed (opposite sign)
    for cat, cd in clamps.items():
        if abs(cd) < 1e-9:
            continue
        keys = [k for k, v in own.items() if (a.get(k) or b[k]).category == cat and v * cd < 0]
        room = sum(abs(own[k]) for k in keys)
        take = min(abs(cd), room)
        for k in keys:
            own[k] += (1 if cd > 0 else -1) * take * abs(own[k]) / room
        left = abs(cd) - take
        if left > 1e-9:
            own[f"clamp:{cat}"] = (1 if cd > 0 else -1) * left
    for key, v in kept_clamps.items():
        own[key] = v
    drivers: list[Driver] = []
    rest = 0.0
    for key, pts in own.items():
        cb, ca = b.get(key), a.get(key)
        c = ca or cb
        if c is None:  # a clamp left over after folding
            cat = key.split(":", 1)[1]
            drivers.append(Driver(key=key, kind="clamp", category=cat, reason_code="clamp", change="changed",
                                  points=pts, description=f"the {cat} subscore is kept within 0-100"))
            continue
        metric_changed = (cb is not None and ca is not None and cb.metric is not None and ca.metric is not None
                          and cb.metric.value != ca.metric.value)
        if abs(pts) < 1e-9 and not metric_changed:
            continue
        if abs(pts) < min_points:
            rest += pts
            continue
        change: ChangeKind = "added" if cb is None else "removed" if ca is None else "changed"
        evidence = list(ca.evidence if ca and ca.evidence else cb.evidence if cb else [])
        metric = None
        ref = (ca.metric if ca else None) or (cb.metric if cb else None)
        if c.kind in ("metric", "fact") and ref is not None:
            metric = MetricChange(
                metric=ref.metric, transform=ref.transform,
                before=cb.metric.value if cb and cb.metric else None,
                after=ca.metric.value if ca and ca.metric else None,
                window_start=ref.window_start, window_end=ref.window_end,
                subscore_before=cb.metric.subscore if cb and cb.metric else None,
                subscore_after=ca.metric.subscore if ca and ca.metric else None,
                unit=ref.unit, healthy=ref.healthy,
            )
        drivers.append(Driver(
            key=key, kind=c.kind, category=c.category, reason_code=c.reason_code, signal_type=c.signal_type,
            extractor=c.extractor, change=change, points=pts, before_points=cb.points if cb else None,
            after_points=ca.points if ca else None, description=_describe(change, cb, ca, pts),
            citations=evidence, metric=metric,
        ))
    if abs(coverage) >= min_points:
        drivers.append(Driver(key=COVERAGE_KEY, kind="coverage", reason_code="coverage_changed", change="changed",
                              points=coverage, description=_coverage_words(before, after)))
    else:
        rest += coverage
    drivers.sort(key=lambda d: (-abs(d.points), d.key))
    return drivers, rest


# Clamps and caps that held are arithmetic, not events: in the JSON, never in the sentence.
def _bookkeeping(d: Driver) -> bool:
    return d.kind in ("clamp", "baseline") or (d.kind == "cap" and d.change == "changed")


def notable(drivers: list[Driver]) -> list[Driver]:
    """The drivers worth a sentence: no bookkeeping, one per reason code and change."""
    seen: set[tuple[str, str]] = set()
    out = []
    for d in drivers:
        k = (d.reason_code, d.change)
        if k in seen or _bookkeeping(d):
            continue
        seen.add(k)
        out.append(d)
    return out


def _headline(name: str, before: HealthScore, after: HealthScore, delta: float) -> str:
    move = tier_move(before.tier, after.tier)
    pts = f"({fmt_points(delta)})"
    if move != "none":
        return f"{name} moved from {before.tier} to {after.tier} {pts}"
    if abs(delta) < 0.5:
        return f"{name} held at {after.score:.0f} ({after.tier})"
    verb = "rose" if delta > 0 else "fell"
    return f"{name} {verb} from {before.score:.0f} to {after.score:.0f} {pts}, still {after.tier}"


# Signals derived from timestamps and participants cite the last message that was (not) followed up, so the
# sentence must say so instead of presenting that message as the customer's words about the problem.
_METADATA_PHRASES = {
    "unresponsive": "the customer has not replied",
    "sponsor_disengaged": "{who} has gone quiet",
    "stakeholder_change": "{who} joined the conversation",
}


def _driver_clause(d: Driver, ref_year: int, kinds: Mapping[str, str] | None) -> str:
    text = d.description
    if d.extractor == "metadata" and d.signal_type in _METADATA_PHRASES and d.change != "removed":
        c = d.citations[0] if d.citations else None
        text = _METADATA_PHRASES[d.signal_type].format(who=(c.speaker if c and c.speaker else "a regular contact"))
        if c is not None:
            last = "" if d.signal_type == "stakeholder_change" else "last "
            text += f" ({last}{cite_in_text(c, ref_year, kinds)})"
        return text
    if d.citations and d.change != "removed":
        text += f" ({cite_in_text(d.citations[0], ref_year, kinds)})"
    return text


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def narrate(
    before: HealthScore,
    after: HealthScore,
    *,
    account: Account | None = None,
    playbooks: Playbooks | None = None,
    source_kinds: Mapping[str, str] | None = None,
    min_points: float = DEFAULT_MIN_POINTS,
    text_drivers: int = DEFAULT_TEXT_DRIVERS,
) -> Narrative:
    """The change from ``before`` to ``after`` as drivers, a tier move, a recommendation and a paragraph.

    ``source_kinds`` maps a citation's source id to its document kind (email, transcript, notes), so the
    text can say "email of 3 Nov"; without it the kind is guessed from the file suffix.
    """
    if before.account_id != after.account_id:
        raise ValueError(f"cannot compare scores of two accounts ({before.account_id} vs {after.account_id})")
    if before.as_of > after.as_of:
        before, after = after, before
    name = (account.name if account and account.name else None) or after.account_id
    delta = after.score - before.score
    drivers, rest = diff_scores(before, after, min_points=min_points)
    move = tier_move(before.tier, after.tier)

    rec: Recommendation | None = None
    alts: list[Recommendation] = []
    if playbooks is not None:
        ctx = context_for(after, previous=before, account=account,
                          driver_points=[(d.reason_code, d.points) for d in drivers])
        recs = recommend(playbooks, ctx)
        if recs:
            rec, alts = recs[0], recs[1:]

    # Main drivers go with the direction of the change; one clause per reason code keeps the text readable.
    sign = -1 if delta < 0 else 1
    along = [d for d in drivers if (d.points < 0) == (sign < 0)]
    against = [d for d in drivers if (d.points < 0) != (sign < 0)]
    ref_year = after.as_of.year

    def clauses(ds: list[Driver], limit: int) -> list[str]:
        return [_driver_clause(d, ref_year, source_kinds) for d in notable(ds)[:limit]]

    text = _headline(name, before, after, delta)
    main = clauses(along, text_drivers)
    if main and abs(delta) >= 0.5:
        text += " because " + _join(main)
    elif drivers and abs(delta) < 0.5 and notable(drivers):
        text += "; changes offset each other: " + _join(clauses(drivers, text_drivers))
    text += "."
    if against and abs(delta) >= 0.5 and notable(against):
        text += " Partly offset by: " + _join(clauses(against, 2)) + "."
    caps = [c for c in after.contributions if c.kind == "cap"]
    if caps and not any(d.kind == "cap" and d.change == "added" for d in notable(along)):
        text += f" The score stays {caps[0].reason[:1].lower() + caps[0].reason[1:]}."
    if rec is not None:
        text += f" Recommended action: {rec.action}"
        if not rec.action.rstrip().endswith("."):
            text += "."
    return Narrative(
        account_id=after.account_id,
        account_name=account.name if account else None,
        from_as_of=before.as_of,
        to_as_of=after.as_of,
        from_score=before.score,
        to_score=after.score,
        from_tier=before.tier,
        to_tier=tier_for(after.score),
        delta=delta,
        tier_move=move,
        drivers=drivers,
        other_points=rest,
        recommendation=rec,
        alternatives=alts,
        text=text,
    )


def narrative_json(n: Narrative) -> dict[str, Any]:
    """The ``--format json`` shape of a narrative: the same facts as the text, as data (from the domain model)."""
    drivers = []
    for d in n.drivers:
        row = d.model_dump(mode="json", exclude={"extractor"})
        row["points"] = round(d.points, 2)
        for k in ("before_points", "after_points"):
            if row[k] is not None:
                row[k] = round(row[k], 2)
        drivers.append(row)
    return {
        "account_id": n.account_id,
        "account_name": n.account_name,
        "from": {"as_of": n.from_as_of.isoformat(), "score": round(n.from_score, 2), "tier": n.from_tier},
        "to": {"as_of": n.to_as_of.isoformat(), "score": round(n.to_score, 2), "tier": n.to_tier},
        "delta": round(n.delta, 2),
        "tier_move": n.tier_move,
        "drivers": drivers,
        "other_points": round(n.other_points, 2),
        "recommended_action": n.recommendation.model_dump(mode="json") if n.recommendation else None,
        "alternatives": [r.model_dump(mode="json") for r in n.alternatives],
        "text": n.text,
    }
