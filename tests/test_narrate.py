"""Narrated score changes and playbooks, on hand-made scores (no scorer, no store).

The tests check drivers, signs, citations and key facts, not whole sentences."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from extractors.errors import ConfigError
from extractors.models import Account, Citation, Contribution, HealthScore, MetricRef, tier_for
from scoring.narrate import describe_metric, diff_scores, narrate, narrative_json
from scoring.playbooks import context_for, load_playbooks, parse_playbooks, recommend

EMAIL = (
    "From: Dana Ortiz <dana@acme.example>\nTo: sam@vendor.example\nDate: Tue, 3 Nov 2026 09:12:00 +0000\n"
    "Subject: Moving on\n\nHi Sam,\n\nToday is my last day at Acme; Priya Shah will own the tools budget from now on.\n"
)
CALL = "Sam: How is the rollout going?\nLee: Honestly we are also looking at Northwind, their quote came in lower.\n"


def _cite(text: str, quote: str, *, path: str, day: datetime | None, speaker: str | None = None) -> Citation:
    start = text.index(quote)
    c = Citation(source_id=path.replace("/", "_"), start=start, end=start + len(quote), quote=quote,
                 occurred_at=day, source_path=path, speaker=speaker)
    assert text[c.start : c.end] == c.quote
    return c


CHAMPION = _cite(EMAIL, "Today is my last day at Acme", path="acme/2026-11-03-moving-on.eml",
                 day=datetime(2026, 11, 3, 9, 12, tzinfo=timezone.utc))
COMPETITOR = _cite(CALL, "we are also looking at Northwind", path="acme/2026-10-20-call.txt",
                   day=datetime(2026, 10, 20, tzinfo=timezone.utc), speaker="Lee")


def _score(as_of: date, contribs: list[Contribution], account_id: str = "acme") -> HealthScore:
    total = sum(c.points for c in contribs)
    return HealthScore(account_id=account_id, as_of=as_of, score=total, tier=tier_for(total),
                       contributions=contribs, model_id="default", model_version="1.0")


def _base(points: float = 50.0) -> Contribution:
    return Contribution(key="baseline", kind="baseline", points=points, reason="baseline", reason_code="baseline")


def _active(points: float, value: float, start: date, end: date) -> Contribution:
    """The active-users trend item; its subscore follows the reading, as the model's map does."""
    return Contribution(key="metric:active_users:trend", kind="metric", category="adoption", points=points,
                        reason="active users trend", reason_code="usage_decline:active_users",
                        metric=MetricRef(metric="active_users", transform="trend", value=value,
                                         window_start=start, window_end=end, subscore=max(0.0, min(100.0, 60 + 2 * value))))


def _signal(key: str, type_: str, points: float, cite: Citation, category: str) -> Contribution:
    return Contribution(key=key, kind="signal", category=category, points=points, reason=type_, reason_code=type_,
                        signal_id=key, signal_type=type_, evidence=[cite])


BEFORE = _score(date(2026, 10, 1), [_base(50), _active(12.0, 4.0, date(2026, 8, 2), date(2026, 10, 1))])
AFTER = _score(
    date(2026, 11, 5),
    [
        _base(50),
        _active(4.0, -30.0, date(2026, 10, 8), date(2026, 11, 5)),
        _signal("sig:champ", "champion_departed", -9.0, CHAMPION, "relationship"),
        _signal("sig:comp", "competitor_mention", -3.0, COMPETITOR, "risk"),
    ],
)
ACME = Account(account_id="acme", name="Acme", end_date=date(2027, 3, 31))


def test_drivers_ordered_by_absolute_impact_and_matched_by_key() -> None:
    drivers, rest = diff_scores(BEFORE, AFTER)
    assert [d.key for d in drivers] == ["sig:champ", "metric:active_users:trend", "sig:comp"]
    assert [d.points for d in drivers] == [-9.0, -8.0, -3.0]
    assert [d.change for d in drivers] == ["added", "changed", "added"]
    assert rest == 0
    # the drivers explain the whole delta
    assert sum(d.points for d in drivers) + rest == pytest.approx(AFTER.score - BEFORE.score)


def test_removed_key_counts_in_full_and_small_changes_go_to_rest() -> None:
    later = _score(date(2026, 12, 5), [_base(50.3), _active(4.0, -30.0, date(2026, 11, 8), date(2026, 12, 5)),
                                        _signal("sig:comp", "competitor_mention", -3.0, COMPETITOR, "risk")])
    drivers, rest = diff_scores(AFTER, later)
    assert [(d.key, d.change, d.points) for d in drivers] == [("sig:champ", "removed", 9.0)]
    assert drivers[0].citations == [CHAMPION]
    assert rest == pytest.approx(0.3)


def test_text_names_tier_move_drivers_with_citations_and_action() -> None:
    n = narrate(BEFORE, AFTER, account=ACME, playbooks=load_playbooks())
    assert (n.from_tier, n.to_tier, n.tier_move) == ("Attention", "At Risk", "down")
    text = n.text
    assert text.startswith("Acme moved from Attention to At Risk (-20)")
    # each driver with its evidence: the champion's words and date, the usage change in its unit, the competitor
    for fact in ("the champion left", "email of 3 Nov", "Today is my last day at Acme", "active users fell 30% a month",
                 "competitor", "call of 20 Oct", "Northwind"):
        assert fact in text, fact
    assert text.index("champion left") < text.index("active users") < text.index("Northwind")  # by impact
    assert ".eml" not in text and "champion_departed" not in text  # no paths or codes in the sentence
    assert n.recommendation is not None and n.recommendation.playbook == "champion-departed"
    assert "Recommended action: " + n.recommendation.action in text
    # deterministic wording
    assert narrate(BEFORE, AFTER, account=ACME, playbooks=load_playbooks()).text == n.text


def test_json_shape_carries_citations_with_offsets_and_paths() -> None:
    data = narrative_json(narrate(BEFORE, AFTER, account=ACME, playbooks=load_playbooks()))
    assert data["from"] == {"as_of": "2026-10-01", "score": 62.0, "tier": "Attention"}
    assert data["to"] == {"as_of": "2026-11-05", "score": 42.0, "tier": "At Risk"}
    assert data["delta"] == -20.0 and data["tier_move"] == "down"
    first = data["drivers"][0]
    assert first["points"] == -9.0 and first["reason_code"] == "champion_departed"
    (c,) = first["citations"]
    assert c["source_path"] == "acme/2026-11-03-moving-on.eml"  # paths stay in the JSON
    assert (c["start"], c["end"], c["quote"]) == (CHAMPION.start, CHAMPION.end, "Today is my last day at Acme")
    assert EMAIL[c["start"] : c["end"]] == c["quote"]
    metric = data["drivers"][1]["metric"]
    assert metric["before"] == 4.0 and metric["after"] == -30.0 and metric["transform"] == "trend"
    assert data["drivers"][1]["citations"] == []
    assert data["recommended_action"]["playbook"] == "champion-departed"


def test_rise_without_tier_move_and_offsetting_driver() -> None:
    up = _score(date(2026, 12, 1), [_base(50), _active(15.0, 10.0, date(2026, 10, 3), date(2026, 12, 1)),
                                     _signal("sig:comp", "competitor_mention", -3.0, COMPETITOR, "risk")])
    n = narrate(BEFORE, up)
    assert n.tier_move == "none" and n.delta == 0
    assert n.text.startswith("acme held at 62 (Attention)") and "offset" in n.text
    assert "active users" in n.text and "10%" in n.text and "Northwind" in n.text
    flat = narrate(BEFORE, BEFORE)
    assert flat.drivers == [] and flat.text == "acme held at 62 (Attention)."
    n2 = narrate(BEFORE, _score(date(2026, 12, 1), [_base(50), _active(20.0, 10.0, date(2026, 10, 3), date(2026, 12, 1)),
                                                   _signal("sig:comp", "competitor_mention", -3.0, COMPETITOR, "risk")]))
    assert n2.text.startswith("acme rose from 62 to 67 (+5), still Attention because ")
    assert n2.text.index("active users") < n2.text.index("Partly offset by") < n2.text.index("Northwind")
    ups = {d.key: d.points for d in n2.drivers}
    assert ups["metric:active_users:trend"] > 0 and ups["sig:comp"] < 0


def test_scores_in_reverse_order_are_swapped_and_accounts_must_match() -> None:
    assert narrate(AFTER, BEFORE).delta == pytest.approx(-20.0)
    with pytest.raises(ValueError, match="two accounts"):
        narrate(BEFORE, _score(date(2026, 11, 1), [_base(40)], account_id="other"))


def test_metric_wording() -> None:
    ref = MetricRef(metric="output_acceptance_rate", transform="level", value=0.62)
    text = describe_metric(MetricRef(metric="output_acceptance_rate", transform="level", value=0.81), ref)
    assert "output acceptance" in text and "81%" in text and "62%" in text  # a 0-1 share in percent
    text = describe_metric(None, MetricRef(metric="logins", transform="change", value=-31.2,
                                           window_start=date(2026, 9, 2), window_end=date(2026, 10, 31)))
    assert "logins fell 31%" in text and "previous four weeks" in text
    text = describe_metric(MetricRef(metric="active_users", transform="ratio", value=0.9),
                           MetricRef(metric="active_users", transform="ratio", value=0.55))
    assert "seat utilisation" in text and text.index("90%") < text.index("55%")
    days = MetricRef(metric="payment_delay_days", transform="level", value=60, unit="days", healthy="lower")
    assert "60 days" in describe_metric(MetricRef(metric="payment_delay_days", transform="level", value=0, unit="days"),
                                        days)
    # a slowing growth rate is said as such, not as a rise
    slower = describe_metric(MetricRef(metric="active_users", transform="trend", value=10.0),
                             MetricRef(metric="active_users", transform="trend", value=3.0))
    assert "slowed" in slower and "rose" not in slower


# ----------------------------------------------------------------------------------------- playbooks
def _ctx(score: HealthScore, account: Account | None = None, previous: HealthScore | None = None):
    return context_for(score, previous=previous, account=account)


def test_playbook_choice_by_tier_reason_code_and_renewal() -> None:
    pb = load_playbooks()
    critical = _score(date(2026, 11, 5), [_base(20), _signal("sig:champ", "champion_departed", -5, CHAMPION, "relationship")])
    assert recommend(pb, _ctx(critical))[0].playbook == "critical-save-plan"
    assert recommend(pb, _ctx(AFTER, ACME, BEFORE))[0].playbook == "champion-departed"
    decline = _score(date(2026, 11, 5), [_base(50), _active(4.0, -30.0, date(2026, 10, 8), date(2026, 11, 5))])
    rec = recommend(pb, context_for(decline, previous=BEFORE, driver_points=[("usage_decline:active_users", -8.0)]))[0]
    assert rec.playbook == "usage-decline" and "activation" in rec.action
    healthy = _score(date(2026, 11, 5), [_base(80)])
    soon = Account(account_id="acme", end_date=date(2027, 1, 15))
    later = Account(account_id="acme", end_date=date(2027, 9, 1))
    assert recommend(pb, _ctx(healthy, soon))[0].playbook == "healthy-renewal-expansion"
    assert recommend(pb, _ctx(healthy, later))[0].playbook == "healthy-keep-cadence"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("version: 1\nrules: []\n", "rules: List should have at least 1 item"),
        ("version: 1\nrules:\n  - {id: x, action: go, when: {tiers: [Great]}}\n", "rules.0.when.tiers.0"),
        ("version: 1\nrules:\n  - {id: x, action: go, when: {colour: red}}\n", "rules.0.when.colour"),
        ("version: 1\nrules:\n  - {id: x, action: go}\n  - {id: x, action: stop}\n", "duplicate rule id 'x'"),
        ("version: 2\nrules:\n  - {id: x, action: go}\n", "version"),
    ],
)
def test_invalid_playbook_names_the_problem(text: str, problem: str, tmp_path: Path) -> None:
    f = tmp_path / "pb.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_playbooks(f)
    assert str(f) in str(e.value) and problem in str(e.value)


def test_missing_playbook_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_playbooks(tmp_path / "nope.yaml")


def test_custom_playbook_patterns_and_direction() -> None:
    pb = parse_playbooks(
        "version: 1\nrules:\n"
        "  - {id: up, action: celebrate, when: {reason_codes: ['usage_*'], direction: positive}}\n"
        "  - {id: fallback, action: check in}\n"
    )
    assert recommend(pb, _ctx(BEFORE))[0].playbook == "up"
    assert [r.playbook for r in recommend(pb, _ctx(_score(date(2026, 1, 1), [_base(40)])))] == ["fallback"]


def test_faded_signals_and_mild_metrics_do_not_drive_the_action() -> None:
    pb = load_playbooks()
    faded = _score(date(2026, 11, 5), [_base(60), _signal("sig:esc", "escalation", -0.4, COMPETITOR, "risk")])
    assert recommend(pb, _ctx(faded))[0].playbook == "attention-check-in"  # |points| 0.4 < min_points 1
    strong = _score(date(2026, 11, 5), [_base(60), _signal("sig:esc", "escalation", -4.0, COMPETITOR, "risk")])
    assert recommend(pb, _ctx(strong))[0].playbook == "escalation-follow-up"
    mild = _score(date(2026, 11, 5), [_base(55), _active(5.0, -3.0, date(2026, 9, 7), date(2026, 11, 5))])
    assert mild.contributions[1].metric.subscore == 54  # type: ignore[union-attr]
    assert recommend(pb, _ctx(mild))[0].playbook == "attention-check-in"  # subscore 54 > max_subscore 45
    steep = _score(date(2026, 11, 5), [_base(55), _active(-5.0, -20.0, date(2026, 9, 7), date(2026, 11, 5))])
    assert recommend(pb, _ctx(steep))[0].playbook == "usage-decline"


def test_reweighted_metric_and_clamp_stay_out_of_the_sentence_but_in_the_data() -> None:
    def nps(points: float, value: float, sub: float) -> Contribution:
        return Contribution(key="metric:nps:level", kind="metric", category="relationship", points=points,
                            reason="latest NPS", reason_code="metric_healthy:nps",
                            metric=MetricRef(metric="nps", transform="level", value=value, subscore=sub))

    clamp = Contribution(key="clamp:outcome", kind="clamp", category="outcome", points=-2.0,
                         reason="outcome subscore 104 clamped to 100 (0-100)", reason_code="clamp_high")
    a = _score(date(2026, 9, 1), [_base(50), nps(10.0, 30, 75)])
    b = _score(date(2026, 10, 1), [_base(50), nps(8.0, 60, 95), clamp,
                                   _signal("sig:champ", "champion_departed", -6.0, CHAMPION, "relationship")])
    n = narrate(a, b)
    # NPS rose (its healthy direction): it is never a negative driver; the weight it lost is coverage
    assert not [d for d in n.drivers if d.key == "metric:nps:level" and d.points < 0]
    assert n.drivers[0].key == "sig:champ" and n.drivers[0].points == -6.0
    assert "NPS" not in n.text and "ceiling" not in n.text and "subscore" not in n.text
    assert n.text.startswith("acme fell from 60 to 50 (-10), still Attention because the champion left (email of 3 Nov")
    assert abs(sum(d.points for d in n.drivers) + n.other_points - n.delta) < 1e-9


def test_metadata_signals_are_narrated_as_silence_not_as_the_customers_words() -> None:
    quiet = _cite(EMAIL, "Moving on", path="acme/2026-11-03-moving-on.eml",
                  day=datetime(2026, 11, 3, 9, 12, tzinfo=timezone.utc), speaker="Dana Ortiz")
    gone_quiet = Contribution(key="sig:quiet", kind="signal", category="relationship", points=-6.0,
                              reason="sponsor_disengaged", reason_code="sponsor_disengaged", signal_id="sig:quiet",
                              signal_type="sponsor_disengaged", extractor="metadata", evidence=[quiet])
    after = _score(date(2026, 12, 20), [_base(50), _active(12.0, 4.0, date(2026, 10, 1), date(2026, 12, 20)), gone_quiet])
    text = narrate(BEFORE, after, account=ACME).text
    assert "Dana Ortiz has gone quiet (last email of 3 Nov: 'Moving on')" in text
    assert "pulled back" not in text


def _metric(code: str, metric: str, points: float, sub: float, value: float = 0.0) -> Contribution:
    return Contribution(key=f"metric:{metric}:level", kind="metric", category="adoption", points=points,
                        reason=metric, reason_code=code,
                        metric=MetricRef(metric=metric, transform="level", value=value, subscore=sub))


@pytest.mark.parametrize(("items", "tier_base", "playbook", "words"), [
    ([_signal("s:pay", "payment_issue", -6.0, COMPETITOR, "risk")], 60, "billing-issue", "invoice"),
    ([_metric("metric_low:payment_delay_days", "payment_delay_days", -5.0, 20, 60)], 62, "billing-issue", "finance"),
    ([_signal("s:q", "unresponsive", -5.0, COMPETITOR, "relationship")], 62, "silence-multithread", "Multi-thread"),
    ([_metric("metric_low:regeneration_rate", "regeneration_rate", -6.0, 20, 0.45)], 62, "ai-quality-review",
     "quality review"),
    ([_signal("s:x", "expansion_interest", 4.0, COMPETITOR, "outcome")], 70, "expansion-proposal", "expansion"),
    ([_metric("metric_healthy:active_users", "active_users", 1.0, 70, 0.8)], 75, "healthy-keep-cadence", "cadence"),
    # the strongest negative driver wins over a weaker one listed earlier in the file
    ([_signal("s:c", "competitor_mention", -1.5, COMPETITOR, "risk"),
      _signal("s:pay", "payment_issue", -8.0, COMPETITOR, "risk")], 62, "billing-issue", "invoice"),
])
def test_the_action_follows_the_main_negative_driver(items, tier_base, playbook, words) -> None:  # type: ignore[no-untyped-def]
    s = _score(date(2026, 11, 5), [_base(tier_base), *items])
    rec = recommend(load_playbooks(), _ctx(s, Account(account_id="acme", end_date=date(2027, 9, 1))))[0]
    assert rec.playbook == playbook and words in rec.action
    assert "activation campaign" not in rec.action
