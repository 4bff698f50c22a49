"""``healthtrace extract`` on many files in worker processes: the same output, in input order, errors reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import api.commands.extract as extract_cmd
from api.cli import app
from api.commands.extract import PARALLEL_MIN_FILES, extract_parallel

runner = CliRunner()

EMAILS = [
    "From: Dana <dana@customer.com>\nTo: sam@vendor.com\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nSubject: renewal\n\n"
    "We are evaluating other vendors and will not renew unless pricing changes. The export keeps failing.\n",
    "From: Lee <lee@customer.com>\nTo: sam@vendor.com\nDate: Tue, 5 Mar 2024 09:00:00 +0000\nSubject: thanks\n\n"
    "Thanks, the rollout went great and the team loves the new dashboards.\n",
    "From: Kim <kim@customer.com>\nTo: sam@vendor.com\nDate: Wed, 6 Mar 2024 09:00:00 +0000\nSubject: hi\n\n"
    "Can we meet on Friday?\n",
]


def _files(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        p = tmp_path / f"mail{i:03d}.txt"
        p.write_text(EMAILS[i % len(EMAILS)].replace("Subject: ", f"Subject: #{i} "), encoding="utf-8")
        out.append(p)
    return out


def _check_citations(lines: list[dict], files: list[Path]) -> None:
    texts = {str(p): p.read_bytes().decode("utf-8", errors="replace") for p in files}
    for rec in lines:
        text = texts[rec["source"]]
        for ev in rec["evidence"]:
            assert text[ev["start"] : ev["end"]] == ev["quote"]


def test_many_files_in_workers_print_what_one_process_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _files(tmp_path, 70)
    assert extract_cmd._worth_a_pool(files, 2) is False  # 70 short e-mails: not worth forking
    monkeypatch.setattr(extract_cmd, "PARALLEL_MIN_BYTES", 1)
    assert extract_cmd._worth_a_pool(files, 2) is True
    assert extract_cmd._worth_a_pool(files, 1) is False
    assert extract_cmd._worth_a_pool(files[: PARALLEL_MIN_FILES - 1], 2) is False
    missing = tmp_path / "missing.txt"  # a bad file in the middle: reported, the others continue
    args = [str(p) for p in files[:10]] + [str(missing)] + [str(p) for p in files[10:]]
    one = runner.invoke(app, ["extract", "--format", "jsonl", "--kind", "email", "--workers", "1", *args])
    many = runner.invoke(app, ["extract", "--format", "jsonl", "--kind", "email", "--workers", "2", *args])
    assert one.exit_code == many.exit_code == 1
    assert many.stdout == one.stdout
    lines = [json.loads(x) for x in many.stdout.splitlines() if x.startswith("{")]
    assert len({rec["source"] for rec in lines}) >= len(files) // 4  # the churn-risk e-mails have signals
    order = [args.index(rec["source"]) for rec in lines]
    assert order == sorted(order)  # input order
    _check_citations(lines, files)
    assert "missing.txt" in many.stderr and f"1 of {len(args)} files failed" in many.stderr


def test_extract_parallel_keeps_order_with_small_chunks(tmp_path: Path) -> None:
    files = _files(tmp_path, 9)
    got = list(extract_parallel([str(p) for p in files], kind="email", max_bytes=1 << 20, workers=2, chunk=2))
    assert len(got) == len(files)
    for p, recs in zip(files, got):
        assert not isinstance(recs, str)
        assert all(r["source"] == str(p) for r in recs)
        _check_citations(recs, files)
    assert sum(len(r) for r in got) > 0
