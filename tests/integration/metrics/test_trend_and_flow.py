"""DORA trends (day, week, month buckets) and flow metrics from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.metrics import Bucket, MetricScope, Window, dora_report, dora_trend, flow_report
from doraflow.metrics.queries import bucket_windows
from tests.integration.metrics.conftest import at, week
from tests.integration.metrics.test_reports import worked_example

pytestmark = pytest.mark.integration

HOUR = 3600.0
DAY = 86400.0


def test_buckets_are_calendar_units_in_utc_cut_to_the_window() -> None:
    window = Window(datetime(2024, 2, 20, 15, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC))
    months = bucket_windows(window, Bucket.MONTH)
    assert [(piece.start.day, piece.end.day, partial) for piece, partial in months] == [
        (20, 1, True),
        (1, 10, True),
    ]
    weeks = bucket_windows(window, Bucket.WEEK)
    assert weeks[0][0].start == window.start
    assert weeks[0][1]
    assert weeks[1][0].start == datetime(2024, 2, 26, tzinfo=UTC)
    assert not weeks[1][1]
    assert weeks[-1][0].end == window.end
    days = bucket_windows(Window(at(), at(7)), Bucket.DAY)
    assert len(days) == 7
    assert not any(partial for _, partial in days)
    # A window given in another zone is bucketed by UTC days all the same.
    zone = timezone(timedelta(hours=-5))
    shifted = bucket_windows(Window(at().astimezone(zone), at(2).astimezone(zone)), Bucket.DAY)
    assert [piece.start for piece, _ in shifted] == [at(), at(1)]


async def test_each_trend_point_is_the_report_of_its_bucket(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = worked_example()
    await seed.load(database_url)
    window = Window(at(-3), at(7, 12))  # Friday before → next Monday noon: partial first and last weeks
    for bucket in (Bucket.DAY, Bucket.WEEK, Bucket.MONTH):
        async with sessions() as session:
            trend = await dora_trend(
                session,
                organization_id=seed.organization_id,
                scope=seed.organization,
                window=window,
                bucket=bucket,
            )
        assert trend.points[0].start == window.start
        assert trend.points[-1].end == window.end
        for point in trend.points:
            async with sessions() as session:
                report = await dora_report(
                    session,
                    organization_id=seed.organization_id,
                    scope=seed.organization,
                    window=Window(point.start, point.end),
                )
            assert {name: result.to_dict() for name, result in point.metrics.items()} == {
                name: result.to_dict() for name, result in report.metrics.items()
            }, (bucket, point.start)
    async with sessions() as session:
        weekly = await dora_trend(
            session,
            organization_id=seed.organization_id,
            scope=seed.organization,
            window=window,
            bucket="week",
        )
    assert [(point.start, point.partial) for point in weekly.points] == [
        (at(-3), True),
        (at(0), False),
        (at(7), True),
    ]
    assert weekly.points[1].metrics["lead_time_for_changes"].median == 2 * HOUR
    assert weekly.points[0].metrics["deployment_frequency"].value is None
    assert weekly.to_dict()["granularity"] == "week"


async def test_flow_metrics(sessions: async_sessionmaker[AsyncSession], database_url: str) -> None:
    seed = worked_example()
    api = seed.tables["repositories"][0][0]
    web = seed.repository("web")
    alice, bob = seed.developer("alice"), seed.developer("bob")
    team = seed.team("Web", web, members=[alice])
    # Pull requests of web: two merged in the week, one only reviewed in it, one merged before.
    seed.pull_request(
        web, 1, at(0, 9), merged=at(1, 9), first_review=at(0, 10), lines=(40, 10, 2), reviews=2, comments=3
    )
    seed.pull_request(
        web, 2, at(1, 9), merged=at(2, 9), first_review=at(1, 13), lines=(300, 100, 9), reviews=1, comments=0
    )
    seed.pull_request(web, 3, at(2, 9), first_review=at(3, 9))
    seed.pull_request(web, 4, at(-5), merged=at(-4), first_review=at(-4, 1))
    seed.commit(web, "w1", at(1, 8), lines=(30, 10, 3))
    seed.commit(web, "wm", at(1, 9), merge=True, lines=(500, 0, 20))  # merge commits are not churn
    # Work items: alice's completes in the week after 2 days in progress; bob's is reopened.
    done = seed.issue(at(-1), [(at(1), "in_progress"), (at(3), "done")], assignee=alice, points=3)
    reopened = seed.issue(
        at(-2), [(at(0), "in_progress"), (at(1), "done"), (at(2), "in_progress")], assignee=bob
    )
    seed.sprint(at(-7), at(4), done, reopened, points=2)
    await seed.load(database_url)

    async with sessions() as session:
        flow = await flow_report(
            session, organization_id=seed.organization_id, scope=seed.organization, window=week()
        )
    metrics = flow.metrics
    assert metrics["pull_request_throughput"].value == 3  # web #1, #2 and api's PR-1
    assert metrics["time_to_first_review"].sample_size == 4  # api PR-1, web #1, #2, #3
    assert metrics["code_churn"].details["commits"] == 9  # api's 8 and w1
    assert metrics["work_item_cycle_time"].value == 2 * DAY
    assert metrics["work_item_lead_time"].value == 4 * DAY
    assert metrics["sprint_throughput"].value == 1
    assert metrics["sprint_carry_over"].value == 0.5

    async with sessions() as session:
        team_flow = await flow_report(
            session, organization_id=seed.organization_id, scope=MetricScope.team(team), window=week()
        )
    metrics = team_flow.metrics
    assert metrics["pull_request_throughput"].value == 2
    assert metrics["pull_request_size"].value == (50 + 400) / 2
    assert metrics["review_depth"].value == (2 + 3 + 1 + 0) / 2
    assert metrics["code_churn"].value == 40 / 7
    assert metrics["work_item_cycle_time"].sample_size == 1
    assert metrics["sprint_carry_over"].value == 0  # only alice's item counts for the team
    assert team_flow.scope.name == "Web"

    async with sessions() as session:
        repository_flow = await flow_report(
            session, organization_id=seed.organization_id, scope=MetricScope.repository(api), window=week()
        )
    assert repository_flow.metrics["pull_request_throughput"].value == 1
    assert repository_flow.metrics["work_item_cycle_time"].value is None
    assert "not linked to repositories" in (repository_flow.metrics["work_item_cycle_time"].reason or "")
