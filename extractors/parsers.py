"""Source parsers: files into :class:`SourceDocument`, keeping offsets into the original text.

The text of a document is always ``raw_bytes.decode("utf-8", errors="replace")`` with no newline
translation, so an offset means the same thing here, in the evaluation harness and in a user's editor.

(Minimal first version: email headers, ``Speaker: text`` transcripts, plain text. Extended in place.)
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

from .errors import InputTooLargeError, ParseError
from .models import Participant, Segment, SourceDocument, SourceKind

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
KINDS = ("auto", "email", "transcript", "notes", "chat")

_HEADER_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]?(.*)$")
_SPEAKER_LINE = re.compile(r"^([A-Z][\w .'-]{0,40}?):\s", re.M)


def read_source_text(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
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
    return data.decode("utf-8", errors="replace")


def _header_block(text: str) -> tuple[dict[str, str], int] | None:
    """RFC 822-style headers at the top: (headers, offset where the body starts) or None."""
    headers: dict[str, str] = {}
    pos = 0
    last: str | None = None
    n = len(text)
    while pos < n:
        nl = text.find("\n", pos)
        line_end = n if nl < 0 else nl
        line = text[pos:line_end].rstrip("\r")
        nxt = n if nl < 0 else nl + 1
        if not line.strip():
            return (headers, nxt) if len(headers) >= 2 else None
        if line[0] in " \t" and last:
            headers[last] += " " + line.strip()
        else:
            m = _HEADER_LINE.match(line)
            if not m:
                return None
            last = m.group(1).lower()
            headers[last] = m.group(2).strip()
        pos = nxt
    return (headers, n) if len(headers) >= 2 else None


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def parse_email(text: str, *, path: str | None = None, account_id: str | None = None) -> SourceDocument:
    block = _header_block(text)
    if block is None or not ({"from", "subject", "date", "to"} & set(block[0])):
        raise ParseError(path, "not an email: no RFC 822 header block (From/To/Subject/Date) at the top")
    headers, body_start = block
    participants: list[Participant] = []
    for role in ("from", "to", "cc"):
        for name, addr in getaddresses([headers.get(role, "")]):
            if addr or name:
                participants.append(Participant(name=name or None, address=(addr or "").lower() or None, role=role))
    occurred = _parse_date(headers.get("date"))
    sender = participants[0] if participants and participants[0].role == "from" else None
    segments = [
        Segment(
            start=body_start,
            end=len(text),
            role="body",
            speaker=sender.label if sender else None,
            address=sender.address if sender else None,
            occurred_at=occurred,
        )
    ]
    return SourceDocument(
        account_id=account_id,
        kind="email",
        occurred_at=occurred,
        participants=participants,
        title=headers.get("subject"),
        text=text,
        segments=segments,
        path=path,
        metadata={"headers": {k: v for k, v in headers.items() if k in ("message-id", "in-reply-to", "references")}},
    )


def parse_transcript(text: str, *, path: str | None = None, account_id: str | None = None) -> SourceDocument:
    segments: list[Segment] = []
    speakers: dict[str, None] = {}
    pos = 0
    for line in text.splitlines(keepends=True):
        m = _SPEAKER_LINE.match(line)
        content_end = pos + len(line.rstrip("\r\n"))
        if m:
            speaker = m.group(1).strip()
            speakers.setdefault(speaker)
            segments.append(Segment(start=pos + m.end(), end=content_end, role="utterance", speaker=speaker))
        pos += len(line)
    return SourceDocument(
        account_id=account_id,
        kind="transcript",
        participants=[Participant(name=s, role="speaker") for s in speakers],
        text=text,
        segments=segments,
        path=path,
    )


def parse_plain(
    text: str, *, kind: SourceKind, path: str | None = None, account_id: str | None = None
) -> SourceDocument:
    return SourceDocument(account_id=account_id, kind=kind, text=text, path=path)


def detect_kind(text: str, path: str | None = None) -> SourceKind:
    if _header_block(text) is not None:
        return "email"
    if len(_SPEAKER_LINE.findall(text[:5000])) >= 3:
        return "transcript"
    return "notes"


def parse_text(
    text: str, *, kind: str = "auto", path: str | None = None, account_id: str | None = None
) -> SourceDocument:
    if kind not in KINDS:
        raise ParseError(path, f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    resolved: SourceKind = detect_kind(text, path) if kind == "auto" else kind  # type: ignore[assignment]
    if resolved == "email":
        if kind == "email" and _header_block(text) is None:
            return parse_plain(text, kind="email", path=path, account_id=account_id)
        return parse_email(text, path=path, account_id=account_id)
    if resolved == "transcript":
        return parse_transcript(text, path=path, account_id=account_id)
    return parse_plain(text, kind=resolved, path=path, account_id=account_id)


def load_document(
    path: str | Path,
    *,
    kind: str = "auto",
    account_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SourceDocument:
    """Parse one file. Raises :class:`ParseError` (naming the file) on anything unparseable."""
    text = read_source_text(path, max_bytes)
    return parse_text(text, kind=kind, path=str(path), account_id=account_id)
