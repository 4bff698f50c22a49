"""The (b) design of benchmarks/extract_generalisation.py: dev spans become sentence records of their type,
everything else a negative grouped by document, and fold counts pool as micro figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("extract_generalisation", ROOT / "benchmarks" / "extract_generalisation.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader
    spec.loader.exec_module(mod)
    return mod


MAIL = ("From: Lena Ortiz <lena@northgate.example>\nTo: sam@vendor.example\nDate: Mon, 2 Mar 2026 09:00:00 +0000\n"
        "Subject: invoices\n\nHi Sam,\n\nWe are holding payment on the February invoice until the duplicate charge "
        "is credited back to us.\nThe training session on Thursday still works for the whole team.\n\nLena\n")


def test_gold_spans_become_typed_sentences_and_the_rest_negatives(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "d1.txt").write_text(MAIL, encoding="utf-8")
    quote = "holding payment on the February invoice"
    start = MAIL.index(quote)
    label = {"id": "d1", "doc": "docs/d1.txt",
             "gold": [{"start": start, "end": start + len(quote), "quote": quote, "type": "payment_issue"},
                      {"start": 0, "end": 4, "quote": "nope", "type": "escalation"}]}  # not on the text: counted
    records, unplaced = _bench().gold_records(tmp_path, [label])
    assert unplaced == 1
    pos = [r for r in records if r["labels"]]
    assert [r["labels"] for r in pos] == [["payment_issue"]] and quote in pos[0]["text"]
    assert any("training session" in r["text"] and r["labels"] == [] for r in records)
    assert {r["group"] for r in records} == {"dev:d1"} and all(r["text"] in MAIL for r in records)


def test_fold_counts_pool_as_micro_figures() -> None:
    folds = [{"doc_micro": {"tp": 3, "fp": 1, "fn": 2}, "span": {"pred_matched": 2, "pred_signals": 4, "gold_matched": 2, "gold_signals": 5}},
             {"doc_micro": {"tp": 1, "fp": 1, "fn": 4}, "span": {"pred_matched": 1, "pred_signals": 2, "gold_matched": 1, "gold_signals": 5}}]
    out = _bench()._pool(folds)
    assert out["doc_micro"]["tp"] == 4 and out["doc_micro"]["precision"] == round(4 / 6, 4)
    assert out["doc_micro"]["recall"] == 0.4 and out["doc_micro"]["f1"] == round(2 * (4 / 6) * 0.4 / (4 / 6 + 0.4), 4)
    assert out["span"]["precision"] == 0.5 and out["span"]["recall"] == 0.3
    json.dumps(out)
