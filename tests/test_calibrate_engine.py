"""Calibration's totals are the engine's: ``scoring.calibrate.model_totals`` goes through
``scoring.engine.rubric_totals`` (the engine's category arithmetic), so a candidate stretch is ranked on exactly
the score ``score_batch`` gives. Checked on the calibration pipeline's own readings (feature_matrix ->
item_scores) against ``score_batch`` on the same accounts and dates, with no text signals."""

from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np

from extractors.models import Account, UsageRow
from scoring.calibrate import (
    Candidate,
    Stretch,
    TrainingData,
    candidates_for,
    feature_matrix,
    item_scores,
    model_totals,
    stretch_model,
)
from scoring.columns import columns_from_usage
from scoring.engine import BatchInputs, compile_model, rubric_totals, score_batch
from scoring.model import parse_model
from scoring.snapshots import Snapshot

DAYS = [date(2026, 3, 31), date(2026, 6, 30)]


def _data() -> tuple[TrainingData, list[Snapshot], list[UsageRow]]:
    rnd = random.Random(7)
    accounts, rows = {}, []
    for i in range(40):
        aid = f"a{i:02d}"
        start = date(2025, 1, 1) + timedelta(days=rnd.randrange(0, 200))
        end = date(2026, 7, 1) + timedelta(days=rnd.randrange(0, 300)) if i % 3 else None
        accounts[aid] = Account(account_id=aid, start_date=start, end_date=end, segment="mid-market")
        seats = rnd.choice([20, 50, 120])
        users = seats * rnd.uniform(0.3, 1.0)
        for k in range(0, 540, 14):
            d = date(2025, 1, 1) + timedelta(days=k)
            if d < start or (i % 5 == 0 and k > 400):  # some accounts stop reporting logins
                continue
            users = max(1.0, users * rnd.uniform(0.9, 1.08))
            rows.append(UsageRow(aid, d, "active_users", round(users)))
            rows.append(UsageRow(aid, d, "seats_contracted", seats))
            if i % 5:
                rows.append(UsageRow(aid, d, "logins", round(users * rnd.uniform(2, 6))))
    data = TrainingData.from_rows(accounts, rows, [], source="synthetic")
    snaps = [Snapshot(aid, d, 0, 0) for d in DAYS for aid in sorted(accounts) if accounts[aid].start_date < d]
    return data, snaps, rows


def _model_on(cands: list[Candidate]):  # type: ignore[no-untyped-def]
    """A model whose rubrics are calibration candidates (as a fitted model's are): metrics in two categories,
    a fact alone in its category (it needs other data there: the engine leaves it out) and one beside others."""
    from scoring.model import default_model

    by_key = {c.key: c for c in cands}

    def rubric(key: str, category: str, weight: float, points: list[list[float]]) -> dict:
        c = by_key[key]
        return {"metric": c.metric, "transform": c.transform, "aggregate": c.aggregate, "window_days": c.window,
                "denominator": c.denominator, "denominator_aggregate": c.denominator_aggregate, "name": c.name,
                "category": category, "weight": weight, "map": {"points": points}}

    data = default_model().model_dump(mode="json")
    data["metrics"] = [
        rubric("metric:active_users:ratio:seats_contracted-90d", "adoption", 2.0,
               [[0.0, 0.0], [0.5, 50.0], [1.0, 100.0]]),
        rubric("metric:active_users:trend:90d", "adoption", 1.0, [[-40.0, 10.0], [0.0, 60.0], [30.0, 95.0]]),
        rubric("metric:logins:days_since_last", "outcome", 1.0, [[0.0, 100.0], [30.0, 40.0], [90.0, 5.0]]),
    ]
    data["facts"] = [
        {"fact": "days_to_renewal", "category": "risk", "weight": 0.5, "needs_other_data": True,
         "map": {"points": [[0.0, 40.0], [90.0, 65.0], [180.0, 75.0]]}},
        {"fact": "tenure_days", "category": "adoption", "weight": 0.5,
         "map": {"points": [[0.0, 40.0], [365.0, 70.0]]}},
    ]
    data["unknown_metrics"]["enabled"] = False
    return parse_model(data, source="test")


def _engine_totals(data: TrainingData, snaps: list[Snapshot], all_rows: list[UsageRow],
                   model) -> np.ndarray:  # type: ignore[no-untyped-def]
    from scoring.columns import metrics_as_of

    cm = compile_model(model)
    out = np.zeros(len(snaps))
    for d in DAYS:
        idx = [i for i, s in enumerate(snaps) if s.as_of == d]
        accs = [data.accounts[snaps[i].account_id] for i in idx]
        rows = [r for r in all_rows if r.date <= d]
        cols = columns_from_usage(rows, [a.account_id for a in accs])
        expected = frozenset(metrics_as_of(data.metric_first_day, d))
        res = score_batch(BatchInputs(accs, cols, expected_metrics=expected), cm, d)
        out[idx] = res.totals / 100
    return out


def test_calibration_totals_are_the_engines_totals() -> None:
    data, snaps, rows = _data()
    cands = candidates_for(data.metrics)
    model = _model_on(cands)
    assert len(model.metrics) >= 3 and any(f.needs_other_data for f in model.facts)
    F = item_scores(model, feature_matrix(data, snaps, cands), cands)
    ours = model_totals(F, compile_model(model))
    engine = _engine_totals(data, snaps, rows, model)
    assert len(set(np.round(engine, 1))) > 10  # the data spreads the scores
    assert np.allclose(ours, engine, atol=0.0051)  # the engine rounds to hundredths; nothing else differs


def test_a_stretch_is_scored_as_the_stretched_model_scores() -> None:
    data, snaps, rows = _data()
    cands = candidates_for(data.metrics)
    model = _model_on(cands)
    s = Stretch(45.0, 1.6)
    F = item_scores(model, feature_matrix(data, snaps, cands), cands)
    ours = model_totals(F, compile_model(model), s)
    engine = _engine_totals(data, snaps, rows, stretch_model(model, s, {}))
    assert np.allclose(ours, engine, atol=0.0051)


def test_rubric_totals_checks_its_columns() -> None:
    import pytest

    from scoring.model import default_model

    cm = compile_model(default_model())
    with pytest.raises(ValueError, match="columns"):
        rubric_totals(cm, np.zeros((2, 3)))
    no_data = rubric_totals(cm, np.full((1, len(cm.rubrics) + len(cm.facts)), np.nan))
    assert no_data.tolist() == [cm.no_data_score]
