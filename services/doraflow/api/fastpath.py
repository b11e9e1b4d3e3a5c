"""Serving cached analytics without entering the framework.

A dashboard on a wall, or a hundred people opening the same one, asks the same few analytics
questions over and over; the answers sit in the cache as ready JSON. Routing, dependency
resolution and parameter validation in FastAPI cost several times more than fetching those bytes,
so this ASGI middleware answers a cache *hit* directly, and lets everything else — misses,
anything it does not fully understand — continue to the ordinary route, which remains the one
definition of the endpoint's behaviour.

It is deliberately conservative: it handles a request only when every query parameter is one it
knows, appears once, and has a value in a closed set (or a canonical UUID); it never answers an
error itself. It sits inside the rate limiter and the instrumentation, so limits, headers and
metrics are the same as for the route.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from doraflow.api.auth import AuthenticationError, Authenticator
from doraflow.api.problems import Problem
from doraflow.api.services.analytics import WINDOW_DAYS, AnalyticsService, CachedAnswer, resolve_window

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SCOPES = frozenset({"organization", "team", "repository"})
_BENCHMARKS = frozenset({"2021", "2023"})
_BOOLEANS = {"true": True, "false": False}
_GRANULARITIES = frozenset({"day", "week", "month"})
_COMMON = frozenset({"scope", "id", "window", "benchmark"})
PATHS = {
    "/api/v1/analytics/dora": _COMMON | {"compare"},
    "/api/v1/analytics/dora/trend": _COMMON | {"granularity"},
    "/api/v1/analytics/flow": frozenset({"scope", "id", "window"}),
}


@dataclass(frozen=True, slots=True)
class _Query:
    kind: str
    scope_id: uuid.UUID | None
    window: str | None
    benchmark: int
    compare: bool
    granularity: str


def _parse(path: str, raw: bytes) -> _Query | None:
    """The request's parameters, or None when any is unknown, repeated or not canonical."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return None
    allowed = PATHS[path]
    params = dict(pairs)
    if len(params) != len(pairs) or not params.keys() <= allowed:
        return None
    kind = params.get("scope", "organization")
    scope_id = params.get("id")
    window = params.get("window")
    benchmark = params.get("benchmark", "2023")
    compare = params.get("compare", "false")
    granularity = params.get("granularity", "week")
    if (
        kind not in _SCOPES
        or (scope_id is not None and not _UUID.match(scope_id))
        or (window is not None and window not in WINDOW_DAYS)
        or benchmark not in _BENCHMARKS
        or compare not in _BOOLEANS
        or granularity not in _GRANULARITIES
    ):
        return None
    return _Query(
        kind=kind,
        scope_id=uuid.UUID(scope_id) if scope_id else None,
        window=window,
        benchmark=int(benchmark),
        compare=_BOOLEANS[compare],
        granularity=granularity,
    )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() or None if scheme.lower() == "bearer" else None
    return None


class CachedAnalyticsMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator, analytics: AnalyticsService) -> None:
        self.app = app
        self._authenticator = authenticator
        self._analytics = analytics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = None
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in PATHS:
            answer = await self._lookup(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer.body)).encode()),
                    (b"x-cache", b"hit"),
                    (b"cache-control", b"private, max-age=60"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _lookup(self, scope: Scope) -> CachedAnswer | None:
        query = _parse(scope["path"], scope.get("query_string", b""))
        token = _bearer(scope)
        if query is None or token is None:
            return None
        analytics = self._analytics
        try:
            principal = await self._authenticator.authenticate(token)
        except AuthenticationError:
            return None  # the route answers with the proper 401
        target = analytics.target(principal, query.kind, query.scope_id)
        if target is None:
            return None
        path = scope["path"]
        if path.endswith("/trend"):
            window = resolve_window(query.window or "90d", None, None)
            key = analytics.trend_key(
                query.kind, target, window, query.benchmark, query.granularity, analytics.wanted_metrics([])
            )
        elif path.endswith("/flow"):
            key = analytics.flow_key(query.kind, target, resolve_window(query.window, None, None))
        else:
            window = resolve_window(query.window, None, None)
            key = analytics.dora_key(query.kind, target, window, query.benchmark, query.compare)
        try:
            return await analytics.cached(principal, key, query.kind, target)
        except Problem:
            return None  # another organization's entry: the route answers 404
