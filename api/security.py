"""API keys, tenants and per-key rate limits.

A request carries ``Authorization: Bearer <token>`` (or ``X-API-Key: <token>``). The token is hashed and
looked up; the key's tenant then bounds every read and write of that request. Rate limits are an in-process
token bucket per key: cheap, and right for a single server process (put a shared limiter in front of
several processes).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from extractors.errors import AuthError, PermissionDeniedError
from memory.api_store import ApiKey, ApiStore, Scope

_CACHE_TTL_S = 2.0  # a revoked key stops working within this many seconds


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key and the tenant it is scoped to."""

    key_id: str
    tenant: str
    scope: Scope

    def require(self, needed: Scope) -> None:
        if not (self.scope == "write" or needed == "read"):
            raise PermissionDeniedError(f"this API key has scope {self.scope!r}; this operation needs {needed!r}")


class RateLimited(Exception):
    """Too many requests for one key; ``retry_after`` seconds until a token is free."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"rate limit exceeded; retry in {retry_after:.1f} s")


class TokenBuckets:
    """One bucket per key: ``rate`` tokens per second up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited((1.0 - tokens) / self.rate)
            self._buckets[key] = (tokens - 1.0, now)


class Authenticator:
    """Token -> Principal, with a short cache so the hot path does not hit the database every request."""

    def __init__(self, store: ApiStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        if len(token) > 200:
            raise AuthError("invalid API key")
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now - hit[0] < _CACHE_TTL_S:
            key = hit[1]
        else:
            key = self.store.key_for_token(token)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = (now, key)
        if key is None:
            raise AuthError("invalid API key")
        if not key.active:
            raise AuthError(f"API key {key.prefix} was revoked")
        return Principal(key_id=key.id, tenant=key.tenant, scope=key.scope)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def bearer_token(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise AuthError("the Authorization header must be 'Bearer <key>'")
    return None
