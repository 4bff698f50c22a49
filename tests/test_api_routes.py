"""Every /v1 route through the real app, ledger, scorer and narration (SQLite in a temp folder)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.container import build_services
from api.app import create_app
from api.service import today
from api.testing import SeededTenant, make_settings, sample_email, seed_tenant
from memory.testing import store_backends, temporary_postgres_database


@pytest.fixture(params=store_backends())
def app(request):
    """SQLite always; PostgreSQL too when HEALTHTRACE_TEST_DATABASE_URL is set (a fresh database per test)."""
    if request.param == "postgresql":
        with temporary_postgres_database() as url:
            yield create_app(make_settings(database_url=url), webhooks=False, index_vectors=False)
    else:
        yield create_app(make_settings(), webhooks=False, index_vectors=False)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def seeded(app, client) -> SeededTenant:
    st = app.state.ht
    return seed_tenant(client, st.store, st.service, "acme")


def _doc_text(client: TestClient, seeded: SeededTenant, source_id: str) -> str:
    r = client.get(f"/v1/documents/{source_id}", headers=seeded.read)
    assert r.status_code == 200
    return r.json()["text"]


def test_healthz_needs_no_key(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_whoami(client, seeded):
    assert client.get("/v1/whoami", headers=seeded.read).json() == {
        "key_id": client.get("/v1/whoami", headers=seeded.read).json()["key_id"], "tenant": "acme", "scope": "read"}
    assert client.get("/v1/whoami", headers={"X-API-Key": seeded.write_token}).json()["scope"] == "write"


def test_ingest_document_rescores_and_emits_events(app, client, seeded):
    events = client.get("/v1/events", headers=seeded.read).json()["events"]
    kinds = {e["kind"] for e in events}
    assert "score.changed" in kinds
    assert all(e["account_id"] == seeded.account_id for e in events)
    assert all(e["event_id"].startswith("evt_") for e in events)
    # ingesting the same document again adds nothing and emits nothing new
    doc = {"account_id": seeded.account_id, "text": sample_email("acme", today() - timedelta(days=3)),
           "path": "acme/renewal.eml"}
    r = client.post("/v1/documents", headers=seeded.write, json={"documents": [doc]})
    assert r.status_code == 201
    body = r.json()
    assert body["added"] == 0 and body["rescored"][0]["events"] == []
    assert len(client.get("/v1/events", headers=seeded.read).json()["events"]) == len(events)


def test_document_upload_multipart(client, seeded):
    text = "Notes from the QBR: the sponsor said they might switch to a cheaper tool next year.\n"
    r = client.post("/v1/documents/upload", headers=seeded.write, data={"account_id": seeded.account_id},
                    files=[("files", ("qbr-notes.txt", text.encode(), "text/plain"))])
    assert r.status_code == 201, r.text
    assert r.json()["added"] == 1
    r = client.post("/v1/documents/upload", headers=seeded.write, data={"account_id": seeded.account_id},
                    files=[("files", ("empty.txt", b"", "text/plain"))])
    assert r.status_code == 422 and "empty" in r.json()["error"]["message"]


def test_usage_for_unknown_account_is_404_naming_it(client, seeded):
    r = client.post("/v1/usage", headers=seeded.write,
                    json={"points": [{"account_id": "nope", "date": "2026-01-01", "metric": "logins", "value": 1}]})
    assert r.status_code == 404
    assert "'nope'" in r.json()["error"]["message"]


def test_usage_rejects_non_finite_and_unknown_fields(client, seeded):
    r = client.post("/v1/usage", headers=seeded.write, content=b'{"points":[{"account_id":"x","date":"2026-01-01",'
                    b'"metric":"m","value":1e999}]}', )
    assert r.status_code == 422
    r = client.post("/v1/usage", headers=seeded.write,
                    json={"points": [{"account_id": "x", "date": "2026-01-01", "metric": "m", "value": 1, "extra": 2}]})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"


def test_outcomes(client, seeded):
    r = client.post("/v1/outcomes", headers=seeded.write, json={"outcomes": [
        {"account_id": seeded.account_id, "date": "2026-01-31", "outcome": "renewed"}]})
    assert r.status_code == 201 and r.json() == {"received": 1, "changed": 1}
    r = client.post("/v1/outcomes", headers=seeded.write, json={"outcomes": [
        {"account_id": seeded.account_id, "date": "2026-01-31", "outcome": "renewed"}]})
    assert r.json()["changed"] == 0


def test_accounts_sorted_by_risk_filtered_and_paginated(client, seeded):
    w = seeded.write
    client.put("/v1/accounts", headers=w, json={"accounts": [
        {"account_id": "acme-healthy", "name": "Happy Co"}, {"account_id": "acme-unscored", "name": "New Co"}]})
    pts = [{"account_id": "acme-healthy", "date": (today() - timedelta(days=d)).isoformat(), "metric": "active_users",
            "value": 100 + (30 - d)} for d in range(0, 31, 5)]
    pts += [{"account_id": "acme-healthy", "date": today().isoformat(), "metric": "seats_contracted", "value": 110}]
    assert client.post("/v1/usage", headers=w, json={"points": pts}).status_code == 201
    page = client.get("/v1/accounts", headers=seeded.read).json()
    ids = [a["account_id"] for a in page["items"]]
    assert ids[-1] == "acme-unscored"  # unscored last
    scores = [a["score"] for a in page["items"] if a["score"] is not None]
    assert scores == sorted(scores)
    assert page["total"] == 3 and sum(page["tiers"].values()) == 2
    first = page["items"][0]
    assert first["account_id"] == seeded.account_id and first["top_reasons"]
    p2 = client.get("/v1/accounts", headers=seeded.read, params={"limit": 1, "offset": 1}).json()
    assert [a["account_id"] for a in p2["items"]] == [ids[1]] and p2["total"] == 3
    tier = first["tier"]
    only = client.get("/v1/accounts", headers=seeded.read, params={"tier": tier}).json()["items"]
    assert only and all(a["tier"] == tier for a in only)
    assert client.get("/v1/accounts", headers=seeded.read, params={"q": "happy"}).json()["items"][0]["account_id"] \
        == "acme-healthy"


def test_health_now_and_at_a_date(client, seeded):
    now = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read).json()
    assert now["as_of"] == today().isoformat()
    total = round(sum(c["points"] for c in now["contributions"]), 2)
    assert total == pytest.approx(now["score"], abs=0.011)
    cites = [e for c in now["contributions"] for e in c["evidence"]]
    assert cites, "the churn email should be cited"
    for c in cites:
        assert _doc_text(client, seeded, c["source_id"])[c["start"]:c["end"]] == c["quote"]
    past_day = (today() - timedelta(days=30)).isoformat()
    past = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read,
                      params={"as_of": past_day}).json()
    assert past["as_of"] == past_day
    assert not [e for c in past["contributions"] for e in c["evidence"]], "the email is dated after that day"
    assert client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read,
                      params={"as_of": "not-a-date"}).status_code == 422


def test_history_and_account(client, seeded):
    h = client.get(f"/v1/accounts/{seeded.account_id}/history", headers=seeded.read).json()
    days = [p["as_of"] for p in h["points"]]
    assert days == sorted(days) and len(days) == 3
    a = client.get(f"/v1/accounts/{seeded.account_id}", headers=seeded.read).json()
    assert a["name"] == "Acme Corp" and a["score"] == h["points"][-1]["score"]


def test_changes_narrated_with_citations(client, seeded):
    res = client.get(f"/v1/accounts/{seeded.account_id}/changes", headers=seeded.read, params={"min_delta": 0}).json()
    assert res["changes"], res
    latest = res["changes"][0]
    assert latest["to_as_of"] == today().isoformat()
    assert latest["text"]
    cites = [c for d in latest["drivers"] for c in d["citations"]]
    assert cites
    for c in cites:
        assert _doc_text(client, seeded, c["source_id"])[c["start"]:c["end"]] == c["quote"]


def test_why_since_a_date(client, seeded):
    since = (today() - timedelta(days=30)).isoformat()
    w = client.get(f"/v1/accounts/{seeded.account_id}/why", headers=seeded.read, params={"since": since}).json()
    assert w["from_as_of"] == since and w["to_as_of"] == today().isoformat()
    assert w["delta"] == pytest.approx(w["to_score"] - w["from_score"], abs=0.01)
    r = client.get(f"/v1/accounts/{seeded.account_id}/why", headers=seeded.read,
                   params={"since": (today() + timedelta(days=5)).isoformat()})
    assert r.status_code == 422 and "since" in r.json()["error"]["message"]


def test_recap_markdown(client, seeded):
    r = client.get(f"/v1/accounts/{seeded.account_id}/recap", headers=seeded.read, params={"audience": "exec"})
    assert r.status_code == 200
    md = r.json()["markdown"]
    assert md.startswith("# Acme Corp") and "Health score" in md


def test_evidence_search_finds_the_cited_passage(app, client, seeded):
    from memory.vectors import VectorMemory, index_pending

    st = app.state.ht
    index_pending(st.ledger, build_services(st.settings).vectors)
    r = client.get(f"/v1/accounts/{seeded.account_id}/evidence", headers=seeded.read,
                   params={"q": "evaluating other vendors not renew"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits and all(h["account_id"] == seeded.account_id for h in hits)
    for h in hits:
        assert _doc_text(client, seeded, h["source_id"])[h["start"]:h["end"]] == h["quote"]
    assert client.get(f"/v1/accounts/{seeded.account_id}/evidence", headers=seeded.read,
                      params={"q": "  "}).status_code == 422


def test_whatif_stores_nothing(app, client, seeded):
    before = app.state.ht.ledger.counts()
    r = client.post(f"/v1/accounts/{seeded.account_id}/whatif", headers=seeded.read,
                    json={"set": ["active_users=+50%"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changes"] == ["active_users +50%"]
    assert body["scenario"]["score"] > body["baseline"]["score"]
    assert body["delta"] == pytest.approx(body["scenario"]["score"] - body["baseline"]["score"], abs=0.01)
    assert any(c["key"].startswith("metric:active_users") for c in body["contributions"])
    worse = client.post(f"/v1/accounts/{seeded.account_id}/whatif", headers=seeded.read,
                        json={"add_signals": ["champion_departed"]}).json()
    assert worse["delta"] < 0
    assert app.state.ht.ledger.counts() == before
    r = client.post(f"/v1/accounts/{seeded.account_id}/whatif", headers=seeded.read, json={"set": ["garbage"]})
    assert r.status_code == 422 and "garbage" in r.json()["error"]["message"]


def test_whatif_baseline_is_the_score_the_api_serves(client, seeded):
    """What-if starts from the same inputs as the health route (verified signals, silence derived as of
    today), so a scenario with no change is the served score."""
    from datetime import timedelta

    from api.service import today

    def follow_up(days_ago: int) -> dict:
        day = today() - timedelta(days=days_ago)
        return {"account_id": seeded.account_id, "path": f"acme/follow-up-{days_ago}.eml", "text": (
            f"From: Sam Lee <csm@vendor.example.com>\nTo: dana@acme.example.com\n"
            f"Date: {day:%a, %d %b %Y} 09:00:00 +0000\nSubject: Checking in\n\nHi Dana, any update on the plan?\n")}

    # more mail on the account: document facts and derived account-level signals must count in both routes
    w = {"Authorization": f"Bearer {seeded.write_token}"}
    r = client.post("/v1/documents", headers=w, json={"documents": [follow_up(40), follow_up(25)]})
    assert r.status_code == 201, r.text
    health = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read).json()
    r = client.post(f"/v1/accounts/{seeded.account_id}/whatif", headers=seeded.read, json={"set": ["active_users=+0%"]})
    assert r.status_code == 200, r.text
    assert r.json()["baseline"]["score"] == pytest.approx(health["score"], abs=0.01)
    assert r.json()["delta"] == 0


def test_override_is_recorded_beside_the_model_score(client, seeded):
    model = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read).json()
    r = client.post(f"/v1/accounts/{seeded.account_id}/overrides", headers=seeded.write,
                    json={"tier": "Healthy", "reason": "relationship_strong", "note": "exec renewed verbally",
                          "author": "sam"})
    assert r.status_code == 201, r.text
    row = r.json()
    assert row["tier"] == "Healthy" and row["model_score"] == model["score"] and row["model_tier"] == model["tier"]
    after = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read).json()
    assert after["score"] == model["score"], "an override is feedback for calibration, not a hidden score change"
    listed = client.get(f"/v1/accounts/{seeded.account_id}/overrides", headers=seeded.read).json()
    assert [o["note"] for o in listed] == ["exec renewed verbally"]
    r = client.post(f"/v1/accounts/{seeded.account_id}/overrides", headers=seeded.write,
                    json={"score": 80, "tier": "Critical", "reason": "other"})
    assert r.status_code == 422 and "tier" in r.json()["error"]["message"]
    r = client.post(f"/v1/accounts/{seeded.account_id}/overrides", headers=seeded.write,
                    json={"tier": "Healthy", "reason": "vibes"})
    assert r.status_code == 422


def test_override_shown_beside_the_score_everywhere(client, seeded):
    aid = seeded.account_id
    r = client.post(f"/v1/accounts/{aid}/overrides", headers=seeded.write,
                    json={"tier": "At Risk", "reason_code": "champion_risk", "note": "Dana is leaving", "author": "sam"})
    assert r.status_code == 201, r.text
    assert r.json()["reason_code"] == "champion_risk"
    computed = client.get(f"/v1/accounts/{aid}", headers=seeded.read).json()
    assert computed["override"]["tier"] == "At Risk" and computed["override"]["reason_code"] == "champion_risk"
    assert computed["score"] is not None  # the computed score stays, the override is beside it
    page = client.get("/v1/accounts", headers=seeded.read).json()
    assert next(a for a in page["items"] if a["account_id"] == aid)["override"]["author"] == "sam"
    why = client.get(f"/v1/accounts/{aid}/why", headers=seeded.read).json()
    assert why["override"]["reason_code"] == "champion_risk"
    recap = client.get(f"/v1/accounts/{aid}/recap", headers=seeded.read).json()["markdown"]
    assert "CSM override" in recap and "At Risk" in recap
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/export/scores", headers=seeded.read).text)))
    row = next(x for x in rows if x["account_id"] == aid)
    assert row["override_tier"] == "At Risk" and row["override_reason_code"] == "champion_risk" and row["score"]


def test_export_lists_unscored_accounts(client, seeded):
    r = client.put("/v1/accounts", headers=seeded.write, json={"accounts": [{"account_id": "brand-new"}]})
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/export/scores", headers=seeded.read).text)))
    new = [x for x in rows if x["account_id"] == "brand-new"]
    assert new and new[0]["tier"] == "not scored" and new[0]["score"] == ""
    assert rows[-1]["account_id"] == "brand-new"  # scored accounts first


def test_rescore_route(client, seeded):
    r = client.post(f"/v1/accounts/{seeded.account_id}/rescore", headers=seeded.write)
    assert r.status_code == 200 and r.json()["as_of"] == today().isoformat()


def test_models_list_and_activate(app, client, seeded):
    models = client.get("/v1/models", headers=seeded.read).json()["models"]
    assert [m["name"] for m in models if m["active"]] == ["default"]
    # a stored (calibrated) version, as `healthtrace models register` would store it
    from scoring.model import default_model, dump_model

    st = app.state.ht
    v2 = default_model().model_copy(update={"version": "2.0-test"})
    st.service.feedback.register_model(v2, dump_model(v2), tenant="acme")
    r = client.post(f"/v1/models/{v2.id}@2.0-test/activate", headers=seeded.write)
    assert r.status_code == 200, r.text
    assert [m["name"] for m in r.json()["models"] if m["active"]] == [f"{v2.id}@2.0-test"]
    resc = client.post(f"/v1/accounts/{seeded.account_id}/rescore", headers=seeded.write).json()
    health = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read).json()
    assert health["model_version"] == "2.0-test" and resc["score"] == health["score"]
    r = client.post("/v1/models/default/activate", headers=seeded.write)
    assert r.status_code == 200
    assert [m["name"] for m in r.json()["models"] if m["active"]] == ["default"]
    r = client.post("/v1/models/no-such-model/activate", headers=seeded.write)
    assert r.status_code == 404 and "no-such-model" in r.json()["error"]["message"]


def test_export_csv_and_json_for_crm(client, seeded):
    r = client.get("/v1/export/scores", headers=seeded.read)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["account_id"] for x in rows] == [seeded.account_id]
    assert rows[0]["tier"] and rows[0]["top_reason_1"] and rows[0]["updated_at"]
    j = client.get("/v1/export/scores", headers=seeded.read, params={"format": "json"}).json()
    assert j[0]["account_id"] == seeded.account_id and float(rows[0]["score"]) == j[0]["score"]


def test_webhook_crud_and_deliveries(client, seeded):
    hooks = client.get("/v1/webhooks", headers=seeded.read).json()
    assert [h["id"] for h in hooks] == [seeded.webhook_id] and hooks[0]["secret"] is None
    assert client.get(f"/v1/webhooks/{seeded.webhook_id}/deliveries", headers=seeded.read).json() == []
    assert client.delete(f"/v1/webhooks/{seeded.webhook_id}", headers=seeded.write).status_code == 204
    assert client.get("/v1/webhooks", headers=seeded.read).json()[0]["active"] is False
    r = client.post("/v1/webhooks", headers=seeded.write, json={"url": "not a url"})
    assert r.status_code == 422


def test_writes_are_audited(app, client, seeded):
    entries = app.state.ht.store.audit_entries("acme")
    paths = {(e["method"], e["path"]) for e in entries}
    assert ("PUT", "/v1/accounts") in paths and ("POST", "/v1/documents") in paths
    assert all(e["key_id"] for e in entries)
    assert not app.state.ht.store.audit_entries("someone-else")


def test_dashboard_is_served_without_cdn(client):
    r = client.get("/dashboard/")
    assert r.status_code == 200 and "<script src=\"app.js\"></script>" in r.text
    for asset in ("app.js", "app.css"):
        body = client.get(f"/dashboard/{asset}").text
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "") and "https://" not in body
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/"


def test_new_documents_are_embedded_in_the_background():
    """Ingest answers without embedding; the indexer thread makes the document searchable shortly after."""
    import time

    app = create_app(make_settings(), webhooks=False, index_vectors=True)
    with TestClient(app) as client:
        st = app.state.ht
        seeded = seed_tenant(client, st.store, st.service, "acme")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and st.ledger.document_ids(indexed=False):
            time.sleep(0.1)
        assert not st.ledger.document_ids(indexed=False), "background indexing did not finish"
        hits = client.get(f"/v1/accounts/{seeded.account_id}/evidence", headers=seeded.read,
                          params={"q": "not renew reporting issues"}).json()["hits"]
        assert hits and hits[0]["source_id"] == seeded.document_id
