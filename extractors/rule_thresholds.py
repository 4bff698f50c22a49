"""Thresholds and confidence calibration of the cue rules, chosen by grouped cross-validation on the corpus.

Why: the rules used to ship per-cue precision counts and sentiment thresholds read off the DEV evaluation
split (most counts rested on one or two observations, the email thresholds sat on a noise peak). Here both
come from the project's own training corpus (``extractors/training/``, written from the taxonomy), with
scikit-learn's ``GroupKFold`` over the corpus groups of :func:`extractors.refit.load_corpus` (runs of related
lines, so near-paraphrases never sit on both sides of a fold):

- **Sentiment thresholds** (lexicon score a sentence needs to be a positive/negative sentiment signal), per
  family of source kinds: in each fold the threshold with the best weighted F1 on the training folds is
  chosen; the shipped threshold is the median of the fold choices (stable where one grid point is a peak) and
  the held-out F1 of that procedure is recorded.
- **Cue precision** (an audit figure, not applied to confidences; see :mod:`extractors.rules`): how often a
  cue's hit on a corpus sentence carries the cue's type, shrunk towards the cue's prior weight by a Beta prior
  whose strength is the one with the lowest held-out log loss.

Every corpus sentence counts once. The corpus's unlabelled sentences are hard near misses written to look like
signals ("no concerns about the renewal"), i.e. they stand for the cue-matching part of real negatives, not
for all of them; weighting them up to the share of negatives in real documents (as the sentence classifier's
calibration does) would count every near miss many times and push every cue's precision towards zero. Deterministic:
same corpus, same file. Refit: ``python -m extractors.rule_thresholds`` (``--check`` fails when the shipped
file is stale).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import rules
from .refit import TRAINING_DIR, load_corpus
from .segmenter import Sentence

OUT_FILE = Path(__file__).resolve().parent / rules.THRESHOLDS_FILE
FOLDS = 5
GRID = tuple(round(0.5 + 0.1 * i, 2) for i in range(26))  # 0.5 .. 3.0
STRENGTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
# Kinds that share a threshold: too few sentiment sentences per kind to choose one each.
FAMILIES = {"long_form": ("email", "notes"), "transcript": ("transcript",), "short": ("chat", "ticket")}
SIGN = {"negative": "negative_sentiment", "positive": "positive_sentiment"}


@dataclass(frozen=True, slots=True)
class _Row:
    """One corpus sentence as the rules see it: its cue hits, lexicon scores and labels."""

    group: str
    kind: str
    labels: frozenset[str]
    sent: Sentence
    hits: tuple[tuple[str, str, float], ...]  # (type, cue id, raw confidence) per cue hit
    neg: float
    pos: float
    service: bool  # chat/ticket: the sentence names a product or service (the rules' chat filter)
    strong_neg: bool  # chat/ticket: a non-weak negative cue fired (the chat filter's other escape)


def _rows(records: Sequence[dict[str, Any]]) -> list[_Row]:
    from .learned import normalise_sentence
    from .models import taxonomy

    c = rules._compiled()
    tax = taxonomy()
    out = []
    for r in records:
        norm = normalise_sentence(r["text"])
        kind = r["genre"]
        sent = Sentence(0, len(norm), norm, question=norm.rstrip().endswith("?"))
        cand = rules._candidates(c, [sent])[0]
        hits, lex = rules._sentence_hits(c, sent, cand, kind in ("chat", "ticket"), kind == "transcript")
        neg, pos = rules._sentiment(c, sent, lex)
        strong = any(not h.weak and h.type != "negative_sentiment" and tax[h.type].polarity == -1 for h in hits)
        out.append(_Row(r["group"], kind, frozenset(r["labels"]), sent, tuple((h.type, h.cue, h.confidence) for h in hits),
                        neg, pos, bool(c.service.search(norm)), strong))
    return out


def _weights(rows: Sequence[_Row]) -> np.ndarray:
    """One per sentence (see the module docstring for why near misses are not weighted up)."""
    return np.ones(len(rows))


def _polar(c: Any, row: _Row, sign: str, t: float, other: float) -> bool:
    """Whether extraction emits ``sign`` sentiment on ``row`` with threshold ``t`` (the other sign at ``other``)."""
    thr = {"negative": {}, "positive": {}}
    thr[sign][row.kind] = t
    thr["positive" if sign == "negative" else "negative"][row.kind] = other
    hit = rules._polar_hit(c, row.sent, row.kind, row.neg, row.pos, None, thr)
    if hit is None or hit.type != SIGN[sign]:
        return False
    if row.kind in ("chat", "ticket") and sign == "negative" and not (row.service or row.strong_neg):
        return False
    return True


def _f1(pred: np.ndarray, gold: np.ndarray, w: np.ndarray) -> float:
    tp = float((w * (pred & gold)).sum())
    fp = float((w * (pred & ~gold)).sum())
    fn = float((w * (~pred & gold)).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _sentiment_thresholds(rows: list[_Row], w: np.ndarray, groups: np.ndarray) -> tuple[dict, dict]:
    """Per family and sign: median of the per-fold best thresholds; returns (thresholds, report)."""
    from sklearn.model_selection import GroupKFold

    c = rules._compiled()
    defaults = rules.DEFAULT_SENTIMENT_THRESHOLDS
    chosen: dict[str, dict[str, float]] = {"negative": {}, "positive": {}}
    report: dict[str, dict[str, Any]] = {}
    for fam, kinds in FAMILIES.items():
        idx = np.array([i for i, r in enumerate(rows) if r.kind in kinds])
        sub = [rows[i] for i in idx]
        for sign, type_ in SIGN.items():
            other_sign = "positive" if sign == "negative" else "negative"
            other = defaults[other_sign][kinds[0]]
            gold = np.array([type_ in r.labels for r in sub])
            pred = np.array([[_polar(c, r, sign, t, other) for t in GRID] for r in sub])  # rows x grid
            ws = w[idx]
            picks, held = [], []
            for tr, te in GroupKFold(n_splits=FOLDS).split(idx, groups=groups[idx]):
                scores = [_f1(pred[tr, j], gold[tr], ws[tr]) for j in range(len(GRID))]
                j = int(np.argmax(scores))  # first best: the lowest threshold among ties
                picks.append(GRID[j])
                held.append(_f1(pred[te, j], gold[te], ws[te]))
            t = float(np.median(picks))
            j = GRID.index(min(GRID, key=lambda g: abs(g - t)))
            for k in kinds:
                chosen[sign][k] = GRID[j]
            report[f"{fam}/{sign}"] = {"kinds": list(kinds), "threshold": GRID[j], "fold_choices": picks,
                                       "heldout_f1_per_fold": [round(x, 4) for x in held],
                                       "heldout_f1_mean": round(float(np.mean(held)), 4),
                                       "corpus_f1_at_threshold": round(_f1(pred[:, j], gold, ws), 4),
                                       "sentences": int(len(sub)), "labelled": int(gold.sum())}
    return chosen, report


def _cue_precision(rows: list[_Row], w: np.ndarray, groups: np.ndarray, thresholds: dict) -> tuple[dict, dict]:
    """Per cue: precision on the corpus shrunk to its prior, the prior's strength chosen by held-out log loss."""
    from sklearn.model_selection import GroupKFold

    from . import patterns as P

    c = rules._compiled()
    priors = {f"{t}/{cue[0]}": float(cue[2]) for t, cues in P.PATTERNS.items() for cue in cues}
    keys, right, row_of = [], [], []
    for i, r in enumerate(rows):
        seen: set[str] = set()
        for type_, cue, _ in r.hits:
            k = f"{type_}/{cue}"
            if k not in seen:
                seen.add(k)
                keys.append(k), right.append(type_ in r.labels), row_of.append(i)
        polar = rules._polar_hit(c, r.sent, r.kind, r.neg, r.pos, None, thresholds)
        if polar is not None:
            keys.append(f"{polar.type}/lexicon"), right.append(polar.type in r.labels), row_of.append(i)
    keys_a, right_a, rows_a = np.array(keys), np.array(right), np.array(row_of)
    w_a = w[rows_a]

    def estimate(sel: np.ndarray, strength: float) -> dict[str, float]:
        out = {}
        for k in set(keys_a[sel].tolist()):
            m = sel & (keys_a == k)
            prior = priors.get(k, rules.LEXICON_PRIOR)
            out[k] = (strength * prior + float((w_a[m] * right_a[m]).sum())) / (strength + float(w_a[m].sum()))
        return out

    losses = {}
    for s in STRENGTHS:
        loss = 0.0
        for tr_rows, te_rows in GroupKFold(n_splits=FOLDS).split(np.arange(len(rows)), groups=groups):
            tr = np.isin(rows_a, tr_rows)
            te = np.isin(rows_a, te_rows)
            est = estimate(tr, s)
            for k, y, wt in zip(keys_a[te], right_a[te], w_a[te]):
                p = min(0.99, max(0.01, est.get(k, priors.get(k, rules.LEXICON_PRIOR))))
                loss -= wt * (math.log(p) if y else math.log(1 - p))
        losses[s] = loss / float(w_a.sum())
    best = min(STRENGTHS, key=lambda s: (round(losses[s], 6), -s))  # ties: the stronger prior
    est = estimate(np.ones(len(keys_a), dtype=bool), best)
    cues = {}
    for k in sorted(est):
        m = keys_a == k
        cues[k] = {"precision": round(est[k], 4), "prior": priors.get(k, rules.LEXICON_PRIOR),
                   "hits": int(m.sum()), "right": int(right_a[m].sum()),
                   "groups": int(len(set(groups[rows_a[m]].tolist())))}
    report = {"prior_strength": best, "heldout_log_loss": {str(s): round(v, 5) for s, v in losses.items()}}
    return cues, report


def fit(directory: Path = TRAINING_DIR) -> dict[str, Any]:
    """The thresholds file's content for the corpus in ``directory`` (pure apart from reading the corpus)."""
    records, corpus_hash = load_corpus(directory)
    rows = _rows(records)
    w = _weights(rows)
    groups = np.array([r.group for r in rows])
    thresholds, sent_report = _sentiment_thresholds(rows, w, groups)
    cues, cue_report = _cue_precision(rows, w, groups, thresholds)
    return {
        "_doc": "Rule sentiment thresholds chosen by GroupKFold cross-validation on the training corpus (never on "
                "evaluation data); per-cue corpus precision reported for the audit, not applied to confidences. "
                "Refit: python -m extractors.rule_thresholds",
        "provenance": {"corpus_sha256": corpus_hash, "corpus_sentences": len(records), "folds": FOLDS,
                       "groups": int(len(set(groups.tolist()))), "sentence_weight": 1.0,
                       "threshold_grid": [GRID[0], GRID[-1], 0.1], "prior_strengths": list(STRENGTHS),
                       "cue_set_sha256": rules.cue_set_digest()},
        "sentiment_thresholds": thresholds,
        "sentiment_cv": sent_report,
        "cue_calibration": cue_report,
        "cues": cues,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT_FILE)
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped file differs from a refit")
    args = ap.parse_args(argv)
    text = render(fit())
    if args.check:
        same = args.out.exists() and args.out.read_text("utf-8") == text
        print("up to date" if same else f"stale: {args.out} differs from a refit")
        return 0 if same else 1
    args.out.write_text(text, encoding="utf-8")
    data = json.loads(text)
    print(json.dumps({"sentiment_thresholds": data["sentiment_thresholds"],
                      "prior_strength": data["cue_calibration"]["prior_strength"], "cues": len(data["cues"])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
