"""Totals for many accounts at many dates with numpy: the ``score --format jsonl`` hot path.

The pure scorer (:func:`scoring.scorer.compute`) reads one account at a time. Here every metric of every account
lies in flat, sorted columns (series by series, rows by day) with the scorer's own prefix sums, so each rubric's
reading at one as-of date is a few ``searchsorted`` calls and array subtractions for ALL accounts at once; the
piecewise-linear maps, the category means and the rounding into hundredths follow the scorer operation by
operation (same IEEE operations in the same order), so every total is bit-for-bit the scorer's.

Only totals are produced (no reasons, no contributions, no digest): the contract's jsonl lines need nothing else.
Accounts with documents or signals take the scorer's own path (document facts and signal decay are per account);
this module handles the usage- and contract-only accounts, which are the bulk of a big workspace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from extractors.models import CATEGORIES
from scoring.model import PiecewiseMap, ScoringModel
from scoring.scorer import Compiled, compile_model
from scoring.usage import Series, metrics_as_of

if TYPE_CHECKING:
    from scoring.batch import Inputs

_BIG = 1 << 22  # above every date ordinal (date.max is 3,652,059): key = series * _BIG + day stays sorted


@dataclass
class UsageColumns:
    """All series of all accounts as flat arrays (built once, read at every date).

    Row arrays (``key``, ``values``) hold series after series; prefix arrays (``s_y`` ...) hold each series'
    ``n + 1`` prefix entries exactly as :class:`scoring.usage.Series` computed them, so window sums subtract the
    very same floats the scorer subtracts.
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


def build_columns(usage: Mapping[str, Mapping[str, Series]], extra_metrics: Iterable[str] = ()) -> UsageColumns:
    """Concatenate grouped series (see :func:`scoring.usage.group_usage`) into columns, in O(rows)."""
    names = sorted({m for ms in usage.values() for m in ms} | set(extra_metrics))
    mindex = {m: i for i, m in enumerate(names)}
    account_row: dict[str, int] = {}
    sid_rows: list[list[int]] = []
    days: list[int] = []
    vals: list[float] = []
    s_y: list[float] = []
    s_x: list[float] = []
    s_xx: list[float] = []
    s_xy: list[float] = []
    last_pos: list[int] = []
    lengths: list[int] = []
    firsts: list[int] = []
    sid = 0
    for aid, series in usage.items():
        row = [-1] * len(names)
        for m, s in series.items():
            if not s.days:
                continue
            row[mindex[m]] = sid
            sid += 1
            days.extend(s.days)
            vals.extend(s.values)
            s_y.extend(s.s_y)
            s_x.extend(s.s_x)
            s_xx.extend(s.s_xx)
            s_xy.extend(s.s_xy)
            last_pos.extend(s.last_pos)
            lengths.append(len(s.days))
            firsts.append(s.days[0])
        account_row[aid] = len(sid_rows)
        sid_rows.append(row)
    n_series = sid
    length = np.asarray(lengths, dtype=np.int64)
    rstart = np.zeros(n_series, dtype=np.int64)
    if n_series:
        rstart[1:] = np.cumsum(length)[:-1]
    series_of_row = np.repeat(np.arange(n_series, dtype=np.int64), length)
    key = series_of_row * _BIG + np.asarray(days, dtype=np.int64)
    values = np.asarray(vals, dtype=np.float64)
    return UsageColumns(
        metric_names=names,
        metric_index=mindex,
        account_row=account_row,
        sid_of=np.asarray(sid_rows, dtype=np.int64).reshape(len(sid_rows), len(names)),
        key=key,
        values=np.append(values, 0.0),
        rstart=rstart,
        pstart=rstart + np.arange(n_series, dtype=np.int64),
        first_day=np.asarray(firsts, dtype=np.int64),
        s_y=np.asarray(s_y, dtype=np.float64),
        s_x=np.asarray(s_x, dtype=np.float64),
        s_xx=np.asarray(s_xx, dtype=np.float64),
        s_xy=np.asarray(s_xy, dtype=np.float64),
        last_pos=np.asarray(last_pos, dtype=np.int64),
    )


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

    Rows are sorted by (account, metric, day, value) as :meth:`Series.build` sorts its pairs, and the prefix
    sums are the ones it computes (same values, same order of additions), so readings match the scorer's.
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


def series_of(cols: UsageColumns, account_id: str) -> dict[str, Series]:
    """One account's grouped usage (what :func:`scoring.usage.group_usage` gives), from the columns."""
    row = cols.account_row.get(account_id)
    if row is None:
        return {}
    out: dict[str, Series] = {}
    for mi, sid in enumerate(cols.sid_of[row].tolist()):
        if sid < 0:
            continue
        r0 = int(cols.rstart[sid])
        r1 = int(cols.rstart[sid + 1]) if sid + 1 < len(cols.rstart) else len(cols.key)
        days = (cols.key[r0:r1] - sid * _BIG).tolist()
        out[cols.metric_names[mi]] = Series.build(list(zip(days, cols.values[r0:r1].tolist())))
    return out


def first_days_of(cols: UsageColumns, account_ids: Sequence[str],
                  starts: Mapping[str, date | None]) -> dict[str, int]:
    """:func:`scoring.usage.first_days` from the columns: metric -> first day reported by a started account."""
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


def read_usage_csv(path: Path, account_ids: Sequence[str], max_rows: int,
                   block_chars: int = 1 << 24) -> UsageColumns | None:
    """``usage.csv`` straight into columns, or None when the file is not plain and clean.

    Plain: no quotes, no blank lines, ``\n`` or ``\r\n`` line ends, the header's number of fields on every
    line; clean: every account known, every date, number and metric name valid. That is what exports look like,
    and such a file splits into fields with ``str.split`` (no Python object per row besides its strings, so no
    garbage-collector churn). Anything else returns None and the caller reads the file with
    :func:`memory.workspace.load_workspace`, which handles quoting and reports each bad row with its line.
    """
    import csv

    from memory.workspace import parse_day

    index = {a: i for i, a in enumerate(account_ids)}
    days: dict[str, int] = {}
    metrics: dict[str, int] = {}
    metric_names: list[str] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    seen = 0
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        head = f.readline()
        if '"' in head:
            return None
        header = [h.strip() for h in next(csv.reader([head]), [])]
        try:
            ia, idate, im, iv = (header.index(c) for c in ("account_id", "date", "metric", "value"))
        except ValueError:
            return None
        width = len(header)
        rest = ""
        while True:
            block = f.read(block_chars)
            text = rest + block
            if not block:
                rest = ""
            else:
                cut = text.rfind("\n") + 1
                text, rest = text[:cut], text[cut:]
            if text:
                text = text.replace("\r\n", "\n")
                if text.endswith("\n"):
                    text = text[:-1]
                if '"' in text or "\r" in text or "\n\n" in text or text.startswith("\n") or not text:
                    return None
                lines = text.split("\n")
                if set(map(str.count, lines, repeat(","))) != {width - 1}:
                    return None
                seen += len(lines)
                if seen > max_rows:  # the workspace reader reports the rows past the bound
                    return None
                fields = text.replace("\n", ",").split(",")
                n = len(lines)
                a = np.fromiter(map(index.get, fields[ia::width], repeat(-1)), dtype=np.int64, count=n)
                if (a < 0).any():
                    return None
                raw_days = fields[idate::width]
                for raw in set(raw_days) - days.keys():
                    try:
                        days[raw] = parse_day(raw).toordinal()
                    except (ValueError, OverflowError, TypeError):
                        return None
                raw_metrics = fields[im::width]
                for raw in set(raw_metrics) - metrics.keys():
                    name = raw.strip()
                    if not name or len(name) > 100:
                        return None
                    if name not in metric_names:
                        metric_names.append(name)
                    metrics[raw] = metric_names.index(name)
                try:
                    v = np.fromiter(map(float, fields[iv::width]), dtype=np.float64, count=n)
                except ValueError:
                    return None
                if not np.isfinite(v).all():
                    return None
                d = np.fromiter(map(days.__getitem__, raw_days), dtype=np.int64, count=n)
                mt = np.fromiter(map(metrics.__getitem__, raw_metrics), dtype=np.int64, count=n)
                parts.append((a, d, mt, v))
            if not block:
                break
    order = sorted(range(len(metric_names)), key=metric_names.__getitem__)
    remap = np.empty(len(metric_names), dtype=np.int64)
    remap[order] = np.arange(len(metric_names))
    if parts:
        acc, day, met, val = (np.concatenate([p[i] for p in parts]) for i in range(4))
        met = remap[met]
    else:
        acc = day = met = np.zeros(0, dtype=np.int64)
        val = np.zeros(0)
    return columns_from_rows(acc, day, met, val, list(account_ids), [metric_names[i] for i in order])


def map_values(pm: PiecewiseMap, x: np.ndarray) -> np.ndarray:
    """:meth:`PiecewiseMap.__call__` on an array, with the same floating-point operations in the same order."""
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


class _View:
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
        """Series id per account (-1: none), with no as-of filter (the scorer's ``usage.get``)."""
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
        """``usage._aggregate`` for the accounts in ``mask``: (has a value, value)."""
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
        """:func:`scoring.usage.reading` for every account: (has a reading, value)."""
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
            if aggregate == "sum":
                empty = s_ok & (hi <= lo)
                ok_c = ok_c | empty
                cur = np.where(empty, 0.0, cur)
            ok_p, prev = self.aggregate(sid, plo, lo, aggregate, s_ok)
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


def _group_totals(cm: Compiled, view: _View, expected: frozenset[str]) -> np.ndarray:
    """Totals in hundredths for one group of accounts sharing a compiled model (one segment), at one date."""
    a = view.a
    n = view.n
    cols = view.c
    start, has_start = view.start, view.has_start
    # reported metrics per account: a row on or before as-of, or the tenant reports the metric by then
    reported: dict[str, np.ndarray] = {}

    def is_reported(metric: str) -> np.ndarray:
        hit = reported.get(metric)
        if hit is None:
            hit = reported[metric] = (np.ones(n, dtype=bool) if metric in expected
                                      else view.present(metric))
        return hit

    # items in the scorer's append order: (category, weight, present, subscore, needs other data)
    items: list[tuple[str, float, np.ndarray, np.ndarray, bool]] = []
    for r in cm.rubrics:
        known = is_reported(r.metric)
        if r.missing is None and not known.any():
            continue
        ok, value = view.reading(r.metric, r.transform, r.window, r.aggregate, r.denominator, start,
                                 has_start & known, r.denominator_aggregate)
        sub = map_values(r.map, value)
        if r.missing is None:
            present = known & ok
        else:
            present = np.ones(n, dtype=bool)  # a calibrated "no reading" level: the item always counts
            sub = np.where(ok, sub, r.missing)
        items.append((r.category, r.weight, present, sub, False))
    if cm.unknown is not None:
        u = cm.unknown
        taken = np.zeros(n, dtype=np.int64)
        for m in sorted(set(cols.metric_names) | expected):
            if m in cm.known_metrics:
                continue
            rep = is_reported(m)
            if not rep.any():
                continue
            use = rep & (taken < cm.unknown_max)
            taken += rep
            ok, value = view.reading(m, u.transform, u.window, "sum", None, start, has_start, None)
            items.append((u.category, u.weight, use & ok, map_values(u.map, value), False))
    for name, cat, weight, fmap, _desc, needs_other in cm.facts:
        if name == "days_to_renewal":
            have = view.has_end
            v = (view.end - a).astype(np.float64)
        elif name == "tenure_days":
            have = has_start & (start <= a)
            v = (a - start).astype(np.float64)
        else:  # document facts: accounts with documents do not come here
            continue
        if have.any():
            items.append((cat, weight, have, map_values(fmap, v), needs_other))

    n_cat = len(CATEGORIES)
    has = np.zeros((n_cat, n), dtype=bool)
    for cat, _w, present, _s, dep in items:
        if not dep:
            has[CATEGORIES.index(cat)] |= present
    base_has = has.copy()
    for cat, _w, present, _s, dep in items:
        if dep:  # counts only when its category has other data (no signals on this path)
            ci = CATEGORIES.index(cat)
            has[ci] |= present & base_has[ci]
    wsum = np.zeros(n)
    for ci, c in enumerate(CATEGORIES):
        wsum = np.where(has[ci], wsum + cm.weights[c], wsum)
    safe = np.where(wsum > 0, wsum, 1.0)
    total = np.zeros(n, dtype=np.int64)
    for ci, c in enumerate(CATEGORIES):
        on = has[ci]
        if not on.any():
            continue
        ew = cm.weights[c] / safe
        # the category's own items first, then the ones that need other data (the scorer's append order)
        mine = [(w, present, s) for cat, w, present, s, dep in items if cat == c and not dep]
        mine += [(w, present & base_has[ci], s) for cat, w, present, s, dep in items if cat == c and dep]
        bw = np.zeros(n)
        for w, present, _s in mine:
            bw = np.where(present, bw + w, bw)
        pos = bw > 0
        safe_bw = np.where(pos, bw, 1.0)
        # centred: the category starts at its neutral value, each item adds share * (subscore - neutral)
        neutral = cm.neutral[c]
        sub = np.zeros(n)
        cat_h = np.rint(ew * neutral * 100).astype(np.int64)
        for w, present, s in mine:
            take = present & pos
            share = w / safe_bw
            sub = np.where(take, sub + share * s, sub)
            cat_h += np.where(take, np.rint(ew * share * (s - neutral) * 100), 0.0).astype(np.int64)
        sub = np.where(pos, sub, neutral)
        clamped = np.minimum(100.0, np.maximum(0.0, sub))
        cat_h = np.where(clamped != sub, np.rint(ew * clamped * 100).astype(np.int64), cat_h)
        total += np.where(on, cat_h, 0)
    total = np.clip(total, 0, 10000)
    return np.where(wsum > 0, total, round(cm.model.no_data_score * 100))


def fast_totals(
    inputs: Inputs,
    model: ScoringModel,
    dates: Sequence[date],
    account_ids: Iterable[str],
    *,
    columns: UsageColumns | None = None,
) -> list[tuple[int, str, int]]:
    """(as-of ordinal, account, total in hundredths) for accounts without documents or signals.

    Same order as :func:`scoring.batch.score_inputs` (date, then account id) and the same totals. Accounts
    that start after a date are not scored for it.
    """
    ids = sorted(account_ids)
    bad = [a for a in ids if inputs.documents.get(a) or inputs.signals.get(a)]
    if bad:
        raise ValueError(f"{len(bad)} account(s) with documents or signals need the scorer's own path")
    if columns is None:
        columns = inputs.columns
    cols = columns if columns is not None else build_columns(inputs.usage, inputs.metric_first_day)
    accounts = [inputs.accounts[a] for a in ids]
    groups: dict[str | None, list[int]] = {}
    for i, acc in enumerate(accounts):
        groups.setdefault(acc.segment, []).append(i)
    rows_all = np.array([cols.account_row.get(a, -1) for a in ids], dtype=np.int64)
    has_start = np.array([x.start_date is not None for x in accounts], dtype=bool)
    start = np.array([x.start_date.toordinal() if x.start_date is not None else 0 for x in accounts], dtype=np.int64)
    has_end = np.array([x.end_date is not None for x in accounts], dtype=bool)
    end = np.array([x.end_date.toordinal() if x.end_date is not None else 0 for x in accounts], dtype=np.int64)
    starts = np.where(has_start, start, -1)
    out: list[tuple[int, str, int]] = []
    compiled: dict[str | None, Compiled] = {seg: compile_model(model.for_segment(seg)) for seg in groups}
    for d in sorted(set(dates)):
        a = d.toordinal()
        expected = metrics_as_of(inputs.metric_first_day, d)
        totals = np.zeros(len(ids), dtype=np.int64)
        for seg, members in groups.items():
            idx = np.asarray(members, dtype=np.int64)
            idx = idx[starts[idx] <= a]  # accounts that start after as-of are not scored
            if not len(idx):
                continue
            view = _View(cols, rows_all[idx], a, start[idx], has_start[idx], end[idx], has_end[idx])
            with np.errstate(over="ignore", invalid="ignore"):  # huge values read as inf, as in Python floats
                totals[idx] = _group_totals(compiled[seg], view, expected)
        scored = np.flatnonzero(starts <= a)
        out.extend((a, ids[i], int(totals[i])) for i in scored.tolist())
    return out


__all__ = [
    "UsageColumns", "build_columns", "columns_from_rows", "fast_totals", "first_days_of", "map_values",
    "read_usage_csv", "series_of",
]
