"""Metric transforms over a window ending at as-of, in O(log n) per reading.

Usage is grouped once per account and metric into sorted day ordinals with prefix sums, so every window
statistic (mean, sum, count, least-squares slope) is two bisects and a few subtractions. Rows are sorted by
(day, value), so the rows on or before a date always form the same prefix whatever comes later: a reading at
as-of is bit-for-bit the same with or without future rows (the leak check relies on it).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import accumulate
from typing import NamedTuple

from extractors.models import UsageRow

class Reading(NamedTuple):
    """One transform's value and the window it read (inclusive days)."""

    value: float
    window_start: date | None
    window_end: date


@dataclass(slots=True)
class Series:
    """One metric of one account: sorted day ordinals, values and prefix sums."""

    days: list[int]
    values: list[float]
    s_y: list[float]  # prefix sums, length n+1
    s_x: list[float]
    s_xx: list[float]
    s_xy: list[float]
    last_pos: list[int]  # last_pos[i] = ordinal of the last row < i with value > 0, or -1

    @classmethod
    def build(cls, pairs: list[tuple[int, float]]) -> Series:
        pairs.sort()
        days = [d for d, _ in pairs]
        values = [v for _, v in pairs]
        base = days[0] if days else 0
        xs = [float(d - base) for d in days]
        zero = (0.0,)
        s_y = list(accumulate(zero + tuple(values)))
        s_x = list(accumulate(zero + tuple(xs)))
        s_xx = list(accumulate(zero + tuple(x * x for x in xs)))
        s_xy = list(accumulate(zero + tuple(x * y for x, y in zip(xs, values))))
        last_pos = [-1]
        cur = -1
        for d, v in pairs:
            if v > 0:
                cur = d
            last_pos.append(cur)
        return cls(days, values, s_y, s_x, s_xx, s_xy, last_pos)

    def bounds(self, lo_day: int, hi_day: int) -> tuple[int, int]:
        """Row index range of days in (lo_day, hi_day]."""
        return bisect_right(self.days, lo_day), bisect_right(self.days, hi_day)


AccountUsage = Mapping[str, Series]


def group_usage(rows: Iterable[UsageRow]) -> dict[str, dict[str, Series]]:
    """account -> metric -> Series, built once for all dates."""
    raw: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        raw[r[0]][r[2]].append((r[1].toordinal(), float(r[3])))
    return {a: {m: Series.build(p) for m, p in ms.items()} for a, ms in raw.items()}


def account_usage(rows: Iterable[UsageRow]) -> dict[str, Series]:
    """Series of one account's rows (the pure scorer's entry point)."""
    raw: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        raw[r[2]].append((r[1].toordinal(), float(r[3])))
    return {m: Series.build(p) for m, p in raw.items()}


def _day(ordinal: int) -> date:
    return date.fromordinal(ordinal)


def _aggregate(s: Series, lo: int, hi: int, how: str) -> float | None:
    n = hi - lo
    if how == "count":  # rows in the window; zero is a reading
        return float(max(n, 0))
    if n <= 0:
        return None
    if how == "mean":
        return (s.s_y[hi] - s.s_y[lo]) / n
    if how == "sum":
        return s.s_y[hi] - s.s_y[lo]
    if how == "last":
        return s.values[hi - 1]
    if how == "max":
        return max(s.values[lo:hi])
    if how == "min":
        return min(s.values[lo:hi])
    raise ValueError(f"unknown aggregate {how!r}")


def reading(
    usage: AccountUsage,
    metric: str,
    transform: str,
    as_of_ordinal: int,
    window_days: int,
    aggregate: str = "mean",
    denominator: str | None = None,
    start_ordinal: int | None = None,
    denominator_aggregate: str | None = None,
) -> Reading | None:
    """The transform's value at as-of, or None when the data cannot say (no rows, zero baseline...)."""
    a = as_of_ordinal
    w = window_days
    s = usage.get(metric)
    if s is not None and bisect_right(s.days, a) == 0:
        s = None  # rows only after as-of read exactly like no rows: a future row must change nothing
    if s is None and transform not in ("days_since_last", "count", "ratio"):
        return None  # the common case for a model naming metrics a tenant does not report: stay cheap
    end = _day(a)
    start = _day(a - w + 1)
    if transform == "days_since_last":
        last = -1
        if s is not None:
            hi = bisect_right(s.days, a)
            last = s.last_pos[hi]
        if last >= 0:
            return Reading(float(a - last), _day(last), end)
        if start_ordinal is not None and start_ordinal <= a:
            return Reading(float(a - start_ordinal), _day(start_ordinal), end)
        return None
    if transform == "count":
        if s is None:
            return Reading(0.0, start, end) if start_ordinal is not None and start_ordinal <= a else None
        lo, hi = s.bounds(a - w, a)
        if hi == 0:  # nothing on or before as-of yet
            return None
        return Reading(float(hi - lo), start, end)
    if transform == "ratio":
        d = usage.get(denominator or "")
        if d is None:
            return None
        dlo, dhi = d.bounds(a - w, a)
        if denominator_aggregate is None:  # latest value of the denominator (seats contracted)
            if dhi == 0 or d.values[dhi - 1] <= 0:
                return None
            dv = d.values[dhi - 1]
        else:  # the denominator's aggregate over the same window (submitted count / due count)
            dv_agg = _aggregate(d, dlo, dhi, denominator_aggregate)
            if dv_agg is None or dv_agg <= 0:
                return None
            dv = dv_agg
        if s is None:
            if aggregate != "count":
                return None
            v = 0.0
        else:
            lo, hi = s.bounds(a - w, a)
            v_agg = _aggregate(s, lo, hi, aggregate)
            if v_agg is None:
                return None
            v = v_agg
        return Reading(v / dv, start, end)
    if s is None:
        return None
    lo, hi = s.bounds(a - w, a)
    if transform == "level":
        v = _aggregate(s, lo, hi, aggregate)
        return None if v is None else Reading(v, start, end)
    if transform == "change":
        plo = bisect_right(s.days, a - 2 * w)
        cur = _aggregate(s, lo, hi, aggregate) if hi > lo else (0.0 if aggregate == "sum" else None)
        prev = _aggregate(s, plo, lo, aggregate)
        if cur is None or prev is None or prev == 0:
            return None
        return Reading((cur - prev) / abs(prev) * 100.0, _day(a - 2 * w + 1), end)
    if transform == "trend":
        n = hi - lo
        if n < 2:
            return None
        sy = s.s_y[hi] - s.s_y[lo]
        sx = s.s_x[hi] - s.s_x[lo]
        sxx = s.s_xx[hi] - s.s_xx[lo]
        sxy = s.s_xy[hi] - s.s_xy[lo]
        var = n * sxx - sx * sx
        mean = sy / n
        if var <= 0 or mean == 0:
            return None
        slope = (n * sxy - sx * sy) / var  # per day
        return Reading(slope * 30.0 / abs(mean) * 100.0, start, end)
    raise ValueError(f"unknown transform {transform!r}")


def first_days(rows: Iterable[UsageRow], accounts_start: Mapping[str, date | None] | None = None) -> dict[str, int]:
    """metric -> first day ordinal it was reported (by accounts that had started by then).

    Lets the scorer know which metrics the tenant reports as of a date, without looking past that date.
    """
    out: dict[str, int] = {}
    for r in rows:
        if accounts_start is not None:
            st = accounts_start.get(r[0])
            if st is not None and st > r[1]:
                continue
        o = r[1].toordinal()
        m = r[2]
        if o < out.get(m, 1 << 62):
            out[m] = o
    return out


def metrics_as_of(first: Mapping[str, int], as_of: date) -> frozenset[str]:
    a = as_of.toordinal()
    return frozenset(m for m, o in first.items() if o <= a)


__all__ = [
    "AccountUsage", "Reading", "Series", "account_usage", "first_days", "group_usage", "metrics_as_of", "reading",
]
