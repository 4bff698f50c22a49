"""Vector memory in Chroma: source chunks and signals, every query filtered by account and tenant.

The ledger is the source of truth; this store is derived from it (``index_pending`` embeds what the ledger marks
as not yet indexed, ``healthtrace reindex`` rebuilds it). Ids are deterministic, writes are upserts, so a re-run
after a crash fills the gaps without duplicates. The embedding function is always passed explicitly (and
registered with chroma), so chroma never falls back to its downloading default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from extractors.errors import ConfigError, InputError, StoreError
from extractors.models import Signal, SourceDocument, stable_id

from .embeddings import HashingEmbedding, MiniLMEmbedding, get_embedder

CHUNKS = "ht_source_chunks"
SIGNALS = "ht_signals"
CHUNK_CHARS = 500
LOCK_NAME = ".healthtrace-collections.lock"
MAX_K = 200
MAX_QUERY_CHARS = 2_000
_UPSERT_BATCH = 512

Embedder = MiniLMEmbedding | HashingEmbedding


# ----------------------------------------------------------------------------------------- chunking
@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    source_id: str
    start: int
    end: int
    text: str


MAX_GAP_CHARS = 300


def _content_ranges(doc: SourceDocument) -> list[tuple[int, int]]:
    """Where the document's prose is: its segments (merged), so headers, MIME attachments, base64 parts and
    a JSON export's syntax are never embedded; a document without segments: its whole text."""
    if not doc.segments:  # an email with headers but no readable part (a base64 body): nothing to embed
        return [] if doc.kind == "email" and doc.metadata.get("headers_found") is True else [(0, len(doc.text))]
    merged: list[tuple[int, int]] = []
    for a, b in sorted((s.start, s.end) for s in doc.segments if s.end > s.start):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _sentences(doc: SourceDocument) -> list[tuple[int, int]]:
    """Sentence spans of the content (the one segmenter, :mod:`extractors.segmenter`)."""
    from extractors.segmenter import sentences_in

    out: list[tuple[int, int]] = []
    for a, b in _content_ranges(doc):  # tiles each range: cut where a sentence starts, nothing left out
        cuts = [a, *(s.start for s in sentences_in(doc.text, a, b) if s.start > a), b]
        out.extend((x, y) for x, y in zip(cuts, cuts[1:], strict=False) if y > x)
    return out


def _split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """A sentence longer than ``size``: cut at the last whitespace before the limit (or hard)."""
    out = []
    while end - start > size:
        cut = start + size
        ws = text.rfind(" ", start + size // 2, cut)
        if ws > start:
            cut = ws
        out.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        out.append((start, end))
    return out


def chunk_document(doc: SourceDocument, size: int = CHUNK_CHARS) -> list[Chunk]:
    """Sentence-aware chunks of about ``size`` characters; ``doc.text[c.start:c.end] == c.text`` always.

    Only the document's content (its segments) is embedded: an email's header block (addresses and dates match
    every query equally and blur the passage's meaning; the header facts live in the chunk metadata instead),
    MIME attachments and encoded parts are left out."""
    text = doc.text
    pieces: list[tuple[int, int]] = []
    for s, e in _sentences(doc):
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            pieces.extend(_split_long(text, s, e, size))
    chunks: list[Chunk] = []
    cur_s: int | None = None
    cur_e = 0
    raw_json = doc.metadata.get("format") == "json"
    for s, e in pieces:
        # a chunk never reaches over what lies between two content ranges when that is more than a few
        # header/timing lines (an attachment, a base64 part) or is a JSON export's syntax
        gap = text[cur_e:s] if cur_s is not None else ""
        if cur_s is not None and (e - cur_s > size or len(gap) > MAX_GAP_CHARS or (raw_json and gap.strip())):
            chunks.append(Chunk(stable_id(doc.id, cur_s, cur_e), doc.id, cur_s, cur_e, text[cur_s:cur_e]))
            cur_s = None
        if cur_s is None:
            cur_s = s
        cur_e = e
    if cur_s is not None:
        chunks.append(Chunk(stable_id(doc.id, cur_s, cur_e), doc.id, cur_s, cur_e, text[cur_s:cur_e]))
    return chunks


# ----------------------------------------------------------------------------------------- metadata
def _day_int(d: date | datetime | None) -> int:
    if d is None:
        return 0
    return d.year * 10000 + d.month * 100 + d.day


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata values must be str/int/float/bool, never None."""
    return {k: v for k, v in meta.items() if v is not None}


def chunk_metadata(chunk: Chunk, doc: SourceDocument, tenant: str) -> dict[str, Any]:
    d = doc.occurred_at
    return _clean({
        "account_id": doc.account_id or "",
        "tenant": tenant,
        "kind": "passage",
        "type": doc.kind,
        "category": "source",
        "date": _day_int(d),
        "date_iso": d.isoformat() if d else None,
        "source_id": doc.id,
        "source_path": doc.path,
        "start": chunk.start,
        "end": chunk.end,
    })


def signal_text(sig: Signal) -> str:
    """What a signal is searched by: its type, summary and verbatim quotes."""
    quotes = " | ".join(c.quote for c in sig.evidence) or " | ".join(sig.unverified_quotes)
    parts = [sig.type.replace("_", " ")]
    if sig.summary:
        parts.append(sig.summary)
    if quotes:
        parts.append(quotes)
    return ": ".join(parts)[:4000]


def signal_vector_text(sig: Signal) -> str:
    """What a signal's VECTOR is computed from: the sentence(s) it cites, which the learned classifier embedded
    already when it found the signal (the encoder caches by token ids, and its tokenizer is uncased and splits on
    whitespace, so the raw quote and the classifier's normalised sentence are one cache row): ingest makes no
    second embedding pass for them. The type, summary and quote stay the stored text (``signal_text``), and the
    type is a filter. A signal without a quote: its ``signal_text``."""
    quotes = " ".join(c.quote for c in sig.evidence) or " ".join(sig.unverified_quotes)
    return quotes[:4000] if quotes.strip() else signal_text(sig)


def signal_metadata(sig: Signal, tenant: str) -> dict[str, Any]:
    first = sig.evidence[0] if sig.evidence else None
    d = sig.occurred_at
    return _clean({
        "account_id": sig.account_id or "",
        "tenant": tenant,
        "kind": "signal",
        "type": sig.type,
        "category": sig.category,
        "polarity": int(sig.polarity or 0),
        "verified": sig.verified,
        "date": _day_int(d),
        "date_iso": d.isoformat() if d else None,
        "source_id": sig.source_id,
        "source_path": first.source_path if first else None,
        "start": first.start if first else None,
        "end": first.end if first else None,
        "quote": first.quote[:1000] if first else None,
        "extractor": sig.extractor,
    })


# ----------------------------------------------------------------------------------------- the store
@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # "passage" | "signal"
    id: str
    score: float  # cosine similarity, higher is better
    text: str
    metadata: dict[str, Any]


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive lock between processes sharing one embedded Chroma folder: two first ingests on a new home
    would otherwise race on Chroma's own ``collections`` table (UNIQUE constraint failed)."""
    if path is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no cross-process lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def make_client(chroma_url: str | None, chroma_path: Any) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if not u.hostname:
            raise ConfigError(f"HEALTHTRACE_CHROMA_URL {chroma_url!r} has no host; expected http://HOST:PORT")
        try:
            return chromadb.HttpClient(host=u.hostname, port=u.port or (443 if u.scheme == "https" else 8000),
                                       ssl=u.scheme == "https", settings=chroma_settings)
        except Exception as e:  # noqa: BLE001 - chroma raises plain exceptions when the server is down
            raise StoreError(f"cannot reach the chroma server at {chroma_url}: {e}") from e
    try:
        with _file_lock(Path(chroma_path) / LOCK_NAME):
            return chromadb.PersistentClient(path=str(chroma_path), settings=chroma_settings)
    except OSError as e:
        raise StoreError(f"cannot open the chroma store at {chroma_path}: {e.strerror or e}") from e
    except Exception as e:  # noqa: BLE001
        raise StoreError(f"cannot open the chroma store at {chroma_path}: {e}") from e


class VectorMemory:
    """Two collections (source chunks, signals) with an explicit, registered embedding function."""

    def __init__(self, client: Any, embedder: Embedder, *, lock_path: Path | None = None) -> None:
        self.client = client
        self.embedder = embedder
        self.lock_path = lock_path  # embedded store: collection creation is locked across processes
        self._collections: dict[str, Any] = {}

    @classmethod
    def open(cls, chroma_url: str | None, chroma_path: str | Path, embedder: Embedder | str) -> VectorMemory:
        """A Chroma server at ``chroma_url``, else the embedded store in ``chroma_path`` (created when missing),
        with ``embedder`` (an :class:`Embedder` or its name). Values, not settings: the container reads those."""
        lock = None
        if not chroma_url:
            try:
                Path(chroma_path).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create the chroma store at {chroma_path}: {e.strerror or e}") from e
            lock = Path(chroma_path) / LOCK_NAME
        emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
        return cls(make_client(chroma_url, chroma_path), emb, lock_path=lock)

    def collection(self, name: str) -> Any:
        col = self._collections.get(name)
        if col is None:
            with _file_lock(self.lock_path):
                col = self.client.get_or_create_collection(
                    name,
                    embedding_function=self.embedder,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"healthtrace": "1"},
                )
            self._collections[name] = col
        return col

    def reset(self) -> None:
        """Drop both collections (reindex rebuilds them from the ledger)."""
        for name in (CHUNKS, SIGNALS):
            try:
                self.client.delete_collection(name)
            except Exception:  # noqa: BLE001 - absent collection: nothing to drop
                pass
        self._collections.clear()

    def counts(self) -> dict[str, int]:
        return {"vector_chunks": self.collection(CHUNKS).count(), "vector_signals": self.collection(SIGNALS).count()}

    # ------------------------------------------------------------------ writes
    def _upsert(self, name: str, ids: Sequence[str], texts: Sequence[str], metas: Sequence[dict[str, Any]],
                embeddings: np.ndarray | None) -> None:
        if not ids:
            return
        if embeddings is None:
            embeddings = self.embed(list(texts))
        col = self.collection(name)
        for i in range(0, len(ids), _UPSERT_BATCH):
            col.upsert(ids=list(ids[i : i + _UPSERT_BATCH]), documents=list(texts[i : i + _UPSERT_BATCH]),
                       metadatas=list(metas[i : i + _UPSERT_BATCH]), embeddings=embeddings[i : i + _UPSERT_BATCH])

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)

    def upsert_chunks(self, items: Sequence[tuple[Chunk, SourceDocument, str]], embeddings: np.ndarray | None = None) -> int:
        self._upsert(CHUNKS, [c.id for c, _, _ in items], [c.text for c, _, _ in items],
                     [chunk_metadata(c, d, t) for c, d, t in items], embeddings)
        return len(items)

    def upsert_signals(self, items: Sequence[tuple[Signal, str]], embeddings: np.ndarray | None = None) -> int:
        if embeddings is None:  # the vector comes from the cited sentence (signal_vector_text), not the stored text
            embeddings = self.embed([signal_vector_text(s) for s, _ in items]) if items else None
        self._upsert(SIGNALS, [s.id for s, _ in items], [signal_text(s) for s, _ in items],
                     [signal_metadata(s, t) for s, t in items], embeddings)
        return len(items)

    def delete_signals(self, ids: Sequence[str]) -> None:
        if ids:
            self.collection(SIGNALS).delete(ids=list(ids))

    # ------------------------------------------------------------------ search
    def search(
        self,
        account_id: str,
        query: str,
        *,
        tenant: str = "default",
        k: int = 10,
        since: date | None = None,
        until: date | None = None,
        type: str | None = None,
        include_passages: bool = True,
        include_signals: bool = True,
    ) -> list[Hit]:
        """Best-first passages and signals of ONE account (and tenant)."""
        query = (query or "").strip()
        if not query:
            raise InputError("search query is empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"search query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
        if not 1 <= k <= MAX_K:
            raise InputError(f"-k must be between 1 and {MAX_K}, got {k}")
        conds: list[dict[str, Any]] = [{"account_id": account_id}, {"tenant": tenant}]
        if since is not None:
            conds.append({"date": {"$gte": _day_int(since)}})
        if until is not None:
            conds.append({"date": {"$lte": _day_int(until)}})
        if type:
            conds.append({"type": type})
        where = {"$and": conds}
        qvec = self.embed([query])
        hits: list[Hit] = []
        for name, kind, wanted in ((CHUNKS, "passage", include_passages), (SIGNALS, "signal", include_signals)):
            if not wanted:
                continue
            res = self.collection(name).query(query_embeddings=qvec, n_results=k, where=where,
                                              include=["documents", "metadatas", "distances"])
            for id_, doc, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]):
                hits.append(Hit(kind=kind, id=id_, score=round(1.0 - float(dist), 4), text=doc or "", metadata=dict(meta or {})))
        hits.sort(key=lambda h: (-h.score, h.kind, h.id))
        return hits[:k]


# ----------------------------------------------------------------------------------------- indexing
def index_batch(
    memory: VectorMemory,
    docs: Sequence[tuple[SourceDocument, str]],
    signals: Sequence[tuple[Signal, str]],
) -> tuple[int, int]:
    """Embed the chunks of ``docs`` and the ``signals`` in ONE model call (length-sorted batches across all of
    them), then upsert both. Returns (chunks, signals) written."""
    items = [(c, d, t) for d, t in docs for c in chunk_document(d)]
    texts = [c.text for c, _, _ in items] + [signal_vector_text(s) for s, _ in signals]
    if not texts:
        return 0, 0
    vecs = memory.embed(texts)
    memory.upsert_chunks(items, vecs[: len(items)])
    memory.upsert_signals(signals, vecs[len(items) :])
    return len(items), len(signals)


def index_pending(
    ledger: Any,
    memory: VectorMemory,
    *,
    batch_docs: int = 64,
    on_progress: Callable[[int], None] | None = None,
    limit: int | None = None,
) -> dict[str, int]:
    """Embed every document and signal the ledger marks as not indexed, in batches across documents (one
    model call for many short documents), then mark them indexed. Safe to interrupt and re-run.
    ``limit``: at most that many documents (and 4x signals) this call; then ``stats["more"]`` says if any
    remain."""
    stats = {"documents_indexed": 0, "chunks_embedded": 0, "signals_embedded": 0}
    if limit is not None:
        stats["more"] = 0
    doc_ids = ledger.document_ids(indexed=False)
    if limit is not None and len(doc_ids) > limit:
        doc_ids, stats["more"] = doc_ids[:limit], 1
    for i in range(0, len(doc_ids), batch_docs):
        group = ledger.documents_by_ids(doc_ids[i : i + batch_docs])
        n_chunks, _ = index_batch(memory, group, [])
        ledger.mark_indexed(documents=[d.id for d, _ in group])
        stats["documents_indexed"] += len(group)
        stats["chunks_embedded"] += n_chunks
        if on_progress:
            on_progress(len(group))
    sig_ids = ledger.signal_ids(indexed=False)
    if limit is not None and len(sig_ids) > 4 * limit:
        sig_ids, stats["more"] = sig_ids[: 4 * limit], 1
    step = batch_docs * 4
    for i in range(0, len(sig_ids), step):
        sigs = ledger.signals_by_ids(sig_ids[i : i + step])
        index_batch(memory, [], sigs)
        ledger.mark_indexed(signals=[s.id for s, _ in sigs])
        stats["signals_embedded"] += len(sigs)
    return stats


class BackgroundIndexer:
    """Embeds freshly committed documents on a worker thread while the caller parses and extracts the next
    ones (onnxruntime releases the GIL), so ingest runs at about the speed of the embedding model alone.

    Batches grow while the model is the bottleneck (the queue fills up) and stay small when it is not.
    Vector state is recorded in the ledger only after the upsert, so a crash leaves gaps, never lies."""

    def __init__(self, ledger: Any, memory: VectorMemory, *, batch_docs: int = 64, max_wait_s: float = 0.5,
                 on_progress: Callable[[int], None] | None = None) -> None:
        import queue
        import threading

        self.ledger = ledger
        self.memory = memory
        self.batch_docs = batch_docs
        # How long a partial batch waits for more documents: the model is much faster on full, length-sorted
        # batches than on a document's handful of chunks, and waiting costs nothing while extraction runs.
        self.max_wait_s = max_wait_s
        self.on_progress = on_progress
        self.stats = {"documents_indexed": 0, "chunks_embedded": 0, "signals_embedded": 0}
        self._queue: queue.Queue[tuple[SourceDocument, list[Signal], str] | None] = queue.Queue(maxsize=batch_docs * 8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="healthtrace-indexer", daemon=True)
        self._thread.start()

    def submit(self, doc: SourceDocument, signals: list[Signal], tenant: str) -> None:
        import queue

        while True:
            if self._error is not None:
                raise StoreError(f"vector indexing failed: {self._error}") from self._error
            try:
                self._queue.put((doc, signals, tenant), timeout=0.5)
                return
            except queue.Full:
                continue

    def _flush(self, batch: list[tuple[SourceDocument, list[Signal], str]]) -> None:
        docs = [(d, t) for d, _, t in batch]
        sigs = [(s, t) for _, ss, t in batch for s in ss]
        n_chunks, n_sigs = index_batch(self.memory, docs, sigs)
        self.ledger.mark_indexed(documents=[d.id for d, _ in docs], signals=[s.id for s, _ in sigs])
        self.stats["documents_indexed"] += len(docs)
        self.stats["chunks_embedded"] += n_chunks
        self.stats["signals_embedded"] += n_sigs
        if self.on_progress:
            self.on_progress(len(docs))

    def _run(self) -> None:
        import queue

        batch: list[tuple[SourceDocument, list[Signal], str]] = []
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.max_wait_s) if batch else self._queue.get()
                except queue.Empty:  # the producer is slower than the model: embed what we have
                    self._flush(batch)
                    batch = []
                    continue
                if item is None:
                    break
                batch.append(item)
                if len(batch) >= self.batch_docs:
                    self._flush(batch)
                    batch = []
            if batch:
                self._flush(batch)
        except BaseException as e:  # noqa: BLE001 - surfaced to the caller by close()/submit()
            self._error = e

    def close(self) -> dict[str, int]:
        """Wait for the queue to drain; re-raise a worker failure (the ledger still marks those gaps)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise StoreError(f"vector indexing failed: {self._error}") from self._error
        return self.stats
