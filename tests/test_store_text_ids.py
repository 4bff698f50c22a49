"""Every store accepts any text (NUL, lone surrogates) with citations' offsets intact; ids are 64-bit.

Runs on SQLite, and on PostgreSQL when HEALTHTRACE_TEST_DATABASE_URL is set (a throwaway database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.testing import make_settings, seed_tenant
from extractors.models import Account, Outcome
from extractors.parsers import parse_text
from extractors.rules import RuleExtractor
from extractors.text import storable
from memory import ledger as ledger_mod
from memory.ledger import Ledger

RAW = ("From: a@b.example.com\nTo: c@d.example.com\nDate: Fri, 4 Sep 2020 10:00:00 +0000\nSubject: x\x00y\n\n"
       "Bad\x00news.\udc80 We will not renew the contract unless the reporting issues are fixed.\n")


@pytest.fixture
def url(ledger_url: str) -> str:
    return ledger_url


def test_storable_is_one_for_one():
    assert storable("a\x00b\udc80c") == "a\ufffdb\ufffdc"
    clean = "plain text"
    assert storable(clean) is clean


def test_nul_and_surrogates_store_and_citations_hold(url):
    led = Ledger(url)
    led.upsert_accounts([Account(account_id="acct\x00", name="A\x00B\udc80", metadata={"k\x00": "v\x00"}, tenant="t")])
    doc = parse_text(RAW, kind="email", path="p\x00.eml", account_id="acct\x00")
    assert len(doc.text) == len(RAW) and "\x00" not in doc.text
    sigs = RuleExtractor().extract(doc)
    assert sigs, "the rule extractor still reads the cleaned text"
    new, _ = led.record_document(doc, sigs, extractor="rules", version="t", tenant="t")
    assert new
    led.add_outcomes([Outcome(account_id="acct\x00", date=date(2020, 1, 1), outcome="churned", note="n\x00")], tenant="t")
    stored = led.documents_for("acct\ufffd", tenant="t")[0]
    assert stored.text == doc.text
    for s in led.signals_for("acct\ufffd", tenant="t"):
        for c in s.evidence:
            assert stored.text[c.start:c.end] == c.quote
            assert RAW[c.start:c.end].replace("\x00", "\ufffd").replace("\udc80", "\ufffd") == c.quote
    assert [a.name for a in led.list_accounts("t")] == ["A\ufffdB\ufffd"]
    led.close()


def test_event_ids_are_64_bit(url):
    led = Ledger(url)
    assert led.events(since_id=2**62) == []
    with led.write() as conn:
        conn.execute(ledger_mod.EventRow.__table__.insert().values(
            id=2**40, tenant="default", kind="k", account_id="a", payload={}, occurred_at=datetime.now(UTC),
            dedupe_key="big", created_at=datetime.now(UTC)))
        if led.dialect == "postgresql":  # a sequence past 2^31, as after years of events
            conn.execute(text("SELECT setval(pg_get_serial_sequence('events', 'id'), :v)"), {"v": 2**40})
    assert [e["id"] for e in led.events(since_id=2147483648)] == [2**40]
    assert led.add_event("k", "a", {}, occurred_at=datetime.now(UTC), dedupe_key="after-big")
    assert max(e["id"] for e in led.events(since_id=0)) > 2**40
    led.close()


def test_bigint_migration_keeps_rows(url):
    """A ledger made before 0004 (32-bit ids on PostgreSQL) keeps its events and then takes 64-bit ids."""
    led = Ledger(url)
    led.add_event("k", "a", {"n": 1}, occurred_at=datetime.now(UTC), dedupe_key="old", tenant="default")
    with led.write() as conn:
        if led.dialect == "postgresql":
            conn.execute(text("ALTER TABLE events ALTER COLUMN id TYPE INTEGER"))
        conn.execute(text("DELETE FROM schema_migrations WHERE name = '0004_bigint_ids'"))
    led.close()
    led = Ledger(url)
    assert "0004_bigint_ids" in led.applied_migrations()
    assert [e["payload"] for e in led.events(since_id=0)] == [{"n": 1}]
    if led.dialect == "postgresql":
        with led.read() as conn:
            kind = conn.scalar(text("SELECT data_type FROM information_schema.columns "
                                    "WHERE table_name = 'events' AND column_name = 'id'"))
        assert kind == "bigint"
    led.close()


def test_api_nul_inputs_are_not_503():
    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        s = seed_tenant(client, st.store, st.service, "acme")
        r = client.put("/v1/accounts", headers=s.write, json={"accounts": [
            {"account_id": "nul-acct", "name": "N\x00ame", "metadata": {"k": "v\x00"}}]})
        assert r.status_code == 200, r.text
        r = client.post("/v1/documents", headers=s.write, json={"documents": [
            {"account_id": s.account_id, "text": RAW.replace("\udc80", ""), "path": "a\x00.eml"}]})
        assert r.status_code == 201, r.text
        r = client.post("/v1/documents/upload", headers=s.write, data={"account_id": s.account_id},
                        files=[("files", ("u\x00.eml", RAW.encode("utf-8", "surrogatepass"), "message/rfc822"))])
        assert r.status_code == 201, r.text
        assert client.get("/v1/events?since_id=2147483648", headers=s.read).status_code == 200
