"""Migrations and the ORM against a real PostgreSQL 16 (pgserver)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from doraflow.core import migrate
from doraflow.core.database import create_engine, create_session_factory, transaction
from doraflow.core.models import Base, Commit, Deployment, Organization, Repository, natural_id
from doraflow.core.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=database_url)
    yield engine
    await engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrate.migrations_dir())).get_current_head()


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        return {row[0] for row in rows}


async def test_upgrade_creates_every_model_table_and_is_idempotent(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    tables = await table_names(engine)
    assert set(Base.metadata.tables) <= tables
    async with engine.connect() as connection:
        assert await migrate.current_revision(connection) == head_revision()
    await migrate.upgrade(engine)  # a second run is a no-op
    assert await table_names(engine) == tables


async def test_plain_postgres_gets_brin_indexes_and_refreshable_rollups(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        brin = await connection.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING brin%' ORDER BY 1")
        )
        assert [row[0] for row in brin] == [
            "ix_commits_time_brin",
            "ix_deployments_time_brin",
            "ix_pull_requests_time_brin",
        ]
        views = await connection.execute(text("SELECT matviewname FROM pg_matviews ORDER BY 1"))
        assert [row[0] for row in views] == ["daily_commit_stats", "weekly_dora_metrics"]
        org = uuid.uuid4()
        repo = uuid.uuid4()
        for sha, added in (("a" * 40, 10), ("b" * 40, 5)):
            await connection.execute(
                insert(Commit).values(
                    time=datetime(2024, 3, 4, 10, tzinfo=UTC),
                    repository_id=repo,
                    commit_sha=sha,
                    organization_id=org,
                    author_id=uuid.uuid4(),
                    lines_added=added,
                    lines_deleted=1,
                )
            )
        await connection.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY daily_commit_stats"))
        row = (
            await connection.execute(
                text(
                    "SELECT commit_count, total_lines_added FROM daily_commit_stats WHERE repository_id = :r"
                ),
                {"r": repo},
            )
        ).one()
        assert tuple(row) == (2, 15)


async def test_orm_round_trip_and_upsert_on_natural_key(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    sessions = create_session_factory(engine)
    async with transaction(sessions) as session:
        org = Organization(name="Acme", slug="acme")
        session.add(org)
        await session.flush()
        repo = Repository(organization_id=org.id, name="acme/api", provider="github", provider_id="R_1")
        session.add(repo)
        await session.flush()
        org_id, repo_id = org.id, repo.id

    deployment_id = natural_id("deployment", org_id, "github", "D1")
    started = datetime(2024, 3, 4, 10, tzinfo=UTC)
    for status in ("in_progress", "success"):  # the same deployment seen twice, status changed
        statement = insert(Deployment).values(
            id=deployment_id,
            time=started,
            organization_id=org_id,
            repository_id=repo_id,
            source="github",
            external_id="D1",
            service="api",
            environment="production",
            status=status,
        )
        async with transaction(sessions) as session:
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["id", "time"],
                    set_={"status": statement.excluded.status},
                )
            )
    async with sessions() as session:
        rows = (await session.execute(select(Deployment))).scalars().all()
        assert [(row.id, row.status) for row in rows] == [(deployment_id, "success")]
        fetched = await session.get(Repository, repo_id)
        assert fetched is not None
        assert fetched.name == "acme/api"
        assert fetched.created_at.tzinfo is not None


async def test_downgrade_to_base_removes_everything(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    await migrate.downgrade(engine, "base")
    assert await table_names(engine) == {"alembic_version"}
    async with engine.connect() as connection:
        views = await connection.execute(text("SELECT count(*) FROM pg_matviews"))
        assert views.scalar() == 0
    await migrate.upgrade(engine)  # and back up again cleanly
    assert set(Base.metadata.tables) <= await table_names(engine)


def test_doraflow_migrate_command_twice(database_url: str) -> None:
    env = {**os.environ, "DORAFLOW_DATABASE_URL": database_url, "DORAFLOW_LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "doraflow.cli", "migrate"]
    for _ in range(2):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert '"message": "schema up to date"' in result.stderr
    assert "postgres:" not in result.stderr or "@" not in result.stderr  # no credentials in logs
