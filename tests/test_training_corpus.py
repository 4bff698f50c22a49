"""The shipped training corpus keeps the shape the offline extractor's fit relies on.

Issue 10 sets the floor: per signal type at least 60 varied positives spread over the five genres, and at least
2,000 hard negatives. A corpus edit that drops a type below that, or repeats a sentence with other labels, fails
here before a refit quietly learns less.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from extractors.models import taxonomy
from extractors.refit import TRAINING_DIR, load_corpus, text_key

GENRES = ("email", "transcript", "notes", "chat", "ticket")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return load_corpus()[0]


def test_every_type_has_60_positives_across_the_genres(records: list[dict[str, Any]]) -> None:
    per_type: Counter[str] = Counter()
    per_type_genre: Counter[tuple[str, str]] = Counter()
    for r in records:
        for t in r["labels"]:
            per_type[t] += 1
            per_type_genre[(t, r["genre"])] += 1
    thin = {t: per_type[t] for t in taxonomy() if per_type[t] < 60}
    assert not thin, f"types with fewer than 60 corpus positives: {thin}"
    missing = [(t, g) for t in taxonomy() for g in GENRES if per_type_genre[(t, g)] < 5]
    assert not missing, f"(type, genre) pairs with fewer than 5 positives: {missing}"


def test_at_least_2000_hard_negatives(records: list[dict[str, Any]]) -> None:
    assert sum(1 for r in records if not r["labels"]) >= 2000


def test_a_repeated_sentence_carries_the_same_labels() -> None:
    """load_corpus keeps the first occurrence of a sentence; a repeat with other labels would silently lose
    them, so repeats (a pleasantry in two files) must agree."""
    seen: dict[str, tuple[str, list[str]]] = {}
    clashes = []
    for f in sorted(TRAINING_DIR.glob("corpus_*.jsonl")):
        for n, line in enumerate(f.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            k, labels = text_key(rec["text"]), sorted(set(rec["labels"]))
            if k in seen and seen[k][1] != labels:
                clashes.append((seen[k][0], f"{f.name}:{n}", k[:60]))
            seen.setdefault(k, (f"{f.name}:{n}", labels))
    assert not clashes, clashes[:5]
