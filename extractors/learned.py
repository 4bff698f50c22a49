"""Offline extractor that decides with a learned sentence classifier (alone: ``--extractor learned``).

Why a second offline extractor: the cue rules of :mod:`extractors.rules` were tuned on the documents they were
scored on and lose most of their figures on unseen business email. Here the cue patterns are only features;
the DECISION is the two-stage classifier of :mod:`extractors.classifier`, fitted on the project's own training
corpus (``extractors/training/``, written from the taxonomy, never from an evaluation document; refit with
``healthtrace extractor refit``): stage 1 picks candidate sentences cheaply from hashed n-grams and cue hits, a
lexical twin ranks them, and only the likeliest few are embedded (MiniLM, cached by sentence hash) for stage 2,
with per-type thresholds and calibrated confidences chosen out of fold. Signals per document are capped (real
documents are mostly negative sentences). A signal's citation is its sentence, so ``text[start:end] == quote``
holds by construction; its ``extractor_version`` carries the code digest and the model's version and hash.

The default ``offline`` extractor (:mod:`extractors.offline`) uses it for mail and notes and, beside the rules,
for call transcripts; short consumer chat and tickets stay with the rules (NOTES.md has the figures).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from .base import register_extractor
from .classifier import SentenceClassifier
from .errors import ConfigError
from .grounding import citation_for_span
from .models import Signal, SourceDocument, taxonomy
from .rules import (
    MAX_SIGNALS_PER_DOC,
    SEVERITY_BASE,
    Prepared,
    _candidates,
    _Compiled,
    _compiled,
    _Hit,
    _label,
    _sentence_hits,
    _sentiment,
    prepare,
)
from .segmenter import Sentence

NAME = "learned"


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """A digest of the code and cue data that decide the output (computed once per process)."""
    from importlib import resources

    h = hashlib.sha256()
    pkg = resources.files(__package__)
    for name in ("learned.py", "rules.py", "patterns.py", "segmenter.py", "classifier.py"):
        try:
            h.update(pkg.joinpath(name).read_bytes())
        except OSError:
            pass
    return h.hexdigest()[:8]


def _version(base: str, model_dir: Path | None = None) -> str:
    """Release number, the code digest and the model's stamp: a refitted artefact changes what signals record."""
    return f"{base}+{_code_digest()}.{model_stamp(model_dir)}"


# ----------------------------------------------------------------------------------------- cue features
KINDS = ("email", "transcript", "notes", "chat", "ticket")


def normalise_sentence(text: str) -> str:
    """A free-standing sentence (training corpus, a query) in the form the segmenter gives ``Sentence.norm``."""
    from .grounding import TYPOGRAPHIC_MAP

    return " ".join(text.translate(TYPOGRAPHIC_MAP).lower().split())


def _cue_row(c: _Compiled, sent: Sentence, cand: set[int], kind: str, types: list[str]) -> tuple[np.ndarray, list[_Hit]]:
    hits, lex = _sentence_hits(c, sent, cand, kind in ("chat", "ticket"), kind == "transcript")
    neg, pos = _sentiment(c, sent, lex)
    row = np.zeros(len(types) + 4 + len(KINDS), dtype=np.float32)
    idx = {t: i for i, t in enumerate(types)}
    for h in hits:
        row[idx[h.type]] = max(row[idx[h.type]], h.confidence)
    n = len(types)
    row[n] = min(neg, 4.0) / 4.0
    row[n + 1] = min(pos, 4.0) / 4.0
    row[n + 2] = 1.0 if sent.question else 0.0
    row[n + 3] = min(len(sent.norm), 300) / 300.0
    if kind in KINDS:
        row[n + 4 + KINDS.index(kind)] = 1.0
    return row, hits


def cue_features(norms: list[str], kinds: list[str]) -> np.ndarray:
    """Cue-pattern features of free-standing normalised sentences (for fitting): one row per sentence."""
    c = _compiled()
    types = list(taxonomy())
    rows = []
    for norm, kind in zip(norms, kinds):
        sent = Sentence(0, len(norm), norm, question=norm.rstrip().endswith("?"))
        cand = _candidates(c, [sent])[0]
        rows.append(_cue_row(c, sent, cand, kind, types)[0])
    return np.vstack(rows) if rows else np.zeros((0, len(types) + 4 + len(KINDS)), dtype=np.float32)


# ----------------------------------------------------------------------------------------- the model
MODEL_NPZ = "sentence_model.npz"
MODEL_META = "sentence_model.json"


def _read_model_files(model_dir: Path | None) -> tuple[bytes, str]:
    """The artefact's bytes and metadata text: from ``model_dir`` when given (a registered extractor version),
    else the copy shipped in the package."""
    if model_dir is not None:
        return (Path(model_dir) / MODEL_NPZ).read_bytes(), (Path(model_dir) / MODEL_META).read_text("utf-8")
    from importlib import resources

    pkg = resources.files(__package__)
    return pkg.joinpath(MODEL_NPZ).read_bytes(), pkg.joinpath(MODEL_META).read_text("utf-8")


def load_model(model_dir: Path | None = None) -> tuple[SentenceClassifier, dict]:
    """The fitted sentence classifier in ``model_dir`` (injected by the edge: the active extractor version), or
    the one shipped in the package (refit: ``healthtrace extractor refit``). Cached per directory."""
    return _load_model(str(Path(model_dir).resolve()) if model_dir is not None else None)


@lru_cache(maxsize=4)
def _load_model(model_dir: str | None) -> tuple[SentenceClassifier, dict]:
    import json

    where = model_dir or "the package"
    try:
        data, meta_text = _read_model_files(Path(model_dir) if model_dir else None)
        meta = json.loads(meta_text)
    except (FileNotFoundError, OSError) as e:
        raise ConfigError(f"sentence model missing in {where} ({e}); run: healthtrace extractor refit") from None
    except ValueError as e:
        raise ConfigError(f"{MODEL_META} in {where} is not valid JSON ({e})") from None
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise ConfigError(f"{MODEL_NPZ} in {where} does not match the hash in {MODEL_META}; "
                          "run: healthtrace extractor refit")
    try:
        return SentenceClassifier.from_bytes(data, meta), meta
    except (ValueError, KeyError) as e:
        raise ConfigError(f"{MODEL_NPZ} in {where} cannot be used ({e}); run: healthtrace extractor refit") from None


def model_stamp(model_dir: Path | None = None) -> str:
    """``m<version>-<sha8>`` of the model in ``model_dir`` (default: the shipped one), from its metadata, or
    ``none`` when it is missing."""
    import json

    try:
        meta = json.loads(_read_model_files(model_dir)[1])
    except (FileNotFoundError, OSError, ValueError):
        return "none"
    stamp = f"m{meta.get('model_version', meta.get('format'))}-{meta['sha256'][:8]}"
    scale = (meta.get("params") or {}).get("threshold_scale")
    kinds = (meta.get("params") or {}).get("kind_scale")
    decision = {"threshold_scale": scale, "kind_scale": kinds} if kinds else scale
    if decision:  # the decision rule is part of what a signal was decided by (one digest: versions stay short)
        stamp += "-s" + hashlib.sha256(json.dumps(decision, sort_keys=True).encode()).hexdigest()[:6]
    return stamp


VERSION = _version("2.0.0")


# Signals per document: real documents are mostly negative sentences; a model that fires on many sentences of
# one email is wrong more often than right. Transcripts are long, so they get more room.
MAX_PER_DOC = {"email": 4, "notes": 5, "transcript": 12, "chat": 3, "ticket": 4}
PER_SENTENCES = {"email": 12, "notes": 10, "transcript": 25, "chat": 10, "ticket": 10}
MAX_PER_TYPE = {"email": 2, "notes": 2, "transcript": 6, "chat": 2, "ticket": 2}
MAX_CANDIDATES = {"email": 24, "notes": 24, "transcript": 60, "chat": 8, "ticket": 16}  # stage 1 -> lexical twin
MAX_EMBEDDED = {"email": 8, "notes": 10, "transcript": 4, "chat": 3, "ticket": 6}  # lexical twin -> stage 2
MAX_TYPES_PER_SENTENCE = 2
MIN_WORDS = 3
_WORDS = re.compile(r"[a-z0-9']+")


def _stack(work: list, rows: list[list[int]]) -> tuple[list[str], np.ndarray]:
    """The normalised texts and cue rows of the given sentences of each document, concatenated in order."""
    texts = [w[0][i].norm for w, idx in zip(work, rows) for i in idx]
    cues = [w[2][idx] for w, idx in zip(work, rows) if idx]
    return texts, (np.vstack(cues) if cues else np.zeros((0, work[0][2].shape[1] if work else 0), dtype=np.float32))


def _split(a: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Rows of ``a`` back per document (``sizes`` rows each, in order)."""
    out, pos = [], 0
    for n in sizes:
        out.append(a[pos : pos + n])
        pos += n
    return out


class LearnedExtractor:
    """Cue features + learned sentence classifier. Stateless apart from caches; safe to share between threads.

    ``embeddings=False`` uses the lexical twin of stage 2 (no MiniLM): faster, less accurate. ``model_dir`` holds
    another fitted artefact (an extractor version the edge chose); its stamp goes into ``version``.
    """

    name = NAME

    def __init__(self, embeddings: bool = True, model_dir: Path | None = None) -> None:
        self.embeddings = embeddings
        self.model_dir = model_dir
        self.model, self.meta = load_model(model_dir)
        self.version = VERSION if model_dir is None else _version("2.0.0", model_dir)

    def extract(self, doc: SourceDocument) -> list[Signal]:
        return self.extract_batch([doc])[0]

    def prepare_fork(self) -> None:
        """Import and warm what stage 1 and the lexical twin need (scikit-learn's vectorisers) and import the
        embedding runtime, before a pool forks: the workers then share them instead of each loading them.
        Starts no onnxruntime session (its threads would not survive the fork)."""
        cues = np.zeros((1, len(self.model.types) + 4 + len(KINDS)), dtype=np.float32)
        self.model.stage1(["warm up the vectorisers"], cues)
        self.model.lexical(["warm up the vectorisers"], cues)
        if self.embeddings:
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401

    def extract_batch(self, docs: list[SourceDocument],
                      prepared: list[Prepared | None] | None = None) -> list[list[Signal]]:
        """Signals per document, exactly what :meth:`extract` gives for each alone: stage 1, the lexical twin and
        stage 2 score each sentence on its own row, so documents share only the model calls (one stage-1 matrix,
        one lexical matrix, one embedding call for all their candidates: fewer, fuller batches).
        ``prepared``: per document, its :func:`extractors.rules.prepare` result where the caller has it."""
        c = _compiled()
        types = self.model.types
        width = len(types) + 4 + len(KINDS)
        work = []  # per document: (sentences, cue candidates, cue features, live sentence indices)
        for n, doc in enumerate(docs):
            pre = prepared[n] if prepared is not None else None
            sents, cands = pre if pre is not None else prepare(doc)
            cues = np.zeros((len(sents), width), dtype=np.float32)
            # "yeah.", "Thanks," and signatures carry no signal: only sentences of MIN_WORDS words reach stage 1
            live = [i for i, s in enumerate(sents) if len(_WORDS.findall(s.norm)) >= MIN_WORDS]
            for i in live:
                cues[i] = _cue_row(c, sents[i], cands[i], doc.kind, types)[0]
            work.append((sents, cands, cues, live))
        # stage 1: every live sentence of every document in one matrix
        s1_all = _split(self.model.stage1(*_stack(work, [w[3] for w in work])), [len(w[3]) for w in work])
        picked: list[list[int]] = []
        for doc, (sents, _, _, live), s1_live in zip(docs, work, s1_all):
            s1 = np.full(len(sents), -np.inf)
            if live:
                s1[live] = s1_live
            ok = [i for i in live if s1[i] >= self.model.t1]
            ok.sort(key=lambda i: (-s1[i], i))
            picked.append(sorted(ok[: MAX_CANDIDATES.get(doc.kind, 24)]))
        sizes = [len(ok) for ok in picked]
        if not sum(sizes):
            return [[] for _ in docs]
        probs_all, thr, ratio_all = self.model.lexical(*_stack(work, picked))
        if self.embeddings:
            from .encoder import shared_encoder

            # the lexical twin rejects the rest outright; the likeliest few get an embedding
            chosen = []
            for doc, ok, ratio in zip(docs, picked, _split(ratio_all, sizes)):
                f = self.model.kind_factor(doc.kind)
                ranked = sorted((-float(r), i) for r, i in zip(ratio, ok) if r / f >= self.model.t_lex)
                chosen.append(sorted(i for _, i in ranked[: MAX_EMBEDDED.get(doc.kind, 8)]))
            picked, sizes = chosen, [len(ok) for ok in chosen]
            if not sum(sizes):
                return [[] for _ in docs]
            texts, cues = _stack(work, picked)
            probs_all, thr = self.model.predict_proba(cues, shared_encoder().encode(texts), texts)
        return [self._signals(doc, w[0], w[1], ok, probs, thr) if ok else []
                for doc, w, ok, probs in zip(docs, work, picked, _split(probs_all, sizes))]

    def _signals(self, doc: SourceDocument, sents: list[Sentence], cands: list, ok: list[int], probs: np.ndarray,
                 thr: np.ndarray) -> list[Signal]:
        c = _compiled()
        kind = doc.kind
        types = self.model.types
        thr = thr * self.model.kind_factor(kind)
        hits: list[tuple[float, int, str]] = []  # (confidence, sentence index, type)
        for r, i in enumerate(ok):
            row = [(float(probs[r, j]), types[j]) for j in range(len(types)) if probs[r, j] >= thr[j]]
            row.sort(key=lambda x: (-x[0], x[1]))
            hits.extend((p, i, t) for p, t in row[:MAX_TYPES_PER_SENTENCE])
        hits.sort(key=lambda h: (-h[0], h[1], h[2]))
        cap = min(MAX_SIGNALS_PER_DOC, MAX_PER_DOC.get(kind, 4) + len(sents) // PER_SENTENCES.get(kind, 12))
        per_type: dict[str, int] = {}
        kept: list[tuple[float, int, str]] = []
        for h in hits:
            if len(kept) >= cap:
                break
            if per_type.get(h[2], 0) >= MAX_PER_TYPE.get(kind, 2):
                continue
            per_type[h[2]] = per_type.get(h[2], 0) + 1
            kept.append(h)
        kept.sort(key=lambda h: (h[1], c.type_order.get(h[2], 99)))
        out: list[Signal] = []
        for conf, i, type_ in kept:
            sent = sents[i]
            cue_hit = next((h for h in _cue_row(c, sent, cands[i], kind, types)[1] if h.type == type_), None)
            hedged = bool(c.hedge.search(sent.norm)) and type_ != "positive_sentiment"
            sev = SEVERITY_BASE.get(type_, 0.5) * (0.7 if hedged else 1.0) * (0.5 + 0.5 * conf)
            cit = citation_for_span(doc, sent.start, sent.end)
            snippet = " ".join(sent.norm.split())
            if len(snippet) > 90:
                snippet = snippet[:87] + "..."
            why = f"model{'+' + cue_hit.cue if cue_hit else ''}"
            out.append(
                Signal(
                    account_id=doc.account_id,
                    type=type_,
                    severity=round(min(1.0, max(0.0, sev)), 4),
                    confidence=round(min(1.0, max(0.0, conf)), 4),
                    occurred_at=cit.occurred_at or doc.occurred_at,
                    summary=f"{_label(type_)} [{why}{', hedged' if hedged else ''}]: '{snippet}'",
                    evidence=[cit],
                    extractor=NAME,
                    extractor_version=self.version,
                    source_id=doc.id,
                    hedged=hedged,
                )
            )
        return out


register_extractor(NAME, lambda **opts: LearnedExtractor(**opts))
