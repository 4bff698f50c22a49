"""The vectorised totals (scoring/fast.py) are exactly the one-account scorer's, for every transform."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from extractors.models import Account, UsageRow
from memory.workspace import Workspace, load_workspace
from scoring.batch import inputs_from_workspace, score_inputs, score_totals
from scoring.fast import build_columns, fast_totals, map_values
from scoring.model import default_model, parse_model
from scoring.scorer import score
from scoring.usage import account_usage, metrics_as_of

FIXTURE = Path(__file__).parent / "fixtures" / "workspace_small"


def _every_transform_model():  # type: ignore[no-untyped-def]
    base = default_model().model_dump(mode="json")
    lin = {"points": [[-50, 0], [0, 40], [10, 70], [100, 100]]}
    down = {"points": [[0, 100], [10, 60], [90, 0]]}
    metrics = [
        {"metric": "a", "transform": "level", "aggregate": agg, "window_days": 30, "category": "adoption",
         "weight": 1 + i * 0.25, "map": lin, "name": f"lvl_{agg}"}
        for i, agg in enumerate(("mean", "sum", "last", "max", "min", "count"))
    ] + [
        {"metric": "a", "transform": "trend", "window_days": 60, "category": "adoption", "weight": 1.5, "map": lin},
        {"metric": "b", "transform": "change", "aggregate": "sum", "window_days": 21, "category": "outcome",
         "weight": 1, "map": lin},
        {"metric": "b", "transform": "change", "aggregate": "mean", "window_days": 14, "category": "outcome",
         "weight": 0.7, "map": lin, "name": "mean"},
        {"metric": "b", "transform": "change", "aggregate": "count", "window_days": 30, "category": "outcome",
         "weight": 0.3, "map": lin, "name": "count"},
        {"metric": "b", "transform": "days_since_last", "window_days": 30, "category": "relationship",
         "weight": 1, "map": down},
        {"metric": "c", "transform": "count", "window_days": 45, "category": "relationship", "weight": 1,
         "map": lin, "missing": 33.0},
        {"metric": "a", "transform": "ratio", "denominator": "seats", "window_days": 30, "category": "adoption",
         "weight": 2, "map": lin},
        {"metric": "c", "transform": "ratio", "denominator": "due", "denominator_aggregate": "count",
         "aggregate": "count", "window_days": 60, "category": "outcome", "weight": 1, "map": lin, "missing": 20.0},
        {"metric": "c", "transform": "ratio", "denominator": "due", "denominator_aggregate": "sum",
         "aggregate": "max", "window_days": 90, "category": "risk", "weight": 0.5, "map": down, "name": "mx"},
        {"metric": "never", "transform": "level", "window_days": 30, "category": "risk", "weight": 1, "map": lin,
         "missing": 80.0},
        {"metric": "zero_w", "transform": "level", "window_days": 30, "category": "risk", "weight": 0, "map": lin},
    ]
    facts = [
        {"fact": "days_to_renewal", "category": "risk", "weight": 0.5, "needs_other_data": True,
         "map": {"points": [[0, 40], [30, 50], [90, 65], [180, 75]]}},
        {"fact": "tenure_days", "category": "relationship", "weight": 0.5,
         "map": {"points": [[0, 20], [365, 80]]}},
    ]
    return parse_model({
        **base, "id": "every", "metrics": metrics, "facts": facts,
        "unknown_metrics": {"enabled": True, "transform": "days_since_last", "window_days": 30, "category": "adoption",
                            "weight": 0.5, "max_metrics": 2, "map": {"points": [[0, 90], [30, 50], [120, 10]]}},
        "profiles": {"smb": {"categories": {"adoption": {"weight": 45}}, "signal_defaults": {"saturation": 2}},
                     "big": {"categories": {"risk": {"weight": 0}, "outcome": {"weight": 50}}}},
    })


def _generated(seed: int, n: int = 120) -> tuple[dict[str, Account], list[UsageRow]]:
    rnd = random.Random(seed)
    t0 = date(2024, 1, 1)
    accounts: dict[str, Account] = {}
    rows: list[UsageRow] = []
    for i in range(n):
        aid = f"g{i:03d}"
        start = t0 + timedelta(days=rnd.randint(-200, 250)) if rnd.random() < 0.85 else None
        end = t0 + timedelta(days=rnd.randint(100, 700)) if rnd.random() < 0.8 else None
        accounts[aid] = Account(account_id=aid, start_date=start, end_date=end,
                                segment=rnd.choice([None, None, "smb", "big", "other"]))
        if i % 11 == 0:
            continue  # no usage at all
        for m in rnd.sample(["a", "b", "c", "seats", "due", "x1", "x2", "x3", "zero_w"], rnd.randint(1, 8)):
            every = rnd.choice([1, 3, 7, 14, 30])
            first = rnd.randint(-100, 300)
            for d in range(first, first + rnd.randint(1, 400), every):
                if rnd.random() < 0.15:
                    continue
                v = rnd.choice([0.0, 0.0, 1.0, 2.5, -3.0, float(rnd.randint(0, 40)), rnd.uniform(-5, 50)])
                rows.append(UsageRow(aid, t0 + timedelta(days=d), m, v))
                if rnd.random() < 0.05:  # two rows on one day
                    rows.append(UsageRow(aid, t0 + timedelta(days=d), m, rnd.uniform(0, 9)))
    rnd.shuffle(rows)
    return accounts, rows


DATES = [date(2023, 11, 1), date(2024, 1, 15), date(2024, 3, 1), date(2024, 5, 20), date(2024, 9, 30),
         date(2025, 3, 1)]


@pytest.mark.parametrize("which", ["every", "default"])
def test_fast_totals_equal_the_scorer_on_a_generated_workspace(which: str) -> None:
    model = _every_transform_model() if which == "every" else default_model()
    accounts, rows = _generated(17 if which == "every" else 4)
    inputs = inputs_from_workspace(Workspace(root=Path("."), accounts=accounts, usage=rows))
    fast = fast_totals(inputs, model, DATES, inputs.accounts)
    slow = [(r.as_of.toordinal(), r.account_id, r.total_h)
            for r in score_inputs(inputs, model, DATES, digest=False)]
    assert fast == slow
    assert len({t for _, _, t in fast}) > 20  # the scores really vary
    # and the pure one-account scorer, on a sample (nothing dated after as-of counts)
    by_account: dict[str, list[UsageRow]] = {}
    for r in rows:
        by_account.setdefault(r.account_id, []).append(r)
    got = {(o, a): t for o, a, t in fast}
    for aid in sorted(accounts)[::7]:
        for d in DATES:
            if (d.toordinal(), aid) not in got:
                assert accounts[aid].start_date is not None and accounts[aid].start_date > d
                continue
            expected = metrics_as_of(inputs.metric_first_day, d)
            hs = score([], account_usage(by_account.get(aid, [])), accounts[aid], model, d,
                       expected_metrics=expected)
            assert round(hs.score * 100) == got[(d.toordinal(), aid)], (aid, d)


def test_future_rows_change_nothing() -> None:
    model = _every_transform_model()
    accounts, rows = _generated(23, 60)
    cut = date(2024, 4, 1)
    full = inputs_from_workspace(Workspace(root=Path("."), accounts=accounts, usage=rows))
    past = inputs_from_workspace(Workspace(root=Path("."), accounts=accounts,
                                           usage=[r for r in rows if r.date <= cut]))
    assert fast_totals(full, model, [cut], accounts) == fast_totals(past, model, [cut], accounts)


def test_score_totals_uses_both_paths_on_the_fixture_workspace() -> None:
    ws = load_workspace(FIXTURE)
    inputs = inputs_from_workspace(ws)
    assert inputs.documents, "the fixture has documents: those accounts take the scorer's path"
    model = default_model()
    dates = [date(2024, 1, 1), date(2024, 3, 15), date(2024, 6, 1), date(2024, 9, 1)]
    got = score_totals(inputs, model, dates, workers=1)
    want = [(r.as_of, r.account_id, r.total_h / 100) for r in score_inputs(inputs, model, dates, digest=False)]
    assert got == want
    plain = [a for a in inputs.accounts if not inputs.documents.get(a) and not inputs.signals.get(a)]
    if plain:
        want_plain = [(r.as_of.toordinal(), r.account_id, r.total_h)
                      for r in score_inputs(inputs, model, dates, digest=False, account_ids=plain)]
        assert fast_totals(inputs, model, dates, plain) == want_plain
    with pytest.raises(ValueError, match="documents or signals"):
        fast_totals(inputs, model, dates, [next(iter(inputs.documents))])


def test_map_values_is_the_model_map() -> None:
    pm = _every_transform_model().metrics[0].map
    xs = np.array([-1e9, -50, -49.999, -3.3, 0, 1e-12, 5, 10, 10.5, 99.9, 100, 1e9, np.nan])
    assert map_values(pm, xs).tolist()[:-1] == [pm(float(x)) for x in xs[:-1]]
    assert map_values(pm, xs)[-1] == pm(float("nan"))


def test_columns_keep_the_series_prefix_sums() -> None:
    accounts, rows = _generated(2, 10)
    inputs = inputs_from_workspace(Workspace(root=Path("."), accounts=accounts, usage=rows))
    cols = build_columns(inputs.usage)
    aid = next(a for a in inputs.usage if inputs.usage[a])
    m, s = next(iter(inputs.usage[aid].items()))
    sid = cols.sid_of[cols.account_row[aid], cols.metric_index[m]]
    p = cols.pstart[sid]
    assert cols.s_xy[p : p + len(s.s_xy)].tolist() == s.s_xy
    assert cols.last_pos[p : p + len(s.last_pos)].tolist() == s.last_pos
