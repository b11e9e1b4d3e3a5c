"""The cache interface: Redis in a cluster, a dict in the embedded mode.

Every cache call may fail (Redis down); callers treat the cache as an optimisation and fall back
to the database. `CacheUnavailableError` is the one error they need to catch.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence


class CacheUnavailableError(Exception):
    """The cache backend cannot be reached; serve uncached."""


class Cache(abc.ABC):
    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, ttl_seconds: int | None = None) -> None: ...

    @abc.abstractmethod
    async def delete(self, *keys: str) -> int: ...

    @abc.abstractmethod
    async def delete_pattern(self, pattern: str) -> int:
        """Delete every key matching a glob pattern (`metrics:dora:{repo}:*`); return the count."""

    @abc.abstractmethod
    async def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Increment a fixed-window counter; return (count, seconds until the window resets).
        Rate limiting is built on this."""

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def incr_windows(self, keys: Sequence[str], window_seconds: int) -> list[tuple[int, int]]:
        """`incr_window` for several counters at once (one round trip where the backend allows)."""
        return [await self.incr_window(key, window_seconds) for key in keys]
