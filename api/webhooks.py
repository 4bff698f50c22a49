"""Webhook delivery: signed, retried with backoff, recorded.

Each request carries ``X-Healthtrace-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``,
``X-Healthtrace-Event-Id`` (stable: a receiver de-duplicates on it, since a retried delivery repeats it) and
``X-Healthtrace-Event``. Receivers check the signature with :func:`verify_signature`, which also rejects old
timestamps (replays).

Events come from the ledger's ``events`` table (written by API rescoring and by batch scoring alike); the
:class:`Dispatcher` follows that table with a cursor, queues one delivery per matching webhook and sends due
deliveries from a background thread, so no request waits on a receiver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from api.netguard import Resolver, UnsafeURLError, check_url
from extractors.errors import InputTooLargeError
from extractors.models import stable_id
from memory.api_store import ApiStore, Delivery, Webhook, WebhookFormat

log = logging.getLogger("healthtrace.webhooks")

SIGNATURE_HEADER = "X-Healthtrace-Signature"
EVENT_ID_HEADER = "X-Healthtrace-Event-Id"
EVENT_TYPE_HEADER = "X-Healthtrace-Event"
DEFAULT_TOLERANCE_S = 300
_CURSOR = "webhooks.event_cursor"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: str, body: bytes, header: str | None, *, tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None
) -> bool:
    """True when ``header`` is a valid signature of ``body`` made with ``secret`` within ``tolerance_s``.

    Compare in constant time; several ``v1=`` entries are accepted (secret rotation).
    """
    if not header:
        return False
    timestamp: int | None = None
    macs: list[str] = []
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t":
            try:
                timestamp = int(v)
            except ValueError:
                return False
        elif k == "v1":
            macs.append(v)
    if timestamp is None or not macs:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, m) for m in macs)


def event_id_for(event: dict[str, Any]) -> str:
    """Stable across retries and restarts: derived from the ledger event's dedupe key (or id)."""
    basis = event.get("dedupe_key") or f"ledger:{event.get('id')}"
    return "evt_" + stable_id(basis)[:24]


# batch scoring (scoring/alerts.py) names its alerts with underscores; receivers see one naming
_KIND_ALIASES = {"tier_changed": "tier.changed", "score_dropped": "score.dropped", "score_changed": "score.changed"}


def event_type(kind: str | None) -> str:
    return _KIND_ALIASES.get(kind or "", kind or "")


def event_envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a ``json`` webhook: id, type, time, account and the event's payload."""
    payload = dict(event.get("payload") or {})
    occurred = event.get("occurred_at")
    return {
        "id": event_id_for(event),
        "type": event_type(event.get("kind")),
        "occurred_at": occurred.isoformat() if isinstance(occurred, datetime) else occurred,
        "tenant": event.get("tenant") or payload.get("tenant") or "default",
        "account_id": event.get("account_id"),
        "data": payload,
    }


def account_link(base_url: str | None, account_id: str) -> str:
    from urllib.parse import quote

    base = (base_url or "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/dashboard/#/account/{quote(account_id, safe='')}"


def narrate_event(envelope: dict[str, Any]) -> str:
    """One plain sentence for a change event, from the fields the event carries."""
    data = envelope.get("data") or {}
    account = data.get("account_name") or envelope.get("account_id") or "an account"
    if data.get("narration"):
        return str(data["narration"])  # already names the account
    before = data.get("score_before", data.get("from_score"))
    after = data.get("score_after", data.get("to_score", data.get("score")))
    tb = data.get("tier_before", data.get("from_tier"))
    ta = data.get("tier_after", data.get("to_tier", data.get("tier")))
    parts: list[str] = []
    if before is not None and after is not None:
        parts.append(f"health score {float(before):.0f} → {float(after):.0f}")
    elif after is not None:
        parts.append(f"health score {float(after):.0f}")
    if tb and ta and tb != ta:
        parts.append(f"tier {tb} → {ta}")
    elif ta:
        parts.append(f"tier {ta}")
    reasons = data.get("reasons") or [m.get("reason") for m in data.get("movers") or [] if m.get("reason")]
    text = f"{account}: " + (", ".join(parts) if parts else str(envelope.get("type")))
    if reasons:
        text += ". Why: " + "; ".join(str(r) for r in reasons[:3])
    return text


def slack_body(envelope: dict[str, Any], base_url: str | None) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook body: ``text`` with the narrated change and a link."""
    link = account_link(base_url, str(envelope.get("account_id") or ""))
    return {"text": f"{narrate_event(envelope)} <{link}|Open account>", "event_id": envelope["id"]}


def render_body(hook: Webhook, envelope: dict[str, Any], base_url: str | None) -> bytes:
    body = slack_body(envelope, base_url) if hook.format == "slack" else envelope
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


def register_webhook(
    store: ApiStore, tenant: str, url: str, *, secret: str | None, events: list[str], format: WebhookFormat,
    allow_private: bool = False, max_per_tenant: int = 50, resolver: Resolver | None = None,
) -> Webhook:
    """The one way to add a webhook (API and CLI): the URL must not reach an internal address, and a tenant
    has at most ``max_per_tenant`` active hooks."""
    check_url(url, allow_private=allow_private, resolver=resolver)
    if len(store.list_webhooks(tenant, active_only=True)) >= max_per_tenant:
        raise InputTooLargeError(f"this tenant already has {max_per_tenant} active webhooks (the limit); "
                                 "delete one first")
    return store.add_webhook(tenant, url, secret=secret, events=events, format=format)


# What a delivery record says on failure: no network detail (refused vs reset vs timed out), so the delivery
# log cannot be used to scan ports; the HTTP status of a receiver that answered is still recorded.
DELIVERY_FAILED = "delivery failed: receiver unreachable or no valid response"
DELIVERY_REFUSED = "delivery refused: URL not allowed"


class Dispatcher:
    """Follows the ledger's events, queues deliveries and sends them with retries."""

    def __init__(
        self,
        store: ApiStore,
        events_source: Callable[[int, int], list[dict[str, Any]]],
        *,
        max_attempts: int = 6,
        backoff_s: float = 2.0,
        timeout_s: float = 5.0,
        base_url: str | None = None,
        client: httpx.Client | None = None,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        sender: Callable[[Delivery], None] | None = None,
        claim_lease_s: float = 300.0,
    ) -> None:
        self.store = store
        # ``sender``: hand a claimed delivery to the job queue (api/tasks.py) instead of sending it here
        self.sender = sender
        self.claim_lease_s = claim_lease_s
        self.events_source = events_source  # (since_id, limit) -> events, oldest first
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.base_url = base_url
        self.allow_private = allow_private
        self.resolver = resolver
        self.client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- one pass
    def fan_out(self, limit: int = 500) -> int:
        """Queue deliveries for ledger events after the cursor; returns the number queued."""
        with self._lock:
            cursor = int(self.store.get_state(_CURSOR, "0") or 0)
            events = self.events_source(cursor, limit)
            if not events:
                return 0
            queued = 0
            hooks_by_tenant: dict[str, list[Webhook]] = {}
            for ev in events:
                env = event_envelope(ev)
                tenant = env["tenant"]
                if tenant not in hooks_by_tenant:
                    hooks_by_tenant[tenant] = self.store.list_webhooks(tenant, active_only=True)
                for hook in hooks_by_tenant[tenant]:
                    # only hooks that existed when the event happened; a new hook does not get history
                    if hook.wants(str(env["type"])) and self.store.enqueue(hook, env["id"], str(env["type"]), env):
                        queued += 1
                cursor = max(cursor, int(ev["id"]))
            self.store.set_state(_CURSOR, str(cursor))
            return queued

    def skip_history(self) -> None:
        """Start the cursor at the newest event, so a fresh server does not replay an old backlog."""
        if self.store.get_state(_CURSOR, ""):
            return
        last = 0
        while True:
            batch = self.events_source(last, 1000)
            if not batch:
                break
            last = max(int(e["id"]) for e in batch)
        self.store.set_state(_CURSOR, str(last))

    def deliver_due(self, limit: int = 50) -> list[Delivery]:
        """Send (or queue) each due delivery this process could claim: API replicas sharing one database
        never send the same attempt twice."""
        done: list[Delivery] = []
        hooks: dict[str, Webhook] = {}
        for d in self.store.due_deliveries(limit=limit):
            if not self.store.claim_delivery(d.id, lease_s=self.claim_lease_s):
                continue  # another replica (or the queue) has it
            if self.sender is not None:
                self.sender(d)
                continue
            if d.webhook_id not in hooks:
                found = [h for h in self.store.list_webhooks(d.tenant) if h.id == d.webhook_id]
                if not found:
                    continue
                hooks[d.webhook_id] = found[0]
            done.append(self._send(hooks[d.webhook_id], d))
        return done

    def deliver_one(self, delivery_id: int, *, attempts: int | None = None) -> Delivery | None:
        """Send one delivery claimed earlier (a queue job); skipped when it is no longer pending or, with
        ``attempts``, when another sender already made that attempt."""
        d = self.store.get_delivery(delivery_id)
        if d is None or d.status != "pending" or (attempts is not None and d.attempts != attempts):
            return None
        found = [h for h in self.store.list_webhooks(d.tenant) if h.id == d.webhook_id]
        if not found:
            return None
        return self._send(found[0], d)

    def _send(self, hook: Webhook, d: Delivery) -> Delivery:
        body = render_body(hook, d.payload, self.base_url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "healthtrace-webhooks/1",
            SIGNATURE_HEADER: sign(hook.secret, body, int(time.time())),
            EVENT_ID_HEADER: d.event_id,
            EVENT_TYPE_HEADER: d.event_kind,
        }
        status: int | None = None
        error: str | None = None
        ok = False
        final = not hook.active
        if not hook.active:
            error = "webhook deactivated"
        else:
            try:
                # checked again now (DNS may have changed since registration) and sent to the checked address
                target = check_url(hook.url, allow_private=self.allow_private, resolver=self.resolver,
                                   require_resolved=True)
                assert target is not None
                url, extra, ext = target.pinned()
                resp = self.client.post(url, content=body, headers=headers | extra, extensions=ext)
                status = resp.status_code
                ok = 200 <= status < 300
                if not ok:  # a redirect counts as a failure: it is never followed
                    error = f"HTTP {status}"
            except UnsafeURLError:
                error, final = DELIVERY_REFUSED, True
            except httpx.HTTPError:
                log.debug("webhook %s delivery failed", hook.id, exc_info=True)
                error = DELIVERY_FAILED
        return self.store.record_attempt(
            d.id, ok=ok, status_code=status, error=error,
            max_attempts=1 if final else self.max_attempts, backoff_s=self.backoff_s,
        )

    def run_once(self) -> list[Delivery]:
        self.fan_out()
        return self.deliver_due()

    # -------------------------------------------------------------------------------- background
    def notify(self) -> None:
        """New events were written: wake the worker now instead of at the next poll."""
        self._wake.set()

    def start(self, poll_s: float = 1.0) -> None:
        if self._thread is not None:
            return
        self.skip_history()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except Exception:  # the worker must survive a bad receiver or a locked database
                    log.exception("webhook dispatch pass failed")
                self._wake.wait(poll_s)
                self._wake.clear()

        self._thread = threading.Thread(target=loop, name="healthtrace-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.client.close()


def dispatcher_for(store: ApiStore, ledger: Any, settings: Any, **kwargs: Any) -> Dispatcher:
    """A dispatcher configured from settings (the API's, and a queue worker's for one delivery)."""
    return Dispatcher(
        store,
        lambda since, limit: ledger.events(since_id=since, limit=limit),
        max_attempts=settings.webhook_max_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
        base_url=settings.public_url,
        allow_private=settings.webhook_allow_private,
        **kwargs,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
