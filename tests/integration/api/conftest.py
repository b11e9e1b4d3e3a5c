"""The API against real PostgreSQL (a fresh migrated database per test) and real Redis (Valkey),
called in-process through httpx's ASGI transport; the bus is an in-process `MemoryBus` so tests
can read exactly what was published."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.api import create_app
from doraflow.api.ratelimit import RateLimits
from doraflow.core import migrate
from doraflow.core.bus import MemoryBus, TopicSpec
from doraflow.core.cache import RedisCache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.events import organization_topics
from doraflow.core.security import derive_service_token
from doraflow.core.settings import Settings

SECRET = "test-api-secret"
SERVICE_TOKEN = derive_service_token(SECRET)


@dataclass
class Org:
    id: uuid.UUID
    slug: str
    admin_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    factory: async_sessionmaker[AsyncSession]
    bus: MemoryBus
    cache: RedisCache
    settings: Settings
    new_org: Callable[..., Awaitable[Org]]

    async def key(self, org: Org, role: str, **extra: object) -> str:
        response = await self.client.post(
            "/api/v1/api-keys", json={"name": f"{role} key", "role": role, **extra}, headers=org.headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def make_api(database_url: str, redis_url: str) -> AsyncIterator[Callable[..., Awaitable[Api]]]:
    engine = create_engine(Settings(), url=database_url)
    await migrate.upgrade(engine)
    factory = create_session_factory(engine)
    caches: list[RedisCache] = []
    clients: list[httpx.AsyncClient] = []

    async def make(rate_limits: RateLimits | None = None, cache_url: str | None = None) -> Api:
        settings = Settings(api_secret_key=SECRET, cache_ttl_seconds=60)
        cache = RedisCache(cache_url or redis_url, socket_timeout=0.3)
        caches.append(cache)
        bus = MemoryBus()
        await bus.start()
        app = create_app(
            settings,
            factory,
            cache,
            bus,
            rate_limits=rate_limits or RateLimits(per_ip=100_000, per_key=100_000),
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test")
        clients.append(client)

        async def new_org(slug: str | None = None, name: str | None = None) -> Org:
            slug = slug or f"org-{uuid.uuid4().hex[:8]}"
            response = await client.post(
                "/api/v1/organizations",
                json={"name": name or slug.title(), "slug": slug},
                headers=bearer(SERVICE_TOKEN),
            )
            assert response.status_code == 201, response.text
            body = response.json()
            await bus.ensure_topics(
                [
                    TopicSpec(name, partitions=3)
                    for name in organization_topics(settings.kafka_topic_prefix, slug)
                ]
            )
            return Org(uuid.UUID(body["organization"]["id"]), slug, body["admin_key"]["key"])

        return Api(app, client, factory, bus, cache, settings, new_org)

    redis_cleanup = RedisCache(redis_url)
    await redis_cleanup._client.flushdb()
    yield make
    for client in clients:
        await client.aclose()
    for cache in caches:
        await cache.close()
    await redis_cleanup.close()
    await engine.dispose()


@pytest.fixture
async def api(make_api: Callable[..., Awaitable[Api]]) -> Api:
    return await make_api()
