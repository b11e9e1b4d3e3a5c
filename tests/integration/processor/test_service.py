"""The processor's HTTP endpoints and its cache invalidation against a real Redis-protocol server."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from doraflow.core.bus import MemoryBus
from doraflow.core.cache import RedisCache, keys
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.models import natural_id
from doraflow.core.settings import Settings
from doraflow.processor.consumer import Processor
from doraflow.processor.service import create_app
from tests.integration.processor.test_pipeline import config, create_topics, publish, run_until
from tests.testenv.common import free_port
from tests.unit.processor import factories as f

pytestmark = pytest.mark.integration


async def test_health_ready_and_metrics(sessions: async_sessionmaker[AsyncSession]) -> None:
    bus = MemoryBus()
    await bus.start()
    app = create_app(Settings(), bus, sessions)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://processor"
    ) as client:
        assert (await client.get("/health")).json()["status"] == "ok"
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": True, "bus": True}
        metrics = (await client.get("/metrics")).text
        assert "doraflow_processor_batch_seconds" in metrics


async def test_not_ready_without_a_database() -> None:
    engine = create_engine(Settings(), url=f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        app = create_app(Settings(), MemoryBus(), create_session_factory(engine))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
            ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] is False
    finally:
        await engine.dispose()


async def test_new_data_invalidates_its_cached_metrics_in_redis(
    redis_url: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org = natural_id("organization", f.ORG)
    repo = natural_id("repository", org, "github", "acme-api")
    team = uuid.uuid4()
    async with engine.begin() as connection:  # a team that owns the repository, set up by the API
        await connection.execute(
            text("INSERT INTO organizations (id, name, slug) VALUES (:o, 'Acme', :s)"), {"o": org, "s": f.ORG}
        )
        await connection.execute(
            text(
                "INSERT INTO repositories (id, organization_id, name, provider, provider_id) "
                "VALUES (:r, :o, 'acme/api', 'github', 'acme-api')"
            ),
            {"r": repo, "o": org},
        )
        await connection.execute(
            text("INSERT INTO teams (id, organization_id, name, slug) VALUES (:t, :o, 'Core', 'core')"),
            {"t": team, "o": org},
        )
        await connection.execute(
            text("INSERT INTO team_repositories (team_id, repository_id) VALUES (:t, :r)"),
            {"t": team, "r": repo},
        )
    cache = RedisCache(redis_url)
    stale = [
        keys.repository_metrics(repo, "90d"),
        keys.repository_metrics(repo, "30d", "flow"),
        keys.organization_metrics(org, "90d"),
        keys.team_metrics(team, "90d"),
        keys.organization(org),
        keys.team(team),
    ]
    fresh_keys = [keys.repository_metrics(uuid.uuid4(), "90d"), keys.team(uuid.uuid4())]
    try:
        for key in (*stale, *fresh_keys):
            await cache.set(key, b"cached", ttl_seconds=300)
        bus = MemoryBus()
        await create_topics(bus, f.PREFIX)
        await publish(bus, f.PREFIX, [f.commit(1), f.commit(2)])
        processor = Processor(config(f.PREFIX), bus, cache, sessions)
        await run_until(processor, lambda: processor.events == 2)
        await asyncio.sleep(0.1)
        assert await cache.get_many(stale) == [None] * len(stale)
        assert await cache.get_many(fresh_keys) == [b"cached", b"cached"]
    finally:
        await cache.close()


async def test_planner_statistics_follow_a_bulk_ingestion(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from benchmarks.processor_workload import workload
    from doraflow.processor.statistics import StatisticsKeeper
    from tests.integration.processor.conftest import Ingest

    await Ingest(migrated_url)([m.value for m in workload(4000, organization=f.ORG)])
    keeper = StatisticsKeeper(sessions, interval_seconds=0.1)
    analyzed: list[str] = []
    async with asyncio.timeout(30):  # the server publishes its table counters within a second or so
        while "commits" not in analyzed:
            analyzed += await keeper.analyze_stale()
            await asyncio.sleep(0.2)
    assert await keeper.analyze_stale() == []  # fresh now: nothing to do
