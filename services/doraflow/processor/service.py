"""The Data Processor as a service (DESIGN.md §1: `doraflow process`, port 8002).

Three entry points, from the most to the least wired:

* `serve_processor(settings, host, port)` — the whole process: engine, bus, cache, the HTTP app
  (`/health`, `/ready`, `/metrics`) and the processor loop, until SIGTERM/SIGINT, which finishes
  the current batch, commits its offsets and closes everything. Raises if the loop dies, so the
  process exits non-zero and Kubernetes restarts it.
* `create_app(...)` — the FastAPI app alone (readiness checks database and bus).
* `run_processor(...)` — the loop alone, on dependencies the caller owns (`doraflow up` runs it
  next to the API with the in-process bus and cache).
"""

from __future__ import annotations

import asyncio
import gc
import logging

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core.bus import EventBus, create_bus
from doraflow.core.cache import Cache, create_cache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.service import add_service_endpoints, serve, stop_on_signals
from doraflow.core.settings import Settings
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.consumer import Processor

logger = logging.getLogger(__name__)

SERVICE_NAME = "doraflow-processor"
DEFAULT_PORT = 8002


async def run_processor(
    settings: Settings,
    bus: EventBus,
    cache: Cache,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    stop: asyncio.Event | None = None,
    config: ProcessorConfig | None = None,
) -> None:
    """Consume every organization's topics until `stop` is set (forever without one).

    The bus is started if it is not (starting is idempotent) but never stopped: the caller owns
    the bus, the cache and the engine behind `session_factory`."""
    await bus.start()
    processor = Processor(config or ProcessorConfig.from_settings(settings), bus, cache, session_factory)
    await processor.run(stop or asyncio.Event())


def create_app(
    settings: Settings, bus: EventBus, session_factory: async_sessionmaker[AsyncSession]
) -> FastAPI:
    """`/health`, `/ready` (database and bus reachable) and `/metrics` of the processor."""

    async def database_ready() -> bool:
        async with session_factory() as session:
            return (await session.execute(text("SELECT 1"))).scalar() == 1

    async def bus_ready() -> bool:
        await bus.list_topics()
        return True

    app = FastAPI(title="Doraflow processor", version="0.1.0", docs_url=None, redoc_url=None)
    add_service_endpoints(app, SERVICE_NAME, {"database": database_ready, "bus": bus_ready})
    return app


# Containers (models, tuples, lists) the processor holds per event of a batch: ~20 with
# `benchmarks.processor_workload`, and two batches are held at a time (one read ahead, one being
# stored), so 40; 50 leaves room for events with more nested data.
CONTAINERS_PER_BATCHED_EVENT = 50


def tune_gc(batch_size: int) -> None:
    """Let the cyclic garbage collector run only when it can find something.

    CPython starts a young-generation collection whenever the tracked containers allocated and
    not yet freed pass a threshold (700 by default). A batch of 10k events holds ~200k of them until
    it is stored -- pydantic models, column tuples -- none of them garbage (reference counting
    frees what is not cyclic) and none cyclic, so every collection traversed and promoted live
    objects for nothing: at a threshold of 50k that was ~90 collections per 200k events, 13% of
    the processor's CPU (`benchmarks.processor_ingest`). The threshold is now above what two
    batches hold, so a collection runs about once per ten batches; cyclic garbage (asyncio,
    exceptions) is still collected, at that pace. `freeze` moves everything allocated at start-up
    (modules, settings) out of the collector's way for good."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(100_000, CONTAINERS_PER_BATCHED_EVENT * batch_size), 10, 10)


async def serve_processor(
    settings: Settings,
    host: str = "0.0.0.0",  # noqa: S104 - a service in a pod listens on all interfaces
    port: int = DEFAULT_PORT,
    *,
    http: bool = True,
) -> None:
    """Run the processor process until SIGTERM/SIGINT (see module docstring)."""
    tune_gc(settings.processor_batch_size)
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    bus = create_bus(settings.kafka_bootstrap_servers)
    cache = create_cache(settings.redis_url.get_secret_value() if settings.redis_url else None)
    stop = asyncio.Event()
    restore = stop_on_signals(stop)
    http_task = (
        asyncio.create_task(
            serve(create_app(settings, bus, sessions), host, port, stop=stop), name="processor-http"
        )
        if http
        else None
    )
    try:
        await run_processor(settings, bus, cache, sessions, stop=stop)
    finally:
        stop.set()
        if http_task is not None:
            await asyncio.gather(http_task, return_exceptions=True)
        restore()
        await bus.stop()
        await cache.close()
        await engine.dispose()
