"""Drill-downs: the pull requests, deployments and incidents behind each number.

Each list is built from the same inputs and the same definitions as the metric it explains, so
the rows add up to the number a user is questioning: the pull requests of the lead-time
breakdown with their stages (:func:`~doraflow.metrics.dora.pull_request_stages`), the
deployments of the window with their failure, recovery and rework as the change failure rate saw
them, and the incidents with the attribution the metrics used.

Pagination is keyset: the cursor holds the sort value and the unique id of the last row of the
page, and the next page starts strictly after it, so rows are neither repeated nor skipped while
paging. The rows of one window are few enough (10^4 pull requests, 10^3 deployments, 10^2
incidents) to be sorted in memory after the definitions ran, which is what lets a list be sorted
by a computed duration.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Generic, Literal, TypeVar, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.metrics.deployments import DeploymentOutcome, DeploymentRules
from doraflow.metrics.dora import PullRequestStages, PullRequestTimes, pull_request_stages
from doraflow.metrics.incidents import DEFAULT_ATTRIBUTION_WINDOW, IncidentAttribution
from doraflow.metrics.loaders import Database, Record, load_delivery, resolve_scope
from doraflow.metrics.records import Window
from doraflow.metrics.report import (
    CursorKey,
    DeploymentItem,
    IncidentItem,
    MetricScope,
    Page,
    PullRequestItem,
    ResolvedScope,
)

__all__ = [
    "DeploymentSort",
    "IncidentSelection",
    "IncidentSort",
    "PullRequestSelection",
    "PullRequestSort",
    "list_deployments",
    "list_incidents",
    "list_pull_requests",
]

PullRequestSelection = Literal["deployed", "merged"]
PullRequestSort = Literal[
    "first_deployed_at",
    "merged_at",
    "opened_at",
    "cycle_time",
    "coding_time",
    "pickup_time",
    "review_time",
    "deploy_time",
    "size",
]
DeploymentSort = Literal["deployed_at", "recovery_time", "incident_count"]
IncidentSelection = Literal["started", "resolved"]
IncidentSort = Literal["created_at", "resolved_at", "time_to_restore"]

MAX_LIMIT: Final = 500

SortValue = float | str | None
ItemT = TypeVar("ItemT")


def _check(value: str, allowed: object, what: str) -> None:
    options = get_args(allowed)
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; one of: {', '.join(options)}")


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _after(value: SortValue, tiebreak: str, cursor: CursorKey, descending: bool) -> bool:
    """Whether a row sorts strictly after the cursor. Rows without a value come last in both
    directions (as ``NULLS LAST``), ordered by their tie-break."""
    if (value is None) != (cursor.value is None):
        return cursor.value is not None  # a missing value is after every present one
    if value is not None and value != cursor.value:
        assert cursor.value is not None
        return (value < cursor.value) if descending else (value > cursor.value)  # type: ignore[operator]
    return (tiebreak < cursor.tiebreak) if descending else (tiebreak > cursor.tiebreak)


@dataclass(frozen=True, slots=True)
class _Slice(Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None
    total: int


def _paginate(
    items: Sequence[ItemT],
    key: Callable[[ItemT], SortValue],
    tiebreak: Callable[[ItemT], str],
    *,
    sort: str,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> _Slice[ItemT]:
    """One page of ``items`` in ``(key, tiebreak)`` order after ``cursor``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    keyed = [(key(item), tiebreak(item), item) for item in items]
    present = sorted(
        (entry for entry in keyed if entry[0] is not None),
        key=lambda entry: (entry[0], entry[1]),
        reverse=descending,
    )
    missing = sorted(
        (entry for entry in keyed if entry[0] is None), key=lambda entry: entry[1], reverse=descending
    )
    ordered = present + missing
    if cursor is not None:
        after = CursorKey.decode(cursor, sort)
        ordered = [entry for entry in ordered if _after(entry[0], entry[1], after, descending)]
    page = ordered[:limit]
    next_cursor = None
    if len(ordered) > limit:
        value, last_tiebreak, _ = page[-1]
        next_cursor = CursorKey(sort, value, last_tiebreak).encode()
    return _Slice([entry[2] for entry in page], next_cursor, len(keyed))


# --------------------------------------------------------------------------------------------
# Pull requests
# --------------------------------------------------------------------------------------------

_PULL_REQUEST_SELECTIONS: Final = {
    # The pull requests of the lead-time breakdown: merged, merge/squash commit first deployed
    # in the window.
    "deployed": "p.first_deployed_at >= $2 AND p.first_deployed_at < $3"
    " AND p.merged_at IS NOT NULL AND p.merge_commit_sha IS NOT NULL",
    # The pull requests of throughput, size and review depth.
    "merged": "p.merged_at >= $2 AND p.merged_at < $3",
}

# What sorting needs, for every pull request of the selection (~10^4 in a 90-day window of a
# large organization); the rest of a row is fetched for the page only.
_PULL_REQUEST_KEYS_SQL: Final = """
SELECT p.repository_id, p.pr_number, p.time,
       coalesce(p.first_commit_at, (
           SELECT min(o.time) FROM commits o
           WHERE o.repository_id = p.repository_id AND o.pull_request_number = p.pr_number
             AND NOT o.is_merge AND o.commit_sha IS DISTINCT FROM p.merge_commit_sha
       )),
       p.first_review_at, p.merged_at, p.first_deployed_at, p.lines_added, p.lines_deleted
FROM pull_requests p
WHERE p.repository_id = ANY($1::uuid[]) AND {selection}
"""

_PULL_REQUEST_DETAILS_SQL: Final = """
SELECT p.repository_id, p.pr_number, r.name, p.title, p.author_id, coalesce(dv.name, dv.email), p.state,
       p.first_deployment_id, p.merge_commit_sha, p.files_changed, p.commits_count, p.reviews_count,
       p.review_comments
FROM unnest($1::timestamptz[], $2::uuid[], $3::int[]) AS x(time, repository_id, pr_number)
JOIN pull_requests p ON p.time = x.time AND p.repository_id = x.repository_id AND p.pr_number = x.pr_number
JOIN repositories r ON r.id = p.repository_id
LEFT JOIN developers dv ON dv.id = p.author_id
"""

# Per pull request of a page: its changes (own commits and, when it has none, its merge/squash
# commit -- merge commits and represented squash commits excluded) and their median lead time.
_PULL_REQUEST_CHANGES_SQL: Final = """
SELECT repository_id, pr_number, count(*) FILTER (WHERE lead >= 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lead) FILTER (WHERE lead >= 0)
FROM (
    SELECT x.repository_id, x.pr_number,
           c.lead_seconds AS lead
    FROM unnest($1::uuid[], $2::int[]) AS x(repository_id, pr_number)
    JOIN commits o ON o.repository_id = x.repository_id AND o.pull_request_number = x.pr_number
    JOIN commit_deployments c
      ON c.repository_id = o.repository_id AND c.time = o.time AND c.commit_sha = o.commit_sha
    WHERE c.first_deployed_at IS NOT NULL AND NOT c.is_merge AND NOT c.represented_by_pull_request
    UNION ALL
    -- a merge/squash commit collected without its PR number (GitHub's default branch)
    SELECT x.repository_id, x.pr_number,
           c.lead_seconds
    FROM unnest($1::uuid[], $2::int[], $3::text[], $4::timestamptz[])
         AS x(repository_id, pr_number, sha, shipped)
    JOIN commit_deployments c ON c.repository_id = x.repository_id AND c.first_deployed_at = x.shipped
     AND c.commit_sha = x.sha
    JOIN commits o ON o.repository_id = c.repository_id AND o.time = c.time AND o.commit_sha = c.commit_sha
     AND o.pull_request_number IS NULL
    WHERE NOT c.is_merge AND NOT c.represented_by_pull_request
) AS changes
GROUP BY repository_id, pr_number
"""


@dataclass(frozen=True, slots=True)
class _PullRequestKey:
    """One pull request of the selection, with its stages: enough to sort and page."""

    row: Record  # repository_id, pr_number, opened, first commit, first review, merged, deployed, +, -
    stages: PullRequestStages | None

    @property
    def deployed(self) -> bool:
        return self.row[6] is not None


def _pull_request_key(row: Record) -> _PullRequestKey:
    opened, first_commit, first_review, merged, shipped = row[2], row[3], row[4], row[5], row[6]
    if merged is None:
        return _PullRequestKey(row, None)
    times = PullRequestTimes(
        opened.timestamp(),
        merged.timestamp(),
        _epoch(first_commit),
        _epoch(first_review),
        shipped.timestamp() if shipped is not None else merged.timestamp(),
    )
    return _PullRequestKey(row, pull_request_stages(times))


def _pull_request_item(key: _PullRequestKey, details: Record) -> PullRequestItem:
    row, stages = key.row, key.stages
    deployed = key.deployed and stages is not None
    return PullRequestItem(
        repository_id=row[0],
        repository=details[2],
        number=row[1],
        title=details[3],
        author_id=details[4],
        author=details[5],
        state=details[6],
        opened_at=row[2],
        first_commit_at=row[3],
        first_review_at=row[4],
        merged_at=row[5],
        first_deployed_at=row[6],
        first_deployment_id=details[7],
        merge_commit_sha=details[8],
        lines_added=row[7],
        lines_deleted=row[8],
        files_changed=details[9],
        commits_count=details[10],
        reviews_count=details[11],
        review_comments=details[12],
        coding_seconds=None if stages is None else stages.coding,
        pickup_seconds=None if stages is None else stages.pickup,
        review_seconds=None if stages is None else stages.review,
        deploy_seconds=stages.deploy if deployed and stages is not None else None,
        cycle_time_seconds=stages.total if deployed and stages is not None else None,
    )


def _stage(name: str) -> Callable[[_PullRequestKey], SortValue]:
    def key(entry: _PullRequestKey) -> SortValue:
        if entry.stages is None or (name in ("deploy", "total") and not entry.deployed):
            return None
        value: float | None = getattr(entry.stages, name)
        return value

    return key


def _size(entry: _PullRequestKey) -> SortValue:
    added, deleted = entry.row[7], entry.row[8]
    return None if added is None and deleted is None else float((added or 0) + (deleted or 0))


_PULL_REQUEST_SORT_KEYS: Final[dict[str, Callable[[_PullRequestKey], SortValue]]] = {
    "first_deployed_at": lambda entry: _epoch(entry.row[6]),
    "merged_at": lambda entry: _epoch(entry.row[5]),
    "opened_at": lambda entry: entry.row[2].timestamp(),
    "cycle_time": _stage("total"),
    "coding_time": _stage("coding"),
    "pickup_time": _stage("pickup"),
    "review_time": _stage("review"),
    "deploy_time": _stage("deploy"),
    "size": _size,
}


async def list_pull_requests(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    window: Window,
    selection: PullRequestSelection = "deployed",
    sort: PullRequestSort = "first_deployed_at",
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[PullRequestItem]:
    """The pull requests behind lead time (``selection="deployed"``: merged, merge/squash commit
    first deployed in the window -- exactly those of ``details.cycle_time_breakdown``) or behind
    the flow metrics (``"merged"``: merged in the window), with their stage durations, sorted by
    ``sort`` (durations in seconds; missing values last) and paginated by ``cursor``.

    Raises ``ValueError`` for an unknown selection or sort, :class:`InvalidCursorError` for a
    cursor of another query, :class:`ScopeNotFoundError` as the reports do.
    """
    _check(selection, PullRequestSelection, "selection")
    _check(sort, PullRequestSort, "sort")
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    rows = await db.fetch(
        _PULL_REQUEST_KEYS_SQL.format(selection=_PULL_REQUEST_SELECTIONS[selection]),
        list(resolved.repository_ids),
        window.start,
        window.end,
    )
    page = _paginate(
        [_pull_request_key(row) for row in rows],
        _PULL_REQUEST_SORT_KEYS[sort],
        lambda entry: f"{entry.row[0]}#{entry.row[1]:010d}",
        sort=sort,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )
    details = {
        (row[0], row[1]): row
        for row in await db.fetch(
            _PULL_REQUEST_DETAILS_SQL,
            [entry.row[2] for entry in page.items],
            [entry.row[0] for entry in page.items],
            [entry.row[1] for entry in page.items],
        )
    }
    items = [_pull_request_item(entry, details[(entry.row[0], entry.row[1])]) for entry in page.items]
    return Page(await _with_changes(db, items), page.next_cursor, page.total, sort, descending)


async def _with_changes(db: Database, page: list[PullRequestItem]) -> list[PullRequestItem]:
    """The page's pull requests with their changes and median lead time filled in."""
    if not page:
        return page
    rows = await db.fetch(
        _PULL_REQUEST_CHANGES_SQL,
        [item.repository_id for item in page],
        [item.number for item in page],
        [item.merge_commit_sha for item in page],
        [item.first_deployed_at for item in page],
    )
    changes = {(row[0], row[1]): (row[2], row[3]) for row in rows}
    items = []
    for item in page:
        count, median = changes.get((item.repository_id, item.number), (0, None))
        items.append(replace(item, changes=count, lead_time_median=median))
    return items


# --------------------------------------------------------------------------------------------
# Deployments
# --------------------------------------------------------------------------------------------

# Per production deployment of a page (a rollout: its source rows map to it through $4/$5): the
# changes it was the first production deployment of, and their median lead time.
_DEPLOYMENT_CHANGES_SQL: Final = """
SELECT rollout_id, count(*) FILTER (WHERE lead >= 0),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lead) FILTER (WHERE lead >= 0)
FROM (
    SELECT m.rollout_id,
           c.lead_seconds AS lead
    FROM commit_deployments c
    JOIN unnest($4::uuid[], $5::uuid[]) AS m(source_id, rollout_id) ON m.source_id = c.first_deployment_id
    WHERE c.repository_id = ANY($1::uuid[]) AND c.first_deployed_at >= $2 AND c.first_deployed_at <= $3
      AND NOT c.is_merge AND NOT c.represented_by_pull_request
    OFFSET 0
) AS changes
GROUP BY rollout_id
"""


@dataclass(frozen=True, slots=True)
class _DeploymentRow:
    outcome: DeploymentOutcome


# What a drill-down shows of the source row that reached production first (the metrics load less).
_DEPLOYMENT_DETAILS_SQL: Final = """
SELECT d.id, d.time, d.repository_id, r.name, d.external_id, d.source, d.url, d.duration_seconds,
       d.revision, d.environment
FROM deployments d
LEFT JOIN repositories r ON r.id = d.repository_id
WHERE d.id = ANY($1::uuid[])
"""


def _deployment_item(
    outcome: DeploymentOutcome, details: Record, changes: tuple[int, float | None]
) -> DeploymentItem:
    deployment = outcome.deployment
    recovery = (
        None
        if outcome.recovered_at is None
        else (outcome.recovered_at - deployment.deployed_at).total_seconds()
    )
    return DeploymentItem(
        id=details[0],
        external_id=details[4],
        source=details[5],
        repository_id=details[2],
        repository=details[3],
        service=deployment.service,
        environment=details[9],
        environments=deployment.environments,
        source_deployment_ids=tuple(uuid.UUID(source) for source in deployment.source_deployment_ids),
        revision=details[8],
        started_at=details[1],
        deployed_at=deployment.deployed_at,
        duration_seconds=details[7],
        url=details[6],
        is_hotfix=deployment.is_hotfix,
        is_rollback=deployment.is_rollback,
        failed=outcome.failed,
        failure_reasons=tuple(reason.value for reason in outcome.failure_reasons),
        incident_ids=tuple(uuid.UUID(incident) for incident in outcome.incident_ids),
        recovered_at=outcome.recovered_at,
        recovery_seconds=recovery if recovery is None or recovery >= 0 else None,
        restored_by_deployment_id=None
        if outcome.restored_by_deployment_id is None
        else uuid.UUID(outcome.restored_by_deployment_id),
        rework=outcome.is_rework,
        rework_reasons=tuple(reason.value for reason in outcome.rework_reasons),
        changes=changes[0],
        lead_time_median=changes[1],
    )


_DEPLOYMENT_SORT_KEYS: Final[dict[str, Callable[[_DeploymentRow], SortValue]]] = {
    "deployed_at": lambda entry: entry.outcome.deployment.deployed_at.timestamp(),
    "recovery_time": lambda entry: (
        None
        if entry.outcome.recovered_at is None
        else (entry.outcome.recovered_at - entry.outcome.deployment.deployed_at).total_seconds()
    ),
    "incident_count": lambda entry: float(len(entry.outcome.incident_ids)),
}


async def list_deployments(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    window: Window,
    failed_only: bool = False,
    sort: DeploymentSort = "deployed_at",
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
) -> Page[DeploymentItem]:
    """The production deployments of the window as deployment frequency, change failure rate,
    recovery time and rework rate count them (one per rollout), with why each failed, when it
    recovered, whether it was rework, and how many changes it first shipped and their median
    lead time. ``failed_only`` lists the change failure rate's numerator."""
    _check(sort, DeploymentSort, "sort")
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    delivery = await load_delivery(db, resolved, window, rules=rules, attribution_window=attribution_window)
    entries = [
        _DeploymentRow(outcome)
        for outcome in delivery.analysis.outcomes.values()
        if window.contains(outcome.deployment.deployed_at) and (outcome.failed or not failed_only)
    ]
    page = _paginate(
        entries,
        _DEPLOYMENT_SORT_KEYS[sort],
        lambda entry: entry.outcome.deployment.deployment_id,
        sort=sort,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )
    changes = await _deployment_changes(db, resolved, page.items, delivery.row_info)
    details = {
        str(row[0]): row
        for row in await db.fetch(
            _DEPLOYMENT_DETAILS_SQL,
            [uuid.UUID(entry.outcome.deployment.deployment_id) for entry in page.items],
        )
    }
    items = [
        _deployment_item(
            entry.outcome,
            details[entry.outcome.deployment.deployment_id],
            changes.get(entry.outcome.deployment.deployment_id, (0, None)),
        )
        for entry in page.items
    ]
    return Page(items, page.next_cursor, page.total, sort, descending)


async def _deployment_changes(
    db: Database, scope: ResolvedScope, entries: Sequence[_DeploymentRow], row_info: Mapping[str, Record]
) -> dict[str, tuple[int, float | None]]:
    """(changes, median lead time) per deployment of the page, keyed by deployment id."""
    if not entries:
        return {}
    sources: list[uuid.UUID] = []
    rollouts: list[uuid.UUID] = []
    finished: list[datetime] = []
    for entry in entries:
        deployment = entry.outcome.deployment
        for source_id in deployment.source_deployment_ids:
            sources.append(uuid.UUID(source_id))
            rollouts.append(uuid.UUID(deployment.deployment_id))
            finished.append(row_info[source_id][4])
    rows = await db.fetch(
        _DEPLOYMENT_CHANGES_SQL, list(scope.repository_ids), min(finished), max(finished), sources, rollouts
    )
    return {str(row[0]): (row[1], row[2]) for row in rows}


# --------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _IncidentRow:
    attribution: IncidentAttribution
    row: Record


def _incident_item(entry: _IncidentRow) -> IncidentItem:
    incident, row = entry.attribution.incident, entry.row
    restore = None
    if incident.resolved_at is not None:
        seconds = (incident.resolved_at - incident.created_at).total_seconds()
        restore = seconds if seconds >= 0 else None
    deployment_id = entry.attribution.deployment_id
    return IncidentItem(
        id=row[0],
        external_id=row[7],
        source=row[8],
        title=row[9],
        severity=incident.severity,
        service=incident.service,
        created_at=incident.created_at,
        resolved_at=incident.resolved_at,
        time_to_restore_seconds=restore,
        deployment_id=None if deployment_id is None else uuid.UUID(deployment_id),
        attribution=entry.attribution.method.value,
        attribution_explanation=entry.attribution.explanation,
        url=row[10],
    )


_INCIDENT_SORT_KEYS: Final[dict[str, Callable[[IncidentItem], SortValue]]] = {
    "created_at": lambda item: item.created_at.timestamp(),
    "resolved_at": lambda item: _epoch(item.resolved_at),
    "time_to_restore": lambda item: item.time_to_restore_seconds,
}


async def list_incidents(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    window: Window,
    selection: IncidentSelection = "started",
    sort: IncidentSort = "created_at",
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
) -> Page[IncidentItem]:
    """The incidents that started in the window (``selection="started"``: those of the change
    failure rate's attribution counts) or were resolved in it (``"resolved"``: the sample of
    time to restore service), each with its time to restore and the deployment it was
    attributed to -- how, and why, in words."""
    _check(selection, IncidentSelection, "selection")
    _check(sort, IncidentSort, "sort")
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    delivery = await load_delivery(db, resolved, window, rules=rules, attribution_window=attribution_window)
    entries = []
    for attribution in delivery.analysis.attributions:
        incident = attribution.incident
        moment = incident.impact_started_at if selection == "started" else incident.resolved_at
        if moment is not None and window.contains(moment):
            entries.append(_IncidentRow(attribution, delivery.incident_info[incident.incident_id]))
    items = [_incident_item(entry) for entry in entries]
    page = _paginate(
        items,
        _INCIDENT_SORT_KEYS[sort],
        lambda item: str(item.id),
        sort=sort,
        descending=descending,
        limit=limit,
        cursor=cursor,
    )
    return Page(page.items, page.next_cursor, page.total, sort, descending)
