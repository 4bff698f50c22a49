"""Values every format reads: dates (timezone-aware, never filled in from the clock), seconds, people."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

DATEISH = re.compile(r"\b(?:19|20)\d\d\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
EMAIL_ADDR = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
QP = re.compile(r"=(?:[0-9A-F]{2})")
RFC2822 = re.compile(r"^\s*(?:[A-Za-z]{3},?\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s+[^\sAaPp][^\s]*|\s*$)")
US_DATE = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?:,?[ \t]+(\d{1,2}):(\d{2})(?::(\d{2}))?[ \t]*([AaPp][Mm])?)?[ \t]*$"
)
MAILTO = re.compile(r"\[mailto:([^\]\s]*)\]?", re.I)
LOTUS_DOMAIN = re.compile(r"(?<=\S)@[A-Za-z]+\s*$")  # "Name@ECT", "a@b.com@ENRON": a Notes domain, no dot

def aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


TZINFOS = {
    name: hours * 3600
    for name, hours in {
        "UTC": 0, "GMT": 0, "Z": 0, "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3,
        "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    }.items()
}


def parse_date(value: str | None) -> datetime | None:
    """A document's own date; one outside the supported range (extractors/dates.py) means undated."""
    return supported(_parse_date(value))


def supported(found: datetime | None) -> datetime | None:
    from extractors.dates import in_range

    if found is None:
        return None
    try:
        found.astimezone(UTC)  # 9999-12-31 23:59:59 -1200 is past the end of time in UTC
    except (OverflowError, ValueError):
        return None
    return found if in_range(found) else None


def _parse_date(value: str | None) -> datetime | None:
    """RFC 2822 first, then python-dateutil for what people type; None when no real date is there.

    A value without a year (``3:45 PM``) is rejected rather than completed from today's date.
    """
    if not value:
        return None
    value = QP.sub(" ", value).strip()
    if not value or len(value) > 200:
        return None
    m = US_DATE.match(value)  # Lotus/Outlook "05/09/2001 08:49 AM", far faster than dateutil
    if m:
        mo, d, y, hh, mm, ss, ampm = m.groups()
        year = int(y) + (2000 if len(y) == 2 and int(y) < 70 else 1900 if len(y) == 2 else 0)
        hour = int(hh or 0)
        if ampm:
            hour = hour % 12 + (12 if ampm.lower() == "pm" else 0)
        try:
            return datetime(year, int(mo), int(d), hour, int(mm or 0), int(ss or 0), tzinfo=UTC)
        except ValueError:
            pass
    if RFC2822.match(value):
        try:
            return aware(parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError):
            pass
    if not DATEISH.search(value):
        return None
    import warnings

    from dateutil import parser as du

    cleaned = re.sub(r"\([A-Za-z ]+\)\s*$", "", value).replace(" at ", " ").strip()
    with warnings.catch_warnings():  # an unknown zone name ("IST") is ignored: the date is still right
        warnings.simplefilter("ignore")
        for fuzzy in (False, True):  # fuzzy picks the date out of "Marty Sunde   05/09/2001 08:16 AM"
            try:
                return aware(du.parse(cleaned, default=datetime(2000, 1, 1), fuzzy=fuzzy, tzinfos=TZINFOS))
            except (ValueError, OverflowError, TypeError):
                continue
    return None


def seconds(value: Any) -> float | None:
    """Seconds from ``12.5``, ``"12.5"``, ``"00:01:02.500"`` or ``"01:02,5"``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    s = value.strip().replace(",", ".")
    try:
        if ":" not in s:
            return float(s)
        total = 0.0
        for part in s.split(":"):
            total = total * 60 + float(part)
        return total
    except ValueError:
        return None


def clean_name(value: str) -> str | None:
    """A display name from Outlook/Lotus forms: 'Comnes, Alan', 'Steven J Kean/HOU/EES@EES', '"Bob" '."""
    v = QP.sub(" ", value)
    v = MAILTO.sub("", v).strip().strip("'\"").strip()
    v = LOTUS_DOMAIN.sub("", v)  # Lotus "Name@ENRON"
    if "/" in v and "@" not in v.split("/", 1)[0]:
        v = v.split("/", 1)[0]  # Lotus "Name/HOU/ECT"
    v = " ".join(v.split())
    m = re.fullmatch(r"([^\W\d][\w'-]+), ([^\W\d][\w.' -]+)", v)  # Outlook "Alvarez, Ray"
    if m:
        v = f"{m.group(2)} {m.group(1)}"
    return v or None


def person(value: str) -> tuple[str | None, str | None]:
    """(name, lower-cased address) from a From-like value."""
    v = QP.sub(" ", value).strip()
    mailto = MAILTO.search(v)
    if mailto:
        target = mailto.group(1)
        v = (v[: mailto.start()] + v[mailto.end() :]).strip()
        if EMAIL_ADDR.fullmatch(target) and not target.upper().startswith("IMCEA") and "<" not in v:
            return clean_name(v), target.lower()
    v = LOTUS_DOMAIN.sub("", v)
    m = re.search(r"<([^<>@\s]+@[^<>\s]+)>", v)
    if m:
        name = clean_name(v[: m.start()]) or None
        return name, m.group(1).lower()
    m = EMAIL_ADDR.fullmatch(v.strip("'\" \t"))
    if m:
        return None, m.group(0).lower()
    return clean_name(v), None


def who(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        name = next((value[k] for k in ("name", "real_name", "display_name", "username", "handle", "id")
                     if isinstance(value.get(k), str) and value[k].strip()), None)
        email = value.get("email") if isinstance(value.get("email"), str) else None
        return (name.strip() if name else None), (email.strip().lower() if email else None)
    if isinstance(value, str) and value.strip():
        name, addr = person(value)
        return (name or addr), addr
    if isinstance(value, int):
        return str(value), None
    return None, None



_ISO_DAY = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)")
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_NAMED_DAY = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS},?\s+\d{{4}}|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})\b", re.I
)
_FILE_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?!\d)")


def date_in_text(value: str | None) -> datetime | None:
    """A date written somewhere in a line of free text (``QBR, 2024-03-12``, ``Call on 12 March 2024``)."""
    if not value:
        return None
    m = _ISO_DAY.search(value) or _NAMED_DAY.search(value)
    return parse_date(m.group(0)) if m else None


def date_from_file_name(path: str | None) -> datetime | None:
    """The leading ``YYYY-MM-DD`` of a workspace file's name (``2024-03-12-qbr.vtt``), as UTC midnight."""
    if not path:
        return None
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    m = _FILE_DAY.match(name)
    if not m:
        return None
    try:
        return supported(datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=UTC))
    except ValueError:
        return None


_BRACKETED = re.compile(r"\s*\((?:[^()]*)\)|\s*\[(?:[^\[\]]*)\]")


def people_list(value: str, limit: int = 200) -> list[tuple[str | None, str | None]]:
    """(name, address) of each person on an ``Attendees:`` line: comma, semicolon or "and" separated,
    ``Name <address>``, bare addresses, and ``(Company, role)`` remarks dropped."""
    out: list[tuple[str | None, str | None]] = []
    cleaned = _BRACKETED.sub("", value)
    for part in re.split(r"\s*[;,]\s*|\s+(?:and|&)\s+", cleaned):
        part = part.strip(" \t*_-.")
        if not part or len(part) > 120:
            continue
        name, addr = person(part)
        if name and (len(name.split()) > 5 or not any(ch.isalpha() for ch in name)):
            continue
        if name or addr:
            out.append((name, addr))
        if len(out) >= limit:
            break
    return out


def merge_people(speakers: list[Any], attendees: list[Any]) -> list[Any]:
    """Speakers and listed attendees as one list, one entry per person: an attendee line that gives a
    speaker's address lends it to the speaker (same name, case and spacing aside)."""
    from ..models import Participant

    by_name = {" ".join((a.name or "").lower().split()): a for a in attendees if a.name}
    out: list[Any] = []
    used: set[int] = set()
    for sp in speakers:
        att = by_name.get(" ".join((sp.name or "").lower().split()))
        if att is not None:
            used.add(id(att))
            if att.address and not sp.address:
                sp = Participant(name=sp.name, address=att.address, role=sp.role)
        out.append(sp)
    out.extend(a for a in attendees if id(a) not in used)
    return out
