"""Redis-backed cache (any Redis-protocol server: Redis, Valkey)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from doraflow.core.cache.base import Cache, CacheUnavailableError


class RedisCache(Cache):
    def __init__(self, url: str, *, socket_timeout: float = 0.5) -> None:
        # Short timeouts: a slow cache must never make a request slower than the database would.
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value = cast(bytes | None, await self._client.get(key))
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = cast(list[bytes | None], await self._client.mget(list(keys)))
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc
        return values

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        try:
            await self._client.set(key, value, ex=ttl_seconds)
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        try:
            return int(await self._client.delete(*keys))
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc

    async def delete_pattern(self, pattern: str) -> int:
        # SCAN, not KEYS: KEYS blocks the server for the whole keyspace.
        deleted = 0
        try:
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    deleted += int(await self._client.unlink(*batch))
                    batch.clear()
            if batch:
                deleted += int(await self._client.unlink(*batch))
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc
        return deleted

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_seconds, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc
        return int(count), max(1, int(ttl))

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._client.aclose()
