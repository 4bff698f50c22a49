"""Scoring semantics a CSM can trust: bad news never raises a score, caps hold, narration signs follow the
healthy direction of each metric, and weight sharing shows once as "data coverage changed"."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extractors.models import Account, Citation, HealthScore, Signal, UsageRow, taxonomy
from scoring.model import default_model
from scoring.narrate import narrate
from scoring.playbooks import load_playbooks
from scoring.scorer import score

AS_OF = date(2026, 6, 30)
ACCOUNT = Account(account_id="acme", name="Acme", start_date=date(2025, 1, 1), end_date=date(2026, 12, 31))
MODEL = default_model()
NEGATIVE = sorted(t for t, info in taxonomy().items() if MODEL.signals.get(t) and MODEL.signals[t].points < 0)
ALL_TYPES = sorted(MODEL.signals)
# metrics a rubric reads, not a denominator: scaling them towards unhealthy can only lower their subscores
HIGHER = ["active_users", "feature_adoption", "output_acceptance_rate", "workflow_completion_rate", "nps", "csat"]
LOWER = ["regeneration_rate", "open_critical_tickets", "ticket_age_days", "payment_delay_days"]
RANGES = {"active_users": (0, 120), "seats_contracted": (50, 120), "logins": (0, 500), "feature_adoption": (0, 100),
          "output_acceptance_rate": (0, 1), "regeneration_rate": (0, 1), "workflow_completion_rate": (0, 1),
          "nps": (-100, 100), "csat": (1, 5), "open_critical_tickets": (0, 8), "ticket_age_days": (0, 120),
          "payment_delay_days": (0, 120)}


def _signal(type_: str, age: int, severity: float, n: int, hedged: bool = False) -> Signal:
    day = AS_OF - timedelta(days=age)
    when = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    quote = f"evidence {n} for {type_}"
    return Signal(account_id="acme", type=type_, severity=severity, confidence=0.9, occurred_at=when,
                  evidence=[Citation(source_id=f"doc{n}", start=0, end=len(quote), quote=quote, occurred_at=when)],
                  extractor="test", extractor_version="1", hedged=hedged)


signals_st = st.lists(st.tuples(st.sampled_from(ALL_TYPES), st.integers(0, 400), st.floats(0, 1), st.booleans()),
                      max_size=12)
usage_st = st.dictionaries(st.sampled_from(sorted(RANGES)), st.lists(st.floats(0, 1), min_size=1, max_size=6),
                           max_size=8)


def _rows(usage: dict[str, list[float]], scale: dict[str, float] | None = None) -> list[UsageRow]:
    out = []
    for m, fractions in usage.items():
        lo, hi = RANGES[m]
        for i, f in enumerate(fractions):
            # scaling moves a value away from the bottom of its range, so a factor below 1 on NPS -60
            # means "closer to -100", never "closer to 0"
            v = lo + (hi - lo) * f * (scale or {}).get(m, 1.0)
            out.append(UsageRow("acme", AS_OF - timedelta(days=7 * i), m, v))
    return out


def _sigs(spec: list[tuple[str, int, float, bool]]) -> list[Signal]:
    return [_signal(t, age, sev, i, hedged) for i, (t, age, sev, hedged) in enumerate(spec)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=signals_st, usage=usage_st, extra=st.tuples(st.sampled_from(NEGATIVE), st.integers(0, 400),
                                                         st.floats(0, 1), st.booleans()))
def test_adding_a_negative_signal_never_raises_the_score(spec, usage, extra) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(usage)
    before = score(_sigs(spec), rows, ACCOUNT, MODEL, AS_OF)
    after = score(_sigs(spec) + [_signal(extra[0], extra[1], extra[2], 999, extra[3])], rows, ACCOUNT, MODEL, AS_OF)
    assert after.score <= before.score


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=signals_st, usage=usage_st, metric=st.sampled_from(HIGHER + LOWER), factor=st.floats(0.05, 1.0))
def test_worsening_a_metric_never_raises_the_score(spec, usage, metric, factor) -> None:  # type: ignore[no-untyped-def]
    usage = {**usage, metric: usage.get(metric, [0.5, 0.6])}
    scale = {metric: factor if metric in HIGHER else 1 / factor}
    before = score(_sigs(spec), _rows(usage), ACCOUNT, MODEL, AS_OF)
    after = score(_sigs(spec), _rows(usage, scale), ACCOUNT, MODEL, AS_OF)
    assert after.score <= before.score + 1e-9
    # every metric driver's sign agrees with the healthy direction of its metric
    for d in narrate(before, after).drivers:
        m = d.metric
        if d.kind != "metric" or m is None or m.before is None or m.after is None or m.healthy is None:
            continue
        rose = m.after > m.before
        healthier = rose if m.healthy == "higher" else not rose
        if abs(m.after - m.before) > 1e-9 and abs(d.points) >= 0.01:
            assert (d.points > 0) == healthier, (d.key, m, d.points)


def _steady() -> tuple[list[UsageRow], list[Signal]]:
    rows = []
    for w in range(10):
        day = AS_OF - timedelta(days=7 * w)
        rows += [UsageRow("acme", day, "active_users", 52.0), UsageRow("acme", day, "seats_contracted", 100.0),
                 UsageRow("acme", day, "output_acceptance_rate", 0.7), UsageRow("acme", day, "nps", 20.0),
                 UsageRow("acme", day, "logins", 300.0)]
    return rows, [_signal("positive_sentiment", 20, 0.5, 1)]


def test_an_explicit_non_renewal_moves_the_score_clearly_and_the_narration_says_so() -> None:
    rows, sigs = _steady()
    before = score(sigs, rows, ACCOUNT, MODEL, AS_OF)
    after = score(sigs + [_signal("churn_intent", 0, 0.9, 7)], rows, ACCOUNT, MODEL, AS_OF)
    assert before.score >= 55 and after.score <= 45 and after.tier == "At Risk"
    cap = [c for c in after.contributions if c.kind == "cap"]
    assert cap and cap[0].reason_code == "cap:churn_intent" and cap[0].evidence
    n = narrate(before, after, account=ACCOUNT, playbooks=load_playbooks())
    assert "capped at 45" in n.text and "leave" in n.text
    assert n.recommendation is not None and n.recommendation.playbook == "churn-intent"
    # a hedged mention does not cap
    hedged = score(sigs + [_signal("churn_intent", 0, 0.9, 7, hedged=True)], rows, ACCOUNT, MODEL, AS_OF)
    assert not [c for c in hedged.contributions if c.kind == "cap"]


def test_a_category_gaining_data_is_one_coverage_driver_not_baselines() -> None:
    rows, sigs = _steady()
    before = score(sigs, rows, ACCOUNT, MODEL, AS_OF)
    more = rows + [UsageRow("acme", AS_OF - timedelta(days=7 * w), "workflow_completion_rate", 0.95) for w in range(4)]
    after = score(sigs, more, ACCOUNT, MODEL, AS_OF)
    assert {c.category for c in after.categories if c.has_data} - {c.category for c in before.categories if c.has_data}
    drivers = narrate(before, after).drivers
    assert not [d for d in drivers if d.kind == "baseline"]
    coverage = [d for d in drivers if d.kind == "coverage"]
    assert len(coverage) <= 1 and all("data coverage changed" in d.description for d in coverage)
    new = [d for d in drivers if d.key == "metric:workflow_completion_rate:level"]
    assert new and new[0].change == "added"
    # drivers and the rest add up to the change
    n = narrate(before, after)
    assert abs(sum(d.points for d in n.drivers) + n.other_points - n.delta) < 0.05


def test_a_floor_never_gives_points_back_in_the_narration() -> None:
    rows, sigs = _steady()
    bad = [_signal(t, 5, 1.0, i) for i, t in enumerate(["escalation", "pricing_objection", "competitor_mention",
                                                        "payment_issue", "product_gap"])]
    before = score(sigs + bad, rows, ACCOUNT, MODEL, AS_OF)
    after = score(sigs + bad + [_signal("procurement_blocker", 0, 1.0, 50)], rows, ACCOUNT, MODEL, AS_OF)
    assert after.score <= before.score
    drivers = narrate(before, after).drivers
    assert all(d.points <= 0.01 for d in drivers if d.kind in ("signal", "clamp"))


def test_healthy_direction_is_explicit_in_the_compiled_model() -> None:
    from scoring.engine import compile_model

    cm = compile_model(MODEL)
    by = {r.key: r for r in cm.rubrics}
    assert by["metric:regeneration_rate:level"].healthy == "lower"
    assert by["metric:payment_delay_days:level"].unit == "days"
    assert by["metric:active_users:ratio"].healthy == "higher"




def _seats(before: float, after: float, users: float) -> list[UsageRow]:
    """Weekly rows for 30 weeks: contracted seats step from ``before`` to ``after`` three weeks ago."""
    out = []
    for w in range(30):
        day = AS_OF - timedelta(days=7 * w)
        out.append(UsageRow("acme", day, "seats_contracted", after if w < 3 else before))
        out.append(UsageRow("acme", day, "active_users", users))
        out.append(UsageRow("acme", day, "arr_change_pct", 5.0))  # the outcome category has other data
    return out


def test_seat_expansion_and_downsell_are_drivers_of_their_own_sign() -> None:
    """Buying seats is expansion (a CSM names it), a downsell is a loss; a steady contract is neither."""
    def seat_item(rows: list[UsageRow]) -> float:
        s = score([], rows, ACCOUNT, MODEL, AS_OF)
        got = [c.points for c in s.contributions if c.key == "metric:seats_contracted:change"]
        assert len(got) == 1, [c.key for c in s.contributions]
        return got[0]

    assert seat_item(_seats(50, 110, 45)) > 0
    assert seat_item(_seats(100, 60, 45)) < 0
    assert abs(seat_item(_seats(80, 80, 45))) < 1e-9
    # alone in its category a steady contract is no reading at all: its arrival never moves the score
    alone = [r for r in _seats(80, 80, 45) if r.metric != "arr_change_pct"]
    assert not [c for c in score([], alone, ACCOUNT, MODEL, AS_OF).contributions if c.key.startswith("metric:seats")]
