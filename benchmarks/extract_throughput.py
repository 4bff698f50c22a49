"""Throughput of the offline extractor, in process (parse + extract), over the evaluation e-mails.

Usage: python benchmarks/extract_throughput.py [--runs N] [--data-root DIR] [--limit N] [--workers N]
       [--extractor offline|learned|rules] [--no-embeddings]

Reads the DEV e-mails of the shared evaluation folder (enron_tone + enron_gold); skips with a message and
exit status 0 when that folder is absent. Two figures:

* single process: parse + extract in this process, as the CLI's serial path does (groups of
  ``BATCH_FILES`` files through ``extract_batch`` where the extractor has it) (e-mails per CPU-second = the
  per-core cost);
* ``--workers`` processes (default: one per core, at most 4): the path ``healthtrace extract`` takes for many
  files (:func:`api.commands.extract.extract_parallel`, chunks of files per task, results in input order),
  with a warm pool as a long-running process would keep. Its CPU seconds include the workers'.

Prints e-mails/s and MB/s per run, the medians, and a final line ``RESULT {json}``. Goal: >= 300 e-mails/s
on 2 cores. The machine may be shared: the load average is reported with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "data"
SUITES = ("enron_tone", "enron_gold")


def _cpu_with_children() -> float:
    """This process's CPU seconds plus those of its finished children (the pool's workers, once shut down)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _parallel(files: list[Path], total_bytes: int, runs: int, workers: int, expect_signals: int,
              extractor: str) -> dict[str, object]:
    """The CLI's parallel path over a warm pool; each run's CPU counts parent and workers."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from api.commands.extract import extract_parallel

    sources = [str(p) for p in files]
    rates, mbs, cpu_rates = [], [], []
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    from api.commands.extract import _prepare_fork
    from extractors.encoder import shared_encoder

    for run in range(runs):
        shared_encoder().clear()  # the workers fork from this process: they must not inherit its embeddings
        _prepare_fork(extractor)
        # a pool per run, so that its workers' CPU time is collected (RUSAGE_CHILDREN counts reaped processes);
        # its start-up is timed too, as the CLI pays it
        t0, c0 = time.perf_counter(), _cpu_with_children()
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            got = list(extract_parallel(sources, kind="email", extractor=extractor, max_bytes=50 * 1024 * 1024,
                                        workers=workers, pool=pool))
        dt, dc = time.perf_counter() - t0, _cpu_with_children() - c0
        n_sig = sum(len(g) for g in got if not isinstance(g, str))
        assert n_sig == expect_signals, (n_sig, expect_signals)  # the same signals as the single process
        rates.append(len(files) / dt)
        mbs.append(total_bytes / dt / 1e6)
        cpu_rates.append(len(files) / dc if dc > 0 else 0.0)
        print(f"run {run + 1} ({workers} workers): {len(files)} e-mails in {dt:.2f}s = {rates[-1]:.1f} e-mails/s "
              f"({cpu_rates[-1]:.1f} e-mails per CPU-second, parent + workers)")
    return {
        "workers": workers,
        "emails_per_s_median": round(statistics.median(rates), 1),
        "mb_per_s_median": round(statistics.median(mbs), 3),
        "emails_per_cpu_s_median": round(statistics.median(cpu_rates), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=0, help="use at most N files (0 = all)")
    ap.add_argument("--workers", type=int, default=0, help="worker processes (0 = one per core, at most 4)")
    ap.add_argument("--extractor", default="offline", help="offline (default: e-mails go to the learned classifier), "
                    "learned or rules")
    ap.add_argument("--no-embeddings", action="store_true", help="the learned classifier's lexical twin only (no MiniLM)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.runs > 100:
        ap.error("--runs must be between 1 and 100")
    if not 0 <= args.workers <= 32:
        ap.error("--workers must be between 0 and 32")

    files = sorted(p for s in SUITES for p in (args.data_root / s / "docs").glob("*") if p.is_file())
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"skipped: no evaluation e-mails under {args.data_root} ({', '.join(SUITES)})")
        return 0

    sys.path.insert(0, str(ROOT))
    from api.commands.extract import BATCH_FILES, default_workers
    from extractors.base import get_extractor, set_default_options
    from extractors.parsers import load_document

    if args.no_embeddings:  # read when an extractor is built: here and in the forked workers
        for name in ("offline", "learned"):
            set_default_options(name, lambda: {"embeddings": False})
    extractor = get_extractor(args.extractor)
    batch = getattr(extractor, "extract_batch", None)
    total_bytes = sum(p.stat().st_size for p in files)
    # warm-up: compiles the patterns once, as a long-running process would
    extractor.extract(load_document(str(files[0]), kind="email"))

    rates, mbs, cpu_rates, signals = [], [], [], 0
    from extractors.encoder import shared_encoder

    for run in range(args.runs):
        shared_encoder().clear()  # every run embeds cold, as a new document set would (the cache is per process)
        t0, c0 = time.perf_counter(), time.process_time()
        n_sig = 0
        if callable(batch):
            for g in range(0, len(files), BATCH_FILES):
                docs = [load_document(str(p), kind="email") for p in files[g : g + BATCH_FILES]]
                n_sig += sum(len(x) for x in batch(docs))
        else:
            for p in files:
                n_sig += len(extractor.extract(load_document(str(p), kind="email")))
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        rates.append(len(files) / dt)
        mbs.append(total_bytes / dt / 1e6)
        cpu_rates.append(len(files) / dc if dc > 0 else 0.0)
        signals = n_sig
        print(
            f"run {run + 1}: {len(files)} e-mails in {dt:.2f}s = {rates[-1]:.1f} e-mails/s, {mbs[-1]:.2f} MB/s "
            f"({cpu_rates[-1]:.1f} e-mails per CPU-second)"
        )
    par = _parallel(files, total_bytes, args.runs, args.workers or default_workers(), signals, args.extractor)
    result = {
        "emails": len(files),
        "bytes": total_bytes,
        "runs": args.runs,
        "emails_per_s_median": par["emails_per_s_median"],
        "workers": par["workers"],
        "mb_per_s_median": par["mb_per_s_median"],
        "emails_per_cpu_s_median": par["emails_per_cpu_s_median"],
        "single_process": {
            "emails_per_s_median": round(statistics.median(rates), 1),
            "mb_per_s_median": round(statistics.median(mbs), 3),
            # wall time suffers when the machine is shared; CPU time shows the single-core cost
            "emails_per_cpu_s_median": round(statistics.median(cpu_rates), 1),
        },
        "signals_per_run": signals,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "extractor": f"{extractor.name} {extractor.version}",
        "embeddings": not args.no_embeddings if args.extractor != "rules" else None,
    }
    print(f"median: {result['emails_per_s_median']} e-mails/s with {result['workers']} workers, "
          f"{result['mb_per_s_median']} MB/s; single process {result['single_process']['emails_per_s_median']} "
          f"e-mails/s (load average {result['load_average_1m']})")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
