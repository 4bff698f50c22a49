"""Tables the HTTP API needs besides the ledger: API keys, webhooks, deliveries, the audit log.

(CSM overrides and model versions live in :mod:`memory.feedback`, shared with the CLI.)

They live in the ledger's database (same engine, same transactions model) so one backup holds everything.
Keys are stored only as a sha256 hash plus a visible prefix: a leaked database does not leak usable keys.
Every query that reads tenant data takes the tenant explicitly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from extractors.errors import InputError, NotFoundError
from memory.ledger import hold_schema_lock

Scope = Literal["read", "write"]
WebhookFormat = Literal["json", "slack"]
KEY_PREFIX = "ht_"

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("prefix", String(40), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("tenant", String(200), nullable=False, index=True),
    Column("name", String(200), nullable=False, default=""),
    Column("scope", String(10), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant", String(200), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", String(200), nullable=False),
    Column("events", JSON, nullable=False),
    Column("format", String(10), nullable=False, default="json"),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", String(40), nullable=False, index=True),
    Column("tenant", String(200), nullable=False, index=True),
    Column("event_id", String(80), nullable=False),
    Column("event_kind", String(80), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(12), nullable=False, index=True),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True, index=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("webhook_id", "event_id", name="uq_delivery_webhook_event"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("tenant", String(200), nullable=False, index=True),
    Column("key_id", String(40), nullable=True),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("detail", JSON, nullable=True),
)

api_state = Table(
    "api_state",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("value", Text, nullable=False),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything here is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    prefix: str
    tenant: str
    name: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, needed: Scope) -> bool:
        return self.scope == "write" or needed == "read"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    tenant: str
    url: str
    secret: str
    events: list[str]
    format: WebhookFormat
    active: bool
    created_at: datetime

    def wants(self, kind: str) -> bool:
        return self.active and ("*" in self.events or kind in self.events)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: str
    tenant: str
    event_id: str
    event_kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


MIGRATION_NAME = "api_0001_keys_webhooks_audit"


def ensure_tables(engine: Engine) -> None:
    """Create the API tables if missing and record it in the ledger's ``schema_migrations`` (idempotent)."""
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        conn.execution_options(ht_write=True)  # SQLite: BEGIN IMMEDIATE, as the ledger's writes
        with conn.begin():
            hold_schema_lock(conn)  # tables and their migration row in one locked transaction
            metadata.create_all(conn, checkfirst=True)
            if not inspect(conn).has_table("schema_migrations"):
                return
            done = conn.execute(
                text("SELECT 1 FROM schema_migrations WHERE name = :n"), {"n": MIGRATION_NAME}
            ).first()
            if done is None:
                conn.execute(
                    text("INSERT INTO schema_migrations (name, applied_at) VALUES (:n, :t)"),
                    {"n": MIGRATION_NAME, "t": datetime.now(UTC).replace(tzinfo=None)},
                )


class ApiStore:
    """API keys, webhooks, deliveries and the audit log on the ledger's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_tables(engine)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE, as the ledger's
        writes do), so concurrent senders queue on the busy timeout instead of failing on a lock upgrade."""
        with self.engine.connect() as conn:
            conn.execution_options(ht_write=True)
            with conn.begin():
                yield conn

    # ------------------------------------------------------------------------------------ keys
    def create_key(self, tenant: str, *, name: str = "", scope: Scope = "read") -> tuple[ApiKey, str]:
        """A new key and its token. The token is shown once; only its hash is stored."""
        if scope not in ("read", "write"):
            raise InputError(f"unknown scope {scope!r}; expected read or write")
        if not tenant or len(tenant) > 200:
            raise InputError("tenant must be 1-200 characters")
        visible = secrets.token_hex(4)
        prefix = f"{KEY_PREFIX}{visible}"
        token = f"{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=f"key_{visible}", prefix=prefix, tenant=tenant, name=name[:200], scope=scope, created_at=_now()
        )
        with self._write() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key.id,
                    prefix=prefix,
                    key_hash=hash_key(token),
                    tenant=tenant,
                    name=key.name,
                    scope=scope,
                    created_at=key.created_at,
                )
            )
        return key, token

    def key_for_token(self, token: str) -> ApiKey | None:
        """The active or revoked key a token belongs to, or None (constant-time comparison is by hash lookup)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_key(token))).mappings().first()
        return _key(row) if row else None

    def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        q = select(api_keys).order_by(api_keys.c.created_at)
        if tenant is not None:
            q = q.where(api_keys.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [_key(r) for r in conn.execute(q).mappings()]

    def revoke_key(self, key_id_or_prefix: str) -> ApiKey:
        with self._write() as conn:
            row = (
                conn.execute(
                    select(api_keys).where(
                        (api_keys.c.id == key_id_or_prefix) | (api_keys.c.prefix == key_id_or_prefix)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"no API key {key_id_or_prefix!r}")
            if row["revoked_at"] is None:
                conn.execute(update(api_keys).where(api_keys.c.id == row["id"]).values(revoked_at=_now()))
        return self.list_keys_by_id(row["id"])

    def list_keys_by_id(self, key_id: str) -> ApiKey:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no API key {key_id!r}")
        return _key(row)

    def revoke_named(self, tenant: str, name: str) -> int:
        """Revoke every active key of a tenant with this name (``serve`` replaces its own local key)."""
        with self._write() as conn:
            res = conn.execute(
                update(api_keys)
                .where(and_(api_keys.c.tenant == tenant, api_keys.c.name == name, api_keys.c.revoked_at.is_(None)))
                .values(revoked_at=_now())
            )
        return res.rowcount or 0

    # ------------------------------------------------------------------------------------ webhooks
    def add_webhook(
        self, tenant: str, url: str, *, secret: str | None = None, events: list[str] | None = None,
        format: WebhookFormat = "json",
    ) -> Webhook:
        hook = Webhook(
            id=f"wh_{secrets.token_hex(6)}",
            tenant=tenant,
            url=url,
            secret=secret or secrets.token_urlsafe(24),
            events=list(events or ["*"]),
            format=format,
            active=True,
            created_at=_now(),
        )
        with self._write() as conn:
            conn.execute(
                insert(webhooks).values(
                    id=hook.id, tenant=tenant, url=url, secret=hook.secret, events=hook.events,
                    format=format, active=True, created_at=hook.created_at,
                )
            )
        return hook

    def list_webhooks(self, tenant: str | None = None, *, active_only: bool = False) -> list[Webhook]:
        q = select(webhooks).order_by(webhooks.c.created_at)
        if tenant is not None:
            q = q.where(webhooks.c.tenant == tenant)
        if active_only:
            q = q.where(webhooks.c.active.is_(True))
        with self.engine.connect() as conn:
            return [_hook(r) for r in conn.execute(q).mappings()]

    def get_webhook(self, webhook_id: str, tenant: str) -> Webhook:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(webhooks).where(and_(webhooks.c.id == webhook_id, webhooks.c.tenant == tenant)))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFoundError(f"no webhook {webhook_id!r}")
        return _hook(row)

    def delete_webhook(self, webhook_id: str, tenant: str) -> None:
        """Deactivate (deliveries stay readable for the record)."""
        self.get_webhook(webhook_id, tenant)
        with self._write() as conn:
            conn.execute(
                update(webhooks)
                .where(and_(webhooks.c.id == webhook_id, webhooks.c.tenant == tenant))
                .values(active=False)
            )

    # ------------------------------------------------------------------------------------ deliveries
    def enqueue(self, hook: Webhook, event_id: str, kind: str, payload: dict[str, Any]) -> bool:
        """Queue one event for one webhook; the same event twice is a no-op (True if new)."""
        try:
            with self._write() as conn:
                conn.execute(
                    insert(deliveries).values(
                        webhook_id=hook.id, tenant=hook.tenant, event_id=event_id, event_kind=kind,
                        payload=payload, status="pending", attempts=0, next_attempt_at=_now(), created_at=_now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def due_deliveries(self, *, limit: int = 50, now: datetime | None = None) -> list[Delivery]:
        now = now or _now()
        q = (
            select(deliveries)
            .where(and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now))
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(q).mappings()]

    def claim_delivery(self, delivery_id: int, *, lease_s: float = 300.0, now: datetime | None = None) -> bool:
        """Take a due delivery for one sender: its next attempt moves ``lease_s`` ahead in the same UPDATE that
        checks it is still due, so of several API replicas (or threads) exactly one sends it. A sender that dies
        leaves it due again when the lease ends."""
        now = now or _now()
        with self._write() as conn:
            n = conn.execute(
                update(deliveries)
                .where(and_(deliveries.c.id == delivery_id, deliveries.c.status == "pending",
                            deliveries.c.next_attempt_at <= now))
                .values(next_attempt_at=now + timedelta(seconds=lease_s))
            ).rowcount
        return n == 1

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings().first()
        return _delivery(r) if r is not None else None

    def record_attempt(
        self, delivery_id: int, *, ok: bool, status_code: int | None, error: str | None,
        max_attempts: int, backoff_s: float,
    ) -> Delivery:
        """Record one attempt; schedule the next with exponential backoff or give up after max_attempts."""
        with self._write() as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings().one()
            attempts = row["attempts"] + 1
            values: dict[str, Any] = {"attempts": attempts, "last_status": status_code, "last_error": error}
            if ok:
                values |= {"status": "delivered", "delivered_at": _now(), "next_attempt_at": None, "last_error": None}
            elif attempts >= max_attempts:
                values |= {"status": "failed", "next_attempt_at": None}
            else:
                values["next_attempt_at"] = _now() + timedelta(seconds=backoff_s * 2 ** (attempts - 1))
            conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).mappings().one()
        return _delivery(row)

    def deliveries_for(self, webhook_id: str, tenant: str, *, limit: int = 100) -> list[Delivery]:
        q = (
            select(deliveries)
            .where(and_(deliveries.c.webhook_id == webhook_id, deliveries.c.tenant == tenant))
            .order_by(deliveries.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(q).mappings()]

    # ------------------------------------------------------------------------------------ audit + state
    def audit(
        self, *, tenant: str, key_id: str | None, method: str, path: str, status: int,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                insert(audit_log).values(
                    at=_now(), tenant=tenant, key_id=key_id, method=method, path=path[:2000], status=status,
                    detail=detail,
                )
            )

    def audit_entries(self, tenant: str, *, limit: int = 100) -> list[dict[str, Any]]:
        q = select(audit_log).where(audit_log.c.tenant == tenant).order_by(audit_log.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) | {"at": _aware(r["at"])} for r in conn.execute(q).mappings()]

    def get_state(self, name: str, default: str = "") -> str:
        with self.engine.connect() as conn:
            v = conn.execute(select(api_state.c.value).where(api_state.c.name == name)).scalar()
        return default if v is None else v

    def set_state(self, name: str, value: str) -> None:
        """Update, or insert when absent; two API replicas starting together may both insert: the loser
        updates instead."""
        for _ in range(2):
            try:
                with self._write() as conn:
                    n = conn.execute(update(api_state).where(api_state.c.name == name).values(value=value)).rowcount
                    if not n:
                        conn.execute(insert(api_state).values(name=name, value=value))
                return
            except IntegrityError:
                continue

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
                for t in (api_keys, webhooks, deliveries, audit_log)
            }


def _key(r: Any) -> ApiKey:
    return ApiKey(
        id=r["id"], prefix=r["prefix"], tenant=r["tenant"], name=r["name"], scope=r["scope"],
        created_at=_aware(r["created_at"]), revoked_at=_aware(r["revoked_at"]),  # type: ignore[arg-type]
    )


def _hook(r: Any) -> Webhook:
    events = r["events"]
    if isinstance(events, str):
        events = json.loads(events)
    return Webhook(
        id=r["id"], tenant=r["tenant"], url=r["url"], secret=r["secret"], events=list(events),
        format=r["format"], active=bool(r["active"]), created_at=_aware(r["created_at"]),  # type: ignore[arg-type]
    )


def _delivery(r: Any) -> Delivery:
    payload = r["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    return Delivery(
        id=r["id"], webhook_id=r["webhook_id"], tenant=r["tenant"], event_id=r["event_id"],
        event_kind=r["event_kind"], payload=payload, status=r["status"], attempts=r["attempts"],
        next_attempt_at=_aware(r["next_attempt_at"]), last_status=r["last_status"], last_error=r["last_error"],
        created_at=_aware(r["created_at"]), delivered_at=_aware(r["delivered_at"]),  # type: ignore[arg-type]
    )
