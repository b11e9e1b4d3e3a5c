"""Analytics responses: DORA metrics, their trend, flow metrics and the drill-down rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ScopeKind = Literal["organization", "team", "repository"]
WindowName = Literal["7d", "30d", "90d", "180d", "365d"]
Granularity = Literal["day", "week", "month"]
Benchmark = Literal["2021", "2023"]
TierName = Literal["elite", "high", "medium", "low"]

DORA_METRICS = (
    "deployment_frequency",
    "lead_time_for_changes",
    "change_failure_rate",
    "failed_deployment_recovery_time",
    "time_to_restore_service",
    "rework_rate",
)


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
    repository_id: uuid.UUID
    repository: str
    number: int
    title: str | None
    author: str | None
    state: str | None
    opened_at: datetime
    first_commit_at: datetime | None
    first_review_at: datetime | None
    merged_at: datetime | None
    first_deployed_at: datetime | None
    lines_added: int | None
    lines_deleted: int | None
    reviews_count: int | None
    review_comments: int | None


class DeploymentRow(BaseModel):
    id: uuid.UUID
    external_id: str
    source: str
    repository: str | None
    service: str
    environment: str | None
    is_production: bool
    status: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: int | None
    revision: str | None
    is_hotfix: bool
    is_rollback: bool
    incident_count: int = Field(description="incidents attributed to this deployment")
    url: str | None


class IncidentRow(BaseModel):
    id: uuid.UUID
    external_id: str
    source: str
    title: str | None
    severity: str | None
    service: str | None
    created_at: datetime
    resolved_at: datetime | None
    deployment_id: uuid.UUID | None
    attribution: str
    url: str | None
