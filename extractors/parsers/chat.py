"""JSON exports (chat conversations, tickets, transcript segments) and ``Author: text`` chat logs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring
from datetime import UTC, datetime
from typing import Any

from ..errors import InputTooLargeError, ParseError
from ..models import Participant, Segment, SourceDocument, SourceKind, document_id, stable_id
from .lines import DEFAULT_MAX_MESSAGES, bom_end
from .transcripts import speaker_segments
from .values import aware, parse_date, seconds, supported, who

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
    at: datetime | None = None  # the thread's own date (a transcript's "date"), for messages without one


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
                return supported(aware(datetime.fromisoformat(value.strip().replace("Z", "+00:00"))))
            except ValueError:
                pass
        return parse_date(value)
    return None


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
        author, address = who(profile)
    if author is None:
        for k in _AUTHOR_KEYS:
            if k in item:
                author, address = who(item[k])
                if author:
                    break
    at = next((t for k in _TIME_KEYS if k in item for t in [_json_time(item[k])] if t), None)
    start_s = next((s for k in _START_KEYS if k in item for s in [seconds(item[k])] if s is not None), None)
    end_s = next((s for k in _END_KEYS if k in item for s in [seconds(item[k])] if s is not None), None)
    return _Msg(author, text, at, address, start_s, end_s)


_THREAD_TIME_KEYS = (*_TIME_KEYS, "started_at", "start_time", "recorded_at", "meeting_date", "call_date", "date_time")


def _thread_time(obj: dict[str, Any]) -> datetime | None:
    """A thread's own date (a transcript's ``"date"``, a ticket's ``"created_at"``)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    for source in (obj, meta):
        for k in _THREAD_TIME_KEYS:
            if k in source:
                found = _json_time(source[k])
                if found:
                    return found
    return None


def json_threads(data: Any, path: str | None, max_messages: int) -> list[_Thread]:
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
                        name, addr = who(obj.get("requester") or obj.get("author") or obj.get("reporter"))
                        at = next((t for k in _TIME_KEYS if k in obj for t in [_json_time(obj[k])] if t), None)
                        ms.insert(0, _Msg(name, desc, at, addr))
                    kind: SourceKind = "ticket"
                elif key in ("segments", "utterances", "transcript", "results") or (
                    ms and sum(1 for m in ms if m.start_s is not None) * 2 >= len(ms)
                ):
                    kind = "transcript"
                else:
                    kind = "chat"
                if ms or kind == "ticket":
                    return _Thread(kind, title, ms, obj, _thread_time(obj))
        if title and any(isinstance(obj.get(k), str) for k in ("description", "body", "text")):
            one = _json_msg({**obj, "text": next(obj[k] for k in ("description", "body", "text") if isinstance(obj.get(k), str))})
            if one:
                name, addr = who(obj.get("requester") or obj.get("author") or obj.get("reporter"))
                one.author, one.address = one.author or name, one.address or addr
                return _Thread("ticket", title, [one], obj, _thread_time(obj))
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


class _Str(str):
    """A JSON string value that knows where its characters lie in the file (between the quotes)."""

    start: int
    end: int


class _Obj(dict):  # type: ignore[type-arg]
    start: int
    end: int


class _Arr(list):  # type: ignore[type-arg]
    start: int
    end: int


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_MAX_DEPTH = 200
_WORDS = (("true", True), ("false", False), ("null", None), ("NaN", float("nan")), ("Infinity", float("inf")),
          ("-Infinity", float("-inf")))


def _spanned(text: str, pos: int, depth: int = 0) -> tuple[Any, int]:
    """A JSON value at ``pos`` (already known to be valid JSON) with the file offsets of its strings,
    objects and arrays; numbers, booleans and null as usual. Returns (value, offset after it)."""
    pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
    c = text[pos : pos + 1]
    if c == '"':
        value, end = scanstring(text, pos + 1, True)
        out = _Str(value)
        out.start, out.end = pos + 1, end - 1
        return out, end
    if c in "{[":
        if depth >= _MAX_DEPTH:
            raise RecursionError
        container: Any = _Obj() if c == "{" else _Arr()
        container.start = pos
        close = "}" if c == "{" else "]"
        pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
        if text[pos : pos + 1] == close:
            container.end = pos + 1
            return container, pos + 1
        while True:
            if c == "{":
                key, pos = scanstring(text, _WS.match(text, pos).end() + 1, True)  # type: ignore[union-attr]
                pos = _WS.match(text, pos).end() + 1  # type: ignore[union-attr]  # the ':'
                value, pos = _spanned(text, pos, depth + 1)
                container[key] = value
            else:
                value, pos = _spanned(text, pos, depth + 1)
                container.append(value)
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
            sep = text[pos : pos + 1]
            pos += 1
            if sep == close:
                container.end = pos
                return container, pos
    m = _NUMBER.match(text, pos)
    if m is None:
        for word, value in _WORDS:
            if text.startswith(word, pos):
                return value, pos + len(word)
    if m is None:
        raise ValueError(f"unexpected character at {pos}")
    n = m.group()
    return (float(n) if any(ch in n for ch in ".eE") else int(n)), m.end()


def _raw_span(text: str, s: Any) -> tuple[int, int] | None:
    """Where a message's text lies in the file: its string's characters, less leading and trailing blanks
    and escaped line breaks (``\n``), so a citation of the message is the file's exact characters."""
    if not isinstance(s, _Str):
        return None
    a, b = s.start, s.end
    while a < b:
        if text[a].isspace():
            a += 1
        elif text[a] == "\\" and text[a + 1 : a + 2] in ("n", "r", "t"):
            a += 2
        else:
            break
    while b > a:
        if text[b - 1].isspace() and text[b - 2 : b - 1] != "\\":
            b -= 1
        elif text[b - 2 : b - 1] == "\\" and text[b - 1] in "nrt" and text[b - 3 : b - 2] != "\\":
            b -= 2
        else:
            break
    return (a, b) if b > a else None


def _thread_segments(text: str, threads: list[_Thread]) -> tuple[list[Segment], list[Participant]]:
    """One segment per message over its characters in the file (a ticket's subject: a ``section``)."""
    segments: list[Segment] = []
    people: dict[tuple[str | None, str | None], None] = {}
    for th in threads:
        if th.kind == "ticket" and th.title:
            span = _raw_span(text, th.title)
            if span:
                segments.append(Segment(start=span[0], end=span[1], role="section"))
        role = "utterance" if th.kind == "transcript" else "message"
        for m in th.messages:
            span = _raw_span(text, m.text)
            if span is not None:
                segments.append(Segment(start=span[0], end=span[1], role=role, speaker=m.author,  # type: ignore[arg-type]
                                        address=m.address, occurred_at=m.at or th.at, start_seconds=m.start_s,
                                        end_seconds=m.end_s))
            if m.author or m.address:
                known = next((key for key in people if key[0] == m.author and m.author), None)
                if known is None:
                    people[(m.author, m.address)] = None
                elif known[1] is None and m.address:
                    del people[known]
                    people[(m.author, m.address)] = None
    segments.sort(key=lambda s: (s.start, s.end))
    kept: list[Segment] = []
    for seg in segments:  # the same string read twice (a ticket's body as its first message): once
        if kept and seg.start < kept[-1].end:
            continue
        kept.append(seg)
    role_of = "speaker" if threads and threads[0].kind == "transcript" else "author"
    participants = [Participant(name=n, address=a, role=role_of) for n, a in people]  # type: ignore[arg-type]
    return kept, participants


# Each thread of a JSON list is its own document over the whole file (so offsets are the file's) while the
# file times the threads stays under this many characters; past it, a thread's text is its slice of the
# file, with ``metadata["file_offset"]`` saying where the slice starts (as for mbox messages).
SHARED_TEXT_MAX_CHARS = 8_000_000


def thread_doc(threads: list[_Thread], *, text: str, path: str | None, account_id: str | None,
               index: int | None = None, of: int = 1) -> SourceDocument:
    """The JSON file as stored, with one segment per message (never a rendered view of it)."""
    doc_id = ""
    metadata: dict[str, Any] = {"format": "json"}
    if index is not None:
        metadata["index"] = index
        obj = threads[0].original
        if len(text) * of > SHARED_TEXT_MAX_CHARS and isinstance(obj, _Obj | _Arr):
            offset = obj.start
            text = text[obj.start : obj.end]
            metadata["file_offset"] = offset
            segments, participants = _thread_segments(text, _shifted(threads, -offset))
        else:
            segments, participants = _thread_segments(text, threads)
            doc_id = stable_id(document_id(text, account_id), "thread", index)
    else:
        segments, participants = _thread_segments(text, threads)
    dates = [s.occurred_at for s in segments if s.occurred_at]
    kinds = {t.kind for t in threads}
    kind: SourceKind = threads[0].kind if len(kinds) == 1 else "chat"
    title = str(threads[0].title) if len(threads) == 1 and threads[0].title else None
    return SourceDocument(
        id=doc_id,
        account_id=account_id,
        kind=kind,
        occurred_at=min(dates) if dates else next((t.at for t in threads if t.at), None),
        participants=participants,
        title=title,
        text=text,
        segments=segments,
        path=path,
        metadata=metadata,
    )


def _shifted(threads: list[_Thread], delta: int) -> list[_Thread]:
    """The threads with every string's offsets moved by ``delta`` (a thread cut out of its file)."""

    def move(s: Any) -> Any:
        if isinstance(s, _Str):
            out = _Str(s)
            out.start, out.end = s.start + delta, s.end + delta
            return out
        return s

    return [
        _Thread(t.kind, move(t.title), [
            _Msg(m.author, move(m.text), m.at, m.address, m.start_s, m.end_s) for m in t.messages
        ], t.original, t.at)
        for t in threads
    ]


def load_json(text: str, path: str | None) -> Any:
    """The JSON value of the file; its strings, objects and arrays carry their offsets in ``text``."""
    start = bom_end(text)
    try:
        json.loads(text[start:])
    except json.JSONDecodeError as e:
        raise ParseError(path, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise ParseError(path, "JSON nested too deeply") from None
    try:
        return _spanned(text, start)[0]
    except RecursionError:
        raise ParseError(path, f"JSON nested more than {_MAX_DEPTH} levels deep") from None


def looks_like_json(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    return head in ("{", "[")


def parse_chat_lines(text: str, *, kind: SourceKind = "chat", path: str | None = None,
                     account_id: str | None = None, max_segments: int = DEFAULT_MAX_MESSAGES) -> SourceDocument:
    """A chat log as ``Author: text`` lines (``[10:02] alice: hi`` too): one message segment per line."""
    segments, speakers, meta = speaker_segments(text, "message", max_segments, path)
    return SourceDocument(account_id=account_id, kind=kind, text=text, segments=segments, path=path,
                          occurred_at=parse_date(meta.get("date")),
                          participants=[Participant(name=s, role="author") for s in speakers],
                          metadata={"format": "speaker-lines"})

