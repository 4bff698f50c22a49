"""Sentence segmentation: offsets into the original text, email artefacts handled, headers skipped."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from extractors.models import Segment, SourceDocument
from extractors.parsers import parse_text
from extractors.segmenter import MAX_SENTENCE_CHARS, normalise, sentences

EMAIL = (
    "Message-ID: <1.2@example.com>\r\n"
    "Date: Wed, 14 Mar 2001 05:47:00 -0800 (PST)\r\n"
    "From: ann@example.com\r\n"
    "To: bob@example.com\r\n"
    "Subject: Re: Renewal worries\r\n"
    "\r\n"
    "Bob,\r\n"
    "\r\n"
    "Mr. Smith called about the mark=\r\n"
    "et=20\r\n"
    "update. We are worried about the\r\n"
    "renewal, e.g. the price. Are you free?\r\n"
    "\r\n"
    "-----Original Message-----\r\n"
    "From: Carl Jones\r\n"
    "Sent: Monday, May 14, 2001 1:37 AM\r\n"
    "To: Ann\r\n"
    "Subject: Pricing\r\n"
    "\r\n"
    "> The quote is too high\r\n"
    "> for us this year.\r\n"
)


def _doc(text: str, kind: str = "email") -> SourceDocument:
    return SourceDocument(kind=kind, text=text)  # type: ignore[arg-type]


def test_email_sentences_keep_offsets_and_skip_headers() -> None:
    doc = _doc(EMAIL)
    sents = sentences(doc)
    for s in sents:
        quote = doc.text[s.start : s.end]
        assert quote and not quote[0].isspace() and not quote[-1].isspace()
    norms = [s.norm for s in sents]
    # quoted-printable soft break and =20 joined, CRLF collapsed, abbreviations not split
    assert "mr. smith called about the market update." in norms
    assert "we are worried about the renewal, e.g. the price." in norms
    assert "are you free?" in norms
    # header lines are not prose; forwarded header lines neither
    assert not any("ann@example.com" in n or "message-id" in n or "sent: monday" in n for n in norms)
    assert not any(n.startswith("from:") or n.startswith("to:") for n in norms)
    # '>' quote prefixes removed inside the sentence, lines joined
    assert "the quote is too high for us this year." in norms
    # Subject lines are kept, flagged, without the Re: prefix
    subjects = [s for s in sents if s.subject]
    assert [doc.text[s.start : s.end] for s in subjects] == ["Renewal worries", "Pricing"]
    question = [s for s in sents if s.question]
    assert [s.norm for s in question] == ["are you free?"]


def test_parsed_email_uses_segments() -> None:
    doc = parse_text(EMAIL, kind="email")
    sents = sentences(doc)
    assert sents, "the parsed email has prose"
    for s in sents:
        assert doc.text[s.start : s.end].strip() == doc.text[s.start : s.end]
        assert not doc.text[s.start : s.end].startswith("Message-ID")


def test_transcript_sentences_stay_inside_utterances() -> None:
    first = "We decided to go with the blue design . It costs twelve euros ."
    second = "OK . Fine by me ."
    text = f"Anna: {first}\nBen: {second}\n"
    a, b = text.index(first), text.index(second)
    segs = [
        Segment(start=a, end=a + len(first), role="utterance", speaker="Anna"),
        Segment(start=b, end=b + len(second), role="utterance", speaker="Ben"),
    ]
    doc = SourceDocument(kind="transcript", text=text, segments=segs)
    sents = sentences(doc)
    assert [doc.text[s.start : s.end] for s in sents] == [
        "We decided to go with the blue design .",
        "It costs twelve euros .",
        "OK .",
        "Fine by me .",
    ]


def test_non_ascii_and_typographic_quotes() -> None:
    text = "Das Produkt ist großartig. We don\u2019t like the new\u00a0pricing \u2014 at all!"
    doc = _doc(text, "chat")
    sents = sentences(doc)
    assert [doc.text[s.start : s.end] for s in sents] == [
        "Das Produkt ist großartig.",
        "We don\u2019t like the new\u00a0pricing \u2014 at all!",
    ]
    assert sents[1].norm == "we don't like the new pricing - at all!"


def test_long_runs_are_cut() -> None:
    text = ", ".join(["word " * 8] * 40)
    doc = _doc(text, "notes")
    sents = sentences(doc)
    assert len(sents) > 1
    assert all(s.end - s.start <= MAX_SENTENCE_CHARS + 5 for s in sents)


def test_normalise_maps_back() -> None:
    text = "A  b=\r\nc\r\n> d\r\n\r\ne"
    nt = normalise(text, 0, len(text))
    assert nt.text == "a bc d\ne"
    for i, ch in enumerate(nt.text):
        if ch not in " \n":
            assert text[nt.to_original(i)].lower() == ch


_pieces = st.sampled_from(
    ["Hello", "world", ".", "!", "?", " ", "  ", "\r\n", "\n", "\r\n\r\n", "=\r\n", "=20", "> ", "Mr.", "e.g.",
     "caf\u00e9", "\u2019", "\u00a0", "\t", "Subject: x\n", "From: a@b.c\n", "ß", "İ", ":", "-----"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_pieces, max_size=60), st.sampled_from(["email", "chat", "notes"]))
def test_property_sentences_index_original_text(parts: list[str], kind: str) -> None:
    text = "".join(parts)
    doc = _doc(text, kind)
    sents = sentences(doc)
    prev_end = -1
    for s in sents:
        assert 0 <= s.start < s.end <= len(text)
        assert s.start >= prev_end  # ordered, non-overlapping
        prev_end = s.end
        quote = text[s.start : s.end]
        assert quote.strip() == quote
        assert s.norm and s.norm.strip(" \n") == s.norm
