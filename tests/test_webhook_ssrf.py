"""Webhook URLs must not reach internal addresses (SSRF): refused at registration and again at delivery."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.netguard import UnsafeURLError, check_url, mask_url
from api.testing import make_settings, seed_tenant
from api.webhooks import DELIVERY_FAILED, DELIVERY_REFUSED, Dispatcher

INTERNAL = [
    "http://127.0.0.1/hook", "http://[::1]/hook", "http://0.0.0.0/", "http://127.1/", "http://2130706433/",
    "http://0x7f000001/", "http://0177.0.0.1/", "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://[fd00:ec2::254]/", "http://10.1.2.3/",
    "http://172.16.0.1/", "http://172.31.255.254/", "http://192.168.1.1/", "http://[::ffff:127.0.0.1]/",
    "http://224.0.0.1/", "http://100.64.0.1/", "http://240.0.0.1/", "http://localhost:8000/",
    "https://user:pass@hooks.example.com/x", "http://internal-name.resolves.example/",
]


def fake_resolver(host: str, port: int) -> list[str]:
    table = {"internal-name.resolves.example": ["93.184.216.34", "10.0.0.7"],
             "hooks.example.com": ["93.184.216.34"], "public.example.com": ["93.184.216.34"]}
    if host not in table:
        raise OSError("no such host")
    return table[host]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_urls_are_refused(url):
    with pytest.raises(UnsafeURLError):
        check_url(url, resolver=fake_resolver)


def test_public_urls_pass_and_unresolvable_ones_wait_for_delivery():
    assert check_url("https://hooks.example.com/x", resolver=fake_resolver).address == "93.184.216.34"
    assert check_url("https://nowhere.example.org/x", resolver=fake_resolver) is None
    with pytest.raises(UnsafeURLError):
        check_url("https://nowhere.example.org/x", resolver=fake_resolver, require_resolved=True)
    assert check_url("http://127.0.0.1:9/x", allow_private=True).address == "127.0.0.1"


def test_pinned_request_goes_to_the_checked_address():
    t = check_url("https://public.example.com:8443/a?b=1", resolver=fake_resolver)
    url, headers, ext = t.pinned()
    assert url == "https://93.184.216.34:8443/a?b=1"
    assert headers == {"Host": "public.example.com:8443"} and ext == {"sni_hostname": "public.example.com"}


def _client(**settings):
    app = create_app(make_settings(**settings), webhooks=False, index_vectors=False)
    client = TestClient(app)
    client.__enter__()
    st = app.state.ht
    return app, client, seed_tenant(client, st.store, st.service, "acme")


def test_api_refuses_internal_urls_by_default(monkeypatch):
    monkeypatch.setattr("api.netguard._system_resolver", fake_resolver)
    app, client, seeded = _client()
    for url in INTERNAL:
        r = client.post("/v1/webhooks", headers=seeded.write, json={"url": url})
        assert r.status_code == 422, (url, r.status_code, r.text)
    hooks = client.get("/v1/webhooks", headers=seeded.write).json()
    assert len(hooks) == 1  # only the seed's public one
    client.__exit__(None, None, None)


def test_webhook_cap_per_tenant():
    app, client, seeded = _client(webhook_max_per_tenant=3)
    codes = [client.post("/v1/webhooks", headers=seeded.write, json={"url": f"https://h{i}.example.com/x"}).status_code
             for i in range(4)]
    assert codes == [201, 201, 413, 413]
    client.__exit__(None, None, None)


def test_read_scope_sees_masked_urls():
    app, client, seeded = _client()
    slack = "https://hooks.slack.com/services/T000AAA/B000BBB/XXXXsecretXXXX"
    client.post("/v1/webhooks", headers=seeded.write, json={"url": slack, "format": "slack"})
    read = [h["url"] for h in client.get("/v1/webhooks", headers=seeded.read).json()]
    assert all("XXXXsecretXXXX" not in u and "T000AAA" not in u for u in read)
    assert "https://hooks.slack.com/services/***" in read
    full = [h["url"] for h in client.get("/v1/webhooks", headers=seeded.write).json()]
    assert slack in full
    assert mask_url("https://a.example.com:444/") == "https://a.example.com:444/"
    client.__exit__(None, None, None)


class _Closed:
    """A loopback port with nothing listening, and one that answers 405: the two must read the same."""

    def __init__(self) -> None:
        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/h"


def _deliver_once(app, seeded):
    from datetime import UTC, datetime

    st = app.state.ht
    d: Dispatcher = st.dispatcher
    d.skip_history()
    st.ledger.add_event("score.changed", seeded.account_id, {"score_after": 1}, occurred_at=datetime.now(UTC),
                        dedupe_key=f"t:{datetime.now(UTC).timestamp()}", tenant="acme")
    d.fan_out()
    return d.deliver_due()


def test_delivery_rechecks_the_address_and_hides_network_detail(monkeypatch):
    # registered while allowed (e.g. DNS said public), then the policy/DNS changes: delivery refuses
    app, client, seeded = _client(webhook_allow_private=True)
    st = app.state.ht
    with st.ledger.engine.begin() as conn:
        from memory.api_store import webhooks

        conn.execute(webhooks.update().values(active=False))
    st.store.add_webhook("acme", "http://127.0.0.1:1/closed")
    st.dispatcher.allow_private = False
    done = _deliver_once(app, seeded)
    assert [x.last_error for x in done] == [DELIVERY_REFUSED] and done[0].status == "failed"
    client.__exit__(None, None, None)

    # allowed loopback: a closed port reads as a generic failure, a redirect is not followed
    app, client, seeded = _client(webhook_allow_private=True, webhook_max_attempts=1)
    st = app.state.ht
    with st.ledger.engine.begin() as conn:
        conn.execute(webhooks.update().values(active=False))
    redirect = _Closed()
    st.store.add_webhook("acme", "http://127.0.0.1:1/closed")
    st.store.add_webhook("acme", redirect.url)
    done = {x.webhook_id: x for x in _deliver_once(app, seeded)}
    errors = sorted(x.last_error for x in done.values())
    assert errors == sorted([DELIVERY_FAILED, "HTTP 302"]), errors
    assert not any("refused" in e.lower() or "connect" in e.lower() for e in errors)
    redirect.server.shutdown()
    client.__exit__(None, None, None)


def test_deactivated_webhook_sends_nothing():
    app, client, seeded = _client(webhook_allow_private=True)
    st = app.state.ht
    redirect = _Closed()
    hook = st.store.add_webhook("acme", redirect.url)
    from datetime import UTC, datetime

    d: Dispatcher = st.dispatcher
    d.skip_history()
    st.ledger.add_event("score.changed", seeded.account_id, {}, occurred_at=datetime.now(UTC), dedupe_key="t:deact",
                        tenant="acme")
    d.fan_out()  # queued while active
    client.delete(f"/v1/webhooks/{hook.id}", headers=seeded.write)
    sent = []
    monkeypatch_post = d.client.post
    d.client.post = lambda *a, **k: sent.append(a) or monkeypatch_post(*a, **k)  # type: ignore[method-assign]
    d.deliver_due()
    assert not sent
    redirect.server.shutdown()
    client.__exit__(None, None, None)
