"""Webhook registrations of the caller's tenant and their delivery records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import Reader, State, Writer
from api.netguard import mask_url
from api.schemas import DeliveryOut, ErrorOut, WebhookIn, WebhookOut
from memory.api_store import Webhook

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"],
                   responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
                              413: {"model": ErrorOut}, 429: {"model": ErrorOut}})

HookId = Annotated[str, Path(min_length=1, max_length=40)]


def _out(h: Webhook, *, with_secret: bool = False, full_url: bool = True) -> WebhookOut:
    return WebhookOut(id=h.id, url=h.url if full_url else mask_url(h.url), events=h.events, format=h.format, active=h.active,
                      created_at=h.created_at, secret=h.secret if with_secret else None)


@router.post("", response_model=WebhookOut, status_code=201)
def add_webhook(body: WebhookIn, principal: Writer, state: State) -> WebhookOut:
    """Register a URL; the response carries the signing secret (shown once)."""
    from api.webhooks import register_webhook

    s = state.settings
    hook = register_webhook(state.store, principal.tenant, str(body.url), secret=body.secret,
                            events=list(body.events), format=body.format, allow_private=s.webhook_allow_private,
                            max_per_tenant=s.webhook_max_per_tenant)
    return _out(hook, with_secret=True)


@router.get("", response_model=list[WebhookOut])
def list_webhooks(principal: Reader, state: State) -> list[WebhookOut]:
    """Read-scope keys (the dashboard's too) see masked URLs: credentials and path tokens stay hidden."""
    full = principal.scope == "write"
    return [_out(h, full_url=full) for h in state.store.list_webhooks(principal.tenant)]


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
def delete_webhook(webhook_id: HookId, principal: Writer, state: State) -> Response:
    state.store.delete_webhook(webhook_id, principal.tenant)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    webhook_id: HookId, principal: Reader, state: State, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeliveryOut]:
    state.store.get_webhook(webhook_id, principal.tenant)
    return [
        DeliveryOut(id=d.id, event_id=d.event_id, event_kind=d.event_kind, status=d.status, attempts=d.attempts,
                    last_status=d.last_status, last_error=d.last_error, created_at=d.created_at,
                    delivered_at=d.delivered_at, next_attempt_at=d.next_attempt_at)
        for d in state.store.deliveries_for(webhook_id, principal.tenant, limit=limit)
    ]
