"""The default offline extractor: each source kind goes to the decision that holds up on it out of sample.

Why: measured on text neither was fitted to, the learned sentence classifier (:mod:`extractors.learned`) finds
more of what a CSM would name in business email and meeting notes, with fewer false signals, while the cue
rules (:mod:`extractors.rules`) stay better on short consumer chat and support tickets. On call and meeting
transcripts each finds what the other misses, so both run there: the classifier's signals, then each rule
signal that no classifier signal of its type already cites (NOTES.md has the figures). Every signal still
records which of the two produced it and its version.
"""

from __future__ import annotations

from pathlib import Path

from .base import register_extractor
from .learned import VERSION as LEARNED_VERSION
from .learned import LearnedExtractor
from .models import Signal, SourceDocument
from .rules import VERSION as RULES_VERSION
from .rules import RuleExtractor, prepare

NAME = "offline"
LEARNED_KINDS = frozenset({"email", "notes"})
BOTH_KINDS = frozenset({"transcript"})  # the classifier and the rules together
CLASSIFIED_KINDS = LEARNED_KINDS | BOTH_KINDS
VERSION = f"1.0.0+{RULES_VERSION}+{LEARNED_VERSION}"


class OfflineExtractor:
    """Routes a document by its kind; stateless apart from the learned model's caches."""

    name = NAME
    version = VERSION

    def __init__(self, embeddings: bool = True, model_dir: Path | None = None) -> None:
        """``model_dir``: the learned classifier's artefact of an extractor version (default: the shipped one)."""
        self.learned = LearnedExtractor(embeddings=embeddings, model_dir=model_dir)
        self.rules = RuleExtractor()
        if model_dir is not None:
            self.version = f"1.0.0+{RULES_VERSION}+{self.learned.version}"

    def extract(self, doc: SourceDocument) -> list[Signal]:
        return self.extract_batch([doc])[0]

    def prepare_fork(self) -> None:
        self.learned.prepare_fork()

    def extract_batch(self, docs: list[SourceDocument]) -> list[list[Signal]]:
        """What :meth:`extract` gives per document; the learned kinds share the classifier's model calls."""
        out: list[list[Signal]] = [[] for _ in docs]
        # a document both decide on is segmented and scanned for cues once
        shared = {i: prepare(d) for i, d in enumerate(docs) if d.kind in BOTH_KINDS}
        learned = [i for i, d in enumerate(docs) if d.kind in CLASSIFIED_KINDS]
        batch = self.learned.extract_batch([docs[i] for i in learned], [shared.get(i) for i in learned])
        for i, sigs in zip(learned, batch):
            out[i] = sigs
        for i, d in enumerate(docs):
            if d.kind not in LEARNED_KINDS:
                out[i] = out[i] + [s for s in self.rules.extract(d, shared.get(i)) if not _cited(s, out[i])]
        return out


def _cited(sig: Signal, others: list[Signal]) -> bool:
    """True when a signal of the same type already cites text overlapping ``sig``'s quote: one statement, one
    signal, whichever decision found it first."""
    spans = [(e.start, e.end) for o in others if o.type == sig.type for e in o.evidence]
    return any(a < e.end and e.start < b for e in sig.evidence for a, b in spans)


register_extractor(NAME, lambda **opts: OfflineExtractor(**opts))
