"""The metrics query layer: DORA and flow metrics of a scope and window, straight from PostgreSQL.

This is what the API (and anything else that serves numbers) calls. Every number still comes from
the one definition in :mod:`doraflow.metrics.dora` / :mod:`doraflow.metrics.flow`: the inputs
that are small -- deployments (thousands per window), incidents (hundreds), pull requests
(tens of thousands, loaded as epoch tuples or records) -- are loaded and handed to the pure
functions; the one large input, per-commit lead time over ~10^5 changes, is summarised by
PostgreSQL (:mod:`doraflow.metrics.leadtime`), which is proven equivalent to the Python
definition by the integration tests, and the result is still built by
:func:`~doraflow.metrics.dora.lead_time_result`.

All functions take the caller's :class:`AsyncSession` and run in its transaction (read-only;
``work_mem`` is raised for that transaction, see :class:`~doraflow.metrics.loaders.Database`),
are scoped to ``organization_id`` (another organization's rows are never read, and its team or
repository ids raise :class:`ScopeNotFoundError`), and never cache: caching is the API's business.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.metrics.deployments import DeploymentRules
from doraflow.metrics.dora import (
    PullRequestTimes,
    change_failure_rate,
    cycle_time_breakdown,
    deployment_frequency,
    failed_deployment_recovery_time,
    lead_time_result,
    rework_rate,
    time_to_restore_service,
)
from doraflow.metrics.drilldowns import list_deployments, list_incidents, list_pull_requests
from doraflow.metrics.flowqueries import flow_report
from doraflow.metrics.incidents import DEFAULT_ATTRIBUTION_WINDOW
from doraflow.metrics.leadtime import LeadTimeSample, deployed_pull_request_times, lead_time_samples
from doraflow.metrics.loaders import Database, Delivery, load_delivery, resolve_scope, side_database
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
from doraflow.metrics.results import MetricResult
from doraflow.metrics.tiers import DEFAULT_BENCHMARK, thresholds_for

__all__ = [
    "Bucket",
    "DoraReport",
    "DoraTrend",
    "FlowReport",
    "InvalidCursorError",
    "MetricScope",
    "Page",
    "ScopeNotFoundError",
    "TrendPoint",
    "bucket_windows",
    "dora_report",
    "dora_trend",
    "flow_report",
    "list_deployments",
    "list_incidents",
    "list_pull_requests",
]

_EMPTY_SAMPLE = LeadTimeSample(None, Counter())


def _dora_results(
    delivery: Delivery,
    sample: LeadTimeSample,
    pull_requests: list[PullRequestTimes],
    window: Window,
    *,
    benchmark: int,
    day_zone: tzinfo,
) -> dict[str, MetricResult]:
    """All six DORA metrics of one window from loaded deliveries and the lead-time sample."""
    analysis = delivery.analysis
    deployments = delivery.deployments
    incidents = delivery.incidents
    breakdown = cycle_time_breakdown(pull_requests)
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


async def _gather_inputs(
    session: AsyncSession,
    db: Database,
    resolved: ResolvedScope,
    window: Window,
    bucket: Bucket | None,
    *,
    rules: DeploymentRules | None,
    attribution_window: timedelta,
    parallel: bool,
) -> tuple[dict[datetime | None, LeadTimeSample], dict[datetime | None, list[PullRequestTimes]], Delivery]:
    """Lead-time samples, deployed pull requests and deliveries for one scope and window.

    With ``parallel`` (and a session bound to an engine) the lead-time and pull-request queries
    run on a second pooled connection while the session's connection loads deployments and
    incidents and Python analyses them: the two halves cost about the same, so a report takes
    roughly one of them instead of both.
    """
    async with side_database(session) if parallel else nullcontext() as side:
        if side is None:
            samples = await lead_time_samples(db, resolved, window, bucket)
            pull_requests = await deployed_pull_request_times(db, resolved, window, bucket)
            delivery = await load_delivery(
                db, resolved, window, rules=rules, attribution_window=attribution_window
            )
            return samples, pull_requests, delivery
        database_side = asyncio.create_task(_lead_times_and_pull_requests(side, resolved, window, bucket))
        try:
            delivery = await load_delivery(
                db, resolved, window, rules=rules, attribution_window=attribution_window
            )
        except BaseException:
            # Not a TaskGroup: callers get the original exception, not an ExceptionGroup.
            database_side.cancel()
            await asyncio.wait([database_side])
            raise
        samples, pull_requests = await database_side
        return samples, pull_requests, delivery


async def _lead_times_and_pull_requests(
    db: Database, resolved: ResolvedScope, window: Window, bucket: Bucket | None
) -> tuple[dict[datetime | None, LeadTimeSample], dict[datetime | None, list[PullRequestTimes]]]:
    """The two queries whose work is all in PostgreSQL, one after the other on one connection."""
    samples = await lead_time_samples(db, resolved, window, bucket)
    return samples, await deployed_pull_request_times(db, resolved, window, bucket)


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
    query on a second connection of the session's engine (see
    :func:`~doraflow.metrics.loaders.side_database`); pass ``False`` to use only the session's.
    Raises :class:`ScopeNotFoundError`, and ``ValueError`` for an unknown benchmark.
    """
    _check_benchmark(benchmark)
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    samples, pull_requests, delivery = await _gather_inputs(
        session,
        db,
        resolved,
        window,
        None,
        rules=rules,
        attribution_window=attribution_window,
        parallel=parallel,
    )
    metrics = _dora_results(
        delivery,
        samples.get(None, _EMPTY_SAMPLE),
        pull_requests.get(None, []),
        window,
        benchmark=benchmark,
        day_zone=day_zone,
    )
    return DoraReport(resolved, window, benchmark, metrics)


def bucket_windows(window: Window, bucket: Bucket) -> list[tuple[Window, bool]]:
    """The calendar buckets (UTC) covering ``window``, each cut to the window, with whether it
    was cut (``partial``). Days start at midnight, weeks on Monday, months on the 1st."""
    start = window.start
    if bucket is Bucket.DAY:
        cursor = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elif bucket is Bucket.WEEK:
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        cursor = day - timedelta(days=day.weekday())
    else:
        cursor = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
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
    _check_benchmark(benchmark)
    bucket = Bucket(bucket)
    db = await Database.of(session)
    resolved = await resolve_scope(db, organization_id, scope)
    samples, pull_requests, delivery = await _gather_inputs(
        session,
        db,
        resolved,
        window,
        bucket,
        rules=rules,
        attribution_window=attribution_window,
        parallel=parallel,
    )
    points: list[TrendPoint] = []
    for piece, partial in bucket_windows(window, bucket):
        key = _bucket_key(piece.start, bucket)
        metrics = _dora_results(
            delivery,
            samples.get(key, _EMPTY_SAMPLE),
            pull_requests.get(key, []),
            piece,
            benchmark=benchmark,
            day_zone=day_zone,
        )
        points.append(TrendPoint(piece.start, piece.end, partial, metrics))
    return DoraTrend(resolved, window, benchmark, bucket, tuple(points))


def _bucket_key(moment: datetime, bucket: Bucket) -> datetime:
    """The ``date_trunc(bucket, moment, 'UTC')`` PostgreSQL groups by."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket is Bucket.DAY:
        return day
    if bucket is Bucket.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)
