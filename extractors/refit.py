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

TRAINING_DIR = Path(__file__).resolve().parent / "training"
PACKAGE_DIR = Path(__file__).resolve().parent
GROUP_SIZE = 8
MODEL_VERSION = 1
MAX_CORPUS_LINES = 200_000


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
            key = " ".join(text.lower().split())
            if key in seen:
                continue
            seen.add(key)
            genre = rec.get("genre") if rec.get("genre") in ("email", "transcript", "notes", "chat", "ticket") else "email"
            out.append({"text": text, "labels": sorted(set(labels)), "genre": genre,
                        "group": f"{f.stem}:{(n - 1) // GROUP_SIZE}"})
            if len(out) > MAX_CORPUS_LINES:
                raise InputError(f"training corpus has more than {MAX_CORPUS_LINES} lines")
    return out, h.hexdigest()


def refit(out_dir: Path = PACKAGE_DIR, directory: Path = TRAINING_DIR, embed: Any = None, **params: Any) -> dict[str, Any]:
    """Fit on the corpus, write ``sentence_model.npz`` + ``sentence_model.json`` to ``out_dir``; return the metadata."""
    from . import learned
    from .classifier import fit_from_records
    from .encoder import shared_encoder

    records, corpus_hash = load_corpus(directory)
    types = list(taxonomy())
    model, facts = fit_from_records(records, types, learned.cue_features, embed or shared_encoder().encode,
                                    learned.normalise_sentence, **params)
    extra = {"model_version": MODEL_VERSION, "corpus_sha256": corpus_hash, "corpus_sentences": len(records),
             **facts}
    out_dir.mkdir(parents=True, exist_ok=True)
    return model.save(out_dir / learned.MODEL_NPZ, out_dir / learned.MODEL_META, extra)
