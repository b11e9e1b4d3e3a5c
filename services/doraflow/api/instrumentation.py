"""Request metrics for Prometheus: a latency histogram and a counter per route template.

Labels use the route *template* (`/api/v1/teams/{team_id}`), never the raw path, so the number of
time series stays bounded whatever ids clients send; unmatched paths share one label. The metric
objects are module globals because Prometheus registries refuse duplicate names and tests build
many apps in one process.
"""

from __future__ import annotations

import re
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_DURATION = Histogram(
    "doraflow_api_request_duration_seconds",
    "API request latency by route template",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "doraflow_api_requests_total", "API requests by route template and status", ["method", "route", "status"]
)
ROUTE_KEY = "doraflow.route"
UNMATCHED = "<unmatched>"
EXTRA_TEMPLATES = ("/", "/metrics", "/static/{path}")


class RouteTable:
    """Path → route template, built once from the app's OpenAPI paths (plus the few routes kept
    out of the schema). Middleware runs before routing, and FastAPI's router no longer exposes a
    flat route list, so the table is built from the public schema instead of router internals."""

    def __init__(self, templates: list[str]) -> None:
        self.exact = {t for t in templates if "{" not in t}
        patterns = sorted((t for t in templates if "{" in t), key=lambda t: (t.count("{"), -len(t)))
        self.patterns = [(re.compile(self._regex(t)), t) for t in patterns]

    @staticmethod
    def _regex(template: str) -> str:
        parts = re.split(r"(\{[^}]+\})", template)
        out = "".join(
            (".+" if part == "{path}" else "[^/]+") if part.startswith("{") else re.escape(part)
            for part in parts
        )
        return f"^{out}$"

    def lookup(self, path: str) -> str:
        if path in self.exact:
            return path
        for regex, template in self.patterns:
            if regex.match(path):
                return template
        return UNMATCHED


_tables: dict[int, RouteTable] = {}


def route_of(scope: Scope) -> str:
    """The template of the route `scope` is headed for (computed once per request)."""
    cached = scope.get(ROUTE_KEY)
    if isinstance(cached, str):
        return cached
    app = scope.get("app")
    template = UNMATCHED
    if app is not None and hasattr(app, "openapi"):
        table = _tables.get(id(app))
        if table is None:
            table = RouteTable([*app.openapi().get("paths", {}), *EXTRA_TEMPLATES])
            _tables[id(app)] = table
        template = table.lookup(scope["path"])
    scope[ROUTE_KEY] = template
    return template


class InstrumentationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            labels = (scope["method"], route_of(scope), str(status))
            REQUEST_DURATION.labels(*labels).observe(time.perf_counter() - started)
            REQUESTS.labels(*labels).inc()
