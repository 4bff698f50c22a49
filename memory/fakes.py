"""In-memory ledger and vector memory for tests: the repository protocols (memory/repositories.py) without
SQLite, PostgreSQL or Chroma. Hand them to the container: ``build_services(settings, ledger=InMemoryLedger(),
vectors=InMemoryVectorMemory())``.

They keep the real stores' observable rules (idempotent inserts keyed as the tables are, rejected signals left
out, nothing dated after ``until``, the same orderings), so a service test on the fakes means what it means on
SQLite. No SQL path (bulk inputs, feedback, API keys, jobs) runs on them.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from extractors.errors import InputError, NotFoundError
from extractors.models import Account, HealthScore, Outcome, Signal, SourceDocument, UsagePoint, UsageRow

DEFAULT_TENANT = "default"
_REVIEW_VERDICTS = ("confirm", "reject")
_MAX_REVIEW_REASON = 2000


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(parts: Iterable[str]) -> str:  # as memory/ledger.py computes it
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


def _day_key(d: date | None) -> tuple[int, date]:
    return (0, date.min) if d is None else (1, d)


class InMemoryLedger:
    """The ledger's protocol over dicts; thread-safe (one lock), cheap, forgotten on close."""

    def __init__(self) -> None:
        self.url = f"memory://ledger-{id(self):x}"
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.accounts: dict[tuple[str, str], Account] = {}
        self.documents: dict[str, dict[str, Any]] = {}  # id -> {doc, tenant, version, indexed}
        self.signals: dict[str, dict[str, Any]] = {}  # id -> {signal, tenant, indexed}
        self.reviews: dict[tuple[str, str], dict[str, Any]] = {}
        self.extractions: dict[tuple[str, str, str], str] = {}  # (subject, extractor, version) -> digest
        self.usage: dict[tuple[str, str, date, str, int], float] = {}
        self.outcomes: dict[tuple[str, str, date, str], Outcome] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.event_rows: list[dict[str, Any]] = []
        self.runs: dict[int, dict[str, Any]] = {}

    def close(self) -> None:
        """Nothing to release."""

    # ------------------------------------------------------------------ accounts
    def upsert_accounts(self, accounts: Iterable[Account]) -> int:
        changed = 0
        with self._lock:
            for a in accounts:
                tenant = a.tenant or DEFAULT_TENANT
                a = a.model_copy(update={"tenant": tenant})
                if self.accounts.get((tenant, a.account_id)) != a:
                    self.accounts[(tenant, a.account_id)] = a
                    changed += 1
        return changed

    def get_account(self, account_id: str, tenant: str = DEFAULT_TENANT) -> Account:
        found = self.accounts.get((tenant, account_id))
        if found is None:
            raise NotFoundError(f"account {account_id!r} not found (tenant {tenant!r})")
        return found

    def list_accounts(self, tenant: str = DEFAULT_TENANT) -> list[Account]:
        return [a for (t, _), a in sorted(self.accounts.items()) if t == tenant]

    # ------------------------------------------------------------------ documents
    def record_document(self, doc: SourceDocument, signals: Iterable[Signal], *, extractor: str, version: str,
                        tenant: str = DEFAULT_TENANT) -> tuple[bool, int]:
        sigs = list(signals)
        with self._lock:
            new_doc = doc.id not in self.documents
            if new_doc:
                prior = [r["version"] for r in self.documents.values() if doc.path and r["tenant"] == tenant
                         and r["doc"].path == doc.path]
                self.documents[doc.id] = {"doc": doc, "tenant": tenant, "version": max(prior, default=0) + 1,
                                          "indexed": False}
            added = self._add_signals(sigs, tenant)
            self.extractions.setdefault((doc.id, extractor, version), "")
        return new_doc, added

    def _add_signals(self, sigs: Iterable[Signal], tenant: str) -> int:
        added = 0
        for s in sigs:
            if s.id not in self.signals:
                self.signals[s.id] = {"signal": s, "tenant": tenant, "indexed": False}
                added += 1
        return added

    def extracted(self, extractor: str, version: str, subjects: Collection[str] | None = None) -> dict[str, str]:
        wanted = None if subjects is None else set(subjects)
        return {s: d for (s, e, v), d in self.extractions.items()
                if e == extractor and v == version and (wanted is None or s in wanted)}

    def replace_account_signals(self, account_id: str, signals: Iterable[Signal], *, extractor: str, version: str,
                                digest: str, tenant: str = DEFAULT_TENANT) -> tuple[int, list[str]]:
        sigs = list(signals)
        keep = {s.id for s in sigs}
        subject = f"account:{tenant}:{account_id}"
        with self._lock:
            old = {i for i, r in self.signals.items() if r["tenant"] == tenant and
                   r["signal"].account_id == account_id and r["signal"].extractor == extractor}
            removed = sorted(old - keep)
            for i in removed:
                del self.signals[i]
            added = self._add_signals(sigs, tenant)
            for key in [k for k in self.extractions if k[0] == subject and k[1] == extractor]:
                del self.extractions[key]
            self.extractions[(subject, extractor, version)] = digest
        return added, removed

    def get_document(self, source_id: str) -> SourceDocument:
        row = self.documents.get(source_id)
        if row is None:
            raise NotFoundError(f"document {source_id!r} not found")
        return row["doc"]

    def _docs(self, tenant: str, account_id: str) -> list[dict[str, Any]]:
        return [r for r in self.documents.values() if r["tenant"] == tenant and r["doc"].account_id == account_id]

    def documents_for(self, account_id: str, tenant: str = DEFAULT_TENANT) -> list[SourceDocument]:
        rows = self._docs(tenant, account_id)

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            d = r["doc"]
            when = d.occurred_at.astimezone(UTC).replace(tzinfo=None) if d.occurred_at and d.occurred_at.tzinfo \
                else d.occurred_at
            return (when is not None, when or datetime.min, d.path or "", r["version"], d.id)

        return [r["doc"] for r in sorted(rows, key=key)]

    def document_ids(self, *, indexed: bool | None = None) -> list[str]:
        return sorted(i for i, r in self.documents.items() if indexed is None or r["indexed"] == indexed)

    def documents_by_ids(self, ids: Sequence[str]) -> list[tuple[SourceDocument, str]]:
        return [(self.documents[i]["doc"], self.documents[i]["tenant"]) for i in ids if i in self.documents]

    def digest_documents(self, account_id: str, tenant: str = DEFAULT_TENANT) -> str:
        return _digest(sorted(r["doc"].id for r in self._docs(tenant, account_id)))

    def documents_stamp(self, tenant: str = DEFAULT_TENANT) -> tuple[int, str]:
        return sum(1 for r in self.documents.values() if r["tenant"] == tenant), str(len(self.documents))

    def addresses_by_account(self, tenant: str = DEFAULT_TENANT) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in self.documents.values():
            d = r["doc"]
            if r["tenant"] != tenant or not d.account_id:
                continue
            found = out.setdefault(d.account_id, set())
            for item in [*(d.participants or ()), *(d.segments or ())]:
                addr = getattr(item, "address", None)
                if isinstance(addr, str) and "@" in addr:
                    found.add(addr.lower())
        return out

    def source_kinds(self, tenant: str, account_id: str) -> dict[str, str]:
        return {r["doc"].id: r["doc"].kind for r in self._docs(tenant, account_id)}

    # ------------------------------------------------------------------ signals
    def _rejected(self, tenant: str, signal_id: str) -> bool:
        r = self.reviews.get((tenant, signal_id))
        return r is not None and r["verdict"] == "reject"

    def signals_for(self, account_id: str, *, until: date | None = None, since: date | None = None,
                    types: Collection[str] | None = None, verified_only: bool = True, include_rejected: bool = False,
                    tenant: str = DEFAULT_TENANT) -> list[Signal]:
        out = []
        for sid, r in self.signals.items():
            s: Signal = r["signal"]
            day = s.occurred_at.date() if s.occurred_at else None
            if r["tenant"] != tenant or s.account_id != account_id:
                continue
            if not include_rejected and self._rejected(tenant, sid):
                continue
            if until is not None and (day is None or day > until):
                continue
            if since is not None and (day is None or day < since):
                continue
            if types is not None and s.type not in types:
                continue
            if verified_only and not s.verified:
                continue
            out.append((_day_key(day), sid, s))
        return [s for *_, s in sorted(out, key=lambda x: (x[0], x[1]))]

    def signals_by_ids(self, ids: Sequence[str]) -> list[tuple[Signal, str]]:
        return [(self.signals[i]["signal"], self.signals[i]["tenant"]) for i in ids if i in self.signals]

    def signal_ids(self, *, indexed: bool | None = None) -> list[str]:
        return sorted(i for i, r in self.signals.items() if indexed is None or r["indexed"] == indexed)

    def review_signal(self, signal_id: str, verdict: str, reason: str, *, author: str | None = None,
                      account_id: str | None = None, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
        if verdict not in _REVIEW_VERDICTS:
            raise InputError(f"unknown verdict {verdict!r}; expected one of {', '.join(_REVIEW_VERDICTS)}")
        reason = (reason or "").strip()
        if not reason:
            raise InputError("a review needs a reason (what is right or wrong about the signal)")
        if len(reason) > _MAX_REVIEW_REASON:
            raise InputError(f"reason is {len(reason)} characters; the limit is {_MAX_REVIEW_REASON}")
        r = self.signals.get(signal_id)
        if r is None or r["tenant"] != tenant or (account_id is not None and r["signal"].account_id != account_id):
            where = f"account {account_id!r}" if account_id is not None else f"tenant {tenant!r}"
            raise NotFoundError(f"no stored signal {signal_id!r} in {where}")
        row = {"tenant": tenant, "signal_id": signal_id, "account_id": r["signal"].account_id, "verdict": verdict,
               "reason": reason, "author": author, "created_at": _now()}
        self.reviews[(tenant, signal_id)] = row
        return dict(row)

    def mark_indexed(self, *, documents: Sequence[str] = (), signals: Sequence[str] = (), value: bool = True) -> None:
        with self._lock:
            for table, ids in ((self.documents, documents), (self.signals, signals)):
                for i in ids:
                    if i in table:
                        table[i]["indexed"] = value

    def reset_indexed(self) -> None:
        self.mark_indexed(documents=list(self.documents), signals=list(self.signals), value=False)

    # ------------------------------------------------------------------ usage and outcomes
    def add_usage(self, rows: Iterable[UsageRow | UsagePoint], *, tenant: str = DEFAULT_TENANT) -> int:
        seen: dict[tuple[str, date, str], int] = {}
        added = 0
        with self._lock:
            for r in rows:
                key = (r.account_id, r.date, r.metric)
                seq = seen[key] = seen.get(key, -1) + 1
                full = (tenant, r.account_id, r.date, r.metric, seq)
                if full not in self.usage:
                    self.usage[full] = float(r.value)
                    added += 1
        return added

    def usage_for(self, account_id: str, *, until: date | None = None, tenant: str = DEFAULT_TENANT) -> list[UsageRow]:
        keys = sorted(k for k in self.usage if k[0] == tenant and k[1] == account_id and (until is None or k[2] <= until))
        return [UsageRow(k[1], k[2], k[3], self.usage[k]) for k in sorted(keys, key=lambda k: (k[2], k[3], k[4]))]

    def add_outcomes(self, outcomes: Iterable[Outcome], *, tenant: str = DEFAULT_TENANT) -> int:
        added = 0
        with self._lock:
            for o in outcomes:
                key = (tenant, o.account_id, o.date, o.outcome)
                if key not in self.outcomes:
                    self.outcomes[key] = o
                    added += 1
        return added

    def outcomes_for(self, account_id: str, *, tenant: str = DEFAULT_TENANT) -> list[Outcome]:
        return [o for k, o in sorted(self.outcomes.items(), key=lambda kv: (kv[0][2], kv[0][3]))
                if k[0] == tenant and k[1] == account_id]

    # ------------------------------------------------------------------ score snapshots
    def save_snapshots(self, scores: Iterable[HealthScore], *, extractor_versions: dict[str, str] | None = None,
                       tenant: str = DEFAULT_TENANT) -> int:
        saved = 0
        with self._lock:
            taken = {(r["tenant"], r["account_id"], r["as_of"], r["model_id"], r["model_version"])
                     for r in self.snapshots}
            for s in scores:
                key = (tenant, s.account_id, s.as_of, s.model_id, s.model_version)
                if key in taken:
                    continue
                taken.add(key)
                self.snapshots.append({"id": next(self._ids), "tenant": tenant, "account_id": s.account_id,
                                       "as_of": s.as_of, "model_id": s.model_id, "model_version": s.model_version,
                                       "payload": s.model_dump(mode="json"), "created_at": _now(),
                                       "extractor_versions": dict(extractor_versions or {})})
                saved += 1
        return saved

    def replace_snapshot(self, score: HealthScore, *, tenant: str = DEFAULT_TENANT) -> None:
        with self._lock:
            self.snapshots = [r for r in self.snapshots if not (
                r["tenant"] == tenant and r["account_id"] == score.account_id and r["as_of"] == score.as_of and
                r["model_id"] == score.model_id and r["model_version"] == score.model_version)]
            self.save_snapshots([score], tenant=tenant)

    def _snaps(self, tenant: str, account_id: str, model_id: str | None = None) -> list[dict[str, Any]]:
        rows = [r for r in self.snapshots if r["tenant"] == tenant and r["account_id"] == account_id and
                (model_id is None or r["model_id"] == model_id)]
        return sorted(rows, key=lambda r: (r["as_of"], r["id"]))

    def snapshot_at(self, account_id: str, as_of: date, *, model_id: str | None = None,
                    tenant: str = DEFAULT_TENANT) -> HealthScore | None:
        rows = [r for r in self._snaps(tenant, account_id, model_id) if r["as_of"] <= as_of]
        return HealthScore.model_validate(rows[-1]["payload"]) if rows else None

    def snapshots_for(self, account_id: str, *, model_id: str | None = None,
                      tenant: str = DEFAULT_TENANT) -> list[HealthScore]:
        return [HealthScore.model_validate(r["payload"]) for r in self._snaps(tenant, account_id, model_id)]

    def latest_snapshot_payloads(self, tenant: str, model_id: str) -> dict[str, tuple[Any, datetime | None]]:
        latest: dict[str, tuple[bool, Any, datetime | None]] = {}
        for r in sorted((r for r in self.snapshots if r["tenant"] == tenant), key=lambda r: (r["as_of"], r["id"])):
            preferred = r["model_id"] == model_id
            cur = latest.get(r["account_id"])
            if cur is None or preferred or not cur[0]:
                latest[r["account_id"]] = (preferred, r["payload"], r["created_at"])
        return {k: (v[1], v[2]) for k, v in latest.items()}

    def account_snapshots(self, tenant: str, account_id: str, days: Sequence[date | None | int], model_id: str, *,
                          parse: Callable[[int, Any, Any], HealthScore], today: date,
                          with_kinds: bool = False) -> tuple[Account, list[HealthScore | None], dict[str, str]]:
        account = self.get_account(account_id, tenant)
        out: list[HealthScore | None] = []
        for day in days:
            if isinstance(day, int):
                ref = out[0].as_of if out and out[0] is not None else today
                day = ref - timedelta(days=day)
            if day is None:
                rows = self._snaps(tenant, account_id, model_id) or self._snaps(tenant, account_id)
            else:
                rows = [r for r in self._snaps(tenant, account_id, model_id) if r["as_of"] == day]
            r = rows[-1] if rows else None
            out.append(None if r is None else parse(r["id"], r["created_at"], r["payload"]))
        return account, out, self.source_kinds(tenant, account_id) if with_kinds else {}

    # ------------------------------------------------------------------ events and runs
    def add_event(self, kind: str, account_id: str, payload: dict[str, Any], *, occurred_at: datetime,
                  dedupe_key: str, tenant: str = DEFAULT_TENANT) -> bool:
        with self._lock:
            if any(e["dedupe_key"] == dedupe_key for e in self.event_rows):
                return False
            self.event_rows.append({"id": next(self._ids), "tenant": tenant, "kind": kind, "account_id": account_id,
                                    "payload": dict(payload), "occurred_at": occurred_at, "dedupe_key": dedupe_key,
                                    "created_at": _now()})
        return True

    def events(self, *, since_id: int = 0, account_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        limit = max(1, min(int(limit), 10_000))
        rows = [dict(e) for e in self.event_rows if e["id"] > since_id and
                (account_id is None or e["account_id"] == account_id)]
        return rows[:limit]

    def start_run(self, extractor: str, version: str, **meta: Any) -> int:
        run_id = next(self._ids)
        self.runs[run_id] = {"id": run_id, "extractor": extractor, "version": version, "status": "running",
                             "meta": meta, "stats": {}, "started_at": _now()}
        return run_id

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any], error: str | None = None) -> None:
        self.runs[run_id].update(status=status, stats=dict(stats), error=error, finished_at=_now())

    def counts(self) -> dict[str, int]:
        return {
            "accounts": len(self.accounts), "documents": len(self.documents), "signals": len(self.signals),
            "usage_points": len(self.usage), "outcomes": len(self.outcomes), "score_snapshots": len(self.snapshots),
            "events": len(self.event_rows), "extraction_runs": len(self.runs),
            "documents_indexed": sum(1 for r in self.documents.values() if r["indexed"]),
            "signals_indexed": sum(1 for r in self.signals.values() if r["indexed"]),
            "signals_verified": sum(1 for r in self.signals.values() if r["signal"].verified),
        }


_WORD = re.compile(r"[a-z0-9]+")


class InMemoryVectorMemory:
    """The vector memory's protocol with a bag-of-words "embedding" (hashed word counts): deterministic,
    dependency-free, good enough to rank a passage that shares the query's words above one that does not."""

    DIM = 256

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], tuple[str, dict[str, Any], np.ndarray]] = {}  # (collection, id) -> ...

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                out[i, int(hashlib.blake2b(w.encode(), digest_size=4).hexdigest(), 16) % self.DIM] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def _put(self, name: str, ids: list[str], texts: list[str], metas: list[dict[str, Any]],
             embeddings: np.ndarray | None) -> None:
        vecs = self.embed(texts) if embeddings is None else np.asarray(embeddings, dtype=np.float32)
        for i, t, m, v in zip(ids, texts, metas, vecs):
            self.items[(name, i)] = (t, m, v)

    def upsert_chunks(self, items: Sequence[tuple[Any, SourceDocument, str]],
                      embeddings: np.ndarray | None = None) -> int:
        from memory.vectors import CHUNKS, chunk_metadata

        self._put(CHUNKS, [c.id for c, _, _ in items], [c.text for c, _, _ in items],
                  [chunk_metadata(c, d, t) for c, d, t in items], embeddings)
        return len(items)

    def upsert_signals(self, items: Sequence[tuple[Signal, str]], embeddings: np.ndarray | None = None) -> int:
        from memory.vectors import SIGNALS, signal_metadata, signal_text

        self._put(SIGNALS, [s.id for s, _ in items], [signal_text(s) for s, _ in items],
                  [signal_metadata(s, t) for s, t in items], embeddings)
        return len(items)

    def delete_signals(self, ids: Sequence[str]) -> None:
        from memory.vectors import SIGNALS

        for i in ids:
            self.items.pop((SIGNALS, i), None)

    def search(self, account_id: str, query: str, *, tenant: str = "default", k: int = 10, since: date | None = None,
               until: date | None = None, type: str | None = None, include_passages: bool = True,
               include_signals: bool = True) -> list[Any]:
        from memory.vectors import CHUNKS, MAX_K, SIGNALS, Hit, _day_int

        query = (query or "").strip()
        if not query:
            raise InputError("search query is empty")
        if not 1 <= k <= MAX_K:
            raise InputError(f"-k must be between 1 and {MAX_K}, got {k}")
        q = self.embed([query])[0]
        hits = []
        for (name, i), (text, meta, vec) in self.items.items():
            kind = "passage" if name == CHUNKS else "signal"
            if (name == CHUNKS and not include_passages) or (name == SIGNALS and not include_signals):
                continue
            if meta.get("account_id") != account_id or meta.get("tenant") != tenant:
                continue
            day = meta.get("date")
            if since is not None and not (isinstance(day, int) and day >= _day_int(since)):
                continue
            if until is not None and not (isinstance(day, int) and day <= _day_int(until)):
                continue
            if type and meta.get("type") != type:
                continue
            hits.append(Hit(kind=kind, id=i, score=round(float(np.dot(q, vec)), 4), text=text, metadata=dict(meta)))
        hits.sort(key=lambda h: (-h.score, h.kind, h.id))
        return hits[:k]

    def reset(self) -> None:
        self.items.clear()

    def counts(self) -> dict[str, int]:
        from memory.vectors import CHUNKS, SIGNALS

        return {"vector_chunks": sum(1 for n, _ in self.items if n == CHUNKS),
                "vector_signals": sum(1 for n, _ in self.items if n == SIGNALS)}


class InMemoryModelRecords:
    """Stored model versions (the feedback store's model half) in a dict: register, activate, read."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str, str], dict[str, Any]] = {}  # (tenant, id, version) -> row

    def register(self, model_id: str, version: str, yaml_text: str, *, tenant: str = DEFAULT_TENANT,
                 activate: bool = False) -> None:
        self.versions[(tenant, model_id, version)] = {"model_id": model_id, "version": version,
                                                      "content_hash": _digest([yaml_text]), "active": False,
                                                      "created_at": _now(), "calibration": None,
                                                      "yaml_text": yaml_text}
        if activate:
            self.activate(model_id, version, tenant=tenant)

    def active_model_yaml(self, *, tenant: str = DEFAULT_TENANT) -> tuple[str, str, str] | None:
        for (t, mid, ver), row in self.versions.items():
            if t == tenant and row["active"]:
                return mid, ver, row["yaml_text"]
        return None

    def stored_model_yaml(self, model_id: str, version: str, *, tenant: str = DEFAULT_TENANT) -> str | None:
        row = self.versions.get((tenant, model_id, version))
        return None if row is None else row["yaml_text"]

    def activate(self, model_id: str, version: str, *, tenant: str = DEFAULT_TENANT) -> None:
        if (tenant, model_id, version) not in self.versions:
            raise NotFoundError(f"no stored model {model_id}@{version}; `healthtrace models versions` lists them")
        for (t, mid, ver), row in self.versions.items():
            if t == tenant:
                row["active"] = (mid, ver) == (model_id, version)

    def deactivate_all(self, *, tenant: str = DEFAULT_TENANT) -> None:
        for (t, _, _), row in self.versions.items():
            if t == tenant:
                row["active"] = False

    def model_versions(self, *, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "yaml_text"}
                for (t, _, _), row in sorted(self.versions.items(), key=lambda kv: kv[1]["created_at"]) if t == tenant]
