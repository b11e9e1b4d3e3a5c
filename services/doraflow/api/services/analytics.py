"""Analytics: scope and window resolution, response caching, and the contract with the metrics
package.

The API never defines a metric. Every number comes from a `MetricsSource` — the query layer of
`doraflow.metrics`, which loads records for a scope and runs the one definition of each metric —
and this module only decides *which* scope and windows to ask for, shapes the answer, and caches
it under the seed's keys (`metrics:dora:{repo_id}:{period}`, see `doraflow.core.cache.keys`) for
`cache_ttl_seconds`; the processor deletes the keys when new data lands.

A cached entry starts with the 16 bytes of its organization's id, so a hit can be served without
a database round trip and still never reaches another organization: the seed's key names a
repository or team id only, and ids are guessable from nowhere but must still be checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.auth import Principal
from doraflow.api.problems import field_problem, not_found
from doraflow.api.schemas.analytics import DORA_METRICS, ScopeKind
from doraflow.core.cache import Cache, keys
from doraflow.core.models import Organization, Repository, Team, TeamRepository
from doraflow.metrics import (
    DeploymentItem,
    IncidentItem,
    MetricResult,
    MetricScope,
    Page,
    PullRequestItem,
    Window,
)
from doraflow.metrics.drilldowns import (
    DeploymentSort,
    IncidentSelection,
    IncidentSort,
    PullRequestSelection,
    PullRequestSort,
)

WINDOW_DAYS = {"7d": 7, "30d": 30, "90d": 90, "180d": 180, "365d": 365}
MAX_RANGE = timedelta(days=3 * 366)
MAX_BUCKETS = 400


@dataclass(frozen=True, slots=True)
class MetricsScope:
    """What the metrics package is asked about: the organization, one of its teams or one of its
    repositories (`kind`, `id`), with the repositories that covers (`repository_ids`; `None` for
    the whole organization, `()` for a team without repositories). The metrics layer resolves the
    scope itself (`metric_scope`) — a team's work items are its members', which no list of
    repositories can express."""

    organization_id: uuid.UUID
    repository_ids: tuple[uuid.UUID, ...] | None = None
    kind: ScopeKind = "organization"
    id: uuid.UUID | None = None

    @property
    def metric_scope(self) -> MetricScope:
        return MetricScope.organization() if self.kind == "organization" else MetricScope(self.kind, self.id)


class MetricsSource(Protocol):
    """What the API needs from `doraflow.metrics` (`doraflow.api.services.metrics_layer`).

    `dora` returns, for each window in order, every DORA metric by name (the six of
    `DORA_METRICS`); one call covers a summary (one window), a comparison (two) and a trend (one
    per bucket), so records are loaded once. `flow` returns the flow metrics by name. The
    drill-downs list the rows behind those numbers, computed with the same inputs and rules.
    """

    async def dora(
        self, session: AsyncSession, scope: MetricsScope, windows: Sequence[Window], *, benchmark: int
    ) -> list[Mapping[str, MetricResult]]: ...

    async def flow(
        self, session: AsyncSession, scope: MetricsScope, window: Window
    ) -> Mapping[str, MetricResult]: ...

    async def pull_requests(
        self,
        session: AsyncSession,
        scope: MetricsScope,
        window: Window,
        *,
        selection: PullRequestSelection,
        sort: PullRequestSort,
        descending: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[PullRequestItem]: ...

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
    ) -> Page[DeploymentItem]: ...

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
    ) -> Page[IncidentItem]: ...


@dataclass(frozen=True, slots=True)
class ResolvedScope:
    kind: str
    id: uuid.UUID
    name: str
    metrics: MetricsScope

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": str(self.id), "name": self.name}


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: bytes
    hit: bool


def resolve_window(
    window: str | None, start: datetime | None, end: datetime | None, *, now: datetime | None = None
) -> Window:
    """`window=30d` is the 30 whole UTC days ending with today (so answers are stable, and
    cacheable, for the day); `from`/`to` give an explicit half-open range (`to` defaults to now)."""
    now = now or datetime.now(UTC)
    if window is not None and (start is not None or end is not None):
        raise field_problem("window", "give either window or from/to, not both")
    if start is None and end is None:
        days = WINDOW_DAYS[window or "30d"]
        tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        return Window(tomorrow - timedelta(days=days), tomorrow)
    if start is None:
        raise field_problem("from", "is required when to is given")
    end = end or now
    if end <= start:
        raise field_problem("to", "must be after from")
    if end - start > MAX_RANGE:
        raise field_problem("from", "the range from..to may span at most 3 years")
    return Window(start, end)


def buckets(window: Window, granularity: str) -> list[tuple[Window, bool]]:
    """Calendar buckets covering `window` (weeks start on Monday, UTC), each cut to the window;
    the flag marks a cut (partial) bucket."""
    first = window.start.date()
    if granularity == "week":
        first -= timedelta(days=first.weekday())
    elif granularity == "month":
        first = first.replace(day=1)
    result: list[tuple[Window, bool]] = []
    cursor = first
    while True:
        begin = datetime.combine(cursor, datetime.min.time(), tzinfo=UTC)
        if begin >= window.end:
            break
        cursor = _next(cursor, granularity)
        end = datetime.combine(cursor, datetime.min.time(), tzinfo=UTC)
        cut_start, cut_end = max(begin, window.start), min(end, window.end)
        if cut_end > cut_start:
            result.append((Window(cut_start, cut_end), (cut_start, cut_end) != (begin, end)))
        if len(result) > MAX_BUCKETS:
            raise field_problem("granularity", f"more than {MAX_BUCKETS} buckets; use a coarser granularity")
    return result


def _next(day: date, granularity: str) -> date:
    if granularity == "day":
        return day + timedelta(days=1)
    if granularity == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _key(family: keys.MetricFamily, kind: str, target: uuid.UUID, period: str) -> str:
    if kind == "organization":
        return keys.organization_metrics(target, period, family)
    if kind == "team":
        return keys.team_metrics(target, period, family)
    return keys.repository_metrics(target, period, family)


def metric_json(result: MetricResult, *, with_details: bool = True) -> dict[str, Any]:
    data = result.to_dict()
    data.pop("name", None)
    if not with_details:
        data["details"] = {}
    return data


class AnalyticsService:
    def __init__(self, source: MetricsSource, cache: Cache, ttl_seconds: int) -> None:
        self.source = source
        self._cache = cache
        self._ttl = ttl_seconds

    async def resolve_scope(
        self, session: AsyncSession, principal: Principal, kind: str, scope_id: uuid.UUID | None
    ) -> ResolvedScope:
        org = principal.organization_id
        if kind == "organization":
            if scope_id is not None and scope_id != org:
                raise not_found("organization", scope_id)
            name = await session.scalar(select(Organization.name).where(Organization.id == org))
            return ResolvedScope(kind, org, name or principal.organization_slug, MetricsScope(org, None))
        if scope_id is None:
            raise field_problem("id", f"is required for scope={kind}")
        if kind == "team":
            team_name = await session.scalar(
                select(Team.name).where(Team.id == scope_id, Team.organization_id == org)
            )
            if team_name is None:
                raise not_found("team", scope_id)
            repos = tuple(
                await session.scalars(
                    select(TeamRepository.repository_id).where(TeamRepository.team_id == scope_id)
                )
            )
            return ResolvedScope(kind, scope_id, team_name, MetricsScope(org, repos, "team", scope_id))
        repo_name = await session.scalar(
            select(Repository.name).where(Repository.id == scope_id, Repository.organization_id == org)
        )
        if repo_name is None:
            raise not_found("repository", scope_id)
        return ResolvedScope(
            kind, scope_id, repo_name, MetricsScope(org, (scope_id,), "repository", scope_id)
        )

    # -- cache ---------------------------------------------------------------------------------

    async def cached(
        self, principal: Principal, key: str, kind: str, scope_id: uuid.UUID
    ) -> CachedAnswer | None:
        """The cached answer under `key`, if any; 404 when it belongs to another organization."""
        raw = await self._cache.get(key)
        if raw is None or len(raw) < 16:
            return None
        if raw[:16] != principal.organization_id.bytes:
            raise not_found(kind, scope_id)
        return CachedAnswer(raw[16:], True)

    async def _store(self, principal: Principal, key: str, body: bytes) -> None:
        await self._cache.set(key, principal.organization_id.bytes + body, self._ttl)

    @staticmethod
    def _period(window: Window, *parts: object) -> str:
        span = f"{window.start:%Y%m%dT%H%M%S}-{window.end:%Y%m%dT%H%M%S}"
        return ":".join([span, *(str(p) for p in parts)])

    # -- keys (shared with the fast path in `doraflow.api.fastpath`) ------------------------------

    @staticmethod
    def target(principal: Principal, kind: str, scope_id: uuid.UUID | None) -> uuid.UUID | None:
        """The id a cache key names: the scope's id (the caller's organization by default)."""
        return principal.organization_id if kind == "organization" and scope_id is None else scope_id

    def dora_key(self, kind: str, target: uuid.UUID, window: Window, benchmark: int, compare: bool) -> str:
        return _key("dora", kind, target, self._period(window, f"b{benchmark}", "cmp" if compare else "one"))

    def trend_key(
        self,
        kind: str,
        target: uuid.UUID,
        window: Window,
        benchmark: int,
        granularity: str,
        wanted: Sequence[str],
    ) -> str:
        period = self._period(window, f"b{benchmark}", f"trend-{granularity}", ",".join(wanted))
        return _key("dora", kind, target, period)

    def flow_key(self, kind: str, target: uuid.UUID, window: Window) -> str:
        return _key("flow", kind, target, self._period(window))

    @staticmethod
    def wanted_metrics(metrics: Sequence[str]) -> list[str]:
        return [m for m in DORA_METRICS if m in metrics] if metrics else list(DORA_METRICS)

    # -- answers ---------------------------------------------------------------------------------

    async def _answer(
        self,
        session: AsyncSession,
        principal: Principal,
        kind: str,
        scope_id: uuid.UUID | None,
        key_of: Callable[[uuid.UUID], str],
        compute: Callable[[ResolvedScope], Awaitable[dict[str, Any]]],
    ) -> CachedAnswer:
        """The cached answer under `key_of(target)` if there is one; otherwise the scope is
        resolved (404/422 as for any request), `compute` fills the body between `scope` and
        `generated_at`, and the encoded answer is cached for the next caller."""
        target = self.target(principal, kind, scope_id)
        key = None
        if target is not None:
            key = key_of(target)
            hit = await self.cached(principal, key, kind, target)
            if hit is not None:
                return hit
        scope = await self.resolve_scope(session, principal, kind, scope_id)
        body = {"scope": scope.as_json(), **await compute(scope), "generated_at": datetime.now(UTC)}
        encoded = orjson.dumps(body, option=orjson.OPT_UTC_Z)
        if key is not None:
            await self._store(principal, key, encoded)
        return CachedAnswer(encoded, False)

    async def dora(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        kind: str,
        scope_id: uuid.UUID | None,
        window: Window,
        benchmark: int,
        compare: bool,
    ) -> CachedAnswer:
        async def compute(scope: ResolvedScope) -> dict[str, Any]:
            windows = [window]
            if compare:
                windows.append(Window(window.start - window.duration, window.start))
            results = await self.source.dora(session, scope.metrics, windows, benchmark=benchmark)
            previous = None
            if compare:
                previous = {
                    name: metric_json(results[1][name], with_details=False)
                    for name in DORA_METRICS
                    if name in results[1]
                }
            return {
                "window": {"start": window.start, "end": window.end},
                "benchmark": benchmark,
                "metrics": {
                    name: metric_json(results[0][name]) for name in DORA_METRICS if name in results[0]
                },
                "previous": previous,
            }

        return await self._answer(
            session,
            principal,
            kind,
            scope_id,
            lambda target: self.dora_key(kind, target, window, benchmark, compare),
            compute,
        )

    async def trend(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        kind: str,
        scope_id: uuid.UUID | None,
        window: Window,
        benchmark: int,
        granularity: str,
        metrics: Sequence[str],
    ) -> CachedAnswer:
        wanted = self.wanted_metrics(metrics)

        async def compute(scope: ResolvedScope) -> dict[str, Any]:
            parts = buckets(window, granularity)
            results = await self.source.dora(
                session, scope.metrics, [w for w, _ in parts], benchmark=benchmark
            )
            return {
                "window": {"start": window.start, "end": window.end},
                "benchmark": benchmark,
                "granularity": granularity,
                "series": [
                    {
                        "start": bucket.start,
                        "end": bucket.end,
                        "partial": partial,
                        "metrics": {
                            name: metric_json(result[name], with_details=False)
                            for name in wanted
                            if name in result
                        },
                    }
                    for (bucket, partial), result in zip(parts, results, strict=True)
                ],
            }

        return await self._answer(
            session,
            principal,
            kind,
            scope_id,
            lambda target: self.trend_key(kind, target, window, benchmark, granularity, wanted),
            compute,
        )

    async def flow(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        kind: str,
        scope_id: uuid.UUID | None,
        window: Window,
    ) -> CachedAnswer:
        """Flow metrics of the scope; for a team, its work items and sprints are those of its
        members (the metrics layer's team scope), its pull requests and churn its repositories'."""

        async def compute(scope: ResolvedScope) -> dict[str, Any]:
            results = await self.source.flow(session, scope.metrics, window)
            return {
                "window": {"start": window.start, "end": window.end},
                "metrics": {name: metric_json(result) for name, result in results.items()},
            }

        return await self._answer(
            session, principal, kind, scope_id, lambda target: self.flow_key(kind, target, window), compute
        )
