"""Offline deterministic extractor (first cut; replaced by the full pattern extractor)."""

from __future__ import annotations

import re

from .base import register_extractor
from .grounding import citation_for_span
from .models import Signal, SourceDocument

NAME = "rules"
VERSION = "0.0.1"

_PATTERNS = {
    "churn_intent": re.compile(r"\b(cancel(?:ling|led)? (?:my|our) (?:account|subscription)|not renew)\b", re.I),
    "competitor_mention": re.compile(r"\b(switch(?:ing)? to|evaluating (?:other|alternative) (?:vendors|suppliers))\b", re.I),
}


class RuleExtractor:
    name = NAME
    version = VERSION

    def extract(self, doc: SourceDocument) -> list[Signal]:
        out = []
        for type_, pat in _PATTERNS.items():
            for m in pat.finditer(doc.text):
                c = citation_for_span(doc, m.start(), m.end())
                out.append(Signal(account_id=doc.account_id, type=type_, evidence=[c], extractor=NAME,
                                  extractor_version=VERSION, occurred_at=c.occurred_at, confidence=0.5))
        return out


register_extractor(NAME, lambda **_: RuleExtractor())
