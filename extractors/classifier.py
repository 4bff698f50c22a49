"""Two-stage sentence classifier for customer-health signals (the offline extractor's decision).

Parameters in, ``fit``/``predict`` out, scikit-learn style; pure (no I/O except :meth:`save`/:meth:`load`).

- Stage 1 (cheap, every sentence): one logistic regression "is this sentence any signal at all?" on hashed
  word 1-2-grams and char 2-4-grams plus the cue-pattern features. Its threshold keeps ``stage1_recall`` of
  the positive sentences out of fold, so it is a high-recall candidate filter: only candidates are embedded.
- Stage 2 (candidates): per type, a one-vs-rest logistic regression on the MiniLM embedding, hashed word
  1-2-grams and the cue features. A lexical twin (hashed words + cues) is fitted too, for runs with embeddings off.

Calibration and thresholds come from OUT-OF-FOLD predictions (GroupKFold by ``groups``). Real documents are
mostly negative sentences, so when calibrating and choosing thresholds the negatives are weighted as if they
were ``negative_prior`` of all sentences; each type's threshold is the best weighted F1 among those whose
weighted out-of-fold precision reaches ``target_precision`` (else the most precise one). Stage 2 alone may
decide at another prior (``decision_prior``, ``type_prior``): the cascade that picks which sentences are looked
at keeps ``negative_prior``. Deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .hashing import NgramHasher, counts_matrix, hash_rows, l2_normalise

FORMAT = 1
WORD_FEATURES = 1 << 17
CHAR_FEATURES = 1 << 17
LEX_FEATURES = 1 << 15
THRESHOLD_GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)


def _vectorizers() -> tuple[NgramHasher, NgramHasher, NgramHasher]:
    """Hashed words (stage 1 and the lexical twin) and char_wb n-grams: scikit-learn's ``HashingVectorizer``
    features, computed without importing scikit-learn (see :mod:`extractors.hashing`)."""
    word = NgramHasher("word", (1, 2), WORD_FEATURES, token_pattern=r"(?u)\b\w[\w']*\b")
    char = NgramHasher("char_wb", (2, 4), CHAR_FEATURES)
    lex = NgramHasher("word", (1, 2), LEX_FEATURES, token_pattern=r"(?u)\b\w[\w']*\b")
    return word, char, lex


_VEC: tuple[NgramHasher, NgramHasher, NgramHasher] | None = None
_CHAR_WORDS: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # word -> its hashed char n-gram (indices, counts)
_CHAR_WORDS_MAX = 200_000
_CHAR_LOCK = threading.Lock()


def _char_matrix(texts: Sequence[str]) -> Any:
    """Exactly ``char.transform(texts)`` of the char_wb hasher, computed from a per-word cache.

    char_wb n-grams never cross a word (each whitespace-separated word of the lower-cased text is padded with a
    space and cut into n-grams on its own), so a text's hashed counts are the sum of its words' counts, which
    are integers (exact in any order); the rows are then summed, sorted and L2-normalised as scikit-learn does.
    Words repeat across sentences far more than sentences do: most rows need no n-gram work at all."""
    words = [t.lower().split() for t in texts]
    with _CHAR_LOCK:
        new = sorted({w for ws in words for w in ws if w not in _CHAR_WORDS})
        if new:
            if len(_CHAR_WORDS) + len(new) > _CHAR_WORDS_MAX:
                _CHAR_WORDS.clear()
            for w, row in zip(new, hash_rows(_vecs()[1], new)):
                _CHAR_WORDS[w] = row
        rows = [[_CHAR_WORDS[w] for w in ws] for ws in words]
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([sum(len(r[0]) for r in row) for row in rows])
    empty_i, empty_v = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float64)
    indices = np.concatenate([r[0] for row in rows for r in row] or [empty_i])
    data = np.concatenate([r[1] for row in rows for r in row] or [empty_v])
    return l2_normalise(counts_matrix(data, indices, indptr, CHAR_FEATURES))


def _vecs() -> tuple[NgramHasher, NgramHasher, NgramHasher]:
    global _VEC
    if _VEC is None:
        _VEC = _vectorizers()
    return _VEC


def _stage1_matrix(texts: Sequence[str], cues: np.ndarray) -> Any:
    from scipy import sparse

    word, _, _ = _vecs()
    return sparse.hstack([word.transform(texts), _char_matrix(texts), sparse.csr_matrix(cues)], format="csr")


def _lex_matrix(texts: Sequence[str], cues: np.ndarray) -> Any:
    from scipy import sparse

    _, _, lex = _vecs()
    return sparse.hstack([lex.transform(texts), sparse.csr_matrix(cues)], format="csr")


def _stage2_matrix(embeddings: np.ndarray, lex: Any, word_weight: float = 1.0) -> Any:
    """[embedding | hashed words x ``word_weight`` | cues]: a lower word weight makes the model lean on meaning
    (the embedding) more than on the corpus's exact words."""
    from scipy import sparse

    if word_weight != 1.0:
        scale = np.ones(lex.shape[1], dtype=np.float64)
        scale[:LEX_FEATURES] = word_weight
        lex = sparse.csr_matrix(lex @ sparse.diags(scale))
    return sparse.hstack([sparse.csr_matrix(embeddings.astype(np.float32)), lex], format="csr")


def _negative_weight(prior: float, anypos: np.ndarray) -> float:
    """The weight of a negative sentence so that negatives count as ``prior`` of all sentences."""
    n_pos = int(anypos.sum())
    return prior / (1 - prior) * n_pos / (len(anypos) - n_pos)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


@dataclass
class SentenceClassifier:
    types: list[str]
    c1: float = 4.0
    c2: float = 0.5  # chosen with the decision scale by nested CV by document (extract_generalisation.py --candidate)
    c_lex: float = 8.0
    negative_prior: float = 0.9
    # stage 2's decision prior (its calibration and thresholds; None: negative_prior) and per-type exceptions.
    # The cascade before it (stage 1, the lexical gate and which candidates get an embedding) stays at
    # negative_prior, so a looser decision does not change which sentences are looked at.
    # 0.8 / negative_sentiment 0.9: chosen on the customer trial, checked on trial B and by nested CV (NOTES.md).
    decision_prior: float | None = 0.8
    type_prior: dict[str, float] = field(default_factory=lambda: {"negative_sentiment": 0.9})
    target_precision: float = 0.6
    stage1_recall: float = 0.95
    lex_gate_recall: float = 0.92
    folds: int = 5
    word_weight: float = 1.0  # weight of the hashed words beside the embedding in stage 2 (see _stage2_matrix)
    # decision sensitivity per type ("*": every other type): the out-of-fold thresholds are multiplied by it when
    # predicting. Corpus sentences are cleaner than real mail, so corpus thresholds can be too strict on it; the
    # shipped values are chosen by cross-validation by document on real text (extract_generalisation.py
    # --tune-scale), never read off one split. Empty: the corpus thresholds as fitted.
    threshold_scale: dict[str, float] = field(default_factory=dict)
    # a further multiplier per source kind ("notes": 0.6): meeting notes and call write-ups are denser in signals
    # than mail, so the same sentence is likelier a signal there. Kinds not named keep 1.0. Chosen on a customer
    # workspace and checked on a second one never used to choose (NOTES.md); empty: every kind as fitted.
    kind_scale: dict[str, float] = field(default_factory=dict)
    # fitted state
    w1: np.ndarray | None = None
    b1: float = 0.0
    t1: float = 0.0
    t_lex: float = 0.0
    w2: np.ndarray | None = None  # (T, D)
    b2: np.ndarray | None = None
    platt2: np.ndarray | None = None  # (T, 2): a, b
    thr2: np.ndarray | None = None
    wl: np.ndarray | None = None  # lexical twin (T, D_lex)
    bl: np.ndarray | None = None
    plattl: np.ndarray | None = None
    thrl: np.ndarray | None = None
    report: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ fitting
    def fit(self, texts: Sequence[str], cues: np.ndarray, Y: np.ndarray, groups: Sequence[Any],
            embeddings: np.ndarray, weights: np.ndarray | None = None) -> SentenceClassifier:
        """``texts`` normalised sentences, ``cues`` (n, C) cue features, ``Y`` (n, T) 0/1, ``embeddings`` (n, 384).

        ``weights`` (n,) scale rows in the logistic fits (a CSM's verdict counts more than one corpus line);
        None fits exactly as before (same corpus, same artefact)."""
        from sklearn.model_selection import GroupKFold

        Y = np.asarray(Y, dtype=np.int8)
        n, T = Y.shape
        if T != len(self.types):
            raise ValueError("Y has a column per type")
        anypos = Y.max(axis=1) > 0
        n_pos, n_neg = int(anypos.sum()), int((~anypos).sum())
        if n_neg == 0 or n_pos == 0:
            raise ValueError("training data needs both positive and negative sentences")
        w_neg = _negative_weight(self.negative_prior, anypos)
        check_kind_scale(self.kind_scale)  # a clear error before minutes of fitting
        d_prior = self.negative_prior if self.decision_prior is None else self.decision_prior
        bad = sorted(set(self.type_prior) - set(self.types))
        if bad:
            raise ValueError(f"type_prior names an unknown signal type {bad[0]!r}")
        for name, prior in (("decision_prior", d_prior), *((f"type_prior[{t!r}]", v) for t, v in self.type_prior.items())):
            if isinstance(prior, bool) or not isinstance(prior, (int, float)) or not 0 < float(prior) < 1:
                raise ValueError(f"{name} = {prior!r} is not a share between 0 and 1")
        stage2_priors = [self.type_prior.get(t, d_prior) for t in self.types]
        X1 = _stage1_matrix(texts, cues)
        XL = _lex_matrix(texts, cues)
        X2 = _stage2_matrix(embeddings, XL, self.word_weight)
        oof1 = np.zeros(n)
        oof2 = np.zeros((n, T))
        oofl = np.zeros((n, T))
        gkf = GroupKFold(n_splits=self.folds)
        wt = (lambda idx: None) if weights is None else (lambda idx: np.asarray(weights, dtype=np.float64)[idx])
        for tr, te in gkf.split(X2, Y, groups):
            w, b = self._fit_binary(X1[tr], anypos[tr], self.c1, wt(tr))
            oof1[te] = X1[te] @ w + b
            W, B = self._fit_ovr(X2[tr], Y[tr], self.c2, wt(tr))
            oof2[te] = X2[te] @ W.T + B
            W, B = self._fit_ovr(XL[tr], Y[tr], self.c_lex, wt(tr))
            oofl[te] = XL[te] @ W.T + B
        # stage 1 threshold: keep stage1_recall of positive sentences out of fold
        self.t1 = float(np.quantile(oof1[anypos], 1 - self.stage1_recall))
        gate1 = oof1 >= self.t1
        self.plattl, self.thrl, repl = self._calibrate(oofl, Y, [self.negative_prior] * T, anypos, gate1)
        # embedding gate: the lexical twin's best ratio probability / threshold; keep lex_gate_recall of the
        # positives stage 1 passed, so most candidates are settled without an embedding
        ratio = self._lex_ratio(oofl)
        self.t_lex = float(np.quantile(ratio[anypos & gate1], 1 - self.lex_gate_recall))
        gate = gate1 & (ratio >= self.t_lex)
        self.platt2, self.thr2, rep2 = self._calibrate(oof2, Y, stage2_priors, anypos, gate)
        self.report = {
            "sentences": n, "positive_sentences": n_pos, "negative_sentences": n_neg,
            "negative_weight": round(float(w_neg), 4), "negative_prior": self.negative_prior,
            "folds": self.folds, "groups": int(len(set(groups))),
            "stage1": {"threshold": round(self.t1, 4), "oof_recall": round(float(gate1[anypos].mean()), 4),
                       "oof_pass_rate_negatives": round(float(gate1[~anypos].mean()), 4)},
            "embedding_gate": {"threshold": round(self.t_lex, 4), "oof_recall": round(float(gate[anypos].mean()), 4),
                               "oof_pass_rate_negatives": round(float(gate[~anypos].mean()), 4)},
            "embedding_model": rep2, "lexical_model": repl,
        }
        # final models on everything
        everything = np.arange(n)
        self.w1, self.b1 = self._fit_binary(X1, anypos, self.c1, wt(everything))
        self.w2, self.b2 = self._fit_ovr(X2, Y, self.c2, wt(everything))
        self.wl, self.bl = self._fit_ovr(XL, Y, self.c_lex, wt(everything))
        return self

    @staticmethod
    def _fit_binary(X: Any, y: np.ndarray, C: float, weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression(C=C, max_iter=3000, solver="liblinear", class_weight="balanced", random_state=0)
        if weights is None:
            m.fit(X, y.astype(int))
        else:
            m.fit(X, y.astype(int), sample_weight=weights)
        return m.coef_[0].astype(np.float32), float(m.intercept_[0])

    @staticmethod
    def _fit_ovr(X: Any, Y: np.ndarray, C: float, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.linear_model import LogisticRegression

        W = np.zeros((Y.shape[1], X.shape[1]), dtype=np.float32)
        B = np.full(Y.shape[1], -10.0, dtype=np.float32)
        for j in range(Y.shape[1]):
            y = Y[:, j]
            if y.min() == y.max():
                continue
            m = LogisticRegression(C=C, max_iter=3000, solver="liblinear", class_weight="balanced", random_state=0)
            if weights is None:
                m.fit(X, y.astype(int))
            else:
                m.fit(X, y.astype(int), sample_weight=weights)
            W[j], B[j] = m.coef_[0], m.intercept_[0]
        return W, B

    def _calibrate(self, scores: np.ndarray, Y: np.ndarray, priors: Sequence[float], anypos: np.ndarray,
                   gate: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Platt scaling per type on out-of-fold scores (negatives weighted as ``priors[j]`` of all sentences),
        then thresholds."""
        from sklearn.linear_model import LogisticRegression

        T = Y.shape[1]
        platt = np.zeros((T, 2))
        thr = np.ones(T)
        rep: dict[str, Any] = {}
        for j, t in enumerate(self.types):
            y = Y[:, j].astype(int)
            sw = np.where(anypos, 1.0, _negative_weight(priors[j], anypos))
            if y.sum() < 3:
                platt[j] = (1.0, -10.0)
                rep[t] = {"positives": int(y.sum()), "threshold": None}
                continue
            m = LogisticRegression(C=1e4, max_iter=1000, solver="lbfgs")
            m.fit(scores[:, j : j + 1], y, sample_weight=sw)
            platt[j] = (float(m.coef_[0, 0]), float(m.intercept_[0]))
            p = _sigmoid(platt[j, 0] * scores[:, j] + platt[j, 1]) * gate
            best = None
            for th in THRESHOLD_GRID:
                pred = p >= th
                tp = float((pred & (y == 1)).sum())
                fp = float((sw * (pred & (y == 0))).sum())
                rec = tp / y.sum()
                prec = tp / (tp + fp) if tp + fp else 0.0
                f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
                key = (prec >= self.target_precision, f1 if prec >= self.target_precision else prec)
                if best is None or key > best[0]:
                    best = (key, float(th), prec, rec, f1)
            assert best is not None
            thr[j] = best[1]
            rep[t] = {"positives": int(y.sum()), "threshold": best[1], "prior": priors[j],
                      "oof_precision_at_prior": round(best[2], 4),
                      "oof_recall": round(best[3], 4), "oof_f1_at_prior": round(best[4], 4),
                      "meets_target": bool(best[0][0])}
        return platt, thr, rep

    # ------------------------------------------------------------------------------------------ predicting
    def stage1(self, texts: Sequence[str], cues: np.ndarray) -> np.ndarray:
        """Stage-1 margin per sentence; a sentence is a candidate when it is >= ``t1``."""
        if not len(texts):
            return np.zeros(0)
        return _stage1_matrix(texts, cues) @ self.w1 + self.b1

    def scale(self) -> np.ndarray:
        """(T,) multipliers of the per-type thresholds (see ``threshold_scale``)."""
        return decision_scale(self.types, self.threshold_scale)

    def _lex_ratio(self, lex_scores: np.ndarray, thr: np.ndarray | None = None) -> np.ndarray:
        p = _sigmoid(self.plattl[:, 0] * lex_scores + self.plattl[:, 1])
        return (p / np.clip(self.thrl if thr is None else thr, 1e-6, None)).max(axis=1)

    def lexical(self, texts: Sequence[str], cues: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lexical twin: (calibrated probabilities (n, T), thresholds (T,), gate ratio (n,)); a sentence needs an
        embedding when its ratio is >= ``t_lex`` (the higher, the likelier a signal)."""
        s = np.asarray(_lex_matrix(texts, cues) @ self.wl.T) + self.bl
        thr = self.thrl * self.scale()
        return _sigmoid(self.plattl[:, 0] * s + self.plattl[:, 1]), thr, self._lex_ratio(s, thr)

    def predict_proba(self, cues: np.ndarray, embeddings: np.ndarray | None = None,
                      texts: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated probabilities (n, T), thresholds (T,)): the embedding model, or the lexical twin
        when ``embeddings`` is None (then ``texts`` are needed)."""
        XL = _lex_matrix(texts or [], cues)
        if embeddings is not None:
            s = np.asarray(_stage2_matrix(embeddings, XL, self.word_weight) @ self.w2.T) + self.b2
            return _sigmoid(self.platt2[:, 0] * s + self.platt2[:, 1]), self.thr2 * self.scale()
        s = XL @ self.wl.T + self.bl
        return _sigmoid(self.plattl[:, 0] * np.asarray(s) + self.plattl[:, 1]), self.thrl * self.scale()

    # ------------------------------------------------------------------------------------------ storage
    _ARRAYS = ("w1", "w2", "b2", "platt2", "thr2", "wl", "bl", "plattl", "thrl")

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        arrays["w1"] = arrays["w1"].astype(np.float16)  # stage 1 is a filter: half precision is plenty
        arrays["wl"] = arrays["wl"].astype(np.float16)
        arrays["w2"] = arrays["w2"].astype(np.float16)
        arrays["scalars"] = np.asarray([self.b1, self.t1, self.t_lex], dtype=np.float64)
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def save(self, npz_path: Path, meta_path: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the arrays and their metadata (version, content hash, parameters, OOF report)."""
        data = self.to_bytes()
        npz_path.write_bytes(data)
        meta = {
            "format": FORMAT,
            "sha256": hashlib.sha256(data).hexdigest(),
            "types": self.types,
            "params": {k: getattr(self, k) for k in ("c1", "c2", "c_lex", "negative_prior", "decision_prior",
                                                      "type_prior", "target_precision", "stage1_recall",
                                                      "lex_gate_recall", "folds", "word_weight", "threshold_scale",
                                                      "kind_scale")},
            "features": {"word": WORD_FEATURES, "char": CHAR_FEATURES, "lex": LEX_FEATURES},
            "oof_report": self.report,
            **(extra or {}),
        }
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return meta

    @classmethod
    def from_bytes(cls, data: bytes, meta: dict[str, Any]) -> SentenceClassifier:
        if meta.get("format") != FORMAT:
            raise ValueError(f"sentence model format {meta.get('format')!r} is not {FORMAT}")
        feats = meta.get("features", {})
        if feats != {"word": WORD_FEATURES, "char": CHAR_FEATURES, "lex": LEX_FEATURES}:
            raise ValueError("sentence model was fitted with other feature sizes; refit it")
        z = np.load(io.BytesIO(data))
        m = cls(types=list(meta["types"]), **meta.get("params", {}))
        for k in cls._ARRAYS:
            setattr(m, k, z[k].astype(np.float32))
        m.b1, m.t1, m.t_lex = (float(x) for x in z["scalars"])
        m.report = meta.get("oof_report", {})
        decision_scale(m.types, m.threshold_scale)  # a clear error now, not at the first prediction
        check_kind_scale(m.kind_scale)
        return m

    def kind_factor(self, kind: str) -> float:
        """The threshold multiplier of a source kind (see ``kind_scale``; checked when fitted or loaded)."""
        return float(self.kind_scale.get(kind, 1.0))


SCALE_RANGE = (0.2, 3.0)


def decision_scale(types: Sequence[str], scale: dict[str, float]) -> np.ndarray:
    """Per-type threshold multipliers from ``{"*": default, type: value}``; a clear error on unknown types or
    values outside ``SCALE_RANGE`` (a scale of 0 would fire on everything)."""
    if not isinstance(scale, dict):
        raise ValueError("threshold_scale must be a mapping of signal type (or '*') to a number")
    bad = sorted(set(scale) - set(types) - {"*"})
    if bad:
        raise ValueError(f"threshold_scale names an unknown signal type {bad[0]!r}")
    lo, hi = SCALE_RANGE
    for k, v in scale.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            raise ValueError(f"threshold_scale[{k!r}] = {v!r} is not a number in [{lo}, {hi}]")
    d = float(scale.get("*", 1.0))
    return np.asarray([float(scale.get(t, d)) for t in types])


def check_kind_scale(scale: dict[str, float]) -> None:
    """A clear error for a ``kind_scale`` that is not a mapping of kind to a number in ``SCALE_RANGE``."""
    if not isinstance(scale, dict):
        raise ValueError("kind_scale must be a mapping of source kind to a number")
    lo, hi = SCALE_RANGE
    for k, v in scale.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            raise ValueError(f"kind_scale[{k!r}] = {v!r} is not a number in [{lo}, {hi}]")


def fit_from_records(records: Sequence[dict[str, Any]], types: list[str], cue_fn: Callable[[list[str], list[str]], np.ndarray],
                     embed: Callable[[list[str]], np.ndarray], norm: Callable[[str], str],
                     **params: Any) -> tuple[SentenceClassifier, dict[str, Any]]:
    """Fit from corpus records ``{"text", "labels", "genre", "group"}``; returns the model and corpus facts."""
    texts = [norm(r["text"]) for r in records]
    genres = [r.get("genre", "email") for r in records]
    index = {t: i for i, t in enumerate(types)}
    Y = np.zeros((len(records), len(types)), dtype=np.int8)
    for i, r in enumerate(records):
        for lab in r["labels"]:
            Y[i, index[lab]] = 1
    cues = cue_fn(texts, genres)
    emb = embed(texts)
    weights = None
    if any("weight" in r for r in records):
        weights = np.asarray([float(r.get("weight", 1.0)) for r in records], dtype=np.float64)
    model = SentenceClassifier(types=types, **params).fit(texts, cues, Y, [r["group"] for r in records], emb,
                                                          weights=weights)
    return model, {"per_type_positives": {t: int(Y[:, j].sum()) for j, t in enumerate(types)}}


@dataclass
class FoldVariant:
    """One training set to cross-validate: its labels, which rows it may train on, row weights, and the fitted
    model whose decision rule (stage-1 threshold, Platt scaling, per-type thresholds) is applied."""

    name: str
    Y: np.ndarray  # (n, T) the labels this variant trains on
    train: np.ndarray  # (n,) bool: rows this variant may learn from
    model: SentenceClassifier
    weights: np.ndarray | None = None


def out_of_fold_decisions(texts: Sequence[str], cues: np.ndarray, embeddings: np.ndarray, groups: Sequence[Any],
                          variants: Sequence[FoldVariant], folds: int = 5) -> dict[str, np.ndarray]:
    """Per variant, the (n, T) 0/1 decisions on every row made by models that never saw its fold.

    All variants share the same folds (GroupKFold over ``groups``), so an old and a new training set are
    compared on exactly the same held-out rows. Each fold model is stage 1 plus the stage-2 embedding model
    (the lexical gate in between is left out: it only decides which candidates get embedded)."""
    from sklearn.model_selection import GroupKFold

    X1 = _stage1_matrix(texts, cues)
    XL = _lex_matrix(texts, cues)
    X2s = {w: _stage2_matrix(embeddings, XL, w) for w in {v.model.word_weight for v in variants}}
    n = len(texts)
    out = {v.name: np.zeros((n, len(v.model.types)), dtype=np.int8) for v in variants}
    for tr_all, te in GroupKFold(n_splits=folds).split(X1, groups=groups):
        for v in variants:
            tr = tr_all[v.train[tr_all]]
            Y = np.asarray(v.Y, dtype=np.int8)
            anypos = Y[tr].max(axis=1) > 0
            if anypos.all() or not anypos.any():
                continue  # a fold without both kinds of sentence decides nothing
            w = None if v.weights is None else np.asarray(v.weights, dtype=np.float64)[tr]
            m = v.model
            w1, b1 = m._fit_binary(X1[tr], anypos, m.c1, w)
            X2 = X2s[m.word_weight]
            W, B = m._fit_ovr(X2[tr], Y[tr], m.c2, w)
            gate = (X1[te] @ w1 + b1) >= m.t1
            s = np.asarray(X2[te] @ W.T) + B
            p = _sigmoid(m.platt2[:, 0] * s + m.platt2[:, 1])
            out[v.name][te] = ((p >= m.thr2) & gate[:, None]).astype(np.int8)
    return out
