"""What the routes do, apart from HTTP: ingest, rescore one account, overrides, narrated changes.

Every method takes the tenant explicitly and passes it to every ledger and store query. The real-time path
(ingest -> rescore -> events) touches only the ledger and the pure scorer: no embeddings, no network, so it
stays within the latency budget; vector indexing of new documents is left to a background thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from api.settings import Settings
from extractors.errors import InputError, NotFoundError
from extractors.models import Account, HealthScore, Outcome, Signal, SourceDocument, UsagePoint, UsageRow
from memory.api_store import ApiStore
from memory.repositories import LedgerRepository, ModelRecords

log = logging.getLogger("healthtrace.api")

_ACTIVE_MODEL = "model.active:"  # + tenant
_ACTIVE_TTL_S = 1.0
_SNAPSHOT_CACHE = 20_000  # parsed snapshots kept in memory (LRU)


@dataclass
class Rescored:
    account_id: str
    score: HealthScore
    previous: HealthScore | None
    events: list[str] = field(default_factory=list)


def today() -> date:
    return datetime.now(UTC).date()


def top_reasons(score: HealthScore, n: int = 3) -> list[str]:
    """The contributions that pull the score down most (what a CSM acts on), then the biggest positives."""
    items = [c for c in score.contributions if c.kind not in ("baseline", "clamp") and abs(c.points) >= 0.01]
    neg = sorted((c for c in items if c.points < 0), key=lambda c: c.points)
    pos = sorted((c for c in items if c.points > 0), key=lambda c: -c.points)
    return [" ".join(c.reason.split()) for c in (neg + pos)[:n]]


class HealthService:
    """Ledger + API store + scoring model, bound to one settings object; built by the container
    (api/container.py), which hands in the repositories (memory/repositories.py protocols).

    ``store`` and ``feedback`` may be None on a ledger without SQL (the in-memory fakes): then there are no
    stored model versions and the bundled model chosen is not remembered across processes."""

    def __init__(self, ledger: LedgerRepository, store: ApiStore | None, settings: Settings, *,
                 feedback: ModelRecords | None = None,
                 ingest_options: Callable[[str], Any] | None = None, extractor_versions: Any = None) -> None:
        self.ledger = ledger
        self.extractor_versions = extractor_versions  # memory/extractor_versions.py registry (None: no SQL ledger)
        self._ingest_options = ingest_options  # tenant -> memory.ingest.IngestOptions (the container's one)
        self.store = store
        self.settings = settings
        self._models: dict[str, Any] = {}
        self._active: dict[str, tuple[float, str]] = {}
        self._feedback: Any = feedback
        self._bundled_choice: dict[str, str] = {}  # without a store: the bundled model chosen, this process only
        self._snap_cache: OrderedDict[tuple[int, str], HealthScore] = OrderedDict()
        self._lock = threading.Lock()
        self.on_events: list[Any] = []  # callbacks, e.g. the webhook dispatcher's notify
        self.on_ingest: list[Any] = []  # callbacks after new documents are stored (background vector indexing)

    # ------------------------------------------------------------------------------------ models
    # A tenant's model: the stored version activated with `healthtrace models activate ID@VERSION` (or the
    # API), else a bundled model chosen through the API, else the configured file, else the default.
    @property
    def feedback(self) -> Any:
        if self._feedback is None and hasattr(self.ledger, "engine"):
            from memory.feedback import FeedbackStore

            self._feedback = FeedbackStore(self.ledger)
        return self._feedback

    def bundled(self) -> dict[str, Any]:
        from scoring.model import bundled_models

        paths = dict(bundled_models())
        if self.settings.model_file is not None:
            paths["configured"] = self.settings.model_file
        return paths

    def _load_bundled(self, name: str) -> Any:
        from scoring.model import load_model

        with self._lock:
            if name not in self._models:
                paths = self.bundled()
                if name not in paths:
                    raise NotFoundError(f"no scoring model {name!r}; available: {', '.join(sorted(paths))} "
                                        "or a stored ID@VERSION (`healthtrace models versions`)")
                self._models[name] = load_model(paths[name])
            return self._models[name]

    def _load_stored(self, tenant: str, ref: str, yaml_text: str | None = None) -> Any:
        import yaml

        from memory.feedback import parse_model_ref
        from scoring.model import parse_model

        key = f"{tenant}\x1f{ref}"
        with self._lock:
            if key in self._models:
                return self._models[key]
        if yaml_text is None:
            mid, ver = parse_model_ref(ref)
            yaml_text = self.feedback.stored_model_yaml(mid, ver, tenant=tenant) if self.feedback is not None \
                else None
            if yaml_text is None:
                raise NotFoundError(f"no stored model {ref!r} for this tenant")
        model = parse_model(yaml.safe_load(yaml_text), source=ref)
        with self._lock:
            self._models[key] = model
        return model

    def active_model_name(self, tenant: str) -> str:
        """Read on every request, so cached for a second (another process activating a model is seen then)."""
        now = time.monotonic()
        hit = self._active.get(tenant)
        if hit is not None and now - hit[0] < _ACTIVE_TTL_S:
            return hit[1]
        stored = self.feedback.active_model_yaml(tenant=tenant) if self.feedback is not None else None
        if stored is not None:
            name = f"{stored[0]}@{stored[1]}"
            self._load_stored(tenant, name, stored[2])
        else:
            default = "configured" if self.settings.model_file is not None else "default"
            name = (self.store.get_state(_ACTIVE_MODEL + tenant, default) if self.store is not None else
                    self._bundled_choice.get(tenant, default)) or default
        self._active[tenant] = (now, name)
        return name

    def model(self, tenant: str, name: str | None = None) -> Any:
        """A model by name (bundled name or stored ID@VERSION); the tenant's active one by default."""
        name = name or self.active_model_name(tenant)
        return self._load_stored(tenant, name) if "@" in name else self._load_bundled(name)

    def activate_model(self, tenant: str, name: str) -> str:
        from memory.feedback import parse_model_ref

        if "@" in name:
            mid, ver = parse_model_ref(name)
            if self.feedback is None:
                raise NotFoundError(f"no stored model {name!r}: this service has no model store")
            self.feedback.activate(mid, ver, tenant=tenant)
        else:
            self._load_bundled(name)  # exists and parses
            if self.feedback is not None:
                self.feedback.deactivate_all(tenant=tenant)  # a bundled model replaces any active stored version
            if self.store is not None:
                self.store.set_state(_ACTIVE_MODEL + tenant, name)
            else:
                self._bundled_choice[tenant] = name
        self._active.pop(tenant, None)
        return name

    def list_extractor_versions(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's offline-extractor versions (the bundled one first); one is active."""
        if self.extractor_versions is None:
            from memory.extractor_versions import _bundled_sha

            return [{"version": "bundled", "origin": "bundled", "sha256": _bundled_sha(), "active": True,
                     "created_at": None, "delta_micro_f1": None}]
        out = []
        for r in self.extractor_versions.versions(tenant=tenant):
            cmp = (r.get("report") or {}).get("comparison") or {}
            out.append({"version": r["version"], "origin": r["origin"], "sha256": r["sha256"],
                        "active": bool(r["active"]), "created_at": r["created_at"],
                        "delta_micro_f1": cmp.get("delta_micro_f1")})
        return out

    def activate_extractor_version(self, tenant: str, version: str) -> None:
        """Extract this tenant's documents with another stored version from the next ingest on."""
        if self.extractor_versions is None:
            raise NotFoundError(f"no extractor version {version!r}: this service has no version store")
        self.extractor_versions.activate(version, tenant=tenant)

    def list_models(self, tenant: str) -> list[dict[str, Any]]:
        active = self.active_model_name(tenant)
        out = []
        for name in sorted(self.bundled()):
            m = self._load_bundled(name)
            out.append({"name": name, "id": m.id, "version": str(m.version), "hash": m.content_hash,
                        "active": name == active})
        for v in (self.feedback.model_versions(tenant=tenant) if self.feedback is not None else []):
            name = f"{v['model_id']}@{v['version']}"
            out.append({"name": name, "id": v["model_id"], "version": str(v["version"]), "hash": v["content_hash"],
                        "active": name == active})
        return out

    # ------------------------------------------------------------------------------------ reads
    def account(self, tenant: str, account_id: str) -> Account:
        return self.ledger.get_account(account_id, tenant=tenant)

    def latest(self, tenant: str, account_id: str) -> HealthScore | None:
        model = self.model(tenant)
        far = date.max
        return self.ledger.snapshot_at(account_id, far, model_id=model.id, tenant=tenant) or \
            self.ledger.snapshot_at(account_id, far, tenant=tenant)

    def portfolio(self, tenant: str) -> list[tuple[Account, HealthScore | None, datetime | None]]:
        """Every account of the tenant with its latest snapshot (active model first), in one query."""
        latest = self.ledger.latest_snapshot_payloads(tenant, self.model(tenant).id)
        out = []
        for a in self.ledger.list_accounts(tenant=tenant):
            hit = latest.get(a.account_id)
            score = HealthScore.model_validate(hit[0]) if hit else None
            out.append((a, score, hit[1] if hit else None))
        return out

    def source_kinds(self, tenant: str, account_id: str) -> dict[str, str]:
        """Document id -> kind (email, transcript ...) for narration, without loading the texts."""
        return self.ledger.source_kinds(tenant, account_id)

    def document(self, tenant: str, source_id: str) -> SourceDocument:
        found = self.ledger.documents_by_ids([source_id])
        if not found or found[0][1] != tenant:
            raise NotFoundError(f"document {source_id!r} not found")
        return found[0][0]

    # ------------------------------------------------------------------------------------ scoring
    def inputs(self, tenant: str, account: Account, as_of: date, *, model: Any = None
               ) -> tuple[list[Signal], list[UsageRow], dict[str, Any] | None, set[str], Any]:
        """What the scorer reads for one account as of a date, through the same reader as ``compute`` and the
        CLI: verified signals with account-level silence derived as of that date, usage (through the tenant's
        metric mapping when ``model`` is given), document facts, the metrics expected by then, and the mapping."""
        from memory.metric_files import tenant_mapping
        from memory.scoring_inputs import account_view, inputs_for_account, map_usage_rows

        raw = list(self.ledger.usage_for(account.account_id, until=as_of, tenant=tenant))
        usage, mm = map_usage_rows(raw, model, tenant_mapping(self.settings.home, tenant))
        inputs = inputs_for_account(self.ledger, account, as_of, vendor_domains=self.settings.vendor_domains,
                                    tenant=tenant, rows=usage, unresponsive_days=self.settings.unresponsive_days)
        signals, facts, expected = account_view(inputs, account.account_id, as_of)
        return signals, usage, facts, expected, mm

    def compute(self, tenant: str, account: Account, as_of: date, *, model_name: str | None = None) -> HealthScore:
        """Score an account as of a date from what the ledger holds (nothing dated after it counts), through the
        same reader and engine as the CLI (account-level silence signals derived as of that date)."""
        from memory.scoring_inputs import inputs_for_account
        from scoring.batch import score_inputs
        from scoring.engine import compile_model, score_batch, BatchInputs

        from memory.metric_files import tenant_mapping

        model = self.model(tenant, model_name)
        inputs = inputs_for_account(self.ledger, account, as_of, vendor_domains=self.settings.vendor_domains,
                                    tenant=tenant, unresponsive_days=self.settings.unresponsive_days, model=model,
                                    mapping_file=tenant_mapping(self.settings.home, tenant))
        for res in score_inputs(inputs, model, [as_of]):
            return res.to_health_score()
        # an account that starts after as-of: scored anyway, on what little there is
        cm = compile_model(model.for_segment(account.segment))
        out = score_batch(BatchInputs([account]), cm, as_of, explain=True)
        assert out.accounts is not None
        return out.accounts[0].to_health_score()

    def snapshots_read(
        self, tenant: str, account_id: str, days: Sequence[date | None | int], *, with_kinds: bool = False
    ) -> tuple[Account, list[HealthScore | None], dict[str, str]]:
        """The hot read path in ONE connection: the account, its snapshot for each day (None = latest; a
        snapshot counts for a day only when it is of that day; an int N = N days before the first day's
        snapshot, for "why since a month ago") and optionally its documents' kinds.
        Raises NotFoundError when the account is not in this tenant."""
        return self.ledger.account_snapshots(tenant, account_id, days, self.model(tenant).id, parse=self._parsed,
                                             today=today(), with_kinds=with_kinds)

    def _parsed(self, row_id: int, created_at: Any, raw: Any) -> HealthScore:
        """Snapshot rows are written once (a same-day rescore inserts a new row), so a parsed snapshot can be
        kept by (row id, created_at): the hot read path skips pydantic validation of the whole payload."""
        key = (row_id, str(created_at))
        with self._lock:
            hit = self._snap_cache.get(key)
            if hit is not None:
                self._snap_cache.move_to_end(key)
                return hit
        score = HealthScore.model_validate_json(raw) if isinstance(raw, (str, bytes)) else \
            HealthScore.model_validate(raw)
        with self._lock:
            self._snap_cache[key] = score
            if len(self._snap_cache) > _SNAPSHOT_CACHE:
                self._snap_cache.popitem(last=False)
        return score

    def health_at(self, tenant: str, account_id: str, as_of: date | None) -> HealthScore:
        """Stored snapshot when there is one for that day, computed otherwise (never stored by a read)."""
        return self.health_of(tenant, self.account(tenant, account_id), as_of)

    def health_of(self, tenant: str, account: Account, as_of: date | None) -> HealthScore:
        account_id = account.account_id
        if as_of is None:
            latest = self.latest(tenant, account_id)
            if latest is not None:
                return latest
            return self.compute(tenant, account, today())
        model = self.model(tenant)
        snap = self.ledger.snapshot_at(account_id, as_of, model_id=model.id, tenant=tenant)
        if snap is not None and snap.as_of == as_of:
            return snap
        return self.compute(tenant, account, as_of)

    def _replace_snapshot(self, tenant: str, score: HealthScore) -> None:
        """One snapshot per account, day and model: a same-day rescore with new inputs replaces the old one."""
        self.ledger.replace_snapshot(score, tenant=tenant)

    def rescore(self, tenant: str, account_id: str, *, as_of: date | None = None) -> Rescored:
        """Score now, store the snapshot, and emit score/tier events against the previous snapshot."""
        account = self.account(tenant, account_id)
        as_of = as_of or today()
        before = self.ledger.snapshot_at(account_id, as_of, model_id=None, tenant=tenant)
        after = self.compute(tenant, account, as_of)
        if before is not None and before.model_id == after.model_id and before.as_of == after.as_of \
                and before.inputs_digest == after.inputs_digest and before.score == after.score:
            return Rescored(account_id, after, before, [])
        self._replace_snapshot(tenant, after)
        events = self._emit(tenant, account, before, after)
        return Rescored(account_id, after, before, events)

    def _emit(self, tenant: str, account: Account, before: HealthScore | None, after: HealthScore) -> list[str]:
        if before is None:
            return []
        delta = round(after.score - before.score, 2)
        kinds: list[str] = []
        if abs(delta) >= 0.01:
            kinds.append("score.changed")
        if before.tier != after.tier:
            kinds.append("tier.changed")
        if -delta >= self.settings.alert_drop_points:
            kinds.append("score.dropped")
        if not kinds:
            return []
        narration = ""
        reasons: list[str] = []
        try:
            from scoring.narrate import narrate

            story = narrate(before, after, account=account)
            narration = story.text
            reasons = [d.description for d in story.drivers[:3]]
        except (ValueError, ImportError) as e:  # narration is a nicety; the event still goes out
            log.warning("narration failed for %s: %s", account.account_id, e)
        payload = {
            "tenant": tenant,
            "account_name": account.name,
            "as_of": after.as_of.isoformat(),
            "score_before": round(before.score, 2),
            "score_after": round(after.score, 2),
            "delta": delta,
            "tier_before": before.tier,
            "tier_after": after.tier,
            "model_id": after.model_id,
            "narration": narration,
            "reasons": reasons,
        }
        emitted: list[str] = []
        now = datetime.now(UTC)
        for kind in kinds:
            key = f"api:{kind}:{tenant}:{account.account_id}:{after.as_of}:{after.model_id}:{after.inputs_digest}:{after.score}"
            if self.ledger.add_event(kind, account.account_id, payload, occurred_at=now, dedupe_key=key[:300],
                                     tenant=tenant):
                emitted.append(kind)
        if emitted:
            for cb in self.on_events:
                cb()
        return emitted

    def why(self, tenant: str, account_id: str, *, since: date | None = None, as_of: date | None = None) -> Any:
        """Why the score moved between ``since`` (default: 30 days before) and ``as_of`` (default: the latest
        score): the narration of the two scores (stored snapshots when there are, computed otherwise)."""
        from scoring.narrate import narrate

        # one connection: the score, the one `since` (or 30 days) before it, the sources' kinds
        account, (after, before), kinds = self.snapshots_read(
            tenant, account_id, [as_of, since if since is not None else 30], with_kinds=True)
        if after is None:
            after = self.health_of(tenant, account, as_of)
        start = since or (after.as_of - timedelta(days=30))
        if start >= after.as_of:
            raise InputError(f"since ({start}) must be before the score date ({after.as_of})")
        if before is None or before.as_of != start:
            before = self.health_of(tenant, account, start)
        return narrate(before, after, account=account, source_kinds=kinds)

    # ------------------------------------------------------------------------------------ writes
    def ingest_options(self, tenant: str) -> Any:
        """The ingest configuration of the API and the queue workers: the container's (api/container.py), so
        the CLI, the API and the workers choose the same extractor with the same metadata settings."""
        if self._ingest_options is None:
            from extractors.errors import ConfigError

            raise ConfigError("HealthService needs its ingest options: build it with api.container.build_services")
        return self._ingest_options(tenant)

    def _require_accounts(self, tenant: str, ids: Iterable[str]) -> None:
        known = {a.account_id for a in self.ledger.list_accounts(tenant=tenant)}
        missing = sorted(set(ids) - known)
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            raise NotFoundError(f"unknown account(s) {shown}{' ...' if len(missing) > 5 else ''}; create them first "
                                "with PUT /v1/accounts")

    def upsert_accounts(self, tenant: str, accounts: Sequence[Account]) -> int:
        return self.ledger.upsert_accounts([a.model_copy(update={"tenant": tenant}) for a in accounts])

    def ingest_documents(self, tenant: str, docs: Sequence[SourceDocument]) -> tuple[int, int, list[Rescored]]:
        """Store and extract each document, then rescore each touched account once."""
        added, signals, rescored, _failures = self.ingest_documents_report(tenant, docs)
        return added, signals, rescored

    def ingest_documents_report(
        self, tenant: str, docs: Sequence[SourceDocument]
    ) -> tuple[int, int, list[Rescored], list[str]]:
        """The CLI's ingest service (memory/ingest.py: the configured extractor, its idempotency, one
        transaction per document, account-level metadata signals), then a rescore of each touched account.
        Vectors are left to the background indexer. Returns (added, signals, rescored, failures)."""
        from memory.ingest import Ingestor

        self._require_accounts(tenant, {d.account_id for d in docs if d.account_id})
        if any(not d.account_id for d in docs):
            raise InputError("every document needs an account_id")
        ing = Ingestor(self.ledger, self.ingest_options(tenant))
        ing.ingest_parsed(docs)
        touched = list(dict.fromkeys(d.account_id for d in docs if d.account_id))
        for aid in touched:
            ing.run_metadata(aid)
        rep = ing.report
        if rep.documents_added:
            for cb in self.on_ingest:
                cb()
        rescored = [self.rescore(tenant, aid) for aid in touched]
        return (rep.documents_added, rep.signals_added + rep.metadata_signals_added, rescored,
                [str(f) for f in rep.failures])

    def ingest_usage(self, tenant: str, points: Sequence[UsagePoint]) -> tuple[int, list[Rescored]]:
        self._require_accounts(tenant, {p.account_id for p in points})
        added = self.ledger.add_usage(points, tenant=tenant)
        touched = list(dict.fromkeys(p.account_id for p in points))
        return added, [self.rescore(tenant, aid) for aid in touched]

    def add_outcomes(self, tenant: str, outcomes: Sequence[Outcome]) -> int:
        self._require_accounts(tenant, {o.account_id for o in outcomes})
        return self.ledger.add_outcomes(outcomes, tenant=tenant)

    def review_signal(self, tenant: str, account_id: str, signal_id: str, *, verdict: str, reason: str,
                      author: str | None) -> tuple[dict[str, Any], Rescored]:
        """Record a CSM's verdict on a signal and rescore the account now: a rejected signal stops counting at
        once, in the stored snapshot too."""
        self.account(tenant, account_id)
        row = self.ledger.review_signal(signal_id, verdict, reason, author=author, account_id=account_id,
                                        tenant=tenant)
        return row, self.rescore(tenant, account_id)

    def add_override(self, tenant: str, account_id: str, *, tier: str | None, score: float | None, reason: str,
                     note: str | None, author: str | None, as_of: date | None) -> dict[str, Any]:
        """Record a CSM's judgement beside the model's score of that day (the same store as the CLI's)."""
        day = as_of or today()
        if day > today():
            raise InputError(f"as_of {day} is in the future")
        snap = self.ledger.snapshot_at(account_id, day, tenant=tenant)
        return self.feedback.add_override(
            account_id, as_of=day, tier=tier, score=score, reason=reason, note=note, author=author, tenant=tenant,
            model_ref=f"{snap.model_id}@{snap.model_version}" if snap is not None else None,
            model_score=snap.score if snap is not None else None)

