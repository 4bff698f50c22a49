"""Email: one RFC 822 message (its chain of forwarded and quoted messages) and mbox files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.policy import default as _POLICY
from email.utils import getaddresses
from typing import Any

from ..errors import InputTooLargeError, ParseError
from ..models import Participant, Segment, SourceDocument
from .lines import LINE, Line, bom_end, split_lines, trimmed
from .values import DATEISH, EMAIL_ADDR, QP, clean_name, parse_date, person

_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]?(.*)$")
MBOX_FROM = re.compile(r"^From \S+.*$")
_MBOX_SPLIT = re.compile(r"(?:^|(?<=\n)|(?<=\r))From [^\r\n]*(?:\r\n|\n|\r)")


def header_block(text: str, pos: int = 0, end: int | None = None, min_headers: int = 2) -> tuple[dict[str, str], int] | None:
    """RFC 822-style headers at ``pos``: (lower-cased headers, offset where the body starts) or None."""
    headers: dict[str, str] = {}
    target: str | None = None  # header a folded line continues; None after an ignored repeat
    n = len(text) if end is None else end
    count = 0
    while pos < n:
        m = LINE.match(text, pos, n)
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


def email_start(text: str) -> int:
    """Where the headers start: after a BOM and an mbox "From " line, if any."""
    pos = bom_end(text)
    m = LINE.match(text, pos)
    if m and MBOX_FROM.match(m.group(1)):
        pos = m.end()
    return pos


def looks_like_email_headers(headers: dict[str, str]) -> bool:
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


def _zone_attr(text: str, lines: list[Line], a: int, b: int) -> _Attr:
    """Who wrote an embedded message and when, from its header zone lines[a:b]."""
    attr = _Attr()
    loose: list[str] = []
    sent_by: str | None = None
    for ln in lines[a:b]:
        s = QP.sub(" ", ln.text(text)).strip().lstrip(">").strip()
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
                attr.speaker, attr.address = person(who)
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
        if DATEISH.search(s):
            if attr.occurred_at is None:
                attr.occurred_at = parse_date(s)
        elif not attr.speaker and not attr.address and not s.lower().startswith("please respond to"):
            if EMAIL_ADDR.search(s) or (_NAME_LINE.match(s) and not _KEYISH.match(s)):
                attr.speaker, attr.address = person(s)
    if not attr.speaker and not attr.address and sent_by:  # Lotus: sent on the author's behalf
        attr.speaker, attr.address = person(sent_by)
    if attr.speaker and not attr.address:
        m = EMAIL_ADDR.search(attr.speaker)
        if m:
            attr.address = m.group(0).lower()
    return attr


def _zone_end(text: str, lines: list[Line], i: int, limit: int = 40) -> int:
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


def _embedded_header_at(text: str, lines: list[Line], i: int) -> bool:
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
    return {"to", "cc"} <= keys and i > 0 and bool(DATEISH.search(lines[i - 1].text(text)))


def _walk_back(text: str, lines: list[Line], i: int, floor: int) -> int:
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
        if DATEISH.search(s) and len(s) < 60:
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
        dated = any(DATEISH.search(ln.text(text)) for ln in lines[i : i + 3])
    return k if dated else i


def _attribution(text: str, lines: list[Line], i: int, floor: int) -> tuple[int, _Attr] | None:
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
        m = EMAIL_ADDR.search(body)
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
        attr.speaker, attr.address = person(body.strip())
        if attr.address is None:
            m = EMAIL_ADDR.search(body)
            attr.address = m.group(0).lower() if m else None
    return first, attr


def _chain_segments(text: str, start: int, end: int, top: _Attr) -> list[Segment]:
    """Segments of an email body: top message, embedded earlier messages, quoted blocks (see module doc)."""
    lines = split_lines(text, start, end)
    segments: list[Segment] = []
    role = "body"
    attr = top
    piece: int | None = None  # offset where the current content piece starts
    piece_line = 0  # first line index of the current piece

    def flush(upto: int) -> None:
        nonlocal piece
        if piece is not None:
            span = trimmed(text, piece, upto)
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
                while k < n and k - zs < 4 and lines[k].text(text).strip() and DATEISH.search(
                    " ".join(x.text(text) for x in lines[zs : k + 1])
                ) is None:
                    k += 1
                if k < n and k - zs < 4 and DATEISH.search(lines[k].text(text)) and len(lines[k].text(text)) < 80:
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
            span = trimmed(text, qs, lines[last_quoted].end)
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
        enc = headers.get("content-transfer-encoding", "").strip().lower()
        disp = headers.get("content-disposition", "").strip().lower()
        kind = ctype.strip().lower()
        if enc in ("base64", "x-uuencode", "uuencode") or disp.startswith("attachment") or not (
            kind.startswith("text/") or kind.startswith("message/") or not kind
        ):
            return []  # an encoded or binary body: no text a quote could point into, never read as prose
        return [(body_start, end)]
    delim = "--" + m.group(1)
    parts: list[tuple[int, int]] = []
    starts: list[int] = []
    for ln in split_lines(text, body_start, end):
        s = ln.text(text).rstrip()
        if s == delim or s == delim + "--":
            starts.append(ln.start)
            if s.endswith("--") and s == delim + "--":
                break
    for a, b in zip(starts, starts[1:], strict=False):
        m2 = LINE.match(text, a, b)
        assert m2 is not None
        parts.append((m2.end(), b))
    plain: list[tuple[int, int]] = []
    html: list[tuple[int, int]] = []
    for a, b in parts:
        block = header_block(text, a, b, min_headers=1)
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
        for name, addr in _decoded_addresses(value):
            addr = (addr or "").strip().lower()
            if "@" not in addr:
                if addr and not name:
                    name, addr = addr, ""
                addr = ""
            if addr or name:
                name = clean_name(name) if name else None
                participants.append(Participant(name=name, address=addr or None, role=role))  # type: ignore[arg-type]
    # Enron-style exports carry the display name in X-From when From is a bare address
    xfrom = headers.get("x-from", "").strip()
    if xfrom and participants and participants[0].role == "from" and not participants[0].name and "<" not in xfrom:
        participants[0] = Participant(name=clean_name(xfrom), address=participants[0].address, role="from")
    return participants


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words (``=?utf-8?q?J=C3=BCrgen?=``) in subjects, by the standard library; raw UTF-8 is
    kept, and a value the library cannot read stays as written."""
    if "=?" not in value:
        return value
    try:
        return str(_POLICY.header_factory("subject", value))
    except (LookupError, ValueError, UnicodeError, TypeError, IndexError, AttributeError):
        return value


def _decoded_addresses(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs of an address header; encoded words are decoded by the standard library's
    header registry, so an encoded comma (``=?utf-8?q?M=C3=BCller=2C_Hans?=``) stays inside the name."""
    if "=?" not in value:
        return _addresses(value)
    try:
        header = _POLICY.header_factory("to", value)
        pairs = [(a.display_name or "", a.addr_spec or "") for a in header.addresses]  # type: ignore[attr-defined]
    except (LookupError, ValueError, UnicodeError, TypeError, IndexError, AttributeError):
        pairs = []
    return [(n, "" if a == "<>" else a) for n, a in pairs] or _addresses(_decode_words(value))


def _msg_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "") or ([value.strip()] if value and value.strip() else [])


def parse_email(text: str, *, path: str | None = None, account_id: str | None = None, strict: bool = True) -> SourceDocument:
    """An RFC 822 message (or a bare body when ``strict`` is False and there are no headers)."""
    pos = email_start(text)
    block = header_block(text, pos)
    if block is None or not looks_like_email_headers(block[0]):
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
        "headers_found": True,
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
    first = bom_end(text)
    seps = [m for m in _MBOX_SPLIT.finditer(text, first) if m.start() == first or _after_blank(text, m.start())]
    if len(seps) > max_messages:
        raise InputTooLargeError(f"{path}: mbox has {len(seps)} messages, over the limit of {max_messages}")
    return [(m.end(), seps[k + 1].start() if k + 1 < len(seps) else len(text)) for k, m in enumerate(seps)]


def _after_blank(text: str, pos: int) -> bool:
    """mbox separators follow an empty line (mboxrd/mboxo)."""
    before = text[max(0, pos - 4) : pos]
    return before.endswith(("\n\n", "\r\n\r\n", "\r\r"))


def is_mbox(text: str) -> bool:
    start = bom_end(text)
    m = LINE.match(text, start)
    if not (m and MBOX_FROM.match(m.group(1))):
        return False
    return header_block(text, m.end()) is not None


def parse_mbox_messages(text: str, *, path: str | None, account_id: str | None, max_messages: int) -> list[SourceDocument]:
    docs: list[SourceDocument] = []
    for index, (a, b) in enumerate(_mbox_spans(text, max_messages, path)):
        doc = parse_email(text[a:b], path=path, account_id=account_id, strict=False)
        doc.metadata["file_offset"] = a
        doc.metadata["index"] = index
        docs.append(doc)
    if not docs:
        raise ParseError(path, "mbox has no messages")
    return docs


def mbox_as_one(text: str, *, path: str | None, account_id: str | None, max_messages: int) -> SourceDocument:
    msgs = parse_mbox_messages(text, path=path, account_id=account_id, max_messages=max_messages)
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

