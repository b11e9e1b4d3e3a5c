"""The rows behind the numbers: pull requests, deployments and incidents of a scope and window.

Each list comes from the metrics layer's drill-downs (`doraflow.metrics.drilldowns`) through the
same `MetricsSource` that computes the numbers, so the rows are exactly those the metric counted:
the deployments listed are the rollouts deployment frequency counts (the failed ones, the change
failure rate's numerator), the pull requests of `selection=deployed` are those of the lead-time
breakdown, the changes of the deployments add up to lead time's sample. A list of stored rows
would disagree with the number it is meant to explain as soon as a definition filters, collapses
or attributes anything — which every DORA definition does.

This module only translates the API's conventions (`-field` for descending order, the API's row
schemas) to the metrics layer's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.schemas.analytics import (
    DeploymentRow,
    DeploymentSort,
    DrillDownPage,
    IncidentRow,
    IncidentSelection,
    IncidentSort,
    PullRequestRow,
    PullRequestSelection,
    PullRequestSort,
)
from doraflow.api.services.analytics import MetricsScope, MetricsSource
from doraflow.metrics import Page, Window
from doraflow.metrics import drilldowns as metrics

RowT = TypeVar("RowT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class DrillDown:
    """One drill-down request: what to list (scope and window) and which page of it."""

    source: MetricsSource
    session: AsyncSession
    scope: MetricsScope
    window: Window
    cursor: str | None
    limit: int

    async def _listed(
        self, row: type[RowT], sort: str, fetch: Callable[[str, bool], Awaitable[Page[Any]]]
    ) -> DrillDownPage[RowT]:
        """Ask the metrics layer with its sort name and direction (`-merged_at` → `merged_at`,
        descending; the query parameter's Literal already limited `sort` to its names) and
        answer with the API's rows."""
        page = await fetch(sort.removeprefix("-"), sort.startswith("-"))
        return DrillDownPage[row].model_validate(  # type: ignore[valid-type]
            {"items": list(page.items), "next_cursor": page.next_cursor, "total": page.total, "sort": sort},
            from_attributes=True,
        )

    async def pull_requests(
        self, *, selection: PullRequestSelection, sort: PullRequestSort
    ) -> DrillDownPage[PullRequestRow]:
        """`deployed`: the pull requests of lead time's cycle-time breakdown (merge or squash
        commit first deployed to production in the window); `merged`: those of the flow metrics."""
        return await self._listed(
            PullRequestRow,
            sort,
            lambda field, descending: self.source.pull_requests(
                self.session,
                self.scope,
                self.window,
                selection=selection,
                sort=cast(metrics.PullRequestSort, field),
                descending=descending,
                limit=self.limit,
                cursor=self.cursor,
            ),
        )

    async def deployments(self, *, failed_only: bool, sort: DeploymentSort) -> DrillDownPage[DeploymentRow]:
        """Production deployments of the window as the DORA metrics count them; `failed_only`:
        the change failure rate's failed deployments."""
        return await self._listed(
            DeploymentRow,
            sort,
            lambda field, descending: self.source.deployments(
                self.session,
                self.scope,
                self.window,
                failed_only=failed_only,
                sort=cast(metrics.DeploymentSort, field),
                descending=descending,
                limit=self.limit,
                cursor=self.cursor,
            ),
        )

    async def incidents(
        self, *, selection: IncidentSelection, sort: IncidentSort
    ) -> DrillDownPage[IncidentRow]:
        """`started`: incidents whose impact started in the window (the change failure rate's
        attribution); `resolved`: those resolved in it (time to restore service's sample)."""
        return await self._listed(
            IncidentRow,
            sort,
            lambda field, descending: self.source.incidents(
                self.session,
                self.scope,
                self.window,
                selection=selection,
                sort=cast(metrics.IncidentSort, field),
                descending=descending,
                limit=self.limit,
                cursor=self.cursor,
            ),
        )
