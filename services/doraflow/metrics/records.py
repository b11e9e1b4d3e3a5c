"""Input records for the metric definitions.

These are the compact rows the query layer loads from PostgreSQL and hands to the pure functions
of this package. Each is a small frozen dataclass with slots, so 150k of them stay cheap and so
that nothing downstream can mutate the facts a metric was computed from.

Every datetime must be timezone-aware. Naive datetimes are rejected with a ``ValueError``
rather than guessed at, because a guessed time zone silently shifts lead times and day buckets
by hours. Aware datetimes in any offset are accepted and normalised to UTC on construction, so
``10:00+02:00`` and ``08:00Z`` are the same instant and compare, bucket and subtract identically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = [
    "Change",
    "Deployment",
    "Incident",
    "IssueTransition",
    "PullRequest",
    "Sprint",
    "SprintMembership",
    "StatusCategory",
    "Window",
    "WorkItem",
    "require_utc",
]


def require_utc(record: str, field_name: str, value: datetime) -> datetime:
    """Return ``value`` converted to UTC, or raise ``ValueError`` if it is naive.

    Why reject instead of assuming UTC: the collectors receive times from many providers and a
    naive value means one of them lost its offset; assuming UTC would hide that bug inside every
    duration computed from it.
    """
    if value.__class__ is datetime and value.tzinfo is UTC:
        return value  # already normalised (what the database driver returns): the hot path
    if not isinstance(value, datetime):
        raise TypeError(f"{record}.{field_name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{record}.{field_name} is a naive datetime ({value.isoformat()}); "
            "metrics need timezone-aware datetimes (UTC or with an explicit offset)"
        )
    return value.astimezone(UTC)


def _optional_utc(record: str, field_name: str, value: datetime | None) -> datetime | None:
    return None if value is None else require_utc(record, field_name, value)


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses forbid normal assignment; normalisation in __post_init__ is the one
    # sanctioned place to write a field.
    object.__setattr__(obj, name, value)


def _normalise(obj: object, record: str, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    for name in required:
        _set(obj, name, require_utc(record, name, getattr(obj, name)))
    for name in optional:
        _set(obj, name, _optional_utc(record, name, getattr(obj, name)))


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time window ``[start, end)``.

    Half-open so that consecutive windows (weeks, months, 90-day pages) never count an event
    twice or lose one that happens exactly on a boundary.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _normalise(self, "Window", ("start", "end"))
        if self.end <= self.start:
            raise ValueError(
                f"Window end {self.end.isoformat()} must be after start {self.start.isoformat()}"
            )

    def contains(self, moment: datetime) -> bool:
        """True when ``moment`` lies in ``[start, end)``."""
        return self.start <= moment < self.end

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def days(self) -> float:
        """Length of the window in (possibly fractional) days, the denominator of per-day rates."""
        return self.duration.total_seconds() / 86400.0


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deployment run as the CI/CD source reported it (one row per environment and run).

    ``is_production`` is the Integration's verdict on the environment; ``succeeded`` is whether
    the run reached that environment successfully. ``commit_shas`` are the commits the event says
    it shipped (either the new commits since the previous deployment or the full history: the
    definitions only ever take the *earliest* deployment of a commit, so both work). The
    ``revision`` is always counted as shipped too. ``is_hotfix`` and ``is_rollback`` are set by
    the Integration's rules (branch names, labels, pipeline names); rollbacks are additionally
    detected from revision history in :mod:`doraflow.metrics.deployments`.
    """

    deployment_id: str
    service: str
    environment: str
    revision: str
    finished_at: datetime
    succeeded: bool
    is_production: bool
    commit_shas: tuple[str, ...] = ()
    started_at: datetime | None = None
    is_hotfix: bool = False
    is_rollback: bool = False

    def __post_init__(self) -> None:
        _normalise(self, "Deployment", ("finished_at",), ("started_at",))
        _set(self, "commit_shas", tuple(self.commit_shas))


@dataclass(frozen=True, slots=True)
class Change:
    """A commit, the unit of change of lead time for changes.

    ``is_merge_commit`` marks commits with more than one parent: they carry no change of their own
    and are used only to link a pull request to the deployment that shipped it. Line and file
    counts feed code churn.
    """

    sha: str
    authored_at: datetime
    repository: str = ""
    pull_request_id: str | None = None
    is_merge_commit: bool = False
    additions: int = 0
    deletions: int = 0
    files_changed: int = 0

    def __post_init__(self) -> None:
        _normalise(self, "Change", ("authored_at",))


@dataclass(frozen=True, slots=True)
class PullRequest:
    """A pull (merge) request with the timestamps of its cycle-time stages.

    ``first_review_at`` is the first review by someone other than the author (the query layer
    filters author self-reviews and bots). ``merge_commit_sha`` is the merge or squash commit
    that lands on the target branch; it is how a pull request is linked to the production
    deployment that shipped it, which is what makes squash merges traceable at all.
    """

    pull_request_id: str
    opened_at: datetime
    repository: str = ""
    author: str = ""
    first_commit_at: datetime | None = None
    first_review_at: datetime | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    additions: int = 0
    deletions: int = 0
    files_changed: int = 0
    review_count: int = 0
    comment_count: int = 0

    def __post_init__(self) -> None:
        _normalise(self, "PullRequest", ("opened_at",), ("first_commit_at", "first_review_at", "merged_at"))


@dataclass(frozen=True, slots=True)
class Incident:
    """A production incident.

    ``started_at`` is when impact began (defaults to ``created_at`` when the source does not
    know). ``deployment_id`` and ``commit_sha`` are explicit links given by the source (fields or
    labels) and win over any inference; ``service`` restricts inference to that service's
    deployments. ``resolved_by_deployment_id`` names the deployment that fixed it, which makes
    that deployment rework.
    """

    incident_id: str
    created_at: datetime
    service: str | None = None
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    deployment_id: str | None = None
    commit_sha: str | None = None
    severity: str | None = None
    resolved_by_deployment_id: str | None = None

    def __post_init__(self) -> None:
        _normalise(self, "Incident", ("created_at",), ("started_at", "resolved_at"))

    @property
    def impact_started_at(self) -> datetime:
        """When the incident started, for attribution: impact start if known, else creation."""
        return self.started_at if self.started_at is not None else self.created_at


class StatusCategory(StrEnum):
    """The provider-independent category of a work-item status (Jira's status categories)."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class WorkItem:
    """An issue / ticket; ``created_at`` starts its lead time."""

    item_id: str
    created_at: datetime
    kind: str | None = None

    def __post_init__(self) -> None:
        _normalise(self, "WorkItem", ("created_at",))


@dataclass(frozen=True, slots=True)
class IssueTransition:
    """One status change of a work item; ``to_category`` is what the flow metrics read."""

    item_id: str
    at: datetime
    to_category: StatusCategory
    to_status: str = ""
    from_category: StatusCategory | None = None

    def __post_init__(self) -> None:
        _normalise(self, "IssueTransition", ("at",))
        _set(self, "to_category", StatusCategory(self.to_category))
        if self.from_category is not None:
            _set(self, "from_category", StatusCategory(self.from_category))


@dataclass(frozen=True, slots=True)
class Sprint:
    """A time-boxed iteration ``[started_at, ended_at]``."""

    sprint_id: str
    started_at: datetime
    ended_at: datetime
    name: str = ""

    def __post_init__(self) -> None:
        _normalise(self, "Sprint", ("started_at", "ended_at"))
        if self.ended_at <= self.started_at:
            raise ValueError(f"Sprint {self.sprint_id} ends before it starts")


@dataclass(frozen=True, slots=True)
class SprintMembership:
    """A work item's membership of a sprint.

    ``added_at`` None means it was in the sprint from the start; ``removed_at`` None means it was
    never taken out. Story points are optional; throughput is counted in items and, when points
    are present, in points too.
    """

    sprint_id: str
    item_id: str
    added_at: datetime | None = None
    removed_at: datetime | None = None
    story_points: float | None = None

    def __post_init__(self) -> None:
        _normalise(self, "SprintMembership", (), ("added_at", "removed_at"))
