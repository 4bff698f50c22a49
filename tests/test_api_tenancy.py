"""The tenant boundary, route by route: a key of tenant B reads and changes nothing of tenant A.

Both tenants hold data (accounts, documents, signals, snapshots, events, webhooks); B's key is aimed at A's
ids on every route. A meta-test fails when a route is added without a case here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.container import build_services
from api.app import create_app
from api.testing import SeededTenant, make_settings, seed_tenant


@dataclass
class World:
    client: TestClient
    a: SeededTenant
    b: SeededTenant
    state: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("tenancy-home")
    app = create_app(make_settings(home=home), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        a = seed_tenant(client, st.store, st.service, "acme")
        b = seed_tenant(client, st.store, st.service, "globex")
        from memory.vectors import VectorMemory, index_pending

        index_pending(st.ledger, build_services(st.settings).vectors)
        yield World(client, a, b, st)


def _no_a(w: World, body: Any) -> None:
    """Nothing that identifies tenant A's data appears in a response."""
    text = json.dumps(body)
    for marker in (w.a.account_id, w.a.document_id, w.a.webhook_id, "acme", "Acme"):
        assert marker not in text, f"{marker!r} leaked: {text[:300]}"


A = "{a_acct}"
CASES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    # (method, path, json body, expectation: "404" | "no_a" | custom key)
    ("GET", "/v1/whoami", None, "no_a"),
    ("GET", "/v1/events", None, "no_a"),
    ("GET", "/v1/accounts", None, "no_a"),
    ("GET", f"/v1/accounts/{A}", None, "404"),
    ("GET", f"/v1/accounts/{A}/health", None, "404"),
    ("GET", f"/v1/accounts/{A}/history", None, "404"),
    ("GET", f"/v1/accounts/{A}/changes", None, "404"),
    ("GET", f"/v1/accounts/{A}/why", None, "404"),
    ("GET", f"/v1/accounts/{A}/recap", None, "404"),
    ("GET", f"/v1/accounts/{A}/evidence?q=renew", None, "404"),
    ("POST", f"/v1/accounts/{A}/whatif", {"set": ["active_users=1"]}, "404"),
    ("POST", f"/v1/accounts/{A}/overrides", {"tier": "Critical", "reason": "other"}, "404"),
    ("GET", f"/v1/accounts/{A}/overrides", None, "404"),
    ("POST", f"/v1/accounts/{A}/rescore", None, "404"),
    ("POST", f"/v1/accounts/{A}/signals/{{a_sig}}/review", {"verdict": "reject", "reason": "wrong"}, "404"),
    ("GET", f"/v1/accounts/{A}/reviews", None, "404"),
    ("POST", "/v1/documents", {"documents": [{"account_id": A, "text": "we will not renew, switching to X"}]}, "404"),
    ("POST", "/v1/documents/upload", None, "upload_404"),
    ("GET", "/v1/documents/{a_doc}", None, "404"),
    ("POST", "/v1/usage", {"points": [{"account_id": A, "date": "2026-01-01", "metric": "logins", "value": 1}]}, "404"),
    ("POST", "/v1/outcomes", {"outcomes": [{"account_id": A, "date": "2026-01-01", "outcome": "churned"}]}, "404"),
    ("GET", "/v1/models", None, "no_a"),
    ("POST", "/v1/models/default/activate", None, "no_a"),
    ("GET", "/v1/export/scores", None, "no_a"),
    ("GET", "/v1/export/scores?format=json", None, "no_a"),
    ("GET", "/v1/webhooks", None, "no_a"),
    ("POST", "/v1/webhooks", {"url": "https://b.example.com/hook"}, "no_a"),
    ("DELETE", "/v1/webhooks/{a_hook}", None, "404"),
    ("GET", "/v1/webhooks/{a_hook}/deliveries", None, "404"),
    # last: it gives tenant B an account of its own with A's id (allowed: ids are per tenant), A's stays as it was
    ("PUT", "/v1/accounts", {"accounts": [{"account_id": A, "name": "Hijacked"}]}, "a_unchanged"),
]


def _path(w: World, p: str) -> str:
    if "{a_sig}" in p:
        p = p.replace("{a_sig}", w.state.ledger.signals_for(w.a.account_id, tenant="acme")[0].id)
    return p.replace(A, w.a.account_id).replace("{a_doc}", w.a.document_id).replace("{a_hook}", w.a.webhook_id)


def _body(w: World, b: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if b is None else json.loads(_path(w, json.dumps(b)))


@pytest.mark.parametrize("method,path,body,expect", CASES, ids=[f"{m} {p}" for m, p, _, _ in CASES])
def test_tenant_b_cannot_reach_tenant_a(world: World, method: str, path: str, body: Any, expect: str) -> None:
    w = world
    st = w.state
    a_counts = (len(st.ledger.documents_for(w.a.account_id, tenant="acme")),
                len(st.ledger.signals_for(w.a.account_id, tenant="acme")),
                len(st.ledger.snapshots_for(w.a.account_id, tenant="acme")),
                st.ledger.get_account(w.a.account_id, tenant="acme").name,
                st.service.feedback.overrides(account_id=w.a.account_id, tenant="acme"),
             st.ledger.signal_reviews(account_id=w.a.account_id, tenant="acme"),
                [h.active for h in st.store.list_webhooks("acme")],
                st.service.active_model_name("acme"))
    url = _path(w, path)
    if expect == "upload_404":
        r = w.client.post(url, headers=w.b.write, data={"account_id": w.a.account_id},
                          files=[("files", ("n.txt", b"we will not renew", "text/plain"))])
    else:
        r = w.client.request(method, url, headers=w.b.write, json=_body(w, body))
    if expect in ("404", "upload_404"):
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_found"
    else:
        assert r.status_code < 300, r.text
        if expect == "a_unchanged":
            assert st.ledger.get_account(w.a.account_id, tenant="globex").name == "Hijacked"
        elif r.headers["content-type"].startswith("application/json"):
            _no_a(w, r.json())
        else:
            assert w.a.account_id not in r.text
    after = (len(st.ledger.documents_for(w.a.account_id, tenant="acme")),
             len(st.ledger.signals_for(w.a.account_id, tenant="acme")),
             len(st.ledger.snapshots_for(w.a.account_id, tenant="acme")),
             st.ledger.get_account(w.a.account_id, tenant="acme").name,
             st.service.feedback.overrides(account_id=w.a.account_id, tenant="acme"),
             st.ledger.signal_reviews(account_id=w.a.account_id, tenant="acme"),
             [h.active for h in st.store.list_webhooks("acme")],
             st.service.active_model_name("acme"))
    assert after == a_counts, "tenant A's data changed through tenant B's key"


def test_a_still_sees_its_own_data(world: World) -> None:
    """The same requests with A's key succeed: the 404s above are the boundary, not broken routes."""
    w = world
    for method, path, _body_, expect in CASES:
        if expect != "404" or method != "GET":
            continue
        r = w.client.get(_path(w, path), headers=w.a.read)
        assert r.status_code == 200, (path, r.text)
        assert w.a.account_id in r.text or w.a.document_id in r.text or "[]" in r.text


def test_every_v1_route_has_a_tenancy_case(world: World) -> None:
    covered = {(m, p.split("?")[0]) for m, p, _, _ in CASES}
    templ = {
        (m, p.replace(A, "{account_id}").replace("{a_doc}", "{source_id}").replace("{a_hook}", "{webhook_id}")
         .replace("{a_sig}", "{signal_id}")
         .replace("/models/default/", "/models/{name}/"))
        for m, p in covered
    }
    app = world.client.app
    routes = {(m, r.path) for r in app.routes if isinstance(r, APIRoute) and r.path.startswith("/v1")
              for m in r.methods}
    assert routes - templ == set(), "routes without a tenancy test case"
