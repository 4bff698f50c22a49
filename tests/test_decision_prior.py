"""Stage 2's decision prior: a looser decision must not change which sentences the cascade looks at.

Fitted on the small taxonomy-written corpus with a deterministic stand-in embedding (hashed words), so it
runs in seconds; the shipped model's figures are in NOTES.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from extractors import learned
from extractors.classifier import SentenceClassifier
from extractors.models import taxonomy
from small_corpus import write_small_corpus


def _embed(texts: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=384, alternate_sign=True, norm="l2").transform(texts).toarray()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    from extractors.refit import load_corpus

    records, _ = load_corpus(Path(write_small_corpus(tmp_path_factory.mktemp("corpus"))))
    types = list(taxonomy())
    texts = [learned.normalise_sentence(r["text"]) for r in records]
    cues = learned.cue_features(texts, [r.get("genre", "email") for r in records])
    Y = np.zeros((len(records), len(types)), dtype=np.int8)
    for i, r in enumerate(records):
        for lab in r["labels"]:
            Y[i, types.index(lab)] = 1
    return types, texts, cues, Y, [r["group"] for r in records], _embed(texts)


def _fit(data, **params) -> SentenceClassifier:
    types, texts, cues, Y, groups, emb = data
    return SentenceClassifier(types=types, folds=3, **params).fit(texts, cues, Y, groups, emb)


def test_decision_prior_loosens_stage_two_only(data) -> None:
    strict = _fit(data, decision_prior=0.9, type_prior={})
    loose = _fit(data, decision_prior=0.6, type_prior={})
    # the cascade and the fitted weights are the same: the same sentences are looked at and scored alike
    assert strict.t1 == loose.t1 and strict.t_lex == loose.t_lex
    assert np.array_equal(strict.plattl, loose.plattl) and np.array_equal(strict.thrl, loose.thrl)
    assert np.array_equal(strict.w2, loose.w2) and np.array_equal(strict.b2, loose.b2)
    # stage 2 alone is calibrated at the looser prior, and no type recalls less out of fold
    rs, rl = strict.report["embedding_model"], loose.report["embedding_model"]
    fitted = [t for t in rs if rs[t]["threshold"] is not None]
    assert fitted and all(rl[t]["oof_recall"] >= rs[t]["oof_recall"] for t in fitted)
    assert all(rs[t]["prior"] == 0.9 and rl[t]["prior"] == 0.6 for t in fitted)
    cols = [data[0].index(t) for t in fitted]
    assert not np.allclose(strict.platt2[cols], loose.platt2[cols])


def test_type_prior_keeps_a_type_at_its_own_prior(data) -> None:
    types = data[0]
    strict = _fit(data, decision_prior=0.9, type_prior={})
    fitted = [t for t, r in strict.report["embedding_model"].items() if r["threshold"] is not None]
    keep = fitted[0]
    mixed = _fit(data, decision_prior=0.6, type_prior={keep: 0.9})
    j = types.index(keep)
    assert np.allclose(mixed.platt2[j], strict.platt2[j]) and mixed.thr2[j] == strict.thr2[j]
    assert mixed.report["embedding_model"][keep]["prior"] == 0.9


def test_shipped_model_records_its_decision_prior() -> None:
    model, meta = learned.load_model()
    assert meta["params"]["decision_prior"] == model.decision_prior
    assert meta["params"]["type_prior"] == model.type_prior
    assert model.decision_prior is None or 0 < model.decision_prior < 1


@pytest.mark.parametrize("params,match", [
    ({"decision_prior": 1.0}, "decision_prior = 1.0"), ({"type_prior": {"negative_sentiment": 0}}, "type_prior"),
    ({"type_prior": {"zzz": 0.5}}, "unknown signal type 'zzz'"),
])
def test_bad_priors_are_clear_errors(data, params, match) -> None:
    with pytest.raises(ValueError, match=match):
        _fit(data, **params)
