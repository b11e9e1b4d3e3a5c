"""`/api/v1/analytics` — DORA metrics, their trend, flow metrics, and the drill-downs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from doraflow.api.deps import Context, Session, Viewer
from doraflow.api.problems import problem_responses
from doraflow.api.routes.params import AnalyticsQuery, Paging
from doraflow.api.schemas.analytics import (
    Benchmark,
    DeploymentRow,
    DeploymentSort,
    DoraMetricName,
    DoraResponse,
    DrillDownPage,
    FlowResponse,
    Granularity,
    IncidentRow,
    IncidentSelection,
    IncidentSort,
    PullRequestRow,
    PullRequestSelection,
    PullRequestSort,
    TrendResponse,
)
from doraflow.api.services import drilldown
from doraflow.api.services.analytics import CachedAnswer

router = APIRouter(
    prefix="/analytics", tags=["analytics"], responses=problem_responses(401, 403, 404, 422, 429)
)

BenchmarkParam = Annotated[Benchmark, Query(description="DORA benchmark year for the tiers")]


def _json(answer: CachedAnswer) -> Response:
    return Response(
        answer.body,
        media_type="application/json",
        headers={"X-Cache": "hit" if answer.hit else "miss", "Cache-Control": "private, max-age=60"},
    )


@router.get("/dora", response_model=DoraResponse, summary="DORA metrics with tiers")
async def dora(
    principal: Viewer,
    session: Session,
    context: Context,
    query: AnalyticsQuery,
    benchmark: BenchmarkParam = "2023",
    compare: Annotated[bool, Query(description="add the preceding window (for trend arrows)")] = False,
) -> Response:
    answer = await context.analytics.dora(
        session,
        principal,
        kind=query.kind,
        scope_id=query.scope_id,
        window=query.window(),
        benchmark=int(benchmark),
        compare=compare,
    )
    return _json(answer)


@router.get("/dora/trend", response_model=TrendResponse, summary="DORA metrics per day, week or month")
async def dora_trend(
    principal: Viewer,
    session: Session,
    context: Context,
    query: AnalyticsQuery,
    benchmark: BenchmarkParam = "2023",
    granularity: Granularity = "week",
    metric: Annotated[
        list[DoraMetricName] | None, Query(description="only these metrics (repeatable)")
    ] = None,
) -> Response:
    answer = await context.analytics.trend(
        session,
        principal,
        kind=query.kind,
        scope_id=query.scope_id,
        window=query.window(default="90d"),
        benchmark=int(benchmark),
        granularity=granularity,
        metrics=metric or [],
    )
    return _json(answer)


@router.get("/flow", response_model=FlowResponse, summary="Flow metrics (pull requests, churn, work items)")
async def flow(principal: Viewer, session: Session, context: Context, query: AnalyticsQuery) -> Response:
    """For a team, work-item cycle and lead time and sprint throughput count the work items
    assigned to its members; pull-request metrics and churn count its repositories."""
    answer = await context.analytics.flow(
        session, principal, kind=query.kind, scope_id=query.scope_id, window=query.window()
    )
    return _json(answer)


async def _drill_down(
    principal: Viewer, session: Session, context: Context, query: AnalyticsQuery, paging: Paging
) -> drilldown.DrillDown:
    """The scope (404 for another organization's team or repository), window and page every
    drill-down takes."""
    resolved = await context.analytics.resolve_scope(session, principal, query.kind, query.scope_id)
    return drilldown.DrillDown(
        context.analytics.source, session, resolved.metrics, query.window(), paging.cursor, paging.limit
    )


DrillDownRequest = Annotated[drilldown.DrillDown, Depends(_drill_down)]


@router.get(
    "/pull-requests",
    response_model=DrillDownPage[PullRequestRow],
    summary="Pull requests behind lead time (deployed) or the flow metrics (merged)",
)
async def pull_requests(
    request: DrillDownRequest,
    selection: Annotated[
        PullRequestSelection,
        Query(description="deployed: first deployed in the window (lead time); merged: merged in it"),
    ] = "deployed",
    sort: PullRequestSort = "-first_deployed_at",
) -> DrillDownPage[PullRequestRow]:
    return await request.pull_requests(selection=selection, sort=sort)


@router.get(
    "/deployments",
    response_model=DrillDownPage[DeploymentRow],
    summary="Production deployments of the window, as the DORA metrics count them",
)
async def deployments(
    request: DrillDownRequest,
    failed: Annotated[bool, Query(description="only failed deployments (change failure rate)")] = False,
    sort: DeploymentSort = "-deployed_at",
) -> DrillDownPage[DeploymentRow]:
    return await request.deployments(failed_only=failed, sort=sort)


@router.get(
    "/incidents",
    response_model=DrillDownPage[IncidentRow],
    summary="Incidents of the window with the attribution the metrics used",
)
async def incidents(
    request: DrillDownRequest,
    selection: Annotated[
        IncidentSelection,
        Query(description="started: impact started in the window; resolved: resolved in it"),
    ] = "started",
    sort: IncidentSort = "-created_at",
) -> DrillDownPage[IncidentRow]:
    return await request.incidents(selection=selection, sort=sort)
