"""Flow metrics of a scope and window, from PostgreSQL into the pure definitions of
:mod:`doraflow.metrics.flow`.

Inputs and how they are placed in a scope:

* pull requests (merged or first reviewed in the window) and commits: by repository;
* work items, their transitions and sprints: by assignee -- a team's work items are those
  assigned to its members, a team's sprints those holding at least one of them (counted over
  the team's items only). Work items are not linked to repositories, so the repository scope
  reports them as unavailable, with that reason.

Code churn sums ~10^5 commits per 90 days: the sums are taken in SQL and the result is built by
:func:`~doraflow.metrics.flow.code_churn_from_totals`; everything else is small enough to load as
records.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.metrics.flow import (
    code_churn_from_totals,
    pull_request_size,
    pull_request_throughput,
    review_depth,
    sprint_carry_over,
    sprint_throughput,
    time_to_first_review,
    work_item_cycle_time,
    work_item_lead_time,
)
from doraflow.metrics.loaders import Database, load_pull_requests, resolve_scope
from doraflow.metrics.records import (
    IssueTransition,
    Sprint,
    SprintMembership,
    StatusCategory,
    Window,
    WorkItem,
)
from doraflow.metrics.report import FlowReport, MetricScope, ResolvedScope
from doraflow.metrics.results import MetricResult

__all__ = ["flow_metrics", "flow_report"]

_WORK_ITEM_METRICS = (
    ("work_item_cycle_time", "seconds"),
    ("work_item_lead_time", "seconds"),
    ("sprint_throughput", "work_items_per_sprint"),
    ("sprint_carry_over", "ratio"),
)
_CATEGORIES = frozenset(category.value for category in StatusCategory)


async def flow_report(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    window: Window,
) -> FlowReport:
    """PR throughput, size, review depth, time to first review, code churn, work-item cycle and
    lead time, sprint throughput and carry-over for one scope and window."""
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    return FlowReport(resolved, window, await flow_metrics(db, resolved, window))


async def flow_metrics(db: Database, resolved: ResolvedScope, window: Window) -> dict[str, MetricResult]:
    """The flow metrics of a resolved scope, keyed by name."""
    metrics: dict[str, MetricResult] = {}
    pull_requests = await load_pull_requests(
        db,
        resolved,
        "(p.merged_at >= $2 AND p.merged_at < $3) OR (p.first_review_at >= $2 AND p.first_review_at < $3)",
        window.start,
        window.end,
    )
    for result in (
        pull_request_throughput(pull_requests, window),
        pull_request_size(pull_requests, window),
        review_depth(pull_requests, window),
        time_to_first_review(pull_requests, window),
    ):
        metrics[result.name] = result

    totals = await db.fetchrow(
        "SELECT count(*), coalesce(sum(c.lines_added), 0), coalesce(sum(c.lines_deleted), 0),"
        " coalesce(sum(c.files_changed), 0) FROM commits c"
        " WHERE c.repository_id = ANY($1::uuid[]) AND c.time >= $2 AND c.time < $3 AND NOT c.is_merge",
        list(resolved.repository_ids),
        window.start,
        window.end,
    )
    assert totals is not None
    metrics["code_churn"] = code_churn_from_totals(
        commits=totals[0],
        lines_added=int(totals[1]),
        lines_deleted=int(totals[2]),
        files_changed=int(totals[3]),
        window=window,
    )
    metrics.update(await _work_item_metrics(db, resolved, window))
    return metrics


async def _assignees(db: Database, scope: ResolvedScope) -> list[uuid.UUID] | None:
    """The team's members (``None``: no assignee filter, the organization scope)."""
    if scope.kind != "team":
        return None
    rows = await db.fetch("SELECT tm.developer_id FROM team_members tm WHERE tm.team_id = $1", scope.id)
    return [row[0] for row in rows]


def _transition(row: tuple[uuid.UUID, datetime, str, str, str | None]) -> IssueTransition:
    issue_id, at, to_category, to_status, from_category = row
    return IssueTransition(
        item_id=str(issue_id),
        at=at,
        to_category=StatusCategory(to_category),
        to_status=to_status,
        from_category=StatusCategory(from_category) if from_category in _CATEGORIES else None,
    )


async def _work_item_metrics(db: Database, scope: ResolvedScope, window: Window) -> dict[str, MetricResult]:
    if scope.kind == "repository":
        reason = "work items are not linked to repositories; use the team or organization scope"
        return {name: MetricResult.unavailable(name, unit, reason) for name, unit in _WORK_ITEM_METRICS}
    assignees = await _assignees(db, scope)
    assignee_sql = "" if assignees is None else " AND i.assignee_id = ANY($4::uuid[])"
    assignee_args: list[object] = [] if assignees is None else [assignees]

    # Work items completed in the window have a transition into "done" in it; their full history
    # up to the window's end decides when (and whether) they completed. Transitions to a status
    # the Integration did not map to a category carry no category and are left out.
    rows = await db.fetch(
        "SELECT t.issue_id, t.transitioned_at, t.to_category, t.to_status, t.from_category, i.created_at"  # noqa: S608 - constants and placeholders only
        " FROM issue_transitions t JOIN issues i ON i.id = t.issue_id"
        " WHERE t.issue_id IN (SELECT t2.issue_id FROM issue_transitions t2"
        "   WHERE t2.organization_id = $1 AND t2.to_category = 'done'"
        "   AND t2.transitioned_at >= $2 AND t2.transitioned_at < $3)"
        f" AND t.to_category IS NOT NULL AND t.transitioned_at < $3{assignee_sql}",
        scope.organization_id,
        window.start,
        window.end,
        *assignee_args,
    )
    transitions = [_transition((row[0], row[1], row[2], row[3], row[4])) for row in rows]
    items = {str(row[0]): WorkItem(item_id=str(row[0]), created_at=row[5]) for row in rows}
    results = {
        "work_item_cycle_time": work_item_cycle_time(transitions, window),
        "work_item_lead_time": work_item_lead_time(items.values(), transitions, window),
    }

    sprint_rows = await db.fetch(
        "SELECT s.id, s.start_at, s.end_at, s.name FROM sprints s"
        " WHERE s.organization_id = $1 AND s.end_at >= $2 AND s.end_at < $3"
        " AND s.start_at IS NOT NULL AND s.start_at < s.end_at ORDER BY s.end_at, s.id",
        scope.organization_id,
        window.start,
        window.end,
    )
    sprints = {row[0]: Sprint(str(row[0]), row[1], row[2], row[3]) for row in sprint_rows}
    membership_rows = await db.fetch(
        "SELECT si.sprint_id, si.issue_id, si.story_points FROM sprint_issues si"  # noqa: S608 - constants and placeholders only
        " JOIN issues i ON i.id = si.issue_id"
        f" WHERE si.sprint_id = ANY($1::uuid[]){assignee_sql.replace('$4', '$2')}",
        list(sprints),
        *assignee_args,
    )
    memberships = [
        SprintMembership(
            sprint_id=str(row[0]), item_id=str(row[1]), story_points=None if row[2] is None else float(row[2])
        )
        for row in membership_rows
    ]
    if assignees is not None:  # a team's sprints are those holding its work items
        held = {membership.sprint_id for membership in memberships}
        sprints = {key: sprint for key, sprint in sprints.items() if str(key) in held}
    latest_end = max((sprint.ended_at for sprint in sprints.values()), default=window.end)
    sprint_transition_rows = await db.fetch(
        "SELECT t.issue_id, t.transitioned_at, t.to_category, t.to_status, t.from_category"
        " FROM issue_transitions t WHERE t.issue_id = ANY($1::uuid[])"
        " AND t.to_category IS NOT NULL AND t.transitioned_at <= $2",
        list({row[1] for row in membership_rows}),
        latest_end,
    )
    sprint_transitions = [_transition(tuple(row)) for row in sprint_transition_rows]
    results["sprint_throughput"] = sprint_throughput(
        sprints.values(), memberships, sprint_transitions, window
    )
    results["sprint_carry_over"] = sprint_carry_over(
        sprints.values(), memberships, sprint_transitions, window
    )
    return results
