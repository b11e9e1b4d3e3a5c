"""Revisions 0003 (the metrics indexes and the lead-time change flag) and 0008 (commits' lead-time
columns moved to `commit_deployments`), up and down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

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


COMMITS = (
    "INSERT INTO commits (time, repository_id, commit_sha, organization_id, author_id, is_merge,"
    " first_deployment_id, first_deployed_at, represented_by_pull_request) VALUES"
    " ('2026-01-01T00:00Z', :repo, 'deployed', :org, :org, false, :deployment, '2026-01-02T00:00Z', false),"
    " ('2026-01-01T00:00Z', :repo, 'represented', :org, :org, true, NULL, NULL, true),"
    " ('2026-01-01T00:00Z', :repo, 'plain', :org, :org, false, NULL, NULL, false)"
)
LEAD_TIME = "first_deployment_id, first_deployed_at, represented_by_pull_request"
BEFORE = f"SELECT commit_sha, {LEAD_TIME} FROM commits"  # noqa: S608 - constants
NARROW = f"SELECT commit_sha, organization_id, is_merge, {LEAD_TIME} FROM commit_deployments"  # noqa: S608


async def lead_time_layout(engine: AsyncEngine) -> tuple[set[str], set[str], bool]:
    async with engine.connect() as connection:
        indexes = {row[0] for row in await connection.execute(text("SELECT indexname FROM pg_indexes"))}
        columns = {
            row[0]
            for row in await connection.execute(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = 'commits'")
            )
        }
        narrow = await connection.execute(text("SELECT to_regclass('commit_deployments') IS NOT NULL"))
        return (
            indexes & {"ix_commits_lead_time", "ix_commit_deployments_lead_time"},
            columns & set(LEAD_TIME.split(", ")),
            bool(narrow.scalar()),
        )


async def test_commit_deployments_up_and_down_keep_the_values(bare_engine: AsyncEngine) -> None:
    org, repo, deployment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await migrate.upgrade(bare_engine, "0007")
    async with bare_engine.begin() as connection:
        await connection.execute(text(COMMITS), {"org": org, "repo": repo, "deployment": deployment})
        before = sorted((await connection.execute(text(BEFORE))).all())
    await migrate.upgrade(bare_engine, "0008")
    assert await lead_time_layout(bare_engine) == ({"ix_commit_deployments_lead_time"}, set(), True)
    async with bare_engine.connect() as connection:
        narrow = await connection.execute(text(NARROW))
        assert sorted(narrow.all()) == [
            ("deployed", org, False, deployment, before[0][2], False),
            ("represented", org, True, None, None, True),
        ]
    await migrate.downgrade(bare_engine, "0007")
    assert await lead_time_layout(bare_engine) == (
        {"ix_commits_lead_time"},
        set(LEAD_TIME.split(", ")),
        False,
    )
    async with bare_engine.connect() as connection:
        after = sorted((await connection.execute(text(BEFORE))).all())
    assert after == before
    await migrate.upgrade(bare_engine)
    assert await lead_time_layout(bare_engine) == ({"ix_commit_deployments_lead_time"}, set(), True)


LEAD_SECONDS = (
    "SELECT commit_sha, lead_seconds,"
    " date_part('epoch', first_deployed_at) - date_part('epoch', time) AS computed_by_the_query_before"
    " FROM commit_deployments ORDER BY commit_sha"
)
SKEWED_AUTHORED = datetime(2026, 1, 3, 0, 0, 0, 123456, tzinfo=UTC)
SKEWED_DEPLOYED = datetime(2026, 1, 2, 23, 59, 58, 500000, tzinfo=UTC)
INDEX_DEFINITION = "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_commit_deployments_lead_time'"


async def test_stored_lead_seconds_up_and_down(bare_engine: AsyncEngine) -> None:
    org, repo, deployment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await migrate.upgrade(bare_engine, "0007")
    async with bare_engine.begin() as connection:
        await connection.execute(text(COMMITS), {"org": org, "repo": repo, "deployment": deployment})
    await migrate.upgrade(bare_engine, "0009")
    async with bare_engine.begin() as connection:
        # written after the migration, with clock skew and sub-second precision: computed too
        await connection.execute(
            text(
                "INSERT INTO commit_deployments (repository_id, time, commit_sha, organization_id,"
                " first_deployment_id, first_deployed_at)"
                " VALUES (:repo, '2026-01-03T00:00:00.123456Z', 'skewed', :org, :deployment,"
                " '2026-01-02T23:59:58.5Z')"
            ),
            {"org": org, "repo": repo, "deployment": deployment},
        )
        rows = (await connection.execute(text(LEAD_SECONDS))).all()
        index = (await connection.execute(text(INDEX_DEFINITION))).scalar_one()
    assert [(sha, lead) for sha, lead, _ in rows] == [
        ("deployed", 86400.0),
        ("represented", None),
        # as the Python definition computes it: the difference of the two epoch values
        ("skewed", SKEWED_DEPLOYED.timestamp() - SKEWED_AUTHORED.timestamp()),
    ]
    assert all(lead == expected for _, lead, expected in rows if lead is not None)  # bit for bit
    assert "INCLUDE (lead_seconds, is_merge, represented_by_pull_request)" in index

    await migrate.downgrade(bare_engine, "0008")
    async with bare_engine.connect() as connection:
        index = (await connection.execute(text(INDEX_DEFINITION))).scalar_one()
        columns = await connection.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = 'commit_deployments'")
        )
        assert "lead_seconds" not in {row[0] for row in columns}
    assert 'INCLUDE ("time", is_merge, represented_by_pull_request)' in index
    await migrate.upgrade(bare_engine)
