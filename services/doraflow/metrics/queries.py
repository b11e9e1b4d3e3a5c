"""The metrics query layer: DORA and flow metrics of a scope and window, straight from PostgreSQL.

This is what the API (and anything else that serves numbers) calls. Every number still comes from
the one definition in :mod:`doraflow.metrics.dora` / :mod:`doraflow.metrics.flow`: the inputs
that are small -- deployments (thousands per window), incidents (hundreds), pull requests
(tens of thousands, loaded as epoch arrays or records) -- are loaded and handed to the pure
functions; the one large input, per-commit lead time over ~10^5 changes, is summarised by
PostgreSQL (:mod:`doraflow.metrics.leadtime`), which is proven equivalent to the Python
definition by the integration tests, and the result is still built by
:func:`~doraflow.metrics.dora.lead_time_result`.

All functions take the caller's :class:`AsyncSession` and run in its transaction (read-only;
planner settings are set for that transaction, see :class:`~doraflow.metrics.loaders.Database`),
are scoped to ``organization_id`` (another organization's rows are never read, and its team or
repository ids raise :class:`ScopeNotFoundError`), and never cache: caching is the API's business.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from typing import Final, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.metrics.deployments import DeploymentRules
from doraflow.metrics.dora import (
    change_failure_rate,
    cycle_time_breakdown,
    deployment_frequency,
    failed_deployment_recovery_time,
    lead_time_result,
    rework_rate,
    time_to_restore_service,
)
from doraflow.metrics.drilldowns import list_deployments, list_incidents, list_pull_requests
from doraflow.metrics.flowqueries import flow_metrics, flow_report
from doraflow.metrics.incidents import DEFAULT_ATTRIBUTION_WINDOW
from doraflow.metrics.leadtime import LeadTimeSample, deployed_pull_request_times, lead_time_samples
from doraflow.metrics.loaders import (
    Database,
    Delivery,
    load_delivery,
    resolve_repositories,
    resolve_scope,
    side_database,
)
from doraflow.metrics.records import Window
from doraflow.metrics.report import (
    Bucket,
    DoraReport,
    DoraTrend,
    FlowReport,
    InvalidCursorError,
    MetricScope,
    Page,
    ResolvedScope,
    ScopeNotFoundError,
    TrendPoint,
)
from doraflow.metrics.results import JSONValue, MetricResult
from doraflow.metrics.tiers import DEFAULT_BENCHMARK, thresholds_for

__all__ = [
    "Bucket",
    "DoraReport",
    "DoraTrend",
    "FlowReport",
    "InvalidCursorError",
    "MetricScope",
    "Page",
    "QueryLayerMetricsSource",
    "RepositoriesScope",
    "ScopeNotFoundError",
    "TrendPoint",
    "bucket_windows",
    "dora_report",
    "dora_trend",
    "dora_windows",
    "flow_report",
    "list_deployments",
    "list_incidents",
    "list_pull_requests",
]

Breakdown = dict[str, JSONValue]
_NO_BREAKDOWN: Final = cycle_time_breakdown(())


def _dora_results(
    delivery: Delivery,
    sample: LeadTimeSample,
    breakdown: Mapping[str, JSONValue],
    window: Window,
    *,
    benchmark: int,
    day_zone: tzinfo,
) -> dict[str, MetricResult]:
    """All six DORA metrics of one window from loaded deliveries and the lead-time sample."""
    analysis = delivery.analysis
    deployments = delivery.deployments
    incidents = delivery.incidents
    results = (
        deployment_frequency(deployments, window, benchmark=benchmark, day_zone=day_zone),
        lead_time_result(sample.distribution, sample.counts, breakdown, benchmark=benchmark),
        change_failure_rate(deployments, incidents, window, benchmark=benchmark, analysis=analysis),
        failed_deployment_recovery_time(
            deployments, incidents, window, benchmark=benchmark, analysis=analysis
        ),
        time_to_restore_service(incidents, window, benchmark=benchmark),
        rework_rate(deployments, incidents, window, benchmark=benchmark, analysis=analysis),
    )
    return {result.name: result for result in results}


def _check_benchmark(benchmark: int) -> None:
    thresholds_for("lead_time_for_changes", benchmark)  # raises ValueError for unknown years


def _covering(windows: Sequence[Window]) -> Window:
    return Window(min(window.start for window in windows), max(window.end for window in windows))


async def _breakdowns(db: Database, resolved: ResolvedScope, windows: Sequence[Window]) -> list[Breakdown]:
    """The cycle-time breakdown of each window, computed as soon as the pull requests arrive
    (while the other connections' queries are still running)."""
    pull_requests = await deployed_pull_request_times(db, resolved, windows)
    return [cycle_time_breakdown(times) if times else _NO_BREAKDOWN for times in pull_requests]


async def _gather_inputs(
    session: AsyncSession,
    db: Database,
    resolved: ResolvedScope,
    windows: Sequence[Window],
    *,
    rules: DeploymentRules | None,
    attribution_window: timedelta,
    parallel: bool,
) -> tuple[list[LeadTimeSample], list[Breakdown], Delivery]:
    """Lead-time samples and cycle-time breakdowns per window, and the deliveries of all.

    With ``parallel`` (and a session bound to an engine) the three are fetched concurrently: the
    lead-time percentiles (all PostgreSQL work) and the pull requests (then summarised in
    Python) each on a pooled side connection, the deployments and incidents on the session's.
    Python's share -- the breakdown, collapsing and classifying deployments -- then runs while
    PostgreSQL sorts, so a report costs roughly its longest part instead of the sum of all.
    """
    covering = _covering(windows)
    if parallel:
        async with side_database(session) as lead_db, side_database(session) as pull_request_db:
            if lead_db is not None and pull_request_db is not None:
                lead_times = asyncio.create_task(lead_time_samples(lead_db, resolved, windows))
                breakdowns = asyncio.create_task(_breakdowns(pull_request_db, resolved, windows))
                try:
                    delivery = await load_delivery(
                        db, resolved, covering, rules=rules, attribution_window=attribution_window
                    )
                    return await lead_times, await breakdowns, delivery
                finally:
                    # Whatever failed, the side queries finish before their connections go back
                    # to the pool (cancelling a running asyncpg query leaves the connection
                    # busy); their own errors are reported through the awaits above.
                    await asyncio.wait([lead_times, breakdowns])
                    for task in (lead_times, breakdowns):
                        if not task.cancelled():
                            task.exception()  # retrieved: no "never retrieved" warning
    samples = await lead_time_samples(db, resolved, windows)
    breakdown_list = await _breakdowns(db, resolved, windows)
    delivery = await load_delivery(db, resolved, covering, rules=rules, attribution_window=attribution_window)
    return samples, breakdown_list, delivery


async def _dora_for(
    session: AsyncSession,
    db: Database,
    resolved: ResolvedScope,
    windows: Sequence[Window],
    *,
    benchmark: int,
    rules: DeploymentRules | None,
    attribution_window: timedelta,
    day_zone: tzinfo,
    parallel: bool,
) -> list[dict[str, MetricResult]]:
    _check_benchmark(benchmark)
    if not windows:
        return []
    samples, breakdowns, delivery = await _gather_inputs(
        session, db, resolved, windows, rules=rules, attribution_window=attribution_window, parallel=parallel
    )
    return [
        _dora_results(delivery, sample, breakdown, window, benchmark=benchmark, day_zone=day_zone)
        for window, sample, breakdown in zip(windows, samples, breakdowns, strict=True)
    ]


async def dora_windows(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    windows: Sequence[Window],
    benchmark: int = DEFAULT_BENCHMARK,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    day_zone: tzinfo = UTC,
    parallel: bool = True,
) -> tuple[ResolvedScope, list[dict[str, MetricResult]]]:
    """Every DORA metric for each of ``windows`` (in order), loading and analysing the scope's
    deployments and incidents once for all of them -- a summary with its previous period, or
    the buckets of a trend. Windows that do not overlap share one lead-time query."""
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    results = await _dora_for(
        session,
        db,
        resolved,
        windows,
        benchmark=benchmark,
        rules=rules,
        attribution_window=attribution_window,
        day_zone=day_zone,
        parallel=parallel,
    )
    return resolved, results


async def dora_report(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    window: Window,
    benchmark: int = DEFAULT_BENCHMARK,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    day_zone: tzinfo = UTC,
    parallel: bool = True,
) -> DoraReport:
    """Every DORA metric, with tiers under ``benchmark`` (2021 or 2023), for one scope and window.

    ``rules`` (from the Integration) decide which deployment rows are separate services and
    what a hotfix marks as failed; ``attribution_window`` bounds incident → deployment
    inference; ``day_zone`` is where a "deployment day" starts. ``parallel`` runs the lead-time
    and pull-request queries on two more connections of the session's engine (see
    :func:`~doraflow.metrics.loaders.side_database`); pass ``False`` to use only the session's.
    Raises :class:`ScopeNotFoundError`, and ``ValueError`` for an unknown benchmark.
    """
    resolved, (metrics,) = await dora_windows(
        session,
        organization_id=organization_id,
        scope=scope,
        windows=[window],
        benchmark=benchmark,
        rules=rules,
        attribution_window=attribution_window,
        day_zone=day_zone,
        parallel=parallel,
    )
    return DoraReport(resolved, window, benchmark, metrics)


def bucket_windows(window: Window, bucket: Bucket) -> list[tuple[Window, bool]]:
    """The calendar buckets (UTC) covering ``window``, each cut to the window, with whether it
    was cut (``partial``). Days start at midnight, weeks on Monday, months on the 1st."""
    start = window.start.astimezone(UTC)
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is Bucket.DAY:
        cursor = day
    elif bucket is Bucket.WEEK:
        cursor = day - timedelta(days=day.weekday())
    else:
        cursor = day.replace(day=1)
    buckets: list[tuple[Window, bool]] = []
    while cursor < window.end:
        if bucket is Bucket.DAY:
            following = cursor + timedelta(days=1)
        elif bucket is Bucket.WEEK:
            following = cursor + timedelta(days=7)
        else:
            following = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        piece_start, piece_end = max(cursor, window.start), min(following, window.end)
        buckets.append((Window(piece_start, piece_end), (piece_start, piece_end) != (cursor, following)))
        cursor = following
    return buckets


async def dora_trend(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    scope: MetricScope,
    window: Window,
    bucket: Bucket | str = Bucket.WEEK,
    benchmark: int = DEFAULT_BENCHMARK,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
    day_zone: tzinfo = UTC,
    parallel: bool = True,
) -> DoraTrend:
    """The DORA metrics per day, week or month of ``window`` (see :func:`bucket_windows`).

    Deployments and incidents are loaded and attributed once for the whole window, so a
    deployment's failure is judged the same way in the trend and in the report; lead time is
    one grouped query. Each point's metrics are exactly :func:`dora_report`'s over that bucket.
    """
    bucket = Bucket(bucket)
    pieces = bucket_windows(window, bucket)
    resolved, results = await dora_windows(
        session,
        organization_id=organization_id,
        scope=scope,
        windows=[piece for piece, _ in pieces],
        benchmark=benchmark,
        rules=rules,
        attribution_window=attribution_window,
        day_zone=day_zone,
        parallel=parallel,
    )
    points = tuple(
        TrendPoint(piece.start, piece.end, partial, metrics)
        for (piece, partial), metrics in zip(pieces, results, strict=True)
    )
    return DoraTrend(resolved, window, benchmark, bucket, points)


# --------------------------------------------------------------------------------------------
# The API's MetricsSource (doraflow.api.services.analytics), backed by this module
# --------------------------------------------------------------------------------------------


class RepositoriesScope(Protocol):
    """A scope as the API resolves it: an organization, optionally narrowed to some of its
    repositories (``None``: all of them; ``()``: none)."""

    @property
    def organization_id(self) -> uuid.UUID: ...

    @property
    def repository_ids(self) -> tuple[uuid.UUID, ...] | None: ...


@dataclass(frozen=True, slots=True)
class QueryLayerMetricsSource:
    """The API's ``MetricsSource`` protocol implemented with the query layer.

    ``dora`` answers several windows from one load of deployments and incidents; ``flow``
    answers one. A scope narrowed to repositories has no work items (they are linked to people,
    not repositories): pass a :class:`MetricScope` with the team to :func:`flow_report` for a
    team's work-item and sprint metrics.
    """

    rules: DeploymentRules | None = None
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW
    parallel: bool = True

    async def dora(
        self, session: AsyncSession, scope: RepositoriesScope, windows: Sequence[Window], *, benchmark: int
    ) -> list[Mapping[str, MetricResult]]:
        db = await Database.of(session)
        resolved = await resolve_repositories(db, scope.organization_id, scope.repository_ids)
        results = await _dora_for(
            session,
            db,
            resolved,
            windows,
            benchmark=benchmark,
            rules=self.rules,
            attribution_window=self.attribution_window,
            day_zone=UTC,
            parallel=self.parallel,
        )
        return list(results)

    async def flow(
        self, session: AsyncSession, scope: RepositoriesScope, window: Window
    ) -> Mapping[str, MetricResult]:
        db = await Database.of(session)
        resolved = await resolve_repositories(db, scope.organization_id, scope.repository_ids)
        return await flow_metrics(db, resolved, window)
