"""``extractor fit`` and ``extractor distill`` on the container's stores: gather the tenant's material, refit
the offline classifier (extractors/refit.py), compare it with the active version and register it.

The edge of the pure pieces in extractors/retrain.py: here the ledger is read (verdicts, signals, documents),
the configured LLM is called (distill), files are written and versions are registered. A new version is the
corpus plus the active version's extra records with the refreshed kind replaced: ``fit`` replaces the
feedback part with the tenant's current verdicts, ``distill`` the distilled part with the new sample's claims.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from extractors.errors import ConfigError, InputError, InputTooLargeError
from extractors.models import SourceDocument

MAX_DISTILL_SAMPLE = 2_000
DISTILL_ROUND_DOCS = 8  # documents per budget check: the cap is checked against what was really used so far


def version_registry(services: Any) -> Any:
    reg = services.extractor_versions
    if reg is None:
        raise ConfigError("extractor versions need a SQL ledger (SQLite or PostgreSQL)")
    return reg


def _baseline(services: Any, tenant: str) -> tuple[dict[str, Any], Any, list[dict[str, Any]]]:
    """(active version row, its fitted classifier, the extra records it was trained on)."""
    from extractors.learned import load_model

    reg = version_registry(services)
    row = reg.active(tenant=tenant)
    model, _ = load_model(reg.directory(row))
    return row, model, reg.training_records(row)


def collect_verdicts(ledger: Any, tenant: str, limit: int) -> list[dict[str, Any]]:
    """The tenant's verdicts on verified signals (the ``limit`` most recent), oldest first, each with the text
    of the sentence(s) its citation lies in (the unit the classifier decides on) and its document."""
    from extractors.retrain import covering_sentences

    reviews = ledger.signal_reviews(tenant=tenant)[-limit:]
    signals = {s.id: s for s, t in ledger.signals_by_ids([r["signal_id"] for r in reviews]) if t == tenant}
    doc_ids = sorted({s.source_id for s in signals.values() if s.source_id})
    docs = {d.id: d for d, t in ledger.documents_by_ids(doc_ids) if t == tenant}
    out = []
    for r in reviews:
        sig = signals.get(r["signal_id"])
        if sig is None or not sig.verified or not sig.evidence:
            continue
        cit = sig.evidence[0]
        doc = docs.get(sig.source_id or "")
        texts = covering_sentences(doc, cit.start, cit.end) if doc is not None else [cit.quote]
        for text in texts:
            out.append({"verdict": r["verdict"], "type": sig.type, "text": text,
                        "genre": doc.kind if doc is not None else "email", "document": sig.source_id,
                        "signal_id": sig.id})
    return out


def _decide(registry: Any, row: dict[str, Any], ok: bool, activate: bool, force: bool, tenant: str,
            why_not: str) -> dict[str, Any]:
    if not activate:
        return {"activated": False, "reason": "registered inactive (activate with `healthtrace extractor activate`)"}
    if not ok and not force:
        return {"activated": False, "reason": f"not activated: {why_not} (use --force to activate anyway)"}
    registry.activate(row["version"], tenant=tenant)
    return {"activated": True, "reason": "activated" + ("" if ok else f" with --force although {why_not}")}


def fit_extractor(services: Any, *, tenant: str = "default", corpus: Path | None = None, activate: bool = False,
                  force: bool = False, max_feedback: int | None = None, folds: int = 5) -> dict[str, Any]:
    """Refit on the corpus plus the tenant's confirmed (positives) and rejected (hard negatives) signals,
    compare old and new fits out of fold, register the new version (inactive unless ``activate`` and not worse
    overall, or ``force``)."""
    from extractors import refit as R
    from extractors.retrain import MAX_FEEDBACK_EXAMPLES, feedback_records, not_worse

    limit = max_feedback or MAX_FEEDBACK_EXAMPLES
    if not 1 <= limit <= MAX_FEEDBACK_EXAMPLES:
        raise InputError(f"--max-feedback must be 1-{MAX_FEEDBACK_EXAMPLES}")
    registry = version_registry(services)
    active, baseline, baseline_extra = _baseline(services, tenant)
    verdicts = collect_verdicts(services.ledger, tenant, limit)
    feedback = feedback_records(verdicts, limit=limit)
    extra = [r for r in baseline_extra if r.get("origin") != "feedback"] + feedback
    with tempfile.TemporaryDirectory(prefix="healthtrace-fit-") as tmp:
        meta = R.refit_and_compare(Path(tmp), extra, baseline, baseline_extra=baseline_extra,
                                   directory=corpus or R.TRAINING_DIR, folds=folds)
        cmp = meta["comparison"]
        report = {"oof_report": meta["oof_report"], "comparison": cmp, "baseline": active["version"],
                  "training": {"corpus_sentences": meta["corpus_sentences"], "corpus_sha256": meta["corpus_sha256"],
                               "confirmed": sum(v["verdict"] == "confirm" for v in verdicts),
                               "rejected": sum(v["verdict"] == "reject" for v in verdicts),
                               "extra_records": len(extra)}}
        row = registry.register(Path(tmp), origin="fit", report=report, training=extra, tenant=tenant)
    ok = not_worse(cmp)
    decision = _decide(registry, row, ok, activate, force, tenant,
                       f"out-of-fold micro-F1 falls by {-cmp['delta_micro_f1']:.4f}")
    return {"version": row["version"], "sha256": row["sha256"], "baseline": active["version"], "report": report,
            "not_worse": ok, **decision}


# ----------------------------------------------------------------------------------------- distill
def load_sources(files: Sequence[Path], workspace: Path | None, max_bytes: int,
                 max_files: int) -> tuple[list[SourceDocument], list[str]]:
    """Documents of a workspace folder (accounts from its documents/<account>/ folders) or of files; returns
    (documents, problems). A file that does not parse is a problem, not the end of the run."""
    from extractors.errors import HealthtraceError
    from extractors.parsers import load_documents

    if workspace is not None and files:
        raise InputError("give --workspace or FILEs, not both")
    paths: list[tuple[str | None, Path]] = []
    if workspace is not None:
        from memory.workspace import load_workspace

        ws = load_workspace(workspace, max_documents=max_files, with_usage=False)
        paths = [(aid, p) for aid, ps in ws.documents.items() for p in ps]
    else:
        paths = [(None, Path(f)) for f in files]
    if not paths:
        raise InputError("no documents to distill from (give --workspace DIR or FILEs)")
    if len(paths) > max_files:
        raise InputTooLargeError(f"{len(paths)} files; the limit is {max_files}")
    docs: list[SourceDocument] = []
    problems: list[str] = []
    for aid, p in paths:
        try:
            docs.extend(load_documents(p, account_id=aid, max_bytes=max_bytes))
        except HealthtraceError as e:
            problems.append(str(e))
    return docs, problems


def distill_extractor(services: Any, docs: Sequence[SourceDocument], *, sample: int, holdout: float = 0.3,
                      max_tokens: int | None = None, dry_run: bool = False, activate: bool = False,
                      force: bool = False, tenant: str = "default", corpus: Path | None = None, folds: int = 5,
                      seed: int = 0, llm: Any = None,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Distil the configured LLM into the offline classifier: a stratified sample, only verified claims as
    training data, refit, agreement on the held-out part, register (origin ``distill``).

    ``dry_run``: the token estimate only, no request. ``max_tokens``: documents are sent in rounds and a round
    is sent only when the tokens used so far plus its estimate stay within the cap. ``llm`` replaces the chat
    model built from the settings (tests)."""
    from extractors import llm as L
    from extractors import refit as R
    from extractors.learned import LearnedExtractor
    from extractors.models import taxonomy
    from extractors.retrain import agreement, distill_records, split_holdout, stratified_sample

    say = progress or (lambda _m: None)
    if not 1 <= sample <= MAX_DISTILL_SAMPLE:
        raise InputError(f"--sample must be 1-{MAX_DISTILL_SAMPLE}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError("--max-tokens must be at least 1")
    chosen = stratified_sample(docs, sample, seed=seed)
    train_docs, held_docs = split_holdout(chosen, holdout, seed=seed)
    setup = services.llm_setup()
    est = L.estimate(chosen, L.NAME, setup).as_dict()
    base = {"sampled": len(chosen), "available": len(docs), "training_docs": len(train_docs),
            "held_out_docs": len(held_docs), "estimate": est}
    if dry_run:
        return {**base, "dry_run": True}
    if setup.client.base_url is None and llm is None:
        raise ConfigError("distill needs an LLM: set HEALTHTRACE_LLM_BASE_URL (and HEALTHTRACE_LLM_API_KEY)")
    if max_tokens is not None and est["prompt_tokens"] + est["completion_tokens_est"] > max_tokens:
        say(f"the whole sample is estimated at {est['prompt_tokens'] + est['completion_tokens_est']} tokens; "
            f"sending only what fits in --max-tokens {max_tokens}")
    teacher = L.build(setup, llm=llm)
    held_ids = {d.id for d in held_docs}
    got: dict[str, Any] = {}
    failed: list[str] = []
    used = 0
    stopped = None
    step = DISTILL_ROUND_DOCS if max_tokens is not None else len(chosen)  # no cap: one run, fullest batches
    for i in range(0, len(chosen), step):
        round_docs = chosen[i : i + step]
        if max_tokens is not None:
            fits: list[SourceDocument] = []
            for d in round_docs:  # the longest prefix of the round that still fits
                e = teacher.estimate([*fits, d])
                answers = e.calls * setup.client.max_tokens if setup.client.max_tokens else e.completion_tokens_est
                if used + e.prompt_tokens + answers > max_tokens:  # answers: bounded when each one is capped
                    break
                fits.append(d)
            if len(fits) < len(round_docs):
                stopped = (f"stopped before exceeding --max-tokens {max_tokens}: {used} tokens used before the "
                           f"last round, {len(got) + len(failed) + len(fits)} of {len(chosen)} documents sent")
                round_docs = fits
            if not round_docs:
                break
        results, failures = teacher.verified_claims(round_docs)
        run = teacher.last_run
        used += run.usage.prompt_tokens + run.usage.completion_tokens
        for dc in results:
            got[dc.doc.id] = dc
        failed += [f"{f.doc.path or f.doc.id}: {f.error}" for f in failures]
        say(f"sent {len(got) + len(failed)} of {len(chosen)} documents ({used} tokens)")
        if run.stopped:
            stopped = run.stopped
            break
        if stopped:
            break
    sent = len(got) + len(failed)
    if not got:
        raise InputError(f"no document was answered by the LLM ({sent} sent; {stopped or (failed[:1] or [''])[0]})")
    train_claims = [dc for doc_id, dc in got.items() if doc_id not in held_ids]
    held_claims = {doc_id: dc for doc_id, dc in got.items() if doc_id in held_ids}
    records, refused = distill_records(train_claims)
    unverified = sum(dc.unverified for dc in got.values())
    registry = version_registry(services)
    active, baseline, baseline_extra = _baseline(services, tenant)
    extra = [r for r in baseline_extra if r.get("origin") != "distill"] + records
    types = list(taxonomy())
    held = [dc.doc for dc in held_claims.values()]
    teacher_ref = {dc.doc.id: dc.claims for dc in held_claims.values()}
    old_sigs = LearnedExtractor(model_dir=registry.directory(active)).extract_batch(held) if held else []
    with tempfile.TemporaryDirectory(prefix="healthtrace-distill-") as tmp:
        meta = R.refit_and_compare(Path(tmp), extra, baseline, baseline_extra=baseline_extra,
                                   directory=corpus or R.TRAINING_DIR, folds=folds)
        new_sigs = LearnedExtractor(model_dir=Path(tmp)).extract_batch(held) if held else []
        agree = {"reference": "the LLM's verified claims on the held-out documents",
                 "old": agreement({d.id: s for d, s in zip(held, old_sigs)}, teacher_ref, types),
                 "new": agreement({d.id: s for d, s in zip(held, new_sigs)}, teacher_ref, types)}
        sample_any = next(iter(got.values()))
        report = {"oof_report": meta["oof_report"], "comparison": meta["comparison"], "agreement": agree,
                  "baseline": active["version"],
                  "teacher": {"model": sample_any.model, "prompt_version": sample_any.prompt_version,
                              "extractor_version": sample_any.extractor_version},
                  "training": {"documents_sent": sent, "documents_answered": len(got), "failed": len(failed),
                               "training_docs": len(train_claims), "held_out_docs": len(held_claims),
                               "verified_claims": sum(len(dc.claims) for dc in got.values()),
                               "unverified_claims_dropped": unverified, "misplaced_claims_refused": refused,
                               "training_sentences": len(records),
                               "positive_sentences": sum(1 for r in records if r["labels"]),
                               "tokens_used": used, "max_tokens": max_tokens, "stopped": stopped}}
        row = registry.register(Path(tmp), origin="distill", report=report, training=extra, tenant=tenant)
    old_f1, new_f1 = agree["old"]["micro"]["f1"], agree["new"]["micro"]["f1"]
    ok = bool(held) and new_f1 >= old_f1  # no held-out answer: nothing shows the new version is not worse
    why = (f"held-out agreement F1 falls from {old_f1:.3f} to {new_f1:.3f}" if held
           else "no held-out document was answered, so agreement was not measured")
    decision = _decide(registry, row, ok, activate, force, tenant, why)
    return {**base, "dry_run": False, "version": row["version"], "sha256": row["sha256"], "report": report,
            "failures": failed[:20], "agreement_f1": {"old": round(old_f1, 4), "new": round(new_f1, 4)},
            "not_worse": ok, **decision}
