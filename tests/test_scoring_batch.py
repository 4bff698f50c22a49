"""A score does not depend on the batch it is computed in: many accounts at once, one at a time, totals only
or explained, in one process or several."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import numpy as np

from extractors.models import Account, Citation, Signal, UsageRow
from memory.scoring_inputs import inputs_from_workspace
from memory.workspace import Workspace
from scoring.batch import Inputs, score_inputs, score_totals
from scoring.engine import BatchInputs, SignalBatch, compile_model, score_batch
from scoring.model import default_model, parse_model
from scoring.scorer import score

AS_OF = date(2024, 6, 1)


def _signals(rnd: random.Random, aid: str, n: int, types: list[str]) -> tuple[str, list[Signal]]:
    text = ""
    out = []
    for i in range(n):
        quote = f"sentence {i} of {aid}"
        start = len(text)
        text += quote + " "
        day = AS_OF - timedelta(days=rnd.randint(-20, 800))
        when = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        out.append(Signal(account_id=aid, type=rnd.choice(types), severity=round(rnd.random(), 3), confidence=0.7,
                          occurred_at=when, hedged=rnd.random() < 0.2, extractor="t", extractor_version="1",
                          evidence=[Citation(source_id=f"d-{aid}", start=start, end=start + len(quote), quote=quote)]))
    for s in out:
        c = s.evidence[0]
        assert text[c.start : c.end] == c.quote
    return text, out


def test_bulk_signal_arrays_give_each_account_its_own_score() -> None:
    rnd = random.Random(11)
    for model in (default_model(), parse_model({**default_model().model_dump(mode="json"),
                                                "categories": {"adoption": {"weight": 0}, "relationship": {"weight": 10},
                                                               "outcome": {"weight": 0}, "risk": {"weight": 5}}})):
        cm = compile_model(model)
        types = cm.types
        accounts = [Account(account_id=f"acc{i}") for i in range(150)]
        all_sigs: list[tuple[int, Signal]] = []
        expected = []
        for i, acc in enumerate(accounts):
            # few types per account so that saturation and clamping happen
            _, sigs = _signals(rnd, acc.account_id, rnd.randint(0, 60), rnd.sample(types, 4))
            all_sigs.extend((i, s) for s in sigs if s.occurred_at.date() <= AS_OF)  # type: ignore[union-attr]
            expected.append(round(score(sigs, [], acc, model, AS_OF).score * 100))
        ids = np.array([s.id for _, s in all_sigs])
        rank = np.empty(len(ids), dtype=np.int64)
        rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
        arrays = SignalBatch(
            account=np.array([i for i, _ in all_sigs]),
            type=np.array([types.index(s.type) for _, s in all_sigs]),
            day=np.array([s.occurred_at.date().toordinal() for _, s in all_sigs]),  # type: ignore[union-attr]
            severity=np.array([s.severity for _, s in all_sigs]),
            hedged=np.array([s.hedged for _, s in all_sigs]),
            rank=rank,
            confidence=np.array([s.confidence for _, s in all_sigs]),
        )
        got = score_batch(BatchInputs(accounts, signals=arrays), cm, AS_OF).totals
        assert got.tolist() == expected


def test_batch_results_equal_single_account_scores() -> None:
    rnd = random.Random(3)
    accounts = {
        f"w{i}": Account(account_id=f"w{i}", start_date=date(2023, 1, 1), end_date=date(2024, 7, 1) + timedelta(days=30 * i),
                         segment=rnd.choice([None, "smb", "enterprise"]))
        for i in range(20)
    }
    rows = [UsageRow(aid, date(2024, 1, 1) + timedelta(days=d), m, rnd.uniform(0, 100))
            for aid in accounts for d in range(0, 200, 9) for m in ("active_users", "logins", "mystery")]
    ws = Workspace(root=__import__("pathlib").Path("."), accounts=accounts, usage=rows)
    inputs = inputs_from_workspace(ws)
    dates = [date(2024, 3, 1), AS_OF]
    model = default_model()
    results = {(r.account_id, r.as_of): r.to_health_score() for r in score_inputs(inputs, model, dates)}
    assert len(results) == 40
    for (aid, d), hs in results.items():
        mine = [r for r in rows if r.account_id == aid]
        single = score([], mine, accounts[aid], model, d, expected_metrics={"active_users", "logins", "mystery"})
        assert single.model_dump() == hs.model_dump()


def test_parallel_totals_equal_serial(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import scoring.batch as batch

    assert Inputs and score_totals  # the public names

    rnd = random.Random(5)
    accounts = {f"p{i}": Account(account_id=f"p{i}", start_date=date(2023, 6, 1) + timedelta(days=rnd.randint(0, 300)))
                for i in range(60)}
    rows = [UsageRow(aid, date(2023, 6, 1) + timedelta(days=d), "logins", rnd.uniform(0, 9))
            for aid in accounts for d in range(0, 400, rnd.randint(5, 30))]
    inputs = inputs_from_workspace(Workspace(root=__import__("pathlib").Path("."), accounts=accounts, usage=rows))
    inputs.signals = {aid: _signals(rnd, aid, 5, ["pricing_objection", "value_confirmed"])[1]
                      for aid in list(accounts)[::2]}
    dates = [date(2023, 9, 1), date(2024, 1, 1), AS_OF]
    serial = batch.score_totals(inputs, default_model(), dates, workers=1)
    monkeypatch.setattr(batch, "PARALLEL_MIN_RESULTS", 1)
    parallel = batch.score_totals(inputs, default_model(), dates, workers=2)
    assert parallel == serial
    assert serial == [(r.as_of, r.account_id, r.total_h / 100) for r in score_inputs(inputs, default_model(), dates)]
