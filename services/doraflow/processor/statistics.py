"""Planner statistics kept current while a bulk ingestion grows the tables.

Autovacuum analyzes a table once a tenth of it changed, checking every minute. During a backfill
the processor grows a table from nothing to millions of rows in minutes, and until the first
ANALYZE the planner works from guesses (a filter on `status = 'success'` "keeps one row") and picks
plans that scan whole tables per batch. So every few seconds, in the background and on its own
connection, this task ANALYZEs the processor's tables that changed by more than a fifth since
their last analysis (ANALYZE samples a fixed number of rows, so it costs tens of milliseconds
whatever the table's size). In steady state nothing crosses the threshold and it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

logger = logging.getLogger(__name__)

TABLES = (
    "commits",
    "commit_deployments",
    "pull_requests",
    "pull_request_reviews",
    "deployments",
    "deployment_commits",
    "issues",
    "issue_transitions",
    "sprint_issues",
    "incidents",
    "developers",
    "developer_identities",
)
STALE = """
SELECT relname FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = ANY(:tables)
  AND n_mod_since_analyze > 1000 + 0.2 * n_live_tup
ORDER BY relname
"""


class StatisticsKeeper:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], interval_seconds: float) -> None:
        self._sessions = session_factory
        self._interval = interval_seconds
        self._dirty = asyncio.Event()
        self.analyzed: list[str] = []

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def analyze_stale(self) -> list[str]:
        """ANALYZE the tables whose statistics are stale; return their names."""
        async with self._sessions() as session:
            stale = [row[0] for row in await session.execute(text(STALE), {"tables": list(TABLES)})]
            for table in stale:
                await session.execute(text(f"ANALYZE {table}"))
            await session.commit()
        if stale:
            logger.debug("refreshed planner statistics", extra={"tables": stale})
            self.analyzed.extend(stale)
        return stale

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
                await self.analyze_stale()
            except Exception:  # the database may be down; the next batch marks dirty again
                logger.warning("refreshing planner statistics failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)
