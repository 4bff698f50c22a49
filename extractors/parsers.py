"""Source parsers: files into :class:`SourceDocument`, keeping offsets into the original text.

The text of a document is always ``raw_bytes.decode("utf-8", errors="replace")`` with no newline
translation, so an offset means the same thing here, in the evaluation harness and in a user's editor.
Nothing is ever normalised in ``text``: CRLF, a BOM, replacement characters and quoted-printable soft breaks
all stay, and every :class:`Segment` indexes that exact string.

Design choices (they matter to every extractor):

* Segments are the *content* of a document, in document order and never overlapping: header blocks,
  "-----Original Message-----" markers, "On ... wrote:" attributions, VTT timing lines and speaker labels are
  outside every segment, so an extractor that scans segments never reads headers or labels. Markdown
  headings are labels too (notes have one ``section`` segment per heading's content). Every document with
  content outside its headers has at least one segment (a tweet: one segment over the whole text).
* Unambiguous formats (mbox, WebVTT, SRT, JSON, an RFC 822 header block) decide the structure; a kind forced
  by the caller only labels the result. For loose text the forced kind decides how it is read (``email`` on
  a file without headers: a body with chain detection; ``chat`` on one line: plain).
* Email chains keep the whole text; the top message is role ``body``, each embedded earlier message
  (forwarded, "Original Message", Lotus Notes history) role ``forwarded`` and each ``>`` block role
  ``quoted``, attributed (speaker/address/occurred_at) from whatever header or "wrote:" line the chain has.
* JSON sources (chat exports, tickets, transcript segments) have no text a quote could point into, so they
  are *rendered* deterministically as ``Author: text`` lines (a ticket starts with a ``Subject:`` line) and
  ``text`` is that rendering; the parsed original is kept in ``metadata["original"]``. Message texts are
  copied verbatim, so a quote of a message is found in the rendering.
* An mbox is one document per message in :func:`load_documents` (``text`` = that message's exact slice of
  the file, ``metadata["file_offset"]`` = where the slice starts); :func:`load_document` returns the whole
  file as one document with a segment per message body, so its offsets stay valid for the file.
* Every parsed date is timezone-aware; a date written without a zone is taken as UTC, so dates from
  different sources compare. A date is never filled in from the clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

from .errors import InputTooLargeError, ParseError
from .models import Participant, Segment, SourceDocument, SourceKind

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_MESSAGES = 10_000  # messages per mbox / chat export / ticket list, segments per transcript
KINDS = ("auto", "email", "transcript", "notes", "chat", "ticket")

_LINE = re.compile(r"([^\r\n]*)(\r\n|\n|\r|\Z)")
_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]?(.*)$")
_MBOX_FROM = re.compile(r"^From \S+.*$")
_MBOX_SPLIT = re.compile(r"(?:^|(?<=\n)|(?<=\r))From [^\r\n]*(?:\r\n|\n|\r)")
_TS = r"\[?(?P<ts>(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)\]?"
# "Professor C: ...", "[00:01:02] Alice: ...", "00:01 Bob Smith: ..."; the label is short and has no digits first
_SPEAKER_LINE = re.compile(r"^[ \t]*(?:" + _TS + r"[ \t]+)?(?P<label>[^\W\d_][\w .'()@-]{0,40}?)[ \t]*:[ \t]")
_SPEAKER_LINE_EMPTY = re.compile(r"^[ \t]*(?:" + _TS + r"[ \t]+)?(?P<label>[^\W\d_][\w .'()@-]{0,40}?)[ \t]*:[ \t]*$")
# keys that open notes/transcript files and are not speakers
_META_KEYS = frozenset(
    "date time title subject meeting attendees participants location agenda duration when where re cc to from"
    .split()
)

_VTT_TIMING = re.compile(
    r"^[ \t]*(?P<s>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})[ \t]+-->[ \t]+(?P<e>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})"
)
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?[ \t]+([^>]+)>")

_DATEISH = re.compile(r"\b(?:19|20)\d\d\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_EMAIL_ADDR = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_QP = re.compile(r"=(?:[0-9A-F]{2})")
_RFC2822 = re.compile(r"^\s*(?:[A-Za-z]{3},?\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s+[^\sAaPp][^\s]*|\s*$)")
_US_DATE = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?:,?[ \t]+(\d{1,2}):(\d{2})(?::(\d{2}))?[ \t]*([AaPp][Mm])?)?[ \t]*$"
)
_MAILTO = re.compile(r"\[mailto:([^\]\s]*)\]?", re.I)
_LOTUS_DOMAIN = re.compile(r"(?<=\S)@[A-Za-z]+\s*$")  # "Name@ECT", "a@b.com@ENRON": a Notes domain, no dot

# --------------------------------------------------------------------------------------------- reading


def read_source_text(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The decoded file, exactly as the evaluation harness decodes it; rejects binary files up front."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ParseError(str(path), "file not found") from None
    except OSError as e:
        raise ParseError(str(path), f"cannot read file: {e.strerror or e}") from None
    if p.is_dir():
        raise ParseError(str(path), "is a directory, not a file")
    if size > max_bytes:
        raise InputTooLargeError(f"{path}: file is {size} bytes, over the limit of {max_bytes}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ParseError(str(path), f"cannot read file: {e.strerror or e}") from None
    if len(data) > max_bytes:  # grew between stat and read
        raise InputTooLargeError(f"{path}: file is over the limit of {max_bytes} bytes")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ParseError(str(path), "file is UTF-16 encoded; convert it to UTF-8")
    if b"\x00" in data[:8192]:
        raise ParseError(str(path), "looks like a binary file (NUL bytes), not text")
    return data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int  # end of content, before the line break

    def text(self, s: str) -> str:
        return s[self.start : self.end]


def _lines(text: str, start: int = 0, end: int | None = None) -> list[_Line]:
    """Lines of ``text[start:end]`` with absolute offsets (str.splitlines breaks: CRLF, LF, CR and the rest)."""
    end = len(text) if end is None else end
    out: list[_Line] = []
    pos = start
    for raw in text[start:end].splitlines(True):
        n = len(raw)
        if raw.endswith("\r\n"):
            cut = 2
        elif raw[-1] in _BREAKS:
            cut = 1
        else:
            cut = 0
        out.append(_Line(pos, pos + n - cut))
        pos += n
    return out


_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _bom(text: str) -> int:
    """Where the text starts after a UTF-8 byte-order mark (kept in ``text``, so offsets stay the file's)."""
    return 1 if text.startswith("\ufeff") else 0


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


_TZINFOS = {
    name: hours * 3600
    for name, hours in {
        "UTC": 0, "GMT": 0, "Z": 0, "BST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3,
        "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    }.items()
}


def parse_date(value: str | None) -> datetime | None:
    """A document's own date; one outside the supported range (extractors/dates.py) means undated."""
    return _supported(_parse_date(value))


def _supported(found: datetime | None) -> datetime | None:
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
    value = _QP.sub(" ", value).strip()
    if not value or len(value) > 200:
        return None
    m = _US_DATE.match(value)  # Lotus/Outlook "05/09/2001 08:49 AM", far faster than dateutil
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
    if _RFC2822.match(value):
        try:
            return _aware(parsedate_to_datetime(value))
        except (TypeError, ValueError, IndexError):
            pass
    if not _DATEISH.search(value):
        return None
    import warnings

    from dateutil import parser as du

    cleaned = re.sub(r"\([A-Za-z ]+\)\s*$", "", value).replace(" at ", " ").strip()
    with warnings.catch_warnings():  # an unknown zone name ("IST") is ignored: the date is still right
        warnings.simplefilter("ignore")
        for fuzzy in (False, True):  # fuzzy picks the date out of "Marty Sunde   05/09/2001 08:16 AM"
            try:
                return _aware(du.parse(cleaned, default=datetime(2000, 1, 1), fuzzy=fuzzy, tzinfos=_TZINFOS))
            except (ValueError, OverflowError, TypeError):
                continue
    return None


def _seconds(value: Any) -> float | None:
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


def _clean_name(value: str) -> str | None:
    """A display name from Outlook/Lotus forms: 'Comnes, Alan', 'Steven J Kean/HOU/EES@EES', '"Bob" '."""
    v = _QP.sub(" ", value)
    v = _MAILTO.sub("", v).strip().strip("'\"").strip()
    v = _LOTUS_DOMAIN.sub("", v)  # Lotus "Name@ENRON"
    if "/" in v and "@" not in v.split("/", 1)[0]:
        v = v.split("/", 1)[0]  # Lotus "Name/HOU/ECT"
    v = " ".join(v.split())
    m = re.fullmatch(r"([^\W\d][\w'-]+), ([^\W\d][\w.' -]+)", v)  # Outlook "Alvarez, Ray"
    if m:
        v = f"{m.group(2)} {m.group(1)}"
    return v or None


def _person(value: str) -> tuple[str | None, str | None]:
    """(name, lower-cased address) from a From-like value."""
    v = _QP.sub(" ", value).strip()
    mailto = _MAILTO.search(v)
    if mailto:
        target = mailto.group(1)
        v = (v[: mailto.start()] + v[mailto.end() :]).strip()
        if _EMAIL_ADDR.fullmatch(target) and not target.upper().startswith("IMCEA") and "<" not in v:
            return _clean_name(v), target.lower()
    v = _LOTUS_DOMAIN.sub("", v)
    m = re.search(r"<([^<>@\s]+@[^<>\s]+)>", v)
    if m:
        name = _clean_name(v[: m.start()]) or None
        return name, m.group(1).lower()
    m = _EMAIL_ADDR.fullmatch(v.strip("'\" \t"))
    if m:
        return None, m.group(0).lower()
    return _clean_name(v), None


# --------------------------------------------------------------------------------------------- email


def _header_block(text: str, pos: int = 0, end: int | None = None, min_headers: int = 2) -> tuple[dict[str, str], int] | None:
    """RFC 822-style headers at ``pos``: (lower-cased headers, offset where the body starts) or None."""
    headers: dict[str, str] = {}
    target: str | None = None  # header a folded line continues; None after an ignored repeat
    n = len(text) if end is None else end
    count = 0
    while pos < n:
        m = _LINE.match(text, pos, n)
        assert m is not None
        line = m.group(1)
        nxt = m.end()
        if not line.strip():
            return (headers, nxt) if count >= min_headers else None
        if line[0] in " \t" and count:
            if target:
                headers[target] += " " + line.strip()
        else:
            hm = _HEADER_LINE.match(line)
            if not hm:
                return None
            key = hm.group(1).lower()
            count += 1
            value = hm.group(2).strip()
            if key not in headers:
                headers[key] = value
                target = key
            elif key in ("to", "cc", "bcc", "references"):
                headers[key] += ", " + value
                target = key
            else:  # repeated Received:, Date: ... keep the first
                target = None
        if nxt <= pos:
            break
        pos = nxt
    return (headers, n) if count >= min_headers else None


def _email_start(text: str) -> int:
    """Where the headers start: after a BOM and an mbox "From " line, if any."""
    pos = _bom(text)
    m = _LINE.match(text, pos)
    if m and _MBOX_FROM.match(m.group(1)):
        pos = m.end()
    return pos


def _looks_like_email_headers(headers: dict[str, str]) -> bool:
    keys = set(headers)
    return "from" in keys or "message-id" in keys or {"to", "subject"} <= keys or {"date", "subject", "to"} <= keys


@dataclass(slots=True)
class _Attr:
    speaker: str | None = None
    address: str | None = None
    occurred_at: datetime | None = None


_FWD_MARKER = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*Original[ \t]+Message[ \t]*-{2,}"
    r"|-{3,}[ \t]*Forwarded[ \t]+by\b.*"
    r"|-{2,}[ \t]*Forwarded[ \t]+message[ \t]*-{2,}"
    r"|Begin[ \t]+forwarded[ \t]+message[ \t]*:"
    r"|-{5,}[ \t]*Original[ \t]+Message[ \t]*)[ \t]*$",
    re.I,
)
_SEPARATOR = re.compile(r"^[ \t]*_{10,}[ \t]*$")
_ZONE_KEY = re.compile(
    r"^[ \t]*(From|To|Cc|Bcc|Sent|Sent by|Date|Subject|Reply-To|Importance|Phone No)[ \t]*:", re.I
)
_RAW_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[A-Za-z0-9-]*:[ \t]|^(?:Mime-Version|Content-Type|Importance):", re.I)
_KEYISH = re.compile(r"^[ \t]*[A-Za-z][\w -]{0,30}:")
_NAME_LINE = re.compile(r"^[^\d:;!?]{2,60}$")
_WROTE = re.compile(r"\bwrote\s*:\s*$", re.I)
_QUOTED = re.compile(r"^[ \t]*>(?!>*From )")  # ">From " is mbox escaping, not a quote
_TIME_OR_YEAR = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?(?:[ \t]*[AaPp]\.?[Mm]\.?)?|\b(?:19|20)\d\d\b")


def _zone_attr(text: str, lines: list[_Line], a: int, b: int) -> _Attr:
    """Who wrote an embedded message and when, from its header zone lines[a:b]."""
    attr = _Attr()
    loose: list[str] = []
    sent_by: str | None = None
    for ln in lines[a:b]:
        s = _QP.sub(" ", ln.text(text)).strip().lstrip(">").strip()
        if not s:
            continue
        km = _ZONE_KEY.match(s)
        if km:
            key = km.group(1).lower()
            value = s[km.end() :].strip()
            if key == "from" and not attr.speaker and not attr.address:
                who = value
                # Lotus: "Carol Moffett@EES on 05/09/2001 08:49 AM" or "Marty Sunde      05/09/2001 08:16 AM"
                m = re.search(r"\s+on\s+(?=\S*\d)|\s{2,}(?=\d)", who)
                if m:
                    attr.occurred_at = attr.occurred_at or parse_date(who[m.end() :])
                    who = who[: m.start()]
                attr.speaker, attr.address = _person(who)
            elif key in ("sent", "date") and attr.occurred_at is None:
                attr.occurred_at = parse_date(value)
            elif key == "sent by":
                sent_by = value
        else:
            loose.append(s)
    for s in loose:  # Lotus history: a name line, then a date line
        m = re.search(r"\s+on\s+(?=\S*\d)", s)
        if m and attr.occurred_at is None:
            attr.occurred_at = parse_date(s[m.end() :])
            s = s[: m.start()]
        if _DATEISH.search(s):
            if attr.occurred_at is None:
                attr.occurred_at = parse_date(s)
        elif not attr.speaker and not attr.address and not s.lower().startswith("please respond to"):
            if _EMAIL_ADDR.search(s) or (_NAME_LINE.match(s) and not _KEYISH.match(s)):
                attr.speaker, attr.address = _person(s)
    if not attr.speaker and not attr.address and sent_by:  # Lotus: sent on the author's behalf
        attr.speaker, attr.address = _person(sent_by)
    if attr.speaker and not attr.address:
        m = _EMAIL_ADDR.search(attr.speaker)
        if m:
            attr.address = m.group(0).lower()
    return attr


def _zone_end(text: str, lines: list[_Line], i: int, limit: int = 40) -> int:
    """Index of the first content line after an embedded header zone starting at lines[i].

    The zone ends at the first empty line after its Subject (a Subject may wrap onto one more line);
    without an empty line there, content starts right after the Subject line.
    """
    n = len(lines)
    j = i
    seen_key = False
    subject_at: int | None = None
    while j < n and j - i < limit:
        s = lines[j].text(text).strip().lstrip(">").strip()
        if subject_at is not None and j > subject_at:
            if not s:
                return j
            if _RAW_HEADER.match(s):  # a forwarded raw message: Mime-Version:, Content-Type: ...
                subject_at = j
                j += 1
                continue
            if j == subject_at + 1 and not _ZONE_KEY.match(s):
                nxt = lines[j + 1].text(text).strip() if j + 1 < n else ""
                return j + 1 if not nxt else subject_at + 1  # a wrapped Subject, else content
        if not s:
            if subject_at is not None:
                return j
            # Lotus puts "cc:" and "Subject:" apart with an empty line; keep going if a key follows
            k = j + 1
            while k < n and k - j <= 5 and not lines[k].text(text).strip():
                k += 1
            if k < n and _ZONE_KEY.match(lines[k].text(text).lstrip(" \t>")):
                j = k
                continue
            return j if seen_key else i
        km = _ZONE_KEY.match(s)
        if km:
            seen_key = True
            if km.group(1).lower() == "subject":
                subject_at = j
        j += 1
    return j if seen_key else i


def _embedded_header_at(text: str, lines: list[_Line], i: int) -> bool:
    """An unmarked earlier message starts here: a From/To line with Subject/Sent/cc close below it.

    Lotus Notes history ("Name / date / To: / cc: ...") may wrap a long cc list before its Subject, so a
    To + cc pair right under a date line counts too.
    """
    km = _ZONE_KEY.match(lines[i].text(text))
    if not km or km.group(1).lower() not in ("from", "to", "sent by"):
        return False
    keys = {km.group(1).lower()}
    for ln in lines[i + 1 : i + 12]:
        m = _ZONE_KEY.match(ln.text(text))
        if m:
            keys.add(m.group(1).lower())
    if "subject" in keys and len(keys) >= 2:
        return True
    return {"to", "cc"} <= keys and i > 0 and bool(_DATEISH.search(lines[i - 1].text(text)))


def _walk_back(text: str, lines: list[_Line], i: int, floor: int) -> int:
    """Lotus history puts a name and a date above "To:"/"Sent by:"; include them in the zone when there.

    Only header-like, whitespace-only and short date lines are taken, plus the name line right above a
    date line, so the end of the previous message ("Thanks, Bob") is never swallowed.
    """
    k = i
    dated = False
    while k - 1 >= floor and i - k < 6:
        raw = lines[k - 1].text(text)
        s = raw.strip()
        if raw == "" or len(raw) > 80:
            break
        if not s or _KEYISH.match(raw):
            k -= 1
            continue
        if _DATEISH.search(s) and len(s) < 60:
            dated = True
            k -= 1
            if k - 1 >= floor:
                above = lines[k - 1].text(text).strip()
                if above and len(above) < 60 and not above.endswith((".", ",", "!", "?")):
                    k -= 1
            break
        below = lines[k].text(text).strip().lower()
        if below.startswith("sent by") and _NAME_LINE.match(s):  # Lotus: "Name" above "Sent by: ..."
            k -= 1
        break
    if k == i:
        return i
    if not dated:
        dated = any(_DATEISH.search(ln.text(text)) for ln in lines[i : i + 3])
    return k if dated else i


def _attribution(text: str, lines: list[_Line], i: int, floor: int) -> tuple[int, _Attr] | None:
    """The "On <date>, <name> wrote:" line(s) above lines[i] (a quote block): (first line index, attr)."""
    k = i - 1
    while k >= floor and not lines[k].text(text).strip() and i - k <= 2:
        k -= 1
    if k < floor or not _WROTE.search(lines[k].text(text)):
        return None
    first = k
    s = lines[k].text(text).strip()
    if k - 1 >= floor and lines[k - 1].text(text).strip() and not s.lower().startswith("on "):
        prev = lines[k - 1].text(text).strip()
        if prev.lower().startswith("on ") and len(prev) < 200:
            first = k - 1
            s = prev + " " + s
    body = _WROTE.sub("", s).strip()
    attr = _Attr()
    if body.lower().startswith("on "):
        body = body[3:]
        m = _EMAIL_ADDR.search(body)
        addr_span = None
        if m:
            attr.address = m.group(0).lower()
            addr_span = (m.start(), m.end())
        head = body[: addr_span[0]] if addr_span else body
        last = None
        for last in _TIME_OR_YEAR.finditer(head):
            pass
        if last is not None:
            attr.occurred_at = parse_date(head[: last.end()].strip(" ,"))
            name = head[last.end() :].strip(" ,<\"'")
        elif "," in head:
            date_part, name = head.rsplit(",", 1)
            attr.occurred_at = parse_date(date_part)
        else:
            name = ""
        name = re.sub(r"^(at\s+)?", "", name.strip(" ,<\"'"))
        attr.speaker = name or None
    else:
        attr.speaker, attr.address = _person(body.strip())
        if attr.address is None:
            m = _EMAIL_ADDR.search(body)
            attr.address = m.group(0).lower() if m else None
    return first, attr


def _chain_segments(text: str, start: int, end: int, top: _Attr) -> list[Segment]:
    """Segments of an email body: top message, embedded earlier messages, quoted blocks (see module doc)."""
    lines = _lines(text, start, end)
    segments: list[Segment] = []
    role = "body"
    attr = top
    piece: int | None = None  # offset where the current content piece starts
    piece_line = 0  # first line index of the current piece

    def flush(upto: int) -> None:
        nonlocal piece
        if piece is not None:
            span = _trimmed(text, piece, upto)
            if span:
                segments.append(
                    Segment(start=span[0], end=span[1], role=role, speaker=attr.speaker or attr.address,  # type: ignore[arg-type]
                            address=attr.address, occurred_at=attr.occurred_at)
                )
        piece = None

    n = len(lines)
    i = 0
    while i < n:
        ln = lines[i]
        s = ln.text(text)
        if _FWD_MARKER.match(s) or (
            _SEPARATOR.match(s) and i + 1 < n and _ZONE_KEY.match(lines[i + 1].text(text).lstrip())
        ):
            flush(ln.start)
            j = i + 1
            if "forwarded by" in s.lower() and not s.rstrip().endswith("-") and j < n:
                if lines[j].text(text).rstrip().endswith("---"):
                    j += 1  # Lotus wraps the marker line
            while j < n and j - i < 6 and not lines[j].text(text).strip():
                j += 1
            zs = j
            j = _zone_end(text, lines, zs)
            if j == zs:  # no header keys: Lotus name/date lines without keys, up to the first empty line
                k = zs
                while k < n and k - zs < 4 and lines[k].text(text).strip() and _DATEISH.search(
                    " ".join(x.text(text) for x in lines[zs : k + 1])
                ) is None:
                    k += 1
                if k < n and k - zs < 4 and _DATEISH.search(lines[k].text(text)) and len(lines[k].text(text)) < 80:
                    j = k + 1
            role, attr = "forwarded", _zone_attr(text, lines, zs, j)
            i = j
            continue
        if _embedded_header_at(text, lines, i):
            zs = _walk_back(text, lines, i, piece_line if piece is not None else i)
            flush(lines[zs].start)
            j = _zone_end(text, lines, i)
            j = max(j, i + 1)
            role, attr = "forwarded", _zone_attr(text, lines, zs, j)
            i = j
            continue
        if _QUOTED.match(s):
            j = i
            last_quoted = i
            while j < n:
                t = lines[j].text(text)
                if _QUOTED.match(t):
                    last_quoted = j
                elif t.strip() or j - last_quoted > 1:
                    break
                j += 1
            found = _attribution(text, lines, i, piece_line if piece is not None else i)
            qattr = _Attr()
            if found:
                flush(lines[found[0]].start)
                qattr = found[1]
            else:
                flush(ln.start)
            first = lines[i]
            qs = first.start + len(first.text(text)) - len(first.text(text).lstrip(" \t>"))
            span = _trimmed(text, qs, lines[last_quoted].end)
            if span:
                segments.append(
                    Segment(start=span[0], end=span[1], role="quoted", speaker=qattr.speaker or qattr.address,
                            address=qattr.address,
                            occurred_at=qattr.occurred_at)
                )
            i = last_quoted + 1
            continue
        if piece is None and s.strip():
            piece = ln.start
            piece_line = i
        i += 1
    flush(end)
    return segments


def _mime_content_spans(text: str, headers: dict[str, str], body_start: int, end: int, depth: int = 0) -> list[tuple[int, int]]:
    """Spans of the readable parts of a MIME body: text/plain (else text/html), never base64 blobs."""
    ctype = headers.get("content-type", "text/plain")
    m = re.search(r'boundary="?([^";\s]+)"?', ctype, re.I)
    if not ctype.lower().startswith("multipart/") or not m or depth > 3:
        return [(body_start, end)]
    delim = "--" + m.group(1)
    parts: list[tuple[int, int]] = []
    starts: list[int] = []
    for ln in _lines(text, body_start, end):
        s = ln.text(text).rstrip()
        if s == delim or s == delim + "--":
            starts.append(ln.start)
            if s.endswith("--") and s == delim + "--":
                break
    for a, b in zip(starts, starts[1:], strict=False):
        m2 = _LINE.match(text, a, b)
        assert m2 is not None
        parts.append((m2.end(), b))
    plain: list[tuple[int, int]] = []
    html: list[tuple[int, int]] = []
    for a, b in parts:
        block = _header_block(text, a, b, min_headers=1)
        if block is None:
            plain.append((a, b))
            continue
        ph, pbody = block
        pct = ph.get("content-type", "text/plain").lower()
        enc = ph.get("content-transfer-encoding", "").lower()
        disp = ph.get("content-disposition", "").lower()
        if pct.startswith("multipart/"):
            plain.extend(_mime_content_spans(text, ph, pbody, b, depth + 1))
        elif enc == "base64" or disp.startswith("attachment"):
            continue
        elif pct.startswith("text/plain"):
            plain.append((pbody, b))
        elif pct.startswith("text/html"):
            html.append((pbody, b))
    return plain or html or []


_SIMPLE_ADDR = re.compile(r"^\s*(?:([^<>]*?)\s*<([^<>\s]+)>|([^<>\s]+))\s*$")


def _addresses(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs; a fast path for plain comma lists, the stdlib parser for anything quoted."""
    if '"' not in value and "(" not in value and ";" not in value:
        out: list[tuple[str, str]] = []
        for part in value.split(","):
            if not part.strip():
                continue
            m = _SIMPLE_ADDR.match(part)
            if m is None:
                return getaddresses([value])
            out.append((m.group(1) or "", m.group(2) or m.group(3)))
        return out
    return getaddresses([value])


def _email_participants(headers: dict[str, str]) -> list[Participant]:
    participants: list[Participant] = []
    for role in ("from", "to", "cc"):
        value = headers.get(role, "")
        if not value:
            continue
        for name, addr in _addresses(_decode_words(value)):
            addr = (addr or "").strip().lower()
            if "@" not in addr:
                if addr and not name:
                    name, addr = addr, ""
                addr = ""
            if addr or name:
                name = _clean_name(name) if name else None
                participants.append(Participant(name=name, address=addr or None, role=role))  # type: ignore[arg-type]
    # Enron-style exports carry the display name in X-From when From is a bare address
    xfrom = headers.get("x-from", "").strip()
    if xfrom and participants and participants[0].role == "from" and not participants[0].name and "<" not in xfrom:
        participants[0] = Participant(name=_clean_name(xfrom), address=participants[0].address, role="from")
    return participants


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=(?:\s+(?==\?))?")


def _decode_word(m: re.Match[str]) -> str:
    import base64
    import binascii
    import quopri

    charset, enc, payload = m.group(1), m.group(2).lower(), m.group(3)
    try:
        if enc == "b":
            raw = base64.b64decode(payload + "=" * (-len(payload) % 4))
        else:
            raw = quopri.decodestring(payload.replace("_", " ").encode("ascii"), header=True)
        return raw.decode(charset.split("*", 1)[0], errors="replace")
    except (LookupError, ValueError, binascii.Error, UnicodeError):
        return m.group(0)


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words (``=?utf-8?q?J=C3=BCrgen?=``) in names and subjects; raw UTF-8 is kept."""
    return _ENCODED_WORD.sub(_decode_word, value) if "=?" in value else value


def _msg_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "") or ([value.strip()] if value and value.strip() else [])


def parse_email(text: str, *, path: str | None = None, account_id: str | None = None, strict: bool = True) -> SourceDocument:
    """An RFC 822 message (or a bare body when ``strict`` is False and there are no headers)."""
    pos = _email_start(text)
    block = _header_block(text, pos)
    if block is None or not _looks_like_email_headers(block[0]):
        if strict:
            raise ParseError(path, "not an email: no RFC 822 header block (From/To/Subject/Date) at the top")
        return SourceDocument(account_id=account_id, kind="email", text=text, path=path,
                              segments=_chain_segments(text, pos, len(text), _Attr()),
                              metadata={"headers_found": False})
    headers, body_start = block
    participants = _email_participants(headers)
    occurred = parse_date(headers.get("date"))
    sender = participants[0] if participants and participants[0].role == "from" else None
    top = _Attr(sender.name or sender.address if sender else None, sender.address if sender else None, occurred)
    segments: list[Segment] = []
    for a, b in _mime_content_spans(text, headers, body_start, len(text)):
        segments.extend(_chain_segments(text, a, b, top))
    message_id = _msg_ids(headers.get("message-id"))
    in_reply_to = _msg_ids(headers.get("in-reply-to"))
    metadata: dict[str, Any] = {
        "message_id": message_id[0] if message_id else None,
        "in_reply_to": in_reply_to[0] if in_reply_to else None,
        "references": _msg_ids(headers.get("references")),
        "headers": {k: v for k, v in headers.items() if k in ("message-id", "in-reply-to", "references")},
    }
    cte = headers.get("content-transfer-encoding", "").strip().lower()
    if cte and cte not in ("7bit", "8bit", "binary"):
        metadata["content_transfer_encoding"] = cte
    return SourceDocument(
        account_id=account_id,
        kind="email",
        occurred_at=occurred,
        participants=participants,
        title=_decode_words(headers.get("subject", "")).strip() or None,
        text=text,
        segments=segments,
        path=path,
        metadata=metadata,
    )


def _mbox_spans(text: str, max_messages: int, path: str | None) -> list[tuple[int, int]]:
    """(start, end) of each message in an mbox, after its "From " separator line."""
    first = _bom(text)
    seps = [m for m in _MBOX_SPLIT.finditer(text, first) if m.start() == first or _after_blank(text, m.start())]
    if len(seps) > max_messages:
        raise InputTooLargeError(f"{path}: mbox has {len(seps)} messages, over the limit of {max_messages}")
    return [(m.end(), seps[k + 1].start() if k + 1 < len(seps) else len(text)) for k, m in enumerate(seps)]


def _after_blank(text: str, pos: int) -> bool:
    """mbox separators follow an empty line (mboxrd/mboxo)."""
    before = text[max(0, pos - 4) : pos]
    return before.endswith(("\n\n", "\r\n\r\n", "\r\r"))


def _is_mbox(text: str) -> bool:
    start = _bom(text)
    m = _LINE.match(text, start)
    if not (m and _MBOX_FROM.match(m.group(1))):
        return False
    return _header_block(text, m.end()) is not None


def _parse_mbox_messages(text: str, *, path: str | None, account_id: str | None, max_messages: int) -> list[SourceDocument]:
    docs: list[SourceDocument] = []
    for index, (a, b) in enumerate(_mbox_spans(text, max_messages, path)):
        doc = parse_email(text[a:b], path=path, account_id=account_id, strict=False)
        doc.metadata["file_offset"] = a
        doc.metadata["index"] = index
        docs.append(doc)
    if not docs:
        raise ParseError(path, "mbox has no messages")
    return docs


def _mbox_as_one(text: str, *, path: str | None, account_id: str | None, max_messages: int) -> SourceDocument:
    msgs = _parse_mbox_messages(text, path=path, account_id=account_id, max_messages=max_messages)
    segments: list[Segment] = []
    participants: dict[tuple[str | None, str | None, str], Participant] = {}
    for d in msgs:
        off = d.metadata["file_offset"]
        segments.extend(s.model_copy(update={"start": s.start + off, "end": s.end + off}) for s in d.segments)
        for p in d.participants:
            participants.setdefault((p.name, p.address, p.role), p)
    dates = [d.occurred_at for d in msgs if d.occurred_at]
    return SourceDocument(
        account_id=account_id,
        kind="email",
        occurred_at=min(dates) if dates else None,
        participants=list(participants.values()),
        title=msgs[0].title,
        text=text,
        segments=segments,
        path=path,
        metadata={
            "format": "mbox",
            "messages": [
                {"file_offset": d.metadata["file_offset"], "message_id": d.metadata.get("message_id"),
                 "in_reply_to": d.metadata.get("in_reply_to"), "title": d.title,
                 "occurred_at": d.occurred_at.isoformat() if d.occurred_at else None}
                for d in msgs
            ],
        },
    )


# --------------------------------------------------------------------------------------------- transcripts


def _speaker_segments(text: str, role: str, max_segments: int, path: str | None) -> tuple[list[Segment], list[str], dict[str, str]]:
    """``Speaker: text`` lines; unlabelled lines continue the previous utterance.

    Returns segments, speakers in order of appearance and leading ``Key: value`` metadata (Date, Title...).
    """
    segments: list[Segment] = []
    speakers: dict[str, None] = {}
    meta: dict[str, str] = {}
    cur: list[Any] | None = None  # [start, end, speaker, seconds]
    started = False

    def close() -> None:
        if cur is not None:
            span = _trimmed(text, cur[0], cur[1])
            if span:
                if len(segments) >= max_segments:
                    raise InputTooLargeError(f"{path}: more than {max_segments} utterances")
                segments.append(Segment(start=span[0], end=span[1], role=role, speaker=cur[2],  # type: ignore[arg-type]
                                        start_seconds=cur[3]))

    for ln in _lines(text, _bom(text)):
        s = ln.text(text)
        m = _SPEAKER_LINE.match(s) or _SPEAKER_LINE_EMPTY.match(s)
        label = m.group("label").strip() if m else None
        if m and label and label.lower() in _META_KEYS and not started:
            meta.setdefault(label.lower(), s[m.end() :].strip())
            continue
        if m and label:
            close()
            started = True
            speakers.setdefault(label)
            cur = [ln.start + m.end(), ln.end, label, _seconds(m.group("ts")) if m.group("ts") else None]
        elif cur is not None and s.strip():
            cur[1] = ln.end
    close()
    return segments, list(speakers), meta


def _speaker_ratio(text: str, limit: int = 200) -> tuple[int, int]:
    """(speaker lines, non-empty lines) among the first ``limit`` non-empty lines."""
    hits = total = 0
    for ln in _lines(text, 0, min(len(text), 50_000)):
        s = ln.text(text)
        if not s.strip():
            continue
        total += 1
        m = _SPEAKER_LINE.match(s) or _SPEAKER_LINE_EMPTY.match(s)
        if m and m.group("label").strip().lower() not in _META_KEYS:
            hits += 1
        if total >= limit:
            break
    return hits, total


def _is_speaker_text(text: str) -> bool:
    hits, total = _speaker_ratio(text)
    return hits >= 3 and hits * 2 >= total


def parse_transcript(text: str, *, path: str | None = None, account_id: str | None = None,
                     max_segments: int = DEFAULT_MAX_MESSAGES) -> SourceDocument:
    """``Speaker: text`` lines (QMSum style). Text without speaker labels becomes one unattributed utterance."""
    segments, speakers, meta = _speaker_segments(text, "utterance", max_segments, path)
    if not segments:
        span = _trimmed(text, 0, len(text))
        segments = [Segment(start=span[0], end=span[1], role="utterance")] if span else []
    return SourceDocument(
        account_id=account_id,
        kind="transcript",
        occurred_at=parse_date(meta.get("date")),
        title=meta.get("title") or meta.get("meeting") or meta.get("subject"),
        participants=[Participant(name=s, role="speaker") for s in speakers],
        text=text,
        segments=segments,
        path=path,
        metadata={"format": "speaker-lines"},
    )


def _cue_blocks(text: str) -> list[list[_Line]]:
    """Blank-line separated blocks of lines."""
    blocks: list[list[_Line]] = []
    cur: list[_Line] = []
    for ln in _lines(text, _bom(text)):
        if ln.text(text).strip():
            cur.append(ln)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def _cue_payload(text: str, payload: list[_Line]) -> tuple[int, int, str | None] | None:
    """The spoken span of a cue's payload lines and its speaker (``<v Name>`` or ``Name:``)."""
    if not payload:
        return None
    start, end = payload[0].start, payload[-1].end
    first = text[start : payload[0].end]
    speaker = None
    vm = _VOICE.match(first.lstrip())
    if vm:
        speaker = vm.group(1).strip()
        start += len(first) - len(first.lstrip()) + vm.end()
        body = text[start:end]
        close_at = body.rfind("</v>")
        if close_at >= 0 and not body[close_at + 4 :].strip():
            end = start + close_at
    else:
        sm = _SPEAKER_LINE.match(first)
        if sm:
            speaker = sm.group("label").strip()
            start += sm.end()
        else:
            bm = re.match(r"^[ \t]*[\[(]([^\])\n]{1,40})[\])][ \t]*:?[ \t]*", first)  # "[Alice] hi"
            if bm and bm.end() < len(first):
                speaker = bm.group(1).strip()
                start += bm.end()
    span = _trimmed(text, start, end)
    if not span:
        return None
    return span[0], span[1], speaker


def parse_cues(text: str, *, fmt: str, path: str | None = None, account_id: str | None = None,
               max_segments: int = DEFAULT_MAX_MESSAGES) -> SourceDocument:
    """WebVTT (``fmt="vtt"``) or SRT (``fmt="srt"``): one utterance per cue, timed."""
    blocks = _cue_blocks(text)
    if fmt == "vtt":
        if not blocks or not text.lstrip("\ufeff").startswith("WEBVTT"):
            raise ParseError(path, "not a WebVTT file: it must start with 'WEBVTT'")
        blocks = blocks[1:]  # the header block
    segments: list[Segment] = []
    speakers: dict[str, None] = {}
    for block in blocks:
        first = block[0].text(text)
        if fmt == "vtt" and re.match(r"^(NOTE|STYLE|REGION)\b", first):
            continue
        t = 0 if _VTT_TIMING.match(first) else (1 if len(block) > 1 and _VTT_TIMING.match(block[1].text(text)) else -1)
        if t < 0:
            continue
        tm = _VTT_TIMING.match(block[t].text(text))
        assert tm is not None
        got = _cue_payload(text, block[t + 1 :])
        if got is None:
            continue
        if len(segments) >= max_segments:
            raise InputTooLargeError(f"{path}: more than {max_segments} cues")
        start, end, speaker = got
        if speaker:
            speakers.setdefault(speaker)
        segments.append(Segment(start=start, end=end, role="utterance", speaker=speaker,
                                start_seconds=_seconds(tm.group("s")), end_seconds=_seconds(tm.group("e"))))
    if not segments:
        raise ParseError(path, f"no cues with text found in this {fmt.upper()} file")
    return SourceDocument(
        account_id=account_id,
        kind="transcript",
        participants=[Participant(name=s, role="speaker") for s in speakers],
        text=text,
        segments=segments,
        path=path,
        metadata={"format": fmt},
    )


def _is_srt(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:300]
    lines = head.splitlines()
    return len(lines) >= 2 and lines[0].strip().isdigit() and bool(_VTT_TIMING.match(lines[1]))


# --------------------------------------------------------------------------------------------- JSON


@dataclass(slots=True)
class _Msg:
    author: str | None
    text: str
    at: datetime | None = None
    address: str | None = None
    start_s: float | None = None
    end_s: float | None = None


@dataclass(slots=True)
class _Thread:
    kind: SourceKind
    title: str | None
    messages: list[_Msg]
    original: Any


_TEXT_KEYS = ("text", "body", "message", "content", "comment", "plain_body", "html_body", "value")
_AUTHOR_KEYS = ("speaker", "author", "user_name", "username", "sender", "from", "user", "name", "requester",
                "speaker_name", "display_name", "author_name")
_TIME_KEYS = ("sent_at", "ts", "timestamp", "time", "date", "created_at", "createdAt", "datetime", "posted_at",
              "updated_at")
_START_KEYS = ("start", "start_time", "startTime", "start_seconds", "begin", "offset")
_END_KEYS = ("end", "end_time", "endTime", "end_seconds", "stop")
_LIST_KEYS = ("messages", "segments", "utterances", "comments", "items", "entries", "transcript", "results",
              "conversation", "replies", "posts", "chat")


def _json_time(value: Any) -> datetime | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d{9,10}(\.\d+)?", value.strip())):
        try:
            v = float(value)
            if v > 1e11:  # milliseconds
                v /= 1000
            return datetime.fromtimestamp(v, tz=UTC) if 1e8 < v < 1e10 else None
        except (ValueError, OverflowError, OSError):
            return None
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}:?\d{2})?", value.strip()):
            try:
                return _supported(_aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00"))))
            except ValueError:
                pass
        return parse_date(value)
    return None


def _who(value: Any) -> tuple[str | None, str | None]:
    if isinstance(value, dict):
        name = next((value[k] for k in ("name", "real_name", "display_name", "username", "handle", "id")
                     if isinstance(value.get(k), str) and value[k].strip()), None)
        email = value.get("email") if isinstance(value.get("email"), str) else None
        return (name.strip() if name else None), (email.strip().lower() if email else None)
    if isinstance(value, str) and value.strip():
        name, addr = _person(value)
        return (name or addr), addr
    if isinstance(value, int):
        return str(value), None
    return None, None


def _json_msg(item: Any) -> _Msg | None:
    if isinstance(item, str):
        return _Msg(None, item) if item.strip() else None
    if not isinstance(item, dict):
        return None
    text = next((item[k] for k in _TEXT_KEYS if isinstance(item.get(k), str)), None)
    if text is None or not text.strip():
        return None
    author = address = None
    profile = item.get("user_profile")
    if isinstance(profile, dict):
        author, address = _who(profile)
    if author is None:
        for k in _AUTHOR_KEYS:
            if k in item:
                author, address = _who(item[k])
                if author:
                    break
    at = next((t for k in _TIME_KEYS if k in item for t in [_json_time(item[k])] if t), None)
    start_s = next((s for k in _START_KEYS if k in item for s in [_seconds(item[k])] if s is not None), None)
    end_s = next((s for k in _END_KEYS if k in item for s in [_seconds(item[k])] if s is not None), None)
    return _Msg(author, text, at, address, start_s, end_s)


def _json_threads(data: Any, path: str | None, max_messages: int) -> list[_Thread]:
    """Recognise a chat export, a ticket (or a list of them) or transcript segments."""

    def msgs_of(items: list[Any]) -> list[_Msg]:
        if len(items) > max_messages:
            raise InputTooLargeError(f"{path}: {len(items)} messages, over the limit of {max_messages}")
        return [m for m in (_json_msg(x) for x in items) if m is not None]

    def thread_of(obj: Any) -> _Thread | None:
        if isinstance(obj, list):
            ms = msgs_of(obj)
            if not ms:
                return None
            timed = sum(1 for m in ms if m.start_s is not None) * 2 >= len(ms)
            return _Thread("transcript" if timed else "chat", None, ms, obj)
        if not isinstance(obj, dict):
            return None
        title = next((obj[k] for k in ("subject", "title", "name", "topic", "channel") if isinstance(obj.get(k), str)), None)
        for key in _LIST_KEYS:
            items = obj.get(key)
            if isinstance(items, list):
                ms = msgs_of(items)
                if key == "comments" or "subject" in obj:
                    desc = next((obj[k] for k in ("description", "body", "text") if isinstance(obj.get(k), str)), None)
                    if desc and desc.strip():
                        who, addr = _who(obj.get("requester") or obj.get("author") or obj.get("reporter"))
                        at = next((t for k in _TIME_KEYS if k in obj for t in [_json_time(obj[k])] if t), None)
                        ms.insert(0, _Msg(who, desc, at, addr))
                    kind: SourceKind = "ticket"
                elif key in ("segments", "utterances", "transcript", "results") or (
                    ms and sum(1 for m in ms if m.start_s is not None) * 2 >= len(ms)
                ):
                    kind = "transcript"
                else:
                    kind = "chat"
                if ms or kind == "ticket":
                    return _Thread(kind, title, ms, obj)
        if title and any(isinstance(obj.get(k), str) for k in ("description", "body", "text")):
            one = _json_msg({**obj, "text": next(obj[k] for k in ("description", "body", "text") if isinstance(obj.get(k), str))})
            if one:
                who, addr = _who(obj.get("requester") or obj.get("author") or obj.get("reporter"))
                one.author, one.address = one.author or who, one.address or addr
                return _Thread("ticket", title, [one], obj)
        return None

    # a list of tickets/conversations, or {"tickets": [...]}
    container = data
    if isinstance(data, dict):
        for key in ("tickets", "conversations", "threads", "channels"):
            if isinstance(data.get(key), list):
                container = data[key]
                break
    if isinstance(container, list) and container and all(
        isinstance(x, dict) and any(isinstance(x.get(k), list) for k in _LIST_KEYS) for x in container
    ):
        if len(container) > max_messages:
            raise InputTooLargeError(f"{path}: {len(container)} threads, over the limit of {max_messages}")
        threads = [t for t in (thread_of(x) for x in container) if t is not None]
    else:
        one = thread_of(container)
        threads = [one] if one else []
    if not threads:
        raise ParseError(
            path,
            "JSON structure not recognised: expected a list of messages/segments with text, "
            '{"messages"|"segments"|"comments": [...]} or a list of tickets',
        )
    return threads


def _render(threads: list[_Thread]) -> tuple[str, list[Segment], list[Participant]]:
    """Threads as ``Author: text`` lines (tickets open with ``Subject: ...``); segments cover each text."""
    parts: list[str] = []
    segments: list[Segment] = []
    people: dict[tuple[str | None, str | None], None] = {}
    pos = 0
    for ti, th in enumerate(threads):
        if ti:
            parts.append("\n")
            pos += 1
        if th.kind == "ticket" and th.title:
            line = f"Subject: {' '.join(th.title.split())}\n"
            parts.append(line)
            pos += len(line)
        role = "utterance" if th.kind == "transcript" else "message"
        for m in th.messages:
            label = " ".join((m.author or "unknown").split()) + ": "
            parts.append(label)
            pos += len(label)
            core = m.text.strip()
            parts.append(core + "\n")
            segments.append(Segment(start=pos, end=pos + len(core), role=role, speaker=m.author,  # type: ignore[arg-type]
                                    address=m.address, occurred_at=m.at, start_seconds=m.start_s,
                                    end_seconds=m.end_s))
            pos += len(core) + 1
            if m.author or m.address:
                known = next((key for key in people if key[0] == m.author and m.author), None)
                if known is None:
                    people[(m.author, m.address)] = None
                elif known[1] is None and m.address:
                    del people[known]
                    people[(m.author, m.address)] = None
    role_of = "speaker" if threads and threads[0].kind == "transcript" else "author"
    participants = [Participant(name=n, address=a, role=role_of) for n, a in people]  # type: ignore[arg-type]
    return "".join(parts), segments, participants


def _thread_doc(threads: list[_Thread], *, path: str | None, account_id: str | None, original: Any) -> SourceDocument:
    text, segments, participants = _render(threads)
    dates = [s.occurred_at for s in segments if s.occurred_at]
    kinds = {t.kind for t in threads}
    kind: SourceKind = threads[0].kind if len(kinds) == 1 else "chat"
    return SourceDocument(
        account_id=account_id,
        kind=kind,
        occurred_at=min(dates) if dates else None,
        participants=participants,
        title=threads[0].title if len(threads) == 1 else None,
        text=text,
        segments=segments,
        path=path,
        metadata={"format": "json", "rendered": True, "original": original},
    )


def _load_json(text: str, path: str | None) -> Any:
    try:
        return json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        raise ParseError(path, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise ParseError(path, "JSON nested too deeply") from None


def _looks_like_json(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    return head in ("{", "[")


# --------------------------------------------------------------------------------------------- notes


_ATX = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT = re.compile(r"^[ \t]{0,3}(=+|-+)[ \t]*$")
_DATE_LINE = re.compile(r"^[ \t*_]*(?:date|when|meeting date)[ \t*_]*:[ \t*_]*(.+?)[ \t*_]*$", re.I)


def parse_notes(text: str, *, kind: SourceKind = "notes", path: str | None = None,
                account_id: str | None = None) -> SourceDocument:
    """Markdown or plain notes: title from the first heading, date from front matter or a Date: line."""
    pos = _bom(text)
    meta: dict[str, Any] = {}
    title: str | None = None
    occurred: datetime | None = None
    participants: list[Participant] = []
    lines = _lines(text, pos)
    first_content = 0
    if lines and lines[0].text(text).strip() == "---":
        for k in range(1, min(len(lines), 200)):
            if lines[k].text(text).strip() in ("---", "..."):
                fm = text[lines[1].start : lines[k].start] if k > 1 else ""
                try:
                    import yaml

                    data = yaml.safe_load(fm) if fm.strip() else None
                except Exception:  # noqa: BLE001 - front matter is optional; bad YAML is kept as text
                    data = None
                if isinstance(data, dict):
                    meta = {str(a): b for a, b in data.items()}
                    first_content = k + 1
                break
    if meta:
        t = meta.get("title")
        title = str(t) if t else None
        d = meta.get("date")
        if isinstance(d, datetime):
            occurred = _aware(d)
        elif d is not None and hasattr(d, "year"):
            occurred = datetime(d.year, d.month, d.day, tzinfo=UTC)
        elif d is not None:
            occurred = parse_date(str(d))
        att = meta.get("attendees") or meta.get("participants")
        if isinstance(att, str):
            att = [a.strip() for a in att.split(",")]
        if isinstance(att, list):
            for a in att[:200]:
                name, addr = _who(a)
                if name or addr:
                    participants.append(Participant(name=name, address=addr, role="attendee"))
    # headings
    heads: list[tuple[int, int, str]] = []  # (heading first line index, first content line index, title)
    one_line = sum(1 for ln in lines if ln.end > ln.start and ln.text(text).strip()) <= 1
    for k in range(first_content, 0 if one_line else len(lines)):
        s = lines[k].text(text)
        m = _ATX.match(s)
        if m:
            heads.append((k, k + 1, m.group(2).strip()))
        elif (
            k + 1 < len(lines) and s.strip() and _SETEXT.match(lines[k + 1].text(text))
            and not _SETEXT.match(s) and (k == first_content or not lines[k - 1].text(text).strip())
        ):
            heads.append((k, k + 2, s.strip()))
        if occurred is None and k - first_content < 40:
            dm = _DATE_LINE.match(s)
            if dm:
                occurred = parse_date(dm.group(1))
    if title is None and heads:
        title = heads[0][2]
    segments: list[Segment] = []
    bounds: list[tuple[int, int]] = []
    start_line = first_content
    for hk, ck, _ in heads:
        bounds.append((start_line, hk))
        start_line = ck
    bounds.append((start_line, len(lines)))
    for a, b in bounds:
        if a >= b or a >= len(lines):
            continue
        span = _trimmed(text, lines[a].start, lines[b - 1].end)
        if span:
            segments.append(Segment(start=span[0], end=span[1], role="section", occurred_at=occurred))
    if not segments:  # only headings: the headings are the content
        span = _trimmed(text, lines[first_content].start if first_content < len(lines) else pos, len(text))
        segments = [Segment(start=span[0], end=span[1], role="section", occurred_at=occurred)] if span else []
    return SourceDocument(account_id=account_id, kind=kind, occurred_at=occurred, title=title,
                          participants=participants, text=text, segments=segments, path=path,
                          metadata={"format": "notes", **({"front_matter": _jsonable(meta)} if meta else {})})


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def parse_plain(text: str, *, kind: SourceKind, path: str | None = None, account_id: str | None = None) -> SourceDocument:
    """Unstructured text (a tweet, a support message): one segment over the whole content."""
    span = _trimmed(text, 0, len(text))
    role = "message" if kind in ("chat", "ticket") else ("utterance" if kind == "transcript" else "section")
    segments = [Segment(start=span[0], end=span[1], role=role)] if span else []  # type: ignore[arg-type]
    return SourceDocument(account_id=account_id, kind=kind, text=text, segments=segments, path=path)


def parse_chat_lines(text: str, *, kind: SourceKind = "chat", path: str | None = None,
                     account_id: str | None = None, max_segments: int = DEFAULT_MAX_MESSAGES) -> SourceDocument:
    """A chat log as ``Author: text`` lines (``[10:02] alice: hi`` too): one message segment per line."""
    segments, speakers, meta = _speaker_segments(text, "message", max_segments, path)
    return SourceDocument(account_id=account_id, kind=kind, text=text, segments=segments, path=path,
                          occurred_at=parse_date(meta.get("date")),
                          participants=[Participant(name=s, role="author") for s in speakers],
                          metadata={"format": "speaker-lines"})


# --------------------------------------------------------------------------------------------- detection


def _suffix(path: str | None) -> str:
    return Path(path).suffix.lower() if path else ""


def _detect_format(text: str, path: str | None) -> str:
    """email | mbox | vtt | srt | json | speaker | notes | plain."""
    ext = _suffix(path)
    if ext == ".mbox":
        return "mbox"
    if ext == ".eml":
        return "email"
    if ext == ".vtt":
        return "vtt"
    if ext == ".srt":
        return "srt"
    if ext == ".json":
        return "json"
    if ext in (".md", ".markdown"):
        return "notes"
    head = text.lstrip("\ufeff")
    if head.startswith("WEBVTT"):
        return "vtt"
    if _is_mbox(text):
        return "mbox"
    block = _header_block(text, _email_start(text))
    if block is not None and _looks_like_email_headers(block[0]):
        return "email"
    if _is_srt(text):
        return "srt"
    if _looks_like_json(text):
        try:
            json.loads(head)
            return "json"
        except (json.JSONDecodeError, RecursionError):
            pass
    if _is_speaker_text(text):
        return "speaker"
    multiline = len(head.strip().splitlines()) > 1
    if multiline and (re.search(r"(?m)^[ \t]{0,3}#{1,6}[ \t]+\S", text[:20_000]) or re.match(r"[ \t]*---[ \t]*\r?\n", head)):
        return "notes"
    return "plain"


def detect_kind(text: str, path: str | None = None) -> SourceKind:
    """The source kind for ``kind="auto"``: by extension first, then by content."""
    fmt = _detect_format(text, path)
    if fmt in ("email", "mbox"):
        return "email"
    if fmt in ("vtt", "srt", "speaker"):
        return "transcript"
    if fmt == "json":
        try:
            threads = _json_threads(_load_json(text, path), path, DEFAULT_MAX_MESSAGES)
        except (ParseError, InputTooLargeError):
            return "chat"
        return threads[0].kind
    return "notes"


# --------------------------------------------------------------------------------------------- entry points


def _empty_check(text: str, path: str | None) -> None:
    if not text.strip("\ufeff \t\r\n\x0b\x0c"):
        raise ParseError(path, "empty file: no text to read")


def parse_documents(text: str, *, kind: str = "auto", path: str | None = None, account_id: str | None = None,
                    max_messages: int = DEFAULT_MAX_MESSAGES, split: bool = True) -> list[SourceDocument]:
    """Parse ``text``; with ``split`` an mbox or a JSON list of threads gives one document each."""
    if kind not in KINDS:
        raise ParseError(path, f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    _empty_check(text, path)
    fmt = _detect_format(text, path)
    if fmt == "json" or (kind != "auto" and _suffix(path) == ".json"):
        data = _load_json(text, path)
        threads = _json_threads(data, path, max_messages)
        if kind != "auto":
            for t in threads:
                t.kind = kind  # type: ignore[assignment]
        if split and len(threads) > 1:
            docs = []
            for index, t in enumerate(threads):
                d = _thread_doc([t], path=path, account_id=account_id, original=t.original)
                d.metadata["index"] = index
                docs.append(d)
            return docs
        return [_thread_doc(threads, path=path, account_id=account_id, original=data)]
    # Unambiguous formats decide the structure; a forced kind only labels the result.
    docs: list[SourceDocument] | None = None
    if fmt == "mbox":
        if split:
            docs = _parse_mbox_messages(text, path=path, account_id=account_id, max_messages=max_messages)
        else:
            docs = [_mbox_as_one(text, path=path, account_id=account_id, max_messages=max_messages)]
    elif fmt in ("vtt", "srt"):
        docs = [parse_cues(text, fmt=fmt, path=path, account_id=account_id, max_segments=max_messages)]
    elif fmt == "email":
        docs = [parse_email(text, path=path, account_id=account_id, strict=False)]
    if docs is not None:
        if kind != "auto":
            docs = [d.model_copy(update={"kind": kind}) for d in docs]
        return docs
    # Loose formats (speaker lines, notes, plain text): the kind decides how to read them.
    resolved = kind if kind != "auto" else ("transcript" if fmt == "speaker" else "notes")
    if resolved == "email":
        return [parse_email(text, path=path, account_id=account_id, strict=False)]
    if resolved == "transcript":
        return [parse_transcript(text, path=path, account_id=account_id, max_segments=max_messages)]
    if resolved in ("chat", "ticket"):
        if _is_speaker_text(text):
            return [parse_chat_lines(text, kind=resolved, path=path, account_id=account_id, max_segments=max_messages)]  # type: ignore[arg-type]
        return [parse_plain(text, kind=resolved, path=path, account_id=account_id)]  # type: ignore[arg-type]
    return [parse_notes(text, path=path, account_id=account_id)]


def parse_text(text: str, *, kind: str = "auto", path: str | None = None, account_id: str | None = None) -> SourceDocument:
    """One document for ``text`` (an mbox or a JSON thread list stays one document; see module doc)."""
    return parse_documents(text, kind=kind, path=path, account_id=account_id, split=False)[0]


def load_document(
    path: str | Path,
    *,
    kind: str = "auto",
    account_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SourceDocument:
    """Parse one file as one document. Raises :class:`ParseError` (naming the file) on anything unparseable."""
    text = read_source_text(path, max_bytes)
    return parse_text(text, kind=kind, path=str(path), account_id=account_id)


def load_documents(
    path: str | Path,
    *,
    kind: str = "auto",
    account_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_messages: int = DEFAULT_MAX_MESSAGES,
) -> list[SourceDocument]:
    """Parse one file into documents: one per message for an mbox, one per thread for a JSON thread list."""
    text = read_source_text(path, max_bytes)
    return parse_documents(text, kind=kind, path=str(path), account_id=account_id, max_messages=max_messages)

