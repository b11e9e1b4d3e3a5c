"""The ORM models and the migrations describe one schema (what `alembic check` verifies), and the
newest migration goes down and up again.

The comparison is alembic's autogenerate (`compare_metadata`) between a database migrated to head
and `Base.metadata`, with types compared. Left out, by `storage_path_object`: the indexes revision
0002 creates for one storage path only — BRIN indexes on `time` without TimescaleDB, the
hypertables' own `*_time_idx` with it — which the models cannot declare because they differ per
database (DESIGN.md §5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pprint import pformat
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from doraflow.core import migrate
from doraflow.core.database import create_engine
from doraflow.core.models import Base
from doraflow.core.settings import Settings

pytestmark = pytest.mark.integration

HYPERTABLES = ("commits", "pull_requests", "deployments")
STORAGE_PATH_INDEXES = frozenset(
    name for table in HYPERTABLES for name in (f"ix_{table}_time_brin", f"{table}_time_idx")
)
REFS_TABLES = {"branches", "tags", "releases", "repository_contributors"}


def storage_path_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """`include_object` for the comparison: everything but the storage-path indexes."""
    return not (type_ == "index" and reflected and name in STORAGE_PATH_INDEXES)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=database_url)
    yield engine
    await engine.dispose()


async def drift(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as connection:

        def compare(sync: Connection) -> list[Any]:
            context = MigrationContext.configure(
                sync, opts={"compare_type": True, "include_object": storage_path_object}
            )
            return list(compare_metadata(context, Base.metadata))

        return await connection.run_sync(compare)


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {row[0] for row in rows}


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    differences = await drift(engine)
    assert differences == [], pformat(differences)


async def test_the_comparison_sees_a_missing_index(engine: AsyncEngine) -> None:
    """The check is not vacuous: an index the migrations made and the models declare, dropped by
    hand, is reported (and a partial index counts like any other)."""
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("DROP INDEX ix_commit_deployments_lead_time"))
    assert [(kind, index.name) for kind, index in await drift(engine)] == [
        ("add_index", "ix_commit_deployments_lead_time")
    ]


async def test_refs_migration_goes_down_and_up(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine, "0005")
    assert await tables(engine) >= REFS_TABLES
    await migrate.downgrade(engine, "0004")
    assert not REFS_TABLES & await tables(engine)
    await migrate.upgrade(engine)
    assert await drift(engine) == []


async def test_every_migration_goes_down_to_base(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    await migrate.downgrade(engine, "base")
    assert await tables(engine) <= {"alembic_version"}
    await migrate.upgrade(engine)
    assert await drift(engine) == []
