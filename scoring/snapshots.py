"""Point-in-time snapshots and churn labels for calibration and backtesting.

A snapshot is (account, as-of date): the account had started by then, had not ended and had not churned yet.
Its label says whether it churned within the horizon after as-of. Only the label looks past as-of; features
are computed elsewhere from data dated on or before as-of (see :mod:`scoring.calibrate`), which is what keeps
calibration and backtests honest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from extractors.errors import InputError
from extractors.models import Account, Outcome

MAX_DATES = 400
DEFAULT_MAX_SNAPSHOTS = 150_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    account_id: str
    as_of: date
    label: int  # 1 = churned within the horizon after as_of
    offset: int  # days since the first snapshot date (for per-snapshot tables)


def first_churn(outcomes: Iterable[Outcome]) -> dict[str, date]:
    """account -> its earliest churn date."""
    out: dict[str, date] = {}
    for o in outcomes:
        if o.outcome == "churned" and (o.account_id not in out or o.date < out[o.account_id]):
            out[o.account_id] = o.date
    return out


def snapshot_dates(start: date, end: date, every: int) -> list[date]:
    """Dates from ``start`` every ``every`` days while before ``end`` (bounded)."""
    if every <= 0:
        raise InputError(f"--every must be a positive number of days, got {every}")
    n = max(0, (end - start).days + every - 1) // every
    if n > MAX_DATES:
        raise InputError(f"{n} snapshot dates from {start} to {end} every {every} days; the limit is {MAX_DATES} "
                         f"(use a larger --every)")
    return [start + timedelta(days=k * every) for k in range(n)]


def _keep_account(account_id: str, share: float) -> bool:
    """Deterministic account subsample (whole accounts, so grouped CV stays grouped)."""
    h = int.from_bytes(hashlib.sha256(account_id.encode("utf-8")).digest()[:8], "big")
    return h / 2**64 < share


def build_snapshots(
    accounts: Mapping[str, Account],
    outcomes: Iterable[Outcome],
    *,
    horizon: int,
    every: int,
    start: date | None = None,
    end: date | None = None,
    observed_until: date | None = None,
    max_snapshots: int = DEFAULT_MAX_SNAPSHOTS,
) -> list[Snapshot]:
    """Labelled snapshots of the accounts active at each date of the grid.

    ``observed_until`` is the last day outcomes are known (default: the latest outcome date); a snapshot whose
    horizon runs past it is dropped unless it churned or its contract ended by then (its label is not known yet).
    More than ``max_snapshots`` keeps a deterministic subset of accounts.
    """
    if horizon <= 0:
        raise InputError(f"--horizon must be a positive number of days, got {horizon}")
    outcomes = list(outcomes)
    churn = first_churn(outcomes)
    starts = [a.start_date for a in accounts.values() if a.start_date is not None]
    if not starts:
        raise InputError("no account has a start_date: snapshots need to know when each account was active")
    if observed_until is None:
        observed_until = max((o.date for o in outcomes), default=None)
        if observed_until is None:
            raise InputError("no outcomes: calibration and backtests need churned/renewed outcomes")
    lo = start or min(starts)
    ends = [a.end_date for a in accounts.values() if a.end_date is not None]
    hi = end or max([observed_until, *ends])
    h = timedelta(days=horizon)
    snaps: list[Snapshot] = []
    for d in snapshot_dates(lo, hi, every):
        offset = (d - lo).days
        for aid in sorted(accounts):
            acc = accounts[aid]
            if acc.start_date is None or acc.start_date > d:
                continue
            if acc.end_date is not None and d >= acc.end_date:
                continue
            ch = churn.get(aid)
            if ch is not None and ch <= d:
                continue
            label = int(ch is not None and ch <= d + h)
            if not label:
                known_until = d + h if acc.end_date is None else min(d + h, acc.end_date)
                if known_until > observed_until:
                    continue
            snaps.append(Snapshot(aid, d, label, offset))
    if len(snaps) > max_snapshots:
        share = max_snapshots / len(snaps)
        snaps = [s for s in snaps if _keep_account(s.account_id, share)]
    return snaps


def split_by_date(snaps: Iterable[Snapshot]) -> dict[date, list[Snapshot]]:
    out: dict[date, list[Snapshot]] = {}
    for s in snaps:
        out.setdefault(s.as_of, []).append(s)
    return dict(sorted(out.items()))
