"""Redis-backed cache (any Redis-protocol server: Redis, Valkey)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from doraflow.core.cache.base import Cache, CacheUnavailableError

# Increment each counter, start its window on first use, return (count, ttl) pairs — atomically and
# in one round trip, which is what keeps rate limiting off the API's latency budget.
_INCR_WINDOWS = """
local result = {}
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  local ttl = redis.call('TTL', key)
  if ttl < 0 then redis.call('EXPIRE', key, ARGV[1]); ttl = tonumber(ARGV[1]) end
  result[#result + 1] = count
  result[#result + 1] = ttl
end
return result
"""


class RedisCache(Cache):
    def __init__(self, url: str, *, socket_timeout: float = 0.5) -> None:
        # Short timeouts: a slow cache must never make a request slower than the database would.
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
        )
        self._incr_windows = self._client.register_script(_INCR_WINDOWS)  # EVALSHA; EVAL on NOSCRIPT

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
        return (await self.incr_windows([key], window_seconds))[0]

    async def incr_windows(self, keys: Sequence[str], window_seconds: int) -> list[tuple[int, int]]:
        if not keys:
            return []
        try:
            flat = await self._incr_windows(keys=list(keys), args=[window_seconds])
        except (RedisError, OSError) as exc:
            raise CacheUnavailableError(str(exc)) from exc
        return [(int(flat[i]), max(1, int(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def ping(self) -> bool:
        try:
            return bool(await self._client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._client.aclose()
