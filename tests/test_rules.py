"""The offline rule extractor: per-type cues with negation and hedging, citations, determinism, speed paths."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import extractors.rules as rules
from extractors.base import get_extractor
from extractors.models import Signal, SourceDocument, taxonomy
from extractors.parsers import load_document, parse_text

from conftest import shared_eval_or_skip

EX = rules.RuleExtractor()


def _signals(text: str, kind: str = "notes") -> list[Signal]:
    doc = SourceDocument(kind=kind, text=text)  # type: ignore[arg-type]
    sigs = EX.extract(doc)
    for s in sigs:
        for c in s.evidence:
            assert doc.text[c.start : c.end] == c.quote
    return sigs


def _types(text: str, kind: str = "notes") -> dict[str, Signal]:
    return {s.type: s for s in _signals(text, kind)}


# (type, clear positive sentence, negated or unrelated sentence that must not yield the type)
TABLE = [
    ("churn_intent", "We will not renew our contract when it expires in June.", "We renewed our contract for two more years."),
    ("churn_intent", "Please close my account, I am done.", "There are no plans to cancel our subscription."),
    ("payment_issue", "Our invoice from March has not been paid yet.", "The invoice was paid on time."),
    ("payment_issue", "I was charged twice for the same order and want a refund.", "Where can I read your refund policy?"),
    ("escalation", "I want to speak to a manager about this right now.", "I spoke with the account manager yesterday."),
    ("escalation", "I would like to file a formal complaint.", "We have no complaints so far."),
    ("product_gap", "The export button does not work in the new release.", "The export button works fine now."),
    ("blocker", "We are stuck on the SSO integration and cannot go live.", "The SSO integration went smoothly."),
    ("competitor_mention", "We are evaluating other vendors for next year.", "We evaluated the new dashboard yesterday."),
    ("pricing_objection", "Honestly your pricing is too expensive for a team our size.", "Pricing was never an issue for us."),
    ("procurement_blocker", "The contract is still with legal and not signed.", "Legal signed the contract on Monday."),
    ("champion_departed", "Maria has left the company and we lost our main supporter.", "Maria left a voicemail for you."),
    ("sponsor_disengaged", "Our VP has lost interest and skipped the last two reviews.", "Our VP joined the last two reviews."),
    ("stakeholder_change", "The new CFO will take over the vendor review.", "The CFO reviewed the vendor list."),
    ("unresponsive", "We have not heard back from them since March.", "We heard back from them on Monday."),
    ("meeting_cancelled", "Unfortunately I won't be able to attend tomorrow's call.", "I will attend tomorrow's call."),
    ("meeting_cancelled", "The quarterly review has been postponed.", "The quarterly review went well."),
    ("executive_engagement", "Our CEO will attend the business review next week.", "The review covers the last quarter."),
    ("positive_sentiment", "Thank you so much for your excellent support, the team is delighted.", "Thanks,"),
    ("negative_sentiment", "I am really frustrated and disappointed with how long this is taking.", "I am not worried about the rollout at all."),
    ("goal_defined", "Our goal is to reduce onboarding time by 30 percent.", "The onboarding took a week."),
    ("milestone_achieved", "The rollout is now complete across all regions.", "The rollout starts in May."),
    ("milestone_missed", "The go-live has been delayed to next quarter.", "The go-live is planned for next quarter."),
    ("value_confirmed", "The new workflow saved us 20 hours a week.", "The new workflow has twenty steps."),
    ("expansion_interest", "We plan to add 50 more seats for the support team.", "We have 50 seats for the support team."),
]


def test_table_covers_every_type() -> None:
    assert {t for t, _, _ in TABLE} == set(taxonomy())


@pytest.mark.parametrize(("type_", "positive", "negative"), TABLE, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(TABLE)])
def test_table_positive_and_negative(type_: str, positive: str, negative: str) -> None:
    found = _types(positive)
    assert type_ in found, f"{type_} not found in {positive!r}: {sorted(found)}"
    sig = found[type_]
    assert 0 < sig.confidence <= 1 and 0 <= sig.severity <= 1
    assert sig.summary.startswith(type_.replace("_", " ").capitalize())
    assert sig.extractor == "rules" and sig.extractor_version == rules.VERSION
    assert sig.evidence[0].quote == positive  # one sentence: the whole sentence is the quote
    assert type_ not in _types(negative), f"{type_} wrongly found in {negative!r}"


@pytest.mark.parametrize(
    ("type_", "plain", "hedged"),
    [
        ("churn_intent", "We will cancel our subscription.", "If the price goes up again we might cancel our subscription."),
        ("competitor_mention", "We are looking elsewhere.", "If nothing changes we may be looking elsewhere."),
        ("pricing_objection", "The price increase is a problem.", "Perhaps the price increase is a problem."),
    ],
)
def test_hedging_lowers_confidence(type_: str, plain: str, hedged: str) -> None:
    a, b = _types(plain), _types(hedged)
    assert type_ in a and type_ in b
    assert b[type_].hedged and not a[type_].hedged
    assert b[type_].confidence < a[type_].confidence


def test_negation_scope_is_the_clause() -> None:
    # the negator belongs to another clause: the churn statement stands
    assert "churn_intent" in _types("I have no doubts, we will not renew the contract.")
    assert "negative_sentiment" not in _types("No worries, we are not concerned at all.")


def test_questions_weaken_claims_but_not_requests() -> None:
    claim, question = _types("They are switching to another vendor."), _types("Are they switching to another vendor?")
    assert question["competitor_mention"].confidence < claim["competitor_mention"].confidence
    ask = _types("How can I delete my account?", "chat")
    assert ask["churn_intent"].confidence == _types("Delete my account.", "chat")["churn_intent"].confidence


def test_one_signal_per_type_per_sentence() -> None:
    sigs = _signals("We will not renew and we will cancel our subscription and close the account.")
    assert [s.type for s in sigs].count("churn_intent") == 1


def test_chat_stays_quiet_on_personal_emotion_but_flags_service_complaints() -> None:
    assert not [s for s in _signals("My brother ate my sandwich again, so annoying lol", "chat") if s.polarity == -1]
    assert not _signals("Can't wait for the weekend!", "chat")
    complaint = _signals("@ShopHelp my order still hasn't arrived and nobody replies, really disappointed", "chat")
    assert any(s.polarity == -1 for s in complaint)


def test_resolved_problem_is_not_a_problem() -> None:
    assert "product_gap" not in _types("Thanks for fixing the login issue so quickly!", "chat")


def test_crlf_and_non_ascii_citations_hold() -> None:
    text = "Hallo Jörg,\r\n\r\nwir sind sehr zufrieden. However the sync keeps crashing\r\nsince the update and we are\r\nfrustrated. \u201cWe will not renew\u201d, said the CFO.\r\n"
    sigs = _signals(text, "email")
    types = {s.type for s in sigs}
    assert {"product_gap", "churn_intent"} <= types
    for s in sigs:
        assert "\r\n\r\n" not in s.evidence[0].quote


def test_email_headers_are_not_evidence() -> None:
    text = (
        "From: ceo@example.com\r\nTo: cancel-team@example.com\r\nSubject: We are frustrated\r\n\r\n"
        "Hi team, the report looks fine.\r\n"
    )
    doc = parse_text(text, kind="email")
    sigs = EX.extract(doc)
    header_end = text.index("\r\n\r\n")
    for s in sigs:
        c = s.evidence[0]
        assert doc.text[c.start : c.end] == c.quote
        assert c.start > header_end or c.quote == "We are frustrated"


def test_deterministic() -> None:
    text = "The export does not work. We are frustrated and evaluating other vendors. Thanks for your help!"
    a = [s.model_dump() for s in _signals(text, "email")]
    b = [s.model_dump() for s in rules.RuleExtractor().extract(SourceDocument(kind="email", text=text))]
    assert a == b and a


def test_registered_and_fields() -> None:
    ex = get_extractor("rules")
    assert ex.name == "rules"
    doc = SourceDocument(kind="notes", text="We will not renew.", account_id="acme")
    sig = ex.extract(doc)[0]
    assert sig.account_id == "acme" and sig.source_id == doc.id and sig.verified
    assert "not renew" in sig.summary


def test_prefilter_never_changes_results() -> None:
    """The literal prefilter must be a pure speed-up: same signals as running every rule on every sentence."""
    corpus = [p for _, p, n in TABLE for p in (p, n)] + [
        "grrr this is the worst service ever!!! :(",
        "I can't log in and the app keeps crashing, please fix it asap",
        "Why is it so hard to cancel? Ugh.",
        "We decided to go with the cheaper option because the budget is tight.",
    ]
    text = "\n\n".join(corpus)
    doc = SourceDocument(kind="chat", text=text)
    fast = [s.model_dump() for s in EX.extract(doc)]
    c = rules._compiled()
    original = rules._candidates
    try:
        rules._candidates = lambda comp, sents: [set(range(len(c.rules))) for _ in sents]  # type: ignore[assignment]
        slow = [s.model_dump() for s in EX.extract(doc)]
    finally:
        rules._candidates = original  # type: ignore[assignment]
    assert fast == slow


def test_required_literals_are_necessary() -> None:
    rng = random.Random(7)
    for rule in rules._compiled().rules:
        lits = rules._required_literals(rule.core or rule.source)
        if lits is None:
            continue
        # every match in a sample of sentences contains one of the literals
        for sentence in [p for _, p, _ in TABLE] + ["".join(rng.choice("abc ont'") for _ in range(40))]:
            for m in rule.rx.finditer(sentence.lower()):
                assert any(lit in m.group() for lit in lits), (rule.source, m.group(), lits)


_words = st.sampled_from(
    ["we", "will", "not", "renew", "cancel", "my", "account", "refund", "error", "great", "thanks", "for", "help",
     "frustrated", "\r\n", "=\r\n", "> ", ".", "!", "?", ",", "caf\u00e9", "\u2019", "price", "too", "expensive",
     "meeting", "postponed", "Subject: hi\n", "no", "problem", "  ", "\t", "😀"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_words, max_size=50), st.sampled_from(["email", "chat", "transcript", "notes"]))
def test_property_every_citation_holds(words: list[str], kind: str) -> None:
    text = " ".join(words)
    doc = SourceDocument(kind=kind, text=text)  # type: ignore[arg-type]
    sigs = EX.extract(doc)
    seen = set()
    for s in sigs:
        assert s.evidence and s.verified
        c = s.evidence[0]
        assert text[c.start : c.end] == c.quote
        assert 0 <= s.confidence <= 1 and 0 <= s.severity <= 1
        assert (s.type, c.start) not in seen
        seen.add((s.type, c.start))


def test_shared_eval_sample_citation_validity() -> None:
    root = shared_eval_or_skip()
    kinds = {"complaints": "chat", "bitext": "chat", "enron_tone": "email", "enron_gold": "email", "qmsum": "transcript"}
    total = valid = 0
    for suite, kind in kinds.items():
        labels = root / "data" / suite / "labels.jsonl"
        if not labels.exists():
            continue
        rows = [json.loads(line) for line in labels.read_text("utf-8").splitlines()[: 3 if suite == "qmsum" else 25]]
        for row in rows:
            path = Path(labels.parent, row["doc"])
            text = path.read_bytes().decode("utf-8", errors="replace")
            for sig in EX.extract(load_document(str(path), kind=kind)):
                total += 1
                valid += all(0 <= c.start < c.end <= len(text) and text[c.start : c.end] == c.quote for c in sig.evidence)
                assert sig.type in taxonomy()
    assert total > 0
    assert valid == total


def test_sentiment_thresholds_come_from_the_cross_validated_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Extraction applies the shipped cross-validated thresholds; moving one changes what is emitted."""
    import json
    from importlib import resources

    shipped = json.loads(resources.files("extractors").joinpath(rules.THRESHOLDS_FILE).read_text("utf-8"))
    assert rules.sentiment_thresholds()["negative"]["email"] == shipped["sentiment_thresholds"]["negative"]["email"]
    assert shipped["sentiment_cv"]["long_form/negative"]["fold_choices"]  # chosen per fold, not read off dev data
    doc = SourceDocument(kind="email", text="I am worried about the rollout.")
    lex = rules._sentence_hits(rules._compiled(), rules.sentences(doc)[0], set(range(len(rules._compiled().rules))), False)[1]
    score = rules._sentiment(rules._compiled(), rules.sentences(doc)[0], lex)[0]
    assert score > 0
    high = {"negative": {"email": score + 0.5}, "positive": {}}
    low = {"negative": {"email": max(0.1, score - 0.5)}, "positive": {}}
    monkeypatch.setattr(rules, "sentiment_thresholds", lambda: {**rules.DEFAULT_SENTIMENT_THRESHOLDS, **high})
    assert "negative_sentiment" not in {s.type for s in EX.extract(doc)}
    monkeypatch.setattr(rules, "sentiment_thresholds", lambda: {**rules.DEFAULT_SENTIMENT_THRESHOLDS, **low})
    assert "negative_sentiment" in {s.type for s in EX.extract(doc)}


def test_condition_after_the_cue_hedges_it() -> None:
    plain = _types("We will not renew the contract.")["churn_intent"]
    conditional = _types("We will not renew the contract unless the sync bug is fixed.")["churn_intent"]
    assert conditional.hedged and conditional.confidence < plain.confidence
