"""Lines, offsets and bounds shared by every format: a line knows where it starts and ends in the text.

Every parser walks the decoded file with these helpers, so all of them agree on what a line break is
(``str.splitlines``: CRLF, LF, CR and the rest) and every offset they hand out indexes the text as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_MESSAGES = 10_000  # messages per mbox / chat export / ticket list, segments per transcript

LINE = re.compile(r"([^\r\n]*)(\r\n|\n|\r|\Z)")


@dataclass(frozen=True, slots=True)
class Line:
    start: int
    end: int  # end of content, before the line break

    def text(self, s: str) -> str:
        return s[self.start : self.end]


def split_lines(text: str, start: int = 0, end: int | None = None) -> list[Line]:
    """Lines of ``text[start:end]`` with absolute offsets (str.splitlines breaks: CRLF, LF, CR and the rest)."""
    end = len(text) if end is None else end
    out: list[Line] = []
    pos = start
    for raw in text[start:end].splitlines(True):
        n = len(raw)
        if raw.endswith("\r\n"):
            cut = 2
        elif raw[-1] in BREAKS:
            cut = 1
        else:
            cut = 0
        out.append(Line(pos, pos + n - cut))
        pos += n
    return out


BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def bom_end(text: str) -> int:
    """Where the text starts after a UTF-8 byte-order mark (kept in ``text``, so offsets stay the file's)."""
    return 1 if text.startswith("\ufeff") else 0


def trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None

