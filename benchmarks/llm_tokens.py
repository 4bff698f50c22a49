"""What the LLM extractor sends, measured on the dev e-mails against an in-process fake endpoint.

    .venv/bin/python benchmarks/llm_tokens.py [--data-root DIR] [--limit N]

Reports tokens sent per source token (prompt tokens as the endpoint bills them, i.e. system prompt, few-shot
example, schema and document text, divided by the tokens of the documents themselves; goal <= 1.3), calls,
completion tokens and price, and for hybrid mode the calls and tokens saved (goal >= 50%) and the recall lost
against a full LLM run. No real model is involved: the fake is an *oracle* that answers, for every piece it
receives, the enron_gold gold quotes contained in it, so "recall lost" is exactly the share of gold signals
that hybrid's pre-selection never shows to the model. Data: /work/shared/eval/data/{enron_gold,enron_tone}/docs
(read in place, never copied); skips cleanly when absent. Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "data"
SUITES = ("enron_gold", "enron_tone")


def _load(data_root: Path, limit: int | None) -> tuple[list[Any], dict[str, list[tuple[str, str, int, int]]]]:
    from extractors.errors import HealthtraceError
    from extractors.parsers import load_document

    docs = []
    gold: dict[str, list[tuple[str, str, int, int]]] = {}
    for suite in SUITES:
        folder = data_root / suite / "docs"
        files = sorted(folder.iterdir())[:limit] if limit else sorted(folder.iterdir())
        for f in files:
            try:
                docs.append(load_document(str(f), kind="email"))
            except HealthtraceError as e:
                print(f"skipping {f}: {e}", file=sys.stderr)
        labels = data_root / suite / "labels.jsonl"
        if suite == "enron_gold" and labels.exists():
            for line in labels.read_text("utf-8").splitlines():
                rec = json.loads(line)
                path = str(data_root / suite / rec["doc"])
                gold[path] = [(g["type"], g["quote"], g["start"], g["end"]) for g in rec.get("gold", [])]
    return docs, gold


def _oracle(gold: dict[str, list[tuple[str, str, int, int]]]) -> Any:
    from fake_openai import answer, pieces

    table = sorted({(t, q) for items in gold.values() for t, q, _s, _e in items})

    def respond(req: dict[str, Any]) -> Any:
        out = [{"piece": pid, "type": t, "quote": q, "confidence": 0.9}
               for pid, text in pieces(req).items() for t, q in table if q in text]
        return answer(out)

    return respond


def _found(results: list[Any], gold: dict[str, list[tuple[str, str, int, int]]]) -> set[tuple[str, int]]:
    """(path, gold index) of every gold signal matched by a verified signal of the same type and overlapping span."""
    hit: set[tuple[str, int]] = set()
    for r in results:
        items = gold.get(r.doc.path or "", [])
        for i, (t, _q, s, e) in enumerate(items):
            for sig in r.signals:
                if sig.type == t and sig.verified and any(c.start < e and s < c.end for c in sig.evidence):
                    hit.add((r.doc.path, i))
                    break
    return hit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=None, help="documents per suite (default: all)")
    ap.add_argument("--chunk-tokens", type=int, default=None)
    ap.add_argument("--batch-tokens", type=int, default=None)
    args = ap.parse_args(argv)

    if not all((args.data_root / s / "docs").is_dir() for s in SUITES):
        print(f"skip: dev e-mails not found under {args.data_root}")
        print("RESULT " + json.dumps({"skipped": True, "reason": f"no data under {args.data_root}"}))
        return 0

    import os
    import tempfile

    os.environ["HEALTHTRACE_HOME"] = tempfile.mkdtemp(prefix="ht-bench-")
    from dataclasses import replace

    from api.container import current_settings
    from extractors.base import get_extractor
    from api.llm_setup import llm_setup
    from extractors.llm import HybridExtractor, LLMExtractor
    from extractors.tokens import count_tokens
    from fake_openai import FakeOpenAI, chat_model

    settings = current_settings()
    config = llm_setup(settings).config
    if args.chunk_tokens:
        config = replace(config, chunk_tokens=args.chunk_tokens)
    if args.batch_tokens:
        config = replace(config, batch_tokens=args.batch_tokens)

    docs, gold = _load(args.data_root, args.limit)
    source_tokens = sum(count_tokens(d.text, config.model) for d in docs)
    print(f"{len(docs)} documents, {source_tokens} source tokens ({config.model} encoding); "
          f"chunk {config.chunk_tokens} / batch {config.batch_tokens} tokens, method {config.structured_method}")

    out: dict[str, Any] = {"documents": len(docs), "source_tokens": source_tokens,
                           "chunk_tokens": config.chunk_tokens, "batch_tokens": config.batch_tokens}
    unbatched = LLMExtractor(None, config=replace(config, batch_pieces=1, batch_tokens=config.chunk_tokens))  # type: ignore[arg-type]
    est = unbatched.estimate(docs)
    out["unbatched_est_tokens_per_source_token"] = round(est.prompt_tokens / source_tokens, 3)
    out["unbatched_est_calls"] = est.calls

    with FakeOpenAI(_oracle(gold)) as fake:
        for mode in ("llm", "hybrid"):
            llm = chat_model(fake, timeout=60, model=config.model)
            if mode == "llm":
                ex: LLMExtractor = LLMExtractor(llm, config=config)
            else:
                ex = HybridExtractor(llm, config=config, rules=get_extractor("rules"),
                                     window_tokens=settings.llm_hybrid_window_tokens)
            before = len(fake.requests)
            t = time.perf_counter()
            results, failures = ex.extract_many(docs)
            secs = time.perf_counter() - t
            st = ex.last_run
            found = _found(results, gold)
            row = {
                "calls": st.usage.calls, "requests_seen": len(fake.requests) - before,
                "prompt_tokens": st.usage.prompt_tokens, "completion_tokens": st.usage.completion_tokens,
                "document_tokens_sent": st.source_tokens,
                "tokens_per_source_token": round(st.usage.prompt_tokens / source_tokens, 3),
                "cost_usd": round(st.usage.cost(config), 4), "failed": len(failures),
                "skipped_chunks": st.skipped_chunks, "duplicate_pieces": st.duplicate_pieces,
                "gold_found": len(found), "seconds": round(secs, 2),
            }
            out[mode] = row
            out[f"_{mode}_found"] = found
            print(f"{mode:7s} calls {row['calls']:5d}  prompt {row['prompt_tokens']:8d}  completion "
                  f"{row['completion_tokens']:6d}  tokens/source {row['tokens_per_source_token']:.3f}  "
                  f"${row['cost_usd']:.4f}  gold found {row['gold_found']}  {secs:.1f}s")

    full, hyb = out.pop("_llm_found"), out.pop("_hybrid_found")
    n_gold = sum(len(v) for v in gold.values())
    out["gold_signals"] = n_gold
    out["hybrid_calls_saved"] = round(1 - out["hybrid"]["calls"] / max(1, out["llm"]["calls"]), 3)
    out["hybrid_tokens_saved"] = round(1 - out["hybrid"]["prompt_tokens"] / max(1, out["llm"]["prompt_tokens"]), 3)
    out["hybrid_recall_lost"] = round(len(full - hyb) / max(1, len(full)), 3)
    out["tokens_per_source_token"] = out["llm"]["tokens_per_source_token"]
    print(f"unbatched estimate: {out['unbatched_est_tokens_per_source_token']} tokens per source token, "
          f"{out['unbatched_est_calls']} calls")
    print(f"hybrid: {out['hybrid_calls_saved']:.1%} calls saved, {out['hybrid_tokens_saved']:.1%} tokens saved, "
          f"recall lost vs full LLM run {out['hybrid_recall_lost']:.1%} (oracle fake, {len(full)} of {n_gold} gold "
          "signals reachable by the full run)")
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
