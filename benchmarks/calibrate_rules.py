"""Refit the rule extractor's confidence calibration from the DEV evaluation data.

Usage: python benchmarks/calibrate_rules.py [--data-root DIR] [--out extractors/rules_calibration.json]

Each cue's prior weight in ``extractors/patterns.py`` is a guess at its precision. This script measures
how often each cue's signals are right on labelled DEV data and stores a shrunk estimate
(Beta prior centred on the guess, worth PRIOR_STRENGTH observations), so a cue seen rarely keeps its
prior and a frequent one converges to what was measured. What counts as right:

- complaints (chat): a polarity -1 signal on a tweet labelled complaint;
- bitext (chat): a signal of a class's accepted type on an utterance of that class's intents
  (ambiguous intents and types outside the classes are not counted);
- enron_gold (email): a signal overlapping a gold quote of the same type;
- enron_tone (email): negative/positive sentiment on an email with that tone (ambiguous codes skipped).

Only the DEV split is read (never copied into the repo): the output holds counts and rates per cue.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "data"
DEFAULT_OUT = ROOT / "extractors" / "rules_calibration.json"
PRIOR_STRENGTH = 8.0
_CUE = re.compile(r"\[([^,\]]+)")


def _cue_of(summary: str) -> str:
    m = _CUE.search(summary)
    return m.group(1).split("+")[0] if m else "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    if not (args.data_root / "complaints" / "labels.jsonl").exists():
        print(f"skipped: no evaluation data under {args.data_root}")
        return 0

    sys.path.insert(0, str(ROOT))
    import extractors.rules as rules
    from extractors.parsers import load_document

    rules.CALIBRATION_ENABLED = False  # measure the raw cues
    ex = rules.RuleExtractor()
    eval_dir = args.data_root.parent
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # key -> [right, total]

    def add(type_: str, summary: str, ok: bool) -> None:
        key = f"{type_}/{_cue_of(summary)}"
        counts[key][0] += int(ok)
        counts[key][1] += 1

    def rows(suite: str) -> list[dict]:
        path = args.data_root / suite / "labels.jsonl"
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]

    for row in rows("complaints"):
        for s in ex.extract(load_document(str(args.data_root / "complaints" / row["doc"]), kind="chat")):
            if s.polarity == -1:
                add(s.type, s.summary, bool(row["complaint"]))

    mapping = json.loads((eval_dir / "mappings" / "bitext_intents.json").read_text("utf-8"))
    for row in rows("bitext"):
        for s in ex.extract(load_document(str(args.data_root / "bitext" / row["doc"]), kind="chat")):
            for cls in mapping["classes"].values():
                if s.type in cls["accept"] and row["intent"] not in cls.get("ambiguous_intents", []):
                    add(s.type, s.summary, row["intent"] in cls["intents"])
                    break

    for row in rows("enron_gold"):
        for s in ex.extract(load_document(str(args.data_root / "enron_gold" / row["doc"]), kind="email")):
            c = s.evidence[0]
            ok = any(g["type"] == s.type and c.start < g["end"] and g["start"] < c.end for g in row["gold"])
            add(s.type, s.summary, ok)

    tone = json.loads((eval_dir / "mappings" / "enron_tone.json").read_text("utf-8"))["classes"]
    for row in rows("enron_tone"):
        cats = row["cats"]
        for s in ex.extract(load_document(str(args.data_root / "enron_tone" / row["doc"]), kind="email")):
            cls = tone["negative"] if s.type == "negative_sentiment" else tone["positive"] if s.type == "positive_sentiment" else None
            if cls is None:
                continue
            gold = any(cats.get(code, 0) >= 1 for code in cls["codes"])
            if not gold and any(code in cats for code in cls.get("ambiguous_codes", [])):
                continue
            add(s.type, s.summary, gold)

    priors = {f"{t}/{pid}": w for t, cues in rules.P.PATTERNS.items() for pid, _, w, _ in cues}
    out = {}
    for key, (right, total) in sorted(counts.items()):
        prior = priors.get(key, rules.LEXICON_PRIOR)
        rate = (right + PRIOR_STRENGTH * prior) / (total + PRIOR_STRENGTH)
        out[key] = {"right": right, "total": total, "prior": prior, "precision": round(rate, 4)}
    doc = {
        "_doc": "Per-cue precision on the DEV evaluation data, shrunk towards the prior weight "
        f"(Beta prior worth {PRIOR_STRENGTH:g} observations). Refit: python benchmarks/calibrate_rules.py",
        "extractor_version": rules.VERSION,
        "prior_strength": PRIOR_STRENGTH,
        "cues": out,
    }
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {args.out} ({len(out)} cues)")
    for key, v in sorted(out.items(), key=lambda kv: -kv[1]["total"])[:25]:
        print(f"  {key:45s} {v['right']:5d}/{v['total']:<5d} prior {v['prior']:.2f} -> {v['precision']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
