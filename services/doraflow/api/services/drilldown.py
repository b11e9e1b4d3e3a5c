"""The rows behind the numbers: pull requests, deployments and incidents of a scope and window.

These are plain listings of stored facts (timestamps, statuses, links) so a user can see *why*
lead time or the failure rate is what it is; they compute no metric.
"""

from __future__ import annotations

from typing import Any, TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.pagination import paginate, parse_sort
from doraflow.api.schemas.analytics import DeploymentRow, IncidentRow, PullRequestRow
from doraflow.api.services.analytics import MetricsScope
from doraflow.core import models as m
from doraflow.metrics import Window

Ts = TypeVarTuple("Ts")


def _in_scope(statement: Select[*Ts], column: Any, scope: MetricsScope) -> Select[*Ts]:
    return statement if scope.repository_ids is None else statement.where(column.in_(scope.repository_ids))


async def pull_requests(
    session: AsyncSession,
    scope: MetricsScope,
    window: Window,
    *,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[PullRequestRow], str | None]:
    """Pull requests merged in the window (what lead time and its breakdown are made of)."""
    pr = m.PullRequest
    statement = _in_scope(
        select(
            pr.repository_id,
            m.Repository.name.label("repository"),
            pr.pr_number,
            pr.title,
            func.coalesce(m.Developer.name, m.Developer.email).label("author"),
            pr.state,
            pr.time,
            pr.first_commit_at,
            pr.first_review_at,
            pr.merged_at,
            pr.first_deployed_at,
            pr.lines_added,
            pr.lines_deleted,
            pr.reviews_count,
            pr.review_comments,
        )
        .join(m.Repository, m.Repository.id == pr.repository_id)
        .outerjoin(m.Developer, m.Developer.id == pr.author_id)
        .where(
            pr.organization_id == scope.organization_id,
            pr.merged_at >= window.start,
            pr.merged_at < window.end,
        ),
        pr.repository_id,
        scope,
    )
    order = parse_sort(
        sort, {"merged_at": pr.merged_at, "opened_at": pr.time}, pr.repository_id, pr.pr_number
    )
    rows, next_cursor = await paginate(session, statement, order, cursor=cursor, limit=limit, entities=False)
    return [
        PullRequestRow(
            repository_id=row.repository_id,
            repository=row.repository,
            number=row.pr_number,
            title=row.title,
            author=row.author,
            state=row.state,
            opened_at=row.time,
            first_commit_at=row.first_commit_at,
            first_review_at=row.first_review_at,
            merged_at=row.merged_at,
            first_deployed_at=row.first_deployed_at,
            lines_added=row.lines_added,
            lines_deleted=row.lines_deleted,
            reviews_count=row.reviews_count,
            review_comments=row.review_comments,
        )
        for row in rows
    ], next_cursor


async def deployments(
    session: AsyncSession,
    scope: MetricsScope,
    window: Window,
    *,
    production_only: bool,
    status: str | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeploymentRow], str | None]:
    """Deployments started in the window, with the number of incidents attributed to each."""
    d = m.Deployment
    incidents = (
        select(func.count())
        .where(m.Incident.deployment_id == d.id, m.Incident.organization_id == d.organization_id)
        .correlate(d)
        .scalar_subquery()
    )
    statement: Select[*tuple[Any, ...]] = (
        select(
            d.id,
            d.external_id,
            d.source,
            m.Repository.name.label("repository"),
            d.service,
            d.environment,
            d.is_production,
            d.status,
            d.time,
            d.finished_at,
            d.duration_seconds,
            d.revision,
            d.is_hotfix,
            d.is_rollback,
            incidents.label("incident_count"),
            d.url,
        )
        .outerjoin(m.Repository, m.Repository.id == d.repository_id)
        .where(d.organization_id == scope.organization_id, d.time >= window.start, d.time < window.end)
    )
    statement = _in_scope(statement, d.repository_id, scope)
    if production_only:
        statement = statement.where(d.is_production.is_(True))
    if status:
        statement = statement.where(d.status == status)
    order = parse_sort(sort, {"started_at": d.time}, d.id)
    rows, next_cursor = await paginate(session, statement, order, cursor=cursor, limit=limit, entities=False)
    return [
        DeploymentRow(
            id=row.id,
            external_id=row.external_id,
            source=row.source,
            repository=row.repository,
            service=row.service,
            environment=row.environment,
            is_production=row.is_production,
            status=row.status,
            started_at=row.time,
            finished_at=row.finished_at,
            duration_seconds=row.duration_seconds,
            revision=row.revision,
            is_hotfix=row.is_hotfix,
            is_rollback=row.is_rollback,
            incident_count=row.incident_count,
            url=row.url,
        )
        for row in rows
    ], next_cursor


async def incidents(
    session: AsyncSession,
    scope: MetricsScope,
    window: Window,
    *,
    open_only: bool,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[IncidentRow], str | None]:
    """Incidents opened in the window. A narrower scope sees incidents of the services its
    repositories deploy, or attributed to one of its deployments."""
    i = m.Incident
    statement = select(i).where(
        i.organization_id == scope.organization_id, i.created_at >= window.start, i.created_at < window.end
    )
    if scope.repository_ids is not None:
        scoped = select(m.Deployment.service).where(
            m.Deployment.organization_id == scope.organization_id,
            m.Deployment.repository_id.in_(scope.repository_ids),
        )
        deployment_ids = select(m.Deployment.id).where(
            m.Deployment.organization_id == scope.organization_id,
            m.Deployment.repository_id.in_(scope.repository_ids),
        )
        statement = statement.where(i.service.in_(scoped) | i.deployment_id.in_(deployment_ids))
    if open_only:
        statement = statement.where(i.resolved_at.is_(None))
    order = parse_sort(sort, {"created_at": i.created_at}, i.id)
    rows, next_cursor = await paginate(session, statement, order, cursor=cursor, limit=limit)
    return [IncidentRow.model_validate(row, from_attributes=True) for row in rows], next_cursor
