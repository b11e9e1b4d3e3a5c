"""The API service's app factory (DESIGN.md §1, §8; issue 6).

`create_app` takes its dependencies instead of building them, so `doraflow api` (Kafka, Redis),
`doraflow up` (in-process bus and cache, embedded PostgreSQL) and the tests wire the same app to
different backends. The caller owns what it passes in — it starts the bus before serving and
closes the engine, cache and bus afterwards; the app only closes what it creates itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.api.auth import Authenticator, KeyHasher
from doraflow.api.cache import DegradableCache
from doraflow.api.dashboard import mount_dashboard
from doraflow.api.deps import ApiContext
from doraflow.api.fastpath import CachedAnalyticsMiddleware
from doraflow.api.instrumentation import InstrumentationMiddleware
from doraflow.api.problems import BodyLimit, install_problem_handlers
from doraflow.api.ratelimit import RateLimiter, RateLimitMiddleware, RateLimits
from doraflow.api.routes import api_router
from doraflow.api.services.analytics import AnalyticsService, MetricsSource
from doraflow.api.services.ingest import IngestService
from doraflow.api.services.metrics_layer import MetricsLayer
from doraflow.core.bus import EventBus
from doraflow.core.cache import Cache
from doraflow.core.service import add_service_endpoints
from doraflow.core.settings import Settings

SERVICE_NAME = "doraflow-api"
MAX_BODY_BYTES = 2 * 1024 * 1024


def _version() -> str:
    try:
        return version("doraflow")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def create_app(
    settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
    cache: Cache,
    bus: EventBus,
    *,
    metrics_source: MetricsSource | None = None,
    rate_limits: RateLimits | None = None,
) -> FastAPI:
    """Build the API app. `metrics_source` defaults to the metrics package's query layer
    (`MetricsLayer`: where every definition lives); `rate_limits` default to the settings' per-IP
    and per-key limits."""
    limits = rate_limits or RateLimits.from_settings(settings)
    degradable = DegradableCache(cache)
    hasher = KeyHasher.from_settings(settings)
    context = ApiContext(
        settings=settings,
        session_factory=session_factory,
        cache=degradable,
        bus=bus,
        hasher=hasher,
        authenticator=Authenticator(session_factory, hasher),
        analytics=AnalyticsService(metrics_source or MetricsLayer(), degradable, settings.cache_ttl_seconds),
        ingest=IngestService(bus, degradable, settings.kafka_topic_prefix),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await degradable.close()

    app = FastAPI(
        title="Doraflow API",
        version=_version(),
        description=(
            "DORA and flow metrics per organization, team and repository. Authenticate with "
            "`Authorization: Bearer <API key>`; errors are `application/problem+json`; lists are "
            "cursor-paginated (`next_cursor` → `cursor`)."
        ),
        lifespan=lifespan,
    )
    app.state.doraflow = context
    install_problem_handlers(app)

    async def database_ready() -> bool:
        async with session_factory() as session:
            return (await session.execute(text("SELECT 1"))).scalar() == 1

    async def bus_ready() -> bool:
        await bus.list_topics()
        return True

    add_service_endpoints(
        app,
        SERVICE_NAME,
        {"database": database_ready, "cache": degradable.ping, "bus": bus_ready},
        optional=frozenset({"cache"}),
    )
    app.include_router(api_router())
    mount_dashboard(app)
    # Added innermost first: instrumentation sees every request, including those the limiter
    # refuses, and the cached-analytics fast path runs behind both.
    app.add_middleware(
        CachedAnalyticsMiddleware, authenticator=context.authenticator, analytics=context.analytics
    )
    app.add_middleware(RateLimitMiddleware, limiter=RateLimiter(degradable, limits, hasher), limits=limits)
    # Bounded bodies: the largest legitimate request (a deployment listing 10,000 commits) is
    # well below this; anything larger is refused (413) before it is read into memory.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(InstrumentationMiddleware)
    return app
