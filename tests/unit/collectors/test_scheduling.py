"""Schedules, triggers, debouncing and back-off, on a fake clock."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from doraflow.collectors.base import Resource
from doraflow.collectors.scheduling import Due, Scheduler, resource_intervals
from tests.unit.collectors.helpers import FakeClock, integration

C, P = Resource.COMMITS, Resource.PULL_REQUESTS


def scheduler(clock: FakeClock) -> Scheduler:
    return Scheduler({C: timedelta(hours=1), P: timedelta(minutes=30)}, clock=clock, retry_base=30)


def test_intervals_come_from_the_spec_for_supported_resources_only() -> None:
    spec = integration(schedules={"commits": "2h", "pullRequests": "10m"}).spec
    intervals = resource_intervals(spec, (C, P, Resource.DEPLOYMENTS))
    assert intervals == {
        C: timedelta(hours=2),
        P: timedelta(minutes=10),
        Resource.DEPLOYMENTS: timedelta(minutes=30),
    }
    assert Resource.ISSUES not in intervals  # the client does not collect issues


def test_every_resource_runs_at_start_then_on_its_interval() -> None:
    clock = FakeClock()
    s = scheduler(clock)
    assert s.take_due() == [Due(C), Due(P)]
    assert s.take_due() == []
    assert s.seconds_until_next() == 1800
    clock.advance(1800)
    assert s.take_due() == [Due(P)]
    clock.advance(1800)
    assert s.take_due() == [Due(C), Due(P)]


def test_a_busy_resource_is_not_started_twice_and_its_request_waits() -> None:
    clock = FakeClock()
    s = scheduler(clock)
    s.take_due()
    s.trigger(C)
    assert s.take_due(busy={C}) == []
    assert s.seconds_until_next(busy={C}) == 1800  # only P counts while C runs
    assert s.take_due() == [Due(C)]


def test_trigger_all_and_per_scope() -> None:
    clock = FakeClock()
    s = scheduler(clock)
    s.take_due()
    s.trigger()  # everything
    assert s.take_due() == [Due(C), Due(P)]
    s.trigger(P, "acme/api")
    s.trigger(P, "acme/web")
    assert s.take_due() == [Due(P, frozenset({"acme/api", "acme/web"}))]


def test_webhook_triggers_are_debounced_to_the_first_deadline() -> None:
    clock = FakeClock()
    s = scheduler(clock)
    s.take_due()
    s.trigger(C, "acme/api", delay=5)
    clock.advance(3)
    s.trigger(C, "acme/api", delay=5)  # a burst: keeps the first deadline, is not pushed back
    assert s.take_due() == []
    assert s.seconds_until_next() == pytest.approx(2)
    clock.advance(2)
    assert s.take_due() == [Due(C, frozenset({"acme/api"}))]
    assert s.take_due() == []


def test_failures_back_off_exponentially_capped_at_the_interval_and_reset_on_success() -> None:
    clock = FakeClock()
    s = scheduler(clock)
    s.take_due()
    delays = [s.failed(P, "acme/api") for _ in range(8)]
    assert delays == [30, 60, 120, 240, 480, 960, 1800, 1800]
    assert s.failures(P, "acme/api") == 8
    s.succeeded(P, "acme/api")
    assert s.failures(P, "acme/api") == 0
    assert s.failed(P, "acme/api") == 30
    clock.advance(30)
    assert s.take_due() == [Due(P, frozenset({"acme/api"}))]


def test_a_full_round_absorbs_pending_scope_requests() -> None:
    clock = FakeClock()
    s = scheduler(clock)
    s.take_due()
    s.failed(C, "acme/api")
    s.trigger(C, "acme/web", delay=10)
    s.trigger(C)
    assert s.take_due() == [Due(C)]
    clock.advance(60)
    assert s.take_due() == []


def test_nothing_scheduled_means_sleep_forever() -> None:
    s = Scheduler({}, clock=FakeClock())
    assert s.take_due() == []
    assert math.isinf(s.seconds_until_next())
    with pytest.raises(KeyError):
        s.trigger(C)
