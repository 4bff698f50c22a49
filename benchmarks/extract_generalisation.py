"""How the offline extractor generalises: figures on data it was not fitted to.

Usage: python benchmarks/extract_generalisation.py [--refit] [--suite text|enron_gold|...] [--harness PATH]
       [--json OUT]

(a) The shipped sentence model is fitted on the project's training corpus alone (extractors/training/,
    written from the signal definitions, never from evaluation documents; ``--refit`` refits it first,
    reproducibly). It is evaluated on every DEV text suite through the shared harness
    (``evaluate.py text --cmd <this venv's healthtrace>``); only the harness's own OUTPUT metrics are read.
    Since no dev document or label joins the fit, these figures are out of sample.
(b) K-fold cross-validation by document with dev labels joining the fit is NOT implemented yet (reported
    as null). In-sample dev figures are never reported.

Also prints the model's out-of-fold report on the corpus (GroupKFold by runs of lines). Ends with one line
``RESULT {json}``. Skips (exit 0) when the shared harness is absent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HARNESS = ROOT.parent / "shared" / "eval" / "evaluate.py"


def _g(d: dict, *path: str) -> object:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)  # type: ignore[assignment]
    return d


def summarise(result: dict) -> dict[str, dict[str, object]]:
    """The headline figure(s) per suite from the harness's RESULT object."""
    out: dict[str, dict[str, object]] = {}
    for name, s in (result.get("suites") or {}).items():
        m = s.get("metrics", {})
        row: dict[str, object] = {"docs": s.get("docs"), "citation_validity": s.get("citation_validity"),
                                  "docs_per_second": s.get("docs_per_second")}
        if name == "enron_gold":
            row |= {"doc_micro_f1": _g(m, "doc_micro", "f1"), "span_f1": _g(m, "span", "f1")}
        elif name == "enron_tone":
            row |= {"negative_strict_f1": _g(m, "negative_strict", "f1"),
                    "positive_strict_f1": _g(m, "positive_strict", "f1")}
        elif name == "complaints":
            row |= {"f1": _g(m, "complaint", "f1"), "fpr_random_tweets": m.get("fpr_random_tweets")}
        elif name in ("bitext", "qmsum"):
            row |= {"macro_f1": _g(m, "macro", "f1") if name == "bitext" else m.get("macro_f1")}
        out[name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", action="store_true", help="refit the shipped model from the corpus first")
    ap.add_argument("--suite", default="text", help="harness suite (default: the 5 text suites)")
    ap.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    ap.add_argument("--json", type=Path, help="also write the RESULT object here")
    args = ap.parse_args(argv)
    cli = Path(sys.executable).parent / "healthtrace"
    if args.refit:
        subprocess.run([str(cli), "extractor", "refit"], check=True)
    meta = json.loads((ROOT / "extractors" / "sentence_model.json").read_text("utf-8"))
    oof = meta["oof_report"]["embedding_model"]
    corpus = {"sentences": meta.get("corpus_sentences"), "corpus_sha256": meta.get("corpus_sha256"),
              "model_sha256": meta["sha256"],
              "oof_types_meeting_precision_target": sum(bool(r.get("meets_target")) for r in oof.values()),
              "oof_mean_f1_at_prior": round(sum(r.get("oof_f1_at_prior") or 0 for r in oof.values()) / len(oof), 4)}
    if not args.harness.exists():
        print(f"skipped: no harness at {args.harness}")
        print("RESULT " + json.dumps({"skipped": True, "corpus_model": corpus}))
        return 0
    t0 = time.perf_counter()
    import os

    env = {**os.environ, "HEALTHTRACE_EXTRACTOR": "learned"}  # the harness calls `healthtrace extract` plainly
    proc = subprocess.run([sys.executable, str(args.harness), args.suite, "--cmd", str(cli)],
                          capture_output=True, text=True, cwd=str(args.harness.parent), env=env)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        print("RESULT " + json.dumps({"error": f"harness exit {proc.returncode}", "corpus_model": corpus}))
        return 1
    res = json.loads(lines[-1][len("RESULT "):])
    a = summarise(res)
    docs = sum(int(r.get("docs") or 0) for r in a.values())
    secs = sum(float(s.get("extract_seconds") or 0) for s in res.get("suites", {}).values())
    print("(a) corpus-only model on the DEV suites (out of sample):")
    for name, row in a.items():
        print(f"  {name:11} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print(f"  overall: {docs} docs in {secs:.1f}s of extract calls = {docs / secs if secs else 0:.1f} docs/s "
          f"(harness wall {wall:.0f}s)")
    out = {"a_corpus_only": a, "b_kfold_dev": None, "docs_per_second_overall": round(docs / secs, 2) if secs else None,
           "corpus_model": corpus, "extractor_model": meta["sha256"][:12]}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
