"""What-if: the score an account would get if a metric moved or a signal appeared, with what changed and why.

Pure: it edits copies of the inputs and calls the same scorer, so the answer is exactly what the model would say.
A metric change applies to the metric's rows in the model's window for it (the longest window of the rubrics that
read the metric, 30 days when none does), ending at as-of:

* ``metric=-20%`` / ``metric=+15%`` scales those rows;
* ``metric=30`` sets them to 30 (adds one row at as-of when there is none in the window);
* ``metric=+=5`` / ``metric=-=5`` adds to them.

An added signal is dated as-of and carries a visible synthetic citation ("what-if"), so it counts as verified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from extractors.errors import InputError
from extractors.models import Account, Citation, HealthScore, Signal, UsageRow, taxonomy
from scoring.facts import Fact
from scoring.model import ScoringModel
from scoring.scorer import score

MAX_CHANGES = 50
_CHANGE = re.compile(r"^\s*([^=\s]+)\s*=\s*(\+=|-=)?\s*([+-]?\d+(?:\.\d+)?)\s*(%)?\s*$")
WHATIF_QUOTE = "what-if"


@dataclass(frozen=True, slots=True)
class MetricChange:
    metric: str
    op: str  # "scale" | "set" | "add"
    value: float

    def describe(self) -> str:
        if self.op == "scale":
            return f"{self.metric} {self.value * 100 - 100:+g}%"
        if self.op == "add":
            return f"{self.metric} {self.value:+g}"
        return f"{self.metric} = {self.value:g}"


def parse_change(text: str) -> MetricChange:
    """``active_users=-20%``, ``nps=30``, ``logins=+=5``."""
    m = _CHANGE.match(text)
    if not m:
        raise InputError(f"--set {text!r}: expected METRIC=VALUE, METRIC=+-N% or METRIC=+=N / METRIC=-=N")
    metric, inc, num, pct = m.group(1), m.group(2), float(m.group(3)), m.group(4)
    if len(metric) > 100:
        raise InputError("--set: metric name longer than 100 characters")
    if pct and inc:
        raise InputError(f"--set {text!r}: use either a percentage or +=/-=, not both")
    if pct:
        if num <= -100:
            raise InputError(f"--set {text!r}: a change of {num}% would make values negative")
        return MetricChange(metric, "scale", 1 + num / 100)
    if inc:
        return MetricChange(metric, "add", num if inc == "+=" else -num)
    return MetricChange(metric, "set", num)


def map_change(mm: object, ch: MetricChange) -> MetricChange:
    """A change named by a raw export name, in the canonical metric and its unit (``mm``: a MetricMapping)."""
    d = getattr(mm, "decisions", {}).get(ch.metric)
    if d is None:
        return ch
    if d.canonical is None:
        raise InputError(f"--set: metric {ch.metric!r} is not used by the score: {d.reason}")
    value = ch.value
    if ch.op != "scale":
        value = mm.convert_value(d, value)  # type: ignore[attr-defined]
        if ch.op == "add" and d.convert not in ("none", "scale"):
            raise InputError(f"--set: {ch.metric} is converted ({d.note}); set it to a value or scale it by %")
    return MetricChange(d.canonical, ch.op, value)


def _window_for(model: ScoringModel, metric: str) -> int:
    wins = [r.window_days for r in model.metrics if r.metric == metric or r.denominator == metric]
    return min(max(wins), 3650) if wins else 30


def apply_changes(rows: Sequence[UsageRow], changes: Sequence[MetricChange], model: ScoringModel, as_of: date,
                  account_id: str) -> list[UsageRow]:
    """A copy of the account's rows with the changes applied (rows after as-of are dropped: they never count)."""
    out = [r for r in rows if r[1] <= as_of]
    for ch in changes:
        lo = as_of.toordinal() - _window_for(model, ch.metric) + 1
        hit = False
        new: list[UsageRow] = []
        for r in out:
            if r[2] == ch.metric and r[1].toordinal() >= lo:
                hit = True
                v = r[3] * ch.value if ch.op == "scale" else r[3] + ch.value if ch.op == "add" else ch.value
                new.append(UsageRow(r[0], r[1], r[2], float(v)))
            else:
                new.append(r)
        if not hit and ch.op in ("set", "add"):
            new.append(UsageRow(account_id, as_of, ch.metric, float(ch.value)))
        out = new
    return out


def whatif_signal(account_id: str, signal_type: str, as_of: date, severity: float = 0.5) -> Signal:
    if signal_type not in taxonomy():
        raise InputError(f"--add-signal {signal_type!r}: unknown type; known: {', '.join(sorted(taxonomy()))}")
    when = datetime.combine(as_of, time(12, 0))
    cite = Citation(source_id="whatif", start=0, end=len(WHATIF_QUOTE), quote=WHATIF_QUOTE, occurred_at=when)
    return Signal(account_id=account_id, type=signal_type, severity=severity, confidence=1.0, occurred_at=when,
                  summary=f"hypothetical {signal_type} (what-if)", evidence=[cite], extractor="whatif",
                  extractor_version="1")


@dataclass
class ContributionChange:
    key: str
    reason_before: str | None
    reason_after: str | None
    before: float
    after: float

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 2)


@dataclass
class WhatIf:
    before: HealthScore
    after: HealthScore
    changes: list[str]
    contributions: list[ContributionChange]

    @property
    def delta(self) -> float:
        return round(self.after.score - self.before.score, 2)

    def to_dict(self) -> dict[str, object]:
        return {
            "account_id": self.before.account_id, "as_of": self.before.as_of.isoformat(), "changes": self.changes,
            "before": {"score": self.before.score, "tier": self.before.tier},
            "after": {"score": self.after.score, "tier": self.after.tier}, "delta": self.delta,
            "contributions": [{"key": c.key, "before": c.before, "after": c.after, "delta": c.delta,
                               "reason": c.reason_after or c.reason_before} for c in self.contributions],
        }


def whatif(
    signals: Iterable[Signal],
    usage: Sequence[UsageRow],
    account: Account,
    model: ScoringModel,
    as_of: date,
    *,
    set_metrics: Sequence[MetricChange] = (),
    add_signals: Sequence[str] = (),
    facts: Mapping[str, Fact] | None = None,
    expected_metrics: Iterable[str] | None = None,
) -> WhatIf:
    """Score before and after the hypothetical changes; contributions diffed by key, biggest moves first."""
    if len(set_metrics) + len(add_signals) > MAX_CHANGES:
        raise InputError(f"at most {MAX_CHANGES} what-if changes at once")
    if not set_metrics and not add_signals:
        raise InputError("nothing to change: give --set METRIC=VALUE and/or --add-signal TYPE")
    sigs = list(signals)
    mine = [r for r in usage if r[0] == account.account_id]
    expected = None if expected_metrics is None else set(expected_metrics)
    before = score(sigs, mine, account, model, as_of, facts=facts, expected_metrics=expected)
    changed_rows = apply_changes(mine, set_metrics, model, as_of, account.account_id)
    extra = [whatif_signal(account.account_id, t, as_of) for t in add_signals]
    after = score(sigs + extra, changed_rows, account, model, as_of, facts=facts, expected_metrics=expected)
    b = {c.key: c for c in before.contributions}
    a = {c.key: c for c in after.contributions}
    diffs = []
    for key in sorted(set(b) | set(a)):
        cb, ca = b.get(key), a.get(key)
        pb = cb.points if cb else 0.0
        pa = ca.points if ca else 0.0
        if cb is None or ca is None or abs(pa - pb) >= 0.005 or cb.reason != ca.reason:
            diffs.append(ContributionChange(key, cb.reason if cb else None, ca.reason if ca else None, pb, pa))
    diffs.sort(key=lambda c: (-abs(c.delta), c.key))
    return WhatIf(before, after, [c.describe() for c in set_metrics] + [f"+ {t} signal" for t in add_signals],
                  diffs)
