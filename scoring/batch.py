"""Scoring many accounts at many dates fast, from a workspace folder or the stored memory.

Usage is grouped by account and metric once (sorted arrays with prefix sums, bisect per window), the model is
compiled once per segment, and results stay plain tuples until a caller asks for a :class:`HealthScore`
(snapshots, full JSON). Reading inputs is I/O; :func:`score_inputs` is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractors.errors import HealthtraceError
from extractors.models import Account, Signal, SourceDocument
from scoring.alerts import AlertEvent, compare
from scoring.facts import document_facts
from scoring.model import ScoringModel
from scoring.scorer import Compiled, Result, compile_model, compute
from scoring.usage import Series, first_days, group_usage, metrics_as_of

if TYPE_CHECKING:
    from memory.ledger import Ledger
    from memory.workspace import Workspace

MAX_DATES = 400


@dataclass
class Inputs:
    """Everything the scorer reads, grouped once for all dates."""

    accounts: dict[str, Account]
    usage: dict[str, dict[str, Series]]
    signals: dict[str, list[Signal]] = field(default_factory=dict)
    documents: dict[str, list[SourceDocument]] = field(default_factory=dict)
    metric_first_day: dict[str, int] = field(default_factory=dict)
    vendor_domains: tuple[str, ...] = ()
    unresponsive_days: int = 14  # metadata extractor: days without a customer reply (HEALTHTRACE_UNRESPONSIVE_DAYS)
    problems: list[str] = field(default_factory=list)
    extractor_versions: dict[str, str] = field(default_factory=dict)
    # all usage as numpy columns (scoring.fast.UsageColumns) when read by inputs_for_totals; ``usage`` then
    # holds only the accounts that also have documents or signals
    columns: Any = None


def _metadata_extractor(settings: object | None) -> object | None:
    """The metadata extractor (unresponsive customers, meeting changes) when that module exists."""
    from extractors.base import get_extractor

    try:
        return get_extractor("metadata")
    except (ImportError, HealthtraceError):
        return None


def _account_metadata(inputs: Inputs) -> Any:
    """The metadata extractor configured for these inputs, or None when it is unavailable."""
    try:
        from extractors.metadata import MetadataExtractor
    except ImportError:
        return None
    return MetadataExtractor(unresponsive_days=inputs.unresponsive_days, vendor_domains=inputs.vendor_domains)


def extract_documents(
    files: dict[str, list[Path]],
    *,
    max_bytes: int,
    extractor: str = "rules",
    on_error: Callable[[str], None] | None = None,
) -> tuple[dict[str, list[SourceDocument]], dict[str, list[Signal]], dict[str, str]]:
    """Parse each account's documents and extract cited signals (rules + metadata). Bad files are reported."""
    from extractors.base import get_extractor
    from extractors.parsers import load_document

    ex = get_extractor(extractor)
    extra = _metadata_extractor(None)
    versions = {ex.name: ex.version}
    if extra is not None:
        versions[extra.name] = extra.version  # type: ignore[attr-defined]
    docs: dict[str, list[SourceDocument]] = {}
    sigs: dict[str, list[Signal]] = {}
    for aid, paths in files.items():
        for p in paths:
            try:
                doc = load_document(str(p), account_id=aid, max_bytes=max_bytes)
                found = list(ex.extract(doc))
                if extra is not None:
                    found.extend(extra.extract(doc))  # type: ignore[attr-defined]
            except HealthtraceError as e:
                if on_error is not None:
                    on_error(f"{p}: {e}")
                continue
            docs.setdefault(aid, []).append(doc)
            for s in found:
                if s.account_id != aid:
                    s = s.model_copy(update={"account_id": aid})
                if s.occurred_at is None and doc.occurred_at is not None:
                    s = s.model_copy(update={"occurred_at": doc.occurred_at})
                sigs.setdefault(aid, []).append(s)
    return docs, sigs, versions


def _workspace_documents(
    ws: Workspace, *, max_bytes: int, extractor: str
) -> tuple[list[str], dict[str, list[SourceDocument]], dict[str, list[Signal]], dict[str, str]]:
    """(problems, documents, signals, extractor versions) of a workspace; a bad file becomes a problem line."""
    problems = [str(p) for p in ws.problems]
    if not ws.documents:
        return problems, {}, {}, {}
    docs, sigs, versions = extract_documents(ws.documents, max_bytes=max_bytes, extractor=extractor,
                                             on_error=problems.append)
    return problems, docs, sigs, versions


def inputs_from_workspace(
    ws: Workspace, *, max_bytes: int = 20 * 1024 * 1024, extractor: str = "rules", vendor_domains: Sequence[str] = ()
) -> Inputs:
    problems, docs, sigs, versions = _workspace_documents(ws, max_bytes=max_bytes, extractor=extractor)
    starts = {a: acc.start_date for a, acc in ws.accounts.items()}
    return Inputs(
        accounts=ws.accounts,
        usage=group_usage(ws.usage),
        signals=sigs,
        documents=docs,
        metric_first_day=first_days(ws.usage, starts),
        vendor_domains=tuple(vendor_domains),
        problems=problems,
        extractor_versions=versions,
    )


def inputs_for_totals(
    root: Path, *, max_rows: int, max_bytes: int = 20 * 1024 * 1024, extractor: str = "rules",
    vendor_domains: Sequence[str] = (), block_chars: int = 1 << 24,
) -> Inputs | None:
    """A workspace read for totals only (``score --format jsonl``): usage.csv goes straight into columns.

    Returns None when usage.csv has malformed rows, so the caller reads it with :func:`inputs_from_workspace`,
    which reports each one. Accounts with documents also get grouped series for the scorer's own path.
    """
    from memory.workspace import load_workspace
    from scoring.fast import first_days_of, read_usage_csv, series_of

    ws = load_workspace(root, max_rows=max_rows, with_usage=False)
    ids = list(ws.accounts)
    usage_path = Path(root) / "usage.csv"
    if usage_path.exists():
        cols = read_usage_csv(usage_path, ids, max_rows, block_chars=block_chars)
        if cols is None:
            return None
    else:
        import numpy as np

        from scoring.fast import columns_from_rows

        empty = np.zeros(0, dtype=np.int64)
        cols = columns_from_rows(empty, empty, empty, np.zeros(0), ids, [])
    problems, docs, sigs, versions = _workspace_documents(ws, max_bytes=max_bytes, extractor=extractor)
    rich = {a for a in ids if docs.get(a) or sigs.get(a)}
    return Inputs(
        accounts=ws.accounts,
        usage={a: series_of(cols, a) for a in sorted(rich)},
        signals=sigs,
        documents=docs,
        metric_first_day=first_days_of(cols, ids, {a: acc.start_date for a, acc in ws.accounts.items()}),
        vendor_domains=tuple(vendor_domains),
        problems=problems,
        extractor_versions=versions,
        columns=cols,
    )


def inputs_from_ledger(ledger: Ledger, *, tenant: str = "default", vendor_domains: Sequence[str] = (),
                       until: date | None = None) -> Inputs:
    """The stored memory: accounts, verified signals, usage and documents (only what is dated by ``until``)."""
    accounts = {a.account_id: a for a in ledger.list_accounts(tenant)}
    rows = []
    sigs: dict[str, list[Signal]] = {}
    docs: dict[str, list[SourceDocument]] = {}
    for aid in sorted(accounts):
        rows.extend(ledger.usage_for(aid, until=until, tenant=tenant))
        found = ledger.signals_for(aid, until=until, verified_only=True, tenant=tenant)
        if found:
            sigs[aid] = found
        d = ledger.documents_for(aid, tenant)
        if d:
            docs[aid] = d
    starts = {a: acc.start_date for a, acc in accounts.items()}
    versions = sorted({(s.extractor, s.extractor_version) for ss in sigs.values() for s in ss})
    return Inputs(accounts=accounts, usage=group_usage(rows), signals=sigs, documents=docs,
                  metric_first_day=first_days(rows, starts), vendor_domains=tuple(vendor_domains),
                  extractor_versions=dict(versions))


def score_inputs(
    inputs: Inputs,
    model: ScoringModel,
    dates: Sequence[date],
    *,
    digest: bool = True,
    account_ids: Iterable[str] | None = None,
) -> Iterator[Result]:
    """Results per date, then per account (sorted). Accounts that start after a date are not scored for it."""
    if not dates:
        return
    if len(dates) > MAX_DATES:
        raise HealthtraceError(f"{len(dates)} as-of dates given; the limit is {MAX_DATES}")
    compiled: dict[str | None, tuple[Compiled, bool]] = {}
    ids = sorted(inputs.accounts if account_ids is None else account_ids)
    empty: dict[str, Series] = {}
    base_hash = model.content_hash
    meta = _account_metadata(inputs)
    for d in sorted(set(dates)):
        expected = metrics_as_of(inputs.metric_first_day, d)
        for aid in ids:
            acc = inputs.accounts[aid]
            if acc.start_date is not None and acc.start_date > d:
                continue
            hit = compiled.get(acc.segment)
            if hit is None:
                seg_model = model.for_segment(acc.segment)
                hit = compiled[acc.segment] = (compile_model(seg_model), seg_model is not model)
            cm, profiled = hit
            docs = inputs.documents.get(aid)
            facts = None
            undated = 0
            if docs:
                facts, undated = document_facts(docs, d, vendor_domains=inputs.vendor_domains)
            signals: Sequence[Signal] = inputs.signals.get(aid, ())
            if docs and meta is not None:
                # Silence is relative to the scoring date: account-level metadata signals are recomputed as of
                # each date from the documents known then, replacing whatever was derived at extraction time.
                signals = [s for s in signals if s.extractor != meta.name] + meta.extract_account(docs, as_of=d)
            res = compute(signals, inputs.usage.get(aid, empty), acc, cm, d, facts=facts,
                          expected_metrics=expected, digest=digest)
            if undated:
                res.notes.append(f"{undated} undated document(s) left out of the contact facts")
            if profiled:  # the snapshot names the model file (its hash); the note names the profile
                res.model_hash = base_hash
                res.notes.append(f"segment profile {acc.segment!r} of model {model.id} applied")
            yield res


def store_results(
    ledger: Ledger,
    results: Iterable[Result],
    *,
    drop_points: float,
    extractor_versions: dict[str, str] | None = None,
    tenant: str = "default",
    batch: int = 2000,
) -> tuple[int, list[AlertEvent]]:
    """Save snapshots and raise alerts against each account's previous snapshot. Returns (saved, new alerts)."""
    saved = 0
    raised: list[AlertEvent] = []
    buf = []
    ordered = sorted(results, key=lambda r: (r.account_id, r.as_of))
    prev_by: dict[str, object] = {}
    for r in ordered:
        hs = r.to_health_score()
        prev = prev_by.get(r.account_id)
        if prev is None:
            prev = ledger.snapshot_at(r.account_id, date.fromordinal(r.as_of.toordinal() - 1), model_id=r.model_id,
                                      tenant=tenant)
        for ev in compare(prev, hs, drop_points=drop_points):  # type: ignore[arg-type]
            if ledger.add_event(ev.kind, ev.account_id, ev.payload, occurred_at=ev.occurred_at,
                                dedupe_key=ev.dedupe_key, tenant=tenant):
                raised.append(ev)
        prev_by[r.account_id] = hs
        buf.append(hs)
        if len(buf) >= batch:
            saved += ledger.save_snapshots(buf, extractor_versions=extractor_versions, tenant=tenant)
            buf = []
    if buf:
        saved += ledger.save_snapshots(buf, extractor_versions=extractor_versions, tenant=tenant)
    return saved, raised


# ----------------------------------------------------------------------------------------- bulk signal rescoring
@dataclass
class SignalArrays:
    """Many accounts' signals as columns (no pydantic objects): the bulk rescoring input.

    ``account`` indexes accounts 0..n-1; ``type`` indexes :data:`extractors.models.taxonomy` names in sorted
    order (:func:`type_index`); ``day`` is the signal's day ordinal; ``rank`` breaks ties between equally strong
    signals of one type exactly as the scorer does with signal ids (pass the ids' sort order).
    Only verified, dated, non-negated signals belong here (filter at the edge, as ``compute`` does).
    """

    account: Any
    type: Any
    day: Any
    severity: Any
    hedged: Any
    rank: Any


def type_index() -> list[str]:
    from extractors.models import taxonomy

    return sorted(taxonomy())


def rescore_signals(cm: Compiled, n_accounts: int, sig: SignalArrays, as_of: date) -> Any:
    """Totals in hundredths for accounts whose data is signals only (plus neutral baselines), vectorised.

    Bit-for-bit the same arithmetic as :func:`scoring.scorer.compute` for such accounts (decay factors come
    from a table built with Python's own ``**``; sums run in the scorer's order), so a bulk rescore and a
    one-account score never disagree. Returns an int64 array of ``n_accounts`` totals.
    """
    import numpy as np

    from extractors.models import CATEGORIES

    types = type_index()
    a = as_of.toordinal()
    n_types = len(types)
    cat_of = np.full(n_types, -1, dtype=np.int64)
    points = np.zeros(n_types)
    sev_scale = np.zeros(n_types)
    max_age = cm.max_age
    decay = np.zeros((n_types, max_age + 1))
    for i, t in enumerate(types):
        rule = cm.signals.get(t)
        if rule is None:
            continue
        p, hl, ss, cat = rule
        cat_of[i] = CATEGORIES.index(cat)
        points[i] = p
        sev_scale[i] = ss
        decay[i] = [0.5 ** (age / hl) for age in range(max_age + 1)]
    age = a - np.asarray(sig.day, dtype=np.int64)
    typ = np.asarray(sig.type, dtype=np.int64)
    keep = (age >= 0) & (age <= max_age) & (cat_of[typ] >= 0)
    acc = np.asarray(sig.account, dtype=np.int64)[keep]
    typ = typ[keep]
    age = age[keep]
    sev = np.asarray(sig.severity, dtype=np.float64)[keep]
    hedged = np.asarray(sig.hedged, dtype=bool)[keep]
    rank = np.asarray(sig.rank)[keep]
    raw = points[typ] * decay[typ, age] * (1.0 + sev_scale[typ] * (2.0 * sev - 1.0))
    raw = np.where(hedged, raw * cm.hedged_factor, raw)
    cat = cat_of[typ]
    # the scorer's order: account, category, type name, strongest first, then id. One stable sort on an integer
    # group key (cheap: input is usually grouped by account) puts each (account, type) group together in id
    # order; the strength rank inside the small groups comes from pairwise comparisons, not a float sort.
    if len(rank) > 1 and not bool(np.all(rank[1:] > rank[:-1])):
        by_id = np.argsort(rank, kind="stable")
        acc, typ, cat, raw = acc[by_id], typ[by_id], cat[by_id], raw[by_id]
    slot = np.empty(n_types, dtype=np.int64)  # type position in (category, name) order
    slot[np.lexsort((np.arange(n_types), cat_of))] = np.arange(n_types)
    group_key = acc * n_types + slot[typ]
    order = np.argsort(group_key, kind="stable")
    acc, cat, raw, group_key = acc[order], cat[order], raw[order], group_key[order]
    gfirst = _run_starts(group_key)
    k = _strength_rank(np.abs(raw), gfirst)
    delta = raw / (1.0 + cm.saturation * k)
    # position in the account's category sequence: signals of earlier types of the category, then k
    cpos = gfirst - _run_starts(acc * len(CATEGORIES) + cat) + k

    n_cat = len(CATEGORIES)
    has = np.zeros((n_accounts, n_cat), dtype=bool)
    has[acc, cat] = True
    weights = [cm.weights[c] for c in CATEGORIES]
    wsum = np.zeros(n_accounts)
    for ci in range(n_cat):
        wsum = wsum + np.where(has[:, ci], weights[ci], 0.0)
    safe = np.where(wsum > 0, wsum, 1.0)
    total = np.zeros(n_accounts, dtype=np.int64)
    for ci, c in enumerate(CATEGORIES):
        ew = weights[ci] / safe  # per account
        on = has[:, ci]
        neutral = cm.neutral[c]
        cat_h = np.where(on, np.rint(ew * neutral * 100), 0).astype(np.int64)
        sub = np.full(n_accounts, float(neutral))
        sel = np.flatnonzero(cat == ci)
        if len(sel):
            sa = acc[sel]
            sd = delta[sel]
            h = np.rint(ew[sa] * sd * 100)
            cat_h += np.bincount(sa, weights=h, minlength=n_accounts).astype(np.int64)  # exact: small integers
            # sequential float sums per account, in the scorer's order: position j of every account at once
            pos = cpos[sel]
            small = pos.max() < 65536  # a 16-bit key sorts by radix, in linear time
            by_pos = np.argsort(pos.astype(np.uint16) if small else pos, kind="stable")
            bounds = np.searchsorted(pos[by_pos], np.arange(int(pos.max()) + 2))
            for j in range(len(bounds) - 1):
                idx = by_pos[bounds[j] : bounds[j + 1]]  # one signal per account: no repeated index
                sub[sa[idx]] += sd[idx]
        clamped = np.minimum(100.0, np.maximum(0.0, sub))
        fix = on & (clamped != sub)
        cat_h = np.where(fix, np.rint(ew * clamped * 100).astype(np.int64), cat_h)
        total += cat_h
    no_data = wsum <= 0
    total = np.where(no_data, round(cm.model.no_data_score * 100), np.clip(total, 0, 10000))
    return total


def _run_starts(key: Any) -> Any:
    """For each element of a grouped array, the index where its run of equal keys starts."""
    import numpy as np

    m = len(key)
    first = np.ones(m, dtype=bool)
    if m:
        first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    return np.repeat(starts, np.diff(np.append(starts, m)))


def _strength_rank(strength: Any, gfirst: Any) -> Any:
    """Rank of each element in its run (runs given by start index), strongest first, ties by position.

    Pass d compares every element with the one d places later in the same run, so the work is the sum of the
    squared run sizes (runs are an account's signals of one type: small), with no float sort.
    """
    import numpy as np

    m = len(strength)
    k = np.zeros(m, dtype=np.int64)
    if not m:
        return k
    first = np.flatnonzero(gfirst == np.arange(m))
    size = np.diff(np.append(first, m))
    run_size = np.repeat(size, size)
    local = np.arange(m) - gfirst
    active = np.flatnonzero(run_size > 1)
    d = 1
    while len(active):
        active = active[local[active] + d < run_size[active]]
        if not len(active):
            break
        later = active + d
        si, sl = strength[active], strength[later]
        k[active] += sl > si  # a later one (higher id) outranks only when strictly stronger
        k[later] += si >= sl  # an earlier one outranks on a tie
        d += 1
    return k


# ----------------------------------------------------------------------------------------- parallel totals
_PARALLEL: dict[str, Any] = {}
PARALLEL_MIN_RESULTS = 40_000


def _totals_worker(chunk: int) -> list[tuple[int, str, int]]:
    inputs, model, dates, chunks = _PARALLEL["job"]
    return [(r.as_of.toordinal(), r.account_id, r.total_h)
            for r in score_inputs(inputs, model, dates, digest=False, account_ids=chunks[chunk])]


def score_totals(
    inputs: Inputs, model: ScoringModel, dates: Sequence[date], *, workers: int = 1,
    account_ids: Iterable[str] | None = None,
) -> list[tuple[date, str, float]]:
    """(as_of, account, score) in :func:`score_inputs` order, the same numbers, fast.

    Accounts with only usage and contract dates are scored column-wise for all accounts at once
    (:func:`scoring.fast.fast_totals`, bit-for-bit the scorer's arithmetic); accounts with documents or signals
    go through :func:`score_inputs`, split over forked worker processes when there are many of them (inherited
    by fork, nothing is pickled but the totals). Platforms without fork run in-process.
    """
    from scoring.fast import fast_totals

    ids = sorted(inputs.accounts if account_ids is None else account_ids)
    rich = [a for a in ids if inputs.documents.get(a) or inputs.signals.get(a)]
    rich_set = set(rich)
    plain = [a for a in ids if a not in rich_set] if rich else ids
    merged = fast_totals(inputs, model, dates, plain) if plain else []
    if rich:
        merged.extend(_rich_totals(inputs, model, dates, rich, workers))
        merged.sort(key=lambda x: (x[0], x[1]))
    return [(date.fromordinal(o), aid, h / 100) for o, aid, h in merged]


def write_totals_jsonl(out: Any, totals: Iterable[tuple[date, str, float]], model_id: str, model_version: str) -> int:
    """The contract's jsonl lines, byte for byte what ``json.dumps(record, ensure_ascii=False)`` writes.

    Account ids and dates are encoded once each (not once per line), which matters at 100k+ lines.
    """
    import json

    from extractors.models import tier_for

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


def _rich_totals(inputs: Inputs, model: ScoringModel, dates: Sequence[date], ids: list[str],
                 workers: int) -> list[tuple[int, str, int]]:
    import multiprocessing as mp
    import os

    n = len(ids) * len(set(dates))
    if workers <= 1 or n < PARALLEL_MIN_RESULTS or "fork" not in mp.get_all_start_methods():
        return [(r.as_of.toordinal(), r.account_id, r.total_h)
                for r in score_inputs(inputs, model, dates, digest=False, account_ids=ids)]
    workers = min(workers, os.cpu_count() or 1, 32)
    step = -(-len(ids) // (workers * 4))  # a few chunks per worker evens out uneven accounts
    chunks = [ids[i : i + step] for i in range(0, len(ids), step)]
    _PARALLEL["job"] = (inputs, model, dates, chunks)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_totals_worker, range(len(chunks)))
    finally:
        _PARALLEL.pop("job", None)
    return [row for part in parts for row in part]
