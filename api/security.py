"""API keys, tenants and per-key rate limits.

A request carries ``Authorization: Bearer <token>`` (or ``X-API-Key: <token>``). The token is hashed and
looked up; the key's tenant then bounds every read and write of that request. Rate limits are a token bucket
per key: in-process for a single server, or in Redis (:class:`RedisTokenBuckets`, HEALTHTRACE_REDIS_URL or a
redis:// broker) so that API replicas share one limit per key.
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


# One atomic step of a bucket kept in a Redis hash {tokens, ts}; Redis' own clock, so replicas' clocks may differ.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {ok, tostring(tokens)}
"""


class RedisTokenBuckets:
    """The same token bucket, kept in Redis and updated by one Lua script per request: every API process on
    the same Redis draws from one bucket per key. When Redis cannot be reached the request is not refused
    (a limiter outage must not take the API down); the in-process bucket stands in until it is back."""

    def __init__(self, url: str, rate: float, burst: int, *, prefix: str = "healthtrace:rate:") -> None:
        import redis

        self.rate = rate
        self.burst = float(burst)
        self.prefix = prefix
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_TAKE_LUA)
        self._fallback = TokenBuckets(rate, burst)

    def take(self, key: str, now: float | None = None) -> None:
        import redis

        try:
            ok, tokens = self._script(keys=[self.prefix + key], args=[self.rate, self.burst])
        except redis.RedisError:
            self._fallback.take(key, now)
            return
        if not int(ok):
            raise RateLimited((1.0 - float(tokens)) / self.rate)


def make_buckets(settings: object) -> TokenBuckets | RedisTokenBuckets:
    """Shared buckets when a Redis URL is configured, else per process."""
    rate = settings.api_rate_per_s  # type: ignore[attr-defined]
    burst = settings.api_rate_burst  # type: ignore[attr-defined]
    url = settings.shared_redis_url  # type: ignore[attr-defined]
    return RedisTokenBuckets(url, rate, burst) if url else TokenBuckets(rate, burst)


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
