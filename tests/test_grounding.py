"""Grounding: whatever align() returns slices the original text to exactly its quote."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractors.grounding import align, cite
from extractors.models import Segment, SourceDocument

TEXT = (
    "From: maria@acme.example\r\nSubject: Renewal\r\n\r\n"
    "Hi team,\r\nOur champion  Maria has left the company.\r\n"
    "We\u2019re evaluating Globex as an alternative \u2014 pricing is a concern.\r\n"
    "Stra\u00dfe budget cut: we will not renew at this price.\r\n"
)


@pytest.mark.parametrize(
    ("quote", "alignment", "expected"),
    [
        ("Our champion  Maria has left the company.", "exact", "Our champion  Maria has left the company."),
        ("our champion maria has left the company.", "fuzzy", "Our champion  Maria has left the company."),
        ("We're evaluating Globex as an alternative", "fuzzy", "We\u2019re evaluating Globex as an alternative"),
        ("alternative - pricing is a concern", "fuzzy", "alternative \u2014 pricing is a concern"),
        ("we will not renw at this price", "fuzzy", "we will not renew at this price"),
        ("  we will not renew at this price.  ", "exact", "we will not renew at this price."),
        ("STRASSE budget cut", "fuzzy", "Stra\u00dfe budget cut"),
    ],
)
def test_align_table(quote: str, alignment: str, expected: str) -> None:
    a = align(TEXT, quote)
    assert a is not None
    assert TEXT[a.start : a.end] == a.quote == expected
    assert a.alignment == alignment
    assert 90 <= a.similarity <= 100


@pytest.mark.parametrize(
    "quote",
    ["", "   ", "the customer loves the new dashboard", "xyz", "renew"[:2], "Initech signed a three-year deal"],
)
def test_align_rejects_what_is_not_there(quote: str) -> None:
    a = align(TEXT, quote)
    if a is not None:  # a very short quote may legitimately occur; it must still be verbatim
        assert TEXT[a.start : a.end] == a.quote
    if quote.strip() and quote not in TEXT and len(quote) > 5:
        assert a is None


def test_hint_picks_the_nearest_repeat() -> None:
    text = "we will not renew. later: we will not renew. end: we will not renew."
    second = text.index("we will not renew", 5)
    a = align(text, "we will not renew", hint=second + 2)
    assert a is not None and a.start == second
    assert align(text, "we will not renew").start == 0  # type: ignore[union-attr]


def test_offsets_claimed_elsewhere_are_ignored() -> None:
    a = align(TEXT, "pricing is a concern", hint=0)
    assert a is not None and TEXT[a.start : a.end] == "pricing is a concern"


def test_cite_fills_segment_context() -> None:
    body = TEXT.index("Hi team")
    doc = SourceDocument(
        kind="email",
        text=TEXT,
        segments=[Segment(start=body, end=len(TEXT), role="body", speaker="Maria")],
        path="x.eml",
    )
    c = cite(doc, "we will not renew at this price")
    assert c is not None and c.holds_in(TEXT)
    assert c.source_id == doc.id and c.speaker == "Maria" and c.source_path == "x.eml"
    assert cite(doc, "a sentence that does not occur anywhere in it") is None


def test_long_document_aligns_in_milliseconds() -> None:
    rng = random.Random(7)
    words = "account renewal budget team meeting product update contract usage champion".split()
    filler = " ".join(rng.choice(words) for _ in range(8000))
    text = filler[:25000] + " Sadly our sponsor Dana retired last week. " + filler[25000:50000]
    start = time.perf_counter()
    for q in ("Sadly our sponsor Dana retired last week.", "sadly our  sponsor dana retired", "Sadly our sponser Dana retird last week"):
        a = align(text, q)
        assert a is not None and text[a.start : a.end] == a.quote
    # generous bound: this is a smoke check, the benchmark measures properly
    assert time.perf_counter() - start < 1.0


_alphabet = st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "Cc", "S"))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=_alphabet, max_size=400), quote=st.text(alphabet=_alphabet, max_size=60))
def test_property_never_returns_a_slice_that_differs(text: str, quote: str) -> None:
    a = align(text, quote)
    if a is not None:
        assert 0 <= a.start < a.end <= len(text)
        assert text[a.start : a.end] == a.quote


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet=_alphabet, min_size=20, max_size=400),
    data=st.data(),
)
def test_property_substrings_are_found_exactly(text: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(text) - 1))
    j = data.draw(st.integers(i + 1, len(text)))
    quote = text[i:j]
    a = align(text, quote, hint=i)
    if quote.strip():
        assert a is not None and a.alignment == "exact"
        assert text[a.start : a.end] == a.quote
