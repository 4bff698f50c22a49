"""Teaching the offline extractor from a tenant's own material: CSM verdicts (``extractor fit``) and an LLM's
verified claims (``extractor distill``). Pure functions on plain values; the edge (api/extractor_training.py)
reads the ledger, calls the LLM and registers the result.

Why these rules:
- the classifier decides per sentence, so a verdict or a claim teaches the sentence(s) its quote lies in;
- a confirmed signal is a positive of its type, a rejected one a hard negative of that type only (the sentence
  may still be another type), and a verdict weighs more than one corpus line (``FEEDBACK_WEIGHT``), so a
  handful of them can move a model fitted on thousands of sentences;
- only claims whose quote our code aligned to the source become training data (``doc.text[start:end] ==
  quote``): an invented quote teaches nothing;
- old and new fits are compared on the SAME folds (grouped by document), on the same labels.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import InputError
from .models import SourceDocument
from .segmenter import Sentence, sentences

FEEDBACK_WEIGHT = 5.0
DISTILL_WEIGHT = 2.0
MAX_FEEDBACK_EXAMPLES = 5_000
MAX_EXTRA_CHARS = 2_000  # one training sentence (extractors/refit.py refuses longer ones)
MAX_DISTILL_NEGATIVES_PER_DOC = 40
MIN_WORDS = 3


def _words(text: str) -> int:
    return len(text.split())


def covering_sentences(doc: SourceDocument, start: int, end: int, sents: Sequence[Sentence] | None = None) -> list[str]:
    """The source text of the sentences of ``doc`` that the span [start, end) touches (the quote itself when the
    segmenter finds none)."""
    sents = sentences(doc) if sents is None else sents
    out = [doc.text[s.start:s.end] for s in sents if s.start < end and start < s.end]
    return out or [doc.text[start:end]]


def feedback_records(verdicts: Iterable[dict[str, Any]], *, limit: int = MAX_FEEDBACK_EXAMPLES) -> list[dict[str, Any]]:
    """Training records from CSM verdicts ``{"verdict", "type", "text", "genre", "document"}`` (oldest first):
    one record per (sentence, verdict); folds group them by document. More than ``limit`` verdicts: the most
    recent ``limit`` are used."""
    items = list(verdicts)
    if limit < 1:
        raise InputError("the feedback limit must be at least 1")
    items = items[-limit:]
    out = []
    for v in items:
        if v["verdict"] not in ("confirm", "reject"):
            raise InputError(f"unknown verdict {v['verdict']!r}")
        text = " ".join(str(v["text"]).split())
        if _words(text) < 1 or len(text) > MAX_EXTRA_CHARS:  # a run-on "sentence" (a table, a log) teaches little
            continue
        pos = v["verdict"] == "confirm"
        out.append({"text": text, "labels": [v["type"]] if pos else [], "rejected": [] if pos else [v["type"]],
                    "genre": v.get("genre") or "email", "group": f"feedback:{v.get('document') or text[:40]}",
                    "weight": FEEDBACK_WEIGHT, "origin": "feedback", "verdict": v["verdict"]})
    return out


def distill_records(claims: Iterable[Any], *, max_negatives: int = MAX_DISTILL_NEGATIVES_PER_DOC) -> tuple[list[dict[str, Any]], int]:
    """Training records from the LLM's verified claims per document (``DocClaims`` of extractors/llm.py):
    each sentence a claim's quote lies in is a positive of the claim's type; up to ``max_negatives`` other
    sentences of the same document (of at least MIN_WORDS words) are negatives (the teacher named nothing
    there). Returns (records, claims refused because their quote does not sit at their offsets)."""
    out: list[dict[str, Any]] = []
    refused = 0
    for dc in claims:
        doc: SourceDocument = dc.doc
        sents = sentences(doc)
        labels: dict[int, set[str]] = defaultdict(set)
        for c in dc.claims:
            if not (0 <= c.start < c.end <= len(doc.text)) or doc.text[c.start:c.end] != c.quote:
                refused += 1  # never trust a claim our alignment did not place
                continue
            hit = [i for i, s in enumerate(sents) if s.start < c.end and c.start < s.end]
            for i in hit:
                labels[i].add(c.type)
        prov = {"origin": "distill", "prompt_version": dc.prompt_version, "model": dc.model, "document": doc.id}
        negatives = 0
        for i, s in enumerate(sents):
            text = " ".join(doc.text[s.start:s.end].split())
            if _words(text) < MIN_WORDS or len(text) > MAX_EXTRA_CHARS:
                continue
            if i in labels:
                out.append({"text": text, "labels": sorted(labels[i]), "genre": doc.kind,
                            "group": f"distill:{doc.id}", "weight": DISTILL_WEIGHT, **prov})
            elif negatives < max_negatives:
                negatives += 1
                out.append({"text": text, "labels": [], "genre": doc.kind, "group": f"distill:{doc.id}",
                            "weight": 1.0, **prov})
    return out, refused


# ----------------------------------------------------------------------------------------- figures
def per_type_figures(Y_true: np.ndarray, Y_pred: np.ndarray, types: Sequence[str],
                     mask: np.ndarray | None = None) -> dict[str, Any]:
    """Per-type precision/recall/F1 (scikit-learn) over the rows in ``mask``, plus micro figures."""
    from sklearn.metrics import precision_recall_fscore_support

    if mask is not None:
        Y_true, Y_pred = Y_true[mask], Y_pred[mask]
    out: dict[str, Any] = {"rows": int(len(Y_true)), "types": {}}
    if not len(Y_true):
        out["micro"] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return out
    p, r, f, s = precision_recall_fscore_support(Y_true, Y_pred, average=None, labels=list(range(len(types))),
                                                 zero_division=0)
    for j, t in enumerate(types):
        if s[j] or Y_pred[:, j].sum():
            out["types"][t] = {"precision": round(float(p[j]), 4), "recall": round(float(r[j]), 4),
                               "f1": round(float(f[j]), 4), "support": int(s[j]),
                               "predicted": int(Y_pred[:, j].sum())}
    mp, mr, mf, _ = precision_recall_fscore_support(Y_true, Y_pred, average="micro", zero_division=0)
    out["micro"] = {"precision": round(float(mp), 4), "recall": round(float(mr), 4), "f1": round(float(mf), 4),
                    "support": int(Y_true.sum())}
    return out


def not_worse(comparison: dict[str, Any], tolerance: float = 0.0) -> bool:
    """Is the new fit's out-of-fold micro-F1 at least the old one's (all rows, the same folds)?"""
    old, new = comparison["old"]["all"]["micro"]["f1"], comparison["new"]["all"]["micro"]["f1"]
    return new + tolerance >= old


# ----------------------------------------------------------------------------------------- sampling
def _rank(doc: SourceDocument, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{doc.id}".encode()).hexdigest()


def stratified_sample(docs: Sequence[SourceDocument], n: int, *, seed: int = 0) -> list[SourceDocument]:
    """``n`` documents spread over the strata (source kind, account) as evenly as they allow: strata take
    turns, each giving its next document in a seeded order. Deterministic for a seed."""
    if n < 1:
        raise InputError("--sample must be at least 1")
    strata: dict[tuple[str, str], list[SourceDocument]] = defaultdict(list)
    for d in docs:
        strata[(d.kind, d.account_id or "")].append(d)
    queues = [sorted(v, key=lambda d: _rank(d, seed)) for _, v in sorted(strata.items())]
    out: list[SourceDocument] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(out) < n:
                out.append(q[depth])
        depth += 1
    return out


def split_holdout(sample: Sequence[SourceDocument], holdout: float, *, seed: int = 0) -> tuple[list[SourceDocument], list[SourceDocument]]:
    """(training part, held-out part), each source kind split in the same proportion (at least one document
    held out and one kept when the sample has two or more)."""
    if not 0 < holdout < 1:
        raise InputError("--holdout must be between 0 and 1")
    by_kind: dict[str, list[SourceDocument]] = defaultdict(list)
    for d in sample:
        by_kind[d.kind].append(d)
    train: list[SourceDocument] = []
    held: list[SourceDocument] = []
    carry = 0.0
    for _, group in sorted(by_kind.items()):
        group = sorted(group, key=lambda d: _rank(d, seed + 1))
        want = len(group) * holdout + carry
        k = int(want)
        carry = want - k
        held += group[:k]
        train += group[k:]
    if len(sample) >= 2 and not held:
        held.append(train.pop())
    if len(sample) >= 2 and not train:
        train.append(held.pop())
    return train, held


# ----------------------------------------------------------------------------------------- agreement
def agreement(offline: dict[str, list[Any]], teacher: dict[str, list[Any]], types: Sequence[str]) -> dict[str, Any]:
    """Agreement of offline signals with the teacher's verified claims per document id, treating the teacher as
    the reference: an offline signal agrees when a claim of the same type overlaps its citation; precision =
    agreeing offline signals / offline signals, recall = claims an offline signal of their type overlaps /
    claims. ``offline``: doc id -> Signals; ``teacher``: doc id -> VerifiedClaims."""
    counts = {t: {"offline": 0, "teacher": 0, "offline_agreeing": 0, "teacher_found": 0} for t in types}
    for doc_id in sorted(set(offline) | set(teacher)):
        sigs = [(s.type, c.start, c.end) for s in offline.get(doc_id, []) if s.verified for c in s.evidence[:1]]
        refs = [(c.type, c.start, c.end) for c in teacher.get(doc_id, [])]
        for t, a, b in sigs:
            counts[t]["offline"] += 1
            counts[t]["offline_agreeing"] += any(t == rt and ra < b and a < rb for rt, ra, rb in refs)
        for t, a, b in refs:
            counts[t]["teacher"] += 1
            counts[t]["teacher_found"] += any(t == st and sa < b and a < sb for st, sa, sb in sigs)
    per_type = {}
    for t, c in counts.items():
        if not c["offline"] and not c["teacher"]:
            continue
        p = c["offline_agreeing"] / c["offline"] if c["offline"] else 0.0
        r = c["teacher_found"] / c["teacher"] if c["teacher"] else 0.0
        per_type[t] = {**c, "precision": round(p, 4), "recall": round(r, 4)}
    tot = {k: sum(c[k] for c in counts.values()) for k in ("offline", "teacher", "offline_agreeing", "teacher_found")}
    micro_p = tot["offline_agreeing"] / tot["offline"] if tot["offline"] else 0.0
    micro_r = tot["teacher_found"] / tot["teacher"] if tot["teacher"] else 0.0
    micro_f = 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0
    return {"documents": len(set(offline) | set(teacher)), "types": per_type,
            "micro": {**tot, "precision": round(micro_p, 4), "recall": round(micro_r, 4), "f1": round(micro_f, 4)}}
