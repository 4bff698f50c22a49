"""Webhooks end to end: a real HTTP receiver on loopback verifies signatures and de-duplicates retries."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.testing import make_settings, sample_email, seed_tenant
from api.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    Dispatcher,
    sign,
    slack_body,
    verify_signature,
)

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """Answers with the queued status codes (then 200), verifies signatures, de-duplicates by event id."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.accepted: dict[str, dict] = {}
        self.bad_signatures = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items()}
                outer.requests.append((headers, body))
                code = outer.statuses.pop(0) if outer.statuses else 200
                if code == 200:
                    if verify_signature(SECRET, body, self.headers.get(SIGNATURE_HEADER)):
                        outer.accepted.setdefault(self.headers[EVENT_ID_HEADER], json.loads(body))
                    else:
                        outer.bad_signatures += 1
                        code = 400
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_sign_and_verify():
    body = b'{"id":"evt_1"}'
    now = 1_700_000_000
    header = sign(SECRET, body, now)
    assert header.startswith(f"t={now},v1=")
    assert verify_signature(SECRET, body, header, now=now + 10)
    assert not verify_signature(SECRET, body + b" ", header, now=now)  # tampered body
    assert not verify_signature("other-secret-xxxxxx", body, header, now=now)  # wrong secret
    assert not verify_signature(SECRET, body, header, now=now + 301)  # replay outside tolerance
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "t=abc,v1=00")
    rotated = f"{header},v1={'0' * 64}"
    assert verify_signature(SECRET, body, rotated, now=now)


def _app_with_hook(url: str, fmt: str = "json", events: tuple[str, ...] = ("score.changed", "tier.changed")):
    app = create_app(make_settings(webhook_backoff_s=0.05, webhook_max_attempts=3, public_url="http://dash.local",
                                   webhook_allow_private=True),
                     webhooks=False, index_vectors=False)
    client = TestClient(app)
    client.__enter__()
    st = app.state.ht
    seeded = seed_tenant(client, st.store, st.service, "acme", webhook_url="https://unused.example.com/x")
    client.delete(f"/v1/webhooks/{seeded.webhook_id}", headers=seeded.write)
    r = client.post("/v1/webhooks", headers=seeded.write, json={"url": url, "secret": SECRET, "format": fmt,
                                                                "events": list(events)})
    assert r.status_code == 201 and r.json()["secret"] == SECRET
    return app, client, seeded, r.json()["id"]


def _new_event(client, seeded, tag: str) -> None:
    from datetime import timedelta

    from api.service import today

    text = sample_email("acme", today() - timedelta(days=1)).replace("reporting issues", f"{tag} issues")
    r = client.post("/v1/documents", headers=seeded.write,
                    json={"documents": [{"account_id": seeded.account_id, "text": text + "We are switching to Rival.\n"}]})
    assert r.status_code == 201
    assert "score.changed" in r.json()["rescored"][0]["events"], r.json()


def _drain(d: Dispatcher, *, until, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        d.run_once()
        if until():
            return
        time.sleep(0.02)
    raise AssertionError("webhook deliveries did not finish in time")


def test_events_are_delivered_signed_and_deduplicable(receiver):
    app, client, seeded, hook_id = _app_with_hook(receiver.url)
    d: Dispatcher = app.state.ht.dispatcher
    d.skip_history()  # the seed's own events happened before this hook existed
    _new_event(client, seeded, "export")
    _drain(d, until=lambda: len(receiver.accepted) >= 1)
    assert receiver.bad_signatures == 0
    event_id, body = next(iter(receiver.accepted.items()))
    assert body["id"] == event_id and body["type"] == "score.changed"
    assert body["account_id"] == seeded.account_id and body["tenant"] == "acme"
    assert body["data"]["score_after"] != body["data"]["score_before"]
    headers = receiver.requests[0][0]
    assert headers["X-Healthtrace-Event"] == "score.changed"
    deliveries = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=seeded.read).json()
    assert deliveries and all(x["status"] == "delivered" and x["attempts"] == 1 for x in deliveries)
    # running the dispatcher again sends nothing twice
    n = len(receiver.requests)
    d.run_once()
    assert len(receiver.requests) == n
    client.__exit__(None, None, None)


def test_failed_deliveries_are_retried_with_backoff_then_recorded():
    rec = Receiver(statuses=[500, 503])
    try:
        app, client, seeded, hook_id = _app_with_hook(rec.url, events=("score.changed",))
        d: Dispatcher = app.state.ht.dispatcher
        d.skip_history()
        _new_event(client, seeded, "sync")
        _drain(d, until=lambda: len(rec.accepted) >= 1)
        ids = [h[EVENT_ID_HEADER] for h, _ in rec.requests]
        assert len(ids) == 3 and len(set(ids)) == 1, "a retry repeats the same event id"
        ts = [int(h[SIGNATURE_HEADER].split(",")[0][2:]) for h, _ in rec.requests]
        assert ts == sorted(ts)
        dl = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=seeded.read).json()
        assert dl[0]["status"] == "delivered" and dl[0]["attempts"] == 3 and dl[0]["last_status"] == 200
        client.__exit__(None, None, None)
    finally:
        rec.close()


def test_delivery_gives_up_after_max_attempts():
    rec = Receiver(statuses=[500] * 10)
    try:
        app, client, seeded, hook_id = _app_with_hook(rec.url, events=("score.changed",))
        d: Dispatcher = app.state.ht.dispatcher
        d.skip_history()
        _new_event(client, seeded, "billing")

        def failed() -> bool:
            dl = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=seeded.read).json()
            return bool(dl) and all(x["status"] == "failed" for x in dl)

        _drain(d, until=failed)
        dl = client.get(f"/v1/webhooks/{hook_id}/deliveries", headers=seeded.read).json()
        assert dl[0]["attempts"] == 3 and dl[0]["last_error"] == "HTTP 500"
        client.__exit__(None, None, None)
    finally:
        rec.close()


def test_slack_format_has_narration_and_link(receiver):
    app, client, seeded, _ = _app_with_hook(receiver.url, fmt="slack")
    d: Dispatcher = app.state.ht.dispatcher
    d.skip_history()
    _new_event(client, seeded, "latency")
    _drain(d, until=lambda: len(receiver.accepted) >= 1)
    body = next(iter(receiver.accepted.values()))
    assert set(body) == {"text", "event_id"}
    assert "Acme Corp" in body["text"]
    assert "<http://dash.local/dashboard/#/account/acme-acct-1|Open account>" in body["text"]
    client.__exit__(None, None, None)


def test_slack_body_without_narration_is_still_a_sentence():
    env = {"id": "evt_x", "type": "tier.changed", "account_id": "a 1",
           "data": {"score_before": 72, "score_after": 48.4, "tier_before": "Healthy", "tier_after": "At Risk"}}
    text = slack_body(env, "http://h:1")["text"]
    assert text.startswith("a 1: health score 72 → 48, tier Healthy → At Risk")
    assert "http://h:1/dashboard/#/account/a%201" in text


def test_background_worker_delivers_without_help(receiver):
    app = create_app(make_settings(webhook_backoff_s=0.05, webhook_allow_private=True), index_vectors=False)
    with TestClient(app) as client:  # lifespan starts the worker
        st = app.state.ht
        seeded = seed_tenant(client, st.store, st.service, "acme", webhook_url=receiver.url)
        st.store.list_webhooks("acme")
        with st.ledger.engine.begin() as conn:  # the seed's hook has a generated secret: use ours
            from memory.api_store import webhooks

            conn.execute(webhooks.update().values(secret=SECRET))
        _new_event(client, seeded, "sso")
        end = time.monotonic() + 10
        while time.monotonic() < end and not receiver.accepted:
            time.sleep(0.05)
        assert receiver.accepted, "the background worker delivered nothing"


def test_batch_scoring_alerts_are_delivered_under_dotted_names(receiver):
    """`healthtrace score` stores alerts as tier_changed/score_dropped; receivers see tier.changed etc."""
    from datetime import UTC, datetime

    app, client, seeded, _ = _app_with_hook(receiver.url, events=("tier.changed",))
    st = app.state.ht
    d: Dispatcher = st.dispatcher
    d.skip_history()
    payload = {"from_score": 71.0, "to_score": 44.0, "from_tier": "Healthy", "to_tier": "At Risk",
               "movers": [{"reason": "active users fell 40%"}]}
    st.ledger.add_event("tier_changed", seeded.account_id, payload, occurred_at=datetime.now(UTC),
                        dedupe_key="test:tier_changed:1", tenant="acme")
    st.ledger.add_event("score_dropped", seeded.account_id, payload, occurred_at=datetime.now(UTC),
                        dedupe_key="test:score_dropped:1", tenant="acme")
    st.ledger.add_event("tier_changed", "globex-1", payload, occurred_at=datetime.now(UTC),
                        dedupe_key="test:tier_changed:other-tenant", tenant="globex")
    _drain(d, until=lambda: len(receiver.accepted) >= 1)
    d.run_once()
    bodies = list(receiver.accepted.values())
    assert [b["type"] for b in bodies] == ["tier.changed"], "only the subscribed kind, only this tenant's"
    assert bodies[0]["data"]["to_tier"] == "At Risk"
    kinds = [e["kind"] for e in client.get("/v1/events", headers=seeded.read).json()["events"]]
    assert "tier.changed" in kinds and "score.dropped" in kinds and "tier_changed" not in kinds
    client.__exit__(None, None, None)
