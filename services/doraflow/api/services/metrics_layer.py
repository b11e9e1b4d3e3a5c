"""The API's `MetricsSource`: the metrics package's query layer, asked about the scope itself.

Every answer — a DORA report, a trend, flow metrics, and the rows of a drill-down — is computed by
`doraflow.metrics` for the same `MetricScope` (organization, team or repository) with the same
deployment rules and incident attribution window, so a drill-down lists exactly the rows that the
number it explains was computed from, and a team's work-item and sprint metrics are its members'
(work items belong to people, not repositories: the team scope is what carries that).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import TypedDict, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.problems import field_problem, not_found
from doraflow.api.services.analytics import MetricsScope
from doraflow.metrics import (
    DEFAULT_ATTRIBUTION_WINDOW,
    DeploymentItem,
    DeploymentRules,
    IncidentItem,
    InvalidCursorError,
    MetricResult,
    MetricScope,
    Page,
    PullRequestItem,
    ScopeNotFoundError,
    Window,
    dora_windows,
    flow_report,
    list_deployments,
    list_incidents,
    list_pull_requests,
)
from doraflow.metrics.drilldowns import DeploymentSort, IncidentSelection, IncidentSort, PullRequestSelection
from doraflow.metrics.drilldowns import PullRequestSort as MetricsPullRequestSort

ResultT = TypeVar("ResultT")


async def _scoped(scope: MetricsScope, answer: Awaitable[ResultT]) -> ResultT:
    """The metrics layer's own refusals as API problems: a team or repository deleted since the
    API resolved it is a 404 like any unknown one; a cursor of another query names the field."""
    try:
        return await answer
    except ScopeNotFoundError:
        raise not_found(scope.kind, scope.id or scope.organization_id) from None
    except InvalidCursorError as exc:
        raise field_problem("cursor", str(exc)) from None


class _Where(TypedDict):
    """What every query layer call is about."""

    organization_id: uuid.UUID
    scope: MetricScope
    window: Window


def _where(scope: MetricsScope, window: Window) -> _Where:
    return {"organization_id": scope.organization_id, "scope": scope.metric_scope, "window": window}


class _Delivery(TypedDict):
    """How deployments and incidents are read, for the drill-downs as for the numbers."""

    rules: DeploymentRules | None
    attribution_window: timedelta


@dataclass(frozen=True, slots=True)
class MetricsLayer:
    """`rules` decide which deployment rows are one service and what a hotfix marks as failed;
    `attribution_window` bounds incident → deployment inference; `parallel` lets a report use
    two more pooled connections (see `doraflow.metrics.queries`). Numbers and drill-downs share
    them, which is what keeps the two in agreement."""

    rules: DeploymentRules | None = None
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW
    parallel: bool = True

    @property
    def _delivery(self) -> _Delivery:
        return {"rules": self.rules, "attribution_window": self.attribution_window}

    async def dora(
        self, session: AsyncSession, scope: MetricsScope, windows: Sequence[Window], *, benchmark: int
    ) -> list[Mapping[str, MetricResult]]:
        _, results = await _scoped(
            scope,
            dora_windows(
                session,
                organization_id=scope.organization_id,
                scope=scope.metric_scope,
                windows=windows,
                benchmark=benchmark,
                **self._delivery,
                day_zone=UTC,
                parallel=self.parallel,
            ),
        )
        return list(results)

    async def flow(
        self, session: AsyncSession, scope: MetricsScope, window: Window
    ) -> Mapping[str, MetricResult]:
        report = await _scoped(
            scope,
            flow_report(session, **_where(scope, window)),
        )
        return report.metrics

    async def pull_requests(
        self,
        session: AsyncSession,
        scope: MetricsScope,
        window: Window,
        *,
        selection: PullRequestSelection,
        sort: MetricsPullRequestSort,
        descending: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[PullRequestItem]:
        return await _scoped(
            scope,
            list_pull_requests(
                session,
                **_where(scope, window),
                selection=selection,
                sort=sort,
                descending=descending,
                limit=limit,
                cursor=cursor,
            ),
        )

    async def deployments(
        self,
        session: AsyncSession,
        scope: MetricsScope,
        window: Window,
        *,
        failed_only: bool,
        sort: DeploymentSort,
        descending: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[DeploymentItem]:
        return await _scoped(
            scope,
            list_deployments(
                session,
                **_where(scope, window),
                failed_only=failed_only,
                sort=sort,
                descending=descending,
                limit=limit,
                cursor=cursor,
                **self._delivery,
            ),
        )

    async def incidents(
        self,
        session: AsyncSession,
        scope: MetricsScope,
        window: Window,
        *,
        selection: IncidentSelection,
        sort: IncidentSort,
        descending: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[IncidentItem]:
        return await _scoped(
            scope,
            list_incidents(
                session,
                **_where(scope, window),
                selection=selection,
                sort=sort,
                descending=descending,
                limit=limit,
                cursor=cursor,
                **self._delivery,
            ),
        )
