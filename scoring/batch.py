"""Scoring many accounts at many dates through the one engine (:func:`scoring.engine.score_batch`).

Pure: the readers in :mod:`memory.scoring_inputs` hand over an :class:`Inputs` (usage columns, signals,
documents as domain objects); accounts are grouped by segment (one compiled model each) and scored as one batch
per date. Totals-only runs skip the explanations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any


from extractors.errors import HealthtraceError
from extractors.models import Account, Signal, SourceDocument, tier_for
from scoring.columns import UsageColumns, empty_columns, metrics_as_of
from scoring.engine import AccountScore, BatchInputs, CompiledModel, compile_model, score_batch, signal_batch
from scoring.facts import Fact, document_facts
from scoring.model import ScoringModel

MAX_DATES = 400
# Re-derives account-level signals (silence, sponsor disengagement) from the documents known as of a date.
DeriveSignals = Callable[[list[SourceDocument], date], list[Signal]]


@dataclass
class Inputs:
    """Everything the engine reads, prepared once for all dates."""

    accounts: dict[str, Account]
    usage: UsageColumns | None = None
    signals: dict[str, list[Signal]] = field(default_factory=dict)
    documents: dict[str, list[SourceDocument]] = field(default_factory=dict)
    metric_first_day: dict[str, int] = field(default_factory=dict)
    vendor_domains: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)
    extractor_versions: dict[str, str] = field(default_factory=dict)
    # set by the reader when an extractor derives account-level signals: its name and the function
    derived_by: str | None = None
    derive: DeriveSignals | None = None
    # how the raw metric names were read (scoring.metrics.MetricMapping), None when read as they are
    metric_mapping: Any = None


def _prepare(inputs: Inputs, ids: Sequence[str], d: date, cm: CompiledModel
             ) -> tuple[BatchInputs, list[list[str]]]:
    accounts = [inputs.accounts[a] for a in ids]
    per_signals: list[list[Signal]] = []
    facts: list[dict[str, Fact] | None] = []
    extra: list[list[str]] = []
    any_facts = False
    for aid in ids:
        sigs: list[Signal] = list(inputs.signals.get(aid, ()))
        docs = inputs.documents.get(aid)
        notes: list[str] = []
        f = None
        if docs:
            f, undated = document_facts(docs, d, vendor_domains=inputs.vendor_domains)
            any_facts = True
            if undated:
                notes.append(f"{undated} undated document(s) left out of the contact facts")
            if inputs.derive is not None:
                # silence is relative to the scoring date: account-level signals are derived again as of each date
                sigs = [s for s in sigs if s.extractor != inputs.derived_by] + inputs.derive(docs, d)
        per_signals.append(sigs)
        facts.append(f)
        extra.append(notes)
    sb, notes = signal_batch(per_signals, cm, d)
    merged = [a + b for a, b in zip(notes, extra)]
    cols = inputs.usage if inputs.usage is not None else empty_columns(list(ids))
    expected = metrics_as_of(inputs.metric_first_day, d)
    return BatchInputs(accounts, cols, sb if len(sb.account) else None, facts if any_facts else None, expected,
                       merged), merged


def _unused_note(mm: Any) -> str | None:
    """One note naming the workspace's metrics that do not count (each reason: ``healthtrace metrics check``)."""
    if mm is None:
        return None
    names = mm.unused()
    if not names:
        return None
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return (f"metric(s) not used: {', '.join(names[:8])}{more} (see healthtrace metrics check for why)")


def _groups(inputs: Inputs, model: ScoringModel, ids: Sequence[str], d: date
            ) -> Iterator[tuple[list[str], CompiledModel, bool]]:
    """Accounts that had started by ``d``, by segment: (ids, compiled segment model, profiled)."""
    by_seg: dict[str | None, list[str]] = {}
    for aid in ids:
        acc = inputs.accounts[aid]
        if acc.start_date is not None and acc.start_date > d:
            continue  # accounts that start after a date are not scored for it
        by_seg.setdefault(acc.segment, []).append(aid)
    for seg, members in by_seg.items():
        seg_model = model.for_segment(seg)
        yield members, compile_model(seg_model), seg_model is not model


def score_inputs(
    inputs: Inputs,
    model: ScoringModel,
    dates: Sequence[date],
    *,
    digest: bool = True,
    account_ids: Iterable[str] | None = None,
) -> Iterator[AccountScore]:
    """Explained scores per date, then per account (sorted). Accounts that start after a date are skipped."""
    if not dates:
        return
    if len(dates) > MAX_DATES:
        raise HealthtraceError(f"{len(dates)} as-of dates given; the limit is {MAX_DATES}")
    ids = sorted(inputs.accounts if account_ids is None else account_ids)
    for d in sorted(set(dates)):
        found: list[AccountScore] = []
        for members, cm, profiled in _groups(inputs, model, ids, d):
            batch, _ = _prepare(inputs, members, d, cm)
            res = score_batch(batch, cm, d, explain=True, digest=digest)
            assert res.accounts is not None
            unused = _unused_note(inputs.metric_mapping)
            for r in res.accounts:
                if unused:
                    r.notes.append(unused)
                if profiled:  # the snapshot names the model file (its hash); the note names the profile
                    r.model_hash = model.content_hash
                    r.notes.append(f"segment profile {inputs.accounts[r.account_id].segment!r} of model "
                                   f"{model.id} applied")
            found.extend(res.accounts)
        found.sort(key=lambda r: r.account_id)
        yield from found


def score_totals(
    inputs: Inputs, model: ScoringModel, dates: Sequence[date], *, workers: int = 1,
    account_ids: Iterable[str] | None = None,
) -> list[tuple[date, str, float]]:
    """(as_of, account, score) in :func:`score_inputs` order, the same numbers, without explanations.

    With ``workers`` > 1 and many accounts with documents or signals (per-account work: document facts and
    signal preparation), account chunks are scored in forked worker processes; elsewhere in-process."""
    if len(dates) > MAX_DATES:
        raise HealthtraceError(f"{len(dates)} as-of dates given; the limit is {MAX_DATES}")
    ids = sorted(inputs.accounts if account_ids is None else account_ids)
    rich = sum(1 for a in ids if inputs.documents.get(a) or inputs.signals.get(a))
    if workers > 1 and rich * len(set(dates)) >= PARALLEL_MIN_RESULTS:
        rows = _parallel_totals(inputs, model, dates, ids, workers)
    else:
        rows = _totals(inputs, model, dates, ids)
    return [(date.fromordinal(o), aid, h / 100) for o, aid, h in rows]


def _totals(inputs: Inputs, model: ScoringModel, dates: Sequence[date], ids: Sequence[str]
            ) -> list[tuple[int, str, int]]:
    out: list[tuple[int, str, int]] = []
    for d in sorted(set(dates)):
        part: list[tuple[int, str, int]] = []
        for members, cm, _ in _groups(inputs, model, ids, d):
            batch, _ = _prepare(inputs, members, d, cm)
            res = score_batch(batch, cm, d)
            part.extend(zip([d.toordinal()] * len(members), members, res.totals.tolist()))
        part.sort(key=lambda x: x[1])
        out.extend(part)
    return out


# ----------------------------------------------------------------------------------------- parallel totals
_PARALLEL: dict[str, Any] = {}
PARALLEL_MIN_RESULTS = 40_000


def _totals_worker(chunk: int) -> list[tuple[int, str, int]]:
    inputs, model, dates, chunks = _PARALLEL["job"]
    return _totals(inputs, model, dates, chunks[chunk])


def _parallel_totals(inputs: Inputs, model: ScoringModel, dates: Sequence[date], ids: list[str],
                     workers: int) -> list[tuple[int, str, int]]:
    import multiprocessing as mp
    import os

    if "fork" not in mp.get_all_start_methods():
        return _totals(inputs, model, dates, ids)
    workers = min(workers, os.cpu_count() or 1, 32)
    step = -(-len(ids) // (workers * 4))  # a few chunks per worker evens out uneven accounts
    chunks = [ids[i : i + step] for i in range(0, len(ids), step)]
    _PARALLEL["job"] = (inputs, model, dates, chunks)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_totals_worker, range(len(chunks)))
    finally:
        _PARALLEL.pop("job", None)
    rows = [row for part in parts for row in part]
    rows.sort(key=lambda x: (x[0], x[1]))
    return rows


def write_totals_jsonl(out: Any, totals: Iterable[tuple[date, str, float]], model_id: str, model_version: str) -> int:
    """The contract's jsonl lines, byte for byte what ``json.dumps(record, ensure_ascii=False)`` writes.

    Account ids and dates are encoded once each (not once per line), which matters at 100k+ lines.
    """
    import json

    dumps = json.dumps
    tail = f', "model_id": {dumps(model_id, ensure_ascii=False)}, "model_version": ' \
           f'{dumps(model_version, ensure_ascii=False)}}}\n'
    tiers = {t: f', "tier": {dumps(t)}' for t in ("Healthy", "Attention", "At Risk", "Critical")}
    ids: dict[str, str] = {}
    days: dict[date, str] = {}
    buf: list[str] = []
    n = 0
    for d, aid, value in totals:
        a = ids.get(aid)
        if a is None:
            a = ids[aid] = '{"account_id": ' + dumps(aid, ensure_ascii=False)
        day = days.get(d)
        if day is None:
            day = days[d] = f', "as_of": "{d.isoformat()}", "score": '
        buf.append(a + day + repr(value) + tiers[tier_for(value)] + tail)
        n += 1
        if len(buf) >= 10_000:
            out.write("".join(buf))
            buf = []
    out.write("".join(buf))
    return n


def type_index() -> list[str]:
    """Signal type names in the order the engine indexes them (:attr:`CompiledModel.types`)."""
    from extractors.models import taxonomy

    return sorted(taxonomy())


__all__ = ["Inputs", "MAX_DATES", "score_inputs", "score_totals", "type_index", "write_totals_jsonl"]
