"""The API's ingest and the CLI's are one service (memory/ingest.py): same extractor choice, same idempotency;
api/ runs no SQL of its own on the ledger or feedback tables."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.testing import make_settings, seed_tenant
from memory.ingest import IngestOptions, Ingestor, ingest_files

API = Path(__file__).resolve().parent.parent / "api"
TEXT = "Kickoff went well. The customer wants to cancel the pilot if SSO is not ready by May.\n"


def test_api_ingest_goes_through_the_ingest_service(monkeypatch, tmp_path):
    calls: list[str] = []
    real = Ingestor.ingest_parsed

    def spy(self, docs):  # type: ignore[no-untyped-def]
        calls.append(self.options.extractor)
        return real(self, docs)

    monkeypatch.setattr(Ingestor, "ingest_parsed", spy)
    app = create_app(make_settings(home=tmp_path / "home"), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        s = seed_tenant(client, st.store, st.service, "default")
        body = {"documents": [{"account_id": s.account_id, "text": TEXT, "path": "note.txt"}]}
        first = client.post("/v1/documents", headers=s.write, json=body).json()
        again = client.post("/v1/documents", headers=s.write, json=body).json()
        assert first["added"] == 1 and again["added"] == 0
        assert calls and set(calls) == {"offline"}  # the configured default, as in the CLI
        # the CLI's ingest of the same text for the same account finds it already read by the same extractor
        f = tmp_path / "note.txt"
        f.write_text(TEXT)
        rep = ingest_files(st.ledger, [f], s.account_id, IngestOptions(vectors=False))
        assert rep.documents_unchanged == 1 and rep.documents_added == 0


def test_api_has_no_sql_on_ledger_tables():
    pattern = re.compile(r"__table__|\btext\(\s*[\"']|from sqlalchemy import .*\b(select|update|delete|text)\b")
    offenders = [f"{p.relative_to(API.parent)}:{i}" for p in API.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
