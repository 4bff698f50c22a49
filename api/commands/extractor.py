"""``healthtrace extractor refit``: refit the offline extractor's sentence classifier from the training corpus."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

extractor_app = typer.Typer(help="The offline extractor's learned sentence classifier.", no_args_is_help=True)


@extractor_app.command("refit")
def refit_command(
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Where to write sentence_model.npz/.json "
                                                                   "(default: the installed extractors package).")] = None,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="Folder with corpus_*.jsonl "
                                                                 "(default: extractors/training).")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the out-of-fold report (JSON) here.")] = None,
) -> None:
    """Refit reproducibly (same corpus, same artefact) and print the out-of-fold report."""
    from extractors import refit as R

    meta = R.refit(out_dir or R.PACKAGE_DIR, corpus or R.TRAINING_DIR)
    rep = meta["oof_report"]
    if report:
        report.write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    emb = rep["embedding_model"]
    print(f"fitted on {meta['corpus_sentences']} sentences ({rep['negative_sentences']} negative); "
          f"sha256 {meta['sha256'][:12]}; stage 1 keeps {rep['stage1']['oof_recall']:.2f} of positives, "
          f"passes {rep['stage1']['oof_pass_rate_negatives']:.2f} of negatives (out of fold)")
    print(f"{'type':24} {'pos':>4} {'thr':>5} {'P@prior':>8} {'R':>6} {'F1':>6}")
    for t, r in emb.items():
        if r.get("threshold") is None:
            print(f"{t:24} {r['positives']:>4}   (too few positives)")
            continue
        flag = "" if r["meets_target"] else "  below target precision"
        print(f"{t:24} {r['positives']:>4} {r['threshold']:>5.2f} {r['oof_precision_at_prior']:>8.2f} "
              f"{r['oof_recall']:>6.2f} {r['oof_f1_at_prior']:>6.2f}{flag}")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(extractor_app, name="extractor")
