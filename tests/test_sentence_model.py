"""The learned offline extractor on a small B2B customer-success workspace written for this test.

The documents are our own, not from any evaluation set. Each expected signal is one a CSM would name; the
neutral e-mails must stay (almost) quiet. Citations are checked on the files as stored (CRLF kept).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import extractors.learned as rules
from extractors.parsers import load_document

EMAILS = {
    "champion_leaves.eml": (
        "From: Priya Nair <priya@northwind.example>\r\nTo: Sam <sam@vendor.example>\r\nSubject: Personal news\r\n\r\n"
        "Hi Sam,\r\n\r\nI wanted you to hear it from me first: I'm leaving Northwind at the end of the month to join "
        "another company.\r\nMy last day is 28 November.\r\n\r\nBest,\r\nPriya\r\n",
        "champion_departed",
    ),
    "competitor.eml": (
        "From: Tomasz <tomasz@acme.example>\r\nSubject: Renewal planning\r\n\r\nHi,\r\n\r\nHeads up, procurement "
        "asked us to run a comparison and we are currently evaluating Zendesk alongside your platform.\r\n"
        "\r\nThanks,\r\nTomasz\r\n",
        "competitor_mention",
    ),
    "more_licences.eml": (
        "From: Mei <mei@globex.example>\r\nSubject: Quote\r\n\r\nHello,\r\n\r\nCould you send us a quote for 40 "
        "additional licences for the Singapore support team?\r\n\r\nRegards,\r\nMei\r\n",
        "expansion_interest",
    ),
    "cfo_praise.eml": (
        "From: Olu Adeyemi, CFO <olu@initech.example>\r\nSubject: Q3 results\r\n\r\nTeam,\r\n\r\nThe automated "
        "reconciliation saved us about $120,000 this quarter, a fantastic result.\r\n\r\nOlu\r\n",
        "value_confirmed",
    ),
    "not_renew.eml": (
        "From: Karen <karen@umbrella.example>\r\nSubject: Contract\r\n\r\nHi Sam,\r\n\r\nAfter the budget review "
        "we have decided not to renew when the contract ends in March.\r\n\r\nKaren\r\n",
        "churn_intent",
    ),
    "no_reply.eml": (
        "From: José <jose@hooli.example>\r\nSubject: Re: open ticket\r\n\r\nHi,\r\n\r\nStill no reply on my side, "
        "so I'm copying Karen.\r\n\r\nJosé\r\n",
        "unresponsive",
    ),
}
NEUTRAL = {
    "schedule.eml": "Subject: Tuesday\r\n\r\nHi Sam,\r\n\r\nTuesday at 10:00 works for me, I will send the "
    "invite.\r\nSee you then.\r\n\r\nMei\r\n",
    "deck.eml": "Subject: Slides\r\n\r\nHello,\r\n\r\nAttached are the slides from today's session as promised.\r\n"
    "Have a good weekend.\r\n\r\nBest regards,\r\nTomasz\r\n",
    "ooo.eml": "Subject: Out of office\r\n\r\nThank you for your email. I am out of the office until Monday with "
    "limited access to email.\r\n\r\nKind regards,\r\nPriya\r\n",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("b2b")
    for name, body in {**{k: v[0] for k, v in EMAILS.items()}, **NEUTRAL}.items():
        (root / name).write_bytes(body.encode("utf-8"))
    return root


def _extract(path: Path) -> list:
    doc = load_document(str(path), kind="email")
    sigs = rules.LearnedExtractor().extract(doc)
    raw = path.read_bytes().decode("utf-8", errors="replace")
    for s in sigs:
        for c in s.evidence:
            assert raw[c.start : c.end] == c.quote  # offsets index the file as stored
    return sigs


def test_expected_signals_found(workspace: Path) -> None:
    found = {name: {s.type for s in _extract(workspace / name)} for name in EMAILS}
    hits = [name for name, (_, type_) in EMAILS.items() if type_ in found[name]]
    assert len(hits) >= 5, {n: sorted(t) for n, t in found.items()}
    assert "milestone_achieved" not in found["not_renew.eml"]
    assert "product_gap" not in found["no_reply.eml"]


def test_neutral_emails_stay_quiet(workspace: Path) -> None:
    total = sum(len(_extract(workspace / name)) for name in NEUTRAL)
    assert total <= 1


def test_signals_per_email_are_capped(workspace: Path) -> None:
    for name in EMAILS:
        assert len(_extract(workspace / name)) <= rules.MAX_PER_DOC["email"]


def test_deterministic_and_stamped(workspace: Path) -> None:
    a = [s.model_dump() for s in _extract(workspace / "not_renew.eml")]
    b = [s.model_dump() for s in _extract(workspace / "not_renew.eml")]
    assert a == b and a
    assert all(s["extractor_version"] == rules.VERSION for s in a)


def test_encoder_cache_reuses_embeddings() -> None:
    from extractors.encoder import SentenceEncoder

    enc = SentenceEncoder(cache_size=4)
    first = enc.encode(["we will not renew", "thanks for the call", "we will not renew"])
    assert enc.stats["computed"] == 2  # the repeat inside one call is computed once
    again = enc.encode(["we will not renew"])
    assert enc.stats["hits"] == 1 and (again[0] == first[0]).all()
    enc.encode([f"sentence {i}" for i in range(6)])
    assert len(enc._cache) <= 4  # bounded
