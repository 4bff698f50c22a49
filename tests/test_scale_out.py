"""The scaled deployment against the real services on this machine: Redis (broker, shared rate limits),
PostgreSQL (ledger), a `chroma run` server (vectors), `healthtrace worker` and `healthtrace serve` processes.

Skips cleanly when Redis or PostgreSQL cannot be reached. Uses Redis database 12 (broker) and 13 (rate limits)
unless HEALTHTRACE_TEST_REDIS_URL / HEALTHTRACE_TEST_REDIS_URL_2 say otherwise, and throwaway PostgreSQL
databases made through HEALTHTRACE_TEST_DATABASE_URL (default: the local ``test`` database's server).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.container import build_services
from memory.synthetic import email_text, generate_workspace
from memory.testing import TEST_DB_ENV, chroma_command, chroma_server, free_port, temporary_postgres_database, wait_http

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("HEALTHTRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
REDIS_URL_2 = os.environ.get("HEALTHTRACE_TEST_REDIS_URL_2", "redis://127.0.0.1:6379/13")
PG_BASE = os.environ.get(TEST_DB_ENV, "postgresql+psycopg://postgres@127.0.0.1:5432/test")

pytestmark = pytest.mark.timeout(120)


def _redis_or_skip(url: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        client.ping()
        client.flushdb()
        client.close()
    except Exception as e:  # noqa: BLE001 - any failure means: no Redis here
        pytest.skip(f"Redis not reachable at {url}: {e.__class__.__name__}")


def _pg_or_skip() -> None:
    try:
        from sqlalchemy import create_engine, text

        eng = create_engine(PG_BASE, connect_args={"connect_timeout": 2})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"PostgreSQL not reachable at {PG_BASE.split('@')[-1]}: {e.__class__.__name__}")


@pytest.fixture(scope="module")
def services() -> Iterator[None]:
    _redis_or_skip(REDIS_URL)
    _redis_or_skip(REDIS_URL_2)
    _pg_or_skip()
    yield
    import redis

    for url in (REDIS_URL, REDIS_URL_2):
        redis.Redis.from_url(url).flushdb()


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory, services: None) -> Iterator[str]:
    if chroma_command() is None:
        pytest.skip("the `chroma` command (from the chromadb package) is not installed next to this Python")
    with chroma_server(tmp_path_factory.mktemp("chroma-scale")) as url:
        yield url


def _env(home: Path, db: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHTRACE_")}
    env.update({"HEALTHTRACE_HOME": str(home), "HEALTHTRACE_DATABASE_URL": db, "HEALTHTRACE_EMBEDDER": "hashing",
                "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def _cli(env: dict[str, str], *args: str, timeout: float = 90) -> str:
    res = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, (args, res.stdout[-2000:], res.stderr[-2000:])
    return res.stdout


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--pool", "solo", "--loglevel", "info"],
                            env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _ready(*workers: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Until each worker says it is consuming (so both take part from the first job)."""
    deadline = time.monotonic() + timeout_s
    for w in workers:
        while "ready." not in w.log.read_text(errors="replace"):  # type: ignore[attr-defined]
            assert w.poll() is None and time.monotonic() < deadline, w.log.read_text()[-2000:]  # type: ignore[attr-defined]
            time.sleep(0.1)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait(timeout=20)


def _ledger_counts(env: dict[str, str], vectors: bool = True) -> dict[str, int]:
    """What `healthtrace stats` counts, read here (no process start): ledger rows and vector counts."""
    from api.settings import Settings
    from memory.ledger import Ledger
    from memory.vectors import VectorMemory

    led = Ledger(env["HEALTHTRACE_DATABASE_URL"])
    try:
        counts = {k: v for k, v in led.counts().items() if k != "extraction_runs"}
    finally:
        led.close()
    if vectors:
        settings = Settings(home=Path(env["HEALTHTRACE_HOME"]), chroma_url=env.get("HEALTHTRACE_CHROMA_URL"),
                            embedder="hashing")
        counts.update(build_services(settings).vectors.counts())
    return counts


def test_two_workers_store_what_one_plain_ingest_stores(services: None, chroma_url: str, tmp_path: Path) -> None:
    ws = generate_workspace(tmp_path / "ws", 24, n_accounts=4)
    with temporary_postgres_database(PG_BASE) as plain_db, temporary_postgres_database(PG_BASE) as queued_db:
        plain = _env(tmp_path / "plain", plain_db)  # embedded chroma in its own home
        plain_report = json.loads(_cli(plain, "ingest", "--workspace", str(ws), "-f", "json"))
        queued = _env(tmp_path / "queued", queued_db, HEALTHTRACE_BROKER_URL=REDIS_URL,
                      HEALTHTRACE_CHROMA_URL=chroma_url)
        workers = [_worker(queued, tmp_path / f"worker{i}.log") for i in range(2)]
        try:
            _ready(*workers)
            report = json.loads(_cli(queued, "ingest", "--workspace", str(ws), "--queue", "--wait", "-f", "json"))
            jobs = json.loads(_cli(queued, "jobs", "--limit", "1000", "-f", "json"))
        finally:
            _stop(workers)
        assert _ledger_counts(queued) == _ledger_counts(plain)  # ledger rows and stored vectors alike
        # the report's work counters: signals_embedded is left out, as workers may embed an account's metadata
        # signals again when a later file of that account replaces them (the stored vectors above are equal)
        for key in ("documents_added", "signals_added", "usage_added", "chunks_embedded", "metadata_signals_added"):
            assert report[key] == plain_report[key], key
        assert report["documents_added"] == 24 and report["chunks_embedded"] > 0
        ran_on = {j["worker"] for j in jobs if j["kind"] == "ingest_file"}
        assert len(ran_on) == 2, "both workers took jobs"


def _big_workspace(root: Path, sentences: int) -> Path:
    """A few short emails and one long one (meeting notes with a complaint here and there): its job runs for
    seconds, so a worker can be killed in the middle of it."""
    import random
    from datetime import datetime, timezone

    from memory.synthetic import _BODY

    generate_workspace(root, 6, n_accounts=3)
    rng = random.Random(3)
    filler = ["The agenda for the weekly call is attached.", "Notes from the session are in the shared folder.",
              "Please find the minutes below."]
    body = " ".join(rng.choice(_BODY) if i % 25 == 0 else rng.choice(filler) for i in range(sentences))
    head = email_text(rng, "acct0000", datetime(2024, 3, 1, 9, tzinfo=timezone.utc))
    (root / "documents" / "acct0000" / "notes-archive.eml").write_text(head + "\n" + body, encoding="utf-8")
    return root


def test_a_worker_killed_mid_job_leaves_no_duplicate_and_the_job_completes_elsewhere(
        services: None, tmp_path: Path) -> None:
    ws = _big_workspace(tmp_path / "ws", 70_000)
    with temporary_postgres_database(PG_BASE) as plain_db, temporary_postgres_database(PG_BASE) as queued_db:
        plain = _env(tmp_path / "plain", plain_db)
        _cli(plain, "ingest", "--workspace", str(ws), "--no-vectors", "-f", "json")
        queued = _env(tmp_path / "queued", queued_db, HEALTHTRACE_BROKER_URL=REDIS_URL,
                      HEALTHTRACE_QUEUE_VISIBILITY_S="6")
        workers = [_worker(queued, tmp_path / f"worker{i}.log") for i in range(2)]
        _ready(*workers)
        enq = subprocess.Popen([sys.executable, "-m", "api.cli", "ingest", "--workspace", str(ws), "--queue",
                                "--wait", "--no-vectors", "-f", "json"], env=queued, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            from sqlalchemy import create_engine, text

            eng = create_engine(queued_db)
            victim = None
            deadline = time.monotonic() + 60
            while victim is None and time.monotonic() < deadline:
                try:
                    with eng.connect() as conn:
                        row = conn.execute(text("SELECT id, worker FROM jobs WHERE subject LIKE '%notes-archive.eml' "
                                                "AND status = 'running'")).first()
                except Exception:  # noqa: BLE001 - the table appears with the first migration
                    row = None
                if row is not None:
                    victim = row
                else:
                    time.sleep(0.05)
            assert victim is not None, "the big job never ran"
            pid = int(victim.worker.rsplit(":", 1)[1])
            killed = next(w for w in workers if w.pid == pid)
            os.killpg(killed.pid, signal.SIGKILL)  # mid-job: its message is not acknowledged
            killed.wait(timeout=10)
            workers.append(_worker(queued, tmp_path / "restarted.log"))  # and one comes back
            out, err = enq.communicate(timeout=90)
            assert enq.returncode == 0, err[-2000:]
            with eng.connect() as conn:
                job = conn.execute(text("SELECT status, attempts, worker FROM jobs WHERE id = :i"),
                                   {"i": victim.id}).one()
            eng.dispose()
        finally:
            if enq.poll() is None:
                enq.kill()
            _stop(workers)
        assert job.status == "done" and job.attempts >= 2 and job.worker != victim.worker
        assert _ledger_counts(queued, vectors=False) == _ledger_counts(plain, vectors=False)
        assert json.loads(out)["documents_failed"] == 0


def test_two_api_processes_share_one_rate_limit_and_queue_ingest(services: None, tmp_path: Path) -> None:
    with temporary_postgres_database(PG_BASE) as db:
        env = _env(tmp_path / "api", db, HEALTHTRACE_BROKER_URL=REDIS_URL, HEALTHTRACE_REDIS_URL=REDIS_URL_2,
                   HEALTHTRACE_API_RATE_PER_S="0.001", HEALTHTRACE_API_RATE_BURST="6")
        limited = _cli(env, "keys", "create", "--tenant", "acme", "--scope", "read").strip()
        writer = _cli(env, "keys", "create", "--tenant", "acme", "--scope", "write").strip()
        ports = [free_port(), free_port()]
        procs = [subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(p), "--no-dashboard-key"],
                                  env=env, cwd=ROOT, stdout=(tmp_path / f"api{p}.log").open("wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True) for p in ports]
        procs.append(_worker(env, tmp_path / "worker.log"))
        try:
            for p, proc in zip(ports, procs):
                wait_http(f"http://127.0.0.1:{p}/healthz", proc, 45)
            codes = []
            for i in range(12):  # alternate between the two replicas
                r = httpx.get(f"http://127.0.0.1:{ports[i % 2]}/v1/whoami",
                              headers={"Authorization": f"Bearer {limited}"}, timeout=10)
                codes.append(r.status_code)
            assert codes.count(200) == 6 and codes.count(429) == 6, codes  # one bucket of 6 across both
            assert codes[:6] == [200] * 6

            auth = {"Authorization": f"Bearer {writer}"}
            a, b = (f"http://127.0.0.1:{p}" for p in ports)
            assert httpx.put(f"{a}/v1/accounts", json={"accounts": [{"account_id": "acme-1"}]}, headers=auth,
                             timeout=10).status_code == 200
            text = "From: dana@acme.example\nSubject: renewal\n\nWe are thinking about cancelling at the end of the term."
            r = httpx.post(f"{a}/v1/documents", json={"documents": [{"account_id": "acme-1", "text": text}]},
                           headers=auth, timeout=10)
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            assert r.json()["status"] in ("queued", "running", "done")
            from sqlalchemy import create_engine, text as sql

            eng = create_engine(db)
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                with eng.connect() as conn:
                    rows = conn.execute(sql("SELECT kind, status FROM jobs")).all()
                if any(k == "rescore" and s == "done" for k, s in rows) and \
                        all(s in ("done", "failed", "dead") for _, s in rows):
                    break
                time.sleep(0.2)
            eng.dispose()
            job = httpx.get(f"{b}/v1/jobs/{job_id}", headers=auth, timeout=10).json()  # the other replica
            assert job["status"] == "done" and job["result"]["added"] == 1 and job["result"]["rescore_jobs"]
            health = httpx.get(f"{b}/v1/accounts/acme-1/health", headers=auth, timeout=10)
            assert health.status_code == 200 and health.json()["score"] is not None
        finally:
            _stop(procs)


def test_bulk_reader_on_postgresql_scores_like_the_per_account_reader(services: None, tmp_path: Path) -> None:
    from tests.test_jobs_queue import _bulk_matches_per_account_reader

    ws = generate_workspace(tmp_path / "ws", 30, n_accounts=5)
    with temporary_postgres_database(PG_BASE) as db:
        _bulk_matches_per_account_reader(db, ws)
