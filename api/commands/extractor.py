"""``healthtrace extractor refit|fit|distill|versions|activate``: the offline extractor's learned sentence
classifier and its versions (like scoring models: listed, one active per tenant, the bundled one by default)."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Annotated

import typer

extractor_app = typer.Typer(help="The offline extractor's learned sentence classifier and its versions.",
                            no_args_is_help=True)


class ListFormat(str, Enum):
    table = "table"
    json = "json"


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


def _figures_table(cmp: dict[str, Any]) -> None:
    """Old vs new out-of-fold precision/recall/F1 per type (same folds), then the micro figures."""
    old, new = cmp["old"]["all"], cmp["new"]["all"]
    print(f"out of fold, {cmp['folds']} folds grouped by {cmp['grouped_by']}, {cmp['sentences']} sentences "
          f"({cmp['extra_sentences']} from this tenant):")
    print(f"{'type':24} {'n':>5} {'old P':>6} {'old R':>6} {'old F1':>6} {'new P':>6} {'new R':>6} {'new F1':>6}")
    for t in sorted(set(old["types"]) | set(new["types"])):
        o, n = old["types"].get(t, {}), new["types"].get(t, {})
        sup = n.get("support", o.get("support", 0))
        print(f"{t:24} {sup:>5} {o.get('precision', 0):>6.2f} {o.get('recall', 0):>6.2f} {o.get('f1', 0):>6.2f} "
              f"{n.get('precision', 0):>6.2f} {n.get('recall', 0):>6.2f} {n.get('f1', 0):>6.2f}")
    for label, key in (("all sentences", "all"), ("tenant's examples", "extra")):
        o, n = cmp["old"][key]["micro"], cmp["new"][key]["micro"]
        print(f"{'micro, ' + label:24} {n['support']:>5} {o['precision']:>6.2f} {o['recall']:>6.2f} {o['f1']:>6.2f} "
              f"{n['precision']:>6.2f} {n['recall']:>6.2f} {n['f1']:>6.2f}")
    if cmp.get("rejected_examples"):
        print(f"rejected examples still tagged with the rejected type (out of fold): old "
              f"{cmp['old']['rejected_still_tagged']}, new {cmp['new']['rejected_still_tagged']} "
              f"of {cmp['rejected_examples']}")


def _agreement_table(agree: dict[str, Any]) -> None:
    print(f"agreement with the LLM on the held-out documents ({agree['new']['documents']}; reference: "
          f"{agree['reference']}):")
    print(f"{'type':24} {'LLM':>4} {'old P':>6} {'old R':>6} {'new P':>6} {'new R':>6}")
    old, new = agree["old"]["types"], agree["new"]["types"]
    for t in sorted(set(old) | set(new)):
        o, n = old.get(t, {}), new.get(t, {})
        print(f"{t:24} {n.get('teacher', o.get('teacher', 0)):>4} {o.get('precision', 0):>6.2f} "
              f"{o.get('recall', 0):>6.2f} {n.get('precision', 0):>6.2f} {n.get('recall', 0):>6.2f}")
    o, n = agree["old"]["micro"], agree["new"]["micro"]
    print(f"{'micro':24} {n['teacher']:>4} {o['precision']:>6.2f} {o['recall']:>6.2f} {n['precision']:>6.2f} "
          f"{n['recall']:>6.2f}")


@extractor_app.command("fit")
def fit_command(
    activate: Annotated[bool, typer.Option("--activate", help="Activate the new version if it is not worse "
                                                              "overall (out-of-fold micro-F1).")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --activate: activate even if it is worse.")] = False,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="Folder with corpus_*.jsonl "
                                                                 "(default: the shipped corpus).")] = None,
    max_feedback: Annotated[int | None, typer.Option("--max-feedback", min=1,
                                                     help="Use at most this many recent verdicts.")] = None,
    folds: Annotated[int, typer.Option(min=2, max=10, help="Cross-validation folds.")] = 5,
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
) -> None:
    """Refit the classifier on the corpus plus this tenant's confirmed and rejected signals; report the
    cross-validated change against the active version; register the new version (inactive unless --activate)."""
    from api.container import build_services
    from api.extractor_training import fit_extractor

    with build_services() as services:
        res = fit_extractor(services, tenant=tenant, corpus=corpus, activate=activate, force=force,
                            max_feedback=max_feedback, folds=folds)
    if format is ListFormat.json:
        print(json.dumps(res, indent=2, sort_keys=True, default=str))
        return
    t = res["report"]["training"]
    print(f"fitted {res['version']} (sha256 {res['sha256'][:12]}) on {t['corpus_sentences']} sentences: "
          f"{t['confirmed']} confirmed and {t['rejected']} rejected sentences of this tenant; "
          f"compared with {res['baseline']}")
    _figures_table(res["report"]["comparison"])
    print(res["reason"])


@extractor_app.command("distill")
def distill_command(
    files: Annotated[list[Path] | None, typer.Argument(help="Documents to sample from (or --workspace).")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", help="A workspace folder "
                                                                       "(documents/<account>/...).")] = None,
    sample: Annotated[int, typer.Option("--sample", min=1, help="Documents to send to the LLM.")] = 50,
    holdout: Annotated[float, typer.Option("--holdout", min=0.01, max=0.99,
                                           help="Part of the sample held out for the agreement report.")] = 0.3,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="Token budget (prompt + "
                                                   "completion): stop before exceeding it.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the token cost estimate; send nothing.")] = False,
    activate: Annotated[bool, typer.Option("--activate", help="Activate if the held-out agreement does not "
                                                              "fall.")] = False,
    force: Annotated[bool, typer.Option("--force", help="With --activate: activate anyway.")] = False,
    corpus: Annotated[Path | None, typer.Option("--corpus", help="Folder with corpus_*.jsonl "
                                                                 "(default: the shipped corpus).")] = None,
    folds: Annotated[int, typer.Option(min=2, max=10, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
) -> None:
    """Teach the offline extractor from the configured LLM (HEALTHTRACE_LLM_*): a stratified sample of your
    documents, only verified claims as training examples, refit, agreement on a held-out part, a new version."""
    from api.container import build_services
    from api.extractor_training import distill_extractor, load_sources

    with build_services() as services:
        s = services.settings
        docs, problems = load_sources(files or [], workspace, s.max_file_bytes, s.max_files_per_call)
        for p in problems:
            print(f"skipped: {p}", file=sys.stderr)
        res = distill_extractor(services, docs, sample=sample, holdout=holdout, max_tokens=max_tokens,
                                dry_run=dry_run, activate=activate, force=force, tenant=tenant, corpus=corpus,
                                folds=folds, seed=seed,
                                progress=lambda m: print(m, file=sys.stderr))
    if format is ListFormat.json:
        print(json.dumps(res, indent=2, sort_keys=True, default=str))
        return
    e = res["estimate"]
    print(f"sample: {res['sampled']} of {res['available']} documents ({res['training_docs']} for training, "
          f"{res['held_out_docs']} held out); estimate: {e['calls']} requests, {e['prompt_tokens']} prompt + "
          f"~{e['completion_tokens_est']} completion tokens, ${e['cost_usd']:.4f} ({e['model']})")
    if res["dry_run"]:
        print("dry run: nothing was sent")
        return
    t = res["report"]["training"]
    print(f"sent {t['documents_sent']} documents ({t['tokens_used']} tokens"
          f"{'' if t['max_tokens'] is None else ' of ' + str(t['max_tokens'])}); {t['verified_claims']} verified "
          f"claims kept, {t['unverified_claims_dropped']} unverified dropped; {t['training_sentences']} training "
          f"sentences ({t['positive_sentences']} positive)" + (f"; {t['stopped']}" if t["stopped"] else ""))
    print(f"registered {res['version']} (sha256 {res['sha256'][:12]}), compared with {res['report']['baseline']}")
    _agreement_table(res["report"]["agreement"])
    _figures_table(res["report"]["comparison"])
    print(res["reason"])


@extractor_app.command("versions")
def versions_command(
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
    format: Annotated[ListFormat, typer.Option("--format", "-f", help="Output format.")] = ListFormat.table,
) -> None:
    """Extractor versions of the tenant (the bundled one first); the active one is marked."""
    from api.container import build_services
    from api.extractor_training import version_registry

    with build_services() as services:
        rows = version_registry(services).versions(tenant=tenant)
    out = []
    for r in rows:
        cmp = (r.get("report") or {}).get("comparison") or {}
        out.append({"version": r["version"], "origin": r["origin"], "active": bool(r["active"]),
                    "sha256": r["sha256"], "path": r["path"],
                    "created_at": r["created_at"].isoformat() if r["created_at"] else None,
                    "delta_micro_f1": cmp.get("delta_micro_f1"), "report": r.get("report")})
    if format is ListFormat.json:
        print(json.dumps(out, indent=2, sort_keys=True, default=str))
        return
    print(f"{'':2}{'version':34} {'origin':8} {'sha256':12} {'created':20} {'dF1 (oof)':>9}")
    for r in out:
        d = "" if r["delta_micro_f1"] is None else f"{r['delta_micro_f1']:+.4f}"
        print(f"{'*' if r['active'] else ' ':2}{r['version']:34} {r['origin']:8} {r['sha256'][:12]:12} "
              f"{(r['created_at'] or '')[:19]:20} {d:>9}")


@extractor_app.command("activate")
def activate_command(
    version: Annotated[str, typer.Argument(help="A version from `healthtrace extractor versions` "
                                                "(bundled: the package's).")],
    tenant: Annotated[str, typer.Option(help="Tenant.")] = "default",
) -> None:
    """Make VERSION the tenant's offline extractor (ingest, extract and the API use it from now on)."""
    from api.container import build_services
    from api.extractor_training import version_registry

    with build_services() as services:
        row = version_registry(services).activate(version, tenant=tenant)
    print(f"active extractor version of {tenant}: {row['version']} (sha256 {row['sha256'][:12]})")


def register(app: typer.Typer) -> None:
    app.add_typer(extractor_app, name="extractor")
