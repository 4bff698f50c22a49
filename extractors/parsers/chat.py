"""JSON exports (chat conversations, tickets, transcript segments) and ``Author: text`` chat logs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import InputTooLargeError, ParseError
from ..models import Participant, Segment, SourceDocument, SourceKind
from .lines import DEFAULT_MAX_MESSAGES
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
                    return _Thread(kind, title, ms, obj)
        if title and any(isinstance(obj.get(k), str) for k in ("description", "body", "text")):
            one = _json_msg({**obj, "text": next(obj[k] for k in ("description", "body", "text") if isinstance(obj.get(k), str))})
            if one:
                name, addr = who(obj.get("requester") or obj.get("author") or obj.get("reporter"))
                one.author, one.address = one.author or name, one.address or addr
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


def thread_doc(threads: list[_Thread], *, path: str | None, account_id: str | None, original: Any) -> SourceDocument:
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


def load_json(text: str, path: str | None) -> Any:
    try:
        return json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as e:
        raise ParseError(path, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise ParseError(path, "JSON nested too deeply") from None


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

