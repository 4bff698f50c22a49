"""Throughput of the offline extractor, in process (parse + extract), over the evaluation e-mails.

Usage: python benchmarks/extract_throughput.py [--runs N] [--data-root DIR] [--limit N]

Reads the DEV e-mails of the shared evaluation folder (enron_tone + enron_gold); skips with a message and
exit status 0 when that folder is absent. Prints e-mails/s and MB/s per run, the medians, and a final line
``RESULT {json}``. Goal: >= 300 e-mails/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "data"
SUITES = ("enron_tone", "enron_gold")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=0, help="use at most N files (0 = all)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.runs > 100:
        ap.error("--runs must be between 1 and 100")

    files = sorted(p for s in SUITES for p in (args.data_root / s / "docs").glob("*") if p.is_file())
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"skipped: no evaluation e-mails under {args.data_root} ({', '.join(SUITES)})")
        return 0

    sys.path.insert(0, str(ROOT))
    from extractors.base import get_extractor
    from extractors.parsers import load_document

    extractor = get_extractor("rules")
    total_bytes = sum(p.stat().st_size for p in files)
    # warm-up: compiles the patterns once, as a long-running process would
    extractor.extract(load_document(str(files[0]), kind="email"))

    rates, mbs, cpu_rates, signals = [], [], [], 0
    for run in range(args.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        n_sig = 0
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
    result = {
        "emails": len(files),
        "bytes": total_bytes,
        "runs": args.runs,
        "emails_per_s_median": round(statistics.median(rates), 1),
        "mb_per_s_median": round(statistics.median(mbs), 3),
        # wall time suffers when the machine is shared; CPU time shows the single-core cost
        "emails_per_cpu_s_median": round(statistics.median(cpu_rates), 1),
        "signals_per_run": signals,
        "extractor": f"{extractor.name} {extractor.version}",
    }
    print(f"median: {result['emails_per_s_median']} e-mails/s, {result['mb_per_s_median']} MB/s")
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
