"""The job queue without any server: Celery runs tasks inline (eager) on SQLite, so the bookkeeping, the queued
ingest's equivalence with a plain one, retries into the dead-letter list, and webhook claims are checked fast.
(tests/test_scale_out.py runs the same against real Redis, PostgreSQL, `chroma run` and worker processes.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app as cli_app
from api.settings import get_settings
from extractors.errors import StoreError
from memory.jobs import JobStore, account_lock, aggregate_report
from memory.ledger import Ledger
from memory.synthetic import generate_workspace


def _cli(*args: str, ok: bool = True) -> str:
    res = CliRunner().invoke(cli_app, list(args))
    if ok:
        assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


@pytest.fixture
def eager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from api import tasks

    home = tmp_path / "queued"
    monkeypatch.setenv("HEALTHTRACE_HOME", str(home))
    monkeypatch.setenv("HEALTHTRACE_BROKER_URL", "memory://")
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    monkeypatch.delenv("HEALTHTRACE_DATABASE_URL", raising=False)
    monkeypatch.delenv("HEALTHTRACE_CHROMA_URL", raising=False)
    get_settings.cache_clear()
    tasks.reset_resources()
    tasks.configure()
    tasks.app.conf.task_always_eager = True
    try:
        yield home
    finally:
        tasks.app.conf.task_always_eager = False
        tasks.reset_resources()
        get_settings.cache_clear()


def _counts(home: Path) -> dict[str, int]:
    from memory.vectors import VectorMemory

    led = Ledger(f"sqlite:///{home / 'healthtrace.db'}")
    try:
        counts = {k: v for k, v in led.counts().items() if k != "extraction_runs"}
    finally:
        led.close()
    counts.update(build_services(get_settings().model_copy(update={"home": home})).vectors.counts())
    return counts


def test_queued_ingest_stores_and_reports_what_a_plain_ingest_does(eager: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ws = generate_workspace(tmp_path / "ws", 24, n_accounts=4)
    report = json.loads(_cli("ingest", "--workspace", str(ws), "--queue", "--wait", "-f", "json"))
    queued = _counts(eager)

    plain_home = tmp_path / "plain"
    monkeypatch.setenv("HEALTHTRACE_HOME", str(plain_home))
    monkeypatch.delenv("HEALTHTRACE_BROKER_URL")
    get_settings.cache_clear()
    plain_report = json.loads(_cli("ingest", "--workspace", str(ws.resolve()), "-f", "json"))
    plain = _counts(plain_home)

    assert queued["documents"] == 24 and queued["signals"] > 0 and queued["vector_chunks"] > 0
    assert queued == plain
    for key in ("accounts_changed", "usage_added", "documents_added", "signals_added", "metadata_signals_added",
                "chunks_embedded", "signals_embedded", "documents_failed"):
        assert report[key] == plain_report[key], key

    led = Ledger(f"sqlite:///{eager / 'healthtrace.db'}")
    try:
        jobs = JobStore(led).list(limit=1000)
        run = led.runs(limit=1)[0]
    finally:
        led.close()
    kinds = {j["kind"] for j in jobs}
    assert kinds == {"ingest_file", "account_meta", "embed"} and all(j["status"] == "done" for j in jobs)
    assert sum(j["kind"] == "account_meta" for j in jobs) == 4  # once per account, after its last file
    assert run["status"] == "ok" and run["meta"]["queued"] and run["stats"]["documents_added"] == 24

    # queued again: nothing new, the same way a plain re-run reports it
    monkeypatch.setenv("HEALTHTRACE_HOME", str(eager))
    monkeypatch.setenv("HEALTHTRACE_BROKER_URL", "memory://")
    get_settings.cache_clear()
    again = json.loads(_cli("ingest", "--workspace", str(ws), "--queue", "--wait", "-f", "json"))
    assert again["documents_added"] == 0 and again["documents_unchanged"] == 24 and again["signals_added"] == 0


def test_transient_errors_retry_then_land_in_the_dead_letter_list(eager: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import memory.ingest

    monkeypatch.setenv("HEALTHTRACE_TASK_MAX_RETRIES", "2")
    get_settings.cache_clear()
    calls = {"n": 0}

    def down(self: object, *a: object, **k: object) -> int:
        calls["n"] += 1
        raise StoreError("ledger write failed: connection refused")

    monkeypatch.setattr(memory.ingest.Ingestor, "ingest_documents", down)
    ws = generate_workspace(tmp_path / "ws", 2, n_accounts=1)
    res = CliRunner().invoke(cli_app, ["ingest", "--workspace", str(ws), "--queue", "--wait", "--no-vectors",
                                       "-f", "json"])
    assert res.exit_code == 1  # the summary says documents failed
    assert calls["n"] == 2 * 3  # two files, 1 try + 2 retries each
    dead = json.loads(_cli("jobs", "--failed", "-f", "json"))
    files = [j for j in dead if j["kind"] == "ingest_file"]
    assert len(files) == 2 and {j["status"] for j in files} == {"dead"}
    assert all(j["attempts"] == 3 and "connection refused" in j["error"] for j in files)
    assert json.loads(res.stdout)["documents_failed"] == 2


def test_bad_input_fails_at_once_without_retries(eager: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHTRACE_MAX_FILE_BYTES", "50")  # every email is larger
    get_settings.cache_clear()
    ws = generate_workspace(tmp_path / "ws", 3, n_accounts=1)
    _cli("ingest", "--workspace", str(ws), "--queue", "--wait", "--no-vectors", ok=False)
    failed = [j for j in json.loads(_cli("jobs", "--failed", "-f", "json")) if j["kind"] == "ingest_file"]
    assert len(failed) == 3 and all(j["status"] == "failed" and j["attempts"] == 1 for j in failed)
    assert all("50" in j["error"] for j in failed)


def test_job_store_lifecycle_and_report_aggregation(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'h.db'}")
    store = JobStore(led)
    assert store.create("j1", "ingest_file", subject="a.eml", group_id="g", account_id="acc")
    assert not store.create("j1", "ingest_file", subject="a.eml", group_id="g")  # recorded once
    assert store.start("j1") == 1 and store.start("j1") == 2  # redelivered: one more attempt
    store.finish("j1", "done", result={"documents_added": 1, "signals_added": 3})
    store.create("j2", "embed", group_id="g")
    assert store.wait_group("g", timeout_s=0.2, poll_s=0.05) == {"done": 1, "queued": 1}
    store.finish("j2", "dead", error="gave up")
    assert store.wait_group("g", timeout_s=1) == {"done": 1, "dead": 1}
    assert [j["id"] for j in store.list(failed=True)] == ["j2"]
    rep = aggregate_report({"usage_added": 5}, store.group_results("g"))
    assert (rep.usage_added, rep.documents_added, rep.signals_added) == (5, 1, 3)
    assert any("dead" in f for f in rep.failures)
    with pytest.raises(ValueError):
        store.finish("j1", "bogus")
    led.close()


def test_account_lock_serialises_threads_and_is_reentrant(tmp_path: Path) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'h.db'}")
    inside: list[int] = []
    overlap = []

    def work() -> None:
        with account_lock(led, "default", "acme"):
            with account_lock(led, "default", "acme"):  # a follow-up run inline takes it again
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(True)
                threading.Event().wait(0.02)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not overlap
    led.close()


def test_a_due_delivery_is_sent_once_by_two_dispatchers(tmp_path: Path) -> None:
    from api.webhooks import Dispatcher
    from memory.api_store import ApiStore

    led = Ledger(f"sqlite:///{tmp_path / 'h.db'}")
    store = ApiStore(led.engine)
    hook = store.add_webhook("acme", "https://hooks.example.com/x")
    assert store.enqueue(hook, "evt_1", "score.changed", {"id": "evt_1", "type": "score.changed"})
    posts: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            posts.append(request.headers["X-Healthtrace-Event-Id"])
        return httpx.Response(200)

    def dispatcher() -> Dispatcher:
        return Dispatcher(store, lambda s, n: [], client=httpx.Client(transport=httpx.MockTransport(handler)),
                          resolver=lambda host, port: ["93.184.216.34"])

    ds = [dispatcher() for _ in range(4)]
    threads = [threading.Thread(target=d.deliver_due) for d in ds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert posts == ["evt_1"]
    assert store.deliveries_for(hook.id, "acme")[0].status == "delivered"
    led.close()


def test_api_with_a_broker_answers_202_and_reports_the_job(eager: Path) -> None:
    from datetime import date, timedelta

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.testing import make_settings, sample_email

    settings = make_settings(home=eager, broker_url="memory://")  # the same home as the tasks' settings
    app = create_app(settings, webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        _, token = st.store.create_key("acme", name="t", scope="write")
        w = {"Authorization": f"Bearer {token}"}
        assert client.put("/v1/accounts", headers=w, json={"accounts": [{"account_id": "a1"}]}).status_code == 200
        day = date.today() - timedelta(days=2)
        r = client.post("/v1/documents", headers=w,
                        json={"documents": [{"account_id": "a1", "text": sample_email("acme", day)}]})
        assert r.status_code == 202, r.text
        assert r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        job = client.get(f"/v1/jobs/{r.json()['id']}", headers=w).json()  # eager: already run
        assert job["status"] == "done" and job["result"]["added"] == 1 and job["result"]["signals_added"] >= 1
        rescore = client.get(f"/v1/jobs/{job['result']['rescore_jobs'][0]}", headers=w).json()
        assert rescore["kind"] == "rescore" and rescore["status"] == "done"
        assert client.get("/v1/accounts/a1/health", headers=w).json()["score"] is not None
        # unknown accounts are still refused at once; usage is stored and its rescoring queued
        bad = client.post("/v1/documents", headers=w, json={"documents": [{"account_id": "nope", "text": "hi"}]})
        assert bad.status_code == 404
        u = client.post("/v1/usage", headers=w, json={"points": [
            {"account_id": "a1", "date": day.isoformat(), "metric": "active_users", "value": 5}]})
        assert u.status_code == 202 and u.json()["added"] == 1 and len(u.json()["jobs"]) == 1
        _, other = st.store.create_key("globex", name="t", scope="read")
        hidden = client.get(f"/v1/jobs/{r.json()['id']}", headers={"Authorization": f"Bearer {other}"})
        assert hidden.status_code == 404  # another tenant's job does not exist for this key


def test_api_without_a_broker_has_no_jobs_and_ingests_inline(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.testing import make_settings

    app = create_app(make_settings(home=tmp_path), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        _, token = app.state.ht.store.create_key("acme", name="t", scope="write")
        w = {"Authorization": f"Bearer {token}"}
        client.put("/v1/accounts", headers=w, json={"accounts": [{"account_id": "a1"}]})
        r = client.post("/v1/documents", headers=w, json={"documents": [{"account_id": "a1", "text": "All good."}]})
        assert r.status_code == 201 and "rescored" in r.json()
        assert client.get("/v1/jobs/x", headers=w).status_code == 404


def _bulk_matches_per_account_reader(url: str, ws: Path) -> None:
    from datetime import date

    from memory.ingest import IngestOptions, ingest_workspace
    from memory.scoring_inputs import bulk_inputs_from_ledger, inputs_from_ledger
    from scoring.batch import score_totals
    from scoring.model import default_model

    led = Ledger(url)
    try:
        ingest_workspace(led, ws, IngestOptions(vectors=False))
        model = default_model()
        for until in (date(2024, 3, 1), date(2024, 9, 1)):
            bulk = bulk_inputs_from_ledger(led, until=until)
            each = inputs_from_ledger(led, until=until)
            assert sorted(bulk.signals) == sorted(each.signals) and bulk.metric_first_day == each.metric_first_day
            assert score_totals(bulk, model, [until]) == score_totals(each, model, [until])
    finally:
        led.close()


def test_bulk_ledger_reader_scores_like_the_per_account_reader(tmp_path: Path) -> None:
    ws = generate_workspace(tmp_path / "ws", 30, n_accounts=5)
    _bulk_matches_per_account_reader(f"sqlite:///{tmp_path / 'h.db'}", ws)
