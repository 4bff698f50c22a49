"""The pure scorer's invariants: exact sums, determinism, no future data, zero weights, verified signals only."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extractors.models import Account, Citation, HealthScore, Signal, UsageRow, taxonomy, tier_for
from scoring.facts import Fact
from scoring.model import ScoringModel, default_model, parse_model
from scoring.scorer import score

AS_OF = date(2024, 6, 1)
TYPES = sorted(taxonomy())
ACCOUNT = Account(account_id="acme", start_date=date(2023, 1, 1), end_date=date(2024, 8, 15))


class Doc:
    """A growing source text: every citation made here is checked against it."""

    def __init__(self) -> None:
        self.text = ""

    def cite(self, quote: str, when: datetime | None) -> Citation:
        start = len(self.text) + 1
        self.text += " " + quote
        return Citation(source_id="doc1", start=start, end=start + len(quote), quote=quote, occurred_at=when)


def sig(doc: Doc, type_: str, day: date | None, *, severity: float = 0.5, verified: bool = True, n: int = 0,
        hedged: bool = False) -> Signal:
    when = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc) if day else None
    ev = [doc.cite(f"evidence {n} for {type_}", when)]
    return Signal(
        account_id="acme", type=type_, severity=severity, confidence=0.8, occurred_at=when, evidence=ev,
        unverified_quotes=[] if verified else ["a quote that did not align"], extractor="test",
        extractor_version="1", hedged=hedged, summary=f"{type_} #{n}",
    )


def usage_rows(metric: str, values: list[float], end: date = AS_OF, step: int = 7) -> list[UsageRow]:
    return [UsageRow("acme", end - timedelta(days=step * (len(values) - 1 - i)), metric, v) for i, v in enumerate(values)]


def assert_exact(hs: HealthScore, doc: Doc | None = None) -> None:
    total_h = sum(round(c.points * 100) for c in hs.contributions)
    assert total_h == round(hs.score * 100)
    assert 0 <= hs.score <= 100
    assert hs.tier == tier_for(hs.score)
    uncategorised = sum(round(c.points * 100) for c in hs.contributions if c.category is None)
    assert sum(round(c.points * 100) for c in hs.categories) + uncategorised == round(hs.score * 100)
    keys = [c.key for c in hs.contributions]
    assert len(keys) == len(set(keys))
    if doc is not None:
        for c in hs.contributions:
            for cit in c.evidence:
                assert doc.text[cit.start : cit.end] == cit.quote


# ----------------------------------------------------------------------------------------- strategies
signal_spec = st.tuples(
    st.sampled_from(TYPES),
    st.integers(min_value=-60, max_value=400),  # days before as-of (negative = after as-of)
    st.floats(min_value=0, max_value=1),
    st.booleans(),
    st.booleans(),
)
metric_spec = st.tuples(
    st.sampled_from(["active_users", "seats_contracted", "logins", "regeneration_rate", "nps", "payment_delay_days",
                     "open_critical_tickets", "csat", "custom_metric"]),
    st.lists(st.floats(min_value=0, max_value=500, allow_nan=False), min_size=1, max_size=12),
)


def build(specs: list, metrics: list) -> tuple[Doc, list[Signal], list[UsageRow]]:  # type: ignore[type-arg]
    doc = Doc()
    signals = [
        sig(doc, t, AS_OF - timedelta(days=ago), severity=sev, verified=ver, n=i, hedged=hedged)
        for i, (t, ago, sev, ver, hedged) in enumerate(specs)
    ]
    rows: list[UsageRow] = []
    for m, vals in metrics:
        rows.extend(usage_rows(m, vals, end=AS_OF + timedelta(days=14)))  # some rows after as-of
    return doc, signals, rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(signal_spec, max_size=25), st.lists(metric_spec, max_size=6), st.sampled_from([None, "enterprise", "smb"]))
def test_contributions_add_up_exactly_and_bounds_hold(specs, metrics, segment) -> None:  # type: ignore[no-untyped-def]
    doc, signals, rows = build(specs, metrics)
    acc = ACCOUNT.model_copy(update={"segment": segment})
    hs = score(signals, rows, acc, default_model(), AS_OF)
    assert_exact(hs, doc)


@settings(max_examples=80, deadline=None)
@given(st.lists(signal_spec, max_size=20), st.lists(metric_spec, max_size=5), st.randoms(use_true_random=False))
def test_same_inputs_same_output_whatever_the_order(specs, metrics, rnd) -> None:  # type: ignore[no-untyped-def]
    _, signals, rows = build(specs, metrics)
    a = score(signals, rows, ACCOUNT, default_model(), AS_OF)
    s2, r2 = list(signals), list(rows)
    rnd.shuffle(s2)
    rnd.shuffle(r2)
    b = score(s2, r2, ACCOUNT, default_model(), AS_OF)
    assert a.model_dump() == b.model_dump()
    assert a.inputs_digest and a.inputs_digest == b.inputs_digest


@settings(max_examples=80, deadline=None)
@given(st.lists(signal_spec, max_size=20), st.lists(metric_spec, max_size=5))
def test_nothing_after_as_of_counts(specs, metrics) -> None:  # type: ignore[no-untyped-def]
    doc, signals, rows = build(specs, metrics)
    past_signals = [s for s in signals if s.occurred_at.date() <= AS_OF]  # type: ignore[union-attr]
    past_rows = [r for r in rows if r.date <= AS_OF]
    full = score(signals, rows, ACCOUNT, default_model(), AS_OF)
    cut = score(past_signals, past_rows, ACCOUNT, default_model(), AS_OF)
    assert full.model_dump() == cut.model_dump()
    future_fact = {"distinct_contacts_90d": Fact(9.0, AS_OF + timedelta(days=1), "later")}
    assert score(signals, rows, ACCOUNT, default_model(), AS_OF, facts=future_fact).score == full.score


@settings(max_examples=60, deadline=None)
@given(st.lists(signal_spec, min_size=1, max_size=15))
def test_unverified_signals_never_count(specs) -> None:  # type: ignore[no-untyped-def]
    doc, signals, rows = build(specs, [("active_users", [10, 12, 14])])
    verified = [s for s in signals if s.verified]
    a = score(signals, rows, ACCOUNT, default_model(), AS_OF)
    b = score(verified, rows, ACCOUNT, default_model(), AS_OF)
    assert a.score == b.score and a.inputs_digest == b.inputs_digest
    assert all(c.signal_id in {s.id for s in verified} for c in a.contributions if c.kind == "signal")


def _with(model: ScoringModel, **changes: object) -> ScoringModel:
    data = model.model_dump(mode="json")
    for path, value in changes.items():
        node = data
        parts = path.split("__")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return parse_model(data)


@settings(max_examples=60, deadline=None)
@given(st.lists(signal_spec, max_size=15), st.lists(metric_spec, max_size=5), st.sampled_from(
    ["adoption", "relationship", "outcome", "risk"]))
def test_zero_weight_adds_zero(specs, metrics, category) -> None:  # type: ignore[no-untyped-def]
    doc, signals, rows = build(specs, metrics)
    m = _with(default_model(), **{f"categories__{category}__weight": 0})
    hs = score(signals, rows, ACCOUNT, m, AS_OF)
    assert_exact(hs, doc)
    assert all(c.points == 0 for c in hs.contributions if c.category == category)
    cat = next(c for c in hs.categories if c.category == category)
    assert cat.points == 0 and cat.effective_weight == 0


def test_zero_weight_metric_is_shown_but_worth_nothing() -> None:
    data = default_model().model_dump(mode="json")
    for r in data["metrics"]:
        if r["metric"] == "nps":
            r["weight"] = 0
    m = parse_model(data)
    hs = score([], usage_rows("nps", [10, 20]) + usage_rows("csat", [4, 5]), ACCOUNT, m, AS_OF)
    nps = next(c for c in hs.contributions if c.key == "metric:nps:level")
    assert nps.points == 0
    assert_exact(hs)


def test_no_data_gives_no_data_score_and_says_so() -> None:
    acc = Account(account_id="acme")
    hs = score([], [], acc, default_model(), AS_OF)
    assert hs.score == default_model().no_data_score
    assert any("no data" in n for n in hs.notes)
    assert_exact(hs)


def test_missing_categories_redistribute_weight_and_notes_say_so() -> None:
    doc = Doc()
    rows = usage_rows("active_users", [50, 60, 70, 80])
    hs = score([], rows, ACCOUNT, default_model(), AS_OF)
    by = {c.category: c for c in hs.categories}
    # days to renewal alone does not make the risk category "have data" (needs_other_data)
    assert by["adoption"].has_data and not by["risk"].has_data
    assert by["adoption"].effective_weight == 100
    assert any("relationship" in n and "shared" in n for n in hs.notes)
    before = hs
    hs = score([sig(doc, "pricing_objection", AS_OF)], rows, ACCOUNT, default_model(), AS_OF)
    by = {c.category: c for c in hs.categories}
    # a signal alone does not bring the renewal fact in, and does not take weight from the measured adoption:
    # it moves the score by the category's nominal share of all weights (20%) times its points
    assert by["risk"].has_data and "fact:days_to_renewal" not in {c.key for c in hs.contributions}
    assert not by["relationship"].has_data and not by["outcome"].has_data
    assert by["relationship"].effective_weight == 0
    assert by["adoption"].effective_weight == 100 and by["risk"].effective_weight == pytest.approx(20)
    points = next(c.points for c in hs.contributions if c.kind == "signal")
    assert hs.score == pytest.approx(before.score + points, abs=0.011) and points < 0
    assert_exact(hs, doc)


def test_signals_decay_with_half_life() -> None:
    doc = Doc()
    hl = default_model().signals["churn_intent"].half_life_days
    fresh = score([sig(doc, "churn_intent", AS_OF)], [], ACCOUNT, default_model(), AS_OF)
    old = score([sig(doc, "churn_intent", AS_OF - timedelta(days=int(hl)), n=1)], [], ACCOUNT, default_model(), AS_OF)
    pf = next(c.points for c in fresh.contributions if c.kind == "signal")
    po = next(c.points for c in old.contributions if c.kind == "signal")
    assert pf < po < 0
    assert po == pytest.approx(pf / 2, abs=0.02)


def test_repeated_signals_saturate() -> None:
    doc = Doc()
    one = [sig(doc, "negative_sentiment", AS_OF, n=0)]
    many = [sig(doc, "negative_sentiment", AS_OF, n=i) for i in range(10)]
    p1 = sum(c.points for c in score(one, [], ACCOUNT, default_model(), AS_OF).contributions if c.kind == "signal")
    hs = score(many, [], ACCOUNT, default_model(), AS_OF)
    pts = [c.points for c in hs.contributions if c.kind == "signal"]
    assert len(pts) == 10
    assert abs(sum(pts)) < 4 * abs(p1)  # harmonic: 1 + 1/2 + ... + 1/10 ~ 2.93
    assert abs(pts[0]) > abs(pts[-1])
    assert_exact(hs, doc)


def test_churn_intent_lowers_score_and_is_cited() -> None:
    doc = Doc()
    rows = usage_rows("active_users", [50, 50, 50, 50])
    base = score([], rows, ACCOUNT, default_model(), AS_OF)
    bad = score([sig(doc, "churn_intent", AS_OF - timedelta(days=3), severity=0.9)], rows, ACCOUNT, default_model(), AS_OF)
    assert bad.score < base.score
    c = next(c for c in bad.contributions if c.kind == "signal")
    assert c.reason_code == "churn_intent" and c.key == f"signal:{c.signal_id}"
    assert c.evidence and doc.text[c.evidence[0].start : c.evidence[0].end] == c.evidence[0].quote


def test_clamp_is_its_own_contribution() -> None:
    doc = Doc()
    signals = [sig(doc, t, AS_OF, severity=1.0, n=i) for i, t in enumerate(
        ["churn_intent", "escalation", "pricing_objection", "competitor_mention", "payment_issue", "product_gap"])]
    hs = score(signals, [], ACCOUNT, default_model(), AS_OF)
    clamp = [c for c in hs.contributions if c.key == "clamp:risk"]
    assert clamp and clamp[0].points > 0
    risk = next(c for c in hs.categories if c.category == "risk")
    # text only: the risk subscore starts at the account's level (the no-data score) and stops at 0
    assert risk.subscore == 0 and risk.points == pytest.approx(-0.2 * default_model().no_data_score)
    assert_exact(hs, doc)


def test_undated_signals_do_not_count() -> None:
    doc = Doc()
    hs = score([sig(doc, "churn_intent", None)], [], ACCOUNT, default_model(), AS_OF)
    assert not any(c.kind == "signal" for c in hs.contributions)
    assert any("undated" in n for n in hs.notes)


def test_ai_regeneration_rate_is_a_strong_negative() -> None:
    low = score([], usage_rows("regeneration_rate", [0.05] * 4), ACCOUNT, default_model(), AS_OF)
    high = score([], usage_rows("regeneration_rate", [0.5] * 4), ACCOUNT, default_model(), AS_OF)
    assert high.score < low.score - 20
    c = next(c for c in high.contributions if c.key == "metric:regeneration_rate:level")
    assert c.reason_code == "metric_low:regeneration_rate" and c.metric is not None and c.metric.value == 0.5


def test_facts_give_single_threaded_and_renewal_codes() -> None:
    facts = {"distinct_contacts_90d": Fact(1.0, AS_OF, "1 contact")}
    doc = Doc()
    rows = usage_rows("open_critical_tickets", [0, 0, 1])  # risk has a metric, so the renewal fact counts
    hs = score([sig(doc, "product_gap", AS_OF)], rows, ACCOUNT, default_model(), AS_OF, facts=facts)
    codes = {c.key: c.reason_code for c in hs.contributions}
    assert codes["fact:distinct_contacts_90d"] == "single_threaded"
    assert codes["fact:days_to_renewal"] == "renewal_near"  # 75 days
    assert_exact(hs)


def test_random_accounts_stay_exact() -> None:
    rnd = random.Random(7)
    for _ in range(30):
        doc = Doc()
        signals = [sig(doc, rnd.choice(TYPES), AS_OF - timedelta(days=rnd.randint(0, 300)), severity=rnd.random(), n=i)
                   for i in range(rnd.randint(0, 60))]
        rows = usage_rows("active_users", [rnd.uniform(0, 100) for _ in range(10)])
        assert_exact(score(signals, rows, ACCOUNT, default_model(), AS_OF), doc)
