"""Transcripts: ``Speaker: text`` lines, WebVTT and SRT (JSON transcript segments: see :mod:`.chat`)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputTooLargeError, ParseError
from ..models import Participant, Segment, SourceDocument
from .lines import DEFAULT_MAX_MESSAGES, Line, bom_end, split_lines, trimmed
from .values import date_in_text, merge_people, parse_date, people_list, seconds

TS = r"\[?(?P<ts>(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)\]?"
# "Professor C: ...", "[00:01:02] Alice: ...", "00:01 Bob Smith: ..."; the label is short and has no digits first
SPEAKER_LINE = re.compile(r"^[ \t]*(?:" + TS + r"[ \t]+)?(?P<label>[^\W\d_][\w .'()@-]{0,40}?)[ \t]*:[ \t]")
SPEAKER_LINE_EMPTY = re.compile(r"^[ \t]*(?:" + TS + r"[ \t]+)?(?P<label>[^\W\d_][\w .'()@-]{0,40}?)[ \t]*:[ \t]*$")
# keys that open notes/transcript files and are not speakers
META_KEYS = frozenset(
    "date time title subject meeting attendees participants location agenda duration when where re cc to from"
    .split()
)

VTT_TIMING = re.compile(
    r"^[ \t]*(?P<s>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})[ \t]+-->[ \t]+(?P<e>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})"
)
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?[ \t]+([^>]+)>")


def speaker_segments(text: str, role: str, max_segments: int, path: str | None) -> tuple[list[Segment], list[str], dict[str, str]]:
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
            span = trimmed(text, cur[0], cur[1])
            if span:
                if len(segments) >= max_segments:
                    raise InputTooLargeError(f"{path}: more than {max_segments} utterances")
                segments.append(Segment(start=span[0], end=span[1], role=role, speaker=cur[2],  # type: ignore[arg-type]
                                        start_seconds=cur[3]))

    for ln in split_lines(text, bom_end(text)):
        s = ln.text(text)
        m = SPEAKER_LINE.match(s) or SPEAKER_LINE_EMPTY.match(s)
        label = m.group("label").strip() if m else None
        if m and label and label.lower() in META_KEYS and not started:
            meta.setdefault(label.lower(), s[m.end() :].strip())
            continue
        if m and label:
            close()
            started = True
            speakers.setdefault(label)
            cur = [ln.start + m.end(), ln.end, label, seconds(m.group("ts")) if m.group("ts") else None]
        elif cur is not None and s.strip():
            cur[1] = ln.end
    close()
    return segments, list(speakers), meta


def _speaker_ratio(text: str, limit: int = 200) -> tuple[int, int]:
    """(speaker lines, non-empty lines) among the first ``limit`` non-empty lines."""
    hits = total = 0
    for ln in split_lines(text, 0, min(len(text), 50_000)):
        s = ln.text(text)
        if not s.strip():
            continue
        total += 1
        m = SPEAKER_LINE.match(s) or SPEAKER_LINE_EMPTY.match(s)
        if m and m.group("label").strip().lower() not in META_KEYS:
            hits += 1
        if total >= limit:
            break
    return hits, total


def is_speaker_text(text: str) -> bool:
    hits, total = _speaker_ratio(text)
    return hits >= 3 and hits * 2 >= total


def parse_transcript(text: str, *, path: str | None = None, account_id: str | None = None,
                     max_segments: int = DEFAULT_MAX_MESSAGES) -> SourceDocument:
    """``Speaker: text`` lines (QMSum style). Text without speaker labels becomes one unattributed utterance."""
    segments, speakers, meta = speaker_segments(text, "utterance", max_segments, path)
    if not segments:
        span = trimmed(text, 0, len(text))
        segments = [Segment(start=span[0], end=span[1], role="utterance")] if span else []
    attendees = [Participant(name=n, address=a, role="attendee")
                 for k in ("attendees", "participants") if meta.get(k) for n, a in people_list(meta[k])]
    return SourceDocument(
        account_id=account_id,
        kind="transcript",
        occurred_at=parse_date(meta.get("date")) or date_in_text(meta.get("date")) or date_in_text(meta.get("title")),
        title=meta.get("title") or meta.get("meeting") or meta.get("subject"),
        participants=merge_people([Participant(name=s, role="speaker") for s in speakers], attendees),
        text=text,
        segments=segments,
        path=path,
        metadata={"format": "speaker-lines"},
    )


def _cue_blocks(text: str) -> list[list[Line]]:
    """Blank-line separated blocks of lines."""
    blocks: list[list[Line]] = []
    cur: list[Line] = []
    for ln in split_lines(text, bom_end(text)):
        if ln.text(text).strip():
            cur.append(ln)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def _cue_payload(text: str, payload: list[Line]) -> tuple[int, int, str | None] | None:
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
        sm = SPEAKER_LINE.match(first)
        if sm:
            speaker = sm.group("label").strip()
            start += sm.end()
        else:
            bm = re.match(r"^[ \t]*[\[(]([^\])\n]{1,40})[\])][ \t]*:?[ \t]*", first)  # "[Alice] hi"
            if bm and bm.end() < len(first):
                speaker = bm.group(1).strip()
                start += bm.end()
    span = trimmed(text, start, end)
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
    notes: list[str] = []  # the WEBVTT header and NOTE blocks: where a meeting's date, title, attendees are
    if fmt == "vtt":
        header = _cue_blocks(text)[0]
        notes.extend(ln.text(text) for ln in header)
        notes[0] = notes[0].lstrip("\ufeff")[6:].strip(" \t-:")  # "WEBVTT - Globex QBR": the title
    for block in blocks:
        first = block[0].text(text)
        if fmt == "vtt" and re.match(r"^NOTE\b", first):
            notes.append(first[4:].strip())
            notes.extend(ln.text(text) for ln in block[1:])
            continue
        if fmt == "vtt" and re.match(r"^(STYLE|REGION)\b", first):
            continue
        t = 0 if VTT_TIMING.match(first) else (1 if len(block) > 1 and VTT_TIMING.match(block[1].text(text)) else -1)
        if t < 0:
            continue
        tm = VTT_TIMING.match(block[t].text(text))
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
                                start_seconds=seconds(tm.group("s")), end_seconds=seconds(tm.group("e"))))
    if not segments:
        raise ParseError(path, f"no cues with text found in this {fmt.upper()} file")
    meta = _note_meta(notes)
    return SourceDocument(
        account_id=account_id,
        kind="transcript",
        occurred_at=meta.get("date"),
        title=meta.get("title"),
        participants=merge_people([Participant(name=s, role="speaker") for s in speakers], meta.get("attendees", [])),
        text=text,
        segments=segments,
        path=path,
        metadata={"format": fmt},
    )


_NOTE_KEY = re.compile(r"^[ \t]*(?:NOTE[ \t]+)?([A-Za-z][A-Za-z -]{0,30}?)[ \t]*[:=][ \t]*(.+?)[ \t]*$")
DATE_KEYS = frozenset(("date", "recorded", "recorded on", "recorded at", "meeting date", "call date", "when",
                       "started", "start", "start time", "created", "date time", "datetime", "held on"))
TITLE_KEYS = ("title", "meeting", "subject", "topic")
ATTENDEE_KEYS = frozenset(("attendees", "participants", "present", "attendance", "people"))


def _note_meta(lines: list[str]) -> dict[str, Any]:
    """Date, title and attendees from metadata lines (``Date: ...``, ``Title: ...``, ``Attendees: ...``),
    else a date written anywhere in them (``NOTE Globex QBR 2024-03-12``); the first line is the title."""
    meta: dict[str, Any] = {}
    keyed: dict[str, str] = {}
    for line in lines[:200]:
        m = _NOTE_KEY.match(line)
        if m and len(line) < 2000:
            keyed.setdefault(m.group(1).strip().lower(), m.group(2))
    for k, v in keyed.items():
        if k in DATE_KEYS and "date" not in meta:
            found = parse_date(v) or date_in_text(v)
            if found:
                meta["date"] = found
    if "date" not in meta:
        for line in lines[:200]:
            found = date_in_text(line[:500])
            if found:
                meta["date"] = found
                break
    title = next((keyed[k] for k in TITLE_KEYS if keyed.get(k)), None)
    if title is None and lines and lines[0] and not _NOTE_KEY.match(lines[0]):
        title = lines[0][:200]
    if title:
        meta["title"] = title
    people = [Participant(name=n, address=a, role="attendee")
              for k, v in keyed.items() if k in ATTENDEE_KEYS for n, a in people_list(v)]
    if people:
        meta["attendees"] = people
    return meta


def is_srt(text: str) -> bool:
    head = text.lstrip("\ufeff \t\r\n")[:300]
    lines = head.splitlines()
    return len(lines) >= 2 and lines[0].strip().isdigit() and bool(VTT_TIMING.match(lines[1]))

