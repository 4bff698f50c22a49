"""End to end on data the product was not written with: export names and units of a new customer, documents in
every supported format, stories whose direction is known (see tests/unfamiliar_workspace.py).

Only what a new user has: the bundled model, the built-in aliases and unit detection (one test adds a
metrics.yaml). No vectors (``ingest --no-vectors``), so the whole file runs in a few seconds.
"""

from __future__ import annotations

import re

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.container import build_services
from api.cli import app
from tests.unfamiliar_workspace import D1, D2, EXPORT_METRICS, FORMATS, STORIES, write_workspace

runner = CliRunner()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HEALTHTRACE_VENDOR_DOMAINS", '["brightloop.io"]')
    from api.settings import get_settings

    get_settings.cache_clear()
    return write_workspace(tmp_path / "ws")


@pytest.fixture
def ingested(ws: Path) -> Path:
    r = runner.invoke(app, ["ingest", "--workspace", str(ws), "--no-vectors", "--format", "json"])
    assert r.exit_code == 0, r.output
    return ws


def _scores(ws: Path, *extra: str) -> dict[tuple[str, str], dict]:
    r = runner.invoke(app, ["score", "--workspace", str(ws), "--as-of", D1.isoformat(), "--as-of", D2.isoformat(),
                            "--format", "json", "--full", *extra])
    assert r.exit_code == 0, r.output
    return {(x["account_id"], x["as_of"]): x for x in json.loads(r.stdout)}, r.stderr


def test_workspace_has_every_format(ws: Path) -> None:
    found = {p.suffix for p in (ws / "documents").rglob("*") if p.is_file()}
    assert set(FORMATS) <= found


def test_metrics_check_lists_every_metric(ws: Path) -> None:
    r = runner.invoke(app, ["metrics", "check", "--workspace", str(ws), "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {x["raw"]: x for x in json.loads(r.stdout)["metrics"]}
    assert set(rows) == set(EXPORT_METRICS)
    assert rows["weekly_active_users"]["canonical"] == "active_users"
    assert rows["licenses"]["canonical"] == "seats_contracted"
    assert rows["invoice_days_overdue"]["canonical"] == "payment_delay_days"
    acc = rows["ai_suggestions_accepted_pct"]
    assert acc["canonical"] == "output_acceptance_rate" and acc["unit_read"] == "percent" and acc["note"]
    assert rows["nps_responses"]["canonical"] == "nps_response" and rows["nps_responses"]["conversion"] == "nps"
    assert rows["csat_pct"]["canonical"] == "csat" and rows["csat_pct"]["conversion"] == "csat_percent"
    unknown = rows["internal_widget_count"]
    assert not unknown["used"] and "unknown meaning" in unknown["reason_unused"]
    for raw, row in rows.items():  # every used metric names the rubric that reads it
        assert row["used"] == bool(row["rubrics"]), raw
    text = runner.invoke(app, ["metrics", "check", "--workspace", str(ws)])
    assert text.exit_code == 0
    assert sum(1 for line in text.stdout.splitlines() if " -> " in line) == len(EXPORT_METRICS)
    assert "internal_widget_count" in text.stdout and "not used" in text.stdout


def test_mapping_file_wins_over_aliases(ws: Path) -> None:
    (ws / "metrics.yaml").write_text(
        "metrics:\n  internal_widget_count: ignore\n  tickets_open: ignore\n"
        "  ai_suggestions_accepted_pct: {canonical: output_acceptance_rate, unit: percent}\n")
    r = runner.invoke(app, ["metrics", "check", "--workspace", str(ws), "--format", "json"])
    rows = {x["raw"]: x for x in json.loads(r.stdout)["metrics"]}
    assert rows["tickets_open"]["reason_unused"] == "ignored in the mapping file"
    assert rows["ai_suggestions_accepted_pct"]["source"] == "mapping file"
    (ws / "metrics.yaml").write_text("metrics:\n  tickets_open: {canonical: open_tickets, unit: parsecs}\n")
    bad = runner.invoke(app, ["metrics", "check", "--workspace", str(ws)])
    assert bad.exit_code != 0 and "parsecs" in str(bad.exception)


def test_scores_follow_the_stories(ws: Path) -> None:
    scores, stderr = _scores(ws)
    # the mapping warnings are printed once, not per account or date
    assert stderr.count("internal_widget_count") == 1 and "converted" in stderr
    for aid, direction in STORIES.items():
        a, b = scores[(aid, D1.isoformat())]["score"], scores[(aid, D2.isoformat())]["score"]
        assert (b < a) if direction == "down" else (b > a), (aid, direction, a, b)
    # data coverage is in the notes: the mapped metrics counted, the unknown one did not
    notes = scores[("quarry", D2.isoformat())]["notes"]
    cov = next(n for n in notes if n.startswith("data coverage"))
    assert "payment_delay_days" in cov and "output_acceptance_rate" in cov
    assert any("internal_widget_count" in n for n in notes)
    # no generic "days since the last value" reading of a metric of unknown meaning
    keys = {c["key"] for x in scores.values() for c in x["contributions"] if c["kind"] == "metric"}
    assert keys and not any("internal_widget_count" in k or "days_since_last" in k for k in keys), keys


def test_overdue_invoice_lowers_the_score(ws: Path) -> None:
    """60 days overdue must lower the score (the generic reading used to raise it)."""
    r = runner.invoke(app, ["whatif", "orbit", "--workspace", str(ws), "--as-of", D2.isoformat(),
                            "--set", "invoice_days_overdue=60", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["delta"] < 0
    r = runner.invoke(app, ["whatif", "orbit", "--workspace", str(ws), "--as-of", D2.isoformat(),
                            "--set", "weekly_active_users=-50%", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["delta"] < 0
    r = runner.invoke(app, ["whatif", "orbit", "--workspace", str(ws), "--as-of", D2.isoformat(),
                            "--set", "internal_widget_count=5"])
    assert r.exit_code != 0 and "not used" in str(r.exception)


_EXPECTED = {  # account -> (a reason a CSM would name, words of an action that fits; any one of them)
    # the successor also says the depots stopped using it: a churn risk, so calling the decision maker fits too
    "northwind": ({"champion_departed"}, ("new owner", "decision maker")),
    "quarry": ({"payment_issue", "metric_low:payment_delay_days"}, ("invoice",)),
    "tessellate": ({"metric_low:output_acceptance_rate", "metric_low:regeneration_rate",
                    "usage_decline:output_acceptance_rate", "product_gap", "negative_sentiment"}, ("quality review",)),
}


def _verify(c: dict) -> None:
    """The quote is the stored document's text at the citation's offsets, and the raw file's too (an mbox message
    starts at its file offset); a JSON export is stored as its rendered messages, so only the first holds."""
    from api.settings import get_settings
    from memory.ledger import Ledger

    ledger = build_services(get_settings()).ledger
    try:
        doc = ledger.get_document(c["source_id"])
    finally:
        ledger.close()
    assert doc.text[c["start"]:c["end"]] == c["quote"], c["quote"]
    if Path(c["source_path"]).suffix == ".json":
        return
    raw = Path(c["source_path"]).read_text(encoding="utf-8")
    off = int(doc.metadata.get("file_offset") or 0)
    assert raw[off + c["start"]:off + c["end"]] == c["quote"], c["quote"]


def test_why_names_reasons_and_citations_verify(ingested: Path) -> None:
    cited = 0
    for aid in STORIES:
        r = runner.invoke(app, ["why", aid, "--from", D1.isoformat(), "--to", D2.isoformat(), "--format", "json"])
        assert r.exit_code == 0, r.output
        n = json.loads(r.stdout)
        assert (n["delta"] < 0) if STORIES[aid] == "down" else (n["delta"] > 0), (aid, n["delta"])
        codes = {d["reason_code"] for d in n["drivers"]} | {d["signal_type"] for d in n["drivers"]}
        if aid in _EXPECTED:
            want, action = _EXPECTED[aid]
            assert codes & want, (aid, sorted(c for c in codes if c))
            assert any(a in n["recommended_action"]["action"].lower() for a in action), (aid, n["recommended_action"])
        for d in n["drivers"]:
            # sentences, no raw codes or paths
            assert not re.search(r"\b[a-z_]+:[a-z_]", d["description"].split('"')[0]), d["description"]
            assert "/" not in d["description"].split('"')[0], d["description"]
            for c in d["citations"]:
                _verify(c)
                cited += 1
        assert "/" not in n["text"].replace("N/A", "")
    assert cited >= len(STORIES)


def test_ingest_scores_every_account_and_export_has_all(ingested: Path) -> None:
    from api.settings import get_settings
    from memory.ledger import Ledger

    ledger = build_services(get_settings()).ledger
    try:
        for aid in STORIES:
            snaps = ledger.snapshots_for(aid, model_id="default")
            assert snaps, aid
            assert snaps[-1].as_of >= D2.replace(day=20)  # as of its latest data, not today
    finally:
        ledger.close()


def test_cli_override_shown_in_why_and_recap(ingested: Path) -> None:
    r = runner.invoke(app, ["override", "orbit", "--reason-code", "champion_risk", "--tier", "At Risk",
                            "--as-of", D2.isoformat(), "--note", "new CFO reviewing all tools", "--author", "maya"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["why", "orbit", "--from", D1.isoformat(), "--to", D2.isoformat(), "--format", "json"])
    ov = json.loads(r.stdout)["override"]
    assert ov["reason_code"] == "champion_risk" and ov["tier"] == "At Risk" and ov["as_of"] == D2.isoformat()
    text = runner.invoke(app, ["why", "orbit", "--from", D1.isoformat(), "--to", D2.isoformat()]).stdout
    assert "CSM override" in text and "computed score" in text
    md = runner.invoke(app, ["recap", "orbit", "--as-of", D2.isoformat()]).stdout
    assert "CSM override" in md and "new CFO" in md


def test_ingest_keeps_the_mapping_file_for_the_tenant(ws: Path) -> None:
    (ws / "metrics.yaml").write_text("internal_widget_count: ignore\n")
    r = runner.invoke(app, ["ingest", "--workspace", str(ws), "--no-vectors", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert "internal_widget_count" in r.stderr and "ignored in the mapping file" in r.stderr
    r = runner.invoke(app, ["metrics", "check", "--format", "json"])  # the stored memory, the kept mapping
    rows = {x["raw"]: x for x in json.loads(r.stdout)["metrics"]}
    assert rows["internal_widget_count"]["reason_unused"] == "ignored in the mapping file"
    assert rows["weekly_active_users"]["canonical"] == "active_users"
