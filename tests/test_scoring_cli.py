"""``healthtrace score`` on workspaces and on the stored memory, and ``healthtrace models``."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from extractors.errors import ModelFileError
from extractors.models import Account, Citation, Signal, UsageRow
from scoring.model import default_model

runner = CliRunner()


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def write_ws(root: Path, *, cut: date | None = None) -> Path:
    """A workspace with rows before and after a date; ``cut`` writes the copy truncated at that date."""
    root.mkdir(parents=True, exist_ok=True)
    accounts = [
        ("a1", "Alpha", date(2024, 1, 1), date(2024, 12, 31), "enterprise"),
        ("a2", "Beta", date(2024, 2, 1), date(2025, 1, 31), "smb"),
        ("a3", "Gamma", date(2024, 5, 1), date(2025, 4, 30), ""),
    ]
    with (root / "accounts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "name", "start_date", "end_date", "segment"])
        for aid, name, start, end, seg in accounts:
            if cut is None or start <= cut:
                w.writerow([aid, name, start.isoformat(), end.isoformat(), seg])
    rows = []
    for i in range(40):
        d = date(2024, 1, 1) + timedelta(days=7 * i)
        rows.append(("a1", d, "active_users", 100 - 2 * i))
        rows.append(("a1", d, "seats_contracted", 100))
        rows.append(("a2", d, "logins", 50 + i))
        rows.append(("a2", d, "regeneration_rate", 0.1 + 0.01 * i))
        if d >= date(2024, 5, 1):
            rows.append(("a3", d, "custom_events", i % 3))
    with (root / "usage.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "metric", "value"])
        for aid, d, m, v in rows:
            if cut is None or d <= cut:
                w.writerow([aid, d.isoformat(), m, v])
    with (root / "outcomes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "outcome"])
        if cut is None or date(2024, 8, 1) <= cut:
            w.writerow(["a1", "2024-08-01", "churned"])
    return root


def test_score_jsonl_follows_the_contract(tmp_path: Path) -> None:
    ws = write_ws(tmp_path / "ws")
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", "2024-04-01", "--as-of", "2024-06-01",
                            "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    recs = jsonl(r.stdout)
    keys = {(x["account_id"], x["as_of"]) for x in recs}
    # a3 starts 2024-05-01: not scored before it exists
    assert keys == {("a1", "2024-04-01"), ("a2", "2024-04-01"), ("a1", "2024-06-01"), ("a2", "2024-06-01"),
                    ("a3", "2024-06-01")}
    for x in recs:
        assert 0 <= x["score"] <= 100 and x["tier"] in {"Healthy", "Attention", "At Risk", "Critical"}


def test_scores_do_not_change_with_future_rows(tmp_path: Path) -> None:
    full = write_ws(tmp_path / "full")
    dates = ["2024-03-01", "2024-05-15", "2024-07-01"]
    r = runner.invoke(app, ["score", "--workspace", str(full), *sum((["--as-of", d] for d in dates), []),
                            "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    whole = {(x["account_id"], x["as_of"]): x["score"] for x in jsonl(r.stdout)}
    for d in dates:
        cut = write_ws(tmp_path / f"cut-{d}", cut=date.fromisoformat(d))
        r = runner.invoke(app, ["score", "--workspace", str(cut), "--as-of", d, "--format", "jsonl"])
        assert r.exit_code == 0, r.output
        for x in jsonl(r.stdout):
            assert whole[(x["account_id"], d)] == x["score"]


def test_full_json_explains_every_point(tmp_path: Path) -> None:
    ws = write_ws(tmp_path / "ws")
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", "2024-06-01", "--format", "json", "--full",
                            "--account", "a2"])
    assert r.exit_code == 0, r.output
    (rec,) = json.loads(r.stdout)
    assert rec["account_id"] == "a2" and rec["inputs_digest"] and rec["model_hash"] == default_model().content_hash
    assert sum(round(c["points"] * 100) for c in rec["contributions"]) == round(rec["score"] * 100)
    keys = {c["key"] for c in rec["contributions"]}
    assert "metric:regeneration_rate:level" in keys and "metric:logins:change" in keys
    assert any("segment profile 'smb'" in n for n in rec["notes"])


def test_workspace_documents_become_cited_signals(tmp_path: Path) -> None:
    ws = write_ws(tmp_path / "ws")
    docs = ws / "documents" / "a1"
    docs.mkdir(parents=True)
    text = (
        "From: Pat Buyer <pat@alpha.example>\nTo: Sam <sam@vendor.example>\nDate: Mon, 3 Jun 2024 10:00:00 +0000\n"
        "Subject: renewal\n\nWe have decided not to renew the contract at the end of the term. "
        "Our CFO says the price is far too expensive for us.\n"
    )
    (docs / "renewal.eml").write_bytes(text.encode())
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", "2024-06-10", "--format", "json", "--full",
                            "--account", "a1"])
    assert r.exit_code == 0, r.output
    (rec,) = json.loads(r.stdout)
    sig = [c for c in rec["contributions"] if c["kind"] == "signal"]
    assert sig, rec["contributions"]
    src = (docs / "renewal.eml").read_bytes().decode("utf-8", errors="replace")
    by_code = {c["reason_code"]: c for c in sig}
    assert by_code["churn_intent"]["points"] < 0 and by_code["pricing_objection"]["points"] < 0
    for c in sig:
        assert c["evidence"]
        for e in c["evidence"]:
            assert src[e["start"] : e["end"]] == e["quote"]
    assert any(c["key"] == "fact:days_since_last_conversation" for c in rec["contributions"])
    # before the email was written, it does not count
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", "2024-06-01", "--format", "json", "--full",
                            "--account", "a1"])
    (early,) = json.loads(r.stdout)
    assert not [c for c in early["contributions"] if c["kind"] == "signal"]


def _cite(text: str, quote: str, when: datetime) -> Citation:
    start = text.index(quote)
    return Citation(source_id="doc-1", start=start, end=start + len(quote), quote=quote, occurred_at=when)


def test_stored_memory_scoring_saves_snapshots_and_alerts_once() -> None:
    from api.settings import get_settings
    from memory.ledger import Ledger

    ledger = build_services(get_settings()).ledger
    try:
        ledger.upsert_accounts([Account(account_id="m1", start_date=date(2024, 1, 1), end_date=date(2025, 1, 1))])
        rows = [UsageRow("m1", date(2024, 1, 1) + timedelta(days=7 * i), "regeneration_rate", 0.05 if i < 20 else 0.6)
                for i in range(30)]
        ledger.add_usage(rows)
        text = "Honestly we are going to cancel our subscription next month."
        when = datetime(2024, 6, 20, tzinfo=timezone.utc)
        ledger.add_signals([Signal(account_id="m1", type="churn_intent", severity=0.9, confidence=0.9, occurred_at=when,
                                   evidence=[_cite(text, "going to cancel our subscription", when)],
                                   extractor="test", extractor_version="1")])
    finally:
        ledger.close()
    args = ["score", "--as-of", "2024-04-01", "--as-of", "2024-07-01", "--format", "jsonl"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    recs = {x["as_of"]: x for x in jsonl(r.stdout)}
    assert recs["2024-04-01"]["score"] - recs["2024-07-01"]["score"] >= 10
    ledger = build_services(get_settings()).ledger
    try:
        snaps = ledger.snapshots_for("m1")
        assert [s.as_of for s in snaps] == [date(2024, 4, 1), date(2024, 7, 1)]
        later = snaps[1]
        assert any(c.reason_code == "churn_intent" for c in later.contributions)
        kinds = sorted(e["kind"] for e in ledger.events(account_id="m1"))
        assert "score_dropped" in kinds and "tier_changed" in kinds
    finally:
        ledger.close()
    r = runner.invoke(app, args)  # again: no new snapshots, no duplicate alerts
    assert r.exit_code == 0, r.output
    ledger = build_services(get_settings()).ledger
    try:
        assert len(ledger.snapshots_for("m1")) == 2
        assert sorted(e["kind"] for e in ledger.events(account_id="m1")) == kinds
    finally:
        ledger.close()


def test_workspace_save_stores_snapshots(tmp_path: Path) -> None:
    from api.settings import get_settings
    from memory.ledger import Ledger

    ws = write_ws(tmp_path / "ws")
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", "2024-06-01", "--format", "jsonl", "--save"])
    assert r.exit_code == 0, r.output
    ledger = build_services(get_settings()).ledger
    try:
        snap = ledger.snapshot_at("a2", date(2024, 6, 30))
        assert snap is not None and snap.as_of == date(2024, 6, 1) and snap.inputs_digest
    finally:
        ledger.close()


def test_models_commands(tmp_path: Path) -> None:
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0 and "default" in r.stdout
    r = runner.invoke(app, ["models", "show"])
    assert r.exit_code == 0 and default_model().content_hash in r.stdout and "adoption" in r.stdout
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(default_model().model_dump(mode="json")), encoding="utf-8")
    r = runner.invoke(app, ["models", "validate", str(good)])
    assert r.exit_code == 0 and "ok:" in r.stdout
    bad = tmp_path / "bad.yaml"
    data = default_model().model_dump(mode="json")
    data["categories"]["risk"]["weight"] = "heavy"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    r = runner.invoke(app, ["models", "validate", str(bad)])
    assert r.exit_code != 0 and isinstance(r.exception, ModelFileError)
    assert str(bad) in str(r.exception) and "categories.risk.weight" in str(r.exception)


def test_score_with_model_file_and_bad_date(tmp_path: Path) -> None:
    ws = write_ws(tmp_path / "ws")
    data = default_model().model_dump(mode="json")
    data["id"] = "custom"
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(data), encoding="utf-8")
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--model", str(f), "--as-of", "2024-06-01",
                            "--format", "jsonl"])
    assert r.exit_code == 0 and {x["model_id"] for x in jsonl(r.stdout)} == {"custom"}
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", "June-ish", "--format", "jsonl"])
    assert r.exit_code != 0 and "June-ish" in str(r.exception)


def test_eval_workspace_smoke(tmp_path: Path) -> None:
    """The churn workspace of the shared evaluation scores at two dates (skips when the data is absent)."""
    from tests.conftest import shared_eval_or_skip

    root = shared_eval_or_skip() / "data" / "churn" / "workspace"
    if not (root / "accounts.csv").exists():
        pytest.skip("no churn workspace")
    small = tmp_path / "ws"
    small.mkdir()
    keep: set[str] = set()
    with (root / "accounts.csv").open() as f, (small / "accounts.csv").open("w") as out:
        for i, line in enumerate(f):
            if i <= 300:
                out.write(line)
                keep.add(line.split(",", 1)[0])
    with (root / "usage.csv").open() as f, (small / "usage.csv").open("w") as out:
        for i, line in enumerate(f):
            if i == 0 or line.split(",", 1)[0] in keep:
                out.write(line)
    shutil.copy(root / "outcomes.csv", small / "outcomes.csv")
    # the default model reads no metric of unknown meaning: every metric is reported as unused, scores stay put
    r = runner.invoke(app, ["score", "--workspace", str(small), "--as-of", "2013-11-01", "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    assert "not used" in r.stderr and len({x["score"] for x in jsonl(r.stdout)}) == 1
    # a model that opts into the generic activity reading of unknown metrics scores them
    text = (Path(__file__).parents[1] / "scoring" / "default_model.yaml").read_text()
    model = tmp_path / "generic.yaml"
    model.write_text(text.replace("  enabled: false", "  enabled: true"))
    r = runner.invoke(app, ["score", "--workspace", str(small), "--as-of", "2013-11-01", "--as-of", "2014-02-01",
                            "--format", "jsonl", "--model", str(model)])
    assert r.exit_code == 0, r.output
    recs = jsonl(r.stdout)
    assert len(recs) >= 300 and len({x["score"] for x in recs}) > 10
