"""``healthtrace serve`` (HTTP API + dashboard), ``healthtrace keys ...`` and ``healthtrace webhooks ...``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from memory.api_store import ApiStore

DASHBOARD_KEY_NAME = "dashboard (healthtrace serve)"


class ScopeOpt(str, Enum):
    read = "read"
    write = "write"


class FormatOpt(str, Enum):
    json = "json"
    slack = "slack"


@contextmanager
def _store() -> Iterator[ApiStore]:
    """The key/webhook store of the configured ledger, closed when the command is done with it."""
    from memory.api_store import ApiStore
    from api.container import build_services

    ledger = build_services().ledger
    try:
        yield ApiStore(ledger.engine)
    finally:
        ledger.close()


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on (127.0.0.1 = this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    tenant: Annotated[str, typer.Option(help="Tenant of the dashboard key printed at start.")] = "default",
    dashboard_key: Annotated[bool, typer.Option("--dashboard-key/--no-dashboard-key",
                                                help="Create (and print) a fresh read key for the dashboard.")] = True,
) -> None:
    """Run the HTTP API and the dashboard. Prints a dashboard link carrying a fresh local read key."""
    import uvicorn

    from api.app import create_app
    from api.container import current_settings

    settings = current_settings()
    if settings.public_url is None:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    app = create_app(settings)
    base = settings.public_url.rstrip("/")  # type: ignore[union-attr]
    if dashboard_key:
        store = app.state.ht.store
        store.revoke_named(tenant, DASHBOARD_KEY_NAME)  # one live dashboard key per tenant, replaced each start
        key, token = store.create_key(tenant, name=DASHBOARD_KEY_NAME, scope="read")
        typer.echo(f"Dashboard: {base}/dashboard/#key={token}")
        typer.echo(f"Read key for tenant {tenant!r} ({key.prefix}): {token}")
    typer.echo(f"API docs:  {base}/docs")
    uvicorn.run(app, host=host, port=port, log_level="info")


keys_app = typer.Typer(help="API keys: create, list, revoke. Keys are stored hashed; a token is shown once.",
                       no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant this key may read/write.")],
    name: Annotated[str, typer.Option(help="A label, e.g. the integration using it.")] = "",
    scope: Annotated[ScopeOpt, typer.Option(help="read: GET routes; write: also ingest, overrides, webhooks.")] = ScopeOpt.read,
) -> None:
    """Create a key and print its token (only now: it is stored as a hash)."""
    with _store() as store:
        key, token = store.create_key(tenant, name=name, scope=scope.value)
    typer.echo(token)
    typer.echo(f"created {key.id} (prefix {key.prefix}, tenant {key.tenant!r}, scope {key.scope})", err=True)


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None) -> None:
    """Keys with prefix, tenant, scope and state (never the token)."""
    with _store() as store:
        keys = store.list_keys(tenant)
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        typer.echo(f"{k.id}\t{k.prefix}\t{k.tenant}\t{k.scope}\t{state}\t{k.created_at:%Y-%m-%d %H:%M}\t{k.name}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id (key_...) or prefix (ht_...).")]) -> None:
    """Revoke a key; requests with it fail with 401 within seconds."""
    with _store() as store:
        k = store.revoke_key(key)
    typer.echo(f"revoked {k.id} ({k.prefix}, tenant {k.tenant!r})")


webhooks_app = typer.Typer(help="Webhooks: signed score/tier events to your URL.", no_args_is_help=True)


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="https://... receiver (Slack incoming webhook with --format slack).")],
    tenant: Annotated[str, typer.Option(help="Whose events to send.")] = "default",
    secret: Annotated[str | None, typer.Option(help="Signing secret (>= 16 chars); generated when omitted.")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help="score.changed, tier.changed, score.dropped; all when omitted.")] = None,
    format: Annotated[FormatOpt, typer.Option(help="json (signed envelope) or slack (text message).")] = FormatOpt.json,
) -> None:
    """Register a webhook and print its id and signing secret."""
    from pydantic import ValidationError

    from api.schemas import WebhookIn
    from extractors.errors import InputError

    try:
        spec = WebhookIn(url=url, secret=secret, events=event or ["*"], format=format.value)
    except ValidationError as e:
        first = e.errors()[0]
        raise InputError(f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from None
    from api.container import current_settings
    from api.webhooks import register_webhook

    settings = current_settings()
    with _store() as store:
        hook = register_webhook(store, tenant, str(spec.url), secret=spec.secret, events=list(spec.events),
                                format=spec.format, allow_private=settings.webhook_allow_private,
                                max_per_tenant=settings.webhook_max_per_tenant)
    typer.echo(json.dumps({"id": hook.id, "url": hook.url, "events": hook.events, "format": hook.format,
                           "secret": hook.secret}))


@webhooks_app.command("list")
def webhooks_list(tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None) -> None:
    with _store() as store:
        hooks = store.list_webhooks(tenant)
    for h in hooks:
        typer.echo(f"{h.id}\t{h.tenant}\t{'active' if h.active else 'inactive'}\t{h.format}\t{','.join(h.events)}\t{h.url}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.add_typer(keys_app, name="keys")
    app.add_typer(webhooks_app, name="webhooks")
