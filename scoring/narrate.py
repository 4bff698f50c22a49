"""Narrated score changes: two health scores of one account -> the drivers of the change, in words.

Contributions are matched by their stable ``key``; a key on one side only counts in full (added or
removed). Drivers are ordered by absolute impact and carry their citations or metric change, so every
sentence of the narration can be traced back to words in a source or to a usage metric. Pure: no I/O,
deterministic wording for the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any, Literal

from pydantic import BaseModel, Field

from extractors.models import Account, Citation, Contribution, HealthScore, MetricRef, Tier

from .playbooks import Playbooks, Recommendation, TierMove, context_for, recommend, tier_move

ChangeKind = Literal["added", "removed", "changed"]

DEFAULT_MIN_POINTS = 0.5
DEFAULT_TEXT_DRIVERS = 4
QUOTE_CHARS_IN_TEXT = 110

SIGNAL_PHRASES: dict[str, tuple[str, str]] = {
    # type: (phrase when it counts, phrase when it ages out)
    "champion_departed": ("the champion left", "the champion's departure"),
    "sponsor_disengaged": ("the executive sponsor pulled back", "the sponsor's disengagement"),
    "stakeholder_change": ("a new decision maker came in", "the change of stakeholder"),
    "unresponsive": ("the customer went quiet", "the silence from the customer"),
    "meeting_cancelled": ("a meeting was cancelled", "a cancelled meeting"),
    "executive_engagement": ("an executive took part", "the executive engagement"),
    "positive_sentiment": ("the customer sounded pleased", "the earlier praise"),
    "negative_sentiment": ("the customer voiced frustration", "the earlier frustration"),
    "goal_defined": ("a business goal was agreed", "the goal-setting"),
    "milestone_achieved": ("a milestone was reached", "the milestone reached"),
    "milestone_missed": ("a milestone slipped", "the slipped milestone"),
    "value_confirmed": ("the customer confirmed value", "the confirmed value"),
    "expansion_interest": ("the customer asked about expanding", "the expansion interest"),
    "blocker": ("a blocker is holding up progress", "the blocker"),
    "escalation": ("an issue was escalated", "the escalation"),
    "pricing_objection": ("price became an objection", "the pricing objection"),
    "competitor_mention": ("a competitor is being evaluated", "the competitor mention"),
    "procurement_blocker": ("procurement is holding things up", "the procurement hold-up"),
    "product_gap": ("a product gap got in the way", "the product gap"),
    "churn_intent": ("the customer talked about leaving", "the talk of leaving"),
    "payment_issue": ("a billing problem came up", "the billing problem"),
}

METRIC_LABELS: dict[str, str] = {
    "active_users": "active users",
    "dau": "DAU",
    "wau": "weekly active users",
    "mau": "monthly active users",
    "seats_contracted": "contracted seats",
    "seat_utilisation": "seat utilisation",
    "seat_utilization": "seat utilisation",
    "logins": "logins",
    "output_acceptance_rate": "output acceptance",
    "regeneration_rate": "the regeneration rate",
    "workflow_completion_rate": "workflow completion",
    "nps": "NPS",
    "csat": "CSAT",
    "open_critical_tickets": "open critical tickets",
}

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve")
_CHANGE_TRANSFORMS = ("change", "trend", "slope", "pct", "delta", "growth", "decline")


# ----------------------------------------------------------------------------------------- models
class MetricChange(BaseModel):
    metric: str
    transform: str
    before: float | None = None
    after: float | None = None
    window_start: date | None = None
    window_end: date | None = None
    subscore_before: float | None = None  # 0-100 after the model's map
    subscore_after: float | None = None


class Driver(BaseModel):
    """One contribution's change between the two scores."""

    key: str
    kind: str
    category: str | None = None
    reason_code: str
    signal_type: str | None = None
    extractor: str | None = None
    change: ChangeKind
    points: float  # after - before: what this item did to the score
    before_points: float | None = None
    after_points: float | None = None
    description: str
    citations: list[Citation] = Field(default_factory=list)
    metric: MetricChange | None = None


class Narrative(BaseModel):
    account_id: str
    account_name: str | None = None
    from_as_of: date
    to_as_of: date
    from_score: float
    to_score: float
    from_tier: Tier
    to_tier: Tier
    delta: float
    tier_move: TierMove
    drivers: list[Driver]
    other_points: float = 0.0  # the part of the delta below the reporting threshold
    recommendation: dict[str, Any] | None = None
    alternatives: list[dict[str, Any]] = Field(default_factory=list)
    text: str

    def to_json(self) -> dict[str, Any]:
        """The same facts as the text, as data (the ``--format json`` shape)."""
        return {
            "account_id": self.account_id,
            "account_name": self.account_name,
            "from": {"as_of": self.from_as_of.isoformat(), "score": round(self.from_score, 2), "tier": self.from_tier},
            "to": {"as_of": self.to_as_of.isoformat(), "score": round(self.to_score, 2), "tier": self.to_tier},
            "delta": round(self.delta, 2),
            "tier_move": self.tier_move,
            "drivers": [_driver_json(d) for d in self.drivers],
            "other_points": round(self.other_points, 2),
            "recommended_action": self.recommendation,
            "alternatives": self.alternatives,
            "text": self.text,
        }


def citation_json(c: Citation) -> dict[str, Any]:
    return {
        "source_id": c.source_id,
        "source_path": c.source_path,
        "start": c.start,
        "end": c.end,
        "quote": c.quote,
        "date": c.occurred_at.date().isoformat() if c.occurred_at else None,
        "speaker": c.speaker,
        "alignment": c.alignment,
    }


def _driver_json(d: Driver) -> dict[str, Any]:
    return {
        "key": d.key,
        "kind": d.kind,
        "category": d.category,
        "reason_code": d.reason_code,
        "signal_type": d.signal_type,
        "change": d.change,
        "points": round(d.points, 2),
        "before_points": None if d.before_points is None else round(d.before_points, 2),
        "after_points": None if d.after_points is None else round(d.after_points, 2),
        "description": d.description,
        "citations": [citation_json(c) for c in d.citations],
        "metric": d.metric.model_dump(mode="json") if d.metric else None,
    }


# ----------------------------------------------------------------------------------------- wording
def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _is_rate(metric: str, *values: float | None) -> bool:
    vals = [v for v in values if v is not None]
    return ("rate" in metric or "acceptance" in metric or "utili" in metric) and all(0 <= v <= 1 for v in vals)


def _fmt_value(metric: str, v: float, rate: bool) -> str:
    if rate:
        return f"{v * 100:.0f}%"
    if abs(v - round(v)) < 1e-9 or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def _span_words(start: date | None, end: date | None) -> str:
    if start is None or end is None or end <= start:
        return ""
    days = (end - start).days
    if days % 7 == 0 or days >= 14:
        weeks = round(days / 7)
        if weeks <= 1:
            return " over a week"
        return f" over {_NUMBER_WORDS[weeks] if weeks < len(_NUMBER_WORDS) else weeks} weeks"
    return f" over {_NUMBER_WORDS[days] if days < len(_NUMBER_WORDS) else days} days"


RATIO_LABELS: dict[str, str] = {"active_users": "seat utilisation", "seats_used": "seats used vs contracted"}


def describe_metric(before: MetricRef | None, after: MetricRef | None) -> str:
    """'active users fell 30% over four weeks', or 'output acceptance went from 81% to 62%'.

    Transforms as the scoring model defines them: ``trend`` is % of the window mean per 30 days, ``change`` is
    % against the window before, ``ratio`` a share of the denominator, ``days_since_last`` a number of days.
    """
    ref = after or before
    assert ref is not None
    label = metric_label(ref.metric)
    t = ref.transform.lower()
    a = after.value if after is not None else None
    b = before.value if before is not None else None
    if t == "trend" and a is not None:
        span = _span_words(after.window_start, after.window_end)  # type: ignore[union-attr]
        if abs(a) < 0.5:
            return f"{label} held flat{span}"
        return f"{label} {'fell' if a < 0 else 'rose'} {abs(a):.0f}% a month{span}"
    if t == "change" and a is not None:
        # the model's change compares the window with the one before it: the span covers both
        ws, we = after.window_start, after.window_end  # type: ignore[union-attr]
        prev = ""
        if ws is not None and we is not None and we > ws:
            half = _span_words(ws, ws + timedelta(days=((we - ws).days + 1) // 2))
            prev = half.replace(" over ", " against the previous ", 1)
        if abs(a) < 0.5:
            return f"{label} held flat{prev}"
        return f"{label} {'fell' if a < 0 else 'rose'} {abs(a):.0f}%{prev}"
    if any(x in t for x in _CHANGE_TRANSFORMS) and a is not None:
        span = _span_words(after.window_start, after.window_end)  # type: ignore[union-attr]
        if abs(a) < 0.5:
            return f"{label} held flat{span}"
        return f"{label} {'fell' if a < 0 else 'rose'} {abs(a):.0f}%{span}"
    if t == "days_since_last":
        if a is not None and b is not None and a != b:
            return f"days since the last {label} went from {b:.0f} to {a:.0f}"
        if a is not None:
            return f"{a:.0f} days since the last {label}"
    if t == "ratio":
        label = RATIO_LABELS.get(ref.metric, f"{label} ratio")
        rate = all(v is None or 0 <= v <= 1.5 for v in (a, b))
        fmt = (lambda v: f"{v * 100:.0f}%") if rate else (lambda v: f"{v:.2f}")
        if a is not None and b is not None and abs(a - b) > 1e-9:
            return f"{label} went from {fmt(b)} to {fmt(a)}"
        if a is not None:
            return f"{label} at {fmt(a)}"
    rate = _is_rate(ref.metric, a, b)
    if a is not None and b is not None and a != b:
        return f"{label} went from {_fmt_value(ref.metric, b, rate)} to {_fmt_value(ref.metric, a, rate)}"
    if a is not None:
        return f"{label} at {_fmt_value(ref.metric, a, rate)}"
    if b is not None:
        return f"{label} ({_fmt_value(ref.metric, b, rate)} before) no longer counts"
    return f"{label} changed"


def describe_fact(name: str, before: float | None, after: float | None) -> str:
    """Account facts (from the contract and the documents) in words."""
    a, b = after, before

    def n(v: float) -> str:
        return f"{v:.0f}"

    if name == "days_to_renewal" and a is not None:
        return f"the renewal is {n(a)} days away" if a >= 0 else f"the renewal date passed {n(-a)} days ago"
    if name == "distinct_contacts_90d":
        if a is not None and b is not None and a != b:
            return f"customer contacts in the last 90 days went from {n(b)} to {n(a)}"
        if a is not None:
            return f"only {n(a)} customer contact(s) in the last 90 days" if a < 2 else f"{n(a)} customer contacts in the last 90 days"
    if name == "days_since_last_conversation":
        if a is not None and b is not None and a != b:
            return f"days since the last conversation went from {n(b)} to {n(a)}"
        if a is not None:
            return f"{n(a)} days since the last conversation"
    if name == "documents_90d":
        if a is not None and b is not None and a != b:
            return f"conversations in the last 90 days went from {n(b)} to {n(a)}"
        if a is not None:
            return f"{n(a)} conversations in the last 90 days"
    if name == "tenure_days" and a is not None:
        return f"customer for {n(a)} days"
    label = name.replace("_", " ")
    if a is not None and b is not None and a != b:
        return f"{label} went from {b:g} to {a:g}"
    if a is not None:
        return f"{label} at {a:g}"
    return f"{label} no longer counts"


def _describe(change: ChangeKind, before: Contribution | None, after: Contribution | None, delta: float) -> str:
    c = after or before
    assert c is not None
    mb = before.metric if before is not None else None
    ma = after.metric if after is not None else None
    if c.kind == "fact" and (ma or mb):
        ref = ma or mb
        assert ref is not None
        return describe_fact(ref.metric, mb.value if mb else None, ma.value if ma else None)
    if c.kind == "metric" and (ma or mb):
        return describe_metric(mb, ma)
    if c.kind == "signal" and c.signal_type in SIGNAL_PHRASES:
        now, aged = SIGNAL_PHRASES[c.signal_type]
        if change == "added":
            return now
        if change == "removed":
            return f"{aged} no longer counts"
        return f"{aged} weighs {'less' if abs(after.points) < abs(before.points) else 'more'} as it ages"  # type: ignore[union-attr]
    if c.kind == "clamp" and c.category:
        if change == "removed":
            return f"the {c.category} subscore came off its {'ceiling' if c.reason_code == 'clamp_high' else 'floor'}"
        if c.reason_code == "clamp_high":
            return f"the {c.category} subscore is at its ceiling of 100 (the excess does not count)"
        return f"the {c.category} subscore is at its floor of 0 (the excess does not count)"
    if c.kind == "baseline" and c.category:
        if change == "removed":
            return f"measured {c.category} data replaced the neutral starting point"
        return f"the {c.category} category starts from its neutral baseline"
    reason = " ".join(c.reason.split()) or c.reason_code.replace("_", " ")
    if change == "removed":
        return f"{reason} no longer applies"
    return reason if reason[:2].isupper() else reason[:1].lower() + reason[1:]


def source_label(c: Citation, kinds: Mapping[str, str] | None = None) -> str:
    """What kind of source a citation came from, in words: email, call, meeting notes."""
    kind = (kinds or {}).get(c.source_id)
    if kind is None and c.source_path:
        suffix = PurePath(c.source_path).suffix.lower()
        kind = {".eml": "email", ".msg": "email", ".vtt": "transcript", ".srt": "transcript", ".md": "notes"}.get(suffix)
        if kind is None and suffix == ".txt" and c.speaker:
            kind = "transcript"
    return {"email": "email", "transcript": "call", "notes": "meeting notes", "chat": "chat", "ticket": "ticket"}.get(
        kind or "", "note"
    )


def _day(d: datetime | date, ref_year: int) -> str:
    s = f"{d.day} {d.strftime('%b')}"
    return s if d.year == ref_year else f"{s} {d.year}"


def _short_quote(q: str) -> str:
    q = " ".join(q.split())
    if len(q) <= QUOTE_CHARS_IN_TEXT:
        return q
    cut = q[:QUOTE_CHARS_IN_TEXT].rsplit(" ", 1)[0]
    return cut + "…"


def cite_in_text(c: Citation, ref_year: int, kinds: Mapping[str, str] | None = None) -> str:
    label = source_label(c, kinds)
    when = f" of {_day(c.occurred_at, ref_year)}" if c.occurred_at else ""
    return f"{label}{when}: '{_short_quote(c.quote)}'"


def _fmt_points(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 0.5 else f"{x:+.1f}"


# ----------------------------------------------------------------------------------------- diff
def diff_scores(before: HealthScore, after: HealthScore, *, min_points: float = DEFAULT_MIN_POINTS) -> tuple[list[Driver], float]:
    """Drivers of the change (|points| >= min_points), by absolute impact, and the sum of the rest."""
    b = {c.key: c for c in before.contributions}
    a = {c.key: c for c in after.contributions}
    drivers: list[Driver] = []
    rest = 0.0
    for key in list(a) + [k for k in b if k not in a]:
        cb, ca = b.get(key), a.get(key)
        pb = cb.points if cb else 0.0
        pa = ca.points if ca else 0.0
        delta = pa - pb
        metric_changed = (
            cb is not None and ca is not None and cb.metric is not None and ca.metric is not None
            and cb.metric.value != ca.metric.value
        )
        if abs(delta) < 1e-9 and not metric_changed:
            continue
        if abs(delta) < min_points:
            rest += delta
            continue
        change: ChangeKind = "added" if cb is None else "removed" if ca is None else "changed"
        c = ca or cb
        assert c is not None
        evidence = list(ca.evidence if ca and ca.evidence else cb.evidence if cb else [])
        metric = None
        if c.kind in ("metric", "fact") and (c.metric or (cb and cb.metric)):
            ref = (ca.metric if ca else None) or (cb.metric if cb else None)
            assert ref is not None
            metric = MetricChange(
                metric=ref.metric,
                transform=ref.transform,
                before=cb.metric.value if cb and cb.metric else None,
                after=ca.metric.value if ca and ca.metric else None,
                window_start=ref.window_start,
                window_end=ref.window_end,
                subscore_before=cb.metric.subscore if cb and cb.metric else None,
                subscore_after=ca.metric.subscore if ca and ca.metric else None,
            )
        drivers.append(
            Driver(
                key=key,
                kind=c.kind,
                category=c.category,
                reason_code=c.reason_code,
                signal_type=c.signal_type,
                extractor=c.extractor,
                change=change,
                points=delta,
                before_points=cb.points if cb else None,
                after_points=ca.points if ca else None,
                description=_describe(change, cb, ca, delta),
                citations=evidence,
                metric=metric,
            )
        )
    drivers.sort(key=lambda d: (-abs(d.points), d.key))
    return drivers, rest


# Clamps and neutral baselines are arithmetic, not events: in the JSON, never in the sentence.
_BOOKKEEPING = frozenset({"clamp", "baseline"})


def reweighted(d: Driver) -> bool:
    """A metric whose points moved against its own reading (its subscore rose while its points fell, or the
    other way round) only changed weight because other items joined or left its category: true in the data,
    misleading in a sentence, so the text leaves it out (the JSON keeps it)."""
    m = d.metric
    if m is None or m.subscore_before is None or m.subscore_after is None or d.change != "changed":
        return False
    moved = m.subscore_after - m.subscore_before
    return abs(moved) < 0.5 or moved * d.points < 0


def notable(drivers: list[Driver]) -> list[Driver]:
    """The drivers worth a sentence: no bookkeeping, no pure reweighting, one per reason code and change."""
    seen: set[tuple[str, str]] = set()
    out = []
    for d in drivers:
        k = (d.reason_code, d.change)
        if k in seen or reweighted(d) or d.kind in _BOOKKEEPING:
            continue
        seen.add(k)
        out.append(d)
    return out


def _headline(name: str, before: HealthScore, after: HealthScore, delta: float) -> str:
    move = tier_move(before.tier, after.tier)
    pts = f"({_fmt_points(delta)})"
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
    if d.citations:
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
    elif drivers and abs(delta) < 0.5:
        text += "; changes offset each other: " + _join(clauses(drivers, text_drivers))
    text += "."
    if against and abs(delta) >= 0.5:
        text += " Partly offset by: " + _join(clauses(against, 2)) + "."
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
        to_tier=after.tier,
        delta=delta,
        tier_move=move,
        drivers=drivers,
        other_points=rest,
        recommendation=rec.to_json() if rec else None,
        alternatives=[r.to_json() for r in alts],
        text=text,
    )
