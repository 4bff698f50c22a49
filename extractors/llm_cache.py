"""What the LLM said about a piece of text, keyed by (text hash, prompt version, model): nothing is paid twice.

The cache stores the model's raw claims (type, quote, confidence), never offsets or signals: grounding is
recomputed on every read, so a cached answer can never carry a citation that does not hold. A piece is a
whole document when it fits in one chunk, so the key is then the document hash.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreError
from .models import stable_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_pieces (
    key TEXT PRIMARY KEY,
    text_hash TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    model TEXT NOT NULL,
    claims TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """One signal as the model stated it: a type and a quote it says is in the text."""

    type: str
    quote: str
    confidence: float = 0.5


@dataclass(frozen=True, slots=True)
class CachedPiece:
    claims: tuple[Claim, ...]
    prompt_tokens: int
    completion_tokens: int


def cache_key(text_hash: str, prompt_version: str, model: str) -> str:
    return stable_id("llm-piece", text_hash, prompt_version, model)


class LLMCache:
    """A small SQLite file (thread-safe: one connection behind a lock; calls are milliseconds)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(SCHEMA)
            self._conn.commit()
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the LLM cache at {path}: {e}") from None
        self._lock = threading.Lock()

    def get(self, text_hash: str, prompt_version: str, model: str) -> CachedPiece | None:
        key = cache_key(text_hash, prompt_version, model)
        with self._lock:
            row = self._conn.execute(
                "SELECT claims, prompt_tokens, completion_tokens FROM llm_pieces WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            claims = tuple(Claim(str(c["type"]), str(c["quote"]), float(c["confidence"])) for c in json.loads(row[0]))
        except (ValueError, KeyError, TypeError):
            return None  # an unreadable entry is a miss, never an error
        return CachedPiece(claims, int(row[1]), int(row[2]))

    def put(
        self,
        text_hash: str,
        prompt_version: str,
        model: str,
        claims: list[Claim],
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        key = cache_key(text_hash, prompt_version, model)
        payload = json.dumps([{"type": c.type, "quote": c.quote, "confidence": c.confidence} for c in claims])
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO llm_pieces VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, text_hash, prompt_version, model, payload, prompt_tokens, completion_tokens, time.time()),
                )
                self._conn.commit()
        except sqlite3.Error as e:
            raise StoreError(f"cannot write the LLM cache at {self.path}: {e}") from None

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM llm_pieces").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
