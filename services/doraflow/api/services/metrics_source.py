"""A stand-in `MetricsSource` until `doraflow.metrics` ships its query layer.

It loads the stored rows of a scope straight into the metric package's records and calls its
definitions (`production_deployments`, `dora_metrics`, the flow functions); nothing here decides
what a metric means. It is deliberately simple — it reads every row of the scope around the
windows, which is fine for the embedded mode and tests but not for the issue's 1M-commit target,
which needs the query layer's indexed, enrichment-based queries.

TODO(metrics): replace with `doraflow.metrics`' query layer (see `MetricsSource`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.services.analytics import MetricsScope
from doraflow.core import models as m
from doraflow.metrics import (
    Change,
    Deployment,
    Incident,
    IssueTransition,
    MetricResult,
    PullRequest,
    StatusCategory,
    Window,
    WorkItem,
    code_churn,
    dora_metrics,
    production_deployments,
    pull_request_size,
    pull_request_throughput,
    review_depth,
    time_to_first_review,
    work_item_cycle_time,
    work_item_lead_time,
)

# How far around the asked windows rows are read: a change's first deployment may precede the
# window, and whether a deployment failed depends on incidents and deployments after it.
LOOKBACK = timedelta(days=120)
LOOKAHEAD = timedelta(days=14)


Ts = TypeVarTuple("Ts")


def _scoped(statement: Select[*Ts], column: Any, scope: MetricsScope) -> Select[*Ts]:
    if scope.repository_ids is None:
        return statement
    return statement.where(column.in_(scope.repository_ids))


class DatabaseMetricsSource:
    async def dora(
        self, session: AsyncSession, scope: MetricsScope, windows: Sequence[Window], *, benchmark: int
    ) -> list[Mapping[str, MetricResult]]:
        if not windows:
            return []
        start = min(w.start for w in windows) - LOOKBACK
        end = max(w.end for w in windows) + LOOKAHEAD
        deployments, by_external = await self._deployments(session, scope, start, end)
        changes = await self._changes(session, scope, start, end)
        pull_requests = await self._pull_requests(session, scope, start, end)
        services = {d.service for d in deployments}
        incidents = await self._incidents(session, scope, services, by_external, start, end)
        production = production_deployments(deployments)
        return [
            dora_metrics(
                production, changes, incidents, window, pull_requests=pull_requests, benchmark=benchmark
            )
            for window in windows
        ]

    async def flow(
        self, session: AsyncSession, scope: MetricsScope, window: Window
    ) -> Mapping[str, MetricResult]:
        start, end = window.start - LOOKBACK, window.end
        pull_requests = await self._pull_requests(session, scope, start, end)
        changes = await self._changes(session, scope, window.start, window.end)
        results = [
            pull_request_throughput(pull_requests, window),
            pull_request_size(pull_requests, window),
            time_to_first_review(pull_requests, window),
            review_depth(pull_requests, window),
            code_churn(changes, window),
        ]
        if scope.repository_ids is None:  # work items belong to projects, not repositories
            items, transitions = await self._work_items(session, scope, start, end)
            results += [
                work_item_cycle_time(transitions, window),
                work_item_lead_time(items, transitions, window),
            ]
        return {result.name: result for result in results}

    # -- loaders ---------------------------------------------------------------------------------

    async def _deployments(
        self, session: AsyncSession, scope: MetricsScope, start: Any, end: Any
    ) -> tuple[list[Deployment], dict[str, str]]:
        statement = _scoped(
            select(m.Deployment).where(
                m.Deployment.organization_id == scope.organization_id,
                m.Deployment.time >= start,
                m.Deployment.time < end,
            ),
            m.Deployment.repository_id,
            scope,
        )
        rows = list(await session.scalars(statement))
        shas: dict[uuid.UUID, list[str]] = defaultdict(list)
        ids = [row.id for row in rows]
        for chunk in range(0, len(ids), 5000):
            links = await session.execute(
                select(m.DeploymentCommit.deployment_id, m.DeploymentCommit.commit_sha).where(
                    m.DeploymentCommit.deployment_id.in_(ids[chunk : chunk + 5000])
                )
            )
            for deployment_id, sha in links:
                shas[deployment_id].append(sha)
        records = [
            Deployment(
                deployment_id=str(row.id),
                service=row.service,
                environment=row.environment or "production",
                revision=row.revision or row.external_id,
                finished_at=row.finished_at or row.time,
                succeeded=row.status == "success",
                is_production=row.is_production,
                commit_shas=tuple(shas.get(row.id, ())),
                started_at=row.time,
                is_hotfix=row.is_hotfix,
                is_rollback=row.is_rollback,
            )
            for row in rows
        ]
        return records, {row.external_id: str(row.id) for row in rows}

    async def _changes(
        self, session: AsyncSession, scope: MetricsScope, start: Any, end: Any
    ) -> list[Change]:
        statement = _scoped(
            select(
                m.Commit.commit_sha,
                m.Commit.time,
                m.Commit.repository_id,
                m.Commit.pull_request_number,
                m.Commit.is_merge,
                m.Commit.lines_added,
                m.Commit.lines_deleted,
                m.Commit.files_changed,
            ).where(
                m.Commit.organization_id == scope.organization_id, m.Commit.time >= start, m.Commit.time < end
            ),
            m.Commit.repository_id,
            scope,
        )
        return [
            Change(
                sha=sha,
                authored_at=time,
                repository=str(repository_id),
                pull_request_id=f"{repository_id}:{number}" if number is not None else None,
                is_merge_commit=bool(is_merge),
                additions=added or 0,
                deletions=deleted or 0,
                files_changed=files or 0,
            )
            for sha, time, repository_id, number, is_merge, added, deleted, files in await session.execute(
                statement
            )
        ]

    async def _pull_requests(
        self, session: AsyncSession, scope: MetricsScope, start: Any, end: Any
    ) -> list[PullRequest]:
        statement = _scoped(
            select(m.PullRequest).where(
                m.PullRequest.organization_id == scope.organization_id,
                or_(m.PullRequest.merged_at.is_(None), m.PullRequest.merged_at >= start),
                m.PullRequest.time < end,
            ),
            m.PullRequest.repository_id,
            scope,
        )
        return [
            PullRequest(
                pull_request_id=f"{row.repository_id}:{row.pr_number}",
                opened_at=row.time,
                repository=str(row.repository_id),
                author=str(row.author_id),
                first_commit_at=row.first_commit_at,
                first_review_at=row.first_review_at,
                merged_at=row.merged_at,
                merge_commit_sha=row.merge_commit_sha,
                additions=row.lines_added or 0,
                deletions=row.lines_deleted or 0,
                files_changed=row.files_changed or 0,
                review_count=row.reviews_count or 0,
                comment_count=row.review_comments or 0,
            )
            for row in await session.scalars(statement)
        ]

    async def _incidents(
        self,
        session: AsyncSession,
        scope: MetricsScope,
        services: set[str],
        by_external: dict[str, str],
        start: Any,
        end: Any,
    ) -> list[Incident]:
        statement = select(m.Incident).where(
            m.Incident.organization_id == scope.organization_id,
            m.Incident.created_at >= start,
            m.Incident.created_at < end,
        )
        if scope.repository_ids is not None:
            # A narrower scope sees the incidents of the services it deploys, or that name one of
            # its deployments.
            statement = statement.where(
                or_(
                    m.Incident.service.in_(services or {""}),
                    m.Incident.deployment_ref.in_(list(by_external) or [""]),
                )
            )
        return [
            Incident(
                incident_id=str(row.id),
                created_at=row.created_at,
                service=row.service,
                resolved_at=row.resolved_at,
                deployment_id=by_external.get(row.deployment_ref) if row.deployment_ref else None,
                commit_sha=row.commit_sha_ref,
                severity=row.severity,
            )
            for row in await session.scalars(statement)
        ]

    async def _work_items(
        self, session: AsyncSession, scope: MetricsScope, start: Any, end: Any
    ) -> tuple[list[WorkItem], list[IssueTransition]]:
        items = [
            WorkItem(item_id=str(item_id), created_at=created_at, kind=kind)
            for item_id, created_at, kind in await session.execute(
                select(m.WorkItem.id, m.WorkItem.created_at, m.WorkItem.issue_type).where(
                    m.WorkItem.organization_id == scope.organization_id,
                    or_(m.WorkItem.resolved_at.is_(None), m.WorkItem.resolved_at >= start),
                    m.WorkItem.created_at < end,
                )
            )
        ]
        transitions = [
            IssueTransition(
                item_id=str(issue_id),
                at=at,
                to_category=StatusCategory(to_category or "todo"),
                to_status=to_status,
                from_category=StatusCategory(from_category) if from_category else None,
            )
            for issue_id, at, to_category, to_status, from_category in await session.execute(
                select(
                    m.IssueTransition.issue_id,
                    m.IssueTransition.transitioned_at,
                    m.IssueTransition.to_category,
                    m.IssueTransition.to_status,
                    m.IssueTransition.from_category,
                ).where(
                    m.IssueTransition.organization_id == scope.organization_id,
                    m.IssueTransition.to_category.is_not(None),
                    m.IssueTransition.transitioned_at < end,
                )
            )
        ]
        return items, transitions
