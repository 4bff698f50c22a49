"""Text every store accepts: NUL and lone surrogates become U+FFFD, one character for one character.

PostgreSQL text cannot hold NUL and UTF-8 cannot encode a lone surrogate, so either would make a write fail
for ever ("store unavailable; retry" that can never succeed). Replacing each such code point by U+FFFD keeps
the length, so every offset into the text (citations, segments) still points at the same characters of the
original file. Only the standard library is imported.
"""

from __future__ import annotations

import re

_BAD = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced 1:1 by U+FFFD (the same object when already clean)."""
    if _BAD.search(text) is None:
        return text
    return _BAD.sub(REPLACEMENT, text)


def storable_any(value: object) -> object:
    """:func:`storable` through nested dicts, lists and tuples (keys too); other values unchanged."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable_any(k): storable_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable_any(v) for v in value)
    return value
