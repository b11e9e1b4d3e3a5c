"""The API's view of the cache: Redis when it answers, graceful degradation when it does not.

The API must keep serving when Redis is down (issue 6): reads are then served uncached, and
rate-limit counters move to an in-process `MemoryCache` (per replica, so limits get looser by the
replica count, which beats refusing traffic). A circuit breaker stops asking Redis for
`retry_seconds` after a failure, so an outage costs one timeout per interval rather than one per
request. `degraded` is what `/ready` and the logs report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from doraflow.core.cache import Cache, CacheUnavailableError, MemoryCache

logger = logging.getLogger(__name__)


class DegradableCache(Cache):
    def __init__(self, primary: Cache, *, retry_seconds: float = 5.0) -> None:
        self.primary = primary
        self.fallback = MemoryCache(max_entries=20_000)
        self._retry_seconds = retry_seconds
        self._down_until = 0.0
        self._degraded = False

    @property
    def degraded(self) -> bool:
        """True while the primary is considered unreachable."""
        return self._degraded

    def _available(self) -> bool:
        return not self._degraded or time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if not self._degraded:
            logger.warning("cache unavailable, serving uncached with in-process rate limits: %s", exc)
        self._degraded = True
        self._down_until = time.monotonic() + self._retry_seconds

    def _recovered(self) -> None:
        if self._degraded:
            logger.info("cache reachable again")
        self._degraded = False

    async def get(self, key: str) -> bytes | None:
        if not self._available():
            return None
        try:
            value = await self.primary.get(key)
        except CacheUnavailableError as exc:
            self._failed(exc)
            return None
        self._recovered()
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not self._available():
            return [None] * len(keys)
        try:
            values = await self.primary.get_many(keys)
        except CacheUnavailableError as exc:
            self._failed(exc)
            return [None] * len(keys)
        self._recovered()
        return values

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        if not self._available():
            return
        try:
            await self.primary.set(key, value, ttl_seconds)
        except CacheUnavailableError as exc:
            self._failed(exc)
            return
        self._recovered()

    async def delete(self, *keys: str) -> int:
        if not self._available():
            return 0
        try:
            count = await self.primary.delete(*keys)
        except CacheUnavailableError as exc:
            self._failed(exc)
            return 0
        self._recovered()
        return count

    async def delete_pattern(self, pattern: str) -> int:
        if not self._available():
            return 0
        try:
            count = await self.primary.delete_pattern(pattern)
        except CacheUnavailableError as exc:
            self._failed(exc)
            return 0
        self._recovered()
        return count

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        if self._available():
            try:
                result = await self.primary.incr_window(key, window_seconds)
            except CacheUnavailableError as exc:
                self._failed(exc)
            else:
                self._recovered()
                return result
        return await self.fallback.incr_window(key, window_seconds)

    async def incr_windows(self, keys: Sequence[str], window_seconds: int) -> list[tuple[int, int]]:
        if self._available():
            try:
                results = await self.primary.incr_windows(keys, window_seconds)
            except CacheUnavailableError as exc:
                self._failed(exc)
            else:
                self._recovered()
                return results
        return await self.fallback.incr_windows(keys, window_seconds)

    async def ping(self) -> bool:
        """Readiness asks the primary itself (and a successful ping closes the breaker)."""
        ok = await self.primary.ping()
        if ok:
            self._recovered()
        return ok

    async def close(self) -> None:
        """The primary belongs to whoever created it; only the fallback is ours."""
        await self.fallback.close()
