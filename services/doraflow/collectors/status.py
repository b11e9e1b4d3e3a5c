"""What a collector knows about its own health: per-resource sync times and counts, the problems a
user must fix, the provider's remaining rate-limit budget — and the Prometheus metrics.

One `CollectorStatus` per runtime feeds three readers: the `/status` endpoint (everything, per
scope), the Integration resource's status (a summary shaped like `core.resources.IntegrationStatus`,
written by whatever `StatusReporter` the process was given — the operator's, later; nothing
Kubernetes-specific lives here), and Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import Counter, Gauge, Histogram

from doraflow.collectors.base import Resource

EVENTS_PUBLISHED = Counter(
    "doraflow_collector_events_published_total", "Events published to the bus", ["integration", "resource"]
)
SYNC_DURATION = Histogram(
    "doraflow_collector_sync_duration_seconds",
    "Time to sync one resource of one scope",
    ["integration", "resource"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
SYNC_ERRORS = Counter(
    "doraflow_collector_sync_errors_total",
    "Failed syncs; kind=problem for what a user must fix, kind=error for unexpected failures",
    ["integration", "resource", "kind"],
)
LAST_SYNC = Gauge(
    "doraflow_collector_last_sync_timestamp_seconds",
    "Unix time of the last completed round of a resource",
    ["integration", "resource"],
)
WEBHOOKS = Counter("doraflow_collector_webhooks_total", "Webhook deliveries received", ["source", "outcome"])


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


@dataclass(slots=True)
class SyncState:
    """One (scope, resource)."""

    in_progress: bool = False
    last_started: datetime | None = None
    last_success: datetime | None = None
    last_events: int = 0
    events_total: int = 0
    syncs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str | None = None
    hint: str | None = None
    next_retry_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inProgress": self.in_progress,
            "lastStarted": _iso(self.last_started),
            "lastSyncTime": _iso(self.last_success),
            "lastEvents": self.last_events,
            "eventsTotal": self.events_total,
            "syncs": self.syncs,
            "failures": self.failures,
            "consecutiveFailures": self.consecutive_failures,
            "lastError": self.last_error,
            "hint": self.hint,
            "nextRetrySeconds": self.next_retry_seconds,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a user must fix, reported once (see `CollectorStatus.report_problem`)."""

    scope: str
    resource: str
    message: str
    hint: str
    since: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "resource": self.resource,
            "message": self.message,
            "hint": self.hint,
            "since": _iso(self.since),
        }


@dataclass(slots=True)
class _Condition:
    status: str = "Unknown"
    reason: str = "Pending"
    message: str = "the first sync has not finished yet"
    since: datetime = field(default_factory=lambda: datetime.now(UTC))


class StatusReporter(Protocol):
    """Receives the Integration-status summary after every round (e.g. to patch the resource)."""

    async def report(self, integration: str, status: dict[str, Any]) -> None: ...


class CollectorStatus:
    def __init__(self, integration: str, provider: str, resources: tuple[Resource, ...]) -> None:
        self.integration = integration
        self.provider = provider
        self.resources = resources
        self.started_at = datetime.now(UTC)
        self.suspended = False
        self.ready = False
        self.rate_limit_remaining: int | None = None
        self.rate_limit_reset_at: datetime | None = None
        self.syncs: dict[tuple[str, Resource], SyncState] = {}
        self.problems: dict[tuple[str, str, str], Problem] = {}
        self.last_round: dict[Resource, datetime] = {}
        self.events_published: dict[Resource, int] = dict.fromkeys(resources, 0)
        self._synced = _Condition()

    def state(self, scope: str, resource: Resource) -> SyncState:
        return self.syncs.setdefault((scope, resource), SyncState())

    # -- transitions, called by the runtime ------------------------------------------------------

    def sync_started(self, scope: str, resource: Resource) -> None:
        state = self.state(scope, resource)
        state.in_progress = True
        state.last_started = datetime.now(UTC)
        state.last_events = 0

    def events_added(self, scope: str, resource: Resource, count: int) -> None:
        state = self.state(scope, resource)
        state.last_events += count
        state.events_total += count
        self.events_published[resource] = self.events_published.get(resource, 0) + count
        EVENTS_PUBLISHED.labels(self.integration, resource.value).inc(count)

    def sync_succeeded(self, scope: str, resource: Resource, seconds: float) -> None:
        state = self.state(scope, resource)
        state.in_progress = False
        state.last_success = datetime.now(UTC)
        state.syncs += 1
        state.consecutive_failures = 0
        state.last_error = state.hint = None
        state.next_retry_seconds = None
        SYNC_DURATION.labels(self.integration, resource.value).observe(seconds)

    def sync_failed(
        self, scope: str, resource: Resource, error: str, *, hint: str | None, retry_in: float | None
    ) -> None:
        state = self.state(scope, resource)
        state.in_progress = False
        state.failures += 1
        state.consecutive_failures += 1
        state.last_error = error
        state.hint = hint
        state.next_retry_seconds = retry_in
        SYNC_ERRORS.labels(self.integration, resource.value, "problem" if hint else "error").inc()

    def report_problem(self, scope: str, resource: str, message: str, hint: str) -> bool:
        """Record a problem; True when it is new (so the caller logs it once), False when the same
        problem was already reported for this scope."""
        key = (scope, resource, message)
        if key in self.problems:
            return False
        self.problems[key] = Problem(scope, resource, message, hint, datetime.now(UTC))
        return True

    def resolve_problems(self, scope: str, resource: str | None = None) -> list[Problem]:
        """Forget the problems of a scope (and resource) that just synced; return them, so the
        caller can log the recovery."""
        keys = [k for k in self.problems if k[0] == scope and resource in (None, k[1])]
        return [self.problems.pop(k) for k in keys]

    def round_finished(self, resource: Resource, *, any_success: bool) -> None:
        if any_success:
            now = datetime.now(UTC)
            self.last_round[resource] = now
            LAST_SYNC.labels(self.integration, resource.value).set(now.timestamp())
        self._update_condition()

    def set_rate_limit(self, remaining: int | None, reset_at: float | None) -> None:
        if remaining is not None:
            self.rate_limit_remaining = remaining
            self.rate_limit_reset_at = datetime.fromtimestamp(reset_at, UTC) if reset_at else None

    # -- views -----------------------------------------------------------------------------------

    def _failing(self) -> list[tuple[str, Resource, SyncState]]:
        return [(s, r, st) for (s, r), st in self.syncs.items() if st.consecutive_failures and not st.hint]

    def _update_condition(self) -> None:
        failing = self._failing()
        if self.problems:
            first = next(iter(self.problems.values()))
            new = ("False", "CollectorError", f"{first.scope}: {first.message} — {first.hint}")
        elif failing:
            scope, resource, state = failing[0]
            new = ("False", "SyncFailed", f"{scope} {resource.value}: {state.last_error}")
        elif self.last_round:
            new = ("True", "Synced", "every scope synced")
        else:
            return
        if (self._synced.status, self._synced.reason, self._synced.message) != new:
            changed_status = self._synced.status != new[0]
            self._synced.status, self._synced.reason, self._synced.message = new
            if changed_status:
                self._synced.since = datetime.now(UTC)

    def message(self) -> str:
        if self.suspended:
            return "suspended: nothing is collected"
        if self.problems:
            parts = [f"{p.scope}: {p.message} ({p.hint})" for p in self.problems.values()]
            more = len(parts) - 3
            return "; ".join(parts[:3]) + (f"; and {more} more" if more > 0 else "")
        failing = self._failing()
        if failing:
            return f"{len(failing)} sync(s) failing, retrying with back-off; see /status"
        if not self.last_round:
            return "first sync in progress"
        return "ok"

    def integration_status(self) -> dict[str, Any]:
        """The summary for the Integration resource (camelCase, validates as `IntegrationStatus`)."""
        resources: dict[str, dict[str, Any]] = {}
        for resource in self.resources:
            errors = [st.last_error for (_, r), st in self.syncs.items() if r is resource and st.last_error]
            resources[resource.value] = {
                "lastSyncTime": _iso(self.last_round.get(resource)),
                "events": self.events_published.get(resource, 0),
                "lastError": errors[0] if errors else None,
            }
        latest = max(self.last_round.values(), default=None)
        return {
            "conditions": [
                {
                    "type": "Synced",
                    "status": self._synced.status,
                    "reason": self._synced.reason,
                    "message": self._synced.message[:32768],
                    "lastTransitionTime": _iso(self._synced.since),
                }
            ],
            "lastSyncTime": _iso(latest),
            "resources": resources,
            "rateLimitRemaining": self.rate_limit_remaining,
            "message": self.message(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, for `/status`."""
        scopes: dict[str, dict[str, Any]] = {}
        for (scope, resource), state in sorted(self.syncs.items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
            scopes.setdefault(scope, {})[resource.value] = state.to_dict()
        return {
            "integration": self.integration,
            "provider": self.provider,
            "startedAt": _iso(self.started_at),
            "ready": self.ready,
            "suspended": self.suspended,
            "rateLimitRemaining": self.rate_limit_remaining,
            "rateLimitResetAt": _iso(self.rate_limit_reset_at),
            "problems": [p.to_dict() for p in self.problems.values()],
            "scopes": scopes,
            "summary": self.integration_status(),
        }
