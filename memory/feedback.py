"""The feedback loop's memory: CSM overrides and versioned scoring models, in the ledger's database.

Two tables of their own (``overrides``, ``model_versions``), created idempotently on the ledger's engine when the
store opens (``CREATE TABLE IF NOT EXISTS``), so they never interfere with the ledger's ordered migrations.
Outcomes themselves are the ledger's (``Ledger.add_outcomes``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Integer, String, Text, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from extractors.errors import InputError, NotFoundError
from extractors.models import TIERS, tier_for
from memory.ledger import DEFAULT_TENANT, Ledger, UTCDateTime, _utcnow, hold_schema_lock

REASON_CODES = (
    "champion_risk", "executive_change", "budget_cut", "competitor", "product_fit", "support_issues",
    "strategic_account", "expansion_signal", "relationship_strong", "data_quality", "other",
)
MAX_NOTE = 4000


class _Base(DeclarativeBase):
    pass


class OverrideRow(_Base):
    __tablename__ = "overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(100), index=True)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    as_of: Mapped[date] = mapped_column(Date)
    score: Mapped[float | None] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))
    model_ref: Mapped[str | None] = mapped_column(String(200))  # id@version the CSM disagreed with
    model_score: Mapped[float | None] = mapped_column(Float)
    model_tier: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class ModelVersionRow(_Base):
    __tablename__ = "model_versions"

    tenant: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(50), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    yaml_text: Mapped[str] = mapped_column(Text)
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_utcnow)


class FeedbackStore:
    """Overrides and model versions on an open :class:`Ledger` (the ledger owns the connection)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        with ledger.write() as conn:
            hold_schema_lock(conn)
            _Base.metadata.create_all(conn, checkfirst=True)

    # ------------------------------------------------------------------ overrides
    def add_override(
        self,
        account_id: str,
        *,
        as_of: date,
        tier: str | None = None,
        score: float | None = None,
        reason: str,
        note: str | None = None,
        author: str | None = None,
        model_ref: str | None = None,
        model_score: float | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        """Record a CSM's score or tier for an account (the model's view at that time kept beside it)."""
        if score is None and tier is None:
            raise InputError("an override needs --tier or --score")
        if score is not None and not 0 <= score <= 100:
            raise InputError(f"override score must be 0-100, got {score}")
        if tier is not None and tier not in TIERS:
            raise InputError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
        if score is not None and tier is not None and tier_for(score) != tier:
            raise InputError(f"score {score} is in tier {tier_for(score)!r}, not {tier!r}; give one or make them agree")
        if reason not in REASON_CODES:
            raise InputError(f"unknown reason code {reason!r}; expected one of {', '.join(REASON_CODES)}")
        if note is not None and len(note) > MAX_NOTE:
            raise InputError(f"note is {len(note)} characters; the limit is {MAX_NOTE}")
        self.ledger.get_account(account_id, tenant)  # NotFoundError names the account
        row = {
            "tenant": tenant, "account_id": account_id, "as_of": as_of, "score": score,
            "tier": tier or tier_for(score),  # type: ignore[arg-type]
            "reason": reason, "note": note, "author": author, "model_ref": model_ref, "model_score": model_score,
            "model_tier": tier_for(model_score) if model_score is not None else None, "created_at": _utcnow(),
        }
        with self.ledger.write() as conn:
            res = conn.execute(OverrideRow.__table__.insert().values(**row))
            row["id"] = int(res.inserted_primary_key[0]) if res.inserted_primary_key else None
        return row

    def overrides(self, *, account_id: str | None = None, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        t = OverrideRow.__table__
        q = select(t).where(t.c.tenant == tenant)
        if account_id is not None:
            q = q.where(t.c.account_id == account_id)
        with self.ledger.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(t.c.as_of, t.c.id))]

    # ------------------------------------------------------------------ model versions
    def register_model(self, model: Any, yaml_text: str, *, tenant: str = DEFAULT_TENANT,
                       activate: bool = False) -> bool:
        """Store a model version (idempotent on id + version); True if it was new."""
        t = ModelVersionRow.__table__
        with self.ledger.write() as conn:
            hit = conn.execute(select(t.c.content_hash).where(
                t.c.tenant == tenant, t.c.model_id == model.id, t.c.version == model.version)).first()
            if hit is not None and hit[0] != model.content_hash:
                raise InputError(f"model {model.id}@{model.version} is already stored with different content; "
                                 f"give the new model a new version")
            new = hit is None
            if new:
                conn.execute(t.insert().values(
                    tenant=tenant, model_id=model.id, version=model.version, content_hash=model.content_hash,
                    yaml_text=yaml_text, calibration=model.calibration, active=False, created_at=_utcnow()))
        if activate:
            self.activate(model.id, model.version, tenant=tenant)
        return new

    def model_versions(self, *, tenant: str = DEFAULT_TENANT) -> list[dict[str, Any]]:
        t = ModelVersionRow.__table__
        q = select(t.c.model_id, t.c.version, t.c.content_hash, t.c.active, t.c.created_at, t.c.calibration).where(
            t.c.tenant == tenant).order_by(t.c.created_at, t.c.model_id, t.c.version)
        with self.ledger.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def activate(self, model_id: str, version: str, *, tenant: str = DEFAULT_TENANT) -> None:
        """Make one stored version the active model of the tenant (every other version inactive)."""
        t = ModelVersionRow.__table__
        with self.ledger.write() as conn:
            hit = conn.execute(select(t.c.version).where(
                t.c.tenant == tenant, t.c.model_id == model_id, t.c.version == version)).first()
            if hit is None:
                raise NotFoundError(f"no stored model {model_id}@{version}; `healthtrace models versions` lists them")
            conn.execute(update(t).where(t.c.tenant == tenant).values(active=False))
            conn.execute(update(t).where(t.c.tenant == tenant, t.c.model_id == model_id, t.c.version == version)
                         .values(active=True))

    def stored_model_yaml(self, model_id: str, version: str, *, tenant: str = DEFAULT_TENANT) -> str | None:
        """The YAML text of one stored version, or None."""
        t = ModelVersionRow.__table__
        with self.ledger.read() as conn:
            return conn.scalar(select(t.c.yaml_text).where(
                t.c.tenant == tenant, t.c.model_id == model_id, t.c.version == version))

    def deactivate_all(self, *, tenant: str = DEFAULT_TENANT) -> None:
        """No stored version is active (a bundled model was chosen instead)."""
        t = ModelVersionRow.__table__
        with self.ledger.write() as conn:
            conn.execute(update(t).where(t.c.tenant == tenant).values(active=False))

    def active_model_yaml(self, *, tenant: str = DEFAULT_TENANT) -> tuple[str, str, str] | None:
        """(id, version, YAML text) of the active model, or None when none is active."""
        t = ModelVersionRow.__table__
        with self.ledger.read() as conn:
            r = conn.execute(select(t.c.model_id, t.c.version, t.c.yaml_text).where(
                t.c.tenant == tenant, t.c.active.is_(True))).first()
        return None if r is None else (r[0], r[1], r[2])


def parse_model_ref(ref: str) -> tuple[str, str]:
    """``ID@VERSION`` -> (id, version)."""
    if ref.count("@") != 1 or not all(ref.split("@")):
        raise InputError(f"expected ID@VERSION (e.g. calibrated@20140626-1a2b3c4d), got {ref!r}")
    model_id, version = ref.split("@")
    return model_id, version
