"""The default offline extractor's routing: mail and notes to the classifier, chat and tickets to the rules,
call transcripts to both (the classifier's signals, then each rule signal no classifier signal of its type
already cites). Written from the taxonomy, not from an evaluation document or a trial file."""

from __future__ import annotations

from pathlib import Path

import pytest

from extractors.learned import LearnedExtractor
from extractors.offline import OfflineExtractor, _cited
from extractors.parsers import load_document
from extractors.rules import RuleExtractor

CALL = """WEBVTT

NOTE date: 2026-03-04 Ferncliff Logistics monthly call

00:00:01.000 --> 00:00:06.000
<v Dana Okafor>Morning. Before we start, I should say our budget for next year was cut by a quarter.

00:00:06.500 --> 00:00:12.000
<v Sam Reyes>Understood. How is the rollout going at the Leeds depot?

00:00:12.500 --> 00:00:19.000
<v Dana Okafor>Leeds went live last week and the drivers love the new route screen, honestly.

00:00:19.500 --> 00:00:26.000
<v Dana Okafor>But the invoice you sent charges us for 80 seats and we only have 60, so we are holding payment.

00:00:26.500 --> 00:00:33.000
<v Dana Okafor>Also my manager asked me to get a quote from RouteWise, they came in a lot cheaper.

00:00:33.500 --> 00:00:38.000
<v Sam Reyes>Thanks for telling me. I'll send a corrected invoice today.
"""

MAIL = ("From: Dana Okafor <dana@ferncliff.example>\nTo: Sam Reyes <sam@vendor.example>\n"
        "Date: Wed, 4 Mar 2026 10:00:00 +0000\nSubject: seats\n\n"
        "Hi Sam, the invoice charges us for 80 seats and we only have 60, so we are holding payment.\n\nDana\n")


@pytest.fixture(scope="module")
def extractors() -> tuple[OfflineExtractor, LearnedExtractor, RuleExtractor]:
    return OfflineExtractor(), LearnedExtractor(), RuleExtractor()


def _doc(tmp_path: Path, name: str, text: str, kind: str = "auto"):
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return load_document(str(path), kind=kind), text


def test_transcripts_get_both_decisions_without_double_citations(tmp_path: Path, extractors) -> None:
    off, learned, rules = extractors
    doc, raw = _doc(tmp_path, "2026-03-04-monthly-call.vtt", CALL)
    assert doc.kind == "transcript"
    got = off.extract(doc)
    mine, theirs = learned.extract(doc), rules.extract(doc)
    expected = mine + [s for s in theirs if not _cited(s, mine)]
    assert [(s.type, s.extractor, s.evidence[0].start) for s in got] == \
        [(s.type, s.extractor, s.evidence[0].start) for s in expected]
    assert got and off.extract_batch([doc])[0] == got
    for s in got:
        assert all(raw[e.start : e.end] == e.quote for e in s.evidence)
    # one statement, one signal per type: no two signals of a type cite overlapping text
    for i, a in enumerate(got):
        assert not _cited(a, [b for j, b in enumerate(got) if j != i])


def test_mail_goes_to_the_classifier_and_chat_to_the_rules(tmp_path: Path, extractors) -> None:
    off, learned, rules = extractors
    mail, _ = _doc(tmp_path, "seats.eml", MAIL)
    assert mail.kind == "email"
    assert [s.model_dump() for s in off.extract(mail)] == [s.model_dump() for s in learned.extract(mail)]
    chat, _ = _doc(tmp_path, "chat.txt", "[10:02] Dana: the invoice charges us for 80 seats, we only have 60\n"
                                         "[10:03] Sam: sorry about that, fixing it now\n", kind="chat")
    assert chat.kind == "chat"
    assert [s.model_dump() for s in off.extract(chat)] == [s.model_dump() for s in rules.extract(chat)]


def test_cited_needs_the_same_type_and_overlapping_text(tmp_path: Path, extractors) -> None:
    off, _, _ = extractors
    doc, _ = _doc(tmp_path, "2026-03-04-monthly-call.vtt", CALL)
    got = off.extract(doc)
    a = got[0]
    assert _cited(a, [a])
    assert not _cited(a, [a.model_copy(update={"type": "expansion_interest" if a.type != "expansion_interest"
                                                 else "churn_intent"})])
    far = a.model_copy(update={"evidence": [a.evidence[0].model_copy(update={"start": a.evidence[0].end + 50,
                                                                            "end": a.evidence[0].end + 60})]})
    assert not _cited(a, [far])
