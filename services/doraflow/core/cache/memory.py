"""In-process cache for the embedded mode and for when Redis is unreachable."""

from __future__ import annotations

import fnmatch
import time
from collections import OrderedDict

from doraflow.core.cache.base import Cache


class MemoryCache(Cache):
    """A bounded LRU dict with per-key expiry. One process only: in a cluster use Redis, or the
    replicas' caches and rate-limit counters would disagree."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._counters: dict[str, tuple[int, float]] = {}

    def _live(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None:
        expires_at = time.monotonic() + ttl_seconds if ttl_seconds else None
        self._entries[key] = (value, expires_at)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def delete(self, *keys: str) -> int:
        return sum(self._entries.pop(key, None) is not None for key in keys)

    async def delete_pattern(self, pattern: str) -> int:
        doomed = [key for key in self._entries if fnmatch.fnmatchcase(key, pattern)]
        return await self.delete(*doomed)

    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.monotonic()
        count, resets_at = self._counters.get(key, (0, now + window_seconds))
        if resets_at <= now:
            count, resets_at = 0, now + window_seconds
        count += 1
        self._counters[key] = (count, resets_at)
        if len(self._counters) > self._max_entries:  # drop expired windows now and then
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        return count, max(1, round(resets_at - now))

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._counters.clear()
