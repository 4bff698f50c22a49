"""Readers that hand the scoring engine its inputs: a workspace folder or the stored memory.

I/O lives here (files, extractor runs, the ledger); :mod:`scoring` gets domain objects and numpy columns
(:class:`scoring.batch.Inputs`) and stays pure. ``store_results`` writes scores back as snapshots and alerts.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.errors import HealthtraceError
from extractors.models import HealthScore, Signal, SourceDocument, UsageRow
from memory.sides import vendor_domains as vendor_domains_for
from memory.workspace import Workspace, load_workspace, parse_day
from scoring.alerts import AlertEvent, compare
from scoring.batch import Inputs
from scoring.columns import UsageColumns, columns_from_rows, columns_from_usage, empty_columns, first_days, first_days_of

if TYPE_CHECKING:
    from memory.ledger import Ledger
    from scoring.metrics import MappingFile, MetricMapping
    from scoring.model import ScoringModel


def map_usage_rows(rows: Sequence[UsageRow], model: ScoringModel | None, mapping_file: MappingFile | None
                   ) -> tuple[list[UsageRow], MetricMapping | None]:
    """Usage rows read through the metric mapping for ``model`` (export names to canonical, units converted,
    unused metrics left out); without a model the rows stay as they are."""
    if model is None:
        return list(rows), None
    from scoring.metrics import resolve_for_model, stats_of_rows

    mm = resolve_for_model(stats_of_rows(rows), model, mapping_file)
    if mm.is_identity():
        return list(rows), mm
    return mm.apply_rows(rows, lambda r, name, v: UsageRow(r[0], r[1], name, v)), mm


def _metadata(unresponsive_days: int, vendor_domains: Sequence[str], inferred: bool = False) -> Any:
    """The metadata extractor (silence, sponsor disengagement, new stakeholders), or None when unavailable."""
    try:
        from extractors.metadata import MetadataExtractor
    except ImportError:
        return None
    return MetadataExtractor(unresponsive_days=unresponsive_days, vendor_domains=tuple(vendor_domains),
                             vendor_inferred=inferred)


def _with_derive(inputs: Inputs, unresponsive_days: int, *, inferred: bool = False) -> Inputs:
    if not inputs.vendor_domains and len(inputs.documents) > 1:  # not configured: once across all accounts
        from extractors.metadata import infer_vendor_domains

        inputs.vendor_domains = infer_vendor_domains(inputs.documents)
        inferred = bool(inputs.vendor_domains)
    meta = _metadata(unresponsive_days, inputs.vendor_domains, inferred)
    if meta is not None:
        inputs.derived_by = meta.name
        inputs.derive = lambda docs, d: meta.extract_account(docs, as_of=d)
    return inputs


def extract_documents(
    files: dict[str, list[Path]],
    *,
    max_bytes: int,
    extractor: str = "offline",
    on_error: Callable[[str], None] | None = None,
) -> tuple[dict[str, list[SourceDocument]], dict[str, list[Signal]], dict[str, str]]:
    """Parse each account's documents and extract cited signals (chosen extractor + metadata)."""
    from extractors.base import get_extractor
    from extractors.parsers import load_document

    ex = get_extractor(extractor)
    try:
        extra: Any = get_extractor("metadata")
    except (ImportError, HealthtraceError):
        extra = None
    versions = {ex.name: ex.version}
    if extra is not None:
        versions[extra.name] = extra.version
    docs: dict[str, list[SourceDocument]] = {}
    sigs: dict[str, list[Signal]] = {}
    for aid, paths in files.items():
        for p in paths:
            try:
                doc = load_document(str(p), account_id=aid, max_bytes=max_bytes)
                found = list(ex.extract(doc))
                if extra is not None:
                    found.extend(extra.extract(doc))
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
    problems = [str(p) for p in ws.problems]
    if not ws.documents:
        return problems, {}, {}, {}
    docs, sigs, versions = extract_documents(ws.documents, max_bytes=max_bytes, extractor=extractor,
                                             on_error=problems.append)
    return problems, docs, sigs, versions


def inputs_from_workspace(
    ws: Workspace, *, max_bytes: int = 20 * 1024 * 1024, extractor: str = "offline", vendor_domains: Sequence[str] = (),
    unresponsive_days: int = 14, model: ScoringModel | None = None, mapping_file: MappingFile | None = None,
) -> Inputs:
    """A loaded workspace, its documents parsed and extracted (a bad file becomes a problem line).

    With ``model`` the usage is read through the metric mapping (the workspace's ``metrics.yaml`` unless
    ``mapping_file`` is given, then the built-in aliases and unit detection)."""
    problems, docs, sigs, versions = _workspace_documents(ws, max_bytes=max_bytes, extractor=extractor)
    ids = list(ws.accounts)
    starts = {a: acc.start_date for a, acc in ws.accounts.items()}
    if model is not None and mapping_file is None:
        from memory.metric_files import workspace_mapping

        mapping_file = workspace_mapping(ws.root)
    usage, mm = map_usage_rows(ws.usage, model, mapping_file)
    return _with_derive(Inputs(
        accounts=ws.accounts, usage=columns_from_usage(usage, ids), signals=sigs, documents=docs,
        metric_first_day=first_days(usage, starts), vendor_domains=tuple(vendor_domains) or ws.vendor_domains,
        problems=problems,
        extractor_versions=versions, metric_mapping=mm,
    ), unresponsive_days)


def inputs_for_totals(
    root: Path, *, max_rows: int, max_bytes: int = 20 * 1024 * 1024, extractor: str = "offline",
    vendor_domains: Sequence[str] = (), block_chars: int = 1 << 24, unresponsive_days: int = 14,
    model: ScoringModel | None = None, mapping_file: MappingFile | None = None,
) -> Inputs | None:
    """A workspace read for totals only (``score --format jsonl``): usage.csv goes straight into columns.

    Returns None when usage.csv has malformed rows, so the caller reads it with :func:`inputs_from_workspace`,
    which reports each one."""
    ws = load_workspace(root, max_rows=max_rows, with_usage=False)
    ids = list(ws.accounts)
    usage_path = Path(root) / "usage.csv"
    mm = None
    if model is not None and mapping_file is None:
        from memory.metric_files import workspace_mapping

        mapping_file = workspace_mapping(root)
    if usage_path.exists():
        got = read_usage_csv(usage_path, ids, max_rows, block_chars=block_chars, model=model,
                             mapping_file=mapping_file)
        if got is None:
            return None
        cols, mm = got if isinstance(got, tuple) else (got, None)
    else:
        cols = empty_columns(ids)
    problems, docs, sigs, versions = _workspace_documents(ws, max_bytes=max_bytes, extractor=extractor)
    return _with_derive(Inputs(
        accounts=ws.accounts, usage=cols, signals=sigs, documents=docs,
        metric_first_day=first_days_of(cols, ids, {a: acc.start_date for a, acc in ws.accounts.items()}),
        vendor_domains=tuple(vendor_domains) or ws.vendor_domains, problems=problems, extractor_versions=versions, metric_mapping=mm,
    ), unresponsive_days)


def inputs_from_ledger(ledger: Ledger, *, tenant: str = "default", vendor_domains: Sequence[str] = (),
                       until: date | None = None, account_ids: Iterable[str] | None = None,
                       unresponsive_days: int = 14, model: ScoringModel | None = None,
                       mapping_file: MappingFile | None = None) -> Inputs:
    """The stored memory: accounts, verified signals, usage and documents (only what is dated by ``until``)."""
    accounts = {a.account_id: a for a in ledger.list_accounts(tenant)}
    if account_ids is not None:
        wanted = set(account_ids)
        accounts = {a: acc for a, acc in accounts.items() if a in wanted}
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
    rows, mm = map_usage_rows(rows, model, mapping_file)
    return _with_derive(Inputs(accounts=accounts, usage=columns_from_usage(rows, sorted(accounts)), signals=sigs,
                               documents=docs, metric_first_day=first_days(rows, starts),
                               vendor_domains=tuple(vendor_domains), extractor_versions=dict(versions),
                               metric_mapping=mm),
                        unresponsive_days)


def store_results(
    ledger: Ledger,
    results: Iterable[Any],
    *,
    drop_points: float,
    extractor_versions: dict[str, str] | None = None,
    tenant: str = "default",
    batch: int = 2000,
) -> tuple[int, list[AlertEvent]]:
    """Save snapshots and raise alerts against each account's previous snapshot. Returns (saved, new alerts)."""
    saved = 0
    raised: list[AlertEvent] = []
    buf: list[HealthScore] = []
    ordered = sorted(results, key=lambda r: (r.account_id, r.as_of))
    prev_by: dict[str, HealthScore | None] = {}
    for r in ordered:
        hs = r.to_health_score()
        prev = prev_by.get(r.account_id)
        if prev is None:
            prev = ledger.snapshot_at(r.account_id, date.fromordinal(r.as_of.toordinal() - 1), model_id=r.model_id,
                                      tenant=tenant)
        for ev in compare(prev, hs, drop_points=drop_points):
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


def read_usage_csv(path: Path, account_ids: Sequence[str], max_rows: int,
                   block_chars: int = 1 << 24, model: ScoringModel | None = None,
                   mapping_file: MappingFile | None = None) -> UsageColumns | tuple[UsageColumns, Any] | None:
    """``usage.csv`` straight into columns, or None when the file is not plain and clean.

    Plain: no quotes, no blank lines, ``\n`` or ``\r\n`` line ends, the header's number of fields on every
    line; clean: every account known, every date, number and metric name valid. That is what exports look like,
    and such a file splits into fields with ``str.split`` (no Python object per row besides its strings, so no
    garbage-collector churn). Anything else returns None and the caller reads the file with
    :func:`load_workspace`, which handles quoting and reports each bad row with its line.
    With ``model``: (columns read through the metric mapping, the mapping).
    """
    index = {a: i for i, a in enumerate(account_ids)}
    days: dict[str, int] = {}
    metrics: dict[str, int] = {}
    metric_names: list[str] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    seen = 0
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        head = f.readline()
        if '"' in head:
            return None
        header = [h.strip() for h in next(csv.reader([head]), [])]
        try:
            ia, idate, im, iv = (header.index(c) for c in ("account_id", "date", "metric", "value"))
        except ValueError:
            return None
        width = len(header)
        rest = ""
        while True:
            block = f.read(block_chars)
            text = rest + block
            if not block:
                rest = ""
            else:
                cut = text.rfind("\n") + 1
                text, rest = text[:cut], text[cut:]
            if text:
                text = text.replace("\r\n", "\n")
                if text.endswith("\n"):
                    text = text[:-1]
                if '"' in text or "\r" in text or "\n\n" in text or text.startswith("\n") or not text:
                    return None
                lines = text.split("\n")
                if set(map(str.count, lines, repeat(","))) != {width - 1}:
                    return None
                seen += len(lines)
                if seen > max_rows:  # the workspace reader reports the rows past the bound
                    return None
                fields = text.replace("\n", ",").split(",")
                n = len(lines)
                a = np.fromiter(map(index.get, fields[ia::width], repeat(-1)), dtype=np.int64, count=n)
                if (a < 0).any():
                    return None
                raw_days = fields[idate::width]
                for raw in set(raw_days) - days.keys():
                    try:
                        days[raw] = parse_day(raw).toordinal()
                    except (ValueError, OverflowError, TypeError):
                        return None
                raw_metrics = fields[im::width]
                for raw in set(raw_metrics) - metrics.keys():
                    name = raw.strip()
                    if not name or len(name) > 100:
                        return None
                    if name not in metric_names:
                        metric_names.append(name)
                    metrics[raw] = metric_names.index(name)
                try:
                    v = np.fromiter(map(float, fields[iv::width]), dtype=np.float64, count=n)
                except ValueError:
                    return None
                if not np.isfinite(v).all():
                    return None
                d = np.fromiter(map(days.__getitem__, raw_days), dtype=np.int64, count=n)
                mt = np.fromiter(map(metrics.__getitem__, raw_metrics), dtype=np.int64, count=n)
                parts.append((a, d, mt, v))
            if not block:
                break
    order = sorted(range(len(metric_names)), key=metric_names.__getitem__)
    remap = np.empty(len(metric_names), dtype=np.int64)
    remap[order] = np.arange(len(metric_names))
    if parts:
        acc, day, met, val = (np.concatenate([p[i] for p in parts]) for i in range(4))
        met = remap[met]
    else:
        acc = day = met = np.zeros(0, dtype=np.int64)
        val = np.zeros(0)
    names = [metric_names[i] for i in order]
    if model is None:
        return columns_from_rows(acc, day, met, val, list(account_ids), names)
    return mapped_columns(acc, day, met, val, account_ids, names, model, mapping_file)


def mapped_columns(acc: np.ndarray, day: np.ndarray, met: np.ndarray, val: np.ndarray, account_ids: Sequence[str],
                   names: Sequence[str], model: ScoringModel, mapping_file: MappingFile | None
                   ) -> tuple[UsageColumns, MetricMapping]:
    """Usage row arrays read through the metric mapping for ``model`` (the array form of
    :func:`map_usage_rows`: the same decisions from the same statistics), then into columns."""
    from scoring.metrics import resolve_for_model, stats_of_arrays

    names = list(names)
    mm = resolve_for_model(stats_of_arrays(names, met, val), model, mapping_file)
    if not mm.is_identity():
        new_names, new_met, new_val, keep = mm.apply_arrays(names, met, val, acc)
        acc, day, met, val, names = acc[keep], day[keep], new_met[keep], new_val[keep], new_names
    return columns_from_rows(acc, day, met, val, list(account_ids), names), mm




def inputs_for_account(ledger: Ledger, account: Any, as_of: date, *, vendor_domains: Sequence[str] = (),
                       tenant: str = "default", rows: list[Any] | None = None,
                       unresponsive_days: int = 14, model: ScoringModel | None = None,
                       mapping_file: MappingFile | None = None) -> Inputs:
    """One account from the stored memory as of a date (``rows``: its usage when the caller has read it)."""
    aid = account.account_id
    if rows is None:
        rows = ledger.usage_for(aid, until=as_of, tenant=tenant)
    rows, mm = map_usage_rows(rows, model, mapping_file)
    signals = ledger.signals_for(aid, until=as_of, verified_only=True, tenant=tenant)
    docs = ledger.documents_for(aid, tenant)
    vendors, inferred = vendor_domains_for(ledger, vendor_domains, tenant)  # workspace-wide, never this account's
    return _with_derive(Inputs(
        accounts={aid: account}, usage=columns_from_usage(rows, [aid]),
        signals={aid: signals} if signals else {}, documents={aid: docs} if docs else {},
        metric_first_day=first_days(rows, {aid: account.start_date}), vendor_domains=vendors,
        metric_mapping=mm,
    ), unresponsive_days, inferred=inferred)


def account_view(inputs: Inputs, account_id: str, as_of: date) -> tuple[list[Signal], dict[str, Any] | None, set[str]]:
    """What the engine reads for one account on a date, for callers that score it one by one (what-if in the
    CLI and the API alike): its signals (account-level ones derived again then), its documents' facts and
    the metrics it was expected to report by then."""
    from scoring.columns import metrics_as_of
    from scoring.facts import document_facts

    docs = inputs.documents.get(account_id)
    facts = document_facts(docs, as_of, vendor_domains=inputs.vendor_domains)[0] if docs else None
    return signals_as_of(inputs, account_id, as_of), facts, set(metrics_as_of(inputs.metric_first_day, as_of))


def signals_as_of(inputs: Inputs, account_id: str, as_of: date) -> list[Signal]:
    """An account's signals as the engine sees them on a date (account-level signals derived again then)."""
    sigs = list(inputs.signals.get(account_id, ()))
    docs = inputs.documents.get(account_id)
    if docs and inputs.derive is not None:
        sigs = [s for s in sigs if s.extractor != inputs.derived_by] + inputs.derive(docs, as_of)
    return sigs


def latest_data_days(inputs: Inputs) -> dict[str, date]:
    """Per account, the day of its latest data (usage row, document or signal); accounts with none left out."""
    from scoring.columns import _BIG
    from scoring.engine import signal_day

    out: dict[str, int] = {}
    cols = inputs.usage
    if cols is not None and len(cols.key):
        series = cols.key // _BIG
        day = cols.key - series * _BIG
        last = np.full(len(cols.rstart), -1, dtype=np.int64)
        np.maximum.at(last, series, day)
        for aid, row in cols.account_row.items():
            sids = cols.sid_of[row]
            sids = sids[sids >= 0]
            if len(sids):
                out[aid] = int(last[sids].max())
    for aid, docs in inputs.documents.items():
        for d in docs:
            if d.occurred_at is not None:
                out[aid] = max(out.get(aid, 0), d.occurred_at.date().toordinal())
    for aid, sigs in inputs.signals.items():
        for s in sigs:
            d = signal_day(s)
            if d is not None:
                out[aid] = max(out.get(aid, 0), d.toordinal())
    return {a: date.fromordinal(o) for a, o in out.items() if a in inputs.accounts}


def score_latest(ledger: Ledger, model: Any, *, tenant: str = "default", vendor_domains: Sequence[str] = (),
                 unresponsive_days: int = 14, mapping_file: MappingFile | None = None,
                 drop_points: float = 10.0, account_ids: Iterable[str] | None = None) -> tuple[int, int, Any]:
    """Score every account of the tenant as of its latest data and store the snapshots (after an ingest, so the
    dashboard and the export never miss an account). Returns (accounts scored, new alerts, metric mapping)."""
    from scoring.batch import score_inputs

    inputs = inputs_from_ledger(ledger, tenant=tenant, vendor_domains=vendor_domains,
                                unresponsive_days=unresponsive_days, model=model, mapping_file=mapping_file,
                                account_ids=account_ids)
    by_day: dict[date, list[str]] = {}
    for aid, d in latest_data_days(inputs).items():
        acc = inputs.accounts[aid]
        if acc.start_date is not None and acc.start_date > d:
            d = acc.start_date
        by_day.setdefault(d, []).append(aid)
    results = []
    for d in sorted(by_day):
        results.extend(score_inputs(inputs, model, [d], account_ids=by_day[d]))
    saved, alerts = store_results(ledger, results, drop_points=drop_points,
                                  extractor_versions=inputs.extractor_versions, tenant=tenant)
    return len({r.account_id for r in results}), len(alerts), inputs.metric_mapping


# ----------------------------------------------------------------------------------------- bulk ledger reader
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _usage_columns_pg(ledger: Ledger, tenant: str, account_ids: Sequence[str], until: date | None,
                      model: ScoringModel | None = None, mapping_file: MappingFile | None = None
                      ) -> tuple[UsageColumns, MetricMapping | None]:
    """PostgreSQL: every usage row of the tenant in ONE binary COPY of fixed-width fields (account index, day,
    metric index, value), read straight into numpy: no Python object per row (10M rows in seconds)."""
    raw_conn = ledger.engine.raw_connection()
    try:
        cur = raw_conn.cursor()
        cur.execute("CREATE TEMP TABLE ht_bulk_accounts (account_id TEXT PRIMARY KEY, idx INT4) ON COMMIT DROP")
        with cur.copy("COPY ht_bulk_accounts (account_id, idx) FROM STDIN") as copy:
            for i, aid in enumerate(account_ids):
                copy.write_row((aid, i))
        cur.execute("SELECT DISTINCT metric FROM usage_points WHERE tenant = %s ORDER BY metric", (tenant,))
        metric_names = [r[0] for r in cur.fetchall()]
        cur.execute("CREATE TEMP TABLE ht_bulk_metrics (metric TEXT PRIMARY KEY, idx INT4) ON COMMIT DROP")
        with cur.copy("COPY ht_bulk_metrics (metric, idx) FROM STDIN") as copy:
            for i, m in enumerate(metric_names):
                copy.write_row((m, i))
        cur.execute("ANALYZE ht_bulk_accounts")  # real sizes: PostgreSQL then hash-joins 10M rows in one pass
        cur.execute("ANALYZE ht_bulk_metrics")
        where = "u.tenant = %s" + (" AND u.date <= %s" if until is not None else "")
        params: tuple[Any, ...] = (tenant, until) if until is not None else (tenant,)
        query = ("COPY (SELECT a.idx, (u.date - DATE '1970-01-01')::int4, m.idx, u.value::float8 "
                 "FROM usage_points u JOIN ht_bulk_accounts a ON a.account_id = u.account_id "
                 f"JOIN ht_bulk_metrics m ON m.metric = u.metric WHERE {where}) TO STDOUT (FORMAT binary)")
        chunks: list[bytes] = []
        with cur.copy(query, params) as copy:
            for block in copy:
                chunks.append(bytes(block))
        raw_conn.commit()
    finally:
        raw_conn.close()
    data = b"".join(chunks)
    del chunks
    header = 11 + 4 + 4  # signature, flags, header extension length (0)
    row = np.dtype([("n", ">i2"), ("la", ">i4"), ("a", ">i4"), ("ld", ">i4"), ("d", ">i4"), ("lm", ">i4"),
                    ("m", ">i4"), ("lv", ">i4"), ("v", ">f8")])
    body = data[header: len(data) - 2]  # the trailer is int16 -1
    if len(body) % row.itemsize:
        raise HealthtraceError("unexpected binary COPY layout from PostgreSQL (a NULL in usage_points?)")
    rec = np.frombuffer(body, dtype=row)
    acc = rec["a"].astype(np.int64)
    day = rec["d"].astype(np.int64) + _EPOCH_ORDINAL
    met = rec["m"].astype(np.int64)
    val = rec["v"].astype(np.float64)
    del rec, body, data
    if model is None:
        return columns_from_rows(acc, day, met, val, list(account_ids), metric_names), None
    return mapped_columns(acc, day, met, val, account_ids, metric_names, model, mapping_file)


def bulk_inputs_from_ledger(ledger: Ledger, *, tenant: str = "default", vendor_domains: Sequence[str] = (),
                            until: date | None = None, unresponsive_days: int = 14,
                            model: ScoringModel | None = None, mapping_file: MappingFile | None = None) -> Inputs:
    """The same inputs as :func:`inputs_from_ledger` for a whole tenant, in a few set-wise queries instead of
    three per account (a 100k-account portfolio): usage by binary COPY into columns on PostgreSQL (on a second
    thread: the database and numpy work while this one parses signals), verified signals (a CSM's rejected
    ones left out) and documents in one ordered query each. With ``model`` the usage is read through the
    tenant's metric mapping (``mapping_file``, aliases, units) exactly as the per-account readers read it."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import exists, nulls_first, select

    from memory.ledger import DocumentRow, SignalReviewRow, SignalRow

    accounts = {a.account_id: a for a in ledger.list_accounts(tenant)}
    ids = sorted(accounts)
    starts = {a: acc.start_date for a, acc in accounts.items()}

    def usage() -> tuple[UsageColumns, MetricMapping | None]:
        if ledger.dialect == "postgresql" and ids:
            return _usage_columns_pg(ledger, tenant, ids, until, model, mapping_file)
        rows = [r for aid in ids for r in ledger.usage_for(aid, until=until, tenant=tenant)]
        rows, mm = map_usage_rows(rows, model, mapping_file)
        return columns_from_usage(rows, ids), mm

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(usage)
        s = SignalRow.__table__
        payload = s.c.payload
        if ledger.dialect == "postgresql":  # the JSON text as stored: pydantic parses it faster than dicts
            from sqlalchemy import Text, cast

            payload = cast(s.c.payload, Text)
        rv = SignalReviewRow.__table__
        rejected = exists().where(rv.c.tenant == s.c.tenant, rv.c.signal_id == s.c.id, rv.c.verdict == "reject")
        q = select(s.c.account_id, payload).where(s.c.tenant == tenant, s.c.verified.is_(True), ~rejected)
        if until is not None:
            q = q.where(s.c.day <= until)
        q = q.order_by(s.c.account_id, nulls_first(s.c.day), s.c.id)  # per account: signals_for's order
        sigs: dict[str, list[Signal]] = {}
        with ledger.read() as conn:
            for aid, p in conn.execute(q):
                if aid in accounts:
                    sigs.setdefault(aid, []).append(
                        Signal.model_validate_json(p) if isinstance(p, str) else Signal.model_validate(p))
            d = DocumentRow.__table__
            dq = select(d).where(d.c.tenant == tenant).order_by(d.c.account_id, nulls_first(d.c.occurred_at),
                                                               d.c.path, d.c.version, d.c.id)
            docs: dict[str, list[SourceDocument]] = {}
            for r in conn.execute(dq):
                if r.account_id in accounts:
                    data = dict(r.payload)
                    data["text"] = r.text
                    docs.setdefault(r.account_id, []).append(SourceDocument.model_validate(data))
        cols, mm = pending.result()
    versions = sorted({(x.extractor, x.extractor_version) for ss in sigs.values() for x in ss})
    return _with_derive(Inputs(accounts=accounts, usage=cols, signals=sigs, documents=docs,
                               metric_first_day=first_days_of(cols, ids, starts),
                               vendor_domains=tuple(vendor_domains), extractor_versions=dict(versions),
                               metric_mapping=mm),
                        unresponsive_days)
