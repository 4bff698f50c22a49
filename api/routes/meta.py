"""Liveness, the caller's identity, and the event feed (what webhooks deliver, for pull-based clients)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Reader, State
from api.schemas import ErrorOut, EventOut, EventsOut, WhoAmI
from api.webhooks import event_id_for, event_type

router = APIRouter(responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}})


@router.get("/healthz", tags=["meta"], responses={401: {"description": "never"}})
async def healthz() -> dict[str, str]:
    """Liveness probe (no key needed, no data returned)."""
    return {"status": "ok"}


@router.get("/v1/whoami", tags=["meta"])
async def whoami(principal: Reader) -> WhoAmI:
    return WhoAmI(key_id=principal.key_id, tenant=principal.tenant, scope=principal.scope)


@router.get("/v1/events", tags=["events"])
def list_events(
    principal: Reader,
    state: State,
    since_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventsOut:
    """Score and tier events of the caller's tenant, oldest first; poll with ``since_id=next_since_id``."""
    out: list[EventOut] = []
    cursor = since_id
    # the ledger's feed spans tenants; page through it keeping only this tenant's events (bounded scan)
    for _ in range(20):
        batch = state.ledger.events(since_id=cursor, account_id=account_id, limit=500)
        if not batch:
            break
        for ev in batch:
            cursor = int(ev["id"])
            if ev.get("tenant", "default") != principal.tenant:
                continue
            out.append(EventOut(id=ev["id"], event_id=event_id_for(ev), kind=event_type(ev["kind"]), account_id=ev["account_id"],
                                occurred_at=ev["occurred_at"], payload=ev["payload"] or {}))
            if len(out) >= limit:
                break
        if len(out) >= limit:
            break
    return EventsOut(events=out, next_since_id=out[-1].id if len(out) >= limit else cursor)
