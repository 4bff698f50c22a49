"""The metric vocabulary and mapping (scoring/metrics.py): aliases, unit detection, mapping files."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from extractors.errors import InputError
from scoring.metrics import (
    Stats,
    alias_of,
    parse_mapping,
    resolve_for_model,
    stats_of_arrays,
    stats_of_rows,
    vocabulary,
)
from scoring.model import default_model


def _st(lo: float, hi: float, integers: bool = False) -> Stats:
    return Stats(10, lo, hi, integers)


@pytest.mark.parametrize("raw,canonical", [
    ("weekly_active_users", "active_users"), ("WAU", "active_users"), ("Monthly Active Users", "active_users"),
    ("licenses", "seats_contracted"), ("licensed_seats", "seats_contracted"), ("seats", "seats_contracted"),
    ("pct_regenerated", "regeneration_rate"), ("regenerated_pct", "regeneration_rate"),
    ("ai_suggestions_accepted_pct", "output_acceptance_rate"), ("sev1", "open_critical_tickets"),
    ("p1_tickets", "open_critical_tickets"), ("tickets_open", "open_tickets"), ("dso", "payment_delay_days"),
    ("invoice_days_overdue", "payment_delay_days"), ("nps_score", "nps"), ("arr_change", "arr_change_pct"),
    ("workflowCompletionRate", "workflow_completion_rate"), ("login_count", "logins"),
])
def test_aliases(raw: str, canonical: str) -> None:
    hit = alias_of(raw)
    assert hit is not None and hit[0] == canonical


def test_every_canonical_metric_is_described_and_the_model_reads_them() -> None:
    model_reads = default_model().known_metrics
    for c in vocabulary().values():
        assert c.meaning and c.unit and c.healthy in ("higher", "lower")
        assert c.name in model_reads, c.name


def test_default_names_map_to_themselves() -> None:
    mm = resolve_for_model({"active_users": _st(10, 80, True), "output_acceptance_rate": _st(0.4, 0.9),
                            "nps": _st(-30, 70, True)}, default_model())
    assert mm.is_identity() and not mm.warnings()


def test_unit_conversions_are_reported_never_silent() -> None:
    stats = {"accept_pct": _st(40, 90), "feature_adoption": _st(0.1, 0.8), "nps_score": _st(0, 10, True),
             "csat_pct": _st(50, 95), "arr_change": _st(-0.2, 0.3), "wau": _st(5, 50, True)}
    stats["accept_pct"] = _st(40, 90)
    mm = resolve_for_model({"ai_suggestions_accepted_pct": stats.pop("accept_pct"), **stats}, default_model())
    d = mm.decisions
    assert d["ai_suggestions_accepted_pct"].convert == "scale" and d["ai_suggestions_accepted_pct"].factor == 0.01
    assert d["feature_adoption"].factor == 100.0
    assert d["nps_score"].canonical == "nps_response" and d["nps_score"].convert == "nps"
    assert d["csat_pct"].convert == "csat_percent"
    assert d["arr_change"].factor == 100.0
    for raw, dec in d.items():
        if dec.convert != "none" and raw != "nps_score":
            assert dec.note, raw
    warned = " ".join(mm.warnings())
    for raw in ("ai_suggestions_accepted_pct", "feature_adoption", "nps_score", "csat_pct", "arr_change"):
        assert raw in warned
    assert mm.convert_value(d["nps_score"], 9) == 100 and mm.convert_value(d["nps_score"], 6) == -100
    assert mm.convert_value(d["csat_pct"], 100) == 5.0


def test_values_that_fit_no_unit_are_not_used() -> None:
    mm = resolve_for_model({"acceptance_rate": _st(0, 350), "arr_change": _st(-50000, 120000)}, default_model())
    assert not mm.decisions["acceptance_rate"].used and "fit neither" in mm.decisions["acceptance_rate"].reason
    assert not mm.decisions["arr_change"].used and "amounts" in mm.decisions["arr_change"].reason


def test_unknown_metrics_are_unused_with_a_reason_and_two_names_of_one_metric_are_decided_per_account() -> None:
    mm = resolve_for_model({"widgets": _st(0, 5), "wau": _st(5, 50), "mau": _st(10, 90)}, default_model())
    assert "unknown meaning" in mm.decisions["widgets"].reason
    assert mm.decisions["wau"].used and mm.decisions["mau"].used and mm.unused() == ["widgets"]
    preferred, other = sorted(["wau", "mau"], key=lambda n: mm.decisions[n].rank)
    assert "do not also report" in (mm.decisions[other].note or "")
    rows = [("both", date(2026, 1, 5), "wau", 40.0), ("both", date(2026, 1, 5), "mau", 80.0),
            ("only_mau", date(2026, 1, 5), "mau", 70.0), ("only_wau", date(2026, 1, 5), "wau", 30.0)]
    mapped = mm.apply_rows(rows)
    kept = {(r[0], r[3]) for r in mapped}
    # an account with both counts the preferred name only; an account of another export family keeps its own
    assert ("both", 40.0 if preferred == "wau" else 80.0) in kept and len([k for k in kept if k[0] == "both"]) == 1
    assert ("only_mau", 70.0) in kept and ("only_wau", 30.0) in kept
    names = sorted({r[2] for r in rows})
    acc_codes = {"both": 0, "only_mau": 1, "only_wau": 2}
    met = np.array([names.index(r[2]) for r in rows])
    new_names, new_met, new_val, keep = mm.apply_arrays(names, met, np.array([r[3] for r in rows]),
                                                        np.array([acc_codes[r[0]] for r in rows]))
    assert sorted(new_val[keep].tolist()) == sorted(r[3] for r in mapped)


def test_nps_survey_means_are_converted_approximately_and_said_so() -> None:
    mm = resolve_for_model({"nps": Stats(n=20, lo=5.9, hi=8.9, integers=False)}, default_model())
    d = mm.decisions["nps"]
    assert d.used and d.convert == "nps_mean" and "approximate" in d.note
    assert mm.convert_value(d, 8.9) > mm.convert_value(d, 7.0) > mm.convert_value(d, 5.9)
    assert -100 <= mm.convert_value(d, 0.0) and mm.convert_value(d, 10.0) <= 100
    score = resolve_for_model({"nps_score": _st(-20, 47)}, default_model()).decisions["nps_score"]
    assert score.used and score.convert == "none"


def test_mapping_file_wins_and_bad_files_are_one_line_errors() -> None:
    mf = parse_mapping({"metrics": {"wau": "ignore", "mau": "active_users", "score_x": {"canonical": "nps",
                                                                                          "unit": "score"}}})
    mm = resolve_for_model({"wau": _st(5, 50), "mau": _st(10, 90), "score_x": _st(0, 10, True)}, default_model(), mf)
    assert not mm.decisions["wau"].used and mm.decisions["mau"].canonical == "active_users"
    assert mm.decisions["score_x"].canonical == "nps" and mm.decisions["score_x"].convert == "none"
    for bad in ([1, 2], {"x": 3}, {"x": {"canonical": "nps", "unit": "furlongs"}}, {"x": {"colour": 1}}):
        with pytest.raises(InputError):
            parse_mapping(bad)


def test_rows_and_arrays_apply_the_same_mapping() -> None:
    rows = [("a", date(2026, 1, d), m, v) for d, m, v in
            [(1, "weekly_active_users", 10.0), (2, "accept_pct", 80.0), (3, "widgets", 2.0), (4, "accept_pct", 60.0)]]
    rows = [r if r[2] != "accept_pct" else (r[0], r[1], "ai_suggestions_accepted_pct", r[3]) for r in rows]
    stats = stats_of_rows(rows)
    mm = resolve_for_model(stats, default_model())
    mapped = mm.apply_rows(rows)
    assert [(r[2], r[3]) for r in mapped] == [("active_users", 10.0), ("output_acceptance_rate", 0.8),
                                              ("output_acceptance_rate", 0.6)]
    names = sorted({r[2] for r in rows})
    met = np.array([names.index(r[2]) for r in rows])
    val = np.array([r[3] for r in rows])
    assert stats_of_arrays(names, met, val) == stats
    new_names, new_met, new_val, keep = mm.apply_arrays(names, met, val)
    assert [(new_names[m], v) for m, v in zip(new_met[keep], new_val[keep])] == [(r[2], r[3]) for r in mapped]


@pytest.mark.parametrize("raw,canonical", [
    ("weekly_logins", "logins"), ("num_p1_incidents", "open_critical_tickets"),
    ("avg_open_ticket_age_days", "ticket_age_days"), ("invoice_past_due_days", "payment_delay_days"),
    ("active_members_30d", "active_users"), ("support_cases_open", "open_tickets"), ("nps_latest", "nps"),
    ("avg_session_minutes", None), ("invoice_amount_overdue", None), ("widget_x", None),
    # the customer's own nouns for its users, and lateness said in other words
    ("active_drivers_weekly", "active_users"), ("agents_active_7d", "active_users"), ("active_sites", None),
    ("late_invoice_days", "payment_delay_days"), ("bill_days_late", "payment_delay_days"),
    ("invoice_count", None), ("helpdesk_backlog", "open_tickets"),
])
def test_name_words_fallback_is_reported(raw: str, canonical: str | None) -> None:
    st = _st(0, 40, True) if canonical != "nps" else _st(-20, 40, True)
    d = resolve_for_model({raw: st}, default_model()).decisions[raw]
    assert d.canonical == canonical
    if canonical is not None:
        assert d.source == "name words" and "words of its name" in (d.note or "")


def test_a_percent_of_users_is_seat_utilisation_not_a_head_count() -> None:
    mm = resolve_for_model({"active_users_pct": _st(20, 85, True), "weekly_active_users": _st(5, 60, True)},
                           default_model())
    d = mm.decisions["active_users_pct"]
    assert d.canonical == "seat_utilisation" and d.factor == 0.01 and d.note
    assert mm.decisions["weekly_active_users"].canonical == "active_users"
