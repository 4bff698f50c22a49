"""The memory against a real `chroma run` server through HttpClient (HEALTHTRACE_CHROMA_URL)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from api.settings import get_settings
from memory.embeddings import HashingEmbedding
from memory.testing import chroma_command, chroma_server
from memory.vectors import CHUNKS, VectorMemory, make_client

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_small"
HEARTBEAT_TIMEOUT_S = 45


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if chroma_command() is None:
        pytest.skip("the `chroma` command (from the chromadb package) is not installed next to this Python")
    with chroma_server(tmp_path_factory.mktemp("chroma-server"), HEARTBEAT_TIMEOUT_S) as url:
        yield url


@pytest.fixture
def server_env(chroma_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HEALTHTRACE_CHROMA_URL", chroma_url)
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    get_settings.cache_clear()
    client = make_client(chroma_url, None)
    for name in [c.name if hasattr(c, "name") else c for c in client.list_collections()]:
        client.delete_collection(name)  # each test starts from an empty server
    return chroma_url


def cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, (res.output, res.stderr, res.exception)
    return res.stdout


def test_ingest_twice_search_and_reindex_through_the_server(server_env: str, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    first = json.loads(cli("ingest", "--workspace", str(ws), "--format", "json"))
    assert first["documents_added"] == 4 and first["chunks_embedded"] > 0
    counts = json.loads(cli("stats", "--format", "json"))["counts"]
    assert counts["vector_chunks"] == first["chunks_embedded"] and counts["vector_signals"] == counts["signals"]
    assert not (get_settings().chroma_path).exists()  # nothing persisted locally: the server holds the vectors

    second = json.loads(cli("ingest", "--workspace", str(ws), "--format", "json"))
    assert second["documents_added"] == second["chunks_embedded"] == second["signals_embedded"] == 0
    assert json.loads(cli("stats", "--format", "json"))["counts"] == counts

    hits = json.loads(cli("search", "acme", "decided not to renew", "--format", "json"))
    assert hits and all(h["source_id"] for h in hits)
    from memory.ledger import Ledger

    led = build_services(get_settings()).ledger
    acme = {d.id: d.text for d in led.documents_for("acme")}
    for h in hits:
        assert h["source_id"] in acme
        assert acme[h["source_id"]][h["start"] : h["end"]] == h["quote"]
    led.close()
    globex = json.loads(cli("search", "globex", "decided not to renew", "--format", "json"))
    assert all(h["source_id"] not in acme for h in globex)

    cli("reindex")
    assert json.loads(cli("stats", "--format", "json"))["counts"] == counts


def test_a_fresh_http_client_uses_the_registered_function(server_env: str) -> None:
    from extractors.models import SourceDocument
    from memory.vectors import chunk_document

    mem = VectorMemory(make_client(server_env, None), HashingEmbedding())
    doc = SourceDocument(text="The renewal is at risk. Budget was cut.", kind="notes", account_id="a1")
    mem.upsert_chunks([(c, doc, "default") for c in chunk_document(doc)])
    fresh = make_client(server_env, None)
    col = fresh.get_collection(CHUNKS)  # no embedding_function: rebuilt from the stored config
    assert col.configuration_json["embedding_function"]["name"] == HashingEmbedding.name()
    res = col.query(query_texts=["renewal at risk"], n_results=1, where={"account_id": "a1"})
    assert res["documents"][0][0].startswith("The renewal is at risk.")
