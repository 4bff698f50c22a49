"""Hashed word and character n-gram features, exactly as scikit-learn's ``HashingVectorizer`` computes them.

Why: the sentence classifier's features are ``HashingVectorizer`` outputs (``alternate_sign=False``, L2 norm,
lower-cased; a word analyser or ``char_wb``). Importing scikit-learn costs about 0.8 s, close to half of a short
``healthtrace extract`` call, and inference needs none of its estimators. This module reproduces the same
tokens, the same MurmurHash3 (``mmh3``, the x86 32-bit variant scikit-learn uses, seed 0), the same bucket of a
hash and the same normalisation, so fitted weights index the same columns. ``tests/test_hashing.py`` checks the
matrices equal scikit-learn's on the whole training corpus and on awkward text. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import mmh3
import numpy as np

_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's char_wb whitespace normalisation


def bucket(feature: str, n_features: int) -> int:
    """The column of one feature string: ``abs(murmurhash3_32(utf8, seed=0)) % n_features`` as scikit-learn
    defines it (including the case ``h == -2**31``, where ``abs`` overflows in its Cython)."""
    h = mmh3.hash(feature.encode("utf-8"), 0, True)
    if h == -2147483648:
        return (2147483647 - (n_features - 1)) % n_features
    return abs(h) % n_features


@dataclass(frozen=True)
class NgramHasher:
    """One ``HashingVectorizer(analyzer=..., ngram_range=..., n_features=..., alternate_sign=False,
    lowercase=True, token_pattern=...)``; ``norm`` is "l2" or None (raw counts)."""

    analyzer: str  # "word" or "char_wb"
    ngram_range: tuple[int, int]
    n_features: int
    token_pattern: str = r"(?u)\b\w\w+\b"
    norm: str | None = "l2"
    _token_re: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.analyzer not in ("word", "char_wb"):
            raise ValueError(f"analyzer must be 'word' or 'char_wb', not {self.analyzer!r}")
        if self.norm not in ("l2", None):
            raise ValueError(f"norm must be 'l2' or None, not {self.norm!r}")
        lo, hi = self.ngram_range
        if not 1 <= lo <= hi:
            raise ValueError(f"bad ngram_range {self.ngram_range!r}")
        object.__setattr__(self, "_token_re", re.compile(self.token_pattern))

    def features(self, text: str) -> list[str]:
        """The n-gram strings of one text, in scikit-learn's order (duplicates kept: they are counted)."""
        text = text.lower()
        lo, hi = self.ngram_range
        if self.analyzer == "word":
            tokens = self._token_re.findall(text)
            out = list(tokens) if lo == 1 else []
            for n in range(max(lo, 2), min(hi + 1, len(tokens) + 1)):
                out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
            return out
        out = []
        for w in _WHITE_SPACES.sub(" ", text).split():
            w = " " + w + " "
            for n in range(lo, hi + 1):
                if len(w) <= n:  # a word no longer than n counts once, whole, and ends the word
                    out.append(w)
                    break
                out.extend(w[i : i + n] for i in range(len(w) - n + 1))
        return out

    def transform(self, texts: Iterable[str]) -> Any:
        """A CSR matrix (float64, sorted indices) of the texts' hashed n-gram counts, L2-normalised by row."""
        n = self.n_features
        indices: list[int] = []
        indptr = [0]
        cache: dict[str, int] = {}
        for text in texts:
            for f in self.features(text):
                col = cache.get(f)
                if col is None:
                    col = cache[f] = bucket(f, n)
                indices.append(col)
            indptr.append(len(indices))
        X = counts_matrix(np.ones(len(indices), dtype=np.float64), np.asarray(indices, dtype=np.int64),
                          np.asarray(indptr, dtype=np.int64), n)
        return l2_normalise(X) if self.norm == "l2" else X


def counts_matrix(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_features: int) -> Any:
    """A ``csr_matrix`` with duplicates summed and indices sorted, with 32-bit indices where they fit, as
    scikit-learn builds it (its estimators reject 64-bit sparse indices)."""
    from scipy import sparse

    small = len(data) < 2**31 and n_features < 2**31
    idx = np.int32 if small else np.int64
    X = sparse.csr_matrix((data, indices.astype(idx, copy=False), indptr.astype(idx, copy=False)),
                          shape=(len(indptr) - 1, n_features))
    X.sum_duplicates()  # also sorts the indices
    return X


def l2_normalise(X: Any) -> Any:
    """Rows of a CSR matrix divided by their L2 norm (all-zero rows left as they are), in place, as
    ``sklearn.preprocessing.normalize(X, norm="l2")`` does."""
    sq = np.zeros(X.shape[0], dtype=np.float64)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    np.add.at(sq, rows, X.data * X.data)
    norms = np.sqrt(sq)
    norms[norms == 0.0] = 1.0
    X.data /= norms[rows]
    return X


def hash_rows(hasher: NgramHasher, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per text, its raw (un-normalised) sorted column indices and counts: for callers that cache by word."""
    raw = replace(hasher, norm=None).transform(texts)
    bounds = zip(raw.indptr[:-1], raw.indptr[1:])
    return [(raw.indices[a:b].copy(), raw.data[a:b].copy()) for a, b in bounds]
