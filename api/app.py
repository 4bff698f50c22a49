"""The HTTP API and dashboard, built by a factory so tests and ``healthtrace serve`` get the same app.

Errors are JSON ``{"error": {"code", "message"}}`` with the right status (401, 403, 404, 413, 422, 429) and
never a stack trace. Writes are recorded in the audit log. Request bodies are bounded before they are read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.container import Services, build_services
from api.deps import AppState
from api.security import Authenticator, RateLimited, make_buckets
from api.service import HealthService
from api.settings import Settings
from api.worker import BusyError, IngestWorker
from extractors.errors import (
    AuthError,
    ConfigError,
    HealthtraceError,
    InputError,
    InputTooLargeError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from extractors.redact import redact
from memory.api_store import ApiStore
from memory.ledger import Ledger

log = logging.getLogger("healthtrace.api")

API_VERSION = "1"
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def error_response(status: int, code: str, message: str, *, details: list[Any] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


_STATUS: list[tuple[type[HealthtraceError], int, str]] = [
    (AuthError, 401, "unauthorized"),
    (PermissionDeniedError, 403, "forbidden"),
    (NotFoundError, 404, "not_found"),
    (InputTooLargeError, 413, "too_large"),
    (InputError, 422, "invalid_input"),
    (ConfigError, 500, "configuration_error"),
    (StoreError, 503, "store_unavailable"),
]


def _classify(e: HealthtraceError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(e, cls):
            return status, code
    return 400, "bad_request"


class BoundedBodyAndAudit:
    """Pure ASGI middleware: 413 for bodies over the limit (declared or streamed), audit of writes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, store: ApiStore) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await _send_json(send, 413, "too_large", f"request body over {self.max_bytes} bytes")
                return
        seen = 0
        status_holder: dict[str, int] = {}
        answered = False  # we sent the 413 ourselves; whatever the app answers after is dropped

        async def bounded_receive() -> Message:
            nonlocal seen, answered
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    if "status" not in status_holder and not answered:
                        answered = True
                        status_holder["status"] = 413
                        await _send_json(send, 413, "too_large", f"request body over {self.max_bytes} bytes")
                    raise _BodyTooLarge()
            return msg

        async def tracking_send(msg: Message) -> None:
            if answered:
                return
            if msg["type"] == "http.response.start":
                status_holder["status"] = msg["status"]
            await send(msg)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _BodyTooLarge:
            status_holder.setdefault("status", 413)
        method = scope.get("method", "GET")
        principal = (scope.get("state") or {}).get("principal")
        path = scope.get("path", "")
        if method in _WRITE_METHODS and principal is not None and not path.endswith("/whatif"):
            try:
                self.store.audit(tenant=principal.tenant, key_id=principal.key_id, method=method,
                                 path=path, status=status_holder.get("status", 500),
                                 detail={"query": (scope.get("query_string") or b"").decode("latin-1")[:500]})
            except Exception:  # an audit failure must not turn a done write into an error
                log.exception("audit log write failed")


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class VectorIndexer:
    """Embeds newly ingested documents in the background, off the request path: a task of the ingest worker
    (api/worker.py) that runs between ingest jobs, with a one-thread embedding model so a core stays free
    for the event loop."""

    def __init__(self, services: Services, worker: IngestWorker) -> None:
        self.services = services
        self.ledger = services.ledger
        self.worker = worker
        self._memory: Any = None
        worker.on_idle(self.run_once)

    def notify(self) -> None:
        self.worker.wake_idle()

    def run_once(self) -> None:
        from memory.vectors import index_pending

        if self._memory is None:
            self._memory = self.services.open_vectors(embed_threads=self.services.settings.api_embed_threads)
        # one small batch per idle slot, so a queued ingest waits for at most one batch, not the backlog
        if index_pending(self.ledger, self._memory, batch_docs=4, limit=4)["more"]:
            self.worker.wake_idle()

    def stop(self) -> None:
        """Nothing of its own to stop: the worker owns the thread."""


def create_app(
    settings: Settings | None = None,
    *,
    ledger: Ledger | None = None,
    services: Services | None = None,
    webhooks: bool = True,
    index_vectors: bool = True,
) -> FastAPI:
    """The app, on the container's services (api/container.py): ``services`` when given, else built from
    ``settings`` (default: the environment's) with ``ledger`` shared with the caller (tests) when given.

    ``webhooks`` starts the delivery worker with the app; ``index_vectors`` embeds new documents in the
    background (both off for most unit tests, which drive them directly).
    """
    own = services is None
    if services is None:
        services = build_services(settings, ledger=ledger)
    settings = services.settings
    from extractors.redact import install_log_redaction, register_secret

    install_log_redaction()
    if settings.llm_api_key is not None:
        register_secret(settings.llm_api_key.get_secret_value())
    ledger = services.ledger
    store = services.store
    service = services.health
    state = AppState(
        settings=settings,
        ledger=ledger,
        store=store,
        service=service,
        auth=Authenticator(store),
        buckets=make_buckets(settings),
        services=services,
    )
    from api.webhooks import dispatcher_for

    sender = None
    if settings.broker_url:  # the scaled deployment: ingest, rescoring and webhook sends are queue jobs
        from api import tasks
        from memory.jobs import JobStore

        tasks.configure(settings)
        state.jobs = JobStore(ledger)
        sender = lambda d: tasks.queue_delivery(d, state.jobs)  # noqa: E731
    dispatcher = dispatcher_for(store, ledger, settings, sender=sender)
    state.dispatcher = dispatcher
    service.on_events.append(dispatcher.notify)
    state.worker = IngestWorker(settings.api_ingest_queue)
    if index_vectors:
        indexer = VectorIndexer(services, state.worker)
        state.indexer = indexer
        service.on_ingest.append(indexer.notify)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if webhooks:
            dispatcher.start()
        try:
            yield
        finally:
            dispatcher.stop()
            state.worker.stop()
            if own:
                services.close()

    app = FastAPI(
        title="healthtrace",
        version=API_VERSION,
        description="Explainable customer-health scores for CS platforms: every point traces to cited words "
        "or a usage metric. Authenticate with an API key (`healthtrace keys create`).",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's Swagger page loads its scripts from a CDN: blank offline; ours is local
        redoc_url=None,
        responses={
            401: {"description": "Missing or invalid API key"},
            429: {"description": "Rate limit exceeded"},
        },
    )
    app.state.ht = state
    _install_error_handlers(app)
    app.add_middleware(BoundedBodyAndAudit, max_bytes=settings.api_max_body_bytes, store=store)

    from api.routes import accounts, ingest, jobs as job_routes, meta, models, webhooks as webhook_routes

    for module in (meta, accounts, ingest, models, webhook_routes, job_routes):
        app.include_router(module.router)

    static = resources.files("api").joinpath("static")
    docs_html = static.joinpath("apidocs.html").read_text(encoding="utf-8")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The API reference from /openapi.json, with no external script or stylesheet."""
        return HTMLResponse(docs_html)

    app.mount("/dashboard", StaticFiles(directory=str(static), html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HealthtraceError)
    async def _healthtrace(_: Request, e: HealthtraceError) -> JSONResponse:
        status, code = _classify(e)
        if status >= 500:
            log.error("request failed: %s: %s", type(e).__name__, e)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        message = redact(str(e)) if status < 500 or isinstance(e, ConfigError) else \
            "the data store is unavailable; retry"
        return error_response(status, code, message, headers=headers)

    @app.exception_handler(BusyError)
    async def _busy(_: Request, e: BusyError) -> JSONResponse:
        return error_response(503, "busy", str(e), headers={"Retry-After": "1"})

    @app.exception_handler(RateLimited)
    async def _limited(_: Request, e: RateLimited) -> JSONResponse:
        return error_response(429, "rate_limited", str(e), headers={"Retry-After": str(max(1, round(e.retry_after)))})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [str(x) for x in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
            for err in e.errors()[:50]
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        return error_response(422, "invalid_input", f"{where}: {first['msg']}" if where else first["msg"],
                              details=details)

    @app.exception_handler(ValidationError)
    async def _model_invalid(_: Request, e: ValidationError) -> JSONResponse:
        # a domain model refused a value the request schema let through: still the client's input
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid input"}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error_response(422, "invalid_input", f"{where}: {first['msg']}" if where else str(first["msg"]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return error_response(e.status_code, codes.get(e.status_code, "http_error"), str(e.detail),
                              headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "internal error; the server log has the details")
