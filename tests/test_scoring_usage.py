"""Metric transforms and derived facts, against hand-computed values."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from extractors.models import Account, Participant, SourceDocument, UsageRow
from scoring.facts import account_facts, document_facts
from scoring.columns import columns_from_usage, first_days, metrics_as_of, read_metric

AS_OF = date(2024, 6, 30)
A = AS_OF.toordinal()


class _R:
    def __init__(self, value: float) -> None:
        self.value = value


def reading(u: list[UsageRow], metric: str, transform: str, a: int, window: int, aggregate: str = "mean",
            denominator: str | None = None, start_ordinal: int | None = None,
            denominator_aggregate: str | None = None) -> _R | None:
    """The engine's vectorised reading for one account (the only implementation of the transforms)."""
    cols = columns_from_usage(u, ["x"])
    start = [date.fromordinal(start_ordinal)] if start_ordinal is not None else None
    ok, v = read_metric(cols, ["x"], date.fromordinal(a), metric, transform, window, aggregate, denominator, start,
                        denominator_aggregate)
    return _R(float(v[0])) if ok[0] else None


def rows(metric: str, pairs: list[tuple[int, float]]) -> list[UsageRow]:
    """(days before as-of, value) pairs."""
    return [UsageRow("x", AS_OF - timedelta(days=d), metric, v) for d, v in pairs]


def test_level_aggregates_over_the_window() -> None:
    u = list(rows("m", [(40, 100), (20, 10), (10, 20), (0, 30), (-5, 999)]))
    assert reading(u, "m", "level", A, 30, "mean").value == pytest.approx(20)  # type: ignore[union-attr]
    assert reading(u, "m", "level", A, 30, "sum").value == 60  # type: ignore[union-attr]
    assert reading(u, "m", "level", A, 30, "last").value == 30  # type: ignore[union-attr]
    assert reading(u, "m", "level", A, 30, "max").value == 30  # type: ignore[union-attr]
    assert reading(u, "m", "level", A, 30, "min").value == 10  # type: ignore[union-attr]
    assert reading(u, "m", "level", A - 60, 10, "mean") is None  # no rows in that window


def test_trend_is_percent_of_mean_per_30_days() -> None:
    u = list(rows("m", [(30, 100), (20, 90), (10, 80), (0, 70)]))
    r = reading(u, "m", "trend", A, 60)
    # slope -1/day -> -30 per 30 days; mean 85 -> -35.3 %
    assert r is not None and r.value == pytest.approx(-30 / 85 * 100)
    assert reading(list(rows("m", [(0, 5)])), "m", "trend", A, 60) is None


def test_change_of_weekly_snapshots_compares_means_not_row_counts() -> None:
    """A weekly "logins in the last 30 days" export puts 4 rows in one 30-day window and 5 in the next: a sum
    would swing with the calendar. Snapshots are compared by their mean, so a steady fall reads as a fall on
    every date, and a flat series reads as flat."""
    falling = list(rows("logins_30d", [(7 * k, 100 + 10 * k) for k in range(20)]))  # 10 fewer each week
    flat = list(rows("logins_30d", [(7 * k, 200) for k in range(20)]))
    for d in range(7):
        r = reading(falling, "logins_30d", "change", A - d, 30, "sum")
        assert r is not None and -30 < r.value < -10, (d, r.value)  # type: ignore[union-attr]
        f = reading(flat, "logins_30d", "change", A - d, 30, "sum")
        assert f is not None and f.value == pytest.approx(0), (d, f.value)  # type: ignore[union-attr]
    # per-day rows keep their sum: 30 days of 2 logins against 30 days of 1
    daily = list(rows("logins", [(d, 2.0 if d < 30 else 1.0) for d in range(60)]))
    r = reading(daily, "logins", "change", A, 30, "sum")
    assert r is not None and r.value == pytest.approx(100)


def test_change_vs_previous_window() -> None:
    u = list(rows("m", [(45, 10), (40, 10), (20, 5), (5, 10)]))
    r = reading(u, "m", "change", A, 30, "sum")
    assert r is not None and r.value == pytest.approx((15 - 20) / 20 * 100)
    assert reading(list(rows("m", [(5, 10)])), "m", "change", A, 30, "sum") is None  # no baseline


def test_ratio_to_latest_denominator() -> None:
    u = list(rows("active", [(3, 40), (1, 60)]) + rows("seats", [(100, 50), (10, 100), (-1, 1)]))
    r = reading(u, "active", "ratio", A, 30, "mean", "seats")
    assert r is not None and r.value == pytest.approx(0.5)
    assert reading(u, "active", "ratio", A, 30, "mean", "nothing") is None


def test_days_since_last_and_count() -> None:
    u = list(rows("logins", [(50, 3), (12, 0), (9, 2), (-3, 5)]))
    assert reading(u, "logins", "days_since_last", A, 30).value == 9  # type: ignore[union-attr]
    start = (AS_OF - timedelta(days=200)).toordinal()
    assert reading([], "logins", "days_since_last", A, 30, start_ordinal=start).value == 200  # type: ignore[union-attr]
    assert reading([], "logins", "days_since_last", A, 30) is None
    assert reading(u, "logins", "count", A, 30).value == 2  # type: ignore[union-attr]


def test_future_rows_never_change_a_reading() -> None:
    past = rows("m", [(40, 1), (20, 2), (3, 4)])
    future = rows("m", [(-1, 100), (-30, 0), (-2, 7)])
    for transform in ("level", "trend", "change", "days_since_last", "count"):
        a = reading(list(past), "m", transform, A, 30, "sum")
        b = reading(list(past + future), "m", transform, A, 30, "sum")
        assert (a is None) == (b is None) and (a is None or a.value == b.value), transform


def test_metrics_reported_as_of_a_date() -> None:
    r = rows("old", [(100, 1)]) + rows("new", [(-10, 1)]) + [UsageRow("late", AS_OF - timedelta(days=50), "pre", 1)]
    first = first_days(r, {"x": None, "late": AS_OF})  # "late" starts on as-of: its earlier row does not count
    assert metrics_as_of(first, AS_OF) == frozenset({"old"})
    assert metrics_as_of(first, AS_OF + timedelta(days=10)) == frozenset({"old", "new"})


def _doc(day: date | None, people: list[tuple[str, str]], text: str = "hello") -> SourceDocument:
    when = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) if day else None
    return SourceDocument(kind="email", text=text + str(day), occurred_at=when,
                          participants=[Participant(name=n, address=a, role="from") for n, a in people],
                          path=f"{day}.eml")


def test_document_facts_count_customer_contacts_and_ignore_the_future() -> None:
    docs = [
        _doc(AS_OF - timedelta(days=10), [("Pat", "pat@cust.com"), ("Sam", "sam@vendor.io")]),
        _doc(AS_OF - timedelta(days=40), [("Lee", "lee@cust.com")]),
        _doc(AS_OF - timedelta(days=200), [("Old", "old@cust.com")]),
        _doc(AS_OF + timedelta(days=2), [("Fut", "fut@cust.com"), ("Fut2", "fut2@cust.com")]),
        _doc(None, [("Nod", "nod@cust.com")]),
    ]
    facts, undated = document_facts(docs, AS_OF, vendor_domains=["vendor.io"])
    assert undated == 1
    assert facts["distinct_contacts_90d"].value == 2
    assert facts["days_since_last_conversation"].value == 10
    assert facts["documents_90d"].value == 2
    single, _ = document_facts(docs[:1], AS_OF, vendor_domains=["vendor.io"])
    assert single["distinct_contacts_90d"].value == 1 and "single-threaded" in single["distinct_contacts_90d"].detail
    assert document_facts(docs[3:4], AS_OF) == ({}, 0)


def test_account_facts_from_contract_dates() -> None:
    acc = Account(account_id="a", start_date=date(2024, 1, 1), end_date=date(2024, 8, 29))
    f = account_facts(acc, AS_OF)
    assert f["days_to_renewal"].value == 60 and f["tenure_days"].value == 181
    assert "tenure_days" not in account_facts(acc, date(2023, 12, 1))
