"""Fixtures for the processor against real servers: a migrated PostgreSQL per test, table dumps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from doraflow.core import migrate
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.events import EventData
from doraflow.core.settings import Settings
from doraflow.metrics.enrichment import lead_time_enrichment_mismatches
from doraflow.metrics.loaders import Database
from doraflow.processor import storage
from doraflow.processor.entities import Lookups
from doraflow.processor.storage import Changes
from doraflow.processor.transform import build_plan
from doraflow.processor.validation import Accepted, validate
from tests.testenv.postgres import _dsn
from tests.unit.processor import factories as f

TABLES = (
    "organizations",
    "repositories",
    "developers",
    "developer_identities",
    "commits",
    "commit_deployments",
    "pull_requests",
    "pull_request_reviews",
    "deployments",
    "deployment_commits",
    "issues",
    "issue_transitions",
    "sprints",
    "sprint_issues",
    "incidents",
)
# Columns set by the database clock, different on every run by design.
VOLATILE = {"created_at", "updated_at"}
CLOCK_TABLES = {"organizations", "repositories", "developers", "developer_identities"}


async def prepare_database(url: str) -> None:
    engine = create_engine(Settings(), url=url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await prepare_database(database_url)
    return database_url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=migrated_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


async def dump(engine: AsyncEngine) -> dict[str, list[tuple[object, ...]]]:
    """Every processor table, every row, sorted: what "unchanged" and "identical" compare."""
    result: dict[str, list[tuple[object, ...]]] = {}
    async with engine.connect() as connection:
        for table in TABLES:
            columns = [
                row[0]
                for row in await connection.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = :t ORDER BY ordinal_position"
                    ),
                    {"t": table},
                )
                if not (table in CLOCK_TABLES and row[0] in VOLATILE)
            ]
            rows = await connection.execute(text(f"SELECT {', '.join(columns)} FROM {table}"))  # noqa: S608
            result[table] = sorted((tuple(row) for row in rows), key=repr)
    return result


async def xmins(engine: AsyncEngine) -> dict[str, list[str]]:
    """Row versions: a replay that rewrites identical values still changes these."""
    result: dict[str, list[str]] = {}
    async with engine.connect() as connection:
        for table in TABLES:
            rows = await connection.execute(text(f"SELECT xmin::text FROM {table}"))  # noqa: S608
            result[table] = sorted(row[0] for row in rows)
    return result


class Ingest:
    """Store events in the given batches, exactly as the processor does (validate, plan, one
    transaction per batch), on one asyncpg connection with the processor's entity memory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lookups = Lookups()

    async def __call__(self, *batches: Sequence[EventData | bytes], organization: str = f.ORG) -> Changes:
        changes = Changes()
        connection = await asyncpg.connect(_dsn(self.url))
        try:
            for batch in batches:
                accepted = []
                for offset, item in enumerate(batch):
                    outcome = validate(f.message(item, offset=offset, organization=organization), f.PREFIX)
                    assert isinstance(outcome, Accepted), outcome
                    accepted.append(outcome)
                async with connection.transaction():
                    result = await storage.store(
                        connection,
                        build_plan(accepted),
                        lookups=self.lookups,
                        attribution_window=timedelta(days=7),
                    )
                self.lookups.commit()
                changes.organizations |= result.organizations
                changes.repositories |= result.repositories
                changes.rollups |= result.rollups
        finally:
            await connection.close()
        return changes


@pytest.fixture
def ingest(migrated_url: str) -> Ingest:
    return Ingest(migrated_url)


async def fresh(make_database: Callable[[], Awaitable[str]]) -> tuple[Ingest, AsyncEngine]:
    """Another empty, migrated database (for comparing two arrival orders)."""
    url = await make_database()
    await prepare_database(url)
    return Ingest(url), create_engine(Settings(), url=url)


async def query(engine: AsyncEngine, sql: str, **params: object) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), params)]


async def lead_time_mismatches(url: str) -> list[str]:
    """Rows whose incrementally maintained lead-time columns differ from the definition's full
    recomputation (`doraflow.metrics.enrichment`), for every organization."""
    connection = await asyncpg.connect(_dsn(url))
    try:
        mismatches: list[str] = []
        for (organization,) in await connection.fetch("SELECT id FROM organizations"):
            async with connection.transaction():
                mismatches += await lead_time_enrichment_mismatches(Database(connection), organization)
        return mismatches
    finally:
        await connection.close()
