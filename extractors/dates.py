"""The one date policy of the product: a supported range, strict ISO days at the edges, UTC moments.

Dates outside 1900-01-01..2200-12-31 are refused at every edge (CLI options, API parameters and bodies, CSV
rows) with one clear message, and a document whose own date lies outside it is stored undated: arithmetic on
``date.min``/``9999-12-31`` (windows, decay, time zones) would overflow deep in scoring or storage. Moments
with an offset are normalised to UTC; naive ones are read as UTC. Only the standard library is imported.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from extractors.errors import InputError

MIN_DAY = date(1900, 1, 1)
MAX_DAY = date(2200, 12, 31)
RANGE_TEXT = f"{MIN_DAY.isoformat()}..{MAX_DAY.isoformat()}"
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class DateRangeError(InputError):
    """A date the product does not support (outside :data:`RANGE_TEXT`) or not written as YYYY-MM-DD."""


def in_range(day: date) -> bool:
    if isinstance(day, datetime):
        day = day.date()
    return MIN_DAY <= day <= MAX_DAY


def check_day(day: date, what: str = "date") -> date:
    """``day`` itself, or DateRangeError naming the supported range."""
    if not in_range(day):
        raise DateRangeError(f"{what} {day.isoformat()} is outside the supported range {RANGE_TEXT}")
    return day


def parse_day(value: object, what: str = "date") -> date:
    """A strict YYYY-MM-DD day in the supported range (a bare number such as ``0`` is not a date)."""
    if isinstance(value, datetime):
        return check_day(value.date(), what)
    if isinstance(value, date):
        return check_day(value, what)
    text = str(value).strip() if isinstance(value, str) else None
    if not text or not _ISO_DAY.fullmatch(text):
        raise DateRangeError(f"{what} {value!r} is not a date; expected YYYY-MM-DD in {RANGE_TEXT}")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DateRangeError(f"{what} {value!r} is not a valid date (YYYY-MM-DD)") from None
    return check_day(day, what)


def utc(moment: datetime) -> datetime:
    """Aware UTC (naive = UTC). Raises DateRangeError instead of OverflowError at the ends of time."""
    try:
        out = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise DateRangeError(f"time {moment.isoformat()} is outside the supported range {RANGE_TEXT}") from None
    check_day(out.date(), "time")
    return out


def utc_or_none(moment: datetime | None) -> datetime | None:
    """For dates found inside documents: outside the range (``Date: 31 Dec 9999 -1200``) means undated."""
    if moment is None:
        return None
    try:
        return utc(moment)
    except DateRangeError:
        return None


def parse_moment(value: object, what: str = "time") -> datetime:
    """An ISO 8601 date-time from an API body (offset normalised to UTC); numbers are refused (not epochs)."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, date):
        return utc(datetime(value.year, value.month, value.day))
    if not isinstance(value, str) or not _ISO_DAY.match(value.strip()):
        raise DateRangeError(f"{what} {value!r} is not an ISO 8601 date-time (YYYY-MM-DD[THH:MM:SS[+HH:MM]])")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DateRangeError(f"{what} {value!r} is not a valid ISO 8601 date-time") from None
    return utc(moment)
