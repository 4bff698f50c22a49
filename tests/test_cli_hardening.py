"""CLI edges: an unusable home, exit codes that say a file failed, no phantom accounts, killed runs, and
concurrent first ingests on a new home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.container import build_services
from memory.ledger import Ledger, RunRow

ROOT = Path(__file__).resolve().parent.parent


def _cli(home: Path | str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "HEALTHTRACE_HOME": str(home), "HEALTHTRACE_EMBEDDER": "hashing", **env}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("args", [["stats"], ["ingest", "x.eml", "--account", "a"], ["score", "--as-of", "2024-01-01"],
                                  ["search", "a", "q"], ["why", "a"], ["recap", "a"]])
def test_uncreatable_home_is_one_line(tmp_path, args):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = _cli(blocker / "home", *args)
    assert r.returncode == 1, r
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "HEALTHTRACE_HOME" in r.stderr


def test_ingest_exit_codes_and_no_phantom_accounts(tmp_path):
    home = tmp_path / "home"
    good = tmp_path / "good.txt"
    good.write_text("Kickoff went well. The customer wants to cancel the pilot if SSO is not ready by May.\n")
    r = _cli(home, "ingest", "nope.eml", "--account", "acme", "--create-account", "--no-vectors")
    assert r.returncode == 1 and "nope.eml" in r.stderr and "Traceback" not in r.stderr
    r = _cli(home, "ingest", str(good), "--account", "acme", "--no-vectors")
    assert r.returncode == 1 and "unknown account 'acme'" in r.stderr and "--create-account" in r.stderr
    led = Ledger(f"sqlite:///{home / 'healthtrace.db'}")
    assert led.list_accounts() == []
    led.close()
    r = _cli(home, "ingest", str(good), "--account", "acme", "--create-account", "--no-vectors", "--format", "json")
    assert r.returncode == 0, r.stderr
    r = _cli(home, "ingest", str(good), str(tmp_path / "missing.eml"), "--account", "acme", "--no-vectors",
             "--format", "json")
    assert r.returncode == 1 and "missing.eml" in r.stderr
    assert json.loads(r.stdout)["documents_failed"] == 1


def test_killed_runs_are_marked(tmp_path):
    led = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    with led.write() as conn:
        conn.execute(RunRow.__table__.insert().values(
            extractor="rules", version="1", status="running", meta={"host": socket.gethostname(), "pid": dead.pid},
            stats={}, started_at=datetime.now(UTC).replace(tzinfo=None)))
        conn.execute(RunRow.__table__.insert().values(
            extractor="rules", version="1", status="running", meta={"host": "elsewhere", "pid": 1},
            stats={}, started_at=datetime(2020, 1, 1)))
        conn.execute(RunRow.__table__.insert().values(
            extractor="rules", version="1", status="running", meta={"host": socket.gethostname(), "pid": os.getpid()},
            stats={}, started_at=datetime.now(UTC).replace(tzinfo=None)))
    statuses = sorted(r["status"] for r in led.runs())
    assert statuses == ["killed", "running", "stale"]
    led.close()


SCRIPT = """
import os, sys, time
from api.container import build_services
from api.settings import Settings
from memory.vectors import CHUNKS, SIGNALS
go = float(sys.argv[1])
while time.time() < go:
    time.sleep(0.001)
m = build_services(Settings(home=sys.argv[2], embedder="hashing")).vectors
m.collection(CHUNKS); m.collection(SIGNALS)
print("ok")
"""


def test_concurrent_first_use_of_a_new_home_does_not_race(tmp_path):
    for attempt in range(2):
        home = tmp_path / f"home{attempt}"
        go = time.time() + 4
        procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(go), str(home)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0 and out.strip() == "ok", err[-2000:]


def test_no_test_installs_packages():
    """Tests get their tools from the project's setup step (Makefile), never from a test body."""
    for f in Path(__file__).parent.glob("test_*.py"):
        body = f.read_text()
        for needle in ('"apt-get"', "'apt-get'", '"pip", "install"', "pip install "):
            assert needle not in body or f.name == Path(__file__).name, (f.name, needle)
