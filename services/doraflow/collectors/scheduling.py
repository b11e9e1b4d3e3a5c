"""When each resource is collected: its interval, manual and webhook triggers, and back-off.

Pure bookkeeping with an injectable clock, so the rules are unit-tested without sleeping:

* every resource runs once at start, then every `interval` measured from the start of its previous
  round (a round longer than the interval is followed at once by the next, never overlapped);
* `trigger` asks for a round now or after a delay. Triggers coalesce: a pending request keeps its
  earliest deadline, so a burst of webhooks for one repository yields one sync a few seconds after
  the first, not one per push, and a steady stream of pushes cannot postpone it forever;
* a (scope, resource) that failed unexpectedly (network, 5xx, a bug) is retried after an exponential
  back-off (30 s, 1 min, 2 min, … capped at the resource's interval) without waiting for the next
  regular round; a success resets it. Problems a user must fix (`CollectorError`) are not retried
  early: the next regular round tries again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from doraflow.collectors.base import Resource
from doraflow.core.resources import IntegrationSpec, parse_duration

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Due:
    """A round to run: `scopes` None means every scope (a regular or manual full round)."""

    resource: Resource
    scopes: frozenset[str] | None = None


def resource_intervals(spec: IntegrationSpec, supported: Iterable[Resource]) -> dict[Resource, timedelta]:
    """The schedule of every resource the client supports, from `spec.schedules`; resources the
    client does not collect are left out (a GitHub integration has an `issues` schedule too)."""
    intervals: dict[Resource, timedelta] = {}
    for resource in supported:
        value = getattr(spec.schedules, resource.value, None)
        if isinstance(value, str):
            intervals[resource] = parse_duration(value)
    return intervals


class Scheduler:
    def __init__(
        self,
        intervals: Mapping[Resource, timedelta],
        *,
        clock: Clock = time.monotonic,
        retry_base: float = 30.0,
    ) -> None:
        self._clock = clock
        self._interval = {r: max(1.0, i.total_seconds()) for r, i in intervals.items()}
        now = clock()
        self._next: dict[Resource, float] = dict.fromkeys(self._interval, now)
        self._full_requests: dict[Resource, float] = {}
        self._scope_requests: dict[Resource, dict[str, float]] = {r: {} for r in self._interval}
        self._retry_at: dict[Resource, dict[str, float]] = {r: {} for r in self._interval}
        self._failures: dict[tuple[Resource, str], int] = {}
        self._retry_base = retry_base

    @property
    def resources(self) -> tuple[Resource, ...]:
        return tuple(self._interval)

    def interval(self, resource: Resource) -> float:
        return self._interval[resource]

    def trigger(self, resource: Resource | None = None, scope: str | None = None, delay: float = 0.0) -> None:
        """Ask for a round of `resource` (None: every resource) for `scope` (None: every scope)."""
        at = self._clock() + max(0.0, delay)
        for r in [resource] if resource is not None else list(self._interval):
            if r not in self._interval:
                raise KeyError(f"{r} is not scheduled")
            if scope is None:
                self._full_requests[r] = min(self._full_requests.get(r, math.inf), at)
            else:
                requests = self._scope_requests[r]
                requests[scope] = min(requests.get(scope, math.inf), at)

    def take_due(self, busy: Collection[Resource] = ()) -> list[Due]:
        """The rounds to start now, consuming the requests they satisfy. A resource in `busy` (its
        round still running) is left alone; its requests stay pending for after that round."""
        now = self._clock()
        due: list[Due] = []
        for resource in self._interval:
            if resource in busy:
                continue
            if self._next[resource] <= now or self._full_requests.get(resource, math.inf) <= now:
                self._next[resource] = now + self._interval[resource]
                self._full_requests.pop(resource, None)
                self._scope_requests[resource].clear()
                self._retry_at[resource].clear()
                due.append(Due(resource))
                continue
            scopes = self._pop_due(self._scope_requests[resource], now) | self._pop_due(
                self._retry_at[resource], now
            )
            if scopes:
                due.append(Due(resource, frozenset(scopes)))
        return due

    @staticmethod
    def _pop_due(pending: dict[str, float], now: float) -> set[str]:
        ready = {scope for scope, at in pending.items() if at <= now}
        for scope in ready:
            del pending[scope]
        return ready

    def seconds_until_next(self, busy: Collection[Resource] = ()) -> float:
        """How long the runtime may sleep before something is due (∞ if nothing is scheduled)."""
        now = self._clock()
        times: list[float] = []
        for resource in self._interval:
            if resource in busy:
                continue
            times.append(self._next[resource])
            times.append(self._full_requests.get(resource, math.inf))
            times.extend(self._scope_requests[resource].values())
            times.extend(self._retry_at[resource].values())
        return max(0.0, min(times, default=math.inf) - now)

    def failed(self, resource: Resource, scope: str) -> float:
        """Record an unexpected failure; return the back-off before the retry."""
        count = self._failures.get((resource, scope), 0) + 1
        self._failures[(resource, scope)] = count
        delay = min(self._interval[resource], self._retry_base * 2.0 ** (count - 1))
        retry = self._retry_at[resource]
        retry[scope] = min(retry.get(scope, math.inf), self._clock() + delay)
        return delay

    def succeeded(self, resource: Resource, scope: str) -> None:
        self._failures.pop((resource, scope), None)
        self._retry_at[resource].pop(scope, None)

    def failures(self, resource: Resource, scope: str) -> int:
        return self._failures.get((resource, scope), 0)
