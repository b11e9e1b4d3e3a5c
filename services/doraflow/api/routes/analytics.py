"""`/api/v1/analytics` — DORA metrics, their trend, flow metrics, and the drill-downs."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from doraflow.api.deps import Context, Session, Viewer
from doraflow.api.problems import problem_responses
from doraflow.api.routes.params import DEFAULT_LIMIT, Cursor, Limit
from doraflow.api.schemas.analytics import (
    DORA_METRICS,
    Benchmark,
    DeploymentRow,
    DoraResponse,
    FlowResponse,
    Granularity,
    IncidentRow,
    PullRequestRow,
    ScopeKind,
    TrendResponse,
    WindowName,
)
from doraflow.api.schemas.common import Page, Timestamp
from doraflow.api.services import drilldown
from doraflow.api.services.analytics import CachedAnswer, MetricsScope, resolve_window
from doraflow.metrics import Window

router = APIRouter(
    prefix="/analytics", tags=["analytics"], responses=problem_responses(401, 403, 404, 422, 429)
)

ScopeParam = Annotated[ScopeKind, Query(description="what to measure")]
IdParam = Annotated[uuid.UUID | None, Query(description="team or repository id (organization: optional)")]
WindowParam = Annotated[WindowName | None, Query(description="the last N whole days (default 30d)")]
FromParam = Annotated[
    Timestamp | None, Query(alias="from", description="start (inclusive); UTC without offset")
]
ToParam = Annotated[Timestamp | None, Query(alias="to", description="end (exclusive); default now")]
BenchmarkParam = Annotated[Benchmark, Query(description="DORA benchmark year for the tiers")]
MetricName = Literal[
    "deployment_frequency",
    "lead_time_for_changes",
    "change_failure_rate",
    "failed_deployment_recovery_time",
    "time_to_restore_service",
    "rework_rate",
]
assert set(MetricName.__args__) == set(DORA_METRICS)  # type: ignore[attr-defined]


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
    scope: ScopeParam = "organization",
    id: IdParam = None,
    window: WindowParam = None,
    from_: FromParam = None,
    to: ToParam = None,
    benchmark: BenchmarkParam = "2023",
    compare: Annotated[bool, Query(description="add the preceding window (for trend arrows)")] = False,
) -> Response:
    answer = await context.analytics.dora(
        session,
        principal,
        kind=scope,
        scope_id=id,
        window=resolve_window(window, from_, to),
        benchmark=int(benchmark),
        compare=compare,
    )
    return _json(answer)


@router.get("/dora/trend", response_model=TrendResponse, summary="DORA metrics per day, week or month")
async def dora_trend(
    principal: Viewer,
    session: Session,
    context: Context,
    scope: ScopeParam = "organization",
    id: IdParam = None,
    window: WindowParam = None,
    from_: FromParam = None,
    to: ToParam = None,
    benchmark: BenchmarkParam = "2023",
    granularity: Granularity = "week",
    metric: Annotated[list[MetricName] | None, Query(description="only these metrics (repeatable)")] = None,
) -> Response:
    answer = await context.analytics.trend(
        session,
        principal,
        kind=scope,
        scope_id=id,
        window=resolve_window(window or ("90d" if from_ is None and to is None else None), from_, to),
        benchmark=int(benchmark),
        granularity=granularity,
        metrics=metric or [],
    )
    return _json(answer)


@router.get("/flow", response_model=FlowResponse, summary="Flow metrics (pull requests, churn, work items)")
async def flow(
    principal: Viewer,
    session: Session,
    context: Context,
    scope: ScopeParam = "organization",
    id: IdParam = None,
    window: WindowParam = None,
    from_: FromParam = None,
    to: ToParam = None,
) -> Response:
    answer = await context.analytics.flow(
        session, principal, kind=scope, scope_id=id, window=resolve_window(window, from_, to)
    )
    return _json(answer)


async def _scope_and_window(
    context: Context,
    session: Session,
    principal: Viewer,
    scope: str,
    scope_id: uuid.UUID | None,
    window: str | None,
    from_: Timestamp | None,
    to: Timestamp | None,
) -> tuple[MetricsScope, Window]:
    resolved = await context.analytics.resolve_scope(session, principal, scope, scope_id)
    return resolved.metrics, resolve_window(window, from_, to)


@router.get(
    "/pull-requests", response_model=Page[PullRequestRow], summary="Pull requests merged in the window"
)
async def pull_requests(
    principal: Viewer,
    session: Session,
    context: Context,
    scope: ScopeParam = "organization",
    id: IdParam = None,
    window: WindowParam = None,
    from_: FromParam = None,
    to: ToParam = None,
    sort: Literal["merged_at", "-merged_at", "opened_at", "-opened_at"] = "-merged_at",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[PullRequestRow]:
    metrics_scope, span = await _scope_and_window(context, session, principal, scope, id, window, from_, to)
    items, next_cursor = await drilldown.pull_requests(
        session, metrics_scope, span, sort=sort, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/deployments", response_model=Page[DeploymentRow], summary="Deployments started in the window")
async def deployments(
    principal: Viewer,
    session: Session,
    context: Context,
    scope: ScopeParam = "organization",
    id: IdParam = None,
    window: WindowParam = None,
    from_: FromParam = None,
    to: ToParam = None,
    production: Annotated[bool, Query(description="production deployments only")] = True,
    status: Literal["success", "failed", "in_progress", "cancelled"] | None = None,
    sort: Literal["started_at", "-started_at"] = "-started_at",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DeploymentRow]:
    metrics_scope, span = await _scope_and_window(context, session, principal, scope, id, window, from_, to)
    items, next_cursor = await drilldown.deployments(
        session,
        metrics_scope,
        span,
        production_only=production,
        status=status,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/incidents", response_model=Page[IncidentRow], summary="Incidents opened in the window")
async def incidents(
    principal: Viewer,
    session: Session,
    context: Context,
    scope: ScopeParam = "organization",
    id: IdParam = None,
    window: WindowParam = None,
    from_: FromParam = None,
    to: ToParam = None,
    open_only: Annotated[bool, Query(alias="open", description="unresolved incidents only")] = False,
    sort: Literal["created_at", "-created_at"] = "-created_at",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[IncidentRow]:
    metrics_scope, span = await _scope_and_window(context, session, principal, scope, id, window, from_, to)
    items, next_cursor = await drilldown.incidents(
        session, metrics_scope, span, open_only=open_only, sort=sort, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)
