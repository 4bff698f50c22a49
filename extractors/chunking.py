"""Split a document into sentence-aligned chunks within a token budget, keeping offsets into the document.

An LLM sees one chunk (plus a little context from the previous one) at a time; because every chunk keeps its
start/end in the original text, whatever it quotes can be aligned back to the whole document. Sentences
come from :mod:`extractors.segmenter` (the one splitter), so chunks and the rule extractor agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .segmenter import sentence_spans

MAX_CHUNKS_PER_DOCUMENT = 10_000


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text[context_start:end]`` is what the model sees; ``[start, end)`` is the chunk's own span."""

    index: int
    start: int
    end: int
    context_start: int
    tokens: int  # tokens of the chunk's own span (context excluded)

    def view(self, text: str) -> str:
        return text[self.context_start : self.end]


def _split_long(
    text: str, start: int, end: int, max_tokens: int, count: Callable[[str], int]
) -> list[tuple[int, int, int]]:
    """Cut an over-long sentence at whitespace into pieces of at most ``max_tokens`` (approximately)."""
    out: list[tuple[int, int, int]] = []
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+\s*", text[start:end])]
    if not words:
        return [(start, end, count(text[start:end]))]
    piece_start = words[0][0] if words[0][0] == start else start
    piece_tokens = 0
    for ws, we in words:
        t = count(text[ws:we])
        if piece_tokens and piece_tokens + t > max_tokens:
            out.append((piece_start, ws, piece_tokens))
            piece_start, piece_tokens = ws, 0
        piece_tokens += t
    out.append((piece_start, end, piece_tokens))
    return out


def chunk_text(
    text: str,
    max_tokens: int,
    count: Callable[[str], int],
    *,
    context_tokens: int = 0,
    start: int = 0,
    end: int | None = None,
) -> list[Chunk]:
    """Greedy sentence packing: every chunk holds whole sentences up to ``max_tokens`` tokens.

    Chunks cover ``text[start:end]`` (the whole text by default) without gaps; ``context_start`` reaches back over the previous chunk's last
    sentences, at most ``context_tokens`` tokens, so a sentence cut from its neighbour keeps its meaning.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be positive")
    end = len(text) if end is None else min(end, len(text))
    if not text or start >= end:
        return []
    units: list[tuple[int, int, int]] = []  # (start, end, tokens)
    region = text[start:end] if (start, end) != (0, len(text)) else text
    for s, e in ((a + start, b + start) for a, b in sentence_spans(region)):
        t = count(text[s:e])
        if t > max_tokens:
            units.extend(_split_long(text, s, e, max_tokens, count))
        else:
            units.append((s, e, t))

    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    used = 0
    for u in units:
        if current and used + u[2] > max_tokens:
            groups.append(current)
            current, used = [], 0
        current.append(u)
        used += u[2]
    if current:
        groups.append(current)
    if len(groups) > MAX_CHUNKS_PER_DOCUMENT:
        raise ValueError(f"document needs {len(groups)} chunks, over the limit of {MAX_CHUNKS_PER_DOCUMENT}")

    chunks: list[Chunk] = []
    for i, g in enumerate(groups):
        start, end = g[0][0], g[-1][1]
        context_start = start
        if i and context_tokens > 0:
            budget = context_tokens
            for s, _e, t in reversed(groups[i - 1]):
                if t > budget:
                    break
                budget -= t
                context_start = s
        chunks.append(Chunk(i, start, end, context_start, sum(u[2] for u in g)))
    return chunks
