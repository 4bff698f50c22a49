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
    from extractors.learned import MIN_WORDS, _WORDS
    from extractors.segmenter import sentences
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
            meta = refit(art, extra_records=records, threshold_scale={})  # the shipped scale saw every fold
            with Ledger.open(None, home=home) as ledger:
                reg = ExtractorVersions(ledger, home)
                reg.activate(reg.register(art, origin="fit", report={"kfold": f})["version"])
            data.mkdir(parents=True)
            (data / "docs").symlink_to(data_dir / "docs", target_is_directory=True)
            (data / "labels.jsonl").write_text("".join(json.dumps(labels[i]) + "\n" for i in test), "utf-8")
            res = _run_harness(harness, cli, KFOLD_SUITE, home, data.parent)["suites"][KFOLD_SUITE]
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


# (c) the decision scale: which multiple of the corpus thresholds to ship, chosen by nested CV by document
SCALE_GRID = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4)
TONE_SUITE = "enron_tone"


def _suite_counts(suite: str, metrics: dict) -> dict[str, int]:
    """The counts one fold contributes to the objective of ``suite``."""
    if suite == TONE_SUITE:
        m = metrics["negative_strict"]
        return {k: int(m[k]) for k in ("tp", "fp", "fn")}
    d, sp = metrics["doc_micro"], metrics["span"]
    return {"tp": int(d["tp"]), "fp": int(d["fp"]), "fn": int(d["fn"]), "pm": int(sp["pred_matched"]),
            "ps": int(sp["pred_signals"]), "gm": int(sp["gold_matched"]), "gs": int(sp["gold_signals"])}


def _figures(suite: str, c: dict[str, int]) -> dict[str, float]:
    """F1 figures from pooled counts: tone negative strict F1; enron_gold doc micro F1 and span F1."""
    def f1(tp: int, fp: int, fn: int) -> float:
        return 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0

    if suite == TONE_SUITE:
        return {"negative_strict_f1": round(f1(c["tp"], c["fp"], c["fn"]), 4)}
    p = c["pm"] / c["ps"] if c["ps"] else 0.0
    r = c["gm"] / c["gs"] if c["gs"] else 0.0
    return {"doc_micro_f1": round(f1(c["tp"], c["fp"], c["fn"]), 4),
            "span_f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def _objective(suite: str, c: dict[str, int]) -> float:
    """What a scale is chosen to maximise: the suite's goal figure(s), averaged."""
    f = _figures(suite, c)
    return sum(f.values()) / len(f)


def _add(rows: list[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        for k, v in r.items():
            out[k] = out.get(k, 0) + v
    return out


SHIPPED = "shipped"


def _parts(key: object) -> tuple[str, float]:
    """A counts key is a scale, or (candidate model, scale) when candidate models compete too."""
    return key if isinstance(key, tuple) else (SHIPPED, float(key))  # type: ignore[return-value]


def _plain(counts: dict) -> object:
    """The key of the shipped model at scale 1: the corpus thresholds as fitted, chosen on nothing."""
    return next(k for k in counts if _parts(k) == (SHIPPED, 1.0))


def choose_scale(counts: dict, suite: str, folds: list[int]) -> object:
    """The key with the best pooled objective over ``folds``; ties go to the shipped model, then to the scale
    nearest 1 (the corpus thresholds as fitted)."""
    def pref(key: object) -> tuple[bool, float]:
        name, scale = _parts(key)
        return name == SHIPPED, -abs(scale - 1)

    return max(counts, key=lambda s: (round(_objective(suite, _add([counts[s][f] for f in folds])), 6), pref(s)))


def nested_cv(counts: dict, suite: str) -> dict[str, object]:
    """Per held-out fold: the scale chosen on the OTHER folds and the held-out fold's counts at that scale,
    pooled. That pooled figure is the out-of-sample estimate; the scale chosen on all folds is what ships."""
    k = len(next(iter(counts.values())))
    chosen = [choose_scale(counts, suite, [g for g in range(k) if g != f]) for f in range(k)]
    pooled = _add([counts[s][f] for f, s in enumerate(chosen)])
    return {"chosen_per_fold": chosen, "nested_cv": _figures(suite, pooled), "nested_cv_counts": pooled,
            "at_scale_1": _figures(suite, _add(counts[_plain(counts)])),
            "per_scale_all_folds": {_label(s): _figures(suite, _add(rows)) for s, rows in counts.items()},
            "final_choice": choose_scale(counts, suite, list(range(k)))} | _ship(counts, suite, chosen, pooled)


def _label(key: object) -> str:
    name, scale = _parts(key)
    return str(scale) if name == SHIPPED else f"{name}@{scale}"


def _ship(counts: dict, suite: str, chosen: list, pooled: dict[str, int]) -> dict[str, object]:
    """What ships: the value chosen on all folds only where choosing (the nested-CV figure) beats the corpus
    thresholds as fitted (scale 1, chosen on nothing); otherwise tuning is noise and 1.0 ships."""
    tuned, plain = _objective(suite, pooled), _objective(suite, _add(counts[_plain(counts)]))
    k = len(chosen)
    final = choose_scale(counts, suite, list(range(k)))
    return {"ship": final if tuned > plain else _plain(counts),
            "ship_reason": "nested CV beats scale 1" if tuned > plain else "nested CV does not beat scale 1"}


ARTEFACT = ROOT / "extractors"  # the model under test (--artefact): by default the shipped one


def _variant(root: Path, name: str, scale: dict[str, float], artefact: Path | None = None) -> Path:
    """A throwaway home whose active extractor version is the model under test (or ``artefact``) with ``scale``
    as its decision."""
    import shutil

    from extractors.learned import MODEL_META, MODEL_NPZ
    from memory.extractor_versions import ExtractorVersions
    from memory.ledger import Ledger

    art, home = root / f"art-{name}", root / f"home-{name}"
    art.mkdir(parents=True)
    src = artefact or ARTEFACT
    shutil.copyfile(src / MODEL_NPZ, art / MODEL_NPZ)
    meta = json.loads((src / MODEL_META).read_text("utf-8"))
    meta.setdefault("params", {})["threshold_scale"] = scale
    (art / MODEL_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
    with Ledger.open(None, home=home) as ledger:
        reg = ExtractorVersions(ledger, home)
        reg.activate(reg.register(art, origin="fit", report={"threshold_scale": scale})["version"])
    return home


def _fold_roots(root: Path, harness: Path, suite: str, k: int, seed: int = 0) -> list[Path]:
    """Per fold, a data root holding only that fold's documents of ``suite`` (KFold by document, shuffled)."""
    from sklearn.model_selection import KFold

    data_dir = harness.parent / "data" / suite
    labels = [ln for ln in (data_dir / "labels.jsonl").read_text("utf-8").splitlines() if ln.strip()]
    out = []
    for f, (_, test) in enumerate(KFold(k, shuffle=True, random_state=seed).split(labels)):
        data = root / f"{suite}-fold{f}" / suite
        data.mkdir(parents=True)
        (data / "docs").symlink_to(data_dir / "docs", target_is_directory=True)
        (data / "labels.jsonl").write_text("".join(labels[i] + "\n" for i in test), "utf-8")
        out.append(data.parent)
    return out


def _run_harness(harness: Path, cli: Path, suite: str, home: Path, data_root: Path | None = None) -> dict:
    """The harness's RESULT object for ``suite`` (on ``data_root``, default its own data), scored with the
    learned extractor version active in ``home``; a failed run stops the benchmark with the harness's output."""
    import os

    env = {**os.environ, "HEALTHTRACE_EXTRACTOR": "learned", "HEALTHTRACE_HOME": str(home)}
    cmd = [sys.executable, str(harness), suite, "--cmd", str(cli)]
    if data_root is not None:
        cmd += ["--data-root", str(data_root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(harness.parent), env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{suite} on {data_root or 'the dev split'}: harness exit {proc.returncode}\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def _harness_metrics(harness: Path, cli: Path, suite: str, data_root: Path, home: Path) -> dict:
    res = _run_harness(harness, cli, suite, home, data_root)["suites"][suite]
    if res.get("citation_validity") != 1.0:
        raise SystemExit(f"{suite} on {data_root}: citation validity {res.get('citation_validity')}")
    return res["metrics"]


def tune_scale(harness: Path, cli: Path, k: int, grid: tuple[float, ...] = SCALE_GRID,
               candidates: dict[str, Path] | None = None) -> dict[str, object]:
    """(c): choose the decision scale of the corpus-only model by nested K-fold CV by document.

    Two scales, each on the suite that measures it: negative_sentiment's on enron_tone (negative strict F1),
    then every other type's ("*") on enron_gold (mean of doc micro F1 and span F1) with negative_sentiment at
    the value chosen on enron_tone (a different set of documents). The model itself is not refitted: only
    the multiple of its out-of-fold corpus thresholds changes, so one harness run per (fold, scale) gives all
    the counts, and the nested selection is arithmetic on them. ``candidates`` (name -> artefact folder,
    each fitted on the corpus alone with other parameters) compete with the shipped model on enron_gold: the
    nested selection then picks a (model, scale) pair per fold, so the model choice is cross-validated too;
    their enron_tone figure at the shipped negative_sentiment scale is reported beside it."""
    import tempfile

    out: dict[str, object] = {"grid": list(grid), "folds": k, "split": "KFold by document, shuffled, seed 0",
                              "candidates": {n: str(p) for n, p in (candidates or {}).items()}}
    models = {SHIPPED: None, **(candidates or {})}
    with tempfile.TemporaryDirectory(prefix="ht-scale-") as tmp:
        root = Path(tmp)
        plan = [(TONE_SUITE, "negative_sentiment", {}), (KFOLD_SUITE, "*", None)]
        for suite, key, fixed in plan:
            if fixed is None:
                fixed = {"negative_sentiment": out[TONE_SUITE]["ship"]}  # type: ignore[index]
            roots = _fold_roots(root, harness, suite, k)
            counts: dict[object, list[dict[str, int]]] = {}
            for name, art in (models.items() if suite == KFOLD_SUITE else [(SHIPPED, None)]):
                for s in grid:
                    scale = {**fixed, key: s}
                    home = _variant(root, f"{suite}-{name}-{s}", scale, art)
                    ck = s if name == SHIPPED else (name, s)
                    counts[ck] = [_suite_counts(suite, _harness_metrics(harness, cli, suite, r, home)) for r in roots]
                    print(f"  {suite} {name} {key}={s}: {_figures(suite, _add(counts[ck]))}", flush=True)
            res = nested_cv(counts, suite)
            res |= {"scale_key": key, "fixed": fixed}
            for f in ("chosen_per_fold", "final_choice", "ship"):
                res[f] = [_label(x) for x in res[f]] if f == "chosen_per_fold" else _label(res[f])
            out[suite] = res
            print(f"  {suite}: nested CV {res['nested_cv']} (scale 1: {res['at_scale_1']}), chosen per fold "
                  f"{res['chosen_per_fold']}, on all folds {res['final_choice']}, ships {res['ship']} "
                  f"({res['ship_reason']})", flush=True)
            if suite == TONE_SUITE:
                res["ship"] = float(res["ship"])
        tone_roots = None
        for name, art in (candidates or {}).items():  # the candidates' tone figure (not used to choose)
            tone_roots = tone_roots or _fold_roots(root / 'cand', harness, TONE_SUITE, k)
            home = _variant(root, f"tone-{name}", {"negative_sentiment": out[TONE_SUITE]["ship"]}, art)  # type: ignore[index]
            rows = [_suite_counts(TONE_SUITE, _harness_metrics(harness, cli, TONE_SUITE, r, home)) for r in tone_roots]
            out.setdefault("candidate_tone", {})[name] = _figures(TONE_SUITE, _add(rows))  # type: ignore[union-attr]
            print(f"  {TONE_SUITE} {name}: {out['candidate_tone'][name]}", flush=True)  # type: ignore[index]
    name, scale = _parts_label(out[KFOLD_SUITE]["ship"])  # type: ignore[index]
    out["model"] = name
    out["threshold_scale"] = {"*": scale, "negative_sentiment": out[TONE_SUITE]["ship"]}  # type: ignore[index]
    return out


def _parts_label(label: str) -> tuple[str, float]:
    name, _, scale = label.rpartition("@")
    return (name or SHIPPED), float(scale)


MODEL_META_NAME = "sentence_model.json"


def write_scale(c: dict[str, object]) -> None:
    """Ship the scale chosen on all folds, with its provenance (grid, folds, the nested-CV estimate)."""
    import shutil

    path = ROOT / "extractors" / MODEL_META_NAME
    if c["model"] != SHIPPED:  # a candidate won: it becomes the shipped model (same corpus, its parameters)
        src = Path(c["candidates"][c["model"]])  # type: ignore[index]
        for name in ("sentence_model.npz", MODEL_META_NAME):
            shutil.copyfile(src / name, ROOT / "extractors" / name)
    meta = json.loads(path.read_text("utf-8"))
    meta.setdefault("params", {})["threshold_scale"] = c["threshold_scale"]
    meta["threshold_scale_provenance"] = {
        "chosen_by": "benchmarks/extract_generalisation.py --tune-scale "
                     f"{c['folds']} --write-scale (nested KFold by document on the dev split)",
        "model_sha256": meta["sha256"], "grid": c["grid"], "model_chosen": c["model"],
        "candidates": sorted(c["candidates"]), "candidate_tone": c.get("candidate_tone"),
        **{suite: {k: c[suite][k] for k in ("scale_key", "fixed", "chosen_per_fold", "nested_cv", "at_scale_1",
                                            "final_choice", "ship", "ship_reason")}  # type: ignore[index]
           for suite in (TONE_SUITE, KFOLD_SUITE)}}
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refit", action="store_true", help="refit the shipped model from the corpus first")
    ap.add_argument("--suite", default="text", help="harness suite (default: the 5 text suites)")
    ap.add_argument("--harness", type=Path, default=DEFAULT_HARNESS)
    ap.add_argument("--json", type=Path, help="also write the RESULT object here")
    ap.add_argument("--kfold", type=int, default=0, metavar="K",
                    help="also run (b): K-fold CV by document on enron_gold with dev labels joining the fit")
    ap.add_argument("--tune-scale", type=int, default=0, metavar="K",
                    help="also run (c): choose the decision scale by nested K-fold CV by document")
    ap.add_argument("--write-scale", action="store_true",
                    help="with --tune-scale: write the scale chosen on all folds into the shipped model's metadata")
    ap.add_argument("--candidate", action="append", metavar="NAME=FOLDER",
                    help="with --tune-scale: a model fitted on the corpus alone with other parameters, competing "
                         "with the shipped one inside the nested CV (repeatable)")
    ap.add_argument("--skip-a", action="store_true", help="only (b) / (c)")
    ap.add_argument("--artefact", type=Path, help="evaluate the model in this folder (sentence_model.npz/.json, "
                                                  "e.g. from `healthtrace extractor refit --out-dir`) instead of "
                                                  "the shipped one")
    args = ap.parse_args(argv)
    global ARTEFACT
    if args.artefact:
        if args.write_scale:
            ap.error("--write-scale writes the shipped model's metadata; it cannot go with --artefact")
        ARTEFACT = args.artefact.resolve()
    if args.write_scale and not args.tune_scale:
        ap.error("--write-scale needs --tune-scale K")
    cli = Path(sys.executable).parent / "healthtrace"
    if args.refit:
        subprocess.run([str(cli), "extractor", "refit"], check=True)
    meta = json.loads((ARTEFACT / "sentence_model.json").read_text("utf-8"))
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
    c = None
    if args.tune_scale:
        if args.tune_scale < 2:
            ap.error("--tune-scale needs at least 2 folds")
        print(f"(c) decision scale by nested {args.tune_scale}-fold CV by document (grid {list(SCALE_GRID)}):")
        cands = {}
        for item in args.candidate or []:
            name, _, folder = item.partition("=")
            if not name or not folder or "@" in name or name == SHIPPED:
                ap.error(f"--candidate wants NAME=FOLDER (NAME without '@', not {SHIPPED!r}), got {item!r}")
            cands[name] = Path(folder).resolve()
        c = tune_scale(args.harness, cli, args.tune_scale, candidates=cands)
        print(f"  threshold_scale to ship: {c['threshold_scale']}")
        if args.write_scale:
            write_scale(c)
            print(f"  written to extractors/{MODEL_META_NAME}")
    if args.skip_a:
        out = {"a_corpus_only": None, "b_kfold_dev": b, "c_decision_scale": c, "corpus_model": corpus}
        if args.json:
            args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print("RESULT " + json.dumps(out))
        return 0
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ht-corpus-only-") as tmp:
        # the corpus thresholds as fitted (scale 1): the decision scale is chosen on dev text, so (a) leaves it out
        try:
            res = _run_harness(args.harness, cli, args.suite, _variant(Path(tmp), "corpus-only", {}))
        except SystemExit as e:  # still end with a RESULT line, as every benchmark does
            print(e)
            print("RESULT " + json.dumps({"error": "harness run failed", "corpus_model": corpus}))
            return 1
    wall = time.perf_counter() - t0
    a = summarise(res)
    docs = sum(int(r.get("docs") or 0) for r in a.values())
    secs = sum(float(s.get("extract_seconds") or 0) for s in res.get("suites", {}).values())
    print("(a) corpus-only model on the DEV suites (out of sample):")
    for name, row in a.items():
        print(f"  {name:11} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print(f"  overall: {docs} docs in {secs:.1f}s of extract calls = {docs / secs if secs else 0:.1f} docs/s "
          f"(harness wall {wall:.0f}s)")
    out = {"a_corpus_only": a, "b_kfold_dev": b, "c_decision_scale": c, "docs_per_second_overall": round(docs / secs, 2) if secs else None,
           "corpus_model": corpus, "extractor_model": meta["sha256"][:12]}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
