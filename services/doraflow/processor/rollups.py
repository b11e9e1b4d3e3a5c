"""Rollups: the `daily_commit_stats` and `weekly_dora_metrics` aggregates (migration 0002).

On TimescaleDB they are continuous aggregates refreshed by the extension's own policies, so there is
nothing to do. On plain PostgreSQL they are materialized views; `REFRESH … CONCURRENTLY` rescans the
underlying tables, so it runs in the background, on its own connection, at most once per interval and
only after a batch changed commits or deployments (debounced). CONCURRENTLY keeps readers unblocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.processor import instruments

logger = logging.getLogger(__name__)

VIEWS = ("daily_commit_stats", "weekly_dora_metrics")
HAS_TIMESCALE = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
VIEW_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_matviews WHERE matviewname = :name AND ispopulated)"


class RollupRefresher:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], interval_seconds: float) -> None:
        self._sessions = session_factory
        self._interval = interval_seconds
        self._dirty = asyncio.Event()
        self._managed_by_timescale: bool | None = None
        self.refreshes = 0

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def refresh(self) -> bool:
        """Refresh every plain materialized view now; False when Timescale manages them."""
        async with self._sessions() as session:
            if self._managed_by_timescale is None:
                self._managed_by_timescale = bool((await session.execute(text(HAS_TIMESCALE))).scalar())
            if self._managed_by_timescale:
                return False
            started = time.monotonic()
            for view in VIEWS:
                if (await session.execute(text(VIEW_EXISTS), {"name": view})).scalar():
                    await session.execute(text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}"))
            await session.commit()
        instruments.ROLLUP_SECONDS.observe(time.monotonic() - started)
        self.refreshes += 1
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            dirty = asyncio.ensure_future(self._dirty.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([dirty, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                dirty.cancel()
                stopping.cancel()
            if stop.is_set():
                return
            self._dirty.clear()
            try:
                if not await self.refresh():
                    return  # TimescaleDB refreshes by policy: this task has nothing to do
            except Exception:  # the database may be down: the next batch marks dirty again
                logger.warning("rollup refresh failed; will retry", exc_info=True)
                self._dirty.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
