"""CSV bounds reject the row, not the run: a huge field, too many columns or too many rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from memory.workspace import MAX_FIELD_CHARS, load_workspace

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_small"
HUGE = "x" * (MAX_FIELD_CHARS + 10)


def _ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(FIXTURE, ws)
    with (ws / "accounts.csv").open("a") as f:
        f.write(f"huge,{HUGE},2023-01-01,2025-01-01,smb\n")
        f.write("wide," + ",".join(["v"] * 300) + "\n")
        f.write("after,After Co,2023-01-01,2025-01-01,smb\n")
    with (ws / "usage.csv").open("a") as f:
        f.write(f"acme,2024-06-01,{HUGE},1\n")
        f.write('acme,2024-06-01,"' + HUGE + '",1\n')
        f.write("acme,2024-07-01,active_users,50\n")
    with (ws / "outcomes.csv").open("a") as f:
        f.write(f"acme,2024-07-01,churned,{HUGE}\n")
        f.write("initech,2024-07-01,renewed\n")
    return ws


def test_huge_fields_and_wide_rows_are_reported_and_skipped(tmp_path):
    ws = load_workspace(_ws(tmp_path))
    assert "after" in ws.accounts and "huge" not in ws.accounts and "wide" not in ws.accounts
    assert any(r.date.isoformat() == "2024-07-01" for r in ws.usage)
    assert any(o.account_id == "initech" and o.date.isoformat() == "2024-07-01" for o in ws.outcomes)
    msgs = [str(p) for p in ws.problems]
    assert sum("longer than 131072" in m for m in msgs) >= 3, msgs
    assert any(m.startswith("accounts.csv:") and "columns" in m for m in msgs)


def test_row_limit_reports_instead_of_aborting(tmp_path):
    ws = load_workspace(_ws(tmp_path), max_rows=3)
    assert len(ws.accounts) == 3
    assert any("more than 3 rows" in str(p) for p in ws.problems)


def test_ingest_and_score_survive_a_huge_field(tmp_path, monkeypatch):
    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    ws = _ws(tmp_path)
    res = CliRunner().invoke(app, ["ingest", "--workspace", str(ws), "--format", "json", "--no-vectors"])
    assert res.exit_code == 0, (res.output, res.exception)
    rep = json.loads(res.stdout)
    assert rep["documents_added"] == 4 and any("longer than" in p for p in rep["problems"])
    res = CliRunner().invoke(app, ["score", "--workspace", str(ws), "--as-of", "2024-08-01", "--format", "jsonl"])
    assert res.exit_code == 0, (res.output, res.exception)
