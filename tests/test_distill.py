"""``healthtrace extractor distill`` against the loopback fake OpenAI endpoint as the teacher: a stratified
sample, only verified claims become training data, a refit, the agreement report on the held-out part, a new
version (origin distill) that can be activated; ``--dry-run`` sends nothing and ``--max-tokens`` caps the spend.

The workspace documents are written here the way CSMs and customers write (never from evaluation data); the
refit uses the small taxonomy-written corpus of tests/small_corpus.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, answer, count_prompt_tokens, pieces
from small_corpus import write_small_corpus
from typer.testing import CliRunner

from api.settings import get_settings

INVENTED = "we are cancelling every single licence tomorrow morning"
TEACHER = [  # (type, quote) the fake teacher reports wherever the quote is in a piece
    ("competitor_mention", "evaluating Freshdesk as an alternative"),
    ("competitor_mention", "Totango offered them a free pilot"),
    ("churn_intent", "not to renew the contract"),
    ("churn_intent", "reduce our seats from 40 to 10"),
    ("champion_departed", "has left the company"),
    ("champion_departed", "is leaving us at the end of the month"),
    ("expansion_interest", "quote for 25 more licences"),
    ("expansion_interest", "roll the product out to the Berlin office"),
    ("meeting_cancelled", "cancelled our quarterly business review"),
    ("meeting_cancelled", "postpone Thursday's call"),
]
BODIES = {
    "acme": [
        "We are evaluating Freshdesk as an alternative before the renewal.\nThe onboarding went fine otherwise.",
        "Jonas has left the company, so please send the invoices to me from now on.",
        "Could you send a quote for 25 more licences for the support desk?\nThanks for the quick help last week.",
        "Elena cancelled our quarterly business review again, she is swamped with the audit.",
        "Finance told me we will reduce our seats from 40 to 10 at the renewal in June.",
        "Lunch is booked for Wednesday, see you at the office.",
    ],
    "globex": [
        "Honestly, Totango offered them a free pilot and the team is tempted.",
        "Carla is leaving us at the end of the month, her replacement is not named yet.",
        "We want to roll the product out to the Berlin office next quarter.",
        "I have to postpone Thursday's call, something urgent came up with a client.",
        "Leadership has decided not to renew the contract when it ends in March.",
        "Attached are the notes from the training session for your records.",
    ],
}


def _email(i: int, account: str, body: str) -> str:
    return (f"From: Customer {i} <c{i}@{account}.example>\nTo: Sam <sam@vendor.example>\nSubject: Update {i}\n"
            f"Date: Mon, {i + 1} Apr 2024 09:00:00 +0000\n\nHi Sam,\n\n{body}\n\nBest regards,\nCustomer {i}\n")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "accounts.csv").parent.mkdir(parents=True)
    (ws / "accounts.csv").write_text("account_id,name\nacme,Acme\nglobex,Globex\n")
    for account, bodies in BODIES.items():
        folder = ws / "documents" / account
        folder.mkdir(parents=True)
        for i, body in enumerate(bodies):
            if i % 3 == 2:  # a third of them are the CSM's call notes
                (folder / f"2024-04-{i + 1:02d}-call-notes.md").write_text(f"# Call notes\n\n- {body}\n")
            else:
                (folder / f"2024-04-{i + 1:02d}-mail.txt").write_text(_email(i, account, body))
    return ws


def teacher(req: dict[str, Any]) -> Any:
    """Reports every table quote found, and one invented quote per piece (it must never be learnt)."""
    out = []
    for pid, text in pieces(req).items():
        out += [{"piece": pid, "type": t, "quote": q, "confidence": 0.9} for t, q in TEACHER if q in text]
        out.append({"piece": pid, "type": "churn_intent", "quote": INVENTED, "confidence": 0.9})
    return answer(out)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeOpenAI(teacher) as f:
        monkeypatch.setenv("HEALTHTRACE_LLM_BASE_URL", f.base_url)
        monkeypatch.setenv("HEALTHTRACE_LLM_API_KEY", "k")
        monkeypatch.setenv("HEALTHTRACE_LLM_MODEL", "fake-teacher")
        monkeypatch.setenv("HEALTHTRACE_LLM_MAX_TOKENS", "400")  # each answer capped: the budget check is a bound
        yield f


def _run(args: list[str]) -> Any:
    from api.cli import app

    get_settings.cache_clear()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r


def _distill(ws: Path, corpus: Path, *more: str) -> dict[str, Any]:
    r = _run(["extractor", "distill", "--workspace", str(ws), "--corpus", str(corpus), "--folds", "3",
              "--format", "json", *more])
    return json.loads(r.stdout)


def test_dry_run_estimates_and_sends_nothing(workspace: Path, fake: Any, tmp_path: Path) -> None:
    res = _distill(workspace, tmp_path / "unused", "--sample", "8", "--dry-run")
    assert fake.requests == []
    assert res["dry_run"] and res["sampled"] == 8 and res["available"] == 12
    assert res["estimate"]["prompt_tokens"] > 0 and res["estimate"]["calls"] >= 1
    table = _run(["extractor", "distill", "--workspace", str(workspace), "--sample", "8", "--dry-run"]).stdout
    assert "dry run: nothing was sent" in table and "prompt" in table
    assert fake.requests == []


def test_distill_end_to_end(workspace: Path, fake: Any, tmp_path: Path, _isolated_home: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    res = _distill(workspace, corpus, "--sample", "12", "--holdout", "0.3", "--activate")
    assert fake.requests  # the teacher was asked
    rep = res["report"]
    t = rep["training"]
    assert t["documents_sent"] == 12 and t["held_out_docs"] >= 3 and t["training_docs"] >= 7
    assert t["unverified_claims_dropped"] >= 12  # one invented quote per document, none kept
    assert rep["teacher"]["model"] == "fake-teacher" and rep["teacher"]["prompt_version"]
    # training data: verified claims only, each sentence from a document, stamped with prompt and model
    version_dir = _isolated_home / "extractors" / res["version"]
    records = [json.loads(line) for line in (version_dir / "training_extra.jsonl").read_text().splitlines()]
    texts = " ".join(" ".join((p.read_text()).split()) for p in workspace.rglob("*") if p.is_file())
    assert records and all(r["text"] in texts for r in records)
    assert not any(INVENTED in r["text"].lower() for r in records)
    assert all(r["origin"] == "distill" and r["model"] == "fake-teacher" and r["prompt_version"] for r in records)
    positives = {(r["text"], tuple(r["labels"])) for r in records if r["labels"]}
    assert t["positive_sentences"] == len(positives) > 0
    assert {lab for _, labs in positives for lab in labs} <= {ty for ty, _ in TEACHER}
    # the agreement report: per type precision/recall of old and new against the teacher on held-out documents
    agree = rep["agreement"]
    assert agree["new"]["documents"] == t["held_out_docs"] and agree["new"]["micro"]["teacher"] > 0
    for side in ("old", "new"):
        for figs in agree[side]["types"].values():
            assert 0 <= figs["precision"] <= 1 and 0 <= figs["recall"] <= 1
    assert agree["new"]["micro"]["recall"] > 0
    assert res["activated"] is res["not_worse"]
    listed = json.loads(_run(["extractor", "versions", "--format", "json"]).stdout)
    row = next(v for v in listed if v["version"] == res["version"])
    assert row["origin"] == "distill" and row["report"]["agreement"]
    if not res["activated"]:
        _run(["extractor", "activate", res["version"]])
    doc = next(p for p in workspace.rglob("*-mail.txt"))
    out = [json.loads(x) for x in _run(["extract", "-f", "jsonl", str(doc)]).stdout.splitlines() if x.strip()]
    assert out and {r["extractor_version"].split(".m1-", 1)[-1][:8] for r in out} == {res["sha256"][:8]}
    assert "agreement with the LLM" in _run(["extractor", "distill", "--workspace", str(workspace), "--corpus",
                                             str(corpus), "--folds", "3", "--sample", "4"]).stdout


def test_max_tokens_caps_the_spend(workspace: Path, fake: Any, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    whole = _distill(workspace, corpus, "--sample", "12", "--dry-run")["estimate"]
    # room for the whole sample in one request plus one capped answer; sent in rounds, each repeating the
    # system prompt, it cannot all fit: the run must stop before the cap, not after
    cap = whole["prompt_tokens"] + 400
    res = _distill(workspace, corpus, "--sample", "12", "--max-tokens", str(cap))
    t = res["report"]["training"]
    assert 0 < t["documents_sent"] < 12 and t["stopped"] and "max-tokens" in t["stopped"]
    assert t["tokens_used"] <= cap
    assert sum(count_prompt_tokens(r) for r in fake.requests) <= cap  # what the endpoint saw, too
    sent_docs = {d for r in fake.requests for d in pieces(r)}
    assert len(sent_docs) >= t["documents_sent"]
    n = len(fake.requests)
    from api.cli import app

    get_settings.cache_clear()
    r = CliRunner().invoke(app, ["extractor", "distill", "--workspace", str(workspace), "--corpus", str(corpus),
                                 "--sample", "12", "--max-tokens", "10"])
    # answers already in the LLM cache are free; nothing else fits in 10 tokens: no new request
    assert r.exit_code == 0 and "max-tokens 10" in r.output and len(fake.requests) == n
    get_settings.cache_clear()
    monkeypatch.setenv("HEALTHTRACE_LLM_CACHE", "false")
    r = CliRunner().invoke(app, ["extractor", "distill", "--workspace", str(workspace), "--corpus", str(corpus),
                                 "--sample", "12", "--max-tokens", "10"])
    assert r.exit_code == 1 and "max-tokens 10" in r.output and len(fake.requests) == n


def test_claims_off_their_offsets_never_become_training_data() -> None:
    from extractors.llm import DocClaims, VerifiedClaim
    from extractors.models import SourceDocument
    from extractors.retrain import distill_records

    text = "Hi Sam,\nHonestly, Totango offered them a free pilot.\nThe weather was nice at the offsite.\n"
    doc = SourceDocument(kind="email", text=text)
    q = "Totango offered them a free pilot"
    good = VerifiedClaim("competitor_mention", q, text.index(q), text.index(q) + len(q), 0.9)
    moved = VerifiedClaim("churn_intent", q, 0, len(q), 0.9)  # the quote is not at these offsets
    recs, refused = distill_records([DocClaims(doc, [good, moved], "extract@v1", "m", "1.0.0")])
    assert refused == 1
    pos = [r for r in recs if r["labels"]]
    assert [r["labels"] for r in pos] == [["competitor_mention"]] and q in pos[0]["text"]
    assert [r["text"] for r in recs if not r["labels"]] == ["The weather was nice at the offsite."]


def test_stratified_sample_spreads_over_kinds_and_accounts() -> None:
    from extractors.models import SourceDocument
    from extractors.retrain import split_holdout, stratified_sample

    docs = [SourceDocument(kind=k, account_id=a, text=f"{k} {a} {i} text here")
            for k in ("email", "notes") for a in ("a", "b") for i in range(5 if k == "email" else 2)]
    s = stratified_sample(docs, 8)
    assert len(s) == 8 and {(d.kind, d.account_id) for d in s} == {(k, a) for k in ("email", "notes") for a in "ab"}
    assert stratified_sample(docs, 8) == s  # deterministic
    train, held = split_holdout(s, 0.3)
    assert len(held) >= 2 and len(train) + len(held) == 8 and not {d.id for d in train} & {d.id for d in held}
