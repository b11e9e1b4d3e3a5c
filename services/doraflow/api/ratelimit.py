"""Rate limits per client IP and per API key, fixed windows on `Cache.incr_window` (DESIGN.md §8).

Counters live in Redis under the seed's pattern `ratelimit:{ip}:{endpoint}` (and
`ratelimit:key:{key id}:{endpoint}` for keys), so every replica shares them; `endpoint` is the
route template (`GET /api/v1/teams/{team_id}`), which keeps the number of counters bounded however
many ids clients try. When Redis is down the counters move in-process (see `DegradableCache`).

The key counter is keyed by a hash of the presented bearer token, computed before authentication,
so a flood of requests is refused before it reaches the database — and since the hash needs the
whole key, nobody can spend another client's budget.

Responses carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) for the
tighter of the two limits (IETF draft "RateLimit header fields for HTTP"); a refused request gets
429 with `Retry-After` as a problem document.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from doraflow.api.auth import KeyHasher
from doraflow.api.instrumentation import route_of
from doraflow.api.problems import problem_response
from doraflow.core.cache import Cache, keys
from doraflow.core.settings import Settings


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests allowed per `window_seconds`, per endpoint, for one client IP and for one key."""

    per_ip: int = 600
    per_key: int = 600
    window_seconds: int = 60
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            settings.rate_limit_per_ip, settings.rate_limit_per_key, settings.rate_limit_window_seconds
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


class RateLimiter:
    def __init__(self, cache: Cache, limits: RateLimits, hasher: KeyHasher) -> None:
        self._cache = cache
        self._limits = limits
        self._hasher = hasher

    async def check(self, client_ip: str, endpoint: str, token: str | None) -> Verdict:
        """Both counters are incremented in one round trip (a Lua script on Redis)."""
        limits = self._limits
        by_ip_key = keys.rate_limit(client_ip, endpoint)
        if token is None:
            count, reset = await self._cache.incr_window(by_ip_key, limits.window_seconds)
            return _verdict(count, reset, limits.per_ip)
        by_key_key = keys.rate_limit(f"key:{self._hasher.hash(token)[:24]}", endpoint)
        (ip_count, ip_reset), (key_count, key_reset) = await self._cache.incr_windows(
            [by_ip_key, by_key_key], limits.window_seconds
        )
        return _tighter(
            _verdict(ip_count, ip_reset, limits.per_ip), _verdict(key_count, key_reset, limits.per_key)
        )


def _verdict(count: int, reset: int, limit: int) -> Verdict:
    return Verdict(count <= limit, limit, max(0, limit - count), reset)


def _tighter(a: Verdict, b: Verdict) -> Verdict:
    """The verdict the client must respect: a refusal wins, else the one with less left."""
    if a.allowed != b.allowed:
        return a if not a.allowed else b
    if not a.allowed:
        return a if a.reset_seconds >= b.reset_seconds else b
    return a if a.remaining <= b.remaining else b


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


class RateLimitMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): the limiter sits on the hot path of every API call."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, limits: RateLimits, prefix: str = "/api/") -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits.enabled or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        endpoint = f"{scope['method']} {route_of(scope)}"
        verdict = await self.limiter.check(client_ip, endpoint, _bearer(scope))
        if not verdict.allowed:
            response = problem_response(
                429,
                detail=f"rate limit of {verdict.limit} requests per {self.limits.window_seconds}s "
                f"for {endpoint} exceeded; retry in {verdict.reset_seconds}s",
                instance=scope["path"],
                headers={
                    "Retry-After": str(verdict.reset_seconds),
                    "RateLimit-Limit": str(verdict.limit),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(verdict.reset_seconds),
                },
            )
            await response(scope, receive, send)
            return
        extra = verdict.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
