"""The default offline extractor: each source kind goes to the decision that holds up on it out of sample.

Why: measured on text neither was fitted to, the learned sentence classifier (:mod:`extractors.learned`) finds
more of what a CSM would name in business email and meeting notes, with fewer false signals, while the cue
rules (:mod:`extractors.rules`) stay better on short consumer chat, support tickets and meeting transcripts
(NOTES.md has both sets of figures). Every signal still records which of the two produced it and its version.
"""

from __future__ import annotations

from pathlib import Path

from .base import register_extractor
from .learned import VERSION as LEARNED_VERSION
from .learned import LearnedExtractor
from .models import Signal, SourceDocument
from .rules import VERSION as RULES_VERSION
from .rules import RuleExtractor

NAME = "offline"
LEARNED_KINDS = frozenset({"email", "notes"})
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
        return (self.learned if doc.kind in LEARNED_KINDS else self.rules).extract(doc)

    def prepare_fork(self) -> None:
        self.learned.prepare_fork()

    def extract_batch(self, docs: list[SourceDocument]) -> list[list[Signal]]:
        """What :meth:`extract` gives per document; the learned kinds share the classifier's model calls."""
        out: list[list[Signal]] = [[] for _ in docs]
        learned = [i for i, d in enumerate(docs) if d.kind in LEARNED_KINDS]
        for i, sigs in zip(learned, self.learned.extract_batch([docs[i] for i in learned])):
            out[i] = sigs
        for i, d in enumerate(docs):
            if d.kind not in LEARNED_KINDS:
                out[i] = self.rules.extract(d)
        return out


register_extractor(NAME, lambda **opts: OfflineExtractor(**opts))
