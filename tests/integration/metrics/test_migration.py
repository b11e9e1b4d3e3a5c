"""Revision 0003: the metrics indexes and the lead-time change flag, up and down."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from doraflow.core import migrate
from doraflow.core.database import create_engine
from doraflow.core.settings import Settings

pytestmark = pytest.mark.integration

INDEXES = {
    "ix_commits_lead_time",
    "ix_commits_repository_pull_request",
    "ix_pull_requests_lead_time",
    "ix_pull_requests_repository_merged_at",
    "ix_pull_requests_repository_first_review_at",
    "ix_deployments_production_finished_at",
    "ix_deployments_organization_external_id",
    "ix_issue_transitions_done",
}


@pytest.fixture
async def bare_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=database_url)
    yield engine
    await engine.dispose()


async def schema(engine: AsyncEngine) -> tuple[set[str], bool]:
    async with engine.connect() as connection:
        indexes = {row[0] for row in await connection.execute(text("SELECT indexname FROM pg_indexes"))}
        column = await connection.execute(
            text(
                "SELECT 1 FROM information_schema.columns"
                " WHERE table_name = 'commits' AND column_name = 'represented_by_pull_request'"
            )
        )
        return indexes & INDEXES, column.first() is not None


async def test_upgrade_and_downgrade(bare_engine: AsyncEngine) -> None:
    await migrate.upgrade(bare_engine, "0003")
    assert await schema(bare_engine) == (INDEXES, True)
    await migrate.downgrade(bare_engine, "0002")
    assert await schema(bare_engine) == (set(), False)
    await migrate.upgrade(bare_engine, "0003")
    assert await schema(bare_engine) == (INDEXES, True)
