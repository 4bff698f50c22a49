"""No look-ahead: data dated after a snapshot changes nothing at that snapshot, for the scorer (default and
calibrated models), calibrate's feature builder, and the backtest's scoring."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from churn_synth import write_workspace
from extractors.models import Account, UsageRow
from memory.workspace import load_workspace
from scoring.backtest import model_scores
from memory.scoring_inputs import inputs_from_workspace
from scoring.batch import score_inputs
from scoring.calibrate import TrainingData, calibrate, candidates_for, feature_matrix
from scoring.model import default_model
from scoring.snapshots import Snapshot, build_snapshots
from scoring.columns import columns_from_usage, read_metric

AS_OF = (date(2023, 5, 1), date(2023, 8, 15), date(2023, 11, 30))


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    ws = load_workspace(write_workspace(tmp_path_factory.mktemp("full") / "ws"))
    data = TrainingData.from_rows(ws.accounts, ws.usage, ws.outcomes, source="synthetic")
    snaps = build_snapshots(data.accounts, data.outcomes, horizon=60, every=14, start=data.first_usage_day)
    return calibrate(data, snaps, base=default_model(), horizon=60, every=14, folds=2).model


def _truncated_and_full(tmp_path: Path, d: date):  # type: ignore[no-untyped-def]
    full = load_workspace(write_workspace(tmp_path / "full"))
    cut = load_workspace(write_workspace(tmp_path / f"cut-{d}", until=d))
    return full, cut


def _snapshots_at(ws, d: date) -> list[Snapshot]:  # type: ignore[no-untyped-def]
    # the accounts active at d by the truncated view (what the harness scores)
    return [Snapshot(a, d, 0, 0) for a, acc in sorted(ws.accounts.items()) if acc.start_date <= d < acc.end_date]


@pytest.mark.parametrize("d", AS_OF)
def test_scores_identical_with_future_rows(tmp_path: Path, d: date, calibrated) -> None:  # type: ignore[no-untyped-def]
    full, cut = _truncated_and_full(tmp_path, d)
    for model in (default_model(), calibrated):
        a = {r.account_id: r for r in score_inputs(inputs_from_workspace(full), model, [d]) if r.account_id in cut.accounts}
        b = {r.account_id: r for r in score_inputs(inputs_from_workspace(cut), model, [d])}
        assert set(a) == set(b) and b
        for aid in b:
            ha, hb = a[aid].to_health_score(), b[aid].to_health_score()
            assert ha.score == hb.score, (model.id, aid)
            assert [(c.key, c.points) for c in ha.contributions] == [(c.key, c.points) for c in hb.contributions]
            assert ha.inputs_digest == hb.inputs_digest


@pytest.mark.parametrize("d", AS_OF)
def test_feature_builder_ignores_future_rows(tmp_path: Path, d: date) -> None:
    full, cut = _truncated_and_full(tmp_path, d)
    df = TrainingData.from_rows(full.accounts, full.usage, full.outcomes)
    dc = TrainingData.from_rows(cut.accounts, cut.usage, cut.outcomes)
    snaps = _snapshots_at(cut, d)
    cands = candidates_for(df.metrics)
    xf = feature_matrix(df, snaps, cands)
    xc = feature_matrix(dc, snaps, cands)
    assert np.array_equal(xf, xc, equal_nan=True)
    assert not np.isnan(xf).all()


@pytest.mark.parametrize("d", AS_OF[1:])
def test_backtest_scores_ignore_future_rows(tmp_path: Path, d: date, calibrated) -> None:  # type: ignore[no-untyped-def]
    full, cut = _truncated_and_full(tmp_path, d)
    snaps = _snapshots_at(cut, d)
    a = model_scores(inputs_from_workspace(full), calibrated, snaps)
    b = model_scores(inputs_from_workspace(cut), calibrated, snaps)
    assert a == b and all(v is not None for v in a)


def test_future_only_rows_read_like_no_rows() -> None:
    """A metric whose only rows are after as-of must read exactly as if it had no rows (every transform)."""
    d = date(2023, 3, 1)
    future = [UsageRow("a", d + timedelta(days=5), "logins", 3.0), UsageRow("a", d + timedelta(days=9), "seats", 4.0)]
    with_cols, without_cols = columns_from_usage(future, ["a"]), columns_from_usage([], ["a"])
    start = [d - timedelta(days=40)]
    for transform, agg, den, dagg in [("count", "sum", None, None), ("level", "count", None, None),
                                      ("days_since_last", "sum", None, None), ("ratio", "count", "seats", "count"),
                                      ("level", "mean", None, None), ("trend", "mean", None, None)]:
        ok1, v1 = read_metric(with_cols, ["a"], d, "logins", transform, 30, agg, den, start, dagg)
        ok2, v2 = read_metric(without_cols, ["a"], d, "logins", transform, 30, agg, den, start, dagg)
        assert bool(ok1[0]) == bool(ok2[0]) and (not ok1[0] or v1[0] == v2[0]), transform


def test_new_metric_in_the_future_changes_nothing() -> None:
    """A metric first reported after as-of (by this account) is not 'reported' at as-of."""
    from scoring.scorer import score

    acc = Account(account_id="a", start_date=date(2023, 1, 1), end_date=date(2024, 1, 1))
    past = [UsageRow("a", date(2023, 2, 1), "logins", 5.0)]
    fut = past + [UsageRow("a", date(2023, 6, 1), "brand_new_metric", 1.0)]
    m = default_model()
    assert score([], past, acc, m, date(2023, 3, 1)).score == score([], fut, acc, m, date(2023, 3, 1)).score
