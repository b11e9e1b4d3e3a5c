from __future__ import annotations

import asyncio

from doraflow.core.cache import MemoryCache


async def test_set_get_delete_and_patterns() -> None:
    cache = MemoryCache()
    await cache.set("metrics:dora:r1:30d", b"a")
    await cache.set("metrics:dora:r1:90d", b"b")
    await cache.set("metrics:dora:r2:30d", b"c")
    assert await cache.get("metrics:dora:r1:30d") == b"a"
    assert await cache.delete_pattern("metrics:dora:r1:*") == 2
    assert await cache.get("metrics:dora:r1:90d") is None
    assert await cache.get_many(["metrics:dora:r2:30d", "missing"]) == [b"c", None]
    assert await cache.delete("metrics:dora:r2:30d", "missing") == 1


async def test_entries_expire() -> None:
    cache = MemoryCache()
    await cache.set("org:1", b"x", ttl_seconds=1)
    assert await cache.get("org:1") == b"x"
    await asyncio.sleep(1.05)
    assert await cache.get("org:1") is None


async def test_lru_bound_evicts_oldest() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.get("a")  # a is now the most recently used
    await cache.set("c", b"3")
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"


async def test_fixed_window_counter() -> None:
    cache = MemoryCache()
    assert (await cache.incr_window("ratelimit:ip:/x", 60))[0] == 1
    count, reset = await cache.incr_window("ratelimit:ip:/x", 60)
    assert count == 2
    assert 1 <= reset <= 60
