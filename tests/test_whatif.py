"""What-if changes and the feedback loop (overrides, outcomes, model versions)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from extractors.errors import InputError, NotFoundError
from extractors.models import Account, UsageRow
from scoring.model import default_model
from scoring.whatif import apply_changes, parse_change, whatif

runner = CliRunner()
AS_OF = date(2024, 6, 1)
ACC = Account(account_id="acme", start_date=date(2023, 1, 1), end_date=date(2025, 1, 1))


def _usage() -> list[UsageRow]:
    rows = []
    for k in range(60):
        d = AS_OF - timedelta(days=k)
        rows.append(UsageRow("acme", d, "active_users", 80.0))
        rows.append(UsageRow("acme", d, "seats_contracted", 100.0))
    rows.append(UsageRow("acme", AS_OF - timedelta(days=20), "nps", 10.0))
    rows.append(UsageRow("acme", AS_OF + timedelta(days=3), "active_users", 1.0))  # after as-of: never counts
    return rows


def test_parse_change() -> None:
    assert parse_change("active_users=-20%").op == "scale"
    assert parse_change("active_users=-20%").value == pytest.approx(0.8)
    assert parse_change("nps=30").op == "set" and parse_change("nps=30").value == 30
    c = parse_change("logins=-=5")
    assert (c.op, c.value) == ("add", -5)
    for bad in ("active_users", "=5", "x=abc", "x=-150%", "x=+=5%"):
        with pytest.raises(InputError):
            parse_change(bad)


def test_apply_changes_only_touches_the_window() -> None:
    m = default_model()
    rows = apply_changes(_usage(), [parse_change("active_users=-50%")], m, AS_OF, "acme")
    win = max(r.window_days for r in m.metrics if r.metric == "active_users")
    changed = [r for r in rows if r.metric == "active_users"]
    assert all(r.value == 40.0 for r in changed if (AS_OF - r.date).days < win)
    assert all(r.value == 80.0 for r in changed if (AS_OF - r.date).days >= win)
    assert all(r.date <= AS_OF for r in rows)
    added = apply_changes([], [parse_change("nps=30")], m, AS_OF, "acme")
    assert added == [UsageRow("acme", AS_OF, "nps", 30.0)]


def test_whatif_usage_drop_lowers_score_and_contributions_explain_it() -> None:
    res = whatif([], _usage(), ACC, default_model(), AS_OF, set_metrics=[parse_change("active_users=-60%")])
    assert res.after.score < res.before.score
    assert res.delta == pytest.approx(sum(c.delta for c in res.contributions), abs=0.02)
    assert any(c.key.startswith("metric:active_users") and c.delta < 0 for c in res.contributions)
    better = whatif([], _usage(), ACC, default_model(), AS_OF, set_metrics=[parse_change("nps=60")])
    assert better.after.score > better.before.score


def test_whatif_added_signal() -> None:
    res = whatif([], _usage(), ACC, default_model(), AS_OF, add_signals=["churn_intent"])
    assert res.after.score < res.before.score
    sig = [c for c in res.contributions if c.key.startswith("signal:")]
    assert sig and sig[0].after < 0 and "talked about leaving" in (sig[0].reason_after or "")
    assert res.after.tier in ("At Risk", "Critical")  # a verified churn intent caps the score
    assert any(c.key == "cap:churn_intent" for c in res.contributions) or res.after.score < 45
    with pytest.raises(InputError, match="unknown type"):
        whatif([], _usage(), ACC, default_model(), AS_OF, add_signals=["not_a_type"])
    with pytest.raises(InputError, match="nothing to change"):
        whatif([], _usage(), ACC, default_model(), AS_OF)


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "accounts.csv").write_text("account_id,name,start_date,end_date,segment\nacme,Acme,2023-01-01,2025-01-01,\n")
    lines = ["account_id,date,metric,value"] + [f"{r.account_id},{r.date},{r.metric},{r.value}" for r in _usage()]
    (ws / "usage.csv").write_text("\n".join(lines) + "\n")
    return ws


def test_cli_whatif_json(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    r = runner.invoke(app, ["whatif", "acme", "--workspace", str(ws), "--as-of", AS_OF.isoformat(),
                            "--set", "active_users=-60%", "--add-signal", "escalation", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["after"]["score"] < out["before"]["score"] and out["delta"] < 0
    assert out["changes"] == ["active_users -60%", "+ escalation signal"]
    t = runner.invoke(app, ["whatif", "nobody", "--workspace", str(ws), "--set", "nps=1"])
    assert t.exit_code != 0


def test_feedback_loop_cli(tmp_path: Path) -> None:
    from api.settings import get_settings
    from memory.feedback import FeedbackStore
    from memory.ledger import Ledger

    ledger = build_services(get_settings()).ledger
    ledger.upsert_accounts([ACC])
    ok = runner.invoke(app, ["override", "acme", "--tier", "At Risk", "--reason", "champion_risk",
                             "--note", "champion left", "--as-of", "2024-06-01"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["override", "acme", "--tier", "At Risk", "--reason", "vibes"])
    assert bad.exit_code != 0
    mismatch = runner.invoke(app, ["override", "acme", "--tier", "Healthy", "--score", "10", "--reason", "other"])
    assert mismatch.exit_code != 0
    rows = FeedbackStore(ledger).overrides()
    assert len(rows) == 1 and rows[0]["tier"] == "At Risk" and rows[0]["note"] == "champion left"

    o = runner.invoke(app, ["outcome", "acme", "churned", "--date", "2024-07-01"])
    assert o.exit_code == 0 and "recorded" in o.output
    again = runner.invoke(app, ["outcome", "acme", "churned", "--date", "2024-07-01"])
    assert "already" in again.output
    assert [x.outcome for x in ledger.outcomes_for("acme")] == ["churned"]
    assert runner.invoke(app, ["outcome", "acme", "exploded"]).exit_code != 0
    assert runner.invoke(app, ["outcome", "ghost", "churned"]).exit_code != 0

    # model versions: register two, activate one, then the other
    from scoring.model import dump_model, parse_model

    base = default_model().model_dump(mode="json")
    paths = []
    for v in ("1", "2"):
        f = tmp_path / f"m{v}.yaml"
        f.write_text(dump_model(parse_model({**base, "id": "team", "version": v})))
        paths.append(f)
        assert runner.invoke(app, ["models", "register", str(f)]).exit_code == 0
    assert runner.invoke(app, ["models", "activate", "team@2"]).exit_code == 0
    store = FeedbackStore(ledger)
    assert store.active_model_yaml()[:2] == ("team", "2")  # type: ignore[index]
    assert runner.invoke(app, ["models", "activate", "team@1"]).exit_code == 0
    assert [r["version"] for r in store.model_versions() if r["active"]] == ["1"]
    missing = runner.invoke(app, ["models", "activate", "team@9"])
    assert missing.exit_code != 0 and isinstance(missing.exception, NotFoundError)
    assert runner.invoke(app, ["models", "activate", "no-version"]).exit_code != 0
    listing = runner.invoke(app, ["models", "versions"])
    assert "* team@1" in listing.output and "  team@2" in listing.output
