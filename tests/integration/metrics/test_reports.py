"""DORA reports from the database equal the pure definitions; scopes never leak.

The generated dataset (`benchmarks.datasets`, a small spec: five repositories, two teams, a few
thousand commits, merge-commit and squash repositories collected both GitHub- and GitLab-style,
multi-region rollouts, rollbacks, hotfixes, incidents with and without explicit links) is compared
with the reference path over several windows and every scope; hand-made datasets pin the
documented worked example and the isolation between organizations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.datasets import Dataset, DatasetSpec, generate
from benchmarks.datasets import load as copy_dataset
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.settings import Settings
from doraflow.metrics import (
    DoraReport,
    MetricResult,
    MetricScope,
    QueryLayerMetricsSource,
    ScopeNotFoundError,
    Tier,
    Window,
    dora_report,
)
from doraflow.metrics.enrichment import lead_time_enrichment_mismatches
from doraflow.metrics.loaders import Database, resolve_scope
from tests.integration.metrics.conftest import Seed, at, dsn, migrated_database, week
from tests.integration.metrics.reference import reference_dora
from tests.testenv.postgres import MakeDatabase

pytestmark = pytest.mark.integration

HOUR = 3600.0
SPEC = DatasetSpec.small(seed=11, slug="alpha")
OTHER = DatasetSpec.small(seed=12, slug="beta")


@pytest.fixture(scope="module")
async def generated(
    make_database: MakeDatabase,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Dataset]]:
    url = await migrated_database(make_database)
    dataset = generate(SPEC)
    connection = await asyncpg.connect(dsn(url))
    try:
        await copy_dataset(connection, dataset)
        await copy_dataset(connection, generate(OTHER))  # same service names, other organization
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    engine: AsyncEngine = create_engine(Settings(), url=url)
    try:
        yield create_session_factory(engine), dataset
    finally:
        await engine.dispose()


def assert_same_metrics(served: DoraReport, reference: dict[str, MetricResult]) -> None:
    assert set(served.metrics) == set(reference)
    for name, result in served.metrics.items():
        expected = reference[name].to_dict()
        actual = result.to_dict()
        if name == "lead_time_for_changes":
            # Counts over "whatever changes the function was given" differ by construction
            # (the reference is given every commit of the scope); the mean is summed in
            # another order. Everything else is identical.
            for details in (expected["details"], actual["details"]):
                assert isinstance(details, dict)
                for key in ("merge_commits_not_counted", "changes_not_deployed", "mean"):
                    details.pop(key, None)
        assert actual == expected, name


async def test_generated_data_holds_exactly_the_defined_enrichment(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
) -> None:
    sessions, dataset = generated
    async with sessions() as session, session.begin():
        mismatches = await lead_time_enrichment_mismatches(
            await Database.of(session), dataset.organization_id
        )
    assert mismatches == []


@pytest.mark.parametrize(("days", "back"), [(30, 0), (60, 0), (14, 20), (7, 3)])
async def test_reports_equal_the_definitions_over_everything_for_every_scope(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset], days: int, back: int
) -> None:
    sessions, dataset = generated
    end = SPEC.end - timedelta(days=back)
    window = Window(end - timedelta(days=days), end)
    scopes = [
        MetricScope.organization(),
        *(MetricScope.team(team) for team in dataset.team_ids),
        MetricScope.repository(dataset.repository_ids[0]),
        MetricScope.repository(dataset.repository_ids[-1]),
    ]
    for scope in scopes:
        for benchmark in (2021, 2023):
            async with sessions() as session:
                served = await dora_report(
                    session,
                    organization_id=dataset.organization_id,
                    scope=scope,
                    window=window,
                    benchmark=benchmark,
                )
            async with sessions() as session:
                db = await Database.of(session)
                resolved = await resolve_scope(db, dataset.organization_id, scope)
                reference = await reference_dora(db, resolved, window, benchmark=benchmark)
            assert_same_metrics(served, reference)
            if scope.kind == "organization":  # the comparison is not vacuous
                assert served.metrics["deployment_frequency"].value is not None
                assert served.metrics["lead_time_for_changes"].value is not None


async def test_parallel_and_single_connection_reports_are_identical(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
) -> None:
    sessions, dataset = generated
    window = Window(SPEC.end - timedelta(days=30), SPEC.end)
    reports = []
    for parallel in (True, False):
        async with sessions() as session:
            report = await dora_report(
                session,
                organization_id=dataset.organization_id,
                scope=MetricScope.organization(),
                window=window,
                parallel=parallel,
            )
            reports.append(report.to_dict())
    assert reports[0] == reports[1]


async def test_teams_split_the_organization(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
) -> None:
    sessions, dataset = generated
    window = Window(SPEC.end - timedelta(days=30), SPEC.end)
    counts = {}
    for scope in [MetricScope.organization(), *(MetricScope.team(team) for team in dataset.team_ids)]:
        async with sessions() as session:
            report = await dora_report(
                session, organization_id=dataset.organization_id, scope=scope, window=window
            )
        counts[scope] = (
            report.metrics["deployment_frequency"].sample_size,
            report.metrics["lead_time_for_changes"].sample_size,
        )
    organization = counts.pop(MetricScope.organization())
    assert organization == tuple(map(sum, zip(*counts.values(), strict=True)))


async def test_another_organizations_team_or_repository_is_not_found(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
) -> None:
    sessions, dataset = generated
    async with sessions() as session:
        db = await Database.of(session)
        other_organization = (await db.fetch("SELECT id FROM organizations WHERE slug = 'beta'"))[0][0]
        other_team = (await db.fetch("SELECT id FROM teams WHERE organization_id = $1", other_organization))[
            0
        ][0]
        other_repository = (
            await db.fetch("SELECT id FROM repositories WHERE organization_id = $1", other_organization)
        )[0][0]
    window = week()
    for scope in (MetricScope.team(other_team), MetricScope.repository(other_repository)):
        async with sessions() as session:
            with pytest.raises(ScopeNotFoundError):
                await dora_report(
                    session, organization_id=dataset.organization_id, scope=scope, window=window
                )
    async with sessions() as session:
        with pytest.raises(ScopeNotFoundError):
            await dora_report(
                session, organization_id=uuid.uuid4(), scope=MetricScope.organization(), window=window
            )


async def test_unknown_benchmark_is_refused(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
) -> None:
    sessions, dataset = generated
    async with sessions() as session:
        with pytest.raises(ValueError, match="benchmark"):
            await dora_report(
                session,
                organization_id=dataset.organization_id,
                scope=MetricScope.organization(),
                window=week(),
                benchmark=2019,
            )


def worked_example(slug: str = "acme") -> Seed:
    """docs/metrics.md, "Worked example": one service over the week of Monday 2024-03-04."""
    seed = Seed(slug=slug)
    api = seed.repository("api")
    seed.commit(api, "c1", at(0, 8))
    seed.commit(api, "c2", at(0, 9))
    seed.commit(api, "b1", at(0, 6), pull_request=1)
    seed.commit(api, "b2", at(0, 11), pull_request=1)
    seed.commit(api, "s1", at(1, 9), pull_request=1)
    seed.commit(api, "c3", at(2, 8))
    seed.commit(api, "c4", at(3, 7))
    seed.commit(api, "c5", at(3, 12))
    seed.pull_request(api, 1, at(0, 11, 30), merged=at(1, 9), merge_sha="s1", first_review=at(0, 14))
    seed.deployment(api, "c2", at(0, 10), ["c1", "c2"], service="api", external_id="A1")
    seed.deployment(api, "s1", at(1, 10), ["s1"], service="api", external_id="A2")
    seed.deployment(api, "c3", at(2, 10), ["c3"], service="api", external_id="A3")
    seed.deployment(api, "s1", at(2, 11), ["s1"], service="api", external_id="A4")
    seed.deployment(api, "c4", at(3, 10), ["c3", "c4"], service="api", external_id="A5")
    seed.deployment(api, "c5", at(3, 13), ["c5"], service="api", hotfix=True, external_id="A6")
    seed.incident(at(0, 11), resolved=at(0, 13), service="api")
    seed.incident(at(0, 12), resolved=at(0, 14, 30), service="api")
    seed.incident(at(4, 9), resolved=at(4, 9, 30), service="billing")
    return seed


async def test_the_documented_worked_example(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = worked_example()
    await seed.load(database_url)
    async with sessions() as session:
        report = await dora_report(
            session, organization_id=seed.organization_id, scope=seed.organization, window=week()
        )
    metrics = report.metrics
    assert metrics["deployment_frequency"].value == pytest.approx(6 / 7)
    assert metrics["deployment_frequency"].tier is Tier.HIGH
    lead = metrics["lead_time_for_changes"]
    assert (lead.median, lead.p75, lead.p90, lead.tier) == (2 * HOUR, 13 * HOUR, 25 * HOUR, Tier.ELITE)
    assert (metrics["change_failure_rate"].value, metrics["change_failure_rate"].tier) == (0.5, Tier.LOW)
    assert metrics["change_failure_rate"].details["incidents_unattributed"] == 1
    assert metrics["failed_deployment_recovery_time"].value == 3 * HOUR
    assert metrics["time_to_restore_service"].value == 2 * HOUR
    assert metrics["rework_rate"].value == pytest.approx(1 / 3)
    assert report.scope.name == "Acme"


async def test_another_organization_sharing_names_shas_and_ids_changes_nothing(
    make_database: MakeDatabase,
) -> None:
    alone_url, shared_url = await migrated_database(make_database), await migrated_database(make_database)
    acme = worked_example("acme")
    await acme.load(alone_url)
    await acme.load(shared_url)
    # Same services, same commit SHAs, same deployment ids, an incident naming "A3", more work.
    other = worked_example("other")
    other_api = other.tables["repositories"][0][0]
    other.commit(other_api, "c6", at(4, 1))
    other.deployment(other_api, "c6", at(4, 2), ["c1", "c6"], service="api", rollback=True, external_id="A7")
    other.incident(at(2, 10, 30), resolved=at(6), service="api", deployment_ref="A3")
    await other.load(shared_url)

    reports = []
    for url in (alone_url, shared_url):
        engine = create_engine(Settings(), url=url)
        try:
            async with create_session_factory(engine)() as session:
                report = await dora_report(
                    session, organization_id=acme.organization_id, scope=acme.organization, window=week()
                )
            reports.append(report.to_dict())
        finally:
            await engine.dispose()
    assert reports[0] == reports[1]


@dataclass(frozen=True)
class ApiScope:
    """The API's `MetricsScope` shape (doraflow.api.services.analytics)."""

    organization_id: uuid.UUID
    repository_ids: tuple[uuid.UUID, ...] | None = None


async def test_the_api_metrics_source_answers_several_windows_like_separate_reports(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
) -> None:
    sessions, dataset = generated
    current = Window(SPEC.end - timedelta(days=30), SPEC.end)
    previous = Window(current.start - timedelta(days=30), current.start)
    overlapping = Window(current.start - timedelta(days=10), current.end)
    team = dataset.team_ids[0]
    async with sessions() as session:
        db = await Database.of(session)
        team_repositories = await resolve_scope(db, dataset.organization_id, MetricScope.team(team))
    source = QueryLayerMetricsSource()
    for api_scope, scope in (
        (ApiScope(dataset.organization_id), MetricScope.organization()),
        (ApiScope(dataset.organization_id, team_repositories.repository_ids), MetricScope.team(team)),
    ):
        async with sessions() as session:
            answers = await source.dora(session, api_scope, [current, previous, overlapping], benchmark=2021)
        for window, answer in zip([current, previous, overlapping], answers, strict=True):
            async with sessions() as session:
                report = await dora_report(
                    session,
                    organization_id=dataset.organization_id,
                    scope=scope,
                    window=window,
                    benchmark=2021,
                )
            assert {name: result.to_dict() for name, result in answer.items()} == {
                name: result.to_dict() for name, result in report.metrics.items()
            }
        async with sessions() as session:
            flow = await source.flow(session, api_scope, current)
        assert flow["pull_request_throughput"].value is not None
    # Another organization's repositories are dropped, never read.
    async with sessions() as session:
        (answer,) = await source.dora(
            session, ApiScope(dataset.organization_id, (uuid.uuid4(),)), [current], benchmark=2023
        )
    assert answer["deployment_frequency"].value is None
