"""extractors.hashing must give scikit-learn's HashingVectorizer matrices bit for bit: the shipped weights index
its columns. And the extraction path must not import scikit-learn (its import is most of a short CLI call)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer

from extractors import classifier
from extractors.hashing import NgramHasher, bucket, hash_rows
from extractors.refit import load_corpus

AWKWARD = ["", "   ", "a", "ab", "abc", "I'm", "naïve café ÉCOLE", "🎉🎉 ok", "x  y\t\tz\n\nw", "don't-stop ‘quoted’",
           "İstanbul ß ﬁne", "a b c d e f", "the the the", "re: re: fw: 50% off!!!", "O'Brien's team's", "\u00a0nbsp\u00a0"]
WORD = r"(?u)\b\w[\w']*\b"


def _same(a, b) -> bool:
    a.sort_indices()
    return (type(a) is type(b) and a.indices.dtype == b.indices.dtype and a.indptr.dtype == b.indptr.dtype
            and a.data.dtype == b.data.dtype and a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


@pytest.mark.parametrize("analyzer,ngrams,n,pattern,norm", [
    ("word", (1, 2), 1 << 17, WORD, "l2"),
    ("word", (1, 2), 1 << 15, WORD, "l2"),
    ("char_wb", (2, 4), 1 << 17, r"(?u)\b\w\w+\b", "l2"),
    ("char_wb", (2, 4), 1 << 17, r"(?u)\b\w\w+\b", None),
    ("word", (1, 3), 1 << 10, r"(?u)\b\w\w+\b", None),
    ("char_wb", (3, 5), 97, r"(?u)\b\w\w+\b", "l2"),
])
def test_matrices_equal_scikit_learns(analyzer, ngrams, n, pattern, norm) -> None:
    texts = [r["text"] for r in load_corpus()[0]][::3] + AWKWARD
    ref = HashingVectorizer(analyzer=analyzer, ngram_range=ngrams, n_features=n, token_pattern=pattern, norm=norm,
                            alternate_sign=False, lowercase=True).transform(texts)
    assert _same(ref, NgramHasher(analyzer, ngrams, n, pattern, norm).transform(texts))


def test_the_classifiers_hashers_are_the_fitted_ones() -> None:
    word, char, lex = classifier._vecs()
    texts = AWKWARD + ["We are evaluating Zendesk before the renewal.", "Budget is gone for FY27 -> seats at risk"]
    for mine, n in ((word, classifier.WORD_FEATURES), (lex, classifier.LEX_FEATURES)):
        ref = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=n, token_pattern=WORD,
                                alternate_sign=False, norm="l2", lowercase=True).transform(texts)
        assert _same(ref, mine.transform(texts))
    ref = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=classifier.CHAR_FEATURES,
                            alternate_sign=False, norm="l2", lowercase=True).transform(texts)
    assert _same(ref, classifier._char_matrix(texts))


def test_bucket_of_the_overflowing_hash(monkeypatch) -> None:
    # scikit-learn's Cython cannot take abs(-2**31) of an int32; it defines that bucket as 2**31 % n
    from extractors import hashing

    assert bucket("", 1 << 17) == 0  # murmurhash3_32(b"", 0) == 0
    monkeypatch.setattr(hashing.mmh3, "hash", lambda key, seed, signed: -(2**31))
    for n in (97, 1 << 15, 1 << 17, 1000003):
        assert bucket("anything", n) == 2**31 % n


def test_raw_rows_are_sorted_counts() -> None:
    (idx, counts), (idx2, _) = hash_rows(NgramHasher("word", (1, 1), 1 << 17), ["alpha beta alpha", ""])
    assert sorted(counts.tolist()) == [1.0, 2.0] and list(idx) == sorted(idx) and len(idx2) == 0


def test_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="analyzer"):
        NgramHasher("char", (2, 4), 10)
    with pytest.raises(ValueError, match="ngram_range"):
        NgramHasher("word", (2, 1), 10)
    with pytest.raises(ValueError, match="norm"):
        NgramHasher("word", (1, 1), 10, norm="l1")


def test_extraction_does_not_import_scikit_learn(tmp_path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_text("From: a@customer.example\nTo: b@vendor.example\nDate: Tue, 3 Nov 2026 10:00:00 +0000\n"
                    "Subject: renewal\n\nWe have decided not to renew; we are moving to Zendesk in January.\n",
                    encoding="utf-8")
    code = ("import sys, json\nfrom api.cli import main\nsys.argv = ['healthtrace', 'extract', '--format', 'json', "
            f"{str(mail)!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('\\nMODULES ' + json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert json.loads(out.rsplit("MODULES ", 1)[1]) == []
    assert '"churn_intent"' in out  # it did extract
