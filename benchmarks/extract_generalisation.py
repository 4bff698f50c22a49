"""How the offline extractor generalises: figures on data it was not fitted to.

Usage: python benchmarks/extract_generalisation.py [--refit] [--suite text|enron_gold|...] [--harness PATH]
       [--json OUT]

(a) The shipped sentence model is fitted on the project's training corpus alone (extractors/training/,
    written from the signal definitions, never from evaluation documents; ``--refit`` refits it first,
    reproducibly). It is evaluated on every DEV text suite through the shared harness
    (``evaluate.py text --cmd <this venv's healthtrace>``); only the harness's own OUTPUT metrics are read.
    Since no dev document or label joins the fit, these figures are out of sample.
(b) ``--kfold K``: K-fold cross-validation by document on enron_gold, the one dev suite whose labels are
    sentence-level spans. Per fold, the held-out documents' labels stay out: the other folds' documents are
    cut into sentences by the extractor's own segmenter, a sentence overlapping a gold span is a positive of
    that span's type and every other sentence a negative (grouped by document), they join the corpus
    (``refit.merge_records``), the model is refitted, registered and activated in a throwaway
    HEALTHTRACE_HOME, and the harness runs on the held-out documents only (a data root holding just them).
    Counts are pooled over folds (micro P/R/F1 of documents and spans). The other suites label whole
    documents (a tweet is a complaint, an email has a tone) without saying which sentence or which signal
    type, so they cannot be turned into sentence training records honestly and are not in (b).
    In-sample dev figures are never reported.

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


KFOLD_SUITE = "enron_gold"


def gold_records(data_dir: Path, docs: list[dict]) -> tuple[list[dict], int]:
    """Sentence training records from enron_gold documents and their gold spans (see (b) above), and how
    many gold spans could not be placed on the parsed text (left out, counted)."""
    from extractors.learned import MIN_WORDS, _WORDS, sentences
    from extractors.parsers import load_document

    out, unplaced = [], 0
    for d in docs:
        doc = load_document(data_dir / d["doc"], kind="email", account_id="dev")
        spans = []
        for g in d.get("gold") or []:
            if doc.text[g["start"]:g["end"]] == g["quote"]:
                spans.append((g["start"], g["end"], g["type"]))
            else:
                unplaced += 1
        for s in sentences(doc):
            if len(_WORDS.findall(s.norm)) < MIN_WORDS:
                continue
            labels = sorted({t for a, b, t in spans if a < s.end and s.start < b})
            out.append({"text": doc.text[s.start:s.end], "labels": labels, "genre": "email",
                        "group": f"dev:{d['id']}"})
    return out, unplaced


def _pool(rows: list[dict]) -> dict[str, object]:
    """Micro figures from counts summed over folds."""
    def prf(tp: int, fp: int, fn: int) -> dict[str, object]:
        p = tp / (tp + fp) if tp + fp else None
        r = tp / (tp + fn) if tp + fn else None
        f = 2 * p * r / (p + r) if p and r else 0.0
        return {"precision": None if p is None else round(p, 4), "recall": None if r is None else round(r, 4),
                "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}

    doc = prf(*(sum(int(x["doc_micro"][k]) for x in rows) for k in ("tp", "fp", "fn")))
    pm = sum(int(x["span"]["pred_matched"]) for x in rows)
    ps = sum(int(x["span"]["pred_signals"]) for x in rows)
    gm = sum(int(x["span"]["gold_matched"]) for x in rows)
    gs = sum(int(x["span"]["gold_signals"]) for x in rows)
    sp, sr = (pm / ps if ps else 0.0), (gm / gs if gs else 0.0)
    span = {"precision": round(sp, 4), "recall": round(sr, 4),
            "f1": round(2 * sp * sr / (sp + sr), 4) if sp + sr else 0.0, "pred_signals": ps, "gold_signals": gs}
    return {"doc_micro": doc, "span": span}


def kfold_dev(harness: Path, cli: Path, k: int, seed: int = 0) -> dict[str, object]:
    """(b): per fold, refit on the corpus + the other folds' dev sentences and score the held-out documents."""
    import os
    import tempfile

    from sklearn.model_selection import KFold

    from extractors.refit import refit
    from memory.extractor_versions import ExtractorVersions
    from memory.ledger import Ledger

    data_dir = harness.parent / "data" / KFOLD_SUITE
    labels = [json.loads(ln) for ln in (data_dir / "labels.jsonl").read_text("utf-8").splitlines() if ln.strip()]
    folds, per_fold, unplaced = [], [], 0
    with tempfile.TemporaryDirectory(prefix="ht-kfold-") as tmp:
        root = Path(tmp)
        for f, (train, test) in enumerate(KFold(k, shuffle=True, random_state=seed).split(labels)):
            t0 = time.perf_counter()
            records, miss = gold_records(data_dir, [labels[i] for i in train])
            unplaced += miss
            art, home, data = root / f"art{f}", root / f"home{f}", root / f"data{f}" / KFOLD_SUITE
            meta = refit(art, extra_records=records)
            with Ledger.open(None, home=home) as ledger:
                reg = ExtractorVersions(ledger, home)
                reg.activate(reg.register(art, origin="fit", report={"kfold": f})["version"])
            data.mkdir(parents=True)
            (data / "docs").symlink_to(data_dir / "docs", target_is_directory=True)
            (data / "labels.jsonl").write_text("".join(json.dumps(labels[i]) + "\n" for i in test), "utf-8")
            env = {**os.environ, "HEALTHTRACE_EXTRACTOR": "learned", "HEALTHTRACE_HOME": str(home)}
            proc = subprocess.run([sys.executable, str(harness), KFOLD_SUITE, "--cmd", str(cli),
                                   "--data-root", str(data.parent)],
                                  capture_output=True, text=True, cwd=str(harness.parent), env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                raise SystemExit(f"fold {f}: harness exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            res = json.loads(lines[-1][len("RESULT "):])["suites"][KFOLD_SUITE]
            m = res["metrics"]
            folds.append({"doc_micro": m["doc_micro"], "span": m["span"]})
            per_fold.append({"fold": f, "test_docs": len(test), "dev_records": len(records),
                             "dev_positives": sum(bool(r["labels"]) for r in records),
                             "model_sha256": str(meta["sha256"])[:12], "citation_validity": res["citation_validity"],
                             "doc_f1": m["doc_micro"]["f1"], "span_f1": m["span"]["f1"],
                             "seconds": round(time.perf_counter() - t0, 1)})
            print(f"  fold {f}: {per_fold[-1]}", flush=True)
    return {"suite": KFOLD_SUITE, "folds": k, "split": "KFold by document, shuffled, seed 0",
            "gold_spans_unplaced": unplaced, "pooled": _pool(folds), "per_fold": per_fold}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", action="store_true", help="refit the shipped model from the corpus first")
    ap.add_argument("--suite", default="text", help="harness suite (default: the 5 text suites)")
    ap.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    ap.add_argument("--json", type=Path, help="also write the RESULT object here")
    ap.add_argument("--kfold", type=int, default=0, metavar="K",
                    help="also run (b): K-fold CV by document on enron_gold with dev labels joining the fit")
    ap.add_argument("--skip-a", action="store_true", help="only (b)")
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
    b = None
    if args.kfold:
        if args.kfold < 2:
            ap.error("--kfold needs at least 2 folds")
        print(f"(b) {args.kfold}-fold CV by document on {KFOLD_SUITE}, dev labels of the other folds in the fit:")
        b = kfold_dev(args.harness, cli, args.kfold)
        pooled = b["pooled"]
        print(f"  pooled: doc micro F1 {pooled['doc_micro']['f1']}, span F1 {pooled['span']['f1']}")
    if args.skip_a:
        out = {"a_corpus_only": None, "b_kfold_dev": b, "corpus_model": corpus}
        if args.json:
            args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print("RESULT " + json.dumps(out))
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
    out = {"a_corpus_only": a, "b_kfold_dev": b, "docs_per_second_overall": round(docs / secs, 2) if secs else None,
           "corpus_model": corpus, "extractor_model": meta["sha256"][:12]}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
