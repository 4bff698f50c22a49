"""Alerts from two consecutive scores of one account: tier changes and drops of N points or more.

Pure: the caller stores the events (``Ledger.add_event``) with the dedupe key given here, so re-scoring the
same dates never raises the same alert twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from extractors.models import HealthScore
from scoring.playbooks import tier_move

TOP_MOVERS = 5


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: str  # "tier_changed" | "score_dropped"
    account_id: str
    occurred_at: datetime
    dedupe_key: str
    payload: dict[str, Any] = field(default_factory=dict)


def movers(prev: HealthScore, cur: HealthScore, limit: int = TOP_MOVERS) -> list[dict[str, Any]]:
    """Contributions that moved most between two scores, matched by their stable key."""
    before = {c.key: c for c in prev.contributions}
    after = {c.key: c for c in cur.contributions}
    rows = []
    for key in before.keys() | after.keys():
        b, a = before.get(key), after.get(key)
        delta = round((a.points if a else 0.0) - (b.points if b else 0.0), 2)
        if delta == 0:
            continue
        ref = a or b
        assert ref is not None
        rows.append({"key": key, "delta": delta, "reason_code": ref.reason_code, "reason": ref.reason,
                     "status": "new" if b is None else "gone" if a is None else "changed"})
    rows.sort(key=lambda r: (r["delta"], r["key"]))
    return rows[:limit]


def compare(prev: HealthScore | None, cur: HealthScore, *, drop_points: float) -> list[AlertEvent]:
    """Events raised going from ``prev`` to ``cur`` (none for a first score or a different model)."""
    if prev is None or prev.as_of >= cur.as_of or prev.model_id != cur.model_id:
        return []
    when = datetime.combine(cur.as_of, time(), tzinfo=UTC)
    base = {
        "model_id": cur.model_id,
        "model_version": cur.model_version,
        "from_as_of": prev.as_of.isoformat(),
        "to_as_of": cur.as_of.isoformat(),
        "from_score": prev.score,
        "to_score": cur.score,
        "change": round(cur.score - prev.score, 2),
        "from_tier": prev.tier,
        "to_tier": cur.tier,
    }
    span = f"{cur.account_id}:{cur.model_id}:{prev.as_of.isoformat()}:{cur.as_of.isoformat()}"
    out: list[AlertEvent] = []
    top: list[dict[str, Any]] | None = None
    if prev.tier != cur.tier:
        top = movers(prev, cur)
        out.append(AlertEvent("tier_changed", cur.account_id, when, f"tier_changed:{span}",
                              {**base, "direction": tier_move(prev.tier, cur.tier), "movers": top}))
    if drop_points > 0 and prev.score - cur.score >= drop_points:
        out.append(AlertEvent("score_dropped", cur.account_id, when, f"score_dropped:{span}",
                              {**base, "threshold": drop_points, "movers": top if top is not None else movers(prev, cur)}))
    return out


def alerts_for_series(scores: Sequence[HealthScore], *, drop_points: float) -> list[AlertEvent]:
    """Events between consecutive scores of one account (sorted by as-of first)."""
    ordered = sorted(scores, key=lambda s: s.as_of)
    out: list[AlertEvent] = []
    for prev, cur in zip(ordered, ordered[1:]):
        out.extend(compare(prev, cur, drop_points=drop_points))
    return out
