"""Ingest throughput against the raw speed of the embedding model it is bounded by.

Generates N short business emails (deterministic), ingests them the way ``healthtrace ingest --workspace`` does
(parse + extraction (``--extractor``, rules by default) + ledger + Chroma with the offline MiniLM embedder), then embeds exactly the same texts
(every chunk and signal the ingest embedded) with the same model alone. Goal: ingest >= 80% of the raw
embedding throughput, i.e. parsing, extraction and storage cost little next to the embeddings.

    .venv/bin/python benchmarks/ingest.py --docs 300
Prints a table and ends with ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=300, help="documents to generate (default 300)")
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    ap.add_argument("--extractor", default="rules", help="extractor the ingest runs (offline: the learned classifier "
                    "embeds candidate sentences too; its signals' vectors reuse those embeddings)")
    ap.add_argument("--goal", type=float, default=0.8, help="required ingest/raw embedding throughput ratio")
    args = ap.parse_args(argv)
    if not 1 <= args.docs <= 100_000:
        ap.error("--docs must be between 1 and 100000")

    from memory.embeddings import get_embedder
    from memory.ingest import IngestOptions, ingest_workspace
    from memory.ledger import Ledger
    from memory.synthetic import generate_workspace
    from memory.vectors import VectorMemory, chunk_document, make_client, signal_vector_text

    with tempfile.TemporaryDirectory(prefix="ht-bench-") as tmp:
        tmpdir = Path(tmp)
        ws = generate_workspace(tmpdir / "ws", args.docs, n_accounts=args.accounts, seed=args.seed)
        embedder = get_embedder(args.embedder)
        embedder.embed(["warm-up: load the model once, outside both measurements"])

        ledger = Ledger(f"sqlite:///{tmpdir / 'ledger.db'}")
        memory = VectorMemory(make_client(None, tmpdir / "chroma"), embedder)
        t0 = time.perf_counter()
        report = ingest_workspace(ledger, ws, IngestOptions(extractor=args.extractor, vectors=True), vectors=memory)
        ingest_s = time.perf_counter() - t0
        embedded = report.chunks_embedded + report.signals_embedded

        # the same texts, embedded by the same model, nothing else
        texts: list[str] = []
        for acc in ledger.list_accounts():
            for doc in ledger.documents_for(acc.account_id):
                texts.extend(c.text for c in chunk_document(doc))
            texts.extend(signal_vector_text(s) for s in ledger.signals_for(acc.account_id, verified_only=False))
        assert len(texts) == embedded, (len(texts), embedded)
        # the encoder caches embeddings for the whole process: empty it, or the raw pass would only read the cache
        from extractors.encoder import shared_encoder

        shared_encoder().clear()
        t0 = time.perf_counter()
        embedder.embed(texts)
        raw_s = time.perf_counter() - t0
        ledger.close()

    ingest_eps = embedded / ingest_s
    raw_eps = len(texts) / raw_s
    ratio = ingest_eps / raw_eps
    rows = [
        ("documents", f"{report.documents_added}"),
        ("signals", f"{report.signals_added + report.metadata_signals_added}"),
        ("chunks embedded", f"{report.chunks_embedded}"),
        ("embeddings (chunks + signals)", f"{embedded}"),
        ("ingest wall time", f"{ingest_s:.2f} s"),
        ("ingest documents/s", f"{args.docs / ingest_s:.1f}"),
        ("ingest embeddings/s", f"{ingest_eps:.1f}"),
        ("raw embedding time, same texts", f"{raw_s:.2f} s"),
        ("raw embeddings/s", f"{raw_eps:.1f}"),
        ("ingest / raw", f"{ratio:.2f} (goal >= {args.goal:.2f})"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"ingest benchmark: {args.docs} emails, {args.accounts} accounts, embedder {args.embedder}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>14}")
    result = {
        "documents": args.docs,
        "embedder": args.embedder,
        "extractor": args.extractor,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "embeddings": embedded,
        "ingest_s": round(ingest_s, 3),
        "documents_per_s": round(args.docs / ingest_s, 2),
        "embeddings_per_s": round(ingest_eps, 2),
        "raw_embeddings_per_s": round(raw_eps, 2),
        "ratio": round(ratio, 3),
        "goal": args.goal,
        "meets_goal": ratio >= args.goal,
    }
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
