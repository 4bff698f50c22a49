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


def test_fast_totals_on_the_fixture_usage_without_documents() -> None:
    ws = load_workspace(FIXTURE, with_documents=False)
    inputs = inputs_from_workspace(ws)
    assert not inputs.documents and inputs.usage
    dates = [date(2023, 12, 1), date(2024, 3, 1), date(2024, 4, 15), date(2024, 6, 1), date(2025, 2, 1)]
    want = [(r.as_of.toordinal(), r.account_id, r.total_h) for r in score_inputs(inputs, default_model(), dates)]
    assert fast_totals(inputs, default_model(), dates, inputs.accounts) == want


# ----------------------------------------------------------------------------------------- reading CSV as columns
def _write_csv_ws(root: Path, accounts: dict[str, Account], rows: list[UsageRow], *, crlf: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    with (root / "accounts.csv").open("w", newline="") as f:
        f.write("account_id,name,start_date,end_date,segment\n")
        for a in accounts.values():
            f.write(f"{a.account_id},n,{a.start_date or ''},{a.end_date or ''},{a.segment or ''}\n")
    with (root / "usage.csv").open("w", newline="") as f:
        f.write("date,account_id,metric,value" + nl)  # columns in another order than usual
        for r in rows:
            f.write(f"{r.date.isoformat()},{r.account_id},{r.metric},{r.value!r}{nl}")
    return root


@pytest.mark.parametrize("crlf", [False, True])
def test_inputs_for_totals_read_the_same_workspace(tmp_path: Path, crlf: bool) -> None:
    from scoring.batch import inputs_for_totals

    accounts, rows = _generated(29, 80)
    root = _write_csv_ws(tmp_path / "ws", accounts, rows, crlf=crlf)
    quick = inputs_for_totals(root, max_rows=1_000_000, block_chars=4096)
    assert quick is not None and quick.columns is not None
    slow = inputs_from_workspace(load_workspace(root))
    assert quick.metric_first_day == slow.metric_first_day
    # every series' prefix sums are the scorer's own
    cols = quick.columns
    for aid, series in slow.usage.items():
        for m, s in series.items():
            sid = cols.sid_of[cols.account_row[aid], cols.metric_index[m]]
            p, r = cols.pstart[sid], cols.rstart[sid]
            n = len(s.days)
            assert (cols.key[r : r + n] % (1 << 22)).tolist() == s.days
            assert cols.values[r : r + n].tolist() == s.values
            for name in ("s_y", "s_x", "s_xx", "s_xy", "last_pos"):
                assert getattr(cols, name)[p : p + n + 1].tolist() == getattr(s, name), (aid, m, name)
    model = _every_transform_model()
    assert score_totals(quick, model, DATES) == score_totals(slow, model, DATES)


@pytest.mark.parametrize("bad", ["ghost,2024-01-01,a,1", "g001,not-a-date,a,1", "g001,2024-01-01,a,many",
                                 "g001,2024-01-01,a,inf", "g001,2024-01-01,,1", "g001,2024-01-01,a",
                                 'g001,2024-01-01,"a,b",1', "", "g001,2024-01-01,a,1,extra"])
def test_a_malformed_usage_file_takes_the_reporting_reader(tmp_path: Path, bad: str) -> None:
    from scoring.batch import inputs_for_totals

    root = tmp_path / "ws"
    root.mkdir()
    (root / "accounts.csv").write_text("account_id,start_date\ng001,2023-01-01\n")
    (root / "usage.csv").write_text(f"account_id,date,metric,value\ng001,2024-01-02,a,2\n{bad}\ng001,2024-01-03,a,3\n")
    assert inputs_for_totals(root, max_rows=100) is None


def test_score_cli_jsonl_is_the_scorer_line_for_line(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from api.cli import app

    accounts, rows = _generated(41, 50)
    accounts["Zoë \"q\""] = Account(account_id='Zoë "q"', start_date=date(2023, 1, 1))  # escaping in the output
    rows.append(UsageRow('Zoë "q"', date(2024, 2, 2), "a", 5.0))
    root = _write_csv_ws(tmp_path / "ws", {k: v for k, v in accounts.items() if '"' not in k}, rows[:-1])
    # the quoted id needs CSV quoting: append it with the csv module (the quick reader then steps aside)
    import csv

    with (root / "accounts.csv").open("a", newline="") as f:
        csv.writer(f).writerow(['Zoë "q"', "n", "2023-01-01", "", ""])
    args = ["score", "--workspace", str(root), "--format", "jsonl"] + [x for d in DATES for x in ("--as-of", str(d))]
    m = default_model()

    def want() -> list[str]:
        inputs = inputs_from_workspace(load_workspace(root))
        return [json.dumps({"account_id": x.account_id, "as_of": x.as_of.isoformat(), "score": x.total_h / 100,
                            "tier": x.tier, "model_id": m.id, "model_version": m.version}, ensure_ascii=False)
                for x in score_inputs(inputs, m, DATES, digest=False)]

    for step in ("columns", "row reader"):
        if step == "row reader":  # a quoted field in usage.csv: the quick reader steps aside
            with (root / "usage.csv").open("a", newline="") as f:
                csv.writer(f).writerow(['Zoë "q"', "2024-02-02", "a", "5.0"])
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        expected = want()
        assert [line for line in r.stdout.splitlines() if line.startswith("{")] == expected, step
        assert any("Zoë" in line for line in expected)


def test_write_totals_jsonl_matches_json_dumps() -> None:
    import io
    import json

    from scoring.batch import write_totals_jsonl

    totals = [(date(2024, 1, d), aid, v) for d in (1, 2) for aid, v in
              [("a", 0.0), ("ü\\\"x", 69.99), ("b", 70.0), ("c", 29.5), ("d", 100.0), ("e", 1e-2), ("f", 49.99)]]
    buf = io.StringIO()
    assert write_totals_jsonl(buf, totals, "m-1", "1.0") == len(totals)
    from extractors.models import tier_for

    want = "".join(json.dumps({"account_id": a, "as_of": d.isoformat(), "score": v, "tier": tier_for(v),
                               "model_id": "m-1", "model_version": "1.0"}, ensure_ascii=False) + "\n"
                   for d, a, v in totals)
    assert buf.getvalue() == want


# ----------------------------------------------------------------------------------------- bulk signal rescoring
def test_rescore_signals_with_ties_and_shuffled_ids() -> None:
    from datetime import datetime, timezone

    from extractors.models import Citation, Signal
    from scoring.batch import SignalArrays, rescore_signals, type_index
    from scoring.scorer import compile_model, compute

    rnd = random.Random(8)
    types = type_index()
    cm = compile_model(default_model())
    as_of = date(2024, 6, 1)
    accounts = [Account(account_id=f"t{i}") for i in range(80)]
    flat: list[tuple[int, Signal]] = []
    expected = []
    for i, acc in enumerate(accounts):
        sigs = []
        picked = rnd.sample(types, 2)
        for j in range(rnd.choice([0, 1, 5, 30, 90])):
            day = as_of - timedelta(days=rnd.choice([0, 0, 3, 40]))  # many equal ages...
            quote = f"q{j}"
            when = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            sigs.append(Signal(id=f"{rnd.randrange(10**9):09d}", account_id=acc.account_id, type=rnd.choice(picked),
                               severity=rnd.choice([0.5, 0.5, 0.9]), confidence=0.9, occurred_at=when,  # ...ties
                               hedged=rnd.random() < 0.3, extractor="t", extractor_version="1",
                               evidence=[Citation(source_id="d", start=0, end=len(quote), quote=quote)]))
        for s in sigs:  # each signal's source text is its quote
            c = s.evidence[0]
            text = c.quote
            assert text[c.start : c.end] == c.quote
        flat.extend((i, s) for s in sigs)
        expected.append(compute(sigs, {}, acc, cm, as_of, digest=False).total_h)
    rnd.shuffle(flat)  # input neither grouped by account nor in id order
    ids = [s.id for _, s in flat]
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(np.array(ids), kind="stable")] = np.arange(len(ids))
    arrays = SignalArrays(account=np.array([i for i, _ in flat]), type=np.array([types.index(s.type) for _, s in flat]),
                          day=np.array([s.occurred_at.date().toordinal() for _, s in flat]),  # type: ignore[union-attr]
                          severity=np.array([s.severity for _, s in flat]),
                          hedged=np.array([s.hedged for _, s in flat]),
                          rank=rank)
    assert rescore_signals(cm, len(accounts), arrays, as_of).tolist() == expected
    assert len(set(expected)) > 10


def test_rich_accounts_in_worker_processes_equal_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    import scoring.batch as batch

    inputs = inputs_from_workspace(load_workspace(FIXTURE))
    dates = [date(2024, 3, 15), date(2024, 6, 1)]
    serial = batch.score_totals(inputs, default_model(), dates, workers=1)
    monkeypatch.setattr(batch, "PARALLEL_MIN_RESULTS", 1)
    assert batch.score_totals(inputs, default_model(), dates, workers=2) == serial
