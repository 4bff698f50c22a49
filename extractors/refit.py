"""Refit the offline extractor's sentence classifier from the training corpus, reproducibly.

The corpus is data the project writes itself (``extractors/training/corpus_*.jsonl``: one
``{"text", "labels", "genre"}`` per line, ``labels == []`` for a negative), never evaluation documents.
Lines were written in runs of related sentences, so cross-validation groups consecutive lines of one file
(``GROUP_SIZE``) to keep near-paraphrases out of each other's folds. Same corpus, same artefact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import InputError
from .models import taxonomy
from .retrain import MAX_EXTRA_CHARS

TRAINING_DIR = Path(__file__).resolve().parent / "training"
PACKAGE_DIR = Path(__file__).resolve().parent
GROUP_SIZE = 8
MODEL_VERSION = 1
MAX_CORPUS_LINES = 200_000
MAX_EXTRA_RECORDS = 20_000  # feedback and distilled sentences added to one fit


def load_corpus(directory: Path = TRAINING_DIR) -> tuple[list[dict[str, Any]], str]:
    """All corpus records (deduplicated by text, first occurrence wins) and a hash of the corpus bytes."""
    known = set(taxonomy())
    files = sorted(directory.glob("corpus_*.jsonl"))
    if not files:
        raise InputError(f"no training corpus (corpus_*.jsonl) in {directory}")
    h = hashlib.sha256()
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for f in files:
        raw = f.read_bytes()
        h.update(f.name.encode() + b"\0" + raw)
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{f.name}:{n}: not valid JSON") from None
            text = rec.get("text")
            labels = rec.get("labels")
            if not isinstance(text, str) or not isinstance(labels, list) or not text.strip():
                raise InputError(f"{f.name}:{n}: needs a non-empty 'text' and a 'labels' list")
            bad = [x for x in labels if x not in known]
            if bad:
                raise InputError(f"{f.name}:{n}: unknown signal type {bad[0]!r}")
            key = text_key(text)
            if key in seen:
                continue
            seen.add(key)
            genre = rec.get("genre") if rec.get("genre") in ("email", "transcript", "notes", "chat", "ticket") else "email"
            out.append({"text": text, "labels": sorted(set(labels)), "genre": genre,
                        "group": f"{f.stem}:{(n - 1) // GROUP_SIZE}"})
            if len(out) > MAX_CORPUS_LINES:
                raise InputError(f"training corpus has more than {MAX_CORPUS_LINES} lines")
    return out, h.hexdigest()


def text_key(text: str) -> str:
    """What makes two training sentences the same one (case and spacing aside)."""
    return " ".join(text.lower().split())


def merge_records(corpus: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The corpus with extra training records (a tenant's verdicts, distilled claims) applied, in order.

    An extra record ``{"text", "labels", "rejected"?, "genre", "group", "weight"?}`` whose sentence is already in
    the corpus changes that line's labels (its types added, its ``rejected`` types removed: a CSM's verdict wins
    over the corpus); otherwise it is appended. Later extras win over earlier ones for the same sentence and type.
    """
    if len(extra) > MAX_EXTRA_RECORDS:
        raise InputError(f"{len(extra)} extra training records; the limit is {MAX_EXTRA_RECORDS}")
    known = set(taxonomy())
    out = [dict(r, labels=list(r["labels"])) for r in corpus]
    at = {text_key(r["text"]): i for i, r in enumerate(out)}
    for rec in extra:
        text = rec.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_EXTRA_CHARS:
            raise InputError(f"an extra training record needs a text of 1-{MAX_EXTRA_CHARS} characters")
        add, drop = set(rec.get("labels") or ()), set(rec.get("rejected") or ())
        bad = sorted((add | drop) - known)
        if bad:
            raise InputError(f"extra training record has an unknown signal type {bad[0]!r}")
        k = text_key(text)
        if k in at:
            r = out[at[k]]
            r["labels"] = sorted((set(r["labels"]) | add) - drop)
            r["rejected"] = sorted((set(r.get("rejected", ())) | drop) - add)
            r["weight"] = max(float(r.get("weight", 1.0)), float(rec.get("weight", 1.0)))
            r["extra"] = True
            continue
        genre = rec.get("genre") if rec.get("genre") in ("email", "transcript", "notes", "chat", "ticket") else "email"
        at[k] = len(out)
        out.append({"text": text, "labels": sorted(add - drop), "rejected": sorted(drop), "genre": genre,
                    "group": str(rec.get("group") or f"extra:{k[:40]}"), "weight": float(rec.get("weight", 1.0)),
                    "extra": True})
    return out


def _shipped_params_and_meta() -> tuple[dict[str, Any], dict[str, Any]]:
    """The shipped model's parameters and metadata ({} when it cannot be read)."""
    try:
        meta = json.loads((PACKAGE_DIR / "sentence_model.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}, {}
    return dict(meta.get("params") or {}), meta


def shipped_threshold_scale() -> tuple[dict[str, float], dict[str, Any] | None]:
    """The decision scale of the shipped model and its provenance (chosen by nested CV on real text, see the
    classifier): a refit keeps it, so refitting the same corpus gives the same decisions, and a tenant's fit
    starts from it."""
    params, meta = _shipped_params_and_meta()
    return dict(params.get("threshold_scale") or {}), meta.get("threshold_scale_provenance")


def shipped_kind_scale() -> tuple[dict[str, float], dict[str, Any] | None]:
    """The shipped model's per-kind threshold multipliers (see the classifier's ``kind_scale``) and where they were
    chosen: a refit keeps them."""
    params, meta = _shipped_params_and_meta()
    return dict(params.get("kind_scale") or {}), meta.get("kind_scale_provenance")


def refit(out_dir: Path = PACKAGE_DIR, directory: Path = TRAINING_DIR, embed: Any = None,
          extra_records: list[dict[str, Any]] | None = None, **params: Any) -> dict[str, Any]:
    """Fit on the corpus (plus ``extra_records``, see :func:`merge_records`), write ``sentence_model.npz`` +
    ``sentence_model.json`` to ``out_dir``; return the metadata. Without extras the artefact is the shipped one."""
    from . import learned
    from .classifier import fit_from_records
    from .encoder import shared_encoder

    records, corpus_hash = load_corpus(directory)
    if extra_records:
        records = merge_records(records, extra_records)
    types = list(taxonomy())
    scale, provenance = shipped_threshold_scale()
    params.setdefault("threshold_scale", scale)
    kinds, kinds_provenance = shipped_kind_scale()
    params.setdefault("kind_scale", kinds)
    model, facts = fit_from_records(records, types, learned.cue_features, embed or shared_encoder().encode,
                                    learned.normalise_sentence, **params)
    extra = {"model_version": MODEL_VERSION, "corpus_sha256": corpus_hash, "corpus_sentences": len(records),
             **facts}
    if provenance and params["threshold_scale"] == scale:
        extra["threshold_scale_provenance"] = provenance
    if kinds_provenance and params["kind_scale"] == kinds:
        extra["kind_scale_provenance"] = kinds_provenance
    if extra_records:
        extra["extra_records"] = len(extra_records)
        extra["extra_sha256"] = hashlib.sha256(json.dumps(extra_records, sort_keys=True).encode()).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    return model.save(out_dir / learned.MODEL_NPZ, out_dir / learned.MODEL_META, extra)


def refit_and_compare(out_dir: Path, extra_records: list[dict[str, Any]], baseline: Any, *,
                      baseline_extra: list[dict[str, Any]] | None = None, directory: Path = TRAINING_DIR,
                      embed: Any = None, folds: int = 5, **params: Any) -> dict[str, Any]:
    """Fit the corpus + ``extra_records`` into ``out_dir`` and compare it with ``baseline`` (the fitted
    :class:`SentenceClassifier` in use, trained on the corpus + ``baseline_extra``) out of fold.

    Both training sets are cross-validated on the same GroupKFold folds over the union of their sentences
    (grouped by corpus run or by source document) and scored against the NEW labels (a CSM's verdict is the
    truth); each side applies its own fitted decision rule. Figures are given on all sentences and on the
    extra (feedback / distilled) sentences alone. The corpus is embedded once. Returns the new artefact's
    metadata with ``comparison``."""
    import numpy as np

    from . import learned
    from .classifier import FoldVariant, SentenceClassifier, out_of_fold_decisions
    from .encoder import shared_encoder
    from .retrain import per_type_figures

    corpus, corpus_hash = load_corpus(directory)
    new_records = merge_records(corpus, extra_records)
    old_records = merge_records(corpus, baseline_extra or [])
    types = list(taxonomy())
    if list(baseline.types) != types:
        raise InputError("the extractor in use was fitted on another taxonomy; compare against a refit of it")
    rows = list(new_records)
    at = {text_key(r["text"]): i for i, r in enumerate(rows)}
    in_old = np.zeros(len(rows) + len(old_records), dtype=bool)
    old_labels: dict[int, list[str]] = {}
    old_weight: dict[int, float] = {}
    for r in old_records:
        k = text_key(r["text"])
        if k not in at:  # a sentence only the old fit learned from: it trains the old side, is never scored
            at[k] = len(rows)
            rows.append(r)
        i = at[k]
        in_old[i] = True
        old_labels[i] = r["labels"]
        old_weight[i] = float(r.get("weight", 1.0))
    n = len(rows)
    in_old = in_old[:n]
    in_new = np.zeros(n, dtype=bool)
    in_new[: len(new_records)] = True
    index = {t: j for j, t in enumerate(types)}
    Y_new = np.zeros((n, len(types)), dtype=np.int8)
    Y_old = np.zeros((n, len(types)), dtype=np.int8)
    for i, r in enumerate(rows):
        for lab in r["labels"]:
            Y_new[i, index[lab]] = 1
        for lab in old_labels.get(i, []):
            Y_old[i, index[lab]] = 1
    w_new = np.asarray([float(r.get("weight", 1.0)) for r in rows])
    w_old = np.asarray([old_weight.get(i, 1.0) for i in range(n)])
    texts = [learned.normalise_sentence(r["text"]) for r in rows]
    cues = learned.cue_features(texts, [r.get("genre", "email") for r in rows])
    emb = (embed or shared_encoder().encode)(texts)
    groups = [r["group"] for r in rows]
    fit_idx = np.flatnonzero(in_new)
    if len(set(groups)) < folds:
        raise InputError(f"{len(set(groups))} groups of sentences cannot make {folds} folds; use fewer folds")
    params.setdefault("threshold_scale", dict(getattr(baseline, "threshold_scale", None) or {}))  # keep its decision
    params.setdefault("kind_scale", dict(getattr(baseline, "kind_scale", None) or {}))
    try:
        model = SentenceClassifier(types=types, folds=folds, **params).fit(
            [texts[i] for i in fit_idx], cues[fit_idx], Y_new[fit_idx], [groups[i] for i in fit_idx],
            emb[fit_idx], weights=w_new[fit_idx] if (w_new != 1.0).any() else None)
        decisions = out_of_fold_decisions(texts, cues, emb, groups, [
            FoldVariant("old", Y_old, in_old, baseline, w_old if (w_old != 1.0).any() else None),
            FoldVariant("new", Y_new, in_new, model, w_new if (w_new != 1.0).any() else None),
        ], folds=folds)
    except ValueError as e:  # too little data for the folds or no negatives/positives: the user's input
        raise InputError(f"cannot refit on this training data: {e}") from None
    extra_rows = in_new & np.asarray([bool(r.get("extra")) for r in rows])
    comparison: dict[str, Any] = {
        "folds": folds, "grouped_by": "corpus run / source document", "sentences": int(in_new.sum()),
        "extra_sentences": int(extra_rows.sum()), "old_only_sentences": int((in_old & ~in_new).sum()),
        "decision": "stage 1 gate + stage 2 embedding model, each side's own thresholds",
    }
    for side in ("old", "new"):
        comparison[side] = {"all": per_type_figures(Y_new, decisions[side], types, in_new),
                            "extra": per_type_figures(Y_new, decisions[side], types, extra_rows)}
    rejected = [(i, index[t]) for i, r in enumerate(rows) if in_new[i] for t in r.get("rejected", ())]
    for side in ("old", "new"):  # a CSM's rejection, out of fold: is the sentence still tagged with that type?
        comparison[side]["rejected_still_tagged"] = int(sum(decisions[side][i, j] for i, j in rejected))
    comparison["rejected_examples"] = len(rejected)
    comparison["delta_micro_f1"] = round(comparison["new"]["all"]["micro"]["f1"]
                                         - comparison["old"]["all"]["micro"]["f1"], 4)
    facts = {"per_type_positives": {t: int(Y_new[fit_idx, j].sum()) for j, t in enumerate(types)}}
    extra = {"model_version": MODEL_VERSION, "corpus_sha256": corpus_hash, "corpus_sentences": int(in_new.sum()),
             "extra_records": len(extra_records),
             "extra_sha256": hashlib.sha256(json.dumps(extra_records, sort_keys=True).encode()).hexdigest(), **facts}
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = model.save(out_dir / learned.MODEL_NPZ, out_dir / learned.MODEL_META, extra)
    return {**meta, "comparison": comparison}
