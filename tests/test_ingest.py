"""`healthtrace ingest / stats / search / reindex` end to end on a small workspace (real SQLite + Chroma)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from api.settings import get_settings
from extractors.errors import InputError, NotFoundError
from memory.ledger import Ledger

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_small"


@pytest.fixture(autouse=True)
def _hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit-speed embeddings here; MiniLM is exercised in test_vectors and the benchmark."""
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    get_settings.cache_clear()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    dst = tmp_path / "ws"
    shutil.copytree(FIXTURE, dst)
    return dst


def cli(*args: str, ok: bool = True) -> Any:
    res = CliRunner().invoke(app, list(args))
    if ok:
        assert res.exit_code == 0, (res.output, res.stderr, res.exception)
    return res


def ingest(*args: str) -> dict[str, Any]:
    return json.loads(cli("ingest", *args, "--format", "json").stdout)


def stats() -> dict[str, Any]:
    return json.loads(cli("stats", "--format", "json").stdout)


def _ledger() -> Ledger:
    return build_services(get_settings()).ledger


def test_second_ingest_is_all_unchanged_and_counts_are_identical(workspace: Path) -> None:
    first = ingest("--workspace", str(workspace))
    assert (first["documents_added"], first["documents_failed"]) == (4, 0)
    assert first["usage_added"] == 6 and first["outcomes_added"] == 2 and first["accounts_changed"] == 3
    assert first["signals_added"] > 0 and first["chunks_embedded"] >= 4
    assert first["signals_embedded"] == first["signals_added"] + first["metadata_signals_added"]
    counts = stats()["counts"]
    assert counts["documents"] == 4 and counts["documents_indexed"] == 4
    assert counts["vector_signals"] == counts["signals"] and counts["vector_chunks"] == first["chunks_embedded"]

    second = ingest("--workspace", str(workspace))
    assert second["documents_added"] == 0 and second["documents_unchanged"] == 4
    assert second["usage_added"] == 0 and second["usage_unchanged"] == 6
    assert second["outcomes_added"] == 0 and second["accounts_changed"] == 0
    assert second["signals_added"] == second["chunks_embedded"] == second["signals_embedded"] == 0
    assert second["metadata_signals_added"] == second["metadata_signals_removed"] == 0
    again = stats()
    assert again["counts"] == counts and again["ingest_runs"] == 2
    table = cli("ingest", "--workspace", str(workspace)).stdout
    assert "nothing new" in table


def test_bad_rows_are_reported_with_file_and_line_and_good_rows_load(workspace: Path) -> None:
    res = cli("ingest", "--workspace", str(workspace), "--no-vectors")
    assert "usage.csv:8: unknown account 'nosuch'" in res.stderr
    assert "usage.csv:9: unparseable date 'not-a-date'" in res.stderr
    assert "usage.csv:10: unparseable number 'many'" in res.stderr
    led = _ledger()
    assert len(led.usage_for("acme")) == 3 and len(led.usage_for("globex")) == 2
    led.close()


def test_stored_signals_cite_their_documents_verbatim(workspace: Path) -> None:
    ingest("--workspace", str(workspace), "--no-vectors")
    led = _ledger()
    seen = 0
    for acc in led.list_accounts():
        docs = {d.id: d for d in led.documents_for(acc.account_id)}
        for sig in led.signals_for(acc.account_id, verified_only=False):
            assert sig.account_id == acc.account_id
            for c in sig.evidence:
                text = docs[c.source_id].text if c.source_id in docs else led.get_document(c.source_id).text
                assert text[c.start : c.end] == c.quote
                seen += 1
    assert seen > 0
    # documents keep the exact file text (offsets match the evaluation harness)
    for path in (workspace / "documents" / "acme").iterdir():
        raw = path.read_bytes().decode("utf-8", errors="replace")
        assert any(d.text == raw for d in led.documents_for("acme"))
    led.close()


def test_no_vectors_then_a_later_run_fills_the_vector_gap(workspace: Path) -> None:
    ingest("--workspace", str(workspace), "--no-vectors")
    s = stats()["counts"]
    assert s["documents_indexed"] == 0 and s["vector_chunks"] == 0
    second = ingest("--workspace", str(workspace))
    assert second["documents_added"] == 0 and second["chunks_embedded"] > 0
    s = stats()["counts"]
    assert s["documents_indexed"] == s["documents"] == 4 and s["vector_signals"] == s["signals"]


def test_single_files_with_account_and_new_versions(tmp_path: Path) -> None:
    f = tmp_path / "note.txt"
    f.write_text("Kickoff went well. The customer wants to cancel the pilot if SSO is not ready by May.\n")
    first = ingest(str(f), "--account", "newco", "--create-account")
    assert first["documents_added"] == 1
    led = _ledger()
    assert led.get_account("newco").account_id == "newco"
    assert ingest(str(f), "--account", "newco")["documents_unchanged"] == 1
    f.write_text("Update: SSO shipped, the pilot continues and they are happy.\n")
    assert ingest(str(f), "--account", "newco", "--create-account")["documents_added"] == 1
    docs = led.documents_for("newco")
    assert len(docs) == 2
    led.close()


def test_the_same_text_in_two_accounts_is_each_accounts_own_document(tmp_path: Path) -> None:
    f = tmp_path / "announcement.txt"
    f.write_text("Dear customer, we are raising prices by 20% next year. Sorry, we will not renew at that price.\n")
    assert ingest(str(f), "--account", "alpha", "--create-account")["documents_added"] == 1
    assert ingest(str(f), "--account", "beta", "--create-account")["documents_added"] == 1
    assert ingest(str(f), "--account", "beta")["documents_unchanged"] == 1
    led = _ledger()
    try:
        (a,), (b,) = led.documents_for("alpha"), led.documents_for("beta")
        assert a.id != b.id and a.text == b.text
        for account, doc in (("alpha", a), ("beta", b)):
            sigs = led.signals_for(account)
            assert sigs and all(s.source_id == doc.id for s in sigs)
            for s in sigs:
                c = s.evidence[0]
                assert led.get_document(c.source_id).text[c.start : c.end] == c.quote
    finally:
        led.close()


def test_a_bad_document_is_reported_and_the_others_load(workspace: Path) -> None:
    (workspace / "documents" / "acme" / "empty.txt").write_bytes(b"")
    res = cli("ingest", "--workspace", str(workspace), "--no-vectors", ok=False)
    assert res.exit_code == 1, "a failed file makes the exit code non-zero"
    assert "failed:" in res.stderr and "empty.txt" in res.stderr
    assert stats()["counts"]["documents"] == 4


def test_usage_errors_are_clear() -> None:
    assert isinstance(cli("ingest", ok=False).exception, InputError)
    assert isinstance(cli("ingest", "x.txt", ok=False).exception, InputError)
    res = cli("search", "nobody", "anything", ok=False)
    assert isinstance(res.exception, NotFoundError)
    assert isinstance(cli("search", "acme", "x", "--since", "May 1st", ok=False).exception, InputError)


def test_search_returns_cited_passages_and_signals_best_first(workspace: Path) -> None:
    ingest("--workspace", str(workspace))
    res = json.loads(cli("search", "acme", "not renew switching to a competitor", "-k", "8", "--format", "json").stdout)
    assert res and {r["kind"] for r in res} == {"passage", "signal"}
    assert [r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True)
    led = _ledger()
    for r in res:
        text = led.get_document(r["source_id"]).text
        assert text[r["start"] : r["end"]] == r["quote"]
        assert r["date"].startswith("2024-")
        if r["kind"] == "signal":
            for c in r["evidence"]:
                assert text[c["start"] : c["end"]] == c["quote"]
    acme_docs = {d.id for d in led.documents_for("acme")}
    assert all(r["source_id"] in acme_docs for r in res)
    led.close()
    since = json.loads(cli("search", "acme", "latency", "--since", "2024-05-01", "--format", "json").stdout)
    assert since and all(r["date"] >= "2024-05-01" for r in since)
    typed = json.loads(cli("search", "acme", "renew", "--type", "churn_intent", "--format", "json").stdout)
    assert all(r["kind"] == "signal" and r["type"] == "churn_intent" for r in typed)
    table = cli("search", "acme", "renewal").stdout
    assert "acme: renewal" in table


def test_reindex_rebuilds_the_same_vectors(workspace: Path) -> None:
    ingest("--workspace", str(workspace))
    before = stats()["counts"]
    out = json.loads(cli("reindex", "--format", "json").stdout)
    assert out["documents_indexed"] == before["documents"]
    assert stats()["counts"] == before


class _LatestDocExtractor:
    """Account-level stand-in whose output depends on the whole document set (like the metadata extractor):
    one signal citing the newest document's first word."""

    name = "metadata"
    version = "test-1"

    def extract_account(self, docs, as_of=None):  # type: ignore[no-untyped-def]
        from extractors.grounding import citation_for_span
        from extractors.models import Signal

        newest = max(docs, key=lambda d: (d.occurred_at is not None, d.occurred_at, d.id))
        end = newest.text.index(":")
        c = citation_for_span(newest, 0, end)
        return [Signal(account_id=newest.account_id, type="stakeholder_change", evidence=[c], extractor=self.name,
                       extractor_version=self.version, occurred_at=newest.occurred_at)]


def test_account_level_signals_are_recomputed_only_when_the_document_set_changes(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import memory.ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "_metadata_extractor", lambda options: _LatestDocExtractor())
    first = ingest("--workspace", str(workspace))
    assert first["metadata_signals_added"] == 3  # one per account with documents
    assert ingest("--workspace", str(workspace))["metadata_signals_added"] == 0
    counts = stats()["counts"]
    (workspace / "documents" / "acme" / "2024-06-01-later.eml").write_text(
        "From: Dana Reyes <dana@acme.example>\nTo: Sam Lee <sam@vendor.example>\nSubject: New contact\n"
        "Date: Sat, 1 Jun 2024 10:00:00 +0000\n\nI am leaving Acme; Jo will be your contact from now on.\n"
    )
    third = ingest("--workspace", str(workspace))
    assert third["documents_added"] == 1
    assert (third["metadata_signals_added"], third["metadata_signals_removed"]) == (1, 1)
    after = stats()["counts"]
    assert after["vector_signals"] == after["signals"]  # the replaced signal left the vector store too
    led = _ledger()
    meta = [s for s in led.signals_for("acme") if s.extractor == "metadata"]
    assert len(meta) == 1 and meta[0].occurred_at.date().isoformat() == "2024-06-01"
    doc = led.get_document(meta[0].source_id)
    assert all(doc.text[c.start : c.end] == c.quote for c in meta[0].evidence)
    led.close()
    assert after["signals"] == counts["signals"] + third["signals_added"]


def test_llm_extractor_ingest_batches_documents_and_is_idempotent(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_openai import FakeOpenAI, finder

    table = [("churn_intent", "decided not to renew"), ("positive_sentiment", "the finance team loves the new forecasts")]
    with FakeOpenAI(finder(table)) as fake:
        monkeypatch.setenv("HEALTHTRACE_LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("HEALTHTRACE_LLM_API_KEY", "test-key")
        get_settings.cache_clear()
        first = ingest("--workspace", str(workspace), "--extractor", "llm")
        assert first["documents_added"] == 4 and first["documents_failed"] == 0
        led = _ledger()
        llm = [s for a in ("acme", "globex") for s in led.signals_for(a) if s.extractor == "llm"]
        assert {s.type for s in llm} == {"churn_intent", "positive_sentiment"}
        for s in llm:
            text = led.get_document(s.source_id).text
            assert all(text[c.start : c.end] == c.quote for c in s.evidence)
        led.close()
        second = ingest("--workspace", str(workspace), "--extractor", "llm")
        assert second["documents_unchanged"] == 4 and second["signals_added"] == 0
        # a different extractor reads the same (already stored) documents: new signals, no new documents
        rules = ingest("--workspace", str(workspace), "--extractor", "rules")
        assert rules["documents_added"] == 0 and rules["signals_added"] > 0
        assert stats()["counts"]["documents"] == 4


def test_llm_ingest_against_a_dead_endpoint_stops_fast_and_loses_nothing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time

    from fake_openai import FakeOpenAI, finder

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    monkeypatch.setenv("HEALTHTRACE_LLM_BASE_URL", dead)
    monkeypatch.setenv("HEALTHTRACE_LLM_BATCH_PIECES", "1")
    get_settings.cache_clear()
    t = time.monotonic()
    res = cli("ingest", "--workspace", str(workspace), "--extractor", "llm", "--format", "json", ok=False)
    assert time.monotonic() - t < 20
    out = res.stdout + res.stderr
    assert dead in out and "unreachable" in out
    with FakeOpenAI(finder([("churn_intent", "decided not to renew")])) as fake:
        monkeypatch.setenv("HEALTHTRACE_LLM_BASE_URL", fake.base_url)
        get_settings.cache_clear()
        again = ingest("--workspace", str(workspace), "--extractor", "llm")
    assert again["documents_added"] == 4 and again["documents_failed"] == 0  # the pending ones, all of them
