"""Secrets never reach logs, error messages or stored run stats (extractors/redact.py is the one choke point)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from fake_openai import FakeOpenAI, error
from fastapi.testclient import TestClient

from api.app import create_app
from api.testing import make_settings, seed_tenant
from extractors.redact import redact, register_secret

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_small"
LLM_KEY = "zz-configured-llm-key-31337"


def test_patterns():
    register_secret("my-registered-secret-value")
    text = ("Authorization: Bearer abcdefghijklmnop, key ht_0a1b2c3d_abcdefghijklmnopqrstuvwxyz012345, "
            "sk-proj-ABCDEFGHIJKLMNOP, api_key=hunter2hunter2, https://user:pa55@db.example.com/x, "
            "https://hooks.slack.com/services/T0/B0/XYZ, my-registered-secret-value")
    out = redact(text)
    for secret in ("abcdefghijklmnop,", "abcdefghijklmnopqrstuvwxyz012345", "ABCDEFGHIJKLMNOP", "hunter2hunter2",
                   "pa55", "T0/B0/XYZ", "my-registered-secret-value"):
        assert secret not in out, (secret, out)
    assert "db.example.com/x" in out and redact("plain words stay") == "plain words stay"


def test_echoed_llm_key_is_absent_from_stderr_and_the_database(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    home = tmp_path / "home"
    echo = f"Incorrect API key provided: {LLM_KEY}. Authorization: Bearer {LLM_KEY}"
    with FakeOpenAI(lambda req: error(400, error=echo)) as fake:
        env = {**os.environ, "HEALTHTRACE_HOME": str(home), "HEALTHTRACE_EMBEDDER": "hashing",
               "HEALTHTRACE_LLM_BASE_URL": fake.base_url, "HEALTHTRACE_LLM_API_KEY": LLM_KEY,
               "HEALTHTRACE_LLM_MAX_RETRIES": "0", "HEALTHTRACE_LLM_CACHE": "false"}
        r = subprocess.run([sys.executable, "-m", "api.cli", "ingest", "--workspace", str(ws), "--extractor", "llm",
                            "--no-vectors", "--format", "json"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=180)
    assert fake.requests, "the fake endpoint was called"
    assert LLM_KEY not in r.stdout and LLM_KEY not in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    con = sqlite3.connect(home / "healthtrace.db")
    rows = con.execute("SELECT stats, error FROM extraction_runs").fetchall()
    assert rows and all(LLM_KEY not in json.dumps(row) for row in rows)
    assert any("failures" in (row[0] or "") for row in rows)
    con.close()


def test_failed_webhook_insert_does_not_log_its_secret(monkeypatch, caplog):
    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        st = app.state.ht
        s = seed_tenant(client, st.store, st.service, "acme")
        monkeypatch.setattr("memory.api_store.secrets.token_hex", lambda n=None: "aaaaaaaaaaaa")
        secret = "webhook-secret-never-logged-0001"
        body = {"url": "https://hooks.example.com/a", "secret": secret}
        assert client.post("/v1/webhooks", headers=s.write, json=body).status_code == 201
        with caplog.at_level(logging.DEBUG):
            r = client.post("/v1/webhooks", headers=s.write, json=body)  # same id: the INSERT fails
        assert r.status_code >= 500
        assert secret not in caplog.text and secret not in r.text


def test_log_records_keep_their_shape_while_secrets_are_masked():
    """uvicorn's access formatter reads ``record.args`` as a tuple: redaction must not break it."""
    from extractors.redact import install_log_redaction

    install_log_redaction()
    register_secret("tuple-arg-secret-123456")
    factory = logging.getLogRecordFactory()
    plain = factory("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                    ("127.0.0.1:5000", "GET", "/v1/accounts", "1.1", 200), None)
    assert plain.args == ("127.0.0.1:5000", "GET", "/v1/accounts", "1.1", 200)
    leaky = factory("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                    ("127.0.0.1:5000", "GET", "/v1/x?key=tuple-arg-secret-123456", "1.1", 200), None)
    assert isinstance(leaky.args, tuple) and len(leaky.args) == 5
    assert "tuple-arg-secret-123456" not in leaky.getMessage()
    client_addr, method, path, version, status = leaky.args  # what uvicorn's AccessFormatter unpacks
    assert status == 200 and "tuple-arg-secret-123456" not in path
