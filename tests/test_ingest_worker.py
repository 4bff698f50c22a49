"""Ingest runs on one bounded background worker: reads are served while a write computes; a full queue is 503."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from api.app import create_app
from api.testing import make_settings, sample_email
from api.worker import BusyError, IngestWorker


def test_worker_runs_jobs_in_order_and_bounds_the_queue():
    w = IngestWorker(max_pending=2)
    gate = threading.Event()
    order: list[int] = []
    first = w.submit(lambda: (gate.wait(5), order.append(1)))
    time.sleep(0.1)  # the first job is running, two may wait
    w.submit(order.append, 2)
    w.submit(order.append, 3)
    with pytest.raises(BusyError):
        w.submit(order.append, 4)
    gate.set()
    first.result(5)
    w.submit(order.append, 5).result(5)
    assert order == [1, 2, 3, 5]
    failing = w.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(5)
    w.stop()


def test_reads_are_answered_while_a_write_is_being_processed(tmp_path):
    app = create_app(make_settings(home=tmp_path / "home"), webhooks=False, index_vectors=False)
    st = app.state.ht
    gate = threading.Event()
    blocker = st.worker.submit(gate.wait, 10)  # the worker is busy with a long write

    async def scenario() -> tuple[int, float, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            _, token = st.store.create_key("acme", name="w", scope="write")
            h = {"Authorization": f"Bearer {token}"}
            await c.put("/v1/accounts", headers=h, json={"accounts": [{"account_id": "a1", "name": "A"}]})
            post = asyncio.create_task(c.post("/v1/documents", headers=h, json={"documents": [
                {"account_id": "a1", "text": sample_email("acme", __import__("datetime").date(2024, 5, 1))}]}))
            await asyncio.sleep(0.1)
            t0 = time.perf_counter()
            r = await c.get("/v1/accounts/a1/health", headers=h)
            read_s = time.perf_counter() - t0
            assert not post.done(), "the write waits for the worker"
            gate.set()
            done = await post
            return r.status_code, read_s, done.status_code

    status, read_s, post_status = asyncio.run(scenario())
    blocker.result(5)
    assert status == 200 and post_status == 201
    assert read_s < 5, "the read did not wait for the write"
    st.worker.stop()


def test_full_queue_is_503_with_retry_after(tmp_path):
    app = create_app(make_settings(home=tmp_path / "home", api_ingest_queue=1), webhooks=False, index_vectors=False)
    st = app.state.ht
    gate = threading.Event()
    st.worker.submit(gate.wait, 10)
    time.sleep(0.1)
    st.worker.submit(gate.wait, 10)  # the one waiting slot

    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        _, token = st.store.create_key("acme", name="w", scope="write")
        h = {"Authorization": f"Bearer {token}"}
        c.put("/v1/accounts", headers=h, json={"accounts": [{"account_id": "a1"}]})
        r = c.post("/v1/usage", headers=h, json={"points": [{"account_id": "a1", "date": "2024-05-01",
                                                              "metric": "m", "value": 1}]})
        assert r.status_code == 503 and r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "busy"
        gate.set()
