"""Notes: Markdown or plain text (front matter, headings, Date: and Attendees: lines) and loose text."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from ..models import Participant, Segment, SourceDocument, SourceKind
from .lines import bom_end, split_lines, trimmed
from .values import aware, date_in_text, parse_date, people_list, who

_ATX = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT = re.compile(r"^[ \t]{0,3}(=+|-+)[ \t]*$")
_DATE_LINE = re.compile(
    r"^[ \t*_>-]*(?:date|when|meeting date|call date|held on|recorded)[ \t*_]*:[ \t*_]*(.+?)[ \t*_]*$", re.I
)
_ATTENDEES_LINE = re.compile(
    r"^[ \t*_>-]*(?:attendees|participants|present|attendance|people|who)[ \t*_]*:[ \t*_]*(.+?)[ \t*_]*$", re.I
)


def _attendee(item: Any) -> tuple[str | None, str | None]:
    """One front-matter attendee: a string read as on an ``Attendees:`` line (its first person), or a mapping."""
    if isinstance(item, str):
        return (people_list(item) or [(None, None)])[0]
    return who(item)


def parse_notes(text: str, *, kind: SourceKind = "notes", path: str | None = None,
                account_id: str | None = None) -> SourceDocument:
    """Markdown or plain notes: title from the first heading, date from front matter or a Date: line."""
    pos = bom_end(text)
    meta: dict[str, Any] = {}
    title: str | None = None
    occurred: datetime | None = None
    participants: list[Participant] = []
    lines = split_lines(text, pos)
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
            occurred = aware(d)
        elif d is not None and hasattr(d, "year"):
            occurred = datetime(d.year, d.month, d.day, tzinfo=UTC)
        elif d is not None:
            occurred = parse_date(str(d))
        att = meta.get("attendees") or meta.get("participants")
        # "Ana Ruiz (COO), Ben Li <ben@x.com>" or a list of such (or of {name, email}): read as an Attendees: line
        people: list[tuple[str | None, str | None]] = []
        if isinstance(att, str):
            people = people_list(att)
        elif isinstance(att, list):
            people = [_attendee(a) for a in att[:200]]
        participants.extend(Participant(name=name, address=addr, role="attendee") for name, addr in people
                            if name or addr)
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
                occurred = parse_date(dm.group(1)) or date_in_text(dm.group(1))
        if k - first_content < 60 and len(s) < 2000:
            am = _ATTENDEES_LINE.match(s)
            if am:
                known = {(p.name, p.address) for p in participants}
                participants.extend(Participant(name=n, address=a, role="attendee")
                                    for n, a in people_list(am.group(1)) if (n, a) not in known)
    if title is None and heads:
        title = heads[0][2]
    if occurred is None:  # "# Globex QBR 2024-03-12", "Call notes - 12 March 2024" in the first lines
        for k in range(first_content, min(len(lines), first_content + 5)):
            occurred = date_in_text(lines[k].text(text)[:300])
            if occurred:
                break
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
        span = trimmed(text, lines[a].start, lines[b - 1].end)
        if span:
            segments.append(Segment(start=span[0], end=span[1], role="section", occurred_at=occurred))
    if not segments:  # only headings: the headings are the content
        span = trimmed(text, lines[first_content].start if first_content < len(lines) else pos, len(text))
        segments = [Segment(start=span[0], end=span[1], role="section", occurred_at=occurred)] if span else []
    return SourceDocument(account_id=account_id, kind=kind, occurred_at=occurred, title=title,
                          participants=participants, text=text, segments=segments, path=path,
                          metadata={"format": "notes", **({"front_matter": jsonable(meta)} if meta else {})})


def jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return json.loads(json.dumps(value, default=str))


def parse_plain(text: str, *, kind: SourceKind, path: str | None = None, account_id: str | None = None) -> SourceDocument:
    """Unstructured text (a tweet, a support message): one segment over the whole content."""
    span = trimmed(text, 0, len(text))
    role = "message" if kind in ("chat", "ticket") else ("utterance" if kind == "transcript" else "section")
    segments = [Segment(start=span[0], end=span[1], role=role)] if span else []  # type: ignore[arg-type]
    return SourceDocument(account_id=account_id, kind=kind, text=text, segments=segments, path=path)

