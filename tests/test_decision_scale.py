"""The decision scale: a documented multiple of the corpus thresholds, stored with the model, stamped on
signals, validated on load, kept by refits, and chosen by nested cross-validation (arithmetic tested here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from extractors import learned
from extractors.classifier import decision_scale
from extractors.errors import ConfigError
from extractors.parsers import load_document
from tests.test_generalisation_kfold import _bench

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "extractors"

MAIL = ("From: Dana Whitfield <dana@larkspur.example>\r\nTo: Sam <sam@vendor.example>\r\n"
        "Date: Tue, 10 Mar 2026 08:15:00 +0000\r\nSubject: where we are\r\n\r\nHi Sam,\r\n\r\n"
        "Honestly the last two releases broke our export twice and my team is frustrated.\r\n"
        "Our finance lead is asking whether the price still makes sense next year.\r\n"
        "We may also look at what Freshdesk offers before we sign anything.\r\n"
        "On the bright side the new dashboard saved the analysts a few hours a week.\r\n\r\nDana\r\n")


NOTES = ("# Larkspur monthly check-in, 2026-03-10\n\nAttendees: Dana Whitfield, Sam (CSM)\n\n"
         "- Dana: the last two releases broke the export twice, the team is frustrated\n"
         "- finance lead asked whether the price still makes sense next year\n"
         "- they may look at what Freshdesk offers before signing\n"
         "- the new dashboard saves the analysts a few hours a week\n"
         "- next check-in moved to Thursday\n")


def _variant(tmp: Path, scale: dict, kinds: dict | None = None) -> Path:
    shutil.copyfile(PKG / learned.MODEL_NPZ, tmp / learned.MODEL_NPZ)
    meta = json.loads((PKG / learned.MODEL_META).read_text("utf-8"))
    meta.setdefault("params", {})["threshold_scale"] = scale
    if kinds is not None:
        meta["params"]["kind_scale"] = kinds
    (tmp / learned.MODEL_META).write_text(json.dumps(meta), "utf-8")
    return tmp


def test_scale_table_defaults_and_rejects_bad_values() -> None:
    types = ["a", "b", "c"]
    assert decision_scale(types, {}).tolist() == [1.0, 1.0, 1.0]
    assert decision_scale(types, {"*": 0.5, "b": 1.2}).tolist() == [0.5, 1.2, 0.5]
    with pytest.raises(ValueError, match="unknown signal type 'zzz'"):
        decision_scale(types, {"zzz": 1.0})
    with pytest.raises(ValueError, match=r"threshold_scale\['\*'\] = 0"):
        decision_scale(types, {"*": 0})  # 0 would fire on every sentence
    with pytest.raises(ValueError, match="not a number"):
        decision_scale(types, {"a": "high"})


def test_lower_scale_decides_more_and_is_stamped(tmp_path: Path) -> None:
    path = tmp_path / "mail.eml"
    path.write_bytes(MAIL.encode("utf-8"))
    doc = load_document(str(path), kind="email")
    raw = path.read_bytes().decode("utf-8")
    counts, versions = {}, {}
    for s in (0.5, 1.0, 2.5):
        d = tmp_path / f"s{s}"
        d.mkdir()
        ex = learned.LearnedExtractor(model_dir=_variant(d, {"*": s}))
        sigs = ex.extract(doc)
        for sig in sigs:
            for c in sig.evidence:
                assert raw[c.start : c.end] == c.quote
        counts[s], versions[s] = len(sigs), ex.version
        # the thresholds the model applies are the fitted ones times the scale
        cues = np.zeros((1, len(ex.model.types) + 4 + len(learned.KINDS)), dtype=np.float32)
        _, thr = ex.model.predict_proba(cues, np.zeros((1, 384), np.float32), ["x"])
        assert np.allclose(thr, ex.model.thr2 * s)
        assert np.allclose(ex.model.lexical(["x"], cues)[1], ex.model.thrl * s)
    assert counts[0.5] >= counts[1.0] >= counts[2.5]
    assert counts[0.5] > counts[2.5]
    assert len(set(versions.values())) == 3  # the decision rule is part of each signal's version


def test_invalid_scale_in_an_artefact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="threshold_scale"):
        learned.load_model(_variant(tmp_path, {"*": 9.0}))


def test_kind_scale_moves_only_its_kind_and_is_stamped(tmp_path: Path) -> None:
    md, eml = tmp_path / "2026-03-10-check-in.md", tmp_path / "mail.eml"
    md.write_text(NOTES, "utf-8")
    eml.write_bytes(MAIL.encode("utf-8"))
    notes, mail = load_document(str(md)), load_document(str(eml), kind="email")
    assert notes.kind == "notes"
    out = {}
    for name, kinds in (("plain", {}), ("low", {"notes": 0.3}), ("high", {"notes": 2.5})):
        d = tmp_path / name
        d.mkdir()
        ex = learned.LearnedExtractor(model_dir=_variant(d, {"*": 1.0}, kinds))
        assert ex.model.kind_factor("notes") == kinds.get("notes", 1.0) and ex.model.kind_factor("email") == 1.0
        got = {k: ex.extract(doc) for k, doc in (("notes", notes), ("email", mail))}
        for k, path in (("notes", md), ("email", eml)):
            raw = path.read_bytes().decode("utf-8")
            assert all(raw[c.start : c.end] == c.quote for sig in got[k] for c in sig.evidence)
        out[name] = ({k: [(s.type, s.evidence[0].start) for s in v] for k, v in got.items()}, ex.version)
    assert out["low"][0]["email"] == out["plain"][0]["email"] == out["high"][0]["email"]  # mail is not touched
    assert len(out["low"][0]["notes"]) > len(out["high"][0]["notes"])
    assert set(out["high"][0]["notes"]) <= set(out["plain"][0]["notes"]) <= set(out["low"][0]["notes"])
    assert len({v for _, v in out.values()}) == 3  # the kind scale is part of each signal's version
    from extractors.offline import OfflineExtractor
    from memory.ledger import SignalRow

    limit = SignalRow.__table__.c.extractor_version.type.length  # PostgreSQL enforces it, SQLite does not
    d = tmp_path / "low"
    assert len(learned.LearnedExtractor(model_dir=d).version) <= limit
    assert len(OfflineExtractor(model_dir=d).version) <= limit and len(OfflineExtractor().version) <= limit
    with pytest.raises(ConfigError, match="kind_scale"):
        learned.load_model(_variant(tmp_path, {}, {"notes": 0}))


def test_refit_keeps_the_shipped_kind_scale() -> None:
    from extractors import refit

    meta = json.loads((PKG / learned.MODEL_META).read_text("utf-8"))
    kinds, provenance = refit.shipped_kind_scale()
    assert kinds == (meta.get("params") or {}).get("kind_scale", {})
    if kinds:  # says where it was chosen and where it was checked
        assert set(kinds) <= set(learned.KINDS)
        assert provenance == meta["kind_scale_provenance"] and {"chosen_on", "checked_on"} <= set(provenance)


def test_refit_keeps_the_shipped_scale() -> None:
    from extractors import refit

    scale, provenance = refit.shipped_threshold_scale()
    meta = json.loads((PKG / learned.MODEL_META).read_text("utf-8"))
    assert scale == (meta.get("params") or {}).get("threshold_scale", {})
    if scale:  # a shipped scale says how it was chosen
        assert provenance and "nested" in provenance["chosen_by"]


def test_nested_selection_scores_each_fold_with_a_scale_chosen_without_it() -> None:
    b = _bench()

    def c(tp: int, fp: int, fn: int) -> dict:
        return {"tp": tp, "fp": fp, "fn": fn}

    # fold 0 alone loves 0.5; folds 1 and 2 prefer 1.0
    counts = {0.5: [c(9, 0, 1), c(2, 6, 2), c(2, 6, 2)], 1.0: [c(1, 0, 9), c(4, 0, 0), c(4, 0, 0)]}
    res = b.nested_cv(counts, "enron_tone")
    assert res["chosen_per_fold"] == [1.0, 0.5, 0.5]  # each chosen on the two OTHER folds
    assert res["nested_cv_counts"] == {"tp": 5, "fp": 12, "fn": 13}  # fold 0 at 1.0, folds 1-2 at 0.5
    assert res["nested_cv"]["negative_strict_f1"] == round(10 / 35, 4)
    assert res["final_choice"] == 1.0  # pooled over all folds: F1 18/27 at 1.0 beats 26/43 at 0.5
    # choosing scored 10/35 out of fold, worse than the plain thresholds (18/27): 1.0 ships
    assert res["ship"] == 1.0 and res["ship_reason"] == "nested CV does not beat scale 1"
    good = {0.5: [c(5, 1, 1)] * 3, 1.0: [c(3, 1, 3)] * 3}
    assert b.nested_cv(good, "enron_tone")["ship"] == 0.5
    # ties go to the corpus thresholds as fitted
    tie = {0.5: [c(1, 1, 1)] * 2, 1.0: [c(1, 1, 1)] * 2, 1.4: [c(1, 1, 1)] * 2}
    assert b.choose_scale(tie, "enron_tone", [0, 1]) == 1.0


def test_candidate_models_compete_inside_the_nested_selection() -> None:
    b = _bench()

    def c(tp: int, fp: int, fn: int, pm: int, ps: int, gm: int, gs: int) -> dict:
        return {"tp": tp, "fp": fp, "fn": fn, "pm": pm, "ps": ps, "gm": gm, "gs": gs}

    weak, strong = c(1, 1, 3, 1, 2, 1, 4), c(3, 1, 1, 3, 4, 3, 4)
    counts = {1.0: [weak] * 3, 0.5: [weak] * 3, ("c2", 1.0): [strong] * 3, ("c2", 0.5): [weak] * 3}
    res = b.nested_cv(counts, "enron_gold")
    assert res["chosen_per_fold"] == [("c2", 1.0)] * 3 and res["ship"] == ("c2", 1.0)
    assert b._label(res["ship"]) == "c2@1.0" and b._parts_label("c2@1.0") == ("c2", 1.0)
    assert b._parts_label("0.5") == ("shipped", 0.5)
    assert res["at_scale_1"] == b._figures("enron_gold", b._add([weak] * 3))  # the plain reference is the shipped model
