"""The bundled demo end to end: ingest -> monthly snapshots -> narrated changes -> HTML report, plus `why` and
`recap` on the store it leaves. Every quote the demo prints must be verbatim at its offsets in the demo files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.commands.story import demo_workspace, month_ends, run_demo
from extractors.models import TIERS

ROOT = Path(__file__).resolve().parent.parent


def _quotes(change: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for d in change["drivers"] for c in d["citations"]]


def _assert_verbatim(citations: list[dict[str, Any]]) -> None:
    ws = demo_workspace().resolve()
    for c in citations:
        path = Path(c["source_path"])
        assert path.resolve().is_relative_to(ws), path  # the demo's own files, nothing else
        text = open(path, "rb").read().decode("utf-8", "replace")
        assert text[c["start"] : c["end"]] == c["quote"], (path, c["start"], c["end"])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One demo run into a module-wide store (the per-test home from conftest is replaced here)."""
    home = tmp_path_factory.mktemp("demo-home")
    out = tmp_path_factory.mktemp("demo-report")
    mp = pytest.MonkeyPatch()
    mp.setenv("HEALTHTRACE_HOME", str(home))
    from api.settings import get_settings

    get_settings.cache_clear()
    try:
        data = run_demo(out, top=8)
        again = run_demo(out, top=8)
    finally:
        get_settings.cache_clear()
        mp.undo()
    return {"home": home, "out": out, "first": data, "again": again}


@pytest.fixture
def demo_home(demo_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HEALTHTRACE_HOME", str(demo_run["home"]))
    from api.settings import get_settings

    get_settings.cache_clear()
    return demo_run["home"]


def test_demo_workspace_is_big_enough_and_realistic() -> None:
    from memory.workspace import load_workspace

    ws = load_workspace(demo_workspace())
    assert not ws.problems
    assert len(ws.accounts) >= 8
    docs = [p for files in ws.documents.values() for p in files]
    assert 40 <= len(docs) <= 70
    assert {p.suffix for p in docs} == {".eml", ".vtt", ".txt", ".md"}
    days = sorted({u.date for u in ws.usage})
    assert (days[-1] - days[0]).days >= 180
    metrics = {u.metric for u in ws.usage}
    from scoring.model import load_model

    known = load_model().known_metrics
    assert metrics <= known, metrics - known  # every demo metric is one the default model reads
    assert {"active_users", "seats_contracted", "output_acceptance_rate", "regeneration_rate"} <= metrics
    for p in docs:
        if p.suffix == ".eml":
            head = p.read_text("utf-8").split("\n\n", 1)[0]
            for h in ("From:", "To:", "Date:", "Subject:"):
                assert f"\n{h}" in "\n" + head, (p, h)


def test_usage_file_is_reproducible(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "api" / "demo_data"))
    try:
        import generate_usage
    finally:
        sys.path.pop(0)
    target = tmp_path / "usage.csv"
    assert generate_usage.main(target) == 0
    assert target.read_bytes() == (demo_workspace() / "usage.csv").read_bytes()


def test_demo_scores_monthly_and_narrates_with_verbatim_quotes(demo_run: dict[str, Any]) -> None:
    data = demo_run["first"]
    assert data["ingest"]["documents_failed"] == 0 and data["ingest_failures"] == []
    assert data["ingest"]["documents_added"] >= 40
    assert data["dates"] == [d.isoformat() for d in month_ends(data_first_day(), data_last_day())]
    n_accounts = len(data["portfolio"])
    assert n_accounts >= 8
    assert data["snapshots_saved"] == n_accounts * len(data["dates"])
    scores = [p["score"] for p in data["portfolio"]]
    assert scores == sorted(scores)  # riskiest first
    assert all(p["tier"] in TIERS and p["action"] for p in data["portfolio"])
    changes = data["changes"]
    assert len(changes) == n_accounts
    deltas = [abs(c["delta"]) for c in changes]
    assert deltas == sorted(deltas, reverse=True)
    cited = [c for ch in changes for c in _quotes(ch)]
    assert len(cited) >= 10
    _assert_verbatim(cited)
    for ch in changes:
        assert ch["recommended_action"]["action"]
        assert ch["text"].startswith(ch["account_name"])
    # the stories the documents and usage tell
    by_id = {c["account_id"]: c for c in changes}
    acme = by_id["acme-logistics"]
    assert acme["delta"] < -10 and acme["tier_move"] == "down"
    champ = [d for d in acme["drivers"] if d["reason_code"] == "champion_departed"]
    # the champion's own farewell e-mail is among the cited evidence (a later risk review may cite it too)
    assert champ and any(c["source_path"].endswith("2026-09-04-dana-leaving.eml") for d in champ for c in d["citations"])
    assert acme["recommended_action"]["playbook"] == "champion-departed"
    assert by_id["eastwind-media"]["delta"] > 15 and by_id["eastwind-media"]["tier_move"] == "up"
    assert by_id["brightpath-health"]["delta"] < -20
    cedar = next(p for p in data["portfolio"] if p["account_id"] == "cedar-financial")
    assert cedar["tier"] == "Healthy" and by_id["cedar-financial"]["recommended_action"]["playbook"] == (
        "healthy-renewal-expansion")


def data_first_day():  # type: ignore[no-untyped-def]
    from memory.workspace import load_workspace

    return min(u.date for u in load_workspace(demo_workspace(), with_documents=False).usage)


def data_last_day():  # type: ignore[no-untyped-def]
    from memory.workspace import load_workspace

    return max(u.date for u in load_workspace(demo_workspace(), with_documents=False).usage)


def test_demo_rerun_adds_nothing_and_is_fast(demo_run: dict[str, Any]) -> None:
    again = demo_run["again"]
    assert again["ingest"]["documents_added"] == 0 and again["ingest"]["usage_added"] == 0
    assert again["snapshots_saved"] == 0
    assert again["portfolio"] == demo_run["first"]["portfolio"]
    assert demo_run["first"]["timings"]["total_s"] < 45  # "well under a minute on 2 cores"


def test_demo_report_is_static_html_with_a_chart_per_account(demo_run: dict[str, Any]) -> None:
    path = Path(demo_run["first"]["report"])
    assert path == (demo_run["out"] / "index.html").resolve()
    html = path.read_text("utf-8")
    n = len(demo_run["first"]["portfolio"])
    assert html.count("<svg") == n and html.count('<section class="card"') == n
    assert "<script" not in html and "https://" not in html and "http://" not in html
    assert "Dunmore Retail" in html and "Recommended action" not in html and "Next action:" in html


def test_demo_command_prints_table_changes_and_report_path(demo_home: Path, tmp_path: Path) -> None:
    from api.cli import app

    out = tmp_path / "rep"
    res = CliRunner().invoke(app, ["demo", "--out", str(out)], env={"COLUMNS": "160"})
    assert res.exit_code == 0, res.output
    assert "Portfolio by risk" in res.output and "Biggest changes" in res.output
    assert "Acme Logistics" in res.output and str((out / "index.html").resolve()) in res.output
    assert "vectors skipped" in res.output
    js = CliRunner().invoke(app, ["demo", "--out", str(out), "--format", "json", "--top", "3"])
    assert js.exit_code == 0, js.output
    data = json.loads(js.output)
    assert len(data["changes"]) == 3
    _assert_verbatim([c for ch in data["changes"] for c in _quotes(ch)])


def test_why_json_and_text_on_the_demo_store(demo_home: Path) -> None:
    from api.cli import app

    res = CliRunner().invoke(app, ["why", "acme-logistics", "--since", "2026-07-31", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["from"]["as_of"] == "2026-07-31" and data["to"]["as_of"] == "2026-10-31"
    assert round(data["to"]["score"] - data["from"]["score"], 2) == data["delta"]
    total = sum(d["points"] for d in data["drivers"]) + data["other_points"]
    assert abs(total - data["delta"]) < 0.1  # the drivers explain the change
    _assert_verbatim([c for d in data["drivers"] for c in d["citations"]])
    text = CliRunner().invoke(app, ["why", "acme-logistics", "--from", "2026-07-31", "--to", "2026-10-31"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith(data["text"])
    assert "Drivers (2026-07-31 -> 2026-10-31" in text.output
    # a date between snapshots is scored from the ledger
    mid = CliRunner().invoke(app, ["why", "acme-logistics", "--from", "2026-09-15", "--to", "2026-10-31", "-f", "json"])
    assert mid.exit_code == 0, mid.output
    assert json.loads(mid.output)["from"]["as_of"] == "2026-09-15"


def test_why_argument_errors(demo_home: Path) -> None:
    from api.cli import app
    from extractors.errors import InputError

    res = CliRunner().invoke(app, ["why", "acme-logistics", "--since", "2026-07-31", "--from", "2026-07-01"])
    assert isinstance(res.exception, InputError) and "not both" in str(res.exception)
    res = CliRunner().invoke(app, ["why", "acme-logistics", "--from", "2026-10-31", "--to", "2026-07-01"])
    assert isinstance(res.exception, InputError) and "before the end date" in str(res.exception)
    res = CliRunner().invoke(app, ["why", "acme-logistics", "--since", "last week"])
    assert isinstance(res.exception, InputError) and "expected YYYY-MM-DD" in str(res.exception)


def test_unknown_account_is_one_line_exit_1(demo_home: Path) -> None:
    env = {**os.environ, "HEALTHTRACE_HOME": str(demo_home)}
    for cmd in (["why", "no-such-account"], ["recap", "no-such-account"]):
        p = subprocess.run([sys.executable, "-m", "api.cli", *cmd], capture_output=True, text=True, env=env,
                           cwd=ROOT, timeout=120)
        assert p.returncode == 1
        assert p.stderr.strip().splitlines() == ["error: account 'no-such-account' not found (tenant 'default')"]


def test_recap_on_the_demo_store(demo_home: Path, tmp_path: Path) -> None:
    from api.cli import app

    res = CliRunner().invoke(app, ["recap", "brightpath-health", "--days", "120"])
    assert res.exit_code == 0, res.output
    md = res.output
    assert md.startswith("# BrightPath Health: Account recap (2026-10-31)")
    for section in ("## What changed", "## Evidence", "## Open risks", "## Next steps"):
        assert section in md
    assert "**Renewal:** 2026-12-15 (in 45 days)." in md
    out = tmp_path / "recap.md"
    res = CliRunner().invoke(app, ["recap", "cedar-financial", "--audience", "exec", "--out", str(out)])
    assert res.exit_code == 0, res.output
    exec_md = out.read_text("utf-8")
    assert exec_md.startswith("# Cedar Financial: Executive summary") and "renewal" in exec_md and "proposal" in exec_md
