"""Sentence-aware chunking within a token budget, offsets into the whole document."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractors.chunking import chunk_text, sentence_spans
from extractors.tokens import count_tokens, encoding_for


def _count(s: str) -> int:
    return count_tokens(s, "gpt-4o-mini")


TEXT = (
    "Hello team. We went live on Monday and the rollout is done! "
    "Is the invoice for March paid? The CFO asked twice.\r\n\r\n"
    "Next steps: schedule the QBR. Budget for next year is being cut by 20%. "
    "We are evaluating other vendors. Thanks, Ann"
)


def test_offline_encoding_works() -> None:
    enc = encoding_for("gpt-4o-mini")
    assert enc.name == "o200k_base"
    assert enc.decode(enc.encode("renewal at risk")) == "renewal at risk"
    assert encoding_for("some-local-llama").name == "o200k_base"


def test_sentence_spans_cover_text_without_gaps() -> None:
    spans = sentence_spans(TEXT)
    assert spans[0][0] == 0 and spans[-1][1] == len(TEXT)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    starts = [TEXT[s:e].strip() for s, e in spans]
    assert "Is the invoice for March paid?" in starts
    assert "We are evaluating other vendors." in starts


def test_chunks_respect_budget_and_sentences() -> None:
    chunks = chunk_text(TEXT, 20, _count, context_tokens=8)
    assert len(chunks) > 2
    assert chunks[0].start == 0 and chunks[-1].end == len(TEXT)
    bounds = {e for _s, e in sentence_spans(TEXT)}
    for prev, cur in zip(chunks, chunks[1:]):
        assert prev.end == cur.start  # no gap, no overlap of own spans
        assert prev.end in bounds  # every cut is at a sentence boundary
        assert prev.start <= cur.context_start <= cur.start  # context reaches back into the previous chunk only
        assert _count(TEXT[cur.context_start : cur.start]) <= 8
    for c in chunks:
        assert c.tokens <= 20
        assert c.view(TEXT) == TEXT[c.context_start : c.end]
    assert chunks[0].context_start == 0


def test_context_is_whole_sentences() -> None:
    chunks = chunk_text(TEXT, 25, _count, context_tokens=30)
    starts = {s for s, _e in sentence_spans(TEXT)}
    assert any(c.context_start < c.start for c in chunks)
    assert all(c.context_start in starts for c in chunks)


def test_over_long_sentence_is_split_at_whitespace() -> None:
    text = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_text(text, 50, _count)
    assert len(chunks) > 5
    assert "".join(text[c.start : c.end] for c in chunks) == text
    for c in chunks:
        assert c.tokens <= 50
        assert c.start == 0 or text[c.start - 1] == " "  # never cuts a word


def test_single_chunk_when_it_fits_and_empty_text() -> None:
    [only] = chunk_text(TEXT, 10_000, _count, context_tokens=50)
    assert (only.start, only.end, only.context_start) == (0, len(TEXT), 0)
    assert chunk_text("", 100, _count) == []
    with pytest.raises(ValueError):
        chunk_text(TEXT, 0, _count)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Yes.", "No!", "We will cancel.", "\r\n\r\n", " ", "long words here", "Why?", "é"]),
                max_size=60),
       st.integers(min_value=3, max_value=40))
def test_chunks_always_tile_the_text(parts: list[str], budget: int) -> None:
    text = "".join(parts)
    chunks = chunk_text(text, budget, _count, context_tokens=5)
    if not text:
        assert chunks == []
        return
    assert "".join(text[c.start : c.end] for c in chunks) == text
    assert all(c.context_start <= c.start < c.end for c in chunks)
