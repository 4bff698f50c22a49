"""A CSM confirms or rejects a stored signal (CLI and API, with a reason); a rejected one stops counting at once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import get_settings
from api.testing import make_settings, seed_tenant
from extractors.models import Account, Citation, Signal
from memory.ledger import Ledger


@pytest.fixture
def api():
    app = create_app(make_settings(), webhooks=False, index_vectors=False)
    with TestClient(app) as client:
        st = app.state.ht
        yield client, st.service, seed_tenant(client, st.store, st.service, "acme")


def _health(client, seeded) -> float:
    r = client.get(f"/v1/accounts/{seeded.account_id}/health", headers=seeded.read)
    assert r.status_code == 200, r.text
    return r.json()["score"]


def test_api_reject_stops_counting_at_once_and_confirm_restores(api) -> None:
    client, service, seeded = api
    signals = service.ledger.signals_for(seeded.account_id, tenant="acme")
    assert signals
    target = signals[-1]
    before = _health(client, seeded)
    url = f"/v1/accounts/{seeded.account_id}/signals/{target.id}/review"
    r = client.post(url, headers=seeded.write, json={"verdict": "reject", "reason": "vendor-side statement"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verdict"] == "reject" and body["signal_id"] == target.id and body["account_id"] == seeded.account_id
    assert target.id not in {s.id for s in service.ledger.signals_for(seeded.account_id, tenant="acme")}
    after = _health(client, seeded)
    assert body["score"]["score"] == after
    assert target.id not in {c.signal_id for c in service.latest("acme", seeded.account_id).contributions}
    r = client.post(url, headers=seeded.write, json={"verdict": "confirm", "reason": "on second look it is right"})
    assert r.status_code == 201
    assert _health(client, seeded) == before  # the verdict replaced: it counts again
    listed = client.get(f"/v1/accounts/{seeded.account_id}/reviews", headers=seeded.read).json()
    assert [x["verdict"] for x in listed] == ["confirm"]


def test_api_review_needs_a_reason_write_scope_and_a_signal_of_that_account(api) -> None:
    client, service, seeded = api
    sid = service.ledger.signals_for(seeded.account_id, tenant="acme")[0].id
    url = f"/v1/accounts/{seeded.account_id}/signals/{sid}/review"
    assert client.post(url, headers=seeded.write, json={"verdict": "reject", "reason": ""}).status_code == 422
    assert client.post(url, headers=seeded.write, json={"verdict": "maybe", "reason": "x"}).status_code == 422
    assert client.post(url, headers=seeded.read, json={"verdict": "reject", "reason": "x"}).status_code == 403
    r = client.post(f"/v1/accounts/{seeded.account_id}/signals/nope/review", headers=seeded.write,
                    json={"verdict": "reject", "reason": "x"})
    assert r.status_code == 404 and "nope" in r.json()["error"]["message"]


def _ledger_with_signal(home: Path) -> tuple[Ledger, Signal]:
    ledger = Ledger(f"sqlite:///{home / 'healthtrace.db'}")
    ledger.upsert_accounts([Account(account_id="a1", name="A1")])
    text = "We will not renew next year."
    sig = Signal(account_id="a1", type="churn_intent", confidence=0.9, extractor="rules", extractor_version="1",
                 evidence=[Citation(source_id="d1", start=0, end=len(text), quote=text)],
                 occurred_at=date(2026, 1, 5))
    ledger.add_signals([sig])
    return ledger, sig


def test_cli_reject_and_confirm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import app

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HEALTHTRACE_HOME", str(home))
    get_settings.cache_clear()
    ledger, sig = _ledger_with_signal(home)
    runner = CliRunner()
    r = runner.invoke(app, ["signal", "reject", sig.id, "--reason", "quoted from our own proposal", "--author", "kim"])
    assert r.exit_code == 0, r.output
    assert "rejected" in r.stdout
    assert ledger.signals_for("a1") == []  # gone from every reader at once
    assert [s.id for s in ledger.signals_for("a1", include_rejected=True)] == [sig.id]
    from memory.scoring_inputs import inputs_from_ledger

    assert "a1" not in inputs_from_ledger(ledger).signals
    r = runner.invoke(app, ["signal", "list", "a1"])
    assert r.exit_code == 0 and '"review": "reject"' in r.stdout
    r = runner.invoke(app, ["signal", "confirm", sig.id, "--reason", "customer said so on the call"])
    assert r.exit_code == 0, r.output
    assert [s.id for s in ledger.signals_for("a1")] == [sig.id]
    r = runner.invoke(app, ["signal", "reviews"])
    assert '"verdict": "confirm"' in r.stdout and "customer said so" in r.stdout
    # errors are HealthtraceErrors: api.cli.main prints them as one line and exits 1
    r = runner.invoke(app, ["signal", "reject", "missing-id", "--reason", "x"])
    assert r.exit_code == 1 and "missing-id" in str(r.exception)
    r = runner.invoke(app, ["signal", "reject", sig.id, "--reason", "   "])
    assert r.exit_code == 1 and "reason" in str(r.exception)
    ledger.close()
