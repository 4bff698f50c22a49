"""Helpers for tests of the HTTP API (ours and an integrator's): an app on a fresh store, keys, sample data.

The sample data is small but real: usage that declines, an email whose words the rule extractor cites, and
snapshots on earlier days, so health, history, changes and citations all have something to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from api.settings import Settings


@dataclass
class SeededTenant:
    tenant: str
    read_token: str
    write_token: str
    account_id: str
    document_id: str
    webhook_id: str

    @property
    def read(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.read_token}"}

    @property
    def write(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.write_token}"}


def sample_email(tenant: str, day: date) -> str:
    """An email with a churn threat and a competitor mention (what the rules extractor finds and cites)."""
    return (
        f"From: Dana Reyes <dana@{tenant}.example.com>\n"
        f"To: csm@vendor.example.com\n"
        f"Date: {day:%a, %d %b %Y} 10:00:00 +0000\n"
        f"Subject: Renewal for {tenant}\n"
        "\n"
        f"Hi, the {tenant} team is unhappy with the rollout. We are evaluating other vendors and we will\n"
        "not renew unless the reporting issues are fixed this quarter.\n"
        "\n"
        "Dana\n"
    )


def seed_tenant(client: Any, store: Any, service: Any, tenant: str, *, today: date | None = None,
                webhook_url: str = "https://hooks.example.com/healthtrace") -> SeededTenant:
    """One account with 90 days of declining usage, two past snapshots and a cited email ingested today."""
    from api.service import today as today_fn

    day0 = today or today_fn()
    _, read_token = store.create_key(tenant, name="test read", scope="read")
    _, write_token = store.create_key(tenant, name="test write", scope="write")
    w = {"Authorization": f"Bearer {write_token}"}
    aid = f"{tenant}-acct-1"
    r = client.put("/v1/accounts", headers=w, json={"accounts": [
        {"account_id": aid, "name": f"{tenant.title()} Corp", "segment": "mid-market",
         "start_date": (day0 - timedelta(days=400)).isoformat(), "end_date": (day0 + timedelta(days=60)).isoformat()},
    ]})
    assert r.status_code == 200, r.text
    points = []
    for i, back in enumerate(range(91, -1, -7)):
        d = (day0 - timedelta(days=back)).isoformat()
        points.append({"account_id": aid, "date": d, "metric": "active_users", "value": 100 - 5 * i})
        points.append({"account_id": aid, "date": d, "metric": "seats_contracted", "value": 120})
    r = client.post("/v1/usage", headers=w, json={"points": points})
    assert r.status_code == 201, r.text
    for back in (60, 30):
        service.rescore(tenant, aid, as_of=day0 - timedelta(days=back))
    r = client.post("/v1/documents", headers=w, json={"documents": [
        {"account_id": aid, "text": sample_email(tenant, day0 - timedelta(days=3)), "path": f"{tenant}/renewal.eml"},
    ]})
    assert r.status_code == 201, r.text
    doc_id = service.ledger.documents_for(aid, tenant=tenant)[0].id
    r = client.post("/v1/webhooks", headers=w, json={"url": webhook_url, "events": ["*"]})
    assert r.status_code == 201, r.text
    return SeededTenant(tenant, read_token, write_token, aid, doc_id, r.json()["id"])


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: the cheap hashing embedder, generous rate limits unless a test sets them."""
    base: dict[str, Any] = {"embedder": "hashing", "api_rate_per_s": 1000.0, "api_rate_burst": 1000}
    base.update(overrides)
    return Settings(**base)


