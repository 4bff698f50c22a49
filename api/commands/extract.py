"""``healthtrace extract``: signals with verbatim citations from files, as the evaluation contract specifies."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from api.settings import Settings
    from extractors.errors import HealthtraceError
    from extractors.models import Signal, SourceDocument


class OutputFormat(str, Enum):
    jsonl = "jsonl"
    json = "json"
    table = "table"


class Kind(str, Enum):
    auto = "auto"
    email = "email"
    transcript = "transcript"
    notes = "notes"
    chat = "chat"
    ticket = "ticket"


# enough work for an offline extractor (a few files per worker, 512 KiB of text in all) goes to worker
# processes; below that, forking and collecting the results cost more than they save (500 tweets: 50 KB)
PARALLEL_MIN_FILES = 8
PARALLEL_MIN_BYTES = 1 << 19
MAX_WORKERS = 4
_EXTRACTORS: dict[str, Any] = {}  # per worker process: the extractor, built once


def signal_record(sig: Signal, source: str) -> dict[str, object]:
    """The contract's JSON object for one signal, plus provenance fields."""
    return {
        "source": source,
        "type": sig.type,
        "category": sig.category,
        "polarity": sig.polarity,
        "confidence": round(sig.confidence, 4),
        "severity": round(sig.severity, 4),
        "verified": sig.verified,
        "summary": sig.summary,
        "evidence": [
            {"start": c.start, "end": c.end, "quote": c.quote, "alignment": c.alignment} for c in sig.evidence
        ],
        "unverified_quotes": sig.unverified_quotes,
        "occurred_at": sig.occurred_at.isoformat() if sig.occurred_at else None,
        "id": sig.id,
        "extractor": sig.extractor,
        "extractor_version": sig.extractor_version,
        "prompt_version": sig.prompt_version,
        "model": sig.model,
    }


def _kept(sig: Signal, min_confidence: float, include_unverified: bool) -> bool:
    """The serial and the pooled paths must drop exactly the same signals."""
    return sig.confidence >= min_confidence and (sig.verified or include_unverified)


def _finish(records: list[dict[str, object]], format: OutputFormat, failed: int, total: int,
            summary: str | None = None) -> None:
    """Print what jsonl did not stream, then fail the run (exit 1) when any file failed."""
    out = sys.stdout
    if format is OutputFormat.json:
        json.dump(records, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif format is OutputFormat.table:
        _print_table(records)
    out.flush()
    if summary:
        print(summary, file=sys.stderr)
    if failed:
        print(f"{failed} of {total} files failed", file=sys.stderr)
        raise typer.Exit(1)


def extract_command(
    files: Annotated[list[Path], typer.Argument(help="Files to read (emails, transcripts, notes, chats).")],
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.table,
    kind: Annotated[Kind, typer.Option(help="Source kind; auto detects it per file.")] = Kind.auto,
    extractor: Annotated[str | None, typer.Option(help="Extractor: offline (default: learned for email and notes, rules "
                                                   "elsewhere), rules, learned, llm, hybrid (default: "
                                                   "HEALTHTRACE_EXTRACTOR, offline).")] = None,
    account: Annotated[str | None, typer.Option(help="Account id to attach to the signals.")] = None,
    min_confidence: Annotated[float, typer.Option(min=0, max=1, help="Drop signals below this.")] = 0.0,
    include_unverified: Annotated[
        bool, typer.Option("--include-unverified", help="Also print LLM signals whose quote is not in the source.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the LLM tokens and price this run would cost; call nothing.")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=0, max=32, help="Processes for offline extractors on many files (512 KiB+); "
                                              "0 = one per core (up to 4), 1 = in-process.")
    ] = 0,
) -> None:
    """Extract cited signals from FILES. Bad files are reported on stderr; the others continue."""
    from api.container import build_services, current_settings
    from extractors.base import get_extractor
    from extractors.errors import HealthtraceError
    from extractors.parsers import load_document

    settings = current_settings()
    extractor = extractor or settings.extractor
    if len(files) > settings.max_files_per_call:
        raise typer.BadParameter(f"{len(files)} files given; the limit per call is {settings.max_files_per_call}")
    if dry_run:
        _dry_run(files, kind.value, account, extractor, settings)
        return
    with build_services(settings) as services:  # the active extractor version's artefact, if one is stored
        options = services.extractor_options(extractor)
    ex = get_extractor(extractor, **options)
    n_workers = workers or default_workers()
    if _worth_a_pool(files, n_workers) and not hasattr(ex, "extract_many"):
        # offline extractors are CPU-bound: parse + extract in worker processes, output in input order
        _extract_in_pool(files, format, kind.value, account, extractor, settings.max_file_bytes, min_confidence,
                         include_unverified, n_workers, model_dir=options.get("model_dir"))
        return
    # extractors that batch (the LLM ones) get all documents at once: fewer, fuller requests, run concurrently
    prefetched = _extract_batched(ex, files, kind.value, account, settings) if hasattr(ex, "extract_many") else None
    failed = 0
    # a run the extractor stopped (dead endpoint): one line for all its pending files, not one per file
    stopped = getattr(getattr(ex, "last_run", None), "stopped", None) if prefetched is not None else None
    pending: list[str] = []
    records: list[dict[str, object]] = []
    out = sys.stdout
    progress = None
    if len(files) >= 50 and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        progress = Progress(console=Console(stderr=True), transient=True)
        progress.start()
        task = progress.add_task("extracting", total=len(files))
    # extractors that share model calls across documents (the learned classifier) get groups of files, streamed
    grouped = (_extract_grouped(ex, files, kind.value, account, settings.max_file_bytes)
               if prefetched is None and callable(getattr(ex, "extract_batch", None)) else None)
    try:
        for i, path in enumerate(files):
            source = str(path)
            try:
                if prefetched is not None:
                    got = prefetched[i]
                    if stopped is not None and isinstance(got, HealthtraceError) and str(got) == stopped:
                        pending.append(source)
                        continue
                    if isinstance(got, HealthtraceError):
                        raise got
                    signals = got
                elif grouped is not None:
                    got = next(grouped)
                    if isinstance(got, HealthtraceError):
                        raise got
                    signals = got
                else:
                    doc = load_document(source, kind=kind.value, account_id=account, max_bytes=settings.max_file_bytes)
                    signals = ex.extract(doc)
            except HealthtraceError as e:
                failed += 1
                print(f"error: {e}", file=sys.stderr)
                continue
            for sig in signals:
                if not _kept(sig, min_confidence, include_unverified):
                    continue
                rec = signal_record(sig, source)
                if format is OutputFormat.jsonl:
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                else:
                    records.append(rec)
            if progress is not None:
                progress.advance(task)
    finally:
        if progress is not None:
            progress.stop()
    if pending:
        names = ", ".join(pending[:20]) + (f" and {len(pending) - 20} more" if len(pending) > 20 else "")
        print(f"error: {stopped}; {len(pending)} of {len(files)} files left pending (the next run retries them): "
              f"{names}", file=sys.stderr)
        raise typer.Exit(1)
    summary = None
    totals = getattr(ex, "totals", None)
    if totals is not None and hasattr(totals, "as_dict"):
        t = totals.as_dict()
        summary = (f"{ex.name}: {t['calls']} LLM calls, {t['prompt_tokens']} prompt + {t['completion_tokens']} "
                   f"completion tokens, {t['cached_pieces']} cached pieces, {t['verified']} verified and "
                   f"{t['unverified']} unverified signals, {t['relabelled']} claims moved to the piece their quote "
                   f"is in, {t['fallbacks']} unusable answers retried one document per request "
                   f"({t['fallback_requests']} requests)")
    _finish(records, format, failed, len(files), summary)


BATCH_FILES = 32  # files whose documents share one model call (extractors with ``extract_batch``)


def _extract_grouped(ex: Any, files: list[Path], kind: str, account: str | None, max_bytes: int,
                     group: int = BATCH_FILES) -> Iterator[list[Signal] | HealthtraceError]:
    """Per file in order: its signals or its error, extracted ``group`` files at a time with ``extract_batch``
    (the same signals as one by one); a group that fails as a whole is redone file by file, so one bad
    document costs only its own result."""
    from extractors.errors import HealthtraceError
    from extractors.parsers import load_document

    for g in range(0, len(files), group):
        loaded: list[SourceDocument | HealthtraceError] = []
        for path in files[g : g + group]:
            try:
                loaded.append(load_document(str(path), kind=kind, account_id=account, max_bytes=max_bytes))
            except HealthtraceError as e:
                loaded.append(e)
        docs = [d for d in loaded if not isinstance(d, HealthtraceError)]
        try:
            got = iter(ex.extract_batch(docs))
            yield from (d if isinstance(d, HealthtraceError) else next(got) for d in loaded)
        except HealthtraceError:
            for d in loaded:
                if isinstance(d, HealthtraceError):
                    yield d
                    continue
                try:
                    yield ex.extract(d)
                except HealthtraceError as e:
                    yield e


def default_workers() -> int:
    import os

    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def _worth_a_pool(files: list[Path], workers: int) -> bool:
    if workers <= 1 or len(files) < max(PARALLEL_MIN_FILES, 2 * workers):
        return False
    size = 0
    for p in files:
        try:
            size += p.stat().st_size
        except OSError:
            continue  # reported by the extraction itself
    return size >= PARALLEL_MIN_BYTES


# files, kind, account, extractor, limits, embedding threads per worker, extractor version's artefact folder
_Job = tuple[list[str], str, str | None, str, int, float, bool, int, str | None]


def _extract_chunk(job: _Job) -> list[list[dict[str, object]] | str]:
    """Worker: per file, its records (filtered as the serial path filters) or the error line's text."""
    from extractors.base import get_extractor
    from extractors.errors import HealthtraceError
    from extractors.parsers import load_document

    sources, kind, account, name, max_bytes, min_confidence, include_unverified, threads, model_dir = job
    key = f"{name}@{model_dir}" if model_dir else name
    ex = _EXTRACTORS.get(key)
    if ex is None:
        import multiprocessing as mp

        if mp.parent_process() is not None:  # a pool worker: N workers x all cores would oversubscribe them
            from extractors.encoder import set_default_threads

            set_default_threads(threads)
        ex = _EXTRACTORS[key] = get_extractor(name, **({"model_dir": Path(model_dir)} if model_dir else {}))
    out: list[list[dict[str, object]] | str] = []
    if callable(getattr(ex, "extract_batch", None)):
        got = _extract_grouped(ex, [Path(s) for s in sources], kind, account, max_bytes, group=len(sources) or 1)
        for source, signals in zip(sources, got):
            if isinstance(signals, HealthtraceError):
                out.append(str(signals))
            else:
                out.append([signal_record(sig, source) for sig in signals
                            if _kept(sig, min_confidence, include_unverified)])
        return out
    for source in sources:
        try:
            signals = ex.extract(load_document(source, kind=kind, account_id=account, max_bytes=max_bytes))
        except HealthtraceError as e:
            out.append(str(e))
            continue
        out.append([signal_record(sig, source) for sig in signals if _kept(sig, min_confidence, include_unverified)])
    return out


def _prepare_fork(extractor: str, model_dir: str | None = None) -> None:
    """Import what every worker needs before the pool forks, so the workers share it instead of each importing
    it again (the learned classifier's vectorisers and onnxruntime: about a second of CPU per worker)."""
    from extractors.base import get_extractor

    ex = get_extractor(extractor, **({"model_dir": Path(model_dir)} if model_dir else {}))
    prepare = getattr(ex, "prepare_fork", None)
    if callable(prepare):
        prepare()


def extract_parallel(
    sources: list[str], *, kind: str = "auto", account: str | None = None, extractor: str = "offline",
    max_bytes: int, min_confidence: float = 0.0, include_unverified: bool = False, workers: int = 2,
    chunk: int = 0, pool: Any = None, model_dir: Path | str | None = None,
) -> Iterator[list[dict[str, object]] | str]:
    """Per file in input order: its signal records, or the error text. Files go to worker processes in chunks
    (a few per worker and round, so pickling is amortised and slow files even out); pass ``pool`` to reuse one."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import os

    chunk = chunk or max(1, min(BATCH_FILES, len(sources) // (workers * 4) or 1))
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))  # the embedding model's threads per worker
    where = str(model_dir) if model_dir is not None else None
    jobs = [(sources[i : i + chunk], kind, account, extractor, max_bytes, min_confidence, include_unverified,
             threads, where) for i in range(0, len(sources), chunk)]
    own = pool is None
    if own:
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None  # workers inherit imports
        if ctx is not None:
            _prepare_fork(extractor, where)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    try:
        for part in pool.map(_extract_chunk, jobs):
            yield from part
    finally:
        if own:
            pool.shutdown()


def _extract_in_pool(files: list[Path], format: OutputFormat, kind: str, account: str | None, extractor: str,
                     max_bytes: int, min_confidence: float, include_unverified: bool, workers: int,
                     model_dir: Path | None = None) -> None:
    """The serial loop's output (records in input order, one error line per bad file, exit 1 if any)."""
    out = sys.stdout
    failed = 0
    records: list[dict[str, object]] = []
    for got in extract_parallel([str(p) for p in files], kind=kind, account=account, extractor=extractor,
                                max_bytes=max_bytes, min_confidence=min_confidence,
                                include_unverified=include_unverified, workers=workers, model_dir=model_dir):
        if isinstance(got, str):
            failed += 1
            print(f"error: {got}", file=sys.stderr)
            continue
        if format is OutputFormat.jsonl:
            out.write("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in got))
        else:
            records.extend(got)
    _finish(records, format, failed, len(files))


def _load_all(
    files: list[Path], kind: str, account: str | None, settings: Settings
) -> list[SourceDocument | HealthtraceError]:
    from extractors.errors import HealthtraceError
    from extractors.parsers import load_document

    out: list[SourceDocument | HealthtraceError] = []
    for path in files:
        try:
            out.append(load_document(str(path), kind=kind, account_id=account, max_bytes=settings.max_file_bytes))
        except HealthtraceError as e:
            out.append(e)
    return out


def _extract_batched(
    ex: Any, files: list[Path], kind: str, account: str | None, settings: Settings
) -> list[list[Signal] | HealthtraceError]:
    """Signals or the error, per file in order; ``extract_many`` never loses a document, so neither does this."""
    from extractors.errors import ExtractionError, HealthtraceError

    loaded = _load_all(files, kind, account, settings)
    docs = [d for d in loaded if not isinstance(d, HealthtraceError)]
    results, failures = ex.extract_many(docs)
    by_doc: dict[int, list[Signal] | HealthtraceError] = {id(r.doc): r.signals for r in results}
    by_doc.update({id(f.doc): ExtractionError(f.error) for f in failures})
    return [d if isinstance(d, HealthtraceError) else by_doc[id(d)] for d in loaded]


def _dry_run(files: list[Path], kind: str, account: str | None, extractor: str, settings: Settings) -> None:
    """What an LLM run would send and cost (cached answers are free); the endpoint is not needed."""
    from extractors.errors import HealthtraceError

    loaded = _load_all(files, kind, account, settings)
    for d in loaded:
        if isinstance(d, HealthtraceError):
            print(f"error: {d}", file=sys.stderr)
    docs = [d for d in loaded if not isinstance(d, HealthtraceError)]
    if extractor in ("llm", "hybrid"):
        from api.llm_setup import llm_setup
        from extractors.llm import estimate

        report = estimate(docs, extractor, llm_setup(settings)).as_dict()
    else:
        report = {"documents": len(docs), "calls": 0, "prompt_tokens": 0, "cost_usd": 0.0,
                  "note": f"the {extractor} extractor makes no LLM calls"}
    print(json.dumps(report))


def _print_table(records: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(records)} signals", show_lines=False)
    for col in ("source", "type", "pol", "conf", "quote"):
        table.add_column(col, overflow="fold")
    for r in records:
        ev = r["evidence"]
        quote = ev[0]["quote"] if ev else "(unverified) " + "; ".join(r["unverified_quotes"])  # type: ignore[index]
        table.add_row(
            Path(str(r["source"])).name,
            str(r["type"]),
            {1: "+", -1: "-", 0: "0"}.get(r["polarity"], "?"),  # type: ignore[arg-type]
            f"{r['confidence']:.2f}",
            " ".join(str(quote).split())[:160],
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_command)
