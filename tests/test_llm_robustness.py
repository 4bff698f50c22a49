"""Retries, backoff, Retry-After, timeouts and random failures: every document is eventually extracted."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply, answer, chat_model, error, finder, pieces

from extractors.errors import LLMError
from extractors.llm import LLMConfig, LLMExtractor
from extractors.llm_cache import LLMCache
from extractors.models import SourceDocument

TEXT = "Subject: x\n\nThe go-live slipped to June. We are worried about the budget cut."
TABLE = [("milestone_missed", "The go-live slipped to June"), ("negative_sentiment", "We are worried")]


def _doc(text: str = TEXT) -> SourceDocument:
    return SourceDocument(kind="email", text=text)


def scripted(*replies: Reply, then: Any = None) -> Any:
    """Replies in order, then ``then`` (default: the finder) for every later request."""
    queue = list(replies)
    lock = threading.Lock()
    fallback = then or finder(TABLE)

    def respond(req: dict[str, Any]) -> Reply:
        with lock:
            if queue:
                return queue.pop(0)
        return fallback(req)

    return respond


def _ex(fake: FakeOpenAI, sleeps: list[float] | None = None, timeout: float = 5.0, **cfg: Any) -> LLMExtractor:
    cfg.setdefault("backoff_base_s", 0.001)
    cfg.setdefault("backoff_max_s", 0.01)
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return LLMExtractor(chat_model(fake, timeout=timeout), config=LLMConfig(**cfg), sleep=record)


def _check(doc: SourceDocument, signals: list[Any]) -> None:
    assert signals
    for s in signals:
        assert s.verified
        for c in s.evidence:
            assert doc.text[c.start : c.end] == c.quote


def test_429_honours_retry_after() -> None:
    sleeps: list[float] = []
    with FakeOpenAI(scripted(error(429, retry_after=7), error(429, retry_after=0.5))) as fake:
        ex = _ex(fake, sleeps)
        doc = _doc()
        _check(doc, ex.extract(doc))
    assert sleeps == [7.0, 0.5]
    assert ex.last_run.retries == 2 and len(fake.requests) == 3


def test_5xx_backs_off_exponentially_with_jitter() -> None:
    sleeps: list[float] = []
    with FakeOpenAI(scripted(error(500), error(502), error(503))) as fake:
        ex = _ex(fake, sleeps, backoff_base_s=1.0, backoff_max_s=3.0)
        _check(_doc(), ex.extract(_doc()))
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 1.5 <= sleeps[2] <= 3.0  # capped


def test_slow_answer_past_the_timeout_is_retried() -> None:
    with FakeOpenAI(scripted(Reply(content='{"signals": []}', delay_s=1.0))) as fake:
        ex = _ex(fake, timeout=0.2)
        t = time.monotonic()
        signals = ex.extract(_doc())
        elapsed = time.monotonic() - t
    _check(_doc(), signals)
    assert ex.last_run.retries == 1 and elapsed < 1.0


def test_non_retryable_error_fails_at_once_with_a_clear_message() -> None:
    with FakeOpenAI(lambda req: error(401, error="invalid api key")) as fake:
        ex = _ex(fake)
        with pytest.raises(LLMError, match="HTTP 401.*HEALTHTRACE_LLM_API_KEY"):
            ex.extract(_doc())
        assert len(fake.requests) == 1


def test_persistent_5xx_gives_up_and_suggests_function_calling() -> None:
    with FakeOpenAI(lambda req: error(500, error="json_schema not supported")) as fake:
        ex = _ex(fake, max_retries=2)
        results, failures = ex.extract_many([_doc()])
        assert len(fake.requests) == 3
    assert results == [] and len(failures) == 1
    assert "after 3 attempts" in failures[0].error
    assert "HEALTHTRACE_LLM_STRUCTURED_METHOD=function_calling" in failures[0].error


def test_retry_is_per_chunk_and_a_failed_chunk_alone_is_redone_next_run(tmp_path: Any) -> None:
    sentences = [f"Section {i} is routine and was filed on time without any comment. " for i in range(60)]
    sentences[30] = "The go-live slipped to June. "
    text = "".join(sentences)
    doc = _doc(text)
    broken = {"on": True}

    def respond(req: dict[str, Any]) -> Reply:
        ps = pieces(req)
        if broken["on"] and any("go-live" in t for t in ps.values()):
            return error(500)
        return finder(TABLE)(req)

    cache = LLMCache(tmp_path / "c.sqlite")
    with FakeOpenAI(respond) as fake:
        ex = LLMExtractor(chat_model(fake), cache=cache, sleep=lambda s: None,
                          config=LLMConfig(chunk_tokens=150, batch_tokens=150, max_retries=1))
        results, failures = ex.extract_many([doc])
        assert results == [] and len(failures) == 1 and "1 of" in failures[0].error
        first_run = len(fake.requests)
        assert ex.last_run.retries == 1
        broken["on"] = False
        results, failures = ex.extract_many([doc])
        second_run = len(fake.requests) - first_run
    assert first_run > 4 and second_run == 1  # only the failed chunk is asked again
    assert not failures
    _check(doc, results[0].signals)


def test_random_failures_every_document_is_eventually_extracted() -> None:
    # 30% of requests fail, drawn from a hash of (request, attempt) so the run is the same whatever the thread order
    attempts: dict[str, int] = {}
    lock = threading.Lock()
    ok = finder(TABLE)

    def flaky(req: dict[str, Any]) -> Reply:
        body = json.dumps(req["messages"][1:], sort_keys=True)
        with lock:
            n = attempts[body] = attempts.get(body, 0) + 1
        r = random.Random(hashlib.sha256(f"{body}|{n}".encode()).digest()).random()
        if r < 0.08:
            return error(429, retry_after=0)
        if r < 0.16:
            return error(500)
        if r < 0.22:
            return Reply(content='{"signals": []}', delay_s=0.4)  # past the client timeout
        if r < 0.30:
            return answer("<html>Bad Gateway</html>")  # not JSON: re-asked once
        return ok(req)

    docs = [_doc(TEXT + f" Ticket {i}.") for i in range(90)]
    done: dict[str, list[Any]] = {}
    pending = list(docs)
    runs = 0
    with FakeOpenAI(flaky) as fake:
        ex = _ex(fake, timeout=0.15, max_retries=1, concurrency=4, batch_pieces=2)
        while pending and runs < 12:
            runs += 1
            results, failures = ex.extract_many(pending)
            assert len(results) + len(failures) == len(pending)  # none lost
            assert {id(r.doc) for r in results}.isdisjoint({id(f.doc) for f in failures})
            for r in results:
                done[r.doc.id] = r.signals
            pending = [f.doc for f in failures]
    assert not pending and len(done) == len(docs)
    assert runs > 1  # some documents did fail at first and were kept pending, not lost
    for d in docs:
        _check(d, done[d.id])
        assert {s.type for s in done[d.id]} == {"milestone_missed", "negative_sentiment"}
    assert ex.totals.retries > 0 and ex.totals.reasks > 0
