"""Metadata signals: computed from who wrote when, dated from the documents, cited verbatim."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from extractors.base import get_extractor
from extractors.metadata import MetadataExtractor
from extractors.models import Signal, SourceDocument
from extractors.parsers import load_document, load_documents, parse_text

SOURCES = Path(__file__).resolve().parent / "fixtures" / "sources"


def email(frm: str, to: str, when: str, subject: str, body: str, cc: str = "") -> SourceDocument:
    lines = [f"From: {frm}", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines += [f"Date: {when}", f"Subject: {subject}", "", body, ""]
    return parse_text("\r\n".join(lines), kind="email", path=f"{subject}.eml", account_id="globex")


def check(signals: list[Signal], docs: list[SourceDocument]) -> None:
    by_id = {d.id: d for d in docs}
    for s in signals:
        assert s.evidence and s.verified
        doc = by_id[s.source_id]
        for c in s.evidence:
            assert doc.text[c.start : c.end] == c.quote
        dates = {d.occurred_at for d in docs} | {seg.occurred_at for d in docs for seg in d.segments}
        assert s.occurred_at in dates  # a real date from the documents, never the clock


ANA = "Ana Souza <ana@acme.io>"
LILY = "Lily Ng <lily.ng@globex.com>"
RAJ = "Raj Patel <raj@globex.com>"


def thread() -> list[SourceDocument]:
    return [
        email(ANA, LILY, "Mon, 15 Jan 2024 09:00:00 +0000", "Onboarding plan", "Here is the plan. Thanks."),
        email(LILY, ANA, "Tue, 16 Jan 2024 10:00:00 +0000", "Re: Onboarding plan", "Looks great."),
        email(ANA, LILY, "Mon, 05 Feb 2024 09:00:00 +0000", "Quarterly review", "Could we meet next week?"),
    ]


def test_unresponsive_after_threshold_cites_last_unanswered_message() -> None:
    docs = thread()
    ex = MetadataExtractor(unresponsive_days=14, vendor_domains=("acme.io",))
    assert ex.extract_account(docs, as_of=date(2024, 2, 18)) == []  # 13 days
    sigs = ex.extract_account(docs, as_of=date(2024, 2, 25))
    assert [s.type for s in sigs] == ["unresponsive"]
    s = sigs[0]
    check(sigs, docs)
    assert s.evidence[0].quote == "Quarterly review" and s.source_id == docs[2].id
    assert s.occurred_at == datetime(2024, 2, 5, 9, 0, tzinfo=UTC)
    assert s.category == "relationship" and s.polarity == -1 and s.extractor == "metadata"
    assert "20 days" in s.summary and "2024-01-16" in s.summary


def test_customer_reply_cancels_but_only_if_dated_on_or_before_as_of() -> None:
    docs = [*thread(), email(LILY, ANA, "Mon, 04 Mar 2024 08:00:00 +0000", "Re: Quarterly review", "Sorry, busy.")]
    ex = MetadataExtractor(unresponsive_days=14, vendor_domains=("acme.io",))
    assert ex.extract_account(docs, as_of=date(2024, 3, 10)) == []
    # the reply is in the future of this as-of date: it must not be used
    assert [s.type for s in ex.extract_account(docs, as_of=date(2024, 3, 1))] == ["unresponsive"]


def test_follow_ups_and_configured_sides_raise_confidence() -> None:
    docs = thread()
    configured = MetadataExtractor(vendor_domains=("acme.io",)).extract_account(docs, as_of=date(2024, 3, 1))
    inferred = MetadataExtractor(vendor_domains=("acme.io",), vendor_inferred=True).extract_account(
        docs, as_of=date(2024, 3, 1))
    assert configured[0].confidence > inferred[0].confidence
    assert MetadataExtractor().extract_account(docs, as_of=date(2024, 3, 1)) == []  # sides never guessed per account
    more = [*docs, email(ANA, LILY, "Mon, 12 Feb 2024 09:00:00 +0000", "Following up", "Any news?")]
    followed = MetadataExtractor(vendor_domains=("acme.io",)).extract_account(more, as_of=date(2024, 3, 1))
    assert followed[0].confidence > configured[0].confidence
    assert followed[0].evidence[0].quote == "Following up"
    check(followed, more)


def test_no_clock_without_as_of_uses_latest_document_date() -> None:
    docs = [*thread(), email(ANA, LILY, "Mon, 04 Mar 2024 09:00:00 +0000", "Checking in", "Hello again.")]
    ex = MetadataExtractor(vendor_domains=("acme.io",))
    a = ex.extract_account(docs)
    b = ex.extract_account(list(reversed(docs)))
    assert [s.model_dump() for s in a] == [s.model_dump() for s in b]  # deterministic, order-independent
    # the latest document is a vendor message sent 0 days before "now": not yet unresponsive
    assert a == []
    assert ex.extract_account(thread()) == []


def test_tied_domains_give_no_vendor_relative_signal() -> None:
    docs = [
        email(ANA, LILY, "Mon, 15 Jan 2024 09:00:00 +0000", "One", "a"),
        email(LILY, ANA, "Tue, 16 Jan 2024 09:00:00 +0000", "Two", "b"),
    ]
    assert MetadataExtractor().extract_account(docs, as_of=date(2024, 6, 1)) == []


def sponsor_docs() -> list[SourceDocument]:
    docs = []
    for day in (2, 5, 9, 12):
        docs.append(email(LILY, ANA, f"{day:02d} Jan 2024 10:00:00 +0000", f"Plan {day}", f"Status {day}. Fine."))
        docs.append(email(ANA, LILY, f"{day:02d} Jan 2024 12:00:00 +0000", f"Re: Plan {day}", "Noted."))
    for day in (1, 10, 20):
        docs.append(email(RAJ, ANA, f"{day:02d} Mar 2024 10:00:00 +0000", f"Ops {day}", "Ops question."))
        docs.append(email(ANA, RAJ, f"{day:02d} Mar 2024 11:00:00 +0000", f"Re: Ops {day}", "Answer."))
    return docs


def test_sponsor_disengaged_when_frequent_contact_vanishes_while_others_continue() -> None:
    docs = sponsor_docs()
    ex = MetadataExtractor(unresponsive_days=14, vendor_domains=("acme.io",))
    sigs = [s for s in ex.extract_account(docs, as_of=date(2024, 3, 25)) if s.type == "sponsor_disengaged"]
    assert len(sigs) == 1
    s = sigs[0]
    check(sigs, docs)
    assert s.evidence[0].quote == "Plan 12"
    assert s.occurred_at == datetime(2024, 1, 12, 10, 0, tzinfo=UTC)
    assert 0.4 <= s.confidence <= 0.7 and "Lily Ng" in s.summary
    # still copied on a later message: not vanished
    cc_docs = [*docs, email(ANA, RAJ, "21 Mar 2024 11:00:00 +0000", "Update", "FYI.", cc=LILY)]
    assert not [s for s in ex.extract_account(cc_docs, as_of=date(2024, 3, 25)) if s.type == "sponsor_disengaged"]


def test_stakeholder_change_needs_history_and_a_senior_title() -> None:
    docs = sponsor_docs()
    new = email("Dana Cho <dana@globex.com>", ANA, "22 Mar 2024 09:00:00 +0000", "Introduction",
                "Hi Ana,\r\nI now own the vendor relationship.\r\n\r\nDana Cho\r\nVP of Operations, Globex")
    ex = MetadataExtractor(unresponsive_days=14, vendor_domains=("acme.io",))
    sigs = [s for s in ex.extract_account([*docs, new], as_of=date(2024, 3, 25)) if s.type == "stakeholder_change"]
    assert [s.evidence[0].quote for s in sigs] == ["VP of Operations, Globex"]
    assert sigs[0].polarity == 0 and sigs[0].occurred_at == datetime(2024, 3, 22, 9, 0, tzinfo=UTC)
    check(sigs, [*docs, new])
    untitled = email("Dana Cho <dana@globex.com>", ANA, "22 Mar 2024 09:00:00 +0000", "Introduction", "Hi Ana,\r\nDana")
    assert not [s for s in ex.extract_account([*docs, untitled], as_of=date(2024, 3, 25)) if s.type == "stakeholder_change"]


def test_registered_extractor_works_on_one_mbox_document() -> None:
    ex = get_extractor("metadata", vendor_domains=["acme.io"])
    assert isinstance(ex, MetadataExtractor) and ex.name == "metadata"
    doc = load_document(SOURCES / "thread.mbox")
    assert ex.extract(doc) == []  # as of its own latest date the last vendor mail is 0 days old
    sigs = ex.extract_account([doc], as_of=date(2024, 3, 1))
    assert [(s.type, s.evidence[0].quote) for s in sigs] == [
        ("unresponsive", "Could we schedule the quarterly review next week?")
    ]
    check(sigs, [doc])
    per_message = load_documents(SOURCES / "thread.mbox")
    sigs2 = ex.extract_account(per_message, as_of=date(2024, 3, 1))
    assert [(s.type, s.evidence[0].quote) for s in sigs2] == [("unresponsive", "Quarterly review")]
    check(sigs2, per_message)


def test_chat_names_are_resolved_to_addresses_across_documents(tmp_path: Path) -> None:
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps({"messages": [
        {"author": "Lily Ng", "sent_at": "2024-01-10T10:00:00Z", "text": "Ping."},
        {"author": "Ana Souza", "sent_at": "2024-01-20T10:00:00Z", "text": "Any update on the rollout? Thanks."},
    ]}))
    docs = [*thread()[:2], load_document(chat)]
    sigs = MetadataExtractor(vendor_domains=("acme.io",)).extract_account(docs, as_of=date(2024, 2, 10))
    assert [(s.type, s.evidence[0].quote) for s in sigs] == [("unresponsive", "Any update on the rollout?")]
    check(sigs, docs)


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        MetadataExtractor(unresponsive_days=0)


def test_vendor_domains_from_a_comma_separated_string() -> None:
    ex = MetadataExtractor(vendor_domains=" Acme.io , @acme.com ")
    assert ex.vendor_domains == ("acme.io", "acme.com")
    assert [s.type for s in ex.extract_account(thread(), as_of=date(2024, 3, 1))] == ["unresponsive"]
