"""Align a claimed quote to its source and return offsets into the *original* text.

Offsets are never trusted from whoever made the claim (an LLM, a pattern, a user): they are recomputed
here, and whatever is returned satisfies ``text[start:end] == quote`` by construction.

Order of attempts: exact, then whitespace/case/punctuation-normalised, then fuzzy (rapidfuzz). The
normalised view of a text is cached, so aligning many quotes against one long document stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from .models import Alignment, Citation, SourceDocument

# Typographic variants an LLM (or a copy-paste) silently swaps; one char for one, so offsets survive.
TYPOGRAPHIC_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2026": ".",
    }
)
_WS = re.compile(r"\s+")
MAX_QUOTE_CHARS = 2_000
DEFAULT_MIN_SIMILARITY = 90.0


@dataclass(frozen=True, slots=True)
class Aligned:
    start: int
    end: int
    quote: str
    alignment: Alignment
    similarity: float


@dataclass(frozen=True, slots=True)
class _Normalised:
    text: str
    # index into the original text for every character of ``text``
    origin: tuple[int, ...]


def _normalise_quote(s: str) -> str:
    return _WS.sub(" ", s.translate(TYPOGRAPHIC_MAP)).strip().casefold()


@lru_cache(maxsize=64)
def _normalise(text: str) -> _Normalised:
    """Collapse whitespace runs to one space and casefold, remembering where each char came from."""
    out: list[str] = []
    origin: list[int] = []
    in_ws = False
    translated = text.translate(TYPOGRAPHIC_MAP)
    for i, ch in enumerate(translated):
        if ch.isspace():
            if not in_ws and out:
                out.append(" ")
                origin.append(i)
            in_ws = True
            continue
        in_ws = False
        folded = ch.casefold()
        # casefold may expand one char into several (German sharp s): all map to the same origin
        out.append(folded)
        origin.extend([i] * len(folded))
    return _Normalised("".join(out), tuple(origin))


def _nearest(text: str, needle: str, hint: int | None) -> int:
    """Index of the occurrence of ``needle`` nearest to ``hint`` (first one without a hint), or -1."""
    first = text.find(needle)
    if first < 0 or hint is None:
        return first
    best, pos = first, first
    while pos >= 0 and pos < hint + len(needle):
        if abs(pos - hint) < abs(best - hint):
            best = pos
        pos = text.find(needle, pos + 1)
    return best


def _span_from_norm(norm: _Normalised, text: str, nstart: int, nend: int) -> tuple[int, int]:
    start = norm.origin[nstart]
    end = norm.origin[nend - 1] + 1
    # never start or end on whitespace
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def align(
    text: str,
    quote: str,
    *,
    hint: int | None = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> Aligned | None:
    """Find ``quote`` in ``text``; ``hint`` is a claimed offset used only to choose between repeats."""
    if not quote or not quote.strip() or not text:
        return None
    quote = quote[:MAX_QUOTE_CHARS]

    pos = _nearest(text, quote, hint)
    if pos >= 0:
        return Aligned(pos, pos + len(quote), quote, "exact", 100.0)

    stripped = quote.strip()
    if stripped != quote:
        pos = _nearest(text, stripped, hint)
        if pos >= 0:
            return Aligned(pos, pos + len(stripped), stripped, "exact", 100.0)

    norm = _normalise(text)
    nquote = _normalise_quote(quote)
    if not nquote or not norm.text:
        return None
    # approximate: normalised offsets are never larger than original ones
    nhint = None if hint is None else min(hint, len(norm.text))
    npos = _nearest(norm.text, nquote, nhint)
    if npos >= 0:
        start, end = _span_from_norm(norm, text, npos, npos + len(nquote))
        if start < end:
            found = text[start:end]
            return Aligned(start, end, found, "fuzzy", round(fuzz.ratio(_normalise_quote(found), nquote), 2))

    if len(nquote) < 12:  # too short to locate fuzzily without false matches
        return None
    res = fuzz.partial_ratio_alignment(nquote, norm.text, score_cutoff=min_similarity)
    if res is None or res.dest_end <= res.dest_start:
        return None
    ds, de = res.dest_start, res.dest_end
    # widen to whole words so the citation never cuts a word in half
    while ds > 0 and norm.text[ds - 1].isalnum() and norm.text[ds].isalnum():
        ds -= 1
    while de < len(norm.text) and norm.text[de - 1].isalnum() and norm.text[de].isalnum():
        de += 1
    start, end = _span_from_norm(norm, text, ds, de)
    if start >= end:
        return None
    found = text[start:end]
    similarity = fuzz.ratio(_normalise_quote(found), nquote)
    if similarity < min_similarity:
        return None
    return Aligned(start, end, found, "fuzzy", round(similarity, 2))


def cite(
    doc: SourceDocument,
    quote: str,
    *,
    hint: int | None = None,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> Citation | None:
    """A verified citation into ``doc`` for ``quote``, or None when the quote is not in the source."""
    a = align(doc.text, quote, hint=hint, min_similarity=min_similarity)
    if a is None:
        return None
    return citation_for_span(doc, a.start, a.end, alignment=a.alignment, similarity=a.similarity)


def citation_for_span(
    doc: SourceDocument,
    start: int,
    end: int,
    *,
    alignment: Alignment = "exact",
    similarity: float = 100.0,
) -> Citation:
    """A citation for a span our own code located (patterns, segmenters)."""
    seg = doc.segment_at(start)
    occurred = seg.occurred_at if seg and seg.occurred_at else doc.occurred_at
    return Citation(
        source_id=doc.id,
        start=start,
        end=end,
        quote=doc.text[start:end],
        alignment=alignment,
        similarity=similarity,
        occurred_at=occurred,
        source_path=doc.path,
        speaker=seg.speaker if seg else None,
    )
