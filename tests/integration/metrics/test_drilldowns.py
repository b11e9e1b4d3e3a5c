"""Drill-downs list exactly the items behind each number, page by page, in any sort order."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.datasets import Dataset
from doraflow.metrics import (
    DoraReport,
    InvalidCursorError,
    MetricScope,
    Page,
    Window,
    dora_report,
    list_deployments,
    list_incidents,
    list_pull_requests,
)
from tests.integration.metrics.conftest import at, week
from tests.integration.metrics.test_reports import SPEC, generated, worked_example

pytestmark = pytest.mark.integration
__all__ = ["generated"]  # the module-scoped dataset fixture, shared with test_reports

HOUR = 3600.0
WINDOW = Window(SPEC.end - timedelta(days=30), SPEC.end)

Lister = Callable[..., Awaitable[Page[Any]]]


async def every_page(
    sessions: async_sessionmaker[AsyncSession], lister: Lister, **arguments: Any
) -> list[Any]:
    """All items, following the cursors with a small page size."""
    items: list[Any] = []
    cursor = None
    while True:
        async with sessions() as session:
            page = await lister(session, cursor=cursor, limit=7, **arguments)
        items.extend(page.items)
        assert len(items) <= page.total
        if page.next_cursor is None:
            assert len(items) == page.total
            return items
        cursor = page.next_cursor


@pytest.fixture(scope="module")
async def report(generated: tuple[async_sessionmaker[AsyncSession], Dataset]) -> AsyncIterator[DoraReport]:
    sessions, dataset = generated
    async with sessions() as session:
        yield await dora_report(
            session, organization_id=dataset.organization_id, scope=MetricScope.organization(), window=WINDOW
        )


@pytest.mark.parametrize(
    ("sort", "descending"),
    [("first_deployed_at", True), ("cycle_time", False), ("pickup_time", True), ("size", False)],
)
async def test_pull_requests_behind_the_lead_time_breakdown(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset],
    report: DoraReport,
    sort: str,
    descending: bool,
) -> None:
    sessions, dataset = generated
    items = await every_page(
        sessions,
        list_pull_requests,
        organization_id=dataset.organization_id,
        scope=MetricScope.organization(),
        window=WINDOW,
        sort=sort,
        descending=descending,
    )
    breakdown = report.metrics["lead_time_for_changes"].details["cycle_time_breakdown"]
    assert isinstance(breakdown, dict)
    assert len(items) == breakdown["pull_requests"]
    assert len({(item.repository_id, item.number) for item in items}) == len(items)
    for stage in ("coding", "pickup", "review", "deploy"):
        values = [
            getattr(item, f"{stage}_seconds")
            for item in items
            if getattr(item, f"{stage}_seconds") is not None
        ]
        stage_summary = breakdown[stage]
        assert isinstance(stage_summary, dict)
        assert statistics.median(values) == pytest.approx(stage_summary["median"], rel=1e-12)
    # Sorted as asked, rows without a value last.
    attribute = {"cycle_time": "cycle_time_seconds", "pickup_time": "pickup_seconds"}.get(sort)
    if attribute is not None:
        values = [getattr(item, attribute) for item in items]
        present = [value for value in values if value is not None]
        assert present == sorted(present, reverse=descending)
        assert values[len(present) :] == [None] * (len(values) - len(present))
    # Changes per pull request add up (within the window, each change counted once).
    assert all(item.changes >= 0 for item in items)


async def test_deployments_behind_frequency_failure_rate_and_recovery(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset], report: DoraReport
) -> None:
    sessions, dataset = generated
    arguments = {
        "organization_id": dataset.organization_id,
        "scope": MetricScope.organization(),
        "window": WINDOW,
    }
    deployments = await every_page(sessions, list_deployments, **arguments)
    assert len(deployments) == report.metrics["deployment_frequency"].sample_size
    assert [item.deployed_at for item in deployments] == sorted(
        (item.deployed_at for item in deployments), reverse=True
    )
    failed = await every_page(sessions, list_deployments, failed_only=True, sort="recovery_time", **arguments)
    assert len(failed) == report.metrics["change_failure_rate"].details["failed_deployments"]
    recovered = [item.recovery_seconds for item in failed if item.recovery_seconds is not None]
    assert statistics.median(recovered) == report.metrics["failed_deployment_recovery_time"].value
    assert (
        sum(item.rework for item in deployments)
        == report.metrics["rework_rate"].details["rework_deployments"]
    )
    lead = report.metrics["lead_time_for_changes"]
    assert sum(item.changes for item in deployments) == lead.sample_size


async def test_incidents_behind_the_failure_rate_and_time_to_restore(
    generated: tuple[async_sessionmaker[AsyncSession], Dataset], report: DoraReport
) -> None:
    sessions, dataset = generated
    arguments = {
        "organization_id": dataset.organization_id,
        "scope": MetricScope.organization(),
        "window": WINDOW,
    }
    started = await every_page(sessions, list_incidents, **arguments)
    failure_rate = report.metrics["change_failure_rate"].details
    assert len(started) == failure_rate["incidents_in_window"]
    assert sum(item.deployment_id is not None for item in started) == failure_rate["incidents_attributed"]
    resolved = await every_page(
        sessions, list_incidents, selection="resolved", sort="time_to_restore", **arguments
    )
    restore = [item.time_to_restore_seconds for item in resolved if item.time_to_restore_seconds is not None]
    assert statistics.median(restore) == report.metrics["time_to_restore_service"].value
    assert restore == sorted(restore, reverse=True)


async def test_worked_example_drill_downs_explain_the_numbers(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = worked_example()
    await seed.load(database_url)
    arguments: dict[str, Any] = {
        "organization_id": seed.organization_id,
        "scope": seed.organization,
        "window": week(),
    }
    async with sessions() as session:
        deployments = await list_deployments(session, sort="deployed_at", descending=False, **arguments)
    by_external_id = {item.external_id: item for item in deployments.items}
    assert [item.external_id for item in deployments.items] == ["A1", "A2", "A3", "A4", "A5", "A6"]
    assert by_external_id["A1"].failure_reasons == ("incident",)
    assert len(by_external_id["A1"].incident_ids) == 2
    assert by_external_id["A1"].recovery_seconds == 4.5 * HOUR
    assert by_external_id["A3"].failure_reasons == ("rolled_back",)
    assert by_external_id["A4"].rework_reasons == ("rollback",)
    assert by_external_id["A5"].failure_reasons == ("followed_by_hotfix",)
    assert (by_external_id["A1"].changes, by_external_id["A1"].lead_time_median) == (2, 1.5 * HOUR)
    assert (by_external_id["A2"].changes, by_external_id["A2"].lead_time_median) == (2, 25.5 * HOUR)
    assert by_external_id["A4"].changes == 0
    assert deployments.to_dict()["total"] == 6

    async with sessions() as session:
        pull_requests = await list_pull_requests(session, **arguments)
    (pull_request,) = pull_requests.items
    assert (pull_request.coding_seconds, pull_request.pickup_seconds) == (5.5 * HOUR, 2.5 * HOUR)
    assert (pull_request.review_seconds, pull_request.deploy_seconds) == (19 * HOUR, 1 * HOUR)
    assert (pull_request.changes, pull_request.lead_time_median) == (2, 25.5 * HOUR)
    assert pull_request.repository == "acme/api"

    async with sessions() as session:
        incidents = await list_incidents(session, sort="created_at", descending=False, **arguments)
    assert [item.attribution for item in incidents.items] == [
        "service_window",
        "service_window",
        "unattributed",
    ]
    assert incidents.items[0].deployment_id == by_external_id["A1"].id
    assert incidents.items[2].time_to_restore_seconds == 0.5 * HOUR
    assert "billing" in incidents.items[2].attribution_explanation


async def test_cursors_are_tied_to_their_sort_and_pages_never_overlap(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = worked_example()
    await seed.load(database_url)
    arguments: dict[str, Any] = {
        "organization_id": seed.organization_id,
        "scope": seed.organization,
        "window": week(),
    }
    async with sessions() as session:
        first = await list_deployments(session, limit=4, **arguments)
        assert first.next_cursor is not None
        second = await list_deployments(session, limit=4, cursor=first.next_cursor, **arguments)
        assert second.next_cursor is None
        assert {item.id for item in first.items}.isdisjoint(item.id for item in second.items)
        assert len(first.items) + len(second.items) == first.total == 6
        with pytest.raises(InvalidCursorError):
            await list_deployments(
                session, limit=4, cursor=first.next_cursor, sort="recovery_time", **arguments
            )
        with pytest.raises(InvalidCursorError):
            await list_deployments(session, limit=4, cursor="not-a-cursor", **arguments)
        with pytest.raises(ValueError, match="sort"):
            await list_deployments(session, sort="nonsense", **arguments)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            await list_incidents(session, limit=0, **arguments)
    assert at(0) < first.items[0].deployed_at
