"""Words for scores: signal phrases, metric and fact readings in their own units, reason codes.

Pure and shared by the engine (contribution reasons) and narration (drivers), so a reading is described the same
way everywhere. Readings carry their unit and healthy direction (from the model's rubric), so a change is
written in the metric's own unit and "rose"/"fell" never contradicts what is healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import PurePath

from extractors.models import Citation, MetricRef

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
    "seats_used": "seats in use",
    "seat_utilisation": "seat utilisation",
    "seat_utilization": "seat utilisation",
    "logins": "logins",
    "feature_adoption": "feature adoption",
    "output_acceptance_rate": "output acceptance",
    "regeneration_rate": "the regeneration rate",
    "workflow_completion_rate": "workflow completion",
    "arr_change_pct": "ARR change",
    "nps": "NPS",
    "nps_response": "NPS from survey answers",
    "csat": "CSAT",
    "open_critical_tickets": "open critical tickets",
    "open_tickets": "open support tickets",
    "ticket_age_days": "the age of open tickets",
    "payment_delay_days": "invoice days overdue",
}
RATIO_LABELS: dict[str, str] = {"active_users": "seat utilisation", "seats_used": "seats used vs contracted"}
# what "the last X" means for a days-since reading (days since the last login, not "the last logins")
ACTIVITY_NOUNS: dict[str, str] = {"logins": "login", "active_users": "active user"}

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve")


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _guess_unit(metric: str, values: list[float]) -> str | None:
    if ("rate" in metric or "acceptance" in metric or "utili" in metric or "share" in metric) and all(
            0 <= v <= 1 for v in values):
        return "share"
    if metric.endswith("_days") or metric.startswith("days_"):
        return "days"
    if metric.endswith("_pct") or "percent" in metric:
        return "percent"
    return None


def format_value(v: float, unit: str | None) -> str:
    """A value in its unit: 0.62 share -> 62%, 12 days -> 12 days, 3.0 -> 3."""
    if unit == "share":
        return f"{v * 100:.0f}%"
    if unit == "percent":
        return f"{v:.0f}%"
    if unit == "days":
        return f"{v:.0f} day{'' if round(v) == 1 else 's'}"
    if unit == "ratio":
        return f"{v:.2f}"
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


def _rate_change(label: str, a: float, b: float | None, suffix: str, span: str) -> str:
    """A growth rate (trend % a month, change % vs the window before) now and, if known, before."""
    if b is not None and abs(a - b) >= 0.5:
        if a > 0 and b > 0 and a < b:
            return f"growth in {label} slowed from {b:.0f}% to {a:.0f}%{suffix}"
        if a < 0 and b < 0 and a > b:
            return f"the fall in {label} eased from {-b:.0f}% to {-a:.0f}%{suffix}"
        if a < 0 and b < 0:
            return f"{label} fell faster, {-a:.0f}%{suffix} (was {-b:.0f}%)"
        if a > 0 and b > 0:
            return f"growth in {label} picked up from {b:.0f}% to {a:.0f}%{suffix}"
    if abs(a) < 0.5:
        return f"{label} held flat{span}"
    return f"{label} {'fell' if a < 0 else 'rose'} {abs(a):.0f}%{suffix}{span}"


def describe_metric(before: MetricRef | None, after: MetricRef | None, *, label: str | None = None) -> str:
    """'active users fell 30% a month over four weeks', 'output acceptance went from 81% to 62%'.

    Transforms as the model defines them: ``trend`` is % of the window mean per 30 days, ``change`` is % against
    the window before, ``ratio`` a share of the denominator, ``days_since_last`` a number of days."""
    ref = after or before
    assert ref is not None
    name = label or metric_label(ref.metric)
    t = ref.transform.lower()
    a = after.value if after is not None else None
    b = before.value if before is not None else None
    if t == "trend" and a is not None and after is not None:
        return _rate_change(name, a, b, " a month", _span_words(after.window_start, after.window_end))
    if t == "change" and a is not None and after is not None:
        ws, we = after.window_start, after.window_end
        prev = ""
        if ws is not None and we is not None and we > ws:
            half = _span_words(ws, ws + timedelta(days=((we - ws).days + 1) // 2))
            prev = half.replace(" over ", " against the previous ", 1)
        if b is not None and abs(a - b) >= 0.5:
            return _rate_change(name, a, b, "", "") + prev
        return _rate_change(name, a, None, "", "") + ("" if abs(a) < 0.5 else prev)
    if t == "days_since_last":
        noun = ACTIVITY_NOUNS.get(ref.metric, name)
        if a is not None and b is not None and round(a) != round(b):
            return f"the last {noun} was {a:.0f} days ago (was {b:.0f})"
        if a is not None:
            return f"the last {noun} was {a:.0f} days ago"
    if t == "ratio":
        name = label or RATIO_LABELS.get(ref.metric, f"{name} ratio")
        share = all(v is None or 0 <= v <= 1.5 for v in (a, b))
        unit = "share" if share else "ratio"
        if a is not None and b is not None and abs(a - b) > 1e-9:
            return f"{name} went from {format_value(b, unit)} to {format_value(a, unit)}"
        if a is not None:
            return f"{name} at {format_value(a, unit)}"
    unit = ref.unit or _guess_unit(ref.metric, [v for v in (a, b) if v is not None])
    if a is not None and b is not None and a != b:
        return f"{name} went from {format_value(b, unit)} to {format_value(a, unit)}"
    if a is not None:
        return f"{name} at {format_value(a, unit)}"
    if b is not None:
        return f"{name} ({format_value(b, unit)} before) no longer reported"
    return f"no {name} data yet"


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
            return (f"only {n(a)} customer contact(s) in the last 90 days" if a < 2
                    else f"{n(a)} customer contacts in the last 90 days")
    if name == "days_since_last_conversation":
        if a is not None and b is not None and a != b:
            return f"the last conversation was {n(a)} days ago (was {n(b)})"
        if a is not None:
            return f"the last conversation was {n(a)} days ago"
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


def signal_reason(signal_type: str, quote: str | None, age: int, hedged: bool, k: int) -> str:
    """A signal contribution's reason: what happened, the words, how long ago."""
    phrase = SIGNAL_PHRASES.get(signal_type, (signal_type.replace("_", " "), ""))[0]
    q = ""
    if quote:
        q = " ".join(quote.split())
        q = f": \"{q[:97] + '...' if len(q) > 100 else q}\""
    when = "today" if age == 0 else "1 day ago" if age == 1 else f"{age} days ago"
    extra = (", hedged" if hedged else "") + (f", #{k + 1} of its kind" if k else "")
    return f"{phrase}{q} ({when}{extra})"


def fact_code(name: str, value: float) -> str:
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


def metric_code(metric: str, transform: str, value: float | None, sub: float | None, healthy: str | None) -> str:
    """Reason codes for playbooks: usage_decline/growth:<metric>, inactive/recent_activity:<metric>,
    metric_low/metric_healthy:<metric>, no_data:<metric>."""
    if value is None:
        return f"no_data:{metric}"
    if transform in ("trend", "change"):
        return f"usage_{'decline' if value < 0 else 'growth' if value > 0 else 'flat'}:{metric}"
    if transform == "days_since_last":
        return f"{'inactive' if (sub or 0) < 50 else 'recent_activity'}:{metric}"
    return f"{'metric_low' if (sub or 0) < 50 else 'metric_healthy'}:{metric}"


# ----------------------------------------------------------------------------------------- citations
def source_label(c: Citation, kinds: Mapping[str, str] | None = None) -> str:
    """What kind of source a citation came from, in words: email, call, meeting notes."""
    kind = (kinds or {}).get(c.source_id)
    if kind is None and c.source_path:
        suffix = PurePath(c.source_path).suffix.lower()
        kind = {".eml": "email", ".msg": "email", ".vtt": "transcript", ".srt": "transcript",
                ".md": "notes"}.get(suffix)
        if kind is None and suffix == ".txt" and c.speaker:
            kind = "transcript"
    return {"email": "email", "transcript": "call", "notes": "meeting notes", "chat": "chat",
            "ticket": "ticket"}.get(kind or "", "note")


def day_words(d: datetime | date, ref_year: int) -> str:
    s = f"{d.day} {d.strftime('%b')}"
    return s if d.year == ref_year else f"{s} {d.year}"


def short_quote(q: str) -> str:
    q = " ".join(q.split())
    if len(q) <= QUOTE_CHARS_IN_TEXT:
        return q
    return q[:QUOTE_CHARS_IN_TEXT].rsplit(" ", 1)[0] + "…"


def cite_in_text(c: Citation, ref_year: int, kinds: Mapping[str, str] | None = None) -> str:
    """'email of 3 Nov: ...quote...': where the words came from, never a file path."""
    when = f" of {day_words(c.occurred_at, ref_year)}" if c.occurred_at else ""
    return f"{source_label(c, kinds)}{when}: '{short_quote(c.quote)}'"


def fmt_points(x: float) -> str:
    return f"{x:+.0f}" if abs(x) >= 0.5 else f"{x:+.1f}"
