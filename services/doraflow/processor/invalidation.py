"""Cache invalidation after new data lands, coalesced.

Each pattern deletion is a SCAN of the whole keyspace on Redis, so invalidating per batch (several
per second under load, each touching dozens of repositories) would keep Redis busy scanning. Instead
the entities a batch changed are merged into a pending set, and a background task flushes it at
most every `interval` seconds: a reader sees new data at most that much later than without the
cache. Runs only after the batch's transaction has committed, so a reader that refills a key right
after the flush reads the new data. If the cache is unreachable the pending set is kept and
retried; the cache TTL bounds staleness if this process dies first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core.cache import Cache, CacheUnavailableError, keys
from doraflow.processor import instruments
from doraflow.processor.storage import Changes

logger = logging.getLogger(__name__)


TEAMS_OF = """
SELECT team_id FROM team_repositories WHERE repository_id = ANY(:repositories)
UNION
SELECT team_id FROM team_members WHERE developer_id = ANY(:developers)
"""


class CacheInvalidator:
    def __init__(
        self, cache: Cache, interval_seconds: float, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        self._cache = cache
        self._interval = interval_seconds
        self._sessions = session_factory
        self._organizations: set[uuid.UUID] = set()
        self._repositories: set[uuid.UUID] = set()
        self._developers: set[uuid.UUID] = set()
        self._teams: set[uuid.UUID] = set()
        self._pending = asyncio.Event()

    def add(self, changes: Changes) -> None:
        self._organizations |= changes.organizations
        self._repositories |= changes.repositories
        self._developers |= changes.developers
        self._teams |= changes.teams
        if self._organizations or self._repositories or self._teams:
            self._pending.set()

    async def _teams_of(self, repositories: set[uuid.UUID], developers: set[uuid.UUID]) -> set[uuid.UUID]:
        """Teams owning the changed repositories or having the changed developers as members
        (looked up here, off the batch's critical path)."""
        if not repositories and not developers:
            return set()
        try:
            async with self._sessions() as session:
                rows = await session.execute(
                    text(TEAMS_OF), {"repositories": list(repositories), "developers": list(developers)}
                )
                return {row[0] for row in rows}
        except Exception as exc:  # the database may be down: team keys then expire by TTL
            logger.warning("team look-up for cache invalidation failed: %s", exc)
            return set()

    async def flush(self) -> int:
        """Delete everything pending now; return the number of keys deleted."""
        orgs, repos, developers = self._organizations, self._repositories, self._developers
        teams = self._teams | await self._teams_of(repos, developers)
        self._organizations, self._repositories, self._developers, self._teams = set(), set(), set(), set()
        self._pending.clear()
        exact, patterns = keys.invalidation(organizations=orgs, repositories=repos, teams=teams)
        deleted = 0
        try:
            if exact:
                deleted += await self._cache.delete(*exact)
            for pattern in patterns:
                deleted += await self._cache.delete_pattern(pattern)
        except CacheUnavailableError as exc:
            logger.warning("cache unavailable, invalidation postponed: %s", exc)
            self._organizations |= orgs
            self._repositories |= repos
            self._teams |= teams
            self._pending.set()
            raise
        instruments.CACHE_INVALIDATIONS.inc(deleted)
        return deleted

    async def run(self, stop: asyncio.Event) -> None:
        """Flush whenever something is pending, at most once per interval, until `stop`; then a
        last flush so a graceful shutdown leaves no stale key behind."""
        while not stop.is_set():
            await _wait_any(self._pending, stop)
            if stop.is_set():
                break
            with contextlib.suppress(CacheUnavailableError):
                await self.flush()
            await _wait_any(stop, seconds=self._interval)
        with contextlib.suppress(CacheUnavailableError):
            await self.flush()


async def _wait_any(*events: asyncio.Event, seconds: float | None = None) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
