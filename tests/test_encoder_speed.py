"""The speed work on the learned extractor changes no result.

- The encoder's pad-free, same-length batches give the bits the old padded, masked batches gave, whatever the
  batch size, the thread count or the cache state; texts that tokenise alike share one cache row.
- ``extract_batch`` over many documents gives exactly what ``extract`` gives for each alone, cold or warm cache.
- At ingest a learned signal's vector is the classifier's embedding of its sentence: no second model pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors.encoder import SentenceEncoder, load_minilm, shared_encoder
from extractors.parsers import load_document

TRIAL = Path(__file__).resolve().parent.parent / "benchmarks" / "customer_trial" / "documents"

TEXTS = [
    "we have decided not to renew when the contract ends in march.",
    "Thanks!",
    "",
    "Our CFO said the new routing saved us about $40k last quarter, which is great news for the team.",
    "i'm leaving the company at the end of the month; priya will take over the account",
    "Could you send a quote for 25 more licences?   We want them before the Q3 kickoff.",
    "the export has failed again — third time this week — and nobody from support has replied " * 8,
    "naïve café “quoted” text 😀 with odd characters",
]


def _reference(texts: list[str]) -> np.ndarray:
    """The encoder before the speed work: one mixed batch padded to its longest item, masked mean pooling."""
    session, tok = load_minilm(0)
    enc = [tok.encode(t or " ") for t in texts]
    width = max(len(e.ids) for e in enc)
    ids = np.zeros((len(enc), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(enc):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def test_encoder_bits_do_not_depend_on_batching_threads_or_cache() -> None:
    ref = _reference(TEXTS)
    for threads, batch in ((0, 32), (1, 1), (1, 3)):
        enc = SentenceEncoder(threads=threads, batch_size=batch, cache_size=100)
        got = enc.encode(TEXTS)
        assert np.array_equal(got, ref), (threads, batch)
        again = enc.encode(list(reversed(TEXTS)))  # all from the cache, in another order
        assert np.array_equal(again, ref[::-1])
        assert enc.stats["computed"] == len(TEXTS) and enc.stats["hits"] == len(TEXTS)
    one_by_one = np.vstack([SentenceEncoder(cache_size=0).encode([t]) for t in TEXTS])
    assert np.array_equal(one_by_one, ref)


def test_texts_that_tokenise_alike_share_one_row() -> None:
    enc = SentenceEncoder(cache_size=10)
    a = enc.encode(["We will NOT renew\n   the contract."])
    b = enc.encode(["we will not renew the contract."])
    assert np.array_equal(a, b) and enc.stats == {"hits": 1, "computed": 1}
    enc.encode(["we will not renew the contract!"])  # other tokens: computed
    assert enc.stats["computed"] == 2


def test_shared_encoders_of_any_thread_setting_share_the_cache() -> None:
    text = "the pilot went live in two regions and adoption doubled"
    shared_encoder(0).encode([text])
    before = dict(shared_encoder(1).stats)
    shared_encoder(1).encode([text])
    assert shared_encoder(1).stats["hits"] == before["hits"] + 1
    assert shared_encoder(1).stats["computed"] == before["computed"]


def _docs() -> list:
    if not TRIAL.is_dir():
        pytest.skip("customer trial documents missing")
    paths = sorted(p for p in TRIAL.rglob("*") if p.is_file() and p.suffix in (".eml", ".md", ".vtt", ".json", ".txt"))
    docs = [load_document(str(p)) for p in paths]
    inline = (
        "From: Dana Ortiz <dana@acme.example>\nTo: sam@vendor.example\nDate: Tue, 5 Mar 2024 09:00:00 +0000\n"
        "Subject: next year\n\nHi Sam,\nHeads up: I'm moving on from Acme at the end of April. Priya takes over.\n"
        "We are also looking at Zendesk for the support team, the pricing you quoted is hard to justify.\n"
        "Thanks,\nDana\n")
    return docs + [_inline_email(inline)]


def _inline_email(text: str):
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".eml", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        return load_document(f.name, kind="email")
    finally:
        Path(f.name).unlink()


@pytest.mark.parametrize("name,opts", [("learned", {}), ("learned", {"embeddings": False}), ("offline", {})])
def test_extract_batch_is_extract_one_by_one(name: str, opts: dict) -> None:
    from extractors.base import get_extractor

    docs = _docs()
    assert {d.kind for d in docs} >= {"email", "notes", "transcript"}
    ex = get_extractor(name, **opts)
    shared_encoder().clear()
    alone = [[s.model_dump() for s in ex.extract(d)] for d in docs]  # cold cache, one document at a time
    assert sum(map(len, alone)) >= 10  # the trial documents are full of signals
    for size in (1, 4, len(docs)):
        if size == 4:
            shared_encoder().clear()  # a cold cache again, in groups
        batched = [r for g in range(0, len(docs), size) for r in ex.extract_batch(docs[g : g + size])]
        assert [[s.model_dump() for s in r] for r in batched] == alone, size


def test_learned_signal_vectors_reuse_the_classifier_embedding() -> None:
    from extractors.base import get_extractor
    from memory.vectors import signal_vector_text

    docs = [d for d in _docs() if d.kind == "email"]
    ex = get_extractor("learned")
    sigs = [s for d in docs for s in ex.extract(d)]
    assert sigs
    enc = shared_encoder(0)
    before = dict(enc.stats)
    enc.encode([signal_vector_text(s) for s in sigs])
    assert enc.stats["computed"] - before["computed"] <= len(sigs) // 10  # (nearly) all from the cache
    assert enc.stats["hits"] - before["hits"] >= len(sigs) - len(sigs) // 10


def test_char_ngram_matrix_from_word_cache_is_scikit_learns() -> None:
    from extractors import classifier

    texts = [t.lower() for t in TEXTS if t.strip()] + ["İstanbul  ÀB\tx", "a", "ﬁne straße, ok?", "the the the"]
    _, char, _ = classifier._vecs()
    ref = char.transform(texts)
    ref.sort_indices()
    for part in (texts, texts[::-1], texts[:3]):  # cold and warm word cache, other orders
        got = classifier._char_matrix(part)
        want = char.transform(part)
        want.sort_indices()
        assert (got.indptr == want.indptr).all() and (got.indices == want.indices).all()
        assert np.array_equal(got.data, want.data)
    assert classifier._char_matrix(texts).shape == ref.shape
