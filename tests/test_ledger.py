"""The ledger on SQLite always, and on PostgreSQL when HEALTHTRACE_TEST_DATABASE_URL is set."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from api.container import build_services
from extractors.errors import NotFoundError, StoreError
from extractors.grounding import citation_for_span
from extractors.models import (
    Account,
    HealthScore,
    Outcome,
    Signal,
    SourceDocument,
    UsagePoint,
    UsageRow,
)
from memory import ledger as ledger_mod
from memory.ledger import Ledger
from memory.testing import store_backends, temporary_postgres_database


@pytest.fixture
def url(ledger_url: str) -> str:
    return ledger_url


@pytest.fixture
def led(url: str) -> Iterator[Ledger]:
    lg = Ledger(url)
    yield lg
    lg.close()


def _doc(text: str = "Hello. We will cancel our subscription next month.", **kw: object) -> SourceDocument:
    base = {"kind": "email", "account_id": "a1", "path": "mail/one.eml",
            "occurred_at": datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)}
    base.update(kw)
    return SourceDocument(text=text, **base)  # type: ignore[arg-type]


def _signal(doc: SourceDocument, quote: str, type_: str = "churn_intent", **kw: object) -> Signal:
    start = doc.text.index(quote)
    c = citation_for_span(doc, start, start + len(quote))
    base = {"account_id": doc.account_id, "type": type_, "evidence": [c], "extractor": "rules",
            "extractor_version": "1", "occurred_at": doc.occurred_at}
    base.update(kw)
    return Signal(**base)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- schema
def test_migrations_are_recorded_once_and_reopen_is_a_no_op(url: str) -> None:
    a = Ledger(url)
    assert a.applied_migrations() == [name for name, _ in ledger_mod.MIGRATIONS]
    a.upsert_accounts([Account(account_id="a1")])
    a.close()
    b = Ledger(url)
    assert b.applied_migrations() == [name for name, _ in ledger_mod.MIGRATIONS]
    assert b.counts()["accounts"] == 1
    b.close()


def test_a_new_migration_adds_a_column_without_losing_data(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    a = Ledger(url)
    a.upsert_accounts([Account(account_id="keep-me", name="Kept")])
    a.close()

    def add_column(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(text("ALTER TABLE accounts ADD COLUMN region VARCHAR(50) DEFAULT 'eu'"))

    monkeypatch.setattr(ledger_mod, "MIGRATIONS", [*ledger_mod.MIGRATIONS, ("9999_test_region", add_column)])
    b = Ledger(url)
    assert "9999_test_region" in b.applied_migrations()
    with b.read() as conn:
        assert conn.execute(text("SELECT region FROM accounts WHERE account_id = 'keep-me'")).scalar() == "eu"
    assert b.get_account("keep-me").name == "Kept"
    b.close()
    Ledger(url).close()  # applied migrations are not re-run (a second ADD COLUMN would fail)


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'x.db'}")
    with led.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    led.close()


def test_from_settings_creates_the_home_folder(tmp_path: Path) -> None:
    from api.settings import Settings

    home = tmp_path / "deep" / "home"
    led = build_services(Settings(home=home)).ledger
    assert (home / "healthtrace.db").exists()
    led.close()


def test_unsupported_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        Ledger("mysql://nobody@localhost/db")


# ----------------------------------------------------------------------------------------- accounts
def test_accounts_upsert_get_list(led: Ledger) -> None:
    assert led.upsert_accounts([Account(account_id="b"), Account(account_id="a", name="A", start_date=date(2024, 1, 1))]) == 2
    assert led.upsert_accounts([Account(account_id="b"), Account(account_id="a", name="A", start_date=date(2024, 1, 1))]) == 0
    assert led.upsert_accounts([Account(account_id="b", segment="smb", metadata={"csm": "jo"})]) == 1
    b = led.get_account("b")
    assert (b.segment, b.metadata) == ("smb", {"csm": "jo"})
    assert [a.account_id for a in led.list_accounts()] == ["a", "b"]
    assert led.get_account("a").start_date == date(2024, 1, 1)
    with pytest.raises(NotFoundError):
        led.get_account("zzz")
    with pytest.raises(NotFoundError):
        led.get_account("a", tenant="other")
    led.upsert_accounts([Account(account_id="a", tenant="other", name="Other A")])
    assert led.get_account("a", tenant="other").name == "Other A"
    assert led.get_account("a").name == "A"


# ----------------------------------------------------------------------------------------- documents
def test_documents_are_content_addressed_and_versioned_by_path(led: Ledger) -> None:
    d1 = _doc()
    assert led.add_document(d1) is True
    assert led.add_document(d1) is False
    got = led.get_document(d1.id)
    assert got.text == d1.text and got.occurred_at == d1.occurred_at and got.path == d1.path
    d2 = _doc("Hello. We are renewing for two more years.")
    assert led.add_document(d2) is True
    with led.read() as conn:
        versions = dict(conn.execute(text("SELECT id, version FROM documents")).all())
    assert versions == {d1.id: 1, d2.id: 2}
    assert [d.id for d in led.documents_for("a1")] == [d1.id, d2.id]
    assert led.documents_for("nobody") == []
    with pytest.raises(NotFoundError):
        led.get_document("missing")


def test_document_text_keeps_crlf_and_unicode(led: Ledger) -> None:
    d = _doc("Caf\u00e9 \u2013 line one\r\nline two \U0001f600\r\n")
    led.add_document(d)
    assert led.get_document(d.id).text == d.text


def test_record_document_is_one_idempotent_transaction(led: Ledger) -> None:
    d = _doc()
    sigs = [_signal(d, "cancel our subscription")]
    assert led.record_document(d, sigs, extractor="rules", version="1") == (True, 1)
    assert led.record_document(d, sigs, extractor="rules", version="1") == (False, 0)
    assert led.extracted("rules", "1") == {d.id: ""}
    assert led.extracted("rules", "2") == {}


# ----------------------------------------------------------------------------------------- signals
def test_signals_idempotent_and_filtered(led: Ledger) -> None:
    d = _doc()
    led.add_document(d)
    s1 = _signal(d, "cancel our subscription")
    s2 = _signal(d, "Hello", type_="positive_sentiment", occurred_at=datetime(2024, 5, 1, tzinfo=timezone.utc))
    s3 = Signal(account_id="a1", type="churn_intent", unverified_quotes=["we might leave"], extractor="llm",
                extractor_version="1", occurred_at=datetime(2024, 4, 1, tzinfo=timezone.utc))
    undated = _signal(d, "next month", type_="renewal_risk" if "renewal_risk" in _types() else "churn_intent",
                      occurred_at=None, extractor="other")
    assert led.add_signals([s1, s2, s3, undated]) == 4
    assert led.add_signals([s1, s2, s3]) == 0
    assert [s.id for s in led.signals_for("a1", verified_only=False, until=date(2024, 12, 31))] == [s1.id, s3.id, s2.id]
    assert {s.id for s in led.signals_for("a1")} == {s1.id, s2.id, undated.id}
    assert [s.id for s in led.signals_for("a1", until=date(2024, 3, 1))] == [s1.id]
    assert [s.id for s in led.signals_for("a1", since=date(2024, 3, 2))] == [s2.id]
    assert [s.id for s in led.signals_for("a1", types={"positive_sentiment"})] == [s2.id]
    back = {s.id: s for s in led.signals_for("a1", verified_only=False)}
    assert back[s1.id] == s1
    assert back[s3.id].unverified_quotes == ["we might leave"] and not back[s3.id].verified
    for s in back.values():
        for c in s.evidence:
            assert d.text[c.start : c.end] == c.quote
    assert led.signals_for("a2") == []


def _types() -> set[str]:
    from extractors.models import taxonomy

    return set(taxonomy())


def test_replace_account_signals_swaps_the_derived_set(led: Ledger) -> None:
    d = _doc()
    led.add_document(d)
    old = _signal(d, "Hello", type_="positive_sentiment", extractor="metadata")
    keep = _signal(d, "cancel our subscription", extractor="metadata")
    other = _signal(d, "next month", extractor="rules")
    led.add_signals([old, keep, other])
    added, removed = led.replace_account_signals("a1", [keep], extractor="metadata", version="1", digest="abc")
    assert (added, removed) == (0, [old.id])
    assert {s.id for s in led.signals_for("a1")} == {keep.id, other.id}
    assert led.extracted("metadata", "1") == {"account:default:a1": "abc"}


# ----------------------------------------------------------------------------------------- usage / outcomes
def test_usage_and_outcomes_are_idempotent(led: Ledger) -> None:
    rows = [UsageRow("a1", date(2024, 1, 1) + timedelta(days=i), "logins", float(i)) for i in range(10)]
    assert led.add_usage(rows) == 10
    assert led.add_usage(rows + [UsagePoint(account_id="a1", date=date(2024, 1, 1), metric="seats", value=3)]) == 1
    got = led.usage_for("a1", until=date(2024, 1, 3))
    assert got == [UsageRow("a1", date(2024, 1, 1), "logins", 0.0), UsageRow("a1", date(2024, 1, 1), "seats", 3.0),
                   UsageRow("a1", date(2024, 1, 2), "logins", 1.0), UsageRow("a1", date(2024, 1, 3), "logins", 2.0)]
    assert isinstance(got[0], UsageRow) and len(led.usage_for("a1")) == 11
    o = [Outcome(account_id="a1", date=date(2024, 6, 1), outcome="churned", note="budget")]
    assert led.add_outcomes(o) == 1
    assert led.add_outcomes(o) == 0
    assert led.outcomes_for("a1") == o
    assert led.outcomes_for("a2") == []


def test_bulk_usage_insert_is_fast(led: Ledger) -> None:
    start = date(2020, 1, 1)
    rows = [UsageRow(f"acc{i % 100}", start + timedelta(days=i // 100), "events", float(i)) for i in range(50_000)]
    t0 = time.perf_counter()
    assert led.add_usage(rows) == 50_000
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert led.add_usage(rows) == 0
    again = time.perf_counter() - t0
    assert first < 15 and again < 15, (first, again)  # ~0.4 s on SQLite, ~2.5 s on PostgreSQL here
    assert led.counts()["usage_points"] == 50_000


# ----------------------------------------------------------------------------------------- scores and events
def _score(as_of: date, score: float, model: str = "default", version: str = "1") -> HealthScore:
    from extractors.models import tier_for

    return HealthScore(account_id="a1", as_of=as_of, score=score, tier=tier_for(score), model_id=model, model_version=version)


def test_snapshots(led: Ledger) -> None:
    s1, s2 = _score(date(2024, 1, 1), 80), _score(date(2024, 2, 1), 40)
    other = _score(date(2024, 1, 15), 55, model="custom")
    assert led.save_snapshots([s1, s2, other], extractor_versions={"rules": "1"}) == 3
    assert led.save_snapshots([s1, _score(date(2024, 1, 1), 10)]) == 0  # same account/as_of/model: no-op
    assert [s.score for s in led.snapshots_for("a1")] == [80, 55, 40]
    assert [s.score for s in led.snapshots_for("a1", model_id="default")] == [80, 40]
    assert led.snapshot_at("a1", date(2023, 12, 31)) is None
    assert led.snapshot_at("a1", date(2024, 1, 20)) == other
    assert led.snapshot_at("a1", date(2024, 1, 20), model_id="default") == s1
    assert led.snapshot_at("a1", date(2030, 1, 1), model_id="default") == s2
    assert led.save_snapshots([_score(date(2024, 1, 1), 50, version="2")]) == 1


def test_events_dedupe_and_paging(led: Ledger) -> None:
    at = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
    assert led.add_event("tier_change", "a1", {"from": "Healthy", "to": "At Risk"}, occurred_at=at, dedupe_key="a1:2024-01-01:tier")
    assert not led.add_event("tier_change", "a1", {"from": "Healthy", "to": "At Risk"}, occurred_at=at, dedupe_key="a1:2024-01-01:tier")
    for i in range(5):
        led.add_event("drop", f"a{i % 2}", {"points": i}, occurred_at=at, dedupe_key=f"k{i}")
    evs = led.events()
    assert len(evs) == 6 and evs[0]["payload"] == {"from": "Healthy", "to": "At Risk"}
    assert [e["id"] for e in evs] == sorted(e["id"] for e in evs)
    page = led.events(since_id=evs[2]["id"], limit=2)
    assert [e["id"] for e in page] == [evs[3]["id"], evs[4]["id"]]
    assert {e["account_id"] for e in led.events(account_id="a0")} == {"a0"}
    assert evs[0]["occurred_at"] == datetime(2024, 1, 1, 12, tzinfo=timezone.utc)  # UTC, with its offset


def test_runs_and_counts(led: Ledger) -> None:
    run = led.start_run("rules", "1", workspace="w")
    led.finish_run(run, "ok", {"documents": 3})
    r = led.runs()[0]
    assert (r["status"], r["stats"], r["meta"]["workspace"]) == ("ok", {"documents": 3}, "w")
    assert {"host", "pid"} <= set(r["meta"])  # so a killed run can be told from a live one
    c = led.counts()
    for table in ("accounts", "documents", "signals", "usage_points", "outcomes", "score_snapshots", "events", "extraction_runs"):
        assert table in c
    assert c["extraction_runs"] == 1


def test_repeated_usage_keys_are_kept_as_separate_facts(led: Ledger) -> None:
    """Exports repeat (account, date, metric), e.g. two assessments due the same day; each row counts."""
    day = date(2024, 2, 1)
    rows = [UsageRow("a1", day, "assessment_due", 10.0), UsageRow("a1", day, "assessment_due", 20.0)]
    assert led.add_usage(rows) == 2
    assert led.add_usage(rows) == 0
    assert [r.value for r in led.usage_for("a1")] == [10.0, 20.0]


def test_migration_0003_keeps_usage_rows_of_an_older_database(url: str) -> None:
    led = Ledger(url)
    with led.write() as conn:
        conn.execute(text("DROP TABLE usage_points"))
        conn.execute(text(
            "CREATE TABLE usage_points (tenant VARCHAR(100) NOT NULL, account_id VARCHAR(200) NOT NULL, "
            "date DATE NOT NULL, metric VARCHAR(100) NOT NULL, value FLOAT, PRIMARY KEY (tenant, account_id, date, metric))"
        ))
        conn.execute(text("INSERT INTO usage_points VALUES ('default', 'a1', '2024-01-01', 'logins', 5)"))
        conn.execute(text("DELETE FROM schema_migrations WHERE name = '0003_usage_seq'"))
    led.close()
    led = Ledger(url)
    assert "0003_usage_seq" in led.applied_migrations()
    assert led.usage_for("a1") == [UsageRow("a1", date(2024, 1, 1), "logins", 5.0)]
    assert led.add_usage([UsageRow("a1", date(2024, 1, 1), "logins", 5.0), UsageRow("a1", date(2024, 1, 1), "logins", 7.0)]) == 1
    assert [r.value for r in led.usage_for("a1")] == [5.0, 7.0]
    led.close()


def test_processes_opening_a_fresh_postgres_database_at_once_all_get_every_table() -> None:
    """CI once failed with a pg_type unique violation: feedback and API tables were created outside the
    migrator's lock, so two processes opening one fresh database raced on CREATE TABLE."""
    if "postgresql" not in store_backends():
        pytest.skip("set HEALTHTRACE_TEST_DATABASE_URL to run against PostgreSQL")
    import threading

    from memory.api_store import ApiStore
    from memory.feedback import FeedbackStore

    with temporary_postgres_database() as url:
        start, errors = threading.Barrier(6), []

        def open_all() -> None:
            try:
                start.wait(10)
                led = Ledger(url)
                FeedbackStore(led)
                ApiStore(led.engine)
                led.close()
            except Exception as e:  # noqa: BLE001 - the assertion reports it
                errors.append(e)

        threads = [threading.Thread(target=open_all) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        with Ledger(url) as led:
            tables = set(inspect(led.engine).get_table_names())
        assert {"overrides", "model_versions", "schema_migrations", "documents"} <= tables
