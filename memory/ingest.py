"""Idempotent ingest of a workspace (or single files) into the ledger, then the vector memory.

Order of work, chosen so a crash at any point leaves a consistent store and a re-run completes it:
1. accounts, usage, outcomes: bulk ``INSERT ... ON CONFLICT DO NOTHING`` (re-runs add nothing);
2. per document: parse, extract, then document + signals + "extracted by X@version" in ONE transaction;
   documents already extracted by the same extractor version are reported as unchanged and skipped;
3. per account: the account-level metadata extractor, when its input (the account's document set) changed;
4. vectors: each committed document is embedded on a worker thread while the next ones are extracted
   (batched across documents, upserted by deterministic id, then marked ``indexed`` in the ledger); at the
   end, whatever the ledger still marks as not embedded (gaps from an interrupted run) is filled in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from extractors.errors import HealthtraceError, InputError, InputTooLargeError, NotFoundError
from extractors.models import Account, Signal, SourceDocument

from .ledger import DEFAULT_TENANT, Ledger
from .workspace import load_workspace

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IngestReport:
    accounts_changed: int = 0
    usage_added: int = 0
    usage_unchanged: int = 0
    outcomes_added: int = 0
    outcomes_unchanged: int = 0
    documents_added: int = 0
    documents_unchanged: int = 0
    documents_failed: int = 0
    signals_added: int = 0
    metadata_signals_added: int = 0
    metadata_signals_removed: int = 0
    chunks_embedded: int = 0
    signals_embedded: int = 0
    problems: list[str] = field(default_factory=list)  # bad rows: file:line: message
    failures: list[str] = field(default_factory=list)  # bad documents: path: problem
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # stored, but with a caveat (an undated file): path: why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> bool:
        return any((self.accounts_changed, self.usage_added, self.outcomes_added, self.documents_added,
                    self.signals_added, self.metadata_signals_added, self.metadata_signals_removed,
                    self.chunks_embedded, self.signals_embedded))


@dataclass(frozen=True)
class IngestOptions:
    extractor: str = "offline"
    vectors: bool = True
    tenant: str = DEFAULT_TENANT
    max_file_bytes: int = 20 * 1024 * 1024
    max_files: int = 200_000
    create_account: bool = False  # single files for an unknown account: create it (else refuse: a typo)
    metadata_options: dict[str, Any] = field(default_factory=dict)
    extractor_options: dict[str, Any] = field(default_factory=dict)  # e.g. the active extractor version's model_dir


# ----------------------------------------------------------------------------------------- parts
def _parse_file(path: Path, account_id: str, max_bytes: int) -> list[SourceDocument]:
    """One file -> its documents: an mbox is one per message, so each message is cited on its own."""
    from extractors.parsers import load_documents

    return load_documents(path, account_id=account_id, max_bytes=max_bytes)


def _metadata_extractor(options: dict[str, Any]) -> Any | None:
    """The account-level metadata extractor (a seam: tests swap it; ``None`` skips account-level signals)."""
    from extractors.metadata import MetadataExtractor

    try:
        return MetadataExtractor(**options)
    except TypeError:  # options meant for another version of the extractor: run it with its defaults
        return MetadataExtractor()


def _counter(progress: ProgressFn | None, stage: str, total: int) -> Callable[[int], None]:
    """Turns the indexers' "n more done" callbacks into (stage, done, total) progress reports."""
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(stage, done, total)

    return step


def _prepare_signals(doc: SourceDocument, signals: Iterable[Signal]) -> list[Signal]:
    out = []
    for s in signals:
        if s.account_id is None:
            s.account_id = doc.account_id
        if s.occurred_at is None and doc.occurred_at is not None:
            s.occurred_at = doc.occurred_at  # undated evidence takes the document's date
        out.append(s)
    return out


class Ingestor:
    """Runs one ingest against a ledger (and optionally a vector memory)."""

    def __init__(self, ledger: Ledger, options: IngestOptions, *, vectors: Any | None = None,
                 progress: ProgressFn | None = None) -> None:
        from extractors.base import get_extractor

        self.ledger = ledger
        self.options = options
        self.vectors = vectors if options.vectors else None
        self.progress = progress
        self.extractor = get_extractor(options.extractor, **options.extractor_options)
        self.report = IngestReport()
        self._meta = _metadata_extractor(options.metadata_options)
        if self._meta is None:
            self.report.notes.append("account-level metadata extractor not available: skipped")
        self._indexer: Any | None = None
        self._vendors_resolved = False
        self._stopped: str | None = None  # set when the extractor stopped a run (a dead LLM endpoint)

    def start_indexer(self, total: int = 0) -> None:
        """Embed documents on a worker thread while the next ones are extracted."""
        if self.vectors is None or self._indexer is not None:
            return
        from .vectors import BackgroundIndexer

        self._indexer = BackgroundIndexer(self.ledger, self.vectors, on_progress=_counter(self.progress, "embedding", total))

    # ------------------------------------------------------------------ documents
    def ingest_documents(self, account_id: str, files: Sequence[Path], *, done: int = 0, total: int = 0) -> int:
        """Parse, extract and record each file; returns the progress counter.

        Extractors with ``extract_many`` (the LLM one: batched, concurrent requests) get groups of documents;
        the others one document at a time. Either way each document commits in its own transaction."""
        ex = self.extractor
        rep = self.report
        batched = callable(getattr(ex, "extract_many", None))
        group = 32 if batched else 1
        # Parse every file first, then ask the ledger once which documents this extractor version has read.
        parsed: list[tuple[Path, list[SourceDocument]]] = []
        for path in files:
            try:
                docs = _parse_file(path, account_id, self.options.max_file_bytes)
                parsed.append((path, docs))
                if docs and all(d.occurred_at is None for d in docs):
                    self._warn_undated(path)
            except HealthtraceError as e:
                self._fail(path, e)
                parsed.append((path, []))
            except (ValueError, UnicodeError, RecursionError) as e:
                self._fail(path, e, bug=True)
                parsed.append((path, []))
        return self._extract_parsed(parsed, done=done, total=total)

    def ingest_parsed(self, docs: Sequence[SourceDocument]) -> None:
        """Documents already parsed (the HTTP API's texts and uploads): the same idempotency (skip what this
        extractor version has read), extractor and transaction per document as files get."""
        for d in docs:
            if d.occurred_at is None:
                self._warn_undated(Path(d.path or d.id))
        self._extract_parsed([(Path(d.path or d.id), [d]) for d in docs], total=len(docs))

    def _extract_parsed(self, parsed: list[tuple[Path, list[SourceDocument]]], *, done: int = 0, total: int = 0) -> int:
        ex = self.extractor
        rep = self.report
        batched = callable(getattr(ex, "extract_many", None))
        group = 32 if batched else 1
        seen = self.ledger.extracted(ex.name, ex.version, [d.id for _, docs in parsed for d in docs])
        pending: list[tuple[Path, SourceDocument]] = []
        for i, (path, docs) in enumerate(parsed):
            for doc in docs:
                if doc.id in seen:
                    rep.documents_unchanged += 1
                else:
                    pending.append((path, doc))
            if len(pending) >= group or (i == len(parsed) - 1 and pending):
                if batched and len(pending) > 1:
                    self._extract_many(pending)
                else:
                    for p, doc in pending:
                        try:
                            self._record(doc, ex.extract(doc))
                        except HealthtraceError as e:
                            self._fail(p, e)
                        except (ValueError, UnicodeError, RecursionError) as e:
                            self._fail(p, e, bug=True)
                pending = []
            done += 1
            if self.progress:
                self.progress("documents", done, total)
        return done

    def _extract_many(self, pending: list[tuple[Path, SourceDocument]]) -> None:
        paths = {id(doc): p for p, doc in pending}
        if self._stopped is not None:  # the endpoint was dead earlier in this run: don't ask again per group
            for p, _ in pending:
                self.report.documents_failed += 1
                self.report.failures.append(f"{p}: {self._stopped}")
            return
        results, failures = self.extractor.extract_many([d for _, d in pending])  # type: ignore[attr-defined]
        stopped = getattr(getattr(self.extractor, "last_run", None), "stopped", None)
        if stopped is not None:
            self._stopped = stopped
            self.report.notes.append(f"{stopped}; the documents not extracted stay pending for the next run")
        for r in results:
            self._record(r.doc, r.signals)
        for f in failures:
            self.report.documents_failed += 1
            self.report.failures.append(f"{paths.get(id(f.doc), f.doc.path or f.doc.id)}: {f.error}")

    def _record(self, doc: SourceDocument, signals: Iterable[Signal]) -> None:
        ex = self.extractor
        rep = self.report
        sigs = _prepare_signals(doc, signals)
        new, added = self.ledger.record_document(doc, sigs, extractor=ex.name, version=ex.version,
                                                 tenant=self.options.tenant)
        if new:
            rep.documents_added += 1
            if self._indexer is not None:
                self._indexer.submit(doc, sigs, self.options.tenant)
        else:  # stored meanwhile by a concurrent ingest (or known, read by another extractor)
            rep.documents_unchanged += 1
        rep.signals_added += added

    def _warn_undated(self, path: Path) -> None:
        """Once per file: its signals are stored but cannot be placed in time, so no score counts them."""
        msg = (f"{path}: undated: no date in its content (a Date:/NOTE line, header or message times) and no "
               "leading YYYY-MM-DD in its file name; its signals are stored but not scored")
        if msg not in self.report.warnings:
            log.info("%s", msg)
            self.report.warnings.append(msg)

    def _fail(self, path: Path, e: Exception, *, bug: bool = False) -> None:
        """A bad file is reported and skipped; nothing was committed for it, so the next run retries it.
        (``bug``: a parser/extractor error on one odd file must not abort a 10,000-file ingest.)"""
        if bug:
            log.debug("document %s failed", path, exc_info=True)
        self.report.documents_failed += 1
        msg = f"{e.__class__.__name__}: {e}" if bug else str(e)
        self.report.failures.append(msg if str(path) in msg else f"{path}: {msg}")

    def resolve_vendor_domains(self, workspace_domains: Sequence[str] = ()) -> None:
        """Which domains are ours, decided once per run for every account: configured (the metadata options,
        i.e. HEALTHTRACE_VENDOR_DOMAINS), else the workspace's vendor_domains.txt, else inferred across all
        the tenant's accounts in the ledger (a domain in many accounts' conversations is ours); never per
        account, where a customer who writes most of the mail would be taken for the vendor."""
        meta = self._meta
        if meta is None or self._vendors_resolved or not hasattr(meta, "vendor_domains"):
            return
        self._vendors_resolved = True
        if meta.vendor_domains:
            return
        if workspace_domains:
            meta.vendor_domains = tuple(workspace_domains)
            return
        from .sides import inferred_vendor_domains

        inferred = inferred_vendor_domains(self.ledger, self.options.tenant)
        if inferred:
            meta.vendor_domains, meta.vendor_inferred = inferred, True
            self.report.notes.append(f"vendor domains inferred across the workspace's accounts: {', '.join(inferred)} "
                                     "(set HEALTHTRACE_VENDOR_DOMAINS or vendor_domains.txt to fix them)")
        else:
            self.report.warnings.append("vendor domains unknown (set HEALTHTRACE_VENDOR_DOMAINS=your.domain or write "
                                        "vendor_domains.txt in the workspace): silence and sponsor signals skipped")

    def run_metadata(self, account_id: str) -> None:
        """Account-level signals (silence, sponsor gone quiet ...) from the account's whole document set,
        recomputed only when that set changed."""
        meta = self._meta
        if meta is None:
            return
        self.resolve_vendor_domains()
        name = getattr(meta, "name", "metadata")
        version = getattr(meta, "version", "0")
        digest = self.ledger.digest_documents(account_id, self.options.tenant)
        vendors = ",".join(getattr(meta, "vendor_domains", ()) or ())
        if vendors or getattr(meta, "vendor_inferred", False):  # other sides, other signals: recompute
            digest = hashlib.sha256(f"{digest}|{vendors}|{getattr(meta, 'vendor_inferred', False)}".encode()).hexdigest()
        subject = f"account:{self.options.tenant}:{account_id}"
        if self.ledger.extracted(name, version, [subject]).get(subject) == digest:
            return
        docs = self.ledger.documents_for(account_id, self.options.tenant)
        try:
            # as_of None = the newest document's date (never the clock), so a re-run is deterministic
            signals = list(meta.extract_account(docs, None)) if docs else []
        except (HealthtraceError, ValueError) as e:
            self.report.failures.append(f"metadata extractor on account {account_id}: {e}")
            return
        for s in signals:
            if s.account_id is None:
                s.account_id = account_id
        added, removed = self.ledger.replace_account_signals(account_id, signals, extractor=name, version=version,
                                                             digest=digest, tenant=self.options.tenant)
        self.report.metadata_signals_added += added
        self.report.metadata_signals_removed += len(removed)
        if removed and self.vectors is not None:
            self.vectors.delete_signals(removed)

    # ------------------------------------------------------------------ vectors
    def abort(self) -> None:
        """Stop the background indexer after a failure (what it wrote stays; the ledger marks the rest)."""
        if self._indexer is not None:
            indexer, self._indexer = self._indexer, None
            try:
                indexer.close()
            except HealthtraceError:
                log.debug("indexer failed during abort", exc_info=True)

    def index(self) -> None:
        """Finish the background indexer, then embed whatever the ledger still marks as pending (metadata
        signals, gaps left by an earlier interrupted or --no-vectors run)."""
        if self.vectors is None:
            return
        from .vectors import index_pending

        if self._indexer is not None:
            indexer, self._indexer = self._indexer, None
            stats = indexer.close()
            self.report.chunks_embedded += stats["chunks_embedded"]
            self.report.signals_embedded += stats["signals_embedded"]

        pending = len(self.ledger.document_ids(indexed=False))
        stats = index_pending(self.ledger, self.vectors, on_progress=_counter(self.progress, "embedding", pending))
        self.report.chunks_embedded += stats["chunks_embedded"]
        self.report.signals_embedded += stats["signals_embedded"]


# ----------------------------------------------------------------------------------------- entry points
@contextmanager
def _recorded_run(ledger: Ledger, ing: Ingestor, **meta: Any) -> Iterator[None]:
    """The run's outcome goes to ``extraction_runs`` either way; on failure the indexer stops first so the
    ledger's ``indexed`` flags (not the vector store) say what is missing."""
    run_id = ledger.start_run(ing.extractor.name, ing.extractor.version, **meta)
    try:
        yield
    except BaseException as e:
        ing.abort()
        ledger.finish_run(run_id, "failed", ing.report.to_dict(), error=f"{e.__class__.__name__}: {e}")
        raise
    ledger.finish_run(run_id, "ok", ing.report.to_dict())


def ingest_workspace(ledger: Ledger, root: str | Path, options: IngestOptions, *, vectors: Any | None = None,
                     progress: ProgressFn | None = None) -> IngestReport:
    ws = load_workspace(root, max_documents=options.max_files)
    ing = Ingestor(ledger, options, vectors=vectors, progress=progress)
    rep = ing.report
    rep.problems.extend(str(p) for p in ws.problems)
    with _recorded_run(ledger, ing, workspace=str(root), vectors=options.vectors):
        accounts = [a.model_copy(update={"tenant": options.tenant}) for a in ws.accounts.values()]
        rep.accounts_changed = ledger.upsert_accounts(accounts)
        rep.usage_added = ledger.add_usage(ws.usage, tenant=options.tenant)
        rep.usage_unchanged = len(ws.usage) - rep.usage_added
        rep.outcomes_added = ledger.add_outcomes(ws.outcomes, tenant=options.tenant)
        rep.outcomes_unchanged = len(ws.outcomes) - rep.outcomes_added
        total = sum(len(f) for f in ws.documents.values())
        done = 0
        ing.start_indexer(total)
        for account_id, files in ws.documents.items():
            done = ing.ingest_documents(account_id, files, done=done, total=total)
        ing.resolve_vendor_domains(ws.vendor_domains)  # once, with every account's documents stored
        for account_id in ws.documents:
            ing.run_metadata(account_id)
        ing.index()
    return rep


def ingest_files(ledger: Ledger, files: Sequence[str | Path], account_id: str, options: IngestOptions, *,
                 vectors: Any | None = None, progress: ProgressFn | None = None) -> IngestReport:
    """Single documents for one account; an unknown account is refused (a typo must not create a phantom
    account) unless ``options.create_account``, which creates it with just its id."""
    if not account_id or len(account_id) > 200:
        raise InputError("--account must be an account id of 1-200 characters")
    if len(files) > options.max_files:
        raise InputTooLargeError(f"{len(files)} files given; the limit per call is {options.max_files}")
    missing = [str(f) for f in files if not Path(f).exists()]
    if missing and len(missing) == len(files):
        raise NotFoundError(f"{missing[0]}: file not found" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    try:
        ledger.get_account(account_id, options.tenant)
    except NotFoundError:
        if not options.create_account:
            raise NotFoundError(f"unknown account {account_id!r}; check the id (`healthtrace stats`) or pass "
                                "--create-account to create it") from None
        ledger.upsert_accounts([Account(account_id=account_id, tenant=options.tenant)])
        log.info("created account %s", account_id)
    ing = Ingestor(ledger, options, vectors=vectors, progress=progress)
    with _recorded_run(ledger, ing, account=account_id, files=len(files), vectors=options.vectors):
        ing.start_indexer(len(files))
        ing.ingest_documents(account_id, [Path(f) for f in files], total=len(files))
        ing.run_metadata(account_id)
        ing.index()
    return ing.report


def reindex(ledger: Ledger, vectors: Any, *, progress: ProgressFn | None = None) -> dict[str, int]:
    """Rebuild the vector store from the ledger (the source of truth)."""
    from .vectors import index_pending

    vectors.reset()
    ledger.reset_indexed()
    return index_pending(ledger, vectors, on_progress=_counter(progress, "embedding", len(ledger.document_ids())))
