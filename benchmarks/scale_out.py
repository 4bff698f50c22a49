"""Scale-out benchmark: queue workers, and a 100k-account portfolio scored from PostgreSQL.

1. Workers: a generated workspace (short business emails, rules extractor, ledger only) is ingested with
   ``healthtrace ingest --queue --wait`` by 1 and then 2 ``healthtrace worker`` processes (solo pool, one job
   at a time each) on Redis + PostgreSQL, alternately, ``--rounds`` times each; median documents/s of each and
   the ratio. Each run gets a fresh database and workers that are up before the clock starts. The ratio is bounded by the cores the machine gives the
   workers (2 here, shared with the enqueuer, PostgreSQL and Redis), so expect well under 2x.
2. Portfolio: N generated accounts (default 100,000) with D days of usage (default 90: daily active users,
   weekly logins, contracted seats) and verified signals (3 each on two accounts in three) are written into
   PostgreSQL by SQL (not timed), then read back and scored in a fresh process, timed end to end: the bulk
   reader (memory/scoring_inputs.py: usage by binary COPY into columns, signals in one query) and the one
   engine (scoring/engine.py through scoring.batch.score_totals). Wall time and the process's peak RSS.
   Goal: <= 60 s including the reads, <= 4 GiB. A sample of accounts is checked against the per-account
   reader (inputs_for_account + score_inputs), so the figure is of exact, real work.

Needs PostgreSQL (HEALTHTRACE_BENCH_PG, default the local server) and Redis (HEALTHTRACE_BENCH_REDIS, default
redis://127.0.0.1:6379/12); databases are named queue_bench_* and dropped at the end. Last line: RESULT {json}.

    nice -n 10 python benchmarks/scale_out.py [--docs 400] [--rounds 2] [--accounts 100000] [--days 90]
                                              [--skip-workers]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG = os.environ.get("HEALTHTRACE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("HEALTHTRACE_BENCH_REDIS", "redis://127.0.0.1:6379/12")
AS_OF = date(2026, 6, 30)


@contextmanager
def database(tag: str) -> Iterator[str]:
    from memory.testing import temporary_postgres_database

    with temporary_postgres_database(PG, prefix=f"queue_bench_{tag}") as url:
        yield url


# ----------------------------------------------------------------------------------------- 1. workers
def _env(db: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHTRACE_")}
    env.update({"HEALTHTRACE_DATABASE_URL": db, "HEALTHTRACE_BROKER_URL": REDIS, "HEALTHTRACE_HOME": str(home),
                "HEALTHTRACE_EMBEDDER": "hashing", "PYTHONPATH": str(ROOT)})
    return env


def _start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = (logs / f"worker{n}_{i}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--pool", "solo", "--loglevel",
                                       "info"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    deadline = time.monotonic() + 90
    for i in range(n):  # up and consuming before the clock starts
        path = logs / f"worker{n}_{i}.log"
        while "ready." not in path.read_text(errors="replace"):
            if time.monotonic() > deadline or procs[i].poll() is not None:
                raise SystemExit(f"worker did not start: {path.read_text()[-2000:]}")
            time.sleep(0.2)
    return procs


def _one_run(n: int, ws: Path, tmp: Path, n_docs: int) -> float:
    """Documents/s of one queued ingest with ``n`` workers on a fresh database and broker."""
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    with database(f"w{n}") as db:
        env = _env(db, tmp / f"home{n}")
        subprocess.run([sys.executable, "-m", "api.cli", "stats", "--no-vectors"], env=env, cwd=ROOT,
                       check=True, capture_output=True)  # schema first
        procs = _start_workers(n, env, tmp)
        try:
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "api.cli", "ingest", "--workspace", str(ws), "--queue",
                                  "--wait", "--no-vectors", "-f", "json"], env=env, cwd=ROOT, capture_output=True,
                                 text=True)
            wall = time.perf_counter() - t0
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    if res.returncode != 0:
        raise SystemExit(f"queued ingest failed: {res.stderr[-2000:]}")
    rep = json.loads(res.stdout)
    if rep["documents_added"] != n_docs:
        raise SystemExit(f"{n} workers stored {rep['documents_added']} of {n_docs} documents")
    return n_docs / wall


def bench_workers(n_docs: int, rounds: int) -> dict[str, Any]:
    """1 and 2 workers alternately, ``rounds`` times each (the machine's load drifts): medians and their ratio."""
    import statistics

    import redis

    with tempfile.TemporaryDirectory() as tmp_name:
        from memory.synthetic import generate_workspace

        tmp = Path(tmp_name)
        ws = generate_workspace(tmp / "ws", n_docs, n_accounts=40)
        runs: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for n in (1, 2):
                runs[n].append(_one_run(n, ws, tmp, n_docs))
        redis.Redis.from_url(REDIS).flushdb()
    one, two = statistics.median(runs[1]), statistics.median(runs[2])
    return {"documents": n_docs, "extractor": "rules", "vectors": False, "pool": "solo", "rounds": rounds,
            "docs_per_s_1_worker": round(one, 1), "docs_per_s_2_workers": round(two, 1),
            "runs_docs_per_s": {str(k): [round(v, 1) for v in vs] for k, vs in runs.items()},
            "ratio_2_vs_1": round(two / one, 2), "cores": os.cpu_count(),
            "note": f"bounded by {os.cpu_count()} cores shared by the workers, the enqueuer, PostgreSQL and Redis "
                    "(and other jobs on this machine): not a measure of the queue's own limit"}


# ----------------------------------------------------------------------------------------- 2. portfolio
_SIGNAL_TYPES = ["churn_intent", "escalation", "positive_sentiment", "product_gap", "expansion_interest",
                 "pricing_objection", "value_confirmed", "negative_sentiment"]


def populate(db: str, n_accounts: int, days: int) -> dict[str, Any]:
    """Accounts, usage and signals written by PostgreSQL itself (generate_series), deterministic."""
    from sqlalchemy import text

    from extractors.models import Citation, Signal
    from memory.ledger import Ledger

    led = Ledger(db)  # schema
    start = AS_OF - timedelta(days=days - 1)
    t0 = time.perf_counter()
    with led.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO accounts (tenant, account_id, name, start_date, end_date, segment, metadata, updated_at) "
            "SELECT 'default', 'acc' || lpad(i::text, 6, '0'), 'Account ' || i, DATE '2025-01-01' + (i % 300), "
            "DATE '2026-09-01' + (i % 365), (ARRAY['smb', 'mid-market', 'enterprise'])[1 + i % 3], '{}'::json, "
            "now() FROM generate_series(0, :n - 1) i"), {"n": n_accounts})
        conn.execute(text("ALTER TABLE usage_points SET UNLOGGED"))  # bulk load; logged again below
        conn.execute(text(
            "INSERT INTO usage_points (tenant, account_id, date, metric, seq, value) "
            "SELECT 'default', 'acc' || lpad(i::text, 6, '0'), CAST(:start AS date) + d, 'active_users', 0, "
            "((hashtext(i || ':' || d) & 1023) % (20 + i % 100))::float8 "
            "FROM generate_series(0, :n - 1) i, generate_series(0, :days - 1) d"),
            {"n": n_accounts, "days": days, "start": start})
        conn.execute(text(
            "INSERT INTO usage_points (tenant, account_id, date, metric, seq, value) "
            "SELECT 'default', 'acc' || lpad(i::text, 6, '0'), CAST(:start AS date) + d, 'logins', 0, "
            "((hashtext('l' || i || ':' || d) & 1023) % 300)::float8 "
            "FROM generate_series(0, :n - 1) i, generate_series(0, :days - 1, 7) d"),
            {"n": n_accounts, "days": days, "start": start})
        conn.execute(text(
            "INSERT INTO usage_points (tenant, account_id, date, metric, seq, value) "
            "SELECT 'default', 'acc' || lpad(i::text, 6, '0'), CAST(:start AS date), 'seats_contracted', 0, "
            "(50 + i % 100)::float8 FROM generate_series(0, :n - 1) i"), {"n": n_accounts, "start": start})
        conn.execute(text("ALTER TABLE usage_points SET LOGGED"))
        for k, typ in enumerate(_SIGNAL_TYPES):
            when = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=timezone.utc)
            quote = "generated evidence"
            cit = Citation(source_id="doc", start=0, end=len(quote), quote=quote, occurred_at=when)
            tmpl = Signal(id="x", account_id="x", type=typ, severity=0.6, confidence=0.8, occurred_at=when,
                          evidence=[cit], extractor="bench", extractor_version="1").model_dump(mode="json")
            # three signals on two accounts in three: (i, j) for j in 0..2 where (i + j) % 8 == k, i % 3 != 0
            conn.execute(text(
                "INSERT INTO signals (id, tenant, account_id, type, category, polarity, verified, day, source_id, "
                "extractor, extractor_version, payload, indexed, created_at) "
                "SELECT s.sid, 'default', s.aid, :type, :cat, :pol, true, s.day, 'doc-' || s.aid, 'bench', '1', "
                "(jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set(CAST(:tmpl AS jsonb), '{id}', to_jsonb(s.sid)), "
                "'{account_id}', to_jsonb(s.aid)), '{occurred_at}', to_jsonb(s.ts)), '{source_id}', "
                "to_jsonb('doc-' || s.aid)), '{evidence,0}', jsonb_build_object('source_id', 'doc-' || s.aid, "
                "'start', 0, 'end', CAST(:qlen AS int), 'quote', CAST(:quote AS text), 'alignment', 'exact', 'similarity', 100.0, "
                "'occurred_at', s.ts, 'source_path', null, 'speaker', null)))::json, false, now() "
                "FROM (SELECT 'sig-' || i || '-' || j AS sid, 'acc' || lpad(i::text, 6, '0') AS aid, "
                "CAST(:asof AS date) - ((i * 7 + j * 31) % 120) AS day, "
                "to_char(CAST(:asof AS date) - ((i * 7 + j * 31) % 120), 'YYYY-MM-DD') || 'T00:00:00Z' AS ts "
                "FROM generate_series(0, :n - 1) i, generate_series(0, 2) j "
                "WHERE i % 3 <> 0 AND (i + j) % 8 = :k) s"),
                {"type": typ, "cat": tmpl["category"], "pol": tmpl["polarity"], "tmpl": json.dumps(tmpl),
                 "qlen": len(quote), "quote": quote, "asof": AS_OF, "n": n_accounts, "k": k})
        conn.execute(text("ANALYZE"))
        counts = {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0)
                  for t in ("accounts", "usage_points", "signals")}
    led.close()
    return {**counts, "populate_s": round(time.perf_counter() - t0, 1)}


def score_from_pg(db: str, sample: int) -> dict[str, Any]:
    """(In a fresh process.) Read the tenant and score it at AS_OF; peak RSS of this process."""
    from memory.ledger import Ledger
    from memory.scoring_inputs import bulk_inputs_from_ledger, inputs_for_account
    from scoring.batch import score_inputs, score_totals
    from scoring.model import default_model

    model = default_model()
    t0 = time.perf_counter()
    led = Ledger(db)
    inputs = bulk_inputs_from_ledger(led, until=AS_OF)
    t_read = time.perf_counter() - t0
    totals = score_totals(inputs, model, [AS_OF], workers=2)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    by_id = {aid: s for _, aid, s in totals}
    ids = sorted(by_id)
    step = max(1, len(ids) // max(1, sample))
    mismatches = 0
    for aid in ids[::step][:sample]:
        acc = inputs.accounts[aid]
        one = inputs_for_account(led, acc, AS_OF)
        ref = next(iter(score_inputs(one, model, [AS_OF]))).score
        if abs(ref - by_id[aid]) > 0.005:
            mismatches += 1
    led.close()
    scores = sorted(by_id.values())
    return {"accounts_scored": len(totals), "read_s": round(t_read, 2), "wall_s": round(wall, 2),
            "peak_rss_gib": round(peak_kib / 2**20, 2), "peak_rss_fork_worker_gib": round(peak_children / 2**20, 2),
            "sample_checked": min(sample, len(ids)),
            "sample_mismatches": mismatches, "median_score": scores[len(scores) // 2] if scores else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--sample", type=int, default=50)
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--score-only", metavar="DB_URL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.score_only:
        print(json.dumps(score_from_pg(args.score_only, args.sample)))
        return
    result: dict[str, Any] = {}
    if not args.skip_workers:
        result["workers"] = bench_workers(args.docs, args.rounds)
        print("workers:", json.dumps(result["workers"]), flush=True)
    with database("portfolio") as db:
        result["portfolio"] = populate(db, args.accounts, args.days)
        print("populated:", json.dumps(result["portfolio"]), flush=True)
        res = subprocess.run([sys.executable, __file__, "--score-only", db, "--sample", str(args.sample)],
                             capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            raise SystemExit(res.stderr[-3000:])
        scored = json.loads(res.stdout.strip().splitlines()[-1])
        result["portfolio"].update(scored)
    p = result["portfolio"]
    p["goal"] = {"wall_s": 60, "peak_rss_gib": 4}
    p["goal_met"] = p["wall_s"] <= 60 and p["peak_rss_gib"] <= 4 and p["sample_mismatches"] == 0
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
