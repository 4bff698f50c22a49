"""Usage as flat numpy columns, and every metric transform read for many accounts at once.

Every metric of every account lies in sorted columns (series after series, rows by day) with per-series prefix
sums, so one rubric's reading at one as-of date is a few ``searchsorted`` calls and array subtractions for all
accounts at once. Rows are sorted by (day, value), so the rows on or before a date always form the same prefix
whatever comes later: a reading at as-of is the same with or without future rows (the leak check relies on it).
Pure: readers in :mod:`memory` build the columns; the engine (:mod:`scoring.engine`) and calibration read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from extractors.models import UsageRow
from scoring.model import PiecewiseMap

SNAPSHOT_DAYS = 3  # a series with at most one row per this many days is read as snapshots, not per-day counts
_BIG = 1 << 22  # above every date ordinal (date.max is 3,652,059): key = series * _BIG + day stays sorted


@dataclass
class UsageColumns:
    """All series of all accounts as flat arrays (built once, read at every date).

    Row arrays (``key``, ``values``) hold series after series; prefix arrays (``s_y`` ...) hold each series'
    ``n + 1`` prefix entries (``[0, v0, v0+v1, ...]``), so a window sum is one subtraction.
    """

    metric_names: list[str]
    metric_index: dict[str, int]
    account_row: dict[str, int]
    sid_of: np.ndarray  # (accounts with usage, metrics) -> series id or -1
    key: np.ndarray  # per row: series * _BIG + day ordinal
    values: np.ndarray  # per row, plus one sentinel (reduceat bounds)
    rstart: np.ndarray  # per series: first row
    pstart: np.ndarray  # per series: first prefix entry
    first_day: np.ndarray  # per series: first day ordinal
    s_y: np.ndarray
    s_x: np.ndarray
    s_xx: np.ndarray
    s_xy: np.ndarray
    last_pos: np.ndarray


def _segment_prefix(vals: np.ndarray, rstart: np.ndarray, length: np.ndarray, pstart: np.ndarray,
                    size: int) -> np.ndarray:
    """Per-series prefix sums ``[0, v0, v0+v1, ...]`` summed left to right from 0.0 like ``itertools.accumulate``.

    A cumsum over the whole column would carry the previous series' total into each sum (other floats); here
    series of similar length share a zero-padded matrix whose rows are summed separately (axis 1, sequential).
    """
    out = np.zeros(size)
    if not len(length):
        return out
    width = np.ones(len(length), dtype=np.int64)
    while True:  # next power of two >= length (exact, no log2 rounding)
        short = width < length
        if not short.any():
            break
        width[short] *= 2
    for w in np.unique(width).tolist():
        sel = np.flatnonzero(width == w)
        j = np.arange(w)
        mask = j[None, :] < length[sel][:, None]
        mat = np.zeros((len(sel), w))
        mat[mask] = vals[(rstart[sel][:, None] + j[None, :])[mask]]
        mat[:, 0] += 0.0  # accumulate starts from 0.0: 0.0 + (-0.0) is 0.0
        acc = np.cumsum(mat, axis=1)
        out[(pstart[sel][:, None] + 1 + j[None, :])[mask]] = acc[mask]
    return out


def columns_from_rows(account: np.ndarray, day: np.ndarray, metric: np.ndarray, value: np.ndarray,
                      account_ids: Sequence[str], metric_names: Sequence[str]) -> UsageColumns:
    """Columns straight from row arrays (account index, day ordinal, metric index, value): no Python objects.

    Rows are sorted by (account, metric, day, value) so the rows of one day always sort the same way.
    """
    nm = max(len(metric_names), 1)
    combined = account.astype(np.int64) * nm + metric
    key = combined * _BIG + day
    order = np.argsort(key, kind="stable")  # cheap on exports already grouped by account
    ordered = key[order]
    if len(ordered) > 1 and bool((ordered[1:] == ordered[:-1]).any()):  # rows sharing a day: by value too
        order = np.lexsort((value, key))
    combined, day, value = combined[order], day[order].astype(np.int64), value[order].astype(np.float64)
    m = len(combined)
    new = np.ones(m, dtype=bool)
    if m:
        new[1:] = combined[1:] != combined[:-1]
    rstart = np.flatnonzero(new).astype(np.int64)
    n_series = len(rstart)
    length = np.diff(np.append(rstart, m))
    series_of_row = np.repeat(np.arange(n_series, dtype=np.int64), length)
    pstart = rstart + np.arange(n_series, dtype=np.int64)
    size = m + n_series
    first = day[rstart]
    xs = (day - np.repeat(first, length)).astype(np.float64)
    s_y = _segment_prefix(value, rstart, length, pstart, size)
    s_x = _segment_prefix(xs, rstart, length, pstart, size)
    s_xx = _segment_prefix(xs * xs, rstart, length, pstart, size)
    s_xy = _segment_prefix(xs * value, rstart, length, pstart, size)
    # last day with a value > 0 up to each row: a running max that restarts with each series
    offset = series_of_row * _BIG
    running = np.maximum.accumulate(offset + np.where(value > 0, day, -1)) - offset
    last_pos = np.full(size, -1, dtype=np.int64)
    last_pos[np.arange(m) + series_of_row + 1] = running
    # accounts with usage, and their series per metric
    acc_of_series = combined[rstart] // nm
    met_of_series = combined[rstart] % nm
    used = np.unique(acc_of_series)
    row_of = np.full(len(account_ids), -1, dtype=np.int64)
    row_of[used] = np.arange(len(used))
    sid_of = np.full((len(used), len(metric_names)), -1, dtype=np.int64)
    sid_of[row_of[acc_of_series], met_of_series] = np.arange(n_series)
    return UsageColumns(
        metric_names=list(metric_names),
        metric_index={name: i for i, name in enumerate(metric_names)},
        account_row={account_ids[a]: int(r) for a, r in zip(used.tolist(), range(len(used)))},
        sid_of=sid_of,
        key=series_of_row * _BIG + day,
        values=np.append(value, 0.0),
        rstart=rstart,
        pstart=pstart,
        first_day=first,
        s_y=s_y,
        s_x=s_x,
        s_xx=s_xx,
        s_xy=s_xy,
        last_pos=last_pos,
    )




def columns_from_usage(rows: Iterable[UsageRow], account_ids: Sequence[str],
                       extra_metrics: Iterable[str] = ()) -> UsageColumns:
    """Columns from domain rows (rows of accounts not in ``account_ids`` are left out)."""
    index = {a: i for i, a in enumerate(account_ids)}
    acc: list[int] = []
    day: list[int] = []
    met: list[str] = []
    val: list[float] = []
    for r in rows:
        i = index.get(r[0])
        if i is None:
            continue
        acc.append(i)
        day.append(r[1].toordinal())
        met.append(r[2])
        val.append(float(r[3]))
    names = sorted(set(met) | set(extra_metrics))
    mindex = {m: i for i, m in enumerate(names)}
    return columns_from_rows(np.asarray(acc, dtype=np.int64), np.asarray(day, dtype=np.int64),
                             np.asarray([mindex[m] for m in met], dtype=np.int64), np.asarray(val, dtype=np.float64),
                             list(account_ids), names)


def empty_columns(account_ids: Sequence[str]) -> UsageColumns:
    empty = np.zeros(0, dtype=np.int64)
    return columns_from_rows(empty, empty, empty, np.zeros(0), list(account_ids), [])


def first_days(rows: Iterable[UsageRow], accounts_start: Mapping[str, date | None] | None = None) -> dict[str, int]:
    """metric -> first day ordinal it was reported (by accounts that had started by then).

    Lets the engine know which metrics the tenant reports as of a date, without looking past that date.
    """
    out: dict[str, int] = {}
    for r in rows:
        if accounts_start is not None:
            st = accounts_start.get(r[0])
            if st is not None and st > r[1]:
                continue
        o = r[1].toordinal()
        if o < out.get(r[2], 1 << 62):
            out[r[2]] = o
    return out


def metrics_as_of(first: Mapping[str, int], as_of: date) -> frozenset[str]:
    a = as_of.toordinal()
    return frozenset(m for m, o in first.items() if o <= a)


def first_days_of(cols: UsageColumns, account_ids: Sequence[str],
                  starts: Mapping[str, date | None]) -> dict[str, int]:
    """first_days from the columns: metric -> first day reported by a started account."""
    out: dict[str, int] = {}
    if not len(cols.rstart):
        return out
    start_of_row = np.full(cols.sid_of.shape[0], np.iinfo(np.int64).min, dtype=np.int64)
    for aid, row in cols.account_row.items():
        st = starts.get(aid)
        if st is not None:
            start_of_row[row] = st.toordinal()
    sid_row, sid_metric = np.nonzero(cols.sid_of >= 0)
    sids = cols.sid_of[sid_row, sid_metric]
    series_start = np.empty(len(cols.rstart), dtype=np.int64)
    series_start[sids] = start_of_row[sid_row]
    series_metric = np.empty(len(cols.rstart), dtype=np.int64)
    series_metric[sids] = sid_metric
    series_of_row = cols.key // _BIG
    day = cols.key - series_of_row * _BIG
    ok = day >= series_start[series_of_row]
    best = np.full(len(cols.metric_names), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, series_metric[series_of_row[ok]], day[ok])
    for mi, name in enumerate(cols.metric_names):
        if best[mi] != np.iinfo(np.int64).max:
            out[name] = int(best[mi])
    return out


def map_values(pm: PiecewiseMap, x: np.ndarray) -> np.ndarray:
    """The model's piecewise-linear map on an array (flat beyond the end points)."""
    xs = np.array([p[0] for p in pm.points], dtype=np.float64)
    ys = np.array([p[1] for p in pm.points], dtype=np.float64)
    out = np.full(len(x), ys[-1])
    out[x <= xs[0]] = ys[0]
    seg = np.searchsorted(xs[1:], x, side="left")  # first segment whose right end is >= x
    inner = (x > xs[0]) & (seg < len(xs) - 1)
    i = seg[inner]
    x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
    out[inner] = y0 + (y1 - y0) * (x[inner] - x0) / (x1 - x0)
    return out


class View:
    """One date, one group of accounts: series lookups and window bounds, vectorised."""

    def __init__(self, cols: UsageColumns, rows: np.ndarray, a: int, start: np.ndarray, has_start: np.ndarray,
                 end: np.ndarray, has_end: np.ndarray) -> None:
        self.c = cols
        self.rows = rows  # account row in sid_of, or -1 (no usage at all)
        self.a = a
        self.n = len(rows)
        self.start, self.has_start = start, has_start  # day ordinals (0 where there is none)
        self.end, self.has_end = end, has_end
        self._series: dict[str | None, np.ndarray] = {}
        self._present: dict[str | None, np.ndarray] = {}
        self._bisect: dict[tuple[str | None, int], np.ndarray] = {}

    def series(self, metric: str | None) -> np.ndarray:
        """Series id per account (-1: none), with no as-of filter ."""
        hit = self._series.get(metric)
        if hit is None:
            mi = self.c.metric_index.get(metric or "")
            if mi is None or self.c.sid_of.shape[0] == 0:
                hit = np.full(self.n, -1, dtype=np.int64)
            else:
                hit = np.where(self.rows >= 0, self.c.sid_of[np.maximum(self.rows, 0), mi], -1)
            self._series[metric] = hit
        return hit

    def present(self, metric: str | None) -> np.ndarray:
        """The series has a row on or before as-of (a series with future rows only reads as none)."""
        hit = self._present.get(metric)
        if hit is None:
            sid = self.series(metric)
            ok = sid >= 0
            hit = np.zeros(self.n, dtype=bool)
            hit[ok] = self.c.first_day[sid[ok]] <= self.a
            self._present[metric] = hit
        return hit

    def bisect(self, metric: str | None, day: int) -> np.ndarray:
        """``bisect_right(series.days, day)`` per account (0 where there is no series); each search once."""
        hit = self._bisect.get((metric, day))
        if hit is None:
            sid = self.series(metric)
            ok = sid >= 0
            hit = np.zeros(self.n, dtype=np.int64)
            if ok.any():
                s = sid[ok]
                d = min(max(day, -1), _BIG - 1)
                hit[ok] = np.searchsorted(self.c.key, s * _BIG + d, side="right") - self.c.rstart[s]
            self._bisect[(metric, day)] = hit
        return hit

    def aggregate(self, sid: np.ndarray, lo: np.ndarray, hi: np.ndarray, how: str,
                  mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window aggregate for the accounts in ``mask``: (has a value, value)."""
        c = self.c
        n = hi - lo
        val = np.zeros(self.n)
        if how == "count":
            val[mask] = np.maximum(n[mask], 0).astype(np.float64)
            return mask.copy(), val
        ok = mask & (n > 0)
        if not ok.any():
            return ok, val
        s = sid[ok]
        if how in ("mean", "sum"):
            p = c.pstart[s]
            tot = c.s_y[p + hi[ok]] - c.s_y[p + lo[ok]]
            val[ok] = tot / n[ok].astype(np.float64) if how == "mean" else tot
        elif how == "last":
            val[ok] = c.values[c.rstart[s] + hi[ok] - 1]
        elif how in ("max", "min"):
            r = c.rstart[s]
            idx = np.empty(2 * len(s), dtype=np.int64)
            idx[0::2] = r + lo[ok]
            idx[1::2] = r + hi[ok]
            ufunc = np.maximum if how == "max" else np.minimum
            val[ok] = ufunc.reduceat(c.values, idx)[0::2]
        else:
            raise ValueError(f"unknown aggregate {how!r}")
        return ok, val

    def reading(self, metric: str, transform: str, w: int, aggregate: str, denominator: str | None,
                start: np.ndarray, has_start: np.ndarray, denominator_aggregate: str | None
                ) -> tuple[np.ndarray, np.ndarray]:
        """The transform's value at as-of for every account: (has a reading, value).

        ``days_since_last`` counts from the account's start when a metric has no row > 0 yet; ``count`` of a
        metric without rows is 0 for a started account; ``trend`` is the least-squares slope in % of the window
        mean per 30 days; ``change`` the % change of the aggregate against the window before (a ``sum`` over sparse snapshot rows
        compares their means instead, see below)."""
        a = self.a
        raw = self.series(metric)
        s_ok = self.present(metric)
        sid = np.where(s_ok, raw, -1)
        started = has_start & (start <= a)
        val = np.zeros(self.n)

        def bounds(day: int) -> np.ndarray:  # on the as-of-filtered series: 0 where it reads as none
            return np.where(s_ok, self.bisect(metric, day), 0)
        if transform == "days_since_last":
            hi = bounds(a)
            last = np.full(self.n, -1, dtype=np.int64)
            last[s_ok] = self.c.last_pos[self.c.pstart[sid[s_ok]] + hi[s_ok]]
            got = last >= 0
            val = np.where(got, (a - last).astype(np.float64), (a - start).astype(np.float64))
            return got | started, val
        if transform == "count":
            lo, hi = bounds(a - w), bounds(a)
            val = np.where(s_ok, (hi - lo).astype(np.float64), 0.0)
            return s_ok | started, val
        if transform == "ratio":
            d = self.series(denominator)
            d_ok = d >= 0
            dlo, dhi = self.bisect(denominator, a - w), self.bisect(denominator, a)
            if denominator_aggregate is None:
                ok_d = d_ok & (dhi > 0)
                dv = np.zeros(self.n)
                dv[ok_d] = self.c.values[self.c.rstart[d[ok_d]] + dhi[ok_d] - 1]
            else:
                ok_d, dv = self.aggregate(d, dlo, dhi, denominator_aggregate, d_ok)
            ok_d = ok_d & (dv > 0)
            lo, hi = bounds(a - w), bounds(a)
            ok_v, v = self.aggregate(sid, lo, hi, aggregate, s_ok)
            if aggregate == "count":  # no series: a count of zero rows
                ok_v = ok_v | ~s_ok
                v = np.where(s_ok, v, 0.0)
            ok = ok_d & ok_v
            val[ok] = v[ok] / dv[ok]
            return ok, val
        lo, hi = bounds(a - w), bounds(a)
        if transform == "level":
            return self.aggregate(sid, lo, hi, aggregate, s_ok)
        if transform == "change":
            plo = bounds(a - 2 * w)
            ok_c, cur = self.aggregate(sid, lo, hi, aggregate, s_ok & (hi > lo))
            ok_p, prev = self.aggregate(sid, plo, lo, aggregate, s_ok)
            if aggregate == "sum":
                empty = s_ok & (hi <= lo)
                ok_c = ok_c | empty
                cur = np.where(empty, 0.0, cur)
                # A sum compares activity only for per-day rows. Snapshots (a weekly "logins in the last 30
                # days", at most one row per SNAPSHOT_DAYS days over both windows) would put 4 rows in one
                # window and 5 in the next; they are compared by their mean per row. Decided from the rows on
                # or before as-of only, so the reading never depends on later data.
                snap = s_ok & ((hi - plo) * SNAPSHOT_DAYS <= 2 * w) & (hi > lo) & (lo > plo)
                if snap.any():
                    m_c = self.aggregate(sid, lo, hi, "mean", snap)[1]
                    m_p = self.aggregate(sid, plo, lo, "mean", snap)[1]
                    cur = np.where(snap, m_c, cur)
                    prev = np.where(snap, m_p, prev)
            ok = ok_c & ok_p & (prev != 0)
            val[ok] = (cur[ok] - prev[ok]) / np.abs(prev[ok]) * 100.0
            return ok, val
        if transform == "trend":
            n = hi - lo
            ok = s_ok & (n >= 2)
            s = sid[ok]
            p = self.c.pstart[s]
            h, l_ = p + hi[ok], p + lo[ok]
            c = self.c
            nf = n[ok].astype(np.float64)
            sy = c.s_y[h] - c.s_y[l_]
            sx = c.s_x[h] - c.s_x[l_]
            sxx = c.s_xx[h] - c.s_xx[l_]
            sxy = c.s_xy[h] - c.s_xy[l_]
            var = nf * sxx - sx * sx
            mean = sy / nf
            good = (var > 0) & (mean != 0)
            slope = (nf[good] * sxy[good] - sx[good] * sy[good]) / var[good]
            res = np.zeros(len(s))
            res[good] = slope * 30.0 / np.abs(mean[good]) * 100.0
            okf = np.zeros(self.n, dtype=bool)
            okf[np.flatnonzero(ok)[good]] = True
            val[ok] = res
            return okf, val
        raise ValueError(f"unknown transform {transform!r}")




def read_metric(cols: UsageColumns, account_ids: Sequence[str], as_of: date, metric: str, transform: str,
                window: int, aggregate: str = "mean", denominator: str | None = None,
                starts: Sequence[date | None] | None = None,
                denominator_aggregate: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One reading for the given accounts at as-of: (has a reading, value). ``starts``: account start dates
    (for readings that count from the start when a metric has no rows yet)."""
    a = as_of.toordinal()
    rows = np.array([cols.account_row.get(x, -1) for x in account_ids], dtype=np.int64)
    st = [None] * len(account_ids) if starts is None else list(starts)
    has_start = np.array([s is not None for s in st], dtype=bool)
    start = np.array([s.toordinal() if s is not None else 0 for s in st], dtype=np.int64)
    zeros = np.zeros(len(account_ids), dtype=np.int64)
    view = View(cols, rows, a, start, has_start, zeros, np.zeros(len(account_ids), dtype=bool))
    with np.errstate(over="ignore", invalid="ignore"):
        return view.reading(metric, transform, window, aggregate, denominator, start, has_start,
                            denominator_aggregate)


__all__ = [
    "UsageColumns", "View", "columns_from_rows", "columns_from_usage", "empty_columns", "first_days",
    "first_days_of", "map_values", "metrics_as_of", "read_metric",
]
