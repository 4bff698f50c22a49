"""FastAPI dependencies as typed ``Annotated`` aliases: routes declare what they need in their signature.

``Reader`` authenticates (401), rate-limits (429) and yields the caller's :class:`Principal`; ``Writer`` also
needs the ``write`` scope (403). The tenant in the principal is the only tenant a route may touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.security import Authenticator, Principal, RedisTokenBuckets, TokenBuckets, bearer_token
from api.service import HealthService
from api.settings import Settings
from memory.api_store import ApiStore
from memory.ledger import Ledger

if TYPE_CHECKING:
    from api.app import VectorIndexer
    from api.container import Services
    from api.worker import IngestWorker
    from api.webhooks import Dispatcher
    from memory.jobs import JobStore

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ht_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key, as a header")


@dataclass
class AppState:
    """Everything a request may use; built once by ``create_app`` from the container's services."""

    settings: Settings
    ledger: Ledger
    store: ApiStore
    service: HealthService
    auth: Authenticator
    buckets: TokenBuckets | RedisTokenBuckets
    dispatcher: Dispatcher | None = None
    jobs: JobStore | None = None  # set when a broker is configured (HEALTHTRACE_BROKER_URL)
    indexer: VectorIndexer | None = None
    worker: IngestWorker = None  # type: ignore[assignment] - set by create_app
    services: Services | None = None  # the container (api/container.py) the rest was taken from


# Dependencies are ``async def`` on purpose: a sync dependency costs a thread-pool hop per request, and
# these only read memory (authentication hits the database once per key every couple of seconds).
async def get_state(request: Request) -> AppState:
    return request.app.state.ht


State = Annotated[AppState, Depends(get_state)]


async def get_service(request: Request) -> HealthService:
    return request.app.state.ht.service


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.ht.settings


Service = Annotated[HealthService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    state: AppState = request.app.state.ht
    token = bearer_token(request.headers.get("authorization"), api_key)
    principal = state.auth.authenticate(token)
    request.state.principal = principal  # read by the audit middleware
    state.buckets.take(principal.key_id)
    return principal


async def require_write(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    principal.require("write")
    return principal


Reader = Annotated[Principal, Depends(authenticate)]
Writer = Annotated[Principal, Depends(require_write)]
