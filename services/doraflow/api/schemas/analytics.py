"""Analytics responses: DORA metrics, their trend, flow metrics and the drill-down rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, Field

from doraflow.api.schemas.common import Page

T = TypeVar("T")

ScopeKind = Literal["organization", "team", "repository"]
WindowName = Literal["7d", "30d", "90d", "180d", "365d"]
Granularity = Literal["day", "week", "month"]
Benchmark = Literal["2021", "2023"]
TierName = Literal["elite", "high", "medium", "low"]
DoraMetricName = Literal[
    "deployment_frequency",
    "lead_time_for_changes",
    "change_failure_rate",
    "failed_deployment_recovery_time",
    "time_to_restore_service",
    "rework_rate",
]
DORA_METRICS: tuple[str, ...] = get_args(DoraMetricName)

# Drill-down selections and sorts: the metrics layer's (doraflow.metrics.drilldowns), with the
# API's `-field` for descending order.
PullRequestSelection = Literal["deployed", "merged"]
PullRequestSort = Literal[
    "first_deployed_at", "-first_deployed_at", "merged_at", "-merged_at", "opened_at", "-opened_at",
    "cycle_time", "-cycle_time", "coding_time", "-coding_time", "pickup_time", "-pickup_time",
    "review_time", "-review_time", "deploy_time", "-deploy_time", "size", "-size",
]  # fmt: skip
DeploymentSort = Literal[
    "deployed_at", "-deployed_at", "recovery_time", "-recovery_time", "incident_count", "-incident_count"
]  # fmt: skip
IncidentSelection = Literal["started", "resolved"]
IncidentSort = Literal[
    "created_at", "-created_at", "resolved_at", "-resolved_at", "time_to_restore", "-time_to_restore"
]  # fmt: skip


class MetricOut(BaseModel):
    """One metric over one window. `value` is null exactly when `reason` says why; for
    distributions (durations) `value` is the median and `p75`/`p90` are given."""

    value: float | None
    unit: str
    tier: TierName | None
    sample_size: int
    reason: str | None = None
    median: float | None = None
    p75: float | None = None
    p90: float | None = None
    benchmark: int | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="counts to re-derive the number")


class ScopeOut(BaseModel):
    kind: ScopeKind
    id: uuid.UUID
    name: str


class WindowOut(BaseModel):
    start: datetime = Field(description="inclusive")
    end: datetime = Field(description="exclusive")


class DoraResponse(BaseModel):
    scope: ScopeOut
    window: WindowOut
    benchmark: int
    metrics: dict[str, MetricOut] = Field(description=f"keys: {', '.join(DORA_METRICS)}")
    previous: dict[str, MetricOut] | None = Field(
        default=None, description="the same metrics over the preceding window of equal length (compare=true)"
    )
    generated_at: datetime


class TrendPoint(BaseModel):
    start: datetime
    end: datetime
    partial: bool = Field(description="the bucket is cut by the window (e.g. the current week)")
    metrics: dict[str, MetricOut]


class TrendResponse(BaseModel):
    scope: ScopeOut
    window: WindowOut
    benchmark: int
    granularity: Granularity
    series: list[TrendPoint]
    generated_at: datetime


class FlowResponse(BaseModel):
    scope: ScopeOut
    window: WindowOut
    metrics: dict[str, MetricOut]
    generated_at: datetime


class PullRequestRow(BaseModel):
    """A pull request as the metrics layer counted it, with its stage durations in seconds
    (null when the stage has no time; `deploy_seconds` and `cycle_time_seconds` only once its
    merge or squash commit reached production). `changes` is how many of its commits count as
    changes for lead time, `lead_time_median` their median lead time in seconds."""

    repository_id: uuid.UUID
    repository: str
    number: int
    title: str | None
    author_id: uuid.UUID | None
    author: str | None
    state: str | None
    opened_at: datetime
    first_commit_at: datetime | None
    first_review_at: datetime | None
    merged_at: datetime | None
    first_deployed_at: datetime | None
    first_deployment_id: uuid.UUID | None
    merge_commit_sha: str | None
    lines_added: int | None
    lines_deleted: int | None
    files_changed: int | None
    commits_count: int | None
    reviews_count: int | None
    review_comments: int | None
    coding_seconds: float | None = Field(description="first commit → opened")
    pickup_seconds: float | None = Field(description="opened → first review by someone else")
    review_seconds: float | None = Field(description="first review → merged")
    deploy_seconds: float | None = Field(description="merged → first production deployment")
    cycle_time_seconds: float | None = Field(description="first commit (or opening) → production")
    changes: int | None
    lead_time_median: float | None = Field(description="seconds")


class DeploymentRow(BaseModel):
    """A production deployment as deployment frequency and the failure metrics count it: one
    rollout of one revision of one service, however many environments it reached (`environments`,
    `source_deployment_ids`). `failed` is the change failure rate's verdict, with its reasons."""

    id: uuid.UUID
    external_id: str
    source: str
    repository_id: uuid.UUID | None
    repository: str | None
    service: str
    environment: str | None
    environments: list[str]
    source_deployment_ids: list[uuid.UUID]
    revision: str | None
    started_at: datetime
    deployed_at: datetime
    duration_seconds: int | None
    url: str | None
    is_hotfix: bool
    is_rollback: bool
    failed: bool
    failure_reasons: list[str]
    incident_ids: list[uuid.UUID]
    incident_count: int = Field(description="incidents attributed to this deployment")
    recovered_at: datetime | None
    recovery_seconds: float | None = Field(description="failed deployment recovery time")
    restored_by_deployment_id: uuid.UUID | None
    rework: bool
    rework_reasons: list[str]
    changes: int = Field(description="commits this deployment first shipped to production")
    lead_time_median: float | None = Field(description="their median lead time, seconds")


class IncidentRow(BaseModel):
    """An incident with its time to restore and the deployment the metrics attributed it to —
    how (`attribution`) and why (`attribution_explanation`)."""

    id: uuid.UUID
    external_id: str
    source: str
    title: str | None
    severity: str | None
    service: str | None
    created_at: datetime
    resolved_at: datetime | None
    time_to_restore_seconds: float | None
    deployment_id: uuid.UUID | None
    attribution: str
    attribution_explanation: str
    url: str | None


class DrillDownPage(Page[T], Generic[T]):
    """One page of a drill-down; `total` counts every row of the window over all pages, which is
    the sample the metric it explains was computed from."""

    total: int
    sort: str
