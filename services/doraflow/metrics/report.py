"""What the query layer returns: scopes, reports, trend points, drill-down rows and pages.

Plain frozen dataclasses with ``to_dict()`` (JSON types only, datetimes as ISO-8601 strings), so
the API can serialise them directly or map them onto its own response models. Every metric
inside is a :class:`~doraflow.metrics.results.MetricResult`, the one result shape of the
package; nothing here recomputes a number.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Generic, Literal, Protocol, TypeVar, cast

from doraflow.metrics.records import Window
from doraflow.metrics.results import JSONValue, MetricResult

__all__ = [
    "DORA_METRIC_NAMES",
    "FLOW_METRIC_NAMES",
    "Bucket",
    "DeploymentItem",
    "DoraReport",
    "DoraTrend",
    "FlowReport",
    "IncidentItem",
    "InvalidCursorError",
    "MetricScope",
    "Page",
    "PullRequestItem",
    "ResolvedScope",
    "ScopeKind",
    "ScopeNotFoundError",
    "TrendPoint",
]

ScopeKind = Literal["organization", "team", "repository"]

DORA_METRIC_NAMES = (
    "deployment_frequency",
    "lead_time_for_changes",
    "change_failure_rate",
    "failed_deployment_recovery_time",
    "time_to_restore_service",
    "rework_rate",
)
FLOW_METRIC_NAMES = (
    "pull_request_throughput",
    "pull_request_size",
    "review_depth",
    "time_to_first_review",
    "code_churn",
    "work_item_cycle_time",
    "work_item_lead_time",
    "sprint_throughput",
    "sprint_carry_over",
)


class ScopeNotFoundError(LookupError):
    """The team or repository does not exist *in this organization* (the API answers 404 for
    both cases alike, so another organization's ids are not even confirmed to exist)."""


class InvalidCursorError(ValueError):
    """A pagination cursor that this query did not produce (tampered, or for another sort)."""


class Bucket(StrEnum):
    """Trend granularity. Buckets are calendar units in UTC: days from midnight, ISO weeks from
    Monday, months from the 1st."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class MetricScope:
    """What to measure: the whole organization, one team (its repositories, via
    ``team_repositories``), or one repository. ``id`` is the team's or repository's id; it is
    ignored for the organization scope."""

    kind: ScopeKind
    id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("organization", "team", "repository"):
            raise ValueError(f"unknown scope kind {self.kind!r}")
        if self.kind != "organization" and self.id is None:
            raise ValueError(f"a {self.kind} scope needs the {self.kind}'s id")

    @classmethod
    def organization(cls) -> MetricScope:
        return cls("organization")

    @classmethod
    def team(cls, team_id: uuid.UUID) -> MetricScope:
        return cls("team", team_id)

    @classmethod
    def repository(cls, repository_id: uuid.UUID) -> MetricScope:
        return cls("repository", repository_id)


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    """A scope checked against the organization: its name and what it covers.

    ``repository_ids`` are the repositories whose commits, pull requests and deployments count
    (for the organization: all of its repositories). ``services`` are the DORA services those
    repositories deploy (``repositories.service``), which is how deployments without a
    repository and incidents (which name a service, not a repository) are placed in a team or
    repository scope; ``None`` for the organization scope, which takes every deployment and
    incident of the organization unfiltered.
    """

    kind: ScopeKind
    id: uuid.UUID
    name: str
    organization_id: uuid.UUID
    repository_ids: tuple[uuid.UUID, ...]
    services: tuple[str, ...] | None

    def to_dict(self) -> dict[str, JSONValue]:
        return {"kind": self.kind, "id": str(self.id), "name": self.name}


def _window_dict(window: Window) -> dict[str, JSONValue]:
    return {"start": window.start.isoformat(), "end": window.end.isoformat()}


@dataclass(frozen=True, slots=True)
class DoraReport:
    """Every DORA metric for one scope and window, keyed by name (see ``DORA_METRIC_NAMES``)."""

    scope: ResolvedScope
    window: Window
    benchmark: int
    metrics: Mapping[str, MetricResult]

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "scope": self.scope.to_dict(),
            "window": _window_dict(self.window),
            "benchmark": self.benchmark,
            "metrics": {name: result.to_dict() for name, result in self.metrics.items()},
        }


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The DORA metrics over one bucket. ``partial`` when the window cuts the bucket (the first
    and last buckets of a window that does not start and end on bucket boundaries); the metrics
    are then computed over the part inside the window."""

    start: datetime
    end: datetime
    partial: bool
    metrics: Mapping[str, MetricResult]

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "partial": self.partial,
            "metrics": {name: result.to_dict() for name, result in self.metrics.items()},
        }


@dataclass(frozen=True, slots=True)
class DoraTrend:
    scope: ResolvedScope
    window: Window
    benchmark: int
    bucket: Bucket
    points: tuple[TrendPoint, ...]

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "scope": self.scope.to_dict(),
            "window": _window_dict(self.window),
            "benchmark": self.benchmark,
            "granularity": self.bucket.value,
            "series": [point.to_dict() for point in self.points],
        }


@dataclass(frozen=True, slots=True)
class FlowReport:
    """The flow metrics for one scope and window, keyed by name (see ``FLOW_METRIC_NAMES``)."""

    scope: ResolvedScope
    window: Window
    metrics: Mapping[str, MetricResult]

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "scope": self.scope.to_dict(),
            "window": _window_dict(self.window),
            "metrics": {name: result.to_dict() for name, result in self.metrics.items()},
        }


# --------------------------------------------------------------------------------------------
# Drill-down rows
# --------------------------------------------------------------------------------------------


def _plain(value: object) -> JSONValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"cannot serialise {type(value).__name__}")


class _Row:
    """``to_dict()`` for the drill-down dataclasses: every field, JSON-typed."""

    __slots__ = ()

    def to_dict(self) -> dict[str, JSONValue]:
        return {item.name: _plain(getattr(self, item.name)) for item in fields(cast(object, self))}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PullRequestItem(_Row):
    """One pull request behind the lead time breakdown (or the flow metrics), with its stages.

    Durations are seconds, ``None`` when the stage has no time (see
    :func:`doraflow.metrics.dora.pull_request_stages`): ``coding`` first commit → opened,
    ``pickup`` opened → first non-author review, ``review`` → merged, ``deploy`` merged → first
    production deployment of the merge/squash commit, ``cycle_time`` first commit (or opening)
    → that deployment. ``changes`` is how many of its commits count as changes (merge commits
    and represented squash commits excluded), ``lead_time_median`` their median lead time.
    """

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
    coding_seconds: float | None
    pickup_seconds: float | None
    review_seconds: float | None
    deploy_seconds: float | None
    cycle_time_seconds: float | None
    changes: int | None = None
    lead_time_median: float | None = None


@dataclass(frozen=True, slots=True)
class DeploymentItem(_Row):
    """One production deployment as the metrics count it (a rollout: one revision of one
    service reaching production, however many regions), with what happened after it.

    ``id``/``external_id``/``source``/``url``/``started_at``/``environment`` are those of the
    source row that reached production first; ``source_deployment_ids`` are all rows of the
    rollout. ``recovery_seconds`` is the failed deployment recovery time of this deployment.
    ``changes`` counts the commits it was the first production deployment of, and
    ``lead_time_median`` is their median lead time.
    """

    id: uuid.UUID
    external_id: str
    source: str
    repository_id: uuid.UUID | None
    repository: str | None
    service: str
    environment: str | None
    environments: tuple[str, ...]
    source_deployment_ids: tuple[uuid.UUID, ...]
    revision: str | None
    started_at: datetime
    deployed_at: datetime
    duration_seconds: int | None
    url: str | None
    is_hotfix: bool
    is_rollback: bool
    failed: bool
    failure_reasons: tuple[str, ...]
    incident_ids: tuple[uuid.UUID, ...]
    recovered_at: datetime | None
    recovery_seconds: float | None
    restored_by_deployment_id: uuid.UUID | None
    rework: bool
    rework_reasons: tuple[str, ...]
    changes: int
    lead_time_median: float | None

    @property
    def incident_count(self) -> int:
        return len(self.incident_ids)


@dataclass(frozen=True, slots=True)
class IncidentItem(_Row):
    """One incident with its time to restore and the attribution the metrics used.

    ``deployment_id`` is the production deployment (its first source row) the incident was
    attributed to; ``attribution`` how (``explicit_deployment``, ``explicit_commit``,
    ``service_window``, ``unattributed``) and ``attribution_explanation`` why, in words.
    """

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


class _Serialisable(Protocol):
    def to_dict(self) -> dict[str, JSONValue]: ...


RowT = TypeVar("RowT", bound=_Serialisable)


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    """One page of a drill-down. ``next_cursor`` is opaque; pass it back with the same filters
    and sort to get the next page (``None``: this was the last). ``total`` is the number of
    items matching the filters, over all pages."""

    items: Sequence[RowT]
    next_cursor: str | None
    total: int
    sort: str
    descending: bool

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "items": [item.to_dict() for item in self.items],
            "next_cursor": self.next_cursor,
            "total": self.total,
            "sort": self.sort,
            "descending": self.descending,
        }


# --------------------------------------------------------------------------------------------
# Keyset cursors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CursorKey:
    """Where a page ended: the sort key of its last row and the row's unique id (the tie-break)."""

    sort: str
    value: float | str | None
    tiebreak: str = field(default="")

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.value, self.tiebreak], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, sort: str) -> CursorKey:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            decoded = json.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise InvalidCursorError("the cursor is not one this endpoint produced") from exc
        if (
            not isinstance(decoded, list)
            or len(decoded) != 3
            or decoded[0] != sort
            or not isinstance(decoded[1], float | int | str | None)
            or isinstance(decoded[1], bool)
            or not isinstance(decoded[2], str)
        ):
            raise InvalidCursorError("the cursor belongs to another query or sort order")
        value = float(decoded[1]) if isinstance(decoded[1], int) else decoded[1]
        return cls(sort, value, decoded[2])
