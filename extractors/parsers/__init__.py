"""Source parsers: files into :class:`SourceDocument`, keeping offsets into the original text.

One module per family of formats, sharing one line/offset utility:

* :mod:`.lines`: lines with absolute offsets, BOM, trimming, bounds (used by every parser);
* :mod:`.values`: dates, seconds and people (names, addresses) as every format writes them;
* :mod:`.mail`: RFC 822 email (chains, MIME) and mbox;
* :mod:`.transcripts`: ``Speaker: text`` lines, WebVTT, SRT;
* :mod:`.chat`: JSON exports (chat, tickets, transcript segments) and chat logs;
* :mod:`.notes`: Markdown/plain notes and loose text;
* :mod:`.dispatch`: format detection, file reading and the entry points re-exported here.

The text of a document is always ``raw_bytes.decode("utf-8", errors="replace")`` with no newline
translation, so an offset means the same thing here, in the evaluation harness and in a user's editor.
Nothing is ever normalised in ``text``: CRLF, a BOM, replacement characters and quoted-printable soft breaks
all stay, and every :class:`Segment` indexes that exact string.

Design choices (they matter to every extractor):

* Segments are the *content* of a document, in document order and never overlapping: header blocks,
  "-----Original Message-----" markers, "On ... wrote:" attributions, VTT timing lines and speaker labels are
  outside every segment, so an extractor that scans segments never reads headers or labels. Markdown
  headings are labels too (notes have one ``section`` segment per heading's content). Every document with
  content outside its headers has at least one segment (a tweet: one segment over the whole text).
* Unambiguous formats (mbox, WebVTT, SRT, JSON, an RFC 822 header block) decide the structure; a kind forced
  by the caller only labels the result. For loose text the forced kind decides how it is read (``email`` on
  a file without headers: a body with chain detection; ``chat`` on one line: plain).
* Email chains keep the whole text; the top message is role ``body``, each embedded earlier message
  (forwarded, "Original Message", Lotus Notes history) role ``forwarded`` and each ``>`` block role
  ``quoted``, attributed (speaker/address/occurred_at) from whatever header or "wrote:" line the chain has.
* JSON sources (chat exports, tickets, transcript segments) keep the file as stored: each message is a
  segment over its string's characters in the file (blanks and escaped line breaks at its ends left out),
  so a citation is ``file_text[start:end] == quote``; the segmenter reads JSON escapes (``\\n``,
  ``\\u2019``) as what they encode. A ticket's subject is a ``section`` segment. A JSON list of threads
  gives one document per thread over the whole file (its own id), or past ``chat.SHARED_TEXT_MAX_CHARS``
  the thread's slice of the file with ``metadata["file_offset"]``.
* An mbox is one document per message in :func:`load_documents` (``text`` = that message's exact slice of
  the file, ``metadata["file_offset"]`` = where the slice starts); :func:`load_document` returns the whole
  file as one document with a segment per message body, so its offsets stay valid for the file.
* Every parsed date is timezone-aware; a date written without a zone is taken as UTC, so dates from
  different sources compare. A date is never filled in from the clock. A document whose content has no
  date takes its file name's leading ``YYYY-MM-DD`` (``metadata["date_from"] = "file name"``).
"""

from .chat import parse_chat_lines
from .dispatch import KINDS, detect_kind, load_document, load_documents, parse_documents, parse_text, read_source_text
from .lines import DEFAULT_MAX_BYTES, DEFAULT_MAX_MESSAGES
from .mail import parse_email
from .notes import parse_notes, parse_plain
from .transcripts import parse_cues, parse_transcript
from .values import parse_date

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_MESSAGES", "KINDS", "detect_kind", "load_document", "load_documents",
    "parse_chat_lines", "parse_cues", "parse_date", "parse_documents", "parse_email", "parse_notes", "parse_plain",
    "parse_text", "parse_transcript", "read_source_text",
]
