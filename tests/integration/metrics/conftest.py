"""Fixtures of the metrics query-layer tests: a migrated database and a builder for hand-made data.

`Seed` writes rows the way the processor stores them (same tables, same columns) with COPY, then
fills the lead-time enrichment with `doraflow.metrics.enrichment.refresh_lead_time_enrichment` --
the reference definition of those columns -- so every test states its facts (commits, pull
requests, deployments, incidents) and nothing derived.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.datasets import COLUMNS, LOAD_ORDER, Dataset, DatasetSpec
from benchmarks.datasets import load as copy_dataset
from doraflow.core import migrate
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.settings import Settings
from doraflow.metrics import MetricScope, Window
from doraflow.metrics.enrichment import refresh_lead_time_enrichment
from doraflow.metrics.loaders import Database
from tests.testenv.postgres import MakeDatabase

T0 = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    """``T0`` plus an offset: ``at(1, 10)`` is Tuesday 10:00 UTC."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def week(start_days: float = 0, days: float = 7) -> Window:
    return Window(at(start_days), at(start_days + days))


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=database_url)
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@dataclass
class Seed:
    """Hand-made rows for one organization. Methods return ids; ``load`` writes everything."""

    slug: str = "acme"
    organization_id: uuid.UUID = field(default_factory=uuid.uuid4)
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {table: [] for table in COLUMNS})
    developer_id: uuid.UUID = field(default_factory=uuid.uuid4)
    _sequence: int = 0

    def __post_init__(self) -> None:
        self.tables["organizations"].append((self.organization_id, self.slug.title(), self.slug))
        self.tables["developers"].append(
            (self.developer_id, self.organization_id, f"dev@{self.slug}.example", "Dev", "dev")
        )

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    @property
    def organization(self) -> MetricScope:
        return MetricScope.organization()

    def team(self, name: str, *repositories: uuid.UUID, members: Sequence[uuid.UUID] = ()) -> uuid.UUID:
        team_id = uuid.uuid4()
        self.tables["teams"].append((team_id, self.organization_id, name, name.lower().replace(" ", "-")))
        for repository_id in repositories:
            self.tables["team_repositories"].append((team_id, repository_id))
        for developer in members:
            self.tables["team_members"].append((team_id, developer, "member"))
        return team_id

    def developer(self, name: str) -> uuid.UUID:
        developer_id = uuid.uuid4()
        self.tables["developers"].append(
            (developer_id, self.organization_id, f"{name}@{self.slug}.example", name, name)
        )
        return developer_id

    def repository(self, name: str, service: str | None = None) -> uuid.UUID:
        repository_id = uuid.uuid4()
        self.tables["repositories"].append(
            (
                repository_id,
                self.organization_id,
                f"{self.slug}/{name}",
                "github",
                str(self._next()),
                None,
                "main",
                service or name,
                "default/git",
            )
        )
        return repository_id

    def commit(
        self,
        repository_id: uuid.UUID,
        sha: str,
        authored: datetime,
        *,
        pull_request: int | None = None,
        merge: bool = False,
        lines: tuple[int, int, int] = (10, 2, 1),
    ) -> str:
        added, deleted, files = lines
        self.tables["commits"].append(
            (
                authored,
                repository_id,
                sha,
                self.organization_id,
                self.developer_id,
                authored,
                added,
                deleted,
                files,
                f"commit {sha}",
                merge,
                pull_request,
            )
        )
        return sha

    def pull_request(
        self,
        repository_id: uuid.UUID,
        number: int,
        opened: datetime,
        *,
        merged: datetime | None = None,
        merge_sha: str | None = None,
        first_commit: datetime | None = None,
        first_review: datetime | None = None,
        lines: tuple[int, int, int] = (100, 20, 5),
        reviews: int = 1,
        comments: int = 2,
        author: uuid.UUID | None = None,
    ) -> None:
        added, deleted, files = lines
        self.tables["pull_requests"].append(
            (
                opened,
                repository_id,
                number,
                self.organization_id,
                author or self.developer_id,
                f"PR {number}",
                "merged" if merged else "open",
                merged,
                merged,
                first_commit,
                first_review,
                merge_sha,
                f"feature/{number}",
                "main",
                added,
                deleted,
                files,
                None,
                comments,
                reviews,
                merged or opened,
                None,
                None,
            )
        )

    def deployment(
        self,
        repository_id: uuid.UUID | None,
        revision: str | None,
        finished: datetime,
        shas: Iterable[str] = (),
        *,
        service: str,
        environment: str = "production",
        production: bool = True,
        status: str = "success",
        hotfix: bool = False,
        rollback: bool = False,
        external_id: str | None = None,
    ) -> uuid.UUID:
        deployment_id = uuid.uuid4()
        number = self._next()
        self.tables["deployments"].append(
            (
                deployment_id,
                finished - timedelta(minutes=10),
                self.organization_id,
                repository_id,
                "ci",
                external_id or f"run-{number}",
                service,
                environment,
                production,
                status,
                finished,
                600,
                None,
                revision,
                hotfix,
                rollback,
                f"https://ci.example/{number}",
            )
        )
        listed = dict.fromkeys([*shas, *([revision] if revision else [])])
        for sha in listed:
            self.tables["deployment_commits"].append((deployment_id, sha, repository_id))
        return deployment_id

    def incident(
        self,
        created: datetime,
        *,
        resolved: datetime | None = None,
        service: str | None = None,
        deployment_ref: str | None = None,
        commit_ref: str | None = None,
        severity: str = "sev2",
    ) -> uuid.UUID:
        incident_id = uuid.uuid4()
        number = self._next()
        self.tables["incidents"].append(
            (
                incident_id,
                self.organization_id,
                "pagerduty",
                f"INC-{number}",
                f"incident {number}",
                severity,
                service,
                created,
                resolved,
                deployment_ref,
                commit_ref,
                None,
                "unattributed",
                None,
            )
        )
        return incident_id

    def issue(
        self,
        created: datetime,
        transitions: Sequence[tuple[datetime, str]] = (),
        *,
        assignee: uuid.UUID | None = None,
        points: float | None = None,
    ) -> uuid.UUID:
        """A work item and its moves between status categories (``todo``, ``in_progress``,
        ``done``), in order."""
        issue_id = uuid.uuid4()
        number = self._next()
        category = transitions[-1][1] if transitions else "todo"
        self.tables["issues"].append(
            (
                issue_id,
                self.organization_id,
                "jira",
                f"J-{number}",
                f"PRJ-{number}",
                "PRJ",
                f"issue {number}",
                "story",
                category,
                category,
                "medium",
                assignee,
                points,
                created,
                transitions[-1][0] if transitions else created,
                None,
                None,
            )
        )
        previous = "todo"
        for position, (moment, to_category) in enumerate(transitions):
            self.tables["issue_transitions"].append(
                (
                    uuid.uuid4(),
                    self.organization_id,
                    issue_id,
                    f"{number}-{position}",
                    previous,
                    to_category,
                    previous,
                    to_category,
                    moment,
                )
            )
            previous = to_category
        return issue_id

    def sprint(
        self, start: datetime, end: datetime, *issues: uuid.UUID, points: float | None = None
    ) -> uuid.UUID:
        sprint_id = uuid.uuid4()
        number = self._next()
        self.tables["sprints"].append(
            (
                sprint_id,
                self.organization_id,
                "jira",
                f"S-{number}",
                "board",
                f"Sprint {number}",
                "closed",
                start,
                end,
                end,
            )
        )
        for issue_id in issues:
            self.tables["sprint_issues"].append((sprint_id, issue_id, points, None))
        return sprint_id

    def dataset(self) -> Dataset:
        dataset = Dataset(DatasetSpec.small(slug=self.slug), self.organization_id, [], [])
        dataset.tables = {table: (COLUMNS[table], self.tables[table]) for table in LOAD_ORDER}
        return dataset

    async def load(self, url: str) -> None:
        """COPY the rows, then fill the lead-time enrichment by its reference definition."""
        connection = await asyncpg.connect(dsn(url))
        try:
            await copy_dataset(connection, self.dataset())
            async with connection.transaction():
                await refresh_lead_time_enrichment(Database(connection), self.organization_id)
        finally:
            await connection.close()


async def migrated_database(make_database: MakeDatabase) -> str:
    url = await make_database()
    engine = create_engine(Settings(), url=url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return url
