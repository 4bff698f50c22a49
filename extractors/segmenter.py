"""Sentence segmentation with offsets into the original text, for pattern matching over messy sources.

Emails arrive with CRLF line ends, quoted-printable soft breaks (``=\\r\\n``, ``=20``), ``>`` quote prefixes,
hard-wrapped lines and forwarded header blocks; transcripts with tokenised punctuation; tweets with none of
that. Patterns should see one clean, lower-cased line of prose per sentence, while citations must point at
the original characters. So every content region is *normalised* into a compact string together with a map
back to original offsets, split into sentences there, and each sentence keeps both views.

Pure functions only: no I/O, no clock, deterministic.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass

from .grounding import TYPOGRAPHIC_MAP
from .models import SourceDocument

MAX_SENTENCE_CHARS = 400  # longer runs are cut at clause marks, then at spaces (gold quotes stay <= ~300)
MAX_REGION_CHARS = 2_000_000  # bound work per document
MAX_SENTENCES = 20_000

# Typographic variants mapped one-to-one (shared with grounding), so offsets stay aligned.
_CHAR_MAP = TYPOGRAPHIC_MAP

# Things that are not prose: quoted-printable artefacts and whitespace runs (with quote prefixes).
_SPECIAL = re.compile(
    r"=\r?\n"  # QP soft line break: joins the two lines
    r"|=(?:20|09)[ \t]*"  # QP-encoded trailing space / tab
    r"|=0[12]&?"  # Lotus Notes bullet artefacts seen in Enron mail
    r"|(?:[ \t\u00a0]*\r?\n(?:[ \t]*>)*)+[ \t\u00a0]*"  # line breaks, with any '>' quote prefixes
    r"|[ \t\u00a0\r\f\v]{2,}|[\t\u00a0\r\f\v]"  # a single plain space is kept as it is
)
# The same, plus JSON string escapes, for the text of a JSON export stored as it is (format "json"): an
# escaped line break reads as one, an escaped character as itself, while offsets keep pointing at the raw
# escape sequence in the file.
_JSON_ESCAPE = (
    r"(?:[ \t]|\\[nrt])*\\[nrt](?:[ \t]|\\[nrt])*"  # escaped whitespace runs
    r"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\[\"\\/bf]"
)
_SPECIAL_JSON = re.compile(_JSON_ESCAPE + "|" + _SPECIAL.pattern)
_BULLET_AFTER_BREAK = re.compile(r"(?:[-*\u2022o]\s|\d{1,2}[.)]\s|[A-Z][A-Za-z ]{0,30}:\s)")

# Email header lines inside bodies (forwarded / quoted messages) and separator lines.
_HEADER_LINE = re.compile(
    r"(?im)^[ \t>]*(?P<name>from|to|cc|bcc|sent|date|subject|importance|reply-to|x-[a-z-]+)[ \t]*:(?P<value>[^\n]*)\n?"
    r"(?:[ \t]*[^\n:]*@[^\n]*\n?|[ \t]+[^\n]*,[ \t]*\r?\n?)*"  # continuation lines of address lists
)
_SEPARATOR_LINE = re.compile(
    r"(?im)^[ \t>]*(?:-{3,}[^\n]*(?:original message|forwarded by)[^\n]*"
    r"|[\w .'-]+(?:/[\w-]+)*@[\w.-]+[ \t]*\r?$"  # Lotus Notes 'Name/ORG@ORG' lines
    r"|_{5,}[ \t]*\r?$|-{5,}[ \t]*\r?$|\*{5,}[ \t]*\r?$)\n?"
)
# A Lotus Notes attribution line ends with a timestamp: "Karen Denne 04/13/2001 12:45 PM".
_DATE_EOL = re.compile(r"\d{1,2}/\d{1,2}/\d{2,4} \d{1,2}:\d{2}(?: ?[ap]m)?[ \t]*\r?$\n?", re.I | re.M)
_TOP_HEADER = re.compile(r"\A(?:[A-Za-z][\w-]{0,40}:[^\n]*\n(?:[ \t][^\n]*\n)*){2,}\r?\n")
_SUBJECT_PREFIX = re.compile(r"(?:\s*(?:re|fw|fwd|aw)\s*:\s*)+", re.I)

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc inc corp co ltd no jan feb mar apr jun jul aug sep sept oct nov dec "
    "e.g i.e u.s a.m p.m approx dept est fig".split()
)
_BOUNDARY = re.compile(r"\n|(?<=[.!?])[\"')\]]*(?= )|(?<=[;])(?= )")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence: ``start``/``end`` index the original text; ``norm`` is its cleaned, lower-cased form."""

    start: int
    end: int
    norm: str
    subject: bool = False  # an email Subject line
    question: bool = False


@dataclass(frozen=True, slots=True)
class _Normalised:
    text: str
    nstarts: tuple[int, ...]  # start of each identity chunk in ``text``
    ostarts: tuple[int, ...]  # its start in the original text
    escapes: dict[int, int] | None = None  # normalised pos of a decoded JSON escape -> original end

    def to_original(self, pos: int) -> int:
        """Original offset of the character at normalised ``pos`` (must lie in an identity chunk)."""
        i = bisect_right(self.nstarts, pos) - 1
        return self.ostarts[i] + (pos - self.nstarts[i])

    def to_original_end(self, pos: int) -> int:
        """Original offset just after the character at normalised ``pos`` (past a whole escape sequence)."""
        if self.escapes and pos in self.escapes:
            return self.escapes[pos]
        return self.to_original(pos) + 1


def normalise(text: str, start: int, end: int, *, json_escapes: bool = False) -> _Normalised:
    """Clean ``text[start:end]`` for matching: soft breaks joined, whitespace collapsed, paragraphs kept as '\\n'.

    With ``json_escapes`` (a JSON export stored raw) escape sequences are read as what they encode."""
    special = _SPECIAL_JSON if json_escapes and "\\" in text[start:end] else _SPECIAL
    if special.search(text, start, end) is None:  # fast path: one clean line (a chat message, an utterance)
        region = text[start:end].translate(_CHAR_MAP)
        low = region.lower()
        if len(low) == len(region):
            region = low
        lead = len(region) - len(region.lstrip(" "))
        return _Normalised(region[lead:], (0,), (start + lead,))
    out: list[str] = []
    nstarts: list[int] = []
    ostarts: list[int] = []
    escapes: dict[int, int] = {}
    n = 0
    last = "\n"  # so leading whitespace is dropped

    region = text[start:end].translate(_CHAR_MAP)
    low = region.lower()
    if len(low) == len(region):
        region = low

    def emit_identity(a: int, b: int) -> None:
        nonlocal n, last
        if last in " \n":
            while a < b and text[a] == " ":
                a += 1
        if a >= b:
            return
        chunk = region[a - start : b - start]
        nstarts.append(n)
        ostarts.append(a)
        out.append(chunk)
        n += len(chunk)
        last = chunk[-1]

    pos = start
    for m in special.finditer(text, start, end):
        emit_identity(pos, m.start())
        pos = m.end()
        tok = m.group()
        if tok.startswith("=") and tok[1:2] in ("\r", "\n"):
            continue  # soft break: nothing
        if "\\" in tok and special is _SPECIAL_JSON:
            if tok.lstrip(" \t")[:2] in ("\\n", "\\r", "\\t"):  # escaped whitespace: like a line break
                breaks = tok.count("\\n") or tok.count("\\r")
                tok = "\n\n" if breaks >= 2 else ("\n" if breaks else " ")
            else:
                ch = _decode_escape(tok).translate(_CHAR_MAP)
                ch = ch.lower() if len(ch.lower()) == len(ch) else ch
                if ch.isspace():
                    tok = " "
                else:
                    nstarts.append(n)
                    ostarts.append(m.start())
                    out.append(ch)
                    n += len(ch)
                    escapes[n - 1] = m.end()
                    last = ch[-1]
                    continue
        if tok.startswith("=0"):
            rep = "\n"  # bullet artefact starts a new item
        elif "\n" in tok:
            rep = "\n" if tok.count("\n") >= 2 or _BULLET_AFTER_BREAK.match(text, m.end(), end) else " "
        else:
            rep = " "
        if rep == "\n" and last != "\n":
            if last == " ":
                out[-1] = out[-1][:-1] if len(out[-1]) > 1 else ""
                if out[-1] == "":
                    out.pop()
                n -= 1
            out.append("\n")
            n += 1
            last = "\n"
        elif rep == " " and last not in (" ", "\n"):
            out.append(" ")
            n += 1
            last = " "
    emit_identity(pos, end)
    return _Normalised("".join(out), tuple(nstarts), tuple(ostarts), escapes or None)


def _decode_escape(tok: str) -> str:
    try:
        return json.loads(f'"{tok}"')
    except ValueError:
        return "\ufffd"


def _content_ranges(doc: SourceDocument) -> list[tuple[int, int]]:
    """Where prose lives: the parser's segments (merged), else the text after a top header block."""
    text = doc.text
    if doc.segments:
        spans = sorted((s.start, s.end) for s in doc.segments if s.end > s.start)
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return merged
    m = _TOP_HEADER.match(text) if doc.kind == "email" or text[:200].lower().startswith(("message-id:", "from:", "date:")) else None
    start = m.end() if m else 0
    return [(start, len(text))] if start < len(text) else []


def _subject_range(doc: SourceDocument, ranges: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The top Subject line when it lies outside the content ranges (it may state a signal)."""
    if doc.kind != "email":
        return None
    first = ranges[0][0] if ranges else len(doc.text)
    m = re.search(r"(?im)^subject:[ \t]*([^\r\n]*)", doc.text[:first])
    if not m or not m.group(1).strip():
        return None
    a, b = m.start(1), m.end(1)
    pm = _SUBJECT_PREFIX.match(doc.text, a, b)
    if pm:
        a = pm.end()
    return (a, b) if b - a >= 3 else None


def _exclusions(text: str, start: int, end: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Header lines and separators inside a region (skipped), and the Subject values among them (kept)."""
    skip: list[tuple[int, int]] = []
    subjects: list[tuple[int, int]] = []
    region = text[start:end]
    if ":" in region:
        for m in _HEADER_LINE.finditer(text, start, end):
            skip.append((m.start(), m.end()))
            if m.group("name").lower() == "subject":
                a, b = m.start("value"), m.end("value")
                while b > a and text[b - 1] in "\r \t":
                    b -= 1
                pm = _SUBJECT_PREFIX.match(text, a, b)
                if pm:
                    a = pm.end()
                while a < b and text[a] in " \t":
                    a += 1
                if b - a >= 3:
                    subjects.append((a, b))
    for m in _SEPARATOR_LINE.finditer(text, start, end):
        skip.append((m.start(), m.end()))
    if "/" in region:
        for m in _DATE_EOL.finditer(text, start, end):
            line_start = max(start, text.rfind("\n", start, m.start()) + 1)
            if m.start() - line_start <= 80:
                skip.append((line_start, m.end()))
    skip.sort()
    return skip, subjects


def _split_long(norm: str, a: int, b: int) -> list[tuple[int, int]]:
    """Cut a run longer than MAX_SENTENCE_CHARS at clause marks, then at spaces."""
    out: list[tuple[int, int]] = []
    while b - a > MAX_SENTENCE_CHARS:
        window = norm[a : a + MAX_SENTENCE_CHARS]
        cut = max(window.rfind(", "), window.rfind(": "), window.rfind(" - "))
        if cut < MAX_SENTENCE_CHARS // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = MAX_SENTENCE_CHARS - 1
        out.append((a, a + cut + 1))
        a = a + cut + 1
    out.append((a, b))
    return out


def _sentences_in(text: str, start: int, end: int, *, subject: bool = False,
                  json_escapes: bool = False) -> list[Sentence]:
    nt = normalise(text, start, end, json_escapes=json_escapes)
    norm = nt.text
    if not norm.strip():
        return []
    cuts = [0]
    for m in _BOUNDARY.finditer(norm):
        p = m.end() if m.group() != "\n" else m.start()
        if m.group() == "" and norm[m.start() - 1] == ".":
            # abbreviation or initial: "Mr. Smith", "J. Doe", "e.g. this"
            j = m.start() - 1
            k = j
            while k > 0 and (norm[k - 1].isalnum() or norm[k - 1] == "."):
                k -= 1
            word = norm[k:j].rstrip(".")
            nxt = text[nt.to_original(m.end() + 1)] if m.end() + 1 < len(norm) else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or (nxt.islower() and nxt.isalpha()):
                continue
        cuts.append(p)
        if m.group() == "\n":
            cuts.append(m.end())
    cuts.append(len(norm))
    out: list[Sentence] = []
    for i in range(len(cuts) - 1):
        a, b = cuts[i], cuts[i + 1]
        while a < b and norm[a] in " \n":
            a += 1
        while b > a and norm[b - 1] in " \n":
            b -= 1
        if b - a < 2:
            continue
        for ca, cb in _split_long(norm, a, b) if b - a > MAX_SENTENCE_CHARS else [(a, b)]:
            while ca < cb and norm[ca] in " \n":
                ca += 1
            while cb > ca and norm[cb - 1] in " \n":
                cb -= 1
            if cb - ca < 2:
                continue
            s = norm[ca:cb]
            ostart = nt.to_original(ca)
            oend = nt.to_original_end(cb - 1)
            out.append(Sentence(ostart, oend, s, subject, s.rstrip(" \"')").endswith("?")))
    return out


def sentences_in(text: str, start: int = 0, end: int | None = None) -> list[Sentence]:
    """Sentences of ``text[start:end]`` (offsets into ``text``): the one splitter every extractor uses."""
    end = len(text) if end is None else min(end, len(text))
    return _sentences_in(text, start, end) if start < end else []


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Spans that tile ``text`` end to end, one per sentence (whitespace after a sentence stays with it).

    The cuts are where :func:`sentences_in` starts a sentence, so a chunker that packs these spans never
    cuts a sentence the rule extractor sees as one.
    """
    if not text:
        return []
    cuts = [0]
    for s in sentences_in(text, 0, min(len(text), MAX_REGION_CHARS)):
        if s.start > cuts[-1]:
            cuts.append(s.start)
    cuts.append(len(text))
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def sentences(doc: SourceDocument) -> list[Sentence]:
    """All prose sentences of ``doc`` in text order, email headers left out (a Subject line kept, flagged)."""
    text = doc.text
    ranges = _content_ranges(doc)
    raw_json = doc.metadata.get("format") == "json" and not doc.metadata.get("rendered")
    out: list[Sentence] = []
    subj = _subject_range(doc, ranges)
    if subj:
        out.extend(_sentences_in(text, subj[0], subj[1], subject=True))
    budget = MAX_REGION_CHARS
    for a, b in ranges:
        if budget <= 0:
            break
        b = min(b, a + budget)
        budget -= b - a
        skip, subjects = _exclusions(text, a, b)
        for sa, sb in subjects:
            out.extend(_sentences_in(text, sa, sb, subject=True, json_escapes=raw_json))
        pos = a
        for sa, sb in skip:
            if sa > pos:
                out.extend(_sentences_in(text, pos, sa, json_escapes=raw_json))
            pos = max(pos, sb)
        if pos < b:
            out.extend(_sentences_in(text, pos, b, json_escapes=raw_json))
        if len(out) >= MAX_SENTENCES:
            break
    out.sort(key=lambda s: s.start)
    return out[:MAX_SENTENCES]
