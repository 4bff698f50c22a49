"""One date policy (extractors/dates.py): a supported range, strict days, UTC moments, at every edge."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.testing import make_settings, seed_tenant
from extractors.dates import DateRangeError, parse_day, parse_moment, utc
from extractors.parsers import parse_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_small"
FAR_EMAIL = ("From: a@b.example.com\nTo: c@d.example.com\nDate: Fri, 31 Dec 9999 23:59:59 -1200\n"
             "Subject: far\n\nWe are evaluating other vendors and will not renew.\n")


def test_policy_functions():
    assert parse_day("2024-02-29") == date(2024, 2, 29)
    for bad in ("0", 0, "0001-01-01", "9999-12-31", "2024-13-01", "24-1-1", "", "1970"):
        with pytest.raises(DateRangeError):
            parse_day(bad)
    assert parse_moment("2024-05-01T10:00:00-05:00") == datetime(2024, 5, 1, 15, tzinfo=UTC)
    with pytest.raises(DateRangeError):
        parse_moment(0)
    with pytest.raises(DateRangeError):
        utc(datetime(9999, 12, 31, 23, 59, 59).replace(tzinfo=__import__("datetime").timezone.min))


def test_far_future_email_is_stored_undated():
    doc = parse_text(FAR_EMAIL, kind="email")
    assert doc.occurred_at is None
    assert doc.text == FAR_EMAIL


@pytest.fixture
def api():
    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        yield client, seed_tenant(client, st.store, st.service, "acme")


def test_api_dates_outside_the_range_are_422(api):
    client, s = api
    base = f"/v1/accounts/{s.account_id}"
    for path in (f"{base}/health?as_of=0001-01-01", f"{base}/health?as_of=0", f"{base}/why?since=0001-01-01",
                 f"{base}/health?as_of=9999-12-31", f"{base}/history?since=0001-01-01"):
        r = client.get(path, headers=s.read)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "1900-01-01..2200-12-31" in r.json()["error"]["message"] or "date" in r.json()["error"]["message"]
    assert client.get(f"{base}/health?as_of=2001-01-01", headers=s.read).status_code == 200
    r = client.post("/v1/usage", headers=s.write, json={"points": [
        {"account_id": s.account_id, "date": "0001-01-01", "metric": "m", "value": 1}]})
    assert r.status_code == 422
    r = client.post("/v1/documents", headers=s.write, json={"documents": [
        {"account_id": s.account_id, "text": "hello", "occurred_at": 0}]})
    assert r.status_code == 422


def test_api_far_future_email_and_offsets(api):
    client, s = api
    r = client.post("/v1/documents", headers=s.write, json={"documents": [
        {"account_id": s.account_id, "text": FAR_EMAIL, "path": "far.eml"}]})
    assert r.status_code == 201, r.text
    r = client.post("/v1/documents", headers=s.write, json={"documents": [
        {"account_id": s.account_id, "text": "A short note about the rollout.", "path": "n.txt",
         "occurred_at": "2024-05-01T23:30:00-05:00"}]})
    assert r.status_code == 201, r.text
    docs = {d.path: d for d in app_docs(client, s)}
    assert docs["far.eml"].occurred_at is None
    assert docs["n.txt"].occurred_at == datetime(2024, 5, 2, 4, 30, tzinfo=UTC)


def app_docs(client, s):
    return client.app.state.ht.ledger.documents_for(s.account_id, tenant="acme")


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEALTHTRACE_HOME": str(home), "HEALTHTRACE_EMBEDDER": "hashing"}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_dates_and_a_far_future_email_in_a_workspace(tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    (ws / "documents" / "acme" / "far.eml").write_text(FAR_EMAIL)
    home = tmp_path / "home"
    res = _cli(home, "ingest", "--workspace", str(ws), "--format", "json", "--no-vectors")
    assert "Traceback" not in res.stderr, res.stderr
    report = json.loads(res.stdout)
    assert report["documents_added"] == 5 and report["documents_failed"] == 0
    res = _cli(home, "score", "--as-of", "0001-01-01")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().count("\n") == 0 and "1900-01-01..2200-12-31" in res.stderr
