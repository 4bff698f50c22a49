"""Alerts between consecutive scores: tier changes and drops of N points, with stable dedupe keys."""

from __future__ import annotations

from datetime import date

from extractors.models import Contribution, HealthScore, tier_for
from scoring.alerts import alerts_for_series, compare, movers


def hs(day: date, score: float, parts: dict[str, float] | None = None, model_id: str = "default") -> HealthScore:
    contributions = [
        Contribution(key=k, kind="metric", category="adoption", points=v, reason=k, reason_code=k.split(":")[1])
        for k, v in (parts or {}).items()
    ]
    return HealthScore(account_id="acme", as_of=day, score=score, tier=tier_for(score), contributions=contributions,
                       model_id=model_id, model_version="1")


def test_tier_change_and_drop_raise_two_events_with_movers() -> None:
    prev = hs(date(2024, 5, 1), 72, {"metric:active_users:trend": 40, "metric:logins:change": 32})
    cur = hs(date(2024, 6, 1), 55, {"metric:active_users:trend": 25, "metric:logins:change": 30})
    events = compare(prev, cur, drop_points=10)
    assert [e.kind for e in events] == ["tier_changed", "score_dropped"]
    tier = events[0]
    assert tier.payload["from_tier"] == "Healthy" and tier.payload["to_tier"] == "Attention"
    assert tier.payload["direction"] == "down"
    assert tier.payload["movers"][0] == {
        "key": "metric:active_users:trend", "delta": -15.0, "reason_code": "active_users",
        "reason": "metric:active_users:trend", "status": "changed",
    }
    assert events[1].payload["change"] == -17.0
    assert tier.dedupe_key == "tier_changed:acme:default:2024-05-01:2024-06-01"
    assert tier.occurred_at.date() == date(2024, 6, 1)
    # same pair, same keys: storing twice cannot duplicate
    assert [e.dedupe_key for e in compare(prev, cur, drop_points=10)] == [e.dedupe_key for e in events]


def test_small_moves_within_a_tier_raise_nothing() -> None:
    assert compare(hs(date(2024, 5, 1), 80), hs(date(2024, 6, 1), 71), drop_points=10) == []
    assert [e.kind for e in compare(hs(date(2024, 5, 1), 90), hs(date(2024, 6, 1), 80), drop_points=10)] == [
        "score_dropped"]
    # improvements across a tier boundary are tier changes "up", never drops
    ev = compare(hs(date(2024, 5, 1), 45), hs(date(2024, 6, 1), 75), drop_points=10)
    assert [e.kind for e in ev] == ["tier_changed"] and ev[0].payload["direction"] == "up"


def test_no_alert_without_a_previous_score_or_across_models_or_backwards() -> None:
    cur = hs(date(2024, 6, 1), 20)
    assert compare(None, cur, drop_points=10) == []
    assert compare(hs(date(2024, 5, 1), 90, model_id="other"), cur, drop_points=10) == []
    assert compare(hs(date(2024, 7, 1), 90), cur, drop_points=10) == []
    assert compare(hs(date(2024, 5, 1), 25), cur, drop_points=0) == []  # same tier, drops disabled


def test_series_compares_consecutive_scores_in_date_order() -> None:
    series = [hs(date(2024, 3, 1), 20), hs(date(2024, 1, 1), 80), hs(date(2024, 2, 1), 60)]
    events = alerts_for_series(series, drop_points=15)
    spans = [(e.kind, e.payload["from_as_of"], e.payload["to_as_of"]) for e in events]
    assert spans == [
        ("tier_changed", "2024-01-01", "2024-02-01"), ("score_dropped", "2024-01-01", "2024-02-01"),
        ("tier_changed", "2024-02-01", "2024-03-01"), ("score_dropped", "2024-02-01", "2024-03-01"),
    ]


def test_movers_reports_new_and_gone_items() -> None:
    prev = hs(date(2024, 5, 1), 50, {"signal:a": -5.0, "metric:x:level": 55.0})
    cur = hs(date(2024, 6, 1), 40, {"signal:b": -15.0, "metric:x:level": 55.0})
    rows = {r["key"]: r for r in movers(prev, cur)}
    assert rows["signal:b"]["status"] == "new" and rows["signal:b"]["delta"] == -15.0
    assert rows["signal:a"]["status"] == "gone" and rows["signal:a"]["delta"] == 5.0
    assert "metric:x:level" not in rows
