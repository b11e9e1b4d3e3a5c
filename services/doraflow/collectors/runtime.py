"""The collector runtime: everything between a provider client and the bus, written once for the git
and the work collectors.

For each (scope, resource) a sync loads the cursor, iterates `client.collect(...)` and for every
`Batch` wraps each payload in an envelope, publishes it to the organization's topic keyed
`{org}/{repository or project}`, flushes the bus, and only then saves the batch's cursor — so a
crash or a failed publish re-sends a batch (stable event ids, idempotent processor) but never skips
one.

Failures are sorted by who can fix them. A `CollectorError` (bad credentials, unknown repository) is
a user's to fix: it is logged once per (scope, problem) with its hint, shown in the status, and the
other scopes keep going; it is tried again at the next regular round. Anything else (network, 5xx,
a bug) is logged and retried with back-off (see `scheduling`).

Stopping is cooperative: on `stop` every sync finishes the batch it is publishing, saves its cursor
and returns; syncs still blocked after `shutdown_grace` seconds (a long rate-limit wait) are
cancelled, which loses nothing but the unsaved batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef, SourceClient
from doraflow.collectors.cursors import CursorStore
from doraflow.collectors.scheduling import Due, Scheduler, resource_intervals
from doraflow.collectors.status import CollectorStatus, StatusReporter
from doraflow.core.bus import EventBus, TopicSpec
from doraflow.core.events import make_event, message_key, organization_topics
from doraflow.core.http import AuthenticationError, ForbiddenError, HttpClient, NotFoundError
from doraflow.core.resources import Integration, KafkaTopicSettings

logger = logging.getLogger(__name__)

ALL_SCOPES = "*"


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Reported after every batch and at the end of a sync (e.g. a progress bar per repository)."""

    scope: str
    resource: Resource
    events: int  # published so far in this sync
    done: bool = False
    error: str | None = None


ProgressCallback = Callable[[SyncProgress], None]


@dataclass(frozen=True, slots=True)
class RoundResult:
    resource: Resource
    scopes: int
    succeeded: int
    failed: int
    events: int


def as_collector_error(exc: BaseException) -> CollectorError | None:
    """HTTP failures only a user can fix, for clients that let them escape unwrapped."""
    if isinstance(exc, CollectorError):
        return exc
    if isinstance(exc, AuthenticationError):
        hint = "the provider rejected the credentials (401): renew the token in the credentials Secret"
    elif isinstance(exc, ForbiddenError):
        hint = "the credentials lack a permission or scope for this (403): grant read access"
    elif isinstance(exc, NotFoundError):
        hint = "not found (404): check the name in the Integration's scope and that the token can see it"
    else:
        return None
    return CollectorError(str(exc), hint=hint)


class CollectorRuntime:
    def __init__(
        self,
        integration: Integration,
        client: SourceClient,
        bus: EventBus,
        cursors: CursorStore,
        *,
        organization: str,
        topic_prefix: str,
        progress: ProgressCallback | None = None,
        status_reporter: StatusReporter | None = None,
        topic_settings: KafkaTopicSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_base: float = 30.0,
        scope_cache_seconds: float = 60.0,
        shutdown_grace: float = 30.0,
    ) -> None:
        self.integration = integration
        self.client = client
        self.bus = bus
        self.cursors = cursors
        self.organization = organization
        self.topic_prefix = topic_prefix
        self.progress = progress
        self.status_reporter = status_reporter
        self.topic_settings = topic_settings or KafkaTopicSettings()
        intervals = resource_intervals(integration.spec, client.resources)
        self.scheduler = Scheduler(intervals, clock=clock, retry_base=retry_base)
        self.resources = self.scheduler.resources
        self.status = CollectorStatus(integration.key, client.provider, self.resources)
        self._semaphore = asyncio.Semaphore(integration.spec.max_concurrency)
        self._scope_cache_seconds = scope_cache_seconds
        self._scope_cache: tuple[float, list[ScopeRef]] | None = None
        self._scope_lock = asyncio.Lock()
        self._clock = clock
        self._shutdown_grace = shutdown_grace
        self._rounds: dict[Resource, asyncio.Task[RoundResult]] = {}
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stop_event: asyncio.Event | None = None
        self._topics_ready = False
        self._log = {"integration": integration.key, "provider": client.provider}

    # -- public API ------------------------------------------------------------------------------

    def sync_now(
        self, resource: Resource | str | None = None, scope: str | None = None, delay: float = 0.0
    ) -> list[Resource]:
        """Ask for a sync of `resource` (None: all) of `scope` (None: all), now or after `delay`
        seconds (webhooks debounce with it); return the resources that will run. A resource this
        provider does not collect is a `ValueError`."""
        targets = self._resolve(resource)
        for target in targets:
            self.scheduler.trigger(target, scope, delay)
        self._wake.set()
        return targets

    def request_stop(self) -> None:
        """Finish the current batches and stop (what SIGTERM does through `run`'s stop event)."""
        self._stopping.set()
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Collect on schedule until `stop` is set; then let the running syncs finish their batch."""
        stop = stop if stop is not None else asyncio.Event()
        self._stop_event = stop
        if self.integration.spec.suspend:
            self.status.suspended = self.status.ready = True
            logger.info("integration is suspended: nothing is collected", extra=self._log)
            await self._report_status()
            await stop.wait()
            return
        stop_task = asyncio.create_task(stop.wait())
        try:
            if not await self._prepare(stop):
                return
            logger.info(
                "collector started",
                extra={**self._log, "resources": [r.value for r in self.resources]},
            )
            while not self.stopping:
                self._wake.clear()
                for due in self.scheduler.take_due(busy=self._rounds):
                    self._start_round(due)
                timeout = self.scheduler.seconds_until_next(busy=self._rounds)
                wake_task = asyncio.create_task(self._wake.wait())
                try:
                    await asyncio.wait(
                        {wake_task, stop_task},
                        timeout=None if math.isinf(timeout) else timeout,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    wake_task.cancel()
        finally:
            self._stopping.set()
            stop_task.cancel()
            await self._drain()
            logger.info("collector stopped", extra=self._log)

    async def sync_once(
        self, resource: Resource | str | None = None, *, scopes: frozenset[str] | None = None
    ) -> list[RoundResult]:
        """One round of `resource` (None: every resource, one after the other) without the
        scheduler loop: for one-shot runs, tests and benchmarks. Do not mix with a running `run`."""
        if not self._topics_ready:
            await self.ensure_topics()
        results = []
        for target in self._resolve(resource):
            if self.stopping:
                break
            results.append(await self._round(Due(target, scopes)))
        return results

    async def ensure_topics(self) -> list[str]:
        """Create the organization's topics that do not exist yet. Only missing ones: existing
        topics belong to the operator, whose Organization settings must not be overwritten here."""
        names = organization_topics(self.topic_prefix, self.organization)
        existing = await self.bus.list_topics()
        settings = self.topic_settings
        missing = [
            TopicSpec(
                name,
                partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                retention_ms=settings.retention_ms,
            )
            for name in names
            if name not in existing
        ]
        created = await self.bus.ensure_topics(missing) if missing else []
        self._topics_ready = True
        return created

    @property
    def ready(self) -> bool:
        return self.status.ready

    @property
    def stopping(self) -> bool:
        """Checked after every batch: `run`'s stop event is read directly, so a sync that never
        yields to the loop (an in-memory bus) still stops at the next batch boundary."""
        return self._stopping.is_set() or (self._stop_event is not None and self._stop_event.is_set())

    # -- loop internals --------------------------------------------------------------------------

    def _resolve(self, resource: Resource | str | None) -> list[Resource]:
        if resource is None:
            return list(self.resources)
        try:
            target = Resource(resource)
        except ValueError:
            raise ValueError(
                f"unknown resource {resource!r}; this collector syncs: {', '.join(self.resources)}"
            ) from None
        if target not in self.resources:
            raise ValueError(
                f"provider {self.client.provider} does not collect {target.value}; "
                f"it syncs: {', '.join(self.resources)}"
            )
        return [target]

    async def _prepare(self, stop: asyncio.Event) -> bool:
        """Create the topics, retrying while the bus is unreachable (the process stays up and
        reports not-ready rather than crash-looping)."""
        delay = 1.0
        while not stop.is_set():
            try:
                await self.ensure_topics()
            except Exception as exc:
                logger.warning(
                    "cannot ensure the organization's topics yet; retrying",
                    extra={**self._log, "error": repr(exc), "retry_in": delay},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(60.0, delay * 2)
                continue
            self.status.ready = True
            return True
        return False

    def _start_round(self, due: Due) -> None:
        task = asyncio.create_task(self._round(due), name=f"collect-{due.resource.value}")
        self._rounds[due.resource] = task

        def finished(done: asyncio.Task[RoundResult], resource: Resource = due.resource) -> None:
            if self._rounds.get(resource) is done:
                del self._rounds[resource]
            if not done.cancelled() and done.exception() is not None:
                logger.error(
                    "collection round crashed",
                    exc_info=done.exception(),
                    extra={**self._log, "resource": resource.value},
                )
            self._wake.set()

        task.add_done_callback(finished)

    async def _drain(self) -> None:
        tasks = list(self._rounds.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self._shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning(
                "syncs did not finish within the shutdown grace period; cancelled",
                extra={**self._log, "count": len(pending)},
            )
            await asyncio.gather(*pending, return_exceptions=True)

    async def _list_scopes(self) -> list[ScopeRef]:
        async with self._scope_lock:
            now = self._clock()
            if self._scope_cache and now - self._scope_cache[0] < self._scope_cache_seconds:
                return self._scope_cache[1]
            scopes = await self.client.list_scopes()
            self._scope_cache = (now, scopes)
            return scopes

    async def _round(self, due: Due) -> RoundResult:
        resource = due.resource
        try:
            scopes = await self._list_scopes()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(ALL_SCOPES, resource, exc)
            self.status.round_finished(resource, any_success=False)
            await self._report_status()
            return RoundResult(resource, 0, 0, 1, 0)
        self._resolved(ALL_SCOPES, None)
        if due.scopes is not None and ALL_SCOPES not in due.scopes:
            wanted = {name.lower() for name in due.scopes}
            scopes = [s for s in scopes if s.name.lower() in wanted or s.id in due.scopes]
        outcomes = await asyncio.gather(*(self._sync_scope(scope, resource) for scope in scopes))
        succeeded = sum(1 for ok, _ in outcomes if ok)
        events = sum(count for _, count in outcomes)
        self.status.round_finished(resource, any_success=succeeded > 0 or not scopes)
        await self._report_status()
        return RoundResult(resource, len(scopes), succeeded, len(scopes) - succeeded, events)

    async def _sync_scope(self, scope: ScopeRef, resource: Resource) -> tuple[bool, int]:
        """One (scope, resource): returns (succeeded, events published)."""
        async with self._semaphore:
            if self.stopping:
                return False, 0
            started = time.monotonic()
            self.status.sync_started(scope.name, resource)
            events = 0
            try:
                events = await self._collect(scope, resource)
            except asyncio.CancelledError:
                self.status.state(scope.name, resource).in_progress = False
                raise
            except Exception as exc:
                self._failed(scope.name, resource, exc)
                self._notify(SyncProgress(scope.name, resource, events, done=True, error=str(exc)))
                return False, events
            finally:
                self._update_rate_limit()
            self.scheduler.succeeded(resource, scope.name)
            self.status.sync_succeeded(scope.name, resource, time.monotonic() - started)
            self._resolved(scope.name, resource)
            self._notify(SyncProgress(scope.name, resource, events, done=True))
            return True, events

    async def _collect(self, scope: ScopeRef, resource: Resource) -> int:
        cursor = await self.cursors.load(self.integration.key, scope.id, resource.value)
        batches = self.client.collect(scope, resource, cursor)
        events = 0
        try:
            async for batch in batches:
                events += await self._publish(batch)
                if batch.cursor is not None:
                    await self.cursors.save(self.integration.key, scope.id, resource.value, batch.cursor)
                self.status.events_added(scope.name, resource, len(batch.events))
                self._update_rate_limit()
                self._notify(SyncProgress(scope.name, resource, events))
                if self.stopping:
                    logger.info(
                        "stopping after the current batch",
                        extra={**self._log, "scope": scope.name, "resource": resource.value},
                    )
                    break
        finally:
            close = getattr(batches, "aclose", None)
            if close is not None:
                await close()
        return events

    async def _publish(self, batch: Batch) -> int:
        """Publish a batch and wait until the bus has it all; raises (so the cursor is not saved)
        if any message was not delivered."""
        collected_at = datetime.now(UTC)
        source = self.client.provider
        for data in batch.events:
            envelope = make_event(
                data,
                organization=self.organization,
                integration=self.integration.key,
                source=source,
                collected_at=collected_at,
            )
            await self.bus.publish(
                envelope.topic(self.topic_prefix), message_key(envelope, data), envelope.to_bytes()
            )
        await self.bus.flush()
        return len(batch.events)

    def _failed(self, scope: str, resource: Resource, exc: Exception) -> None:
        problem = as_collector_error(exc)
        if problem is not None:
            # Keyed by the runtime's scope (not `problem.scope`), so the next success resolves it.
            self.status.sync_failed(scope, resource, str(problem), hint=problem.hint, retry_in=None)
            if self.status.report_problem(scope, resource.value, str(problem), problem.hint):
                logger.error(
                    "collector problem: %s",
                    problem,
                    extra={**self._log, "scope": scope, "resource": resource.value, "hint": problem.hint},
                )
            return
        delay = self.scheduler.failed(resource, scope)
        self.status.sync_failed(scope, resource, f"{type(exc).__name__}: {exc}", hint=None, retry_in=delay)
        logger.warning(
            "sync failed; retrying with back-off",
            exc_info=exc,
            extra={
                **self._log,
                "scope": scope,
                "resource": resource.value,
                "retry_in": delay,
                "attempt": self.scheduler.failures(resource, scope),
            },
        )

    def _resolved(self, scope: str, resource: Resource | None) -> None:
        for problem in self.status.resolve_problems(scope, resource.value if resource else None):
            logger.info(
                "collector problem resolved",
                extra={**self._log, "scope": problem.scope, "resource": problem.resource},
            )

    def _notify(self, progress: SyncProgress) -> None:
        if self.progress is None:
            return
        try:
            self.progress(progress)
        except Exception:
            logger.warning("progress callback failed", exc_info=True, extra=self._log)

    def _update_rate_limit(self) -> None:
        """The lowest remaining budget of the client's HTTP clients (any attribute holding one)."""
        best: tuple[int, float | None] | None = None
        for value in vars(self.client).values():
            if isinstance(value, HttpClient) and value.rate_limit.remaining is not None:
                candidate = (value.rate_limit.remaining, value.rate_limit.reset_at)
                if best is None or candidate[0] < best[0]:
                    best = candidate
        if best is not None:
            self.status.set_rate_limit(*best)

    async def _report_status(self) -> None:
        if self.status_reporter is None:
            return
        try:
            await self.status_reporter.report(self.integration.key, self.status.integration_status())
        except Exception:
            logger.warning("status report failed", exc_info=True, extra=self._log)


def describe(results: list[RoundResult]) -> dict[str, Any]:
    """A compact summary of `sync_once` results (for CLI output)."""
    return {r.resource.value: {"scopes": r.scopes, "failed": r.failed, "events": r.events} for r in results}
