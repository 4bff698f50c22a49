"""The customer trials' own files are consistent (benchmarks/customer_trial.py measures the product on them).

Two workspaces of two fictional vendors: ``customer_trial`` (Brightloop, used to choose decision settings) and
``customer_trial_b`` (Crewmark, written later and only ever measured). No quality figures here: only that each
trial is well-formed, so the benchmark's figures mean what they say.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
TRIAL = ROOT / "benchmarks" / "customer_trial"
# (folder, accounts, a metric exported as a 0-1 share, one of the same meaning exported as 0-100)
TRIALS = {
    "customer_trial": (TRIAL, 10, "ai_suggestions_accepted_pct", "pct_ai_accepted"),
    "customer_trial_b": (ROOT / "benchmarks" / "customer_trial_b", 8, "auto_match_rate", "ai_route_uptake_pct"),
}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _load("customer_trial_bench", ROOT / "benchmarks" / "customer_trial.py")


@pytest.fixture(scope="module", params=sorted(TRIALS))
def trial(request):
    return TRIALS[request.param]


@pytest.fixture(scope="module")
def expected(bench, trial):
    return bench.load_expected(trial[0])


def _documents(root: Path = TRIAL) -> list[Path]:
    return sorted(p for p in (root / "documents").rglob("*") if p.is_file() and not p.name.startswith("."))


def test_accounts_documents_and_expectations_agree(expected, trial) -> None:
    root, n_accounts = trial[0], trial[1]
    with (root / "accounts.csv").open(newline="", encoding="utf-8") as f:
        accounts = {r["account_id"] for r in csv.DictReader(f)}
    assert set(expected["accounts"]) == accounts and len(accounts) == n_accounts
    listed = {root / "documents" / aid / name for aid, acc in expected["accounts"].items() for name in acc["documents"]}
    assert listed == set(_documents(root))  # every file has expectations, every expectation has its file
    for aid, acc in expected["accounts"].items():
        assert 4 <= len(acc["documents"]) <= 8, aid
        assert acc["direction"] in ("up", "down", "flat"), aid
        lo, hi = acc["contacts_b"]
        assert 0 <= lo <= hi, aid
        for key in ("start_tiers", "end_tiers"):
            assert acc[key] and set(acc[key]) <= {"Healthy", "Attention", "At Risk", "Critical"}, (aid, key)
    suffixes = {p.suffix for p in _documents(root)}
    assert {".eml", ".vtt", ".md", ".json"} <= suffixes
    assert date.fromisoformat(str(expected["date_a"])) < date.fromisoformat(str(expected["date_b"]))


def test_expected_signals_use_known_types_and_phrases_lie_in_their_documents(bench, expected, trial) -> None:
    from extractors.models import taxonomy

    known = set(taxonomy())
    count = 0
    for aid, acc in expected["accounts"].items():
        reasons = acc.get("reasons") or {}
        assert set(reasons.get("signals") or []) <= known, aid
        assert set(reasons.get("metrics") or []) <= set(expected["metrics"]), aid
        for name, items in acc["documents"].items():
            text = bench.raw_text(trial[0] / "documents" / aid / name)
            for item in items or []:
                assert bench.expected_types(item) <= known, (aid, name, item)
                for phrase in bench.expected_phrases(item):
                    assert len(bench.phrase_spans(text, phrase)) >= 1, (aid, name, phrase)
                count += 1
    assert count >= 80


def test_phrase_matching_needs_type_and_overlapping_span(bench) -> None:
    text = "Hello. I'm leaving the company on Friday. Thanks."
    item = {"type": "champion_departed", "phrase": "leaving the\ncompany"}
    start = text.index("I'm")
    good = {"type": "champion_departed", "evidence": [{"start": start, "end": start + 10, "quote": text[start:start + 10]}]}
    assert bench.match_signal(good, item, text)
    assert not bench.match_signal({**good, "type": "churn_intent"}, item, text)
    elsewhere = {"type": "champion_departed", "evidence": [{"start": 0, "end": 6, "quote": "Hello."}]}
    assert not bench.match_signal(elsewhere, item, text)
    assert bench.verify_citation(text, good["evidence"][0])
    assert not bench.verify_citation(text, {"start": 1, "end": 7, "quote": "Hello."})


def test_usage_generator_is_deterministic_and_matches_the_committed_file(tmp_path: Path, expected, trial) -> None:
    root, _, share_metric, percent_metric = trial
    gen = _load(f"{root.name}_usage", root / "generate_usage.py")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    gen.write(a)
    gen.write(b)
    assert a.read_bytes() == b.read_bytes() == (root / "usage.csv").read_bytes()
    with a.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["metric"] for r in rows} == set(expected["metrics"])  # every raw name documented
    for aid in expected["accounts"]:
        days = sorted({date.fromisoformat(r["date"]) for r in rows if r["account_id"] == aid})
        assert 90 <= (days[-1] - days[0]).days <= 180, aid
        assert all((d2 - d1).days == 7 for d1, d2 in zip(days, days[1:], strict=False)), aid
    shares = [float(r["value"]) for r in rows if r["metric"] == share_metric]
    percents = [float(r["value"]) for r in rows if r["metric"] == percent_metric]
    assert shares and percents
    assert max(shares) <= 1.0 and min(percents) > 1.0  # one family writes a 0-1 share, the other 0-100


def test_every_document_parses_through_extract(monkeypatch: pytest.MonkeyPatch, trial) -> None:
    from api.cli import app

    monkeypatch.setenv("HEALTHTRACE_EMBEDDER", "hashing")
    files = _documents(trial[0])
    r = CliRunner().invoke(app, ["extract", *map(str, files), "--format", "json"])
    assert r.exit_code == 0, r.output[-2000:]
    start = r.output.index("[")
    signals = json.loads(r.output[start:r.output.rindex("]") + 1])
    assert isinstance(signals, list)
    assert "error" not in r.output[:start].lower()
