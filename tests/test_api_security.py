"""Keys, scopes, limits and error hygiene: 401/403/413/422/429 as clear JSON, never a stack trace."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from api.app import create_app
from api.security import TokenBuckets, RateLimited
from api.testing import make_settings, seed_tenant


@pytest.fixture
def app():
    return create_app(make_settings(api_max_body_bytes=20_000, api_max_batch=5), webhooks=False, index_vectors=False)


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def seeded(app, client):
    st = app.state.ht
    return seed_tenant(client, st.store, st.service, "acme")


@pytest.mark.parametrize("headers,needle", [
    ({}, "missing API key"),
    ({"Authorization": "Bearer ht_deadbeef_nope"}, "invalid API key"),
    ({"X-API-Key": "x" * 500}, "invalid API key"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
])
def test_401_is_clear_json(client, headers, needle):
    r = client.get("/v1/accounts", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    err = r.json()["error"]
    assert err["code"] == "unauthorized" and needle in err["message"]


def test_revoked_key_is_refused(app, client, seeded):
    st = app.state.ht
    key = st.store.list_keys("acme")[0]
    st.store.revoke_key(key.prefix)
    st.auth.forget()  # the 2 s cache would otherwise serve the old answer
    token = seeded.read_token if key.name == "test read" else seeded.write_token
    r = client.get("/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_read_key_cannot_write(client, seeded):
    r = client.post("/v1/usage", headers=seeded.read,
                    json={"points": [{"account_id": seeded.account_id, "date": "2026-01-01", "metric": "m", "value": 1}]})
    assert r.status_code == 403
    assert r.json()["error"] == {"code": "forbidden",
                                 "message": "this API key has scope 'read'; this operation needs 'write'"}


def test_keys_are_stored_hashed(app, seeded):
    with app.state.ht.ledger.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM api_keys")) for v in row)
    assert seeded.read_token not in dump and seeded.write_token not in dump
    assert seeded.read_token.split("_")[1] in dump  # the visible prefix is kept to identify a key


def test_body_size_limit_declared_and_streamed(client, seeded):
    big = {"documents": [{"account_id": seeded.account_id, "text": "x" * 30_000}]}
    r = client.post("/v1/documents", headers=seeded.write, json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunks():
        for _ in range(30):
            yield b"x" * 1000

    r = client.post("/v1/documents", headers={**seeded.write, "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413


def test_batch_limit(client, seeded):
    pts = [{"account_id": f"a{i}", "name": "n"} for i in range(6)]
    r = client.put("/v1/accounts", headers=seeded.write, json={"accounts": pts})
    assert r.status_code == 413 and "limit is 5" in r.json()["error"]["message"]


def test_validation_error_names_the_field(client, seeded):
    r = client.post("/v1/outcomes", headers=seeded.write,
                    json={"outcomes": [{"account_id": seeded.account_id, "date": "2026-01-01", "outcome": "exploded"}]})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["message"].startswith("outcomes.0.outcome") and err["details"]


def test_rate_limit_per_key():
    app = create_app(make_settings(api_rate_per_s=1.0, api_rate_burst=3), webhooks=False, index_vectors=False)
    with TestClient(app) as c:
        st = app.state.ht
        _, t1 = st.store.create_key("t", scope="read")
        _, t2 = st.store.create_key("t", scope="read")
        codes = [c.get("/v1/whoami", headers={"X-API-Key": t1}).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        r = c.get("/v1/whoami", headers={"X-API-Key": t1})
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert c.get("/v1/whoami", headers={"X-API-Key": t2}).status_code == 200  # buckets are per key


def test_token_bucket_refills():
    b = TokenBuckets(rate=2.0, burst=2)
    b.take("k", now=0.0)
    b.take("k", now=0.0)
    with pytest.raises(RateLimited) as e:
        b.take("k", now=0.1)
    assert 0 < e.value.retry_after <= 0.5
    b.take("k", now=0.6)  # 0.5 s at 2/s refilled one token


def test_unexpected_error_has_no_stack_trace(app, client, seeded, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(app.state.ht.service, "portfolio", boom)
    r = client.get("/v1/accounts", headers=seeded.read)
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal_error", "message": "internal error; the server log has the details"}}
    assert "Traceback" not in r.text and "secret" not in r.text


def test_unknown_route_is_json_404(client):
    r = client.get("/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_cli_keys_create_list_revoke(tmp_path):
    from api.cli import app as cli

    runner = CliRunner()
    r = runner.invoke(cli, ["keys", "create", "--tenant", "t9", "--name", "crm", "--scope", "write"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[0]
    assert token.startswith("ht_")
    r = runner.invoke(cli, ["keys", "list", "--tenant", "t9"])
    assert "crm" in r.stdout and "write" in r.stdout and token not in r.stdout
    prefix = "_".join(token.split("_")[:2])
    r = runner.invoke(cli, ["keys", "revoke", prefix])
    assert r.exit_code == 0 and "revoked" in r.stdout
    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app) as c:
        assert c.get("/v1/whoami", headers={"X-API-Key": token}).status_code == 401
    r = runner.invoke(cli, ["webhooks", "add", "not-a-url", "--tenant", "t9"])
    assert r.exit_code != 0


def test_docs_page_loads_nothing_from_the_network():
    """/docs works offline: no CDN script or stylesheet (FastAPI's default Swagger page loads both)."""
    import re

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.testing import make_settings

    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        r = client.get("/docs")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assert "/openapi.json" in r.text
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", r.text), "an external asset"
        assert "cdn" not in r.text.lower()
        assert client.get("/redoc").status_code == 404
