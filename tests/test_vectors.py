"""Chunking, the offline embedders, and the Chroma memory (persisted, reopened by a fresh client)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extractors.errors import InputError
from extractors.grounding import citation_for_span
from extractors.models import Signal, SourceDocument
from memory.embeddings import HashingEmbedding, MiniLMEmbedding, get_embedder
from memory.vectors import CHUNK_CHARS, CHUNKS, SIGNALS, VectorMemory, chunk_document, make_client

ROOT = Path(__file__).resolve().parent.parent


def _doc(text: str, account: str = "a1", day: int = 1, kind: str = "email") -> SourceDocument:
    return SourceDocument(text=text, kind=kind, account_id=account, path=f"{account}-{day}.eml",  # type: ignore[arg-type]
                          occurred_at=datetime(2024, 3, day, tzinfo=timezone.utc))


# ----------------------------------------------------------------------------------------- chunking
_sentence = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=120)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_sentence, st.sampled_from([". ", "! ", "? ", "\n\n", "\r\n\r\n", " ", ""])), max_size=40))
def test_chunks_are_verbatim_ordered_and_bounded(parts: list[tuple[str, str]]) -> None:
    text = "".join(a + b for a, b in parts)
    if not text:
        return
    doc = SourceDocument(text=text, kind="notes")
    assert len(doc.text) == len(text)  # stored text: NUL -> U+FFFD one for one (extractors/text.py)
    text = doc.text
    chunks = chunk_document(doc)
    prev_end = 0
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
        assert c.start >= prev_end
        assert c.end - c.start <= CHUNK_CHARS
        prev_end = c.end
    # nothing but whitespace is left out
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


def test_chunks_break_at_sentences() -> None:
    sentence = "The rollout of the analytics suite went well across every regional team this quarter. "
    doc = _doc(sentence * 12)
    chunks = chunk_document(doc)
    assert len(chunks) >= 2
    assert all(c.text.endswith(".") for c in chunks)
    assert all(380 <= len(c.text) <= CHUNK_CHARS for c in chunks[:-1])
    assert len({c.id for c in chunks}) == len(chunks)
    assert [c.id for c in chunk_document(doc)] == [c.id for c in chunks]  # deterministic ids


def test_a_long_run_without_punctuation_is_split_at_spaces() -> None:
    doc = _doc(" ".join(["word"] * 400))
    chunks = chunk_document(doc)
    assert len(chunks) >= 4 and all(len(c.text) <= CHUNK_CHARS and not c.text.startswith(" ") for c in chunks)


# ----------------------------------------------------------------------------------------- embedders
def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    e = HashingEmbedding()
    a = e.embed(["cancel the contract", "cancel the contract", "", "lunch menu"])
    assert a.shape == (4, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert np.array_equal(a[0], a[1])
    assert float(a[0] @ a[3]) < 0.5
    assert HashingEmbedding.build_from_config(e.get_config()).get_config() == e.get_config()


def test_minilm_embeddings_are_semantic_normalised_and_padding_free() -> None:
    m = MiniLMEmbedding()
    texts = ["We are going to cancel our subscription.", "The customer plans to terminate the contract.",
             "The lunch menu has soup today.",
             "A much longer sentence about quarterly business reviews, onboarding sessions, rollout plans and seats."]
    v = m.embed(texts)
    assert v.shape == (4, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2
    alone = m.embed([texts[0]])[0]
    assert float(alone @ v[0]) > 0.999  # padding to the longest item of a batch does not change a vector
    assert isinstance(m(["x"])[0], np.ndarray)
    assert get_embedder("minilm").name() == "healthtrace-minilm-int8"
    with pytest.raises(Exception, match="unknown embedder"):
        get_embedder("word2vec")


def test_minilm_truncates_at_256_tokens() -> None:
    m = MiniLMEmbedding()
    long = "renewal " * 2000
    v = m.embed([long, "renewal " * 300])
    assert float(v[0] @ v[1]) > 0.9999


# ----------------------------------------------------------------------------------------- chroma
def _signal(doc: SourceDocument, quote: str, type_: str) -> Signal:
    i = doc.text.index(quote)
    c = citation_for_span(doc, i, i + len(quote))
    return Signal(account_id=doc.account_id, type=type_, evidence=[c], extractor="rules", extractor_version="1",
                  occurred_at=doc.occurred_at)


@pytest.fixture
def memory(tmp_path: Path) -> VectorMemory:
    return VectorMemory(make_client(None, tmp_path / "chroma"), HashingEmbedding())


def _load(memory: VectorMemory) -> tuple[SourceDocument, SourceDocument, SourceDocument]:
    d1 = _doc("We will cancel the contract in June. The dashboards are too slow.", "a1", 1)
    d2 = _doc("Great quarter. The team loves the new forecasts.", "a1", 20)
    d3 = _doc("We will cancel the contract in June.", "a2", 5)
    for d, tenant in ((d1, "default"), (d2, "default"), (d3, "default")):
        memory.upsert_chunks([(c, d, tenant) for c in chunk_document(d)])
    memory.upsert_signals([(_signal(d1, "cancel the contract", "churn_intent"), "default"),
                           (_signal(d2, "The team loves the new forecasts", "positive_sentiment"), "default"),
                           (_signal(d3, "cancel the contract", "churn_intent"), "default")])
    return d1, d2, d3


def test_search_is_filtered_by_account_tenant_date_and_type(memory: VectorMemory) -> None:
    d1, d2, d3 = _load(memory)
    hits = memory.search("a1", "cancel the contract", k=10)
    assert hits and {h.metadata["account_id"] for h in hits} == {"a1"}
    assert hits[0].metadata["source_id"] == d1.id
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        src = {d1.id: d1, d2.id: d2}[h.metadata["source_id"]]
        if h.kind == "passage":
            assert src.text[h.metadata["start"] : h.metadata["end"]] == h.text
        else:
            assert src.text[h.metadata["start"] : h.metadata["end"]] == h.metadata["quote"]
    assert {h.metadata["account_id"] for h in memory.search("a2", "forecasts", k=10)} == {"a2"}
    assert memory.search("a1", "cancel", tenant="other") == []
    since = memory.search("a1", "cancel the contract", since=date(2024, 3, 10))
    assert since and all(h.metadata["date"] >= 20240310 for h in since)
    typed = memory.search("a1", "contract", type="churn_intent")
    assert [h.kind for h in typed] == ["signal"] and typed[0].metadata["type"] == "churn_intent"
    assert {h.kind for h in memory.search("a1", "contract", type="email")} == {"passage"}
    with pytest.raises(InputError):
        memory.search("a1", "   ")
    with pytest.raises(InputError):
        memory.search("a1", "x", k=0)


def test_upserts_are_idempotent(memory: VectorMemory) -> None:
    _load(memory)
    before = memory.counts()
    _load(memory)
    assert memory.counts() == before == {"vector_chunks": 3, "vector_signals": 3}
    memory.reset()
    assert memory.counts() == {"vector_chunks": 0, "vector_signals": 0}


_REOPEN = textwrap.dedent(
    """
    import json, sys
    import chromadb
    from chromadb.utils.embedding_functions import onnx_mini_lm_l6_v2 as stock

    def _no_default(*a, **k):
        raise AssertionError("chroma's default (downloading) embedding function was used")

    stock.ONNXMiniLM_L6_V2.__call__ = _no_default
    import memory.embeddings  # registers our functions: the collection config names them
    calls = []
    for cls in (memory.embeddings.MiniLMEmbedding, memory.embeddings.HashingEmbedding):
        orig = cls.embed
        def spy(self, texts, _orig=orig):
            calls.append(type(self).__name__)
            return _orig(self, texts)
        cls.embed = spy
    client = chromadb.PersistentClient(path=sys.argv[1])
    col = client.get_collection(sys.argv[2])  # no embedding_function given
    res = col.query(query_texts=[sys.argv[3]], n_results=1, where={"account_id": "a1"})
    print(json.dumps({"ids": res["ids"][0], "calls": calls, "config": col.configuration_json["embedding_function"]}))
    """
)


@pytest.mark.parametrize("embedder", [HashingEmbedding(), MiniLMEmbedding()], ids=["hashing", "minilm"])
def test_a_fresh_client_reopens_the_collection_offline_with_our_function(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "chroma"
    mem = VectorMemory(make_client(None, path), embedder)
    d1, _, _ = _load(mem)
    expected = mem.search("a1", "cancel the contract", k=1, include_signals=False)[0].id
    del mem
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "NO_PROXY": "*",
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}  # any download would fail
    out = subprocess.run([sys.executable, "-c", _REOPEN, str(path), CHUNKS, "cancel the contract"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["config"]["name"] == embedder.name()
    assert data["calls"] == [type(embedder).__name__]
    assert data["ids"] == [expected]


def test_signals_collection_can_be_deleted_from(memory: VectorMemory) -> None:
    _load(memory)
    ids = memory.collection(SIGNALS).get(where={"account_id": "a2"})["ids"]
    memory.delete_signals(ids)
    assert memory.counts()["vector_signals"] == 2


def test_email_chunks_leave_out_the_header_block() -> None:
    from extractors.parsers import parse_text

    raw = ("From: Dana <dana@acme.example>\r\nTo: Sam <sam@vendor.example>\r\nSubject: Renewal\r\n"
           "Date: Mon, 20 May 2024 16:40:00 +0000\r\n\r\nSam,\r\n\r\nWe have decided not to renew. Regards, Dana\r\n")
    doc = parse_text(raw, kind="email")
    chunks = chunk_document(doc)
    assert chunks and all("From:" not in c.text and raw[c.start : c.end] == c.text for c in chunks)
    assert any("decided not to renew" in c.text for c in chunks)
