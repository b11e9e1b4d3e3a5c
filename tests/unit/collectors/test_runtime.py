"""The collector runtime with a scripted client: cursor discipline, error handling, concurrency,
stopping, progress and status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.runtime import CollectorRuntime, SyncProgress
from doraflow.core.bus import MemoryBus, TopicSpec
from doraflow.core.events import organization_topics, parse_event
from doraflow.core.http import AuthenticationError, HttpClient
from doraflow.core.resources import Integration, IntegrationStatus, KafkaTopicSettings
from tests.unit.collectors.helpers import FakeClient, JournalBus, JournalCursors, batch, integration

C, P = Resource.COMMITS, Resource.PULL_REQUESTS
KEY = "doraflow/acme-github"


async def make_runtime(
    client: FakeClient,
    journal: list[tuple[Any, ...]] | None = None,
    **options: Any,
) -> tuple[CollectorRuntime, JournalBus, JournalCursors]:
    journal = journal if journal is not None else []
    bus, cursors = JournalBus(journal), JournalCursors(journal)
    await bus.start()
    runtime = CollectorRuntime(
        client.integration, client, bus, cursors, organization="acme", topic_prefix="doraflow", **options
    )
    return runtime, bus, cursors


async def published(bus: MemoryBus) -> list[Any]:
    consumer = bus.consumer("test", pattern=r"doraflow\.acme\..*")
    await consumer.start()
    try:
        return await consumer.getmany(max_records=10_000, timeout_ms=0)
    finally:
        await consumer.stop()


async def test_a_batch_is_published_then_flushed_then_its_cursor_saved() -> None:
    client = FakeClient(
        integration(),
        scripts={
            ("acme/api", C): [
                [batch("acme/api", 1, 2, cursor={"page": 1}), batch("acme/api", 3, cursor={"page": 2})]
            ]
        },
    )
    journal: list[tuple[Any, ...]] = []
    runtime, bus, _ = await make_runtime(client, journal)
    (result,) = await runtime.sync_once(C)
    assert (result.scopes, result.succeeded, result.events) == (1, 1, 3)
    topic = "doraflow.acme.git.commits"
    assert journal == [
        ("publish", topic, "acme/acme/api"),
        ("publish", topic, "acme/acme/api"),
        ("flush",),
        ("save", "id-acme/api", "commits", {"page": 1}),
        ("publish", topic, "acme/acme/api"),
        ("flush",),
        ("save", "id-acme/api", "commits", {"page": 2}),
    ]
    messages = await published(bus)
    envelopes = [parse_event(m.value).envelope for m in messages]
    assert {(e.organization, e.integration, e.source, e.schema_) for e in envelopes} == {
        ("acme", KEY, "github", "git.commit/v1")
    }
    assert len({e.event_id for e in envelopes}) == 3
    # The next sync starts from the saved cursor.
    await runtime.sync_once(C)
    assert client.calls[-1] == ("acme/api", C, {"page": 2})


async def test_a_failing_flush_does_not_advance_the_cursor_and_is_retried_with_backoff() -> None:
    client = FakeClient(
        integration(), scripts={("acme/api", C): [[batch("acme/api", 1, cursor={"page": 1})]]}
    )
    runtime, bus, cursors = await make_runtime(client)
    bus.fail_flush = ConnectionError("broker unreachable")
    (result,) = await runtime.sync_once(C)
    assert result.failed == 1
    assert cursors.saves == []
    state = runtime.status.state("acme/api", C)
    assert state.last_error == "ConnectionError: broker unreachable"
    assert state.next_retry_seconds == 30
    assert runtime.scheduler.failures(C, "acme/api") == 1
    bus.fail_flush = None
    await runtime.sync_once(C)
    assert client.calls[-1][2] is None  # the retry starts again from the old (no) cursor
    assert [s[3] for s in cursors.saves] == [{"page": 1}]
    assert runtime.scheduler.failures(C, "acme/api") == 0


async def test_a_failing_publish_does_not_advance_the_cursor() -> None:
    client = FakeClient(
        integration(), scripts={("acme/api", C): [[batch("acme/api", 1, cursor={"page": 1})]]}
    )
    runtime, bus, cursors = await make_runtime(client)
    await runtime.ensure_topics()
    bus.fail_publish = OSError("send failed")
    await runtime.sync_once(C)
    assert cursors.saves == []


async def test_a_batch_without_cursor_keeps_the_previous_one() -> None:
    client = FakeClient(
        integration(),
        scripts={("acme/api", C): [[batch("acme/api", 1, cursor={"page": 1}), batch("acme/api", 2)]]},
    )
    runtime, _, cursors = await make_runtime(client)
    await runtime.sync_once(C)
    assert await cursors.load(KEY, "id-acme/api", "commits") == {"page": 1}
    assert runtime.status.state("acme/api", C).last_events == 2


async def test_a_collector_error_is_reported_once_and_the_other_scopes_keep_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="doraflow.collectors")
    problem = CollectorError(
        "repository acme/gone not found", hint="remove it from spec.scope", scope="acme/gone"
    )
    client = FakeClient(
        integration(),
        scopes=("acme/gone", "acme/api"),
        scripts={
            ("acme/gone", C): [[problem], [problem], [problem], [batch("acme/gone", 9)]],
            ("acme/api", C): [[batch("acme/api", 1)]],
        },
    )
    runtime, _, _ = await make_runtime(client)
    for _ in range(3):
        (result,) = await runtime.sync_once(C)
        assert (result.succeeded, result.failed) == (1, 1)
    reports = [r for r in caplog.records if r.getMessage().startswith("collector problem:")]
    assert len(reports) == 1
    assert reports[0].hint == "remove it from spec.scope"  # type: ignore[attr-defined]
    assert reports[0].scope == "acme/gone"  # type: ignore[attr-defined]
    assert runtime.status.events_published[C] == 3  # acme/api synced every time
    status = runtime.status.to_dict()
    assert [(p["scope"], p["hint"]) for p in status["problems"]] == [
        ("acme/gone", "remove it from spec.scope")
    ]
    summary = runtime.status.integration_status()
    assert summary["conditions"][0]["status"] == "False"
    assert summary["conditions"][0]["reason"] == "CollectorError"
    assert "remove it from spec.scope" in summary["message"]
    assert runtime.scheduler.failures(C, "acme/gone") == 0  # a user's problem is not retried early

    await runtime.sync_once(C)  # fixed
    assert runtime.status.problems == {}
    assert any(r.getMessage() == "collector problem resolved" for r in caplog.records)
    assert runtime.status.integration_status()["conditions"][0]["status"] == "True"


async def test_unwrapped_http_auth_errors_are_problems_with_a_hint() -> None:
    error = AuthenticationError("GET /user: HTTP 401: Bad credentials", status=401)
    client = FakeClient(integration(), scripts={("acme/api", C): [[error]]})
    runtime, _, _ = await make_runtime(client)
    await runtime.sync_once(C)
    (problem,) = runtime.status.problems.values()
    assert "renew the token" in problem.hint
    assert runtime.status.state("acme/api", C).hint == problem.hint


async def test_listing_scopes_failing_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="doraflow.collectors")
    error = CollectorError("bad credentials", hint="renew the token")
    client = FakeClient(integration(), list_error=error)
    runtime, _, _ = await make_runtime(client, scope_cache_seconds=0)
    await runtime.sync_once(C)
    await runtime.sync_once(C)
    assert sum(r.getMessage().startswith("collector problem") for r in caplog.records) == 1
    assert [p.scope for p in runtime.status.problems.values()] == ["*"]


async def test_unexpected_errors_are_logged_with_their_retry(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeClient(
        integration(), scripts={("acme/api", C): [[batch("acme/api", 1), RuntimeError("boom")]]}
    )
    runtime, _, _ = await make_runtime(client)
    await runtime.sync_once(C)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("sync failed")]
    assert record.retry_in == 30  # type: ignore[attr-defined]
    assert runtime.status.integration_status()["conditions"][0]["reason"] == "SyncFailed"


async def test_only_missing_topics_are_created_with_the_organization_settings() -> None:
    client = FakeClient(integration())
    runtime, bus, _ = await make_runtime(
        client, topic_settings=KafkaTopicSettings(partitions=3, retention_ms=120_000)
    )
    existing = "doraflow.acme.git.commits"
    await bus.ensure_topics([TopicSpec(existing, partitions=1, retention_ms=999_000)])
    created = await runtime.ensure_topics()
    assert set(created) == set(organization_topics("doraflow", "acme")) - {existing}
    assert bus._topics[existing].retention_ms == 999_000  # the operator's topic is left alone
    assert len(bus._topics[existing].partitions) == 1
    assert len(bus._topics["doraflow.acme.dlq"].partitions) == 3


async def test_progress_is_reported_per_batch_and_at_the_end() -> None:
    updates: list[SyncProgress] = []
    client = FakeClient(
        integration(), scripts={("acme/api", C): [[batch("acme/api", 1, 2), batch("acme/api", 3)]]}
    )
    runtime, _, _ = await make_runtime(client, progress=updates.append)
    await runtime.sync_once(C)
    assert [(u.scope, u.resource, u.events, u.done) for u in updates] == [
        ("acme/api", C, 2, False),
        ("acme/api", C, 3, False),
        ("acme/api", C, 3, True),
    ]


async def test_sync_now_rejects_resources_the_provider_does_not_collect() -> None:
    runtime, _, _ = await make_runtime(FakeClient(integration()))
    with pytest.raises(ValueError, match="does not collect issues"):
        runtime.sync_now("issues")
    with pytest.raises(ValueError, match="unknown resource"):
        runtime.sync_now("nonsense")
    assert runtime.sync_now() == [C, P]


async def test_suspended_integration_collects_nothing() -> None:
    client = FakeClient(integration(suspend=True), scripts={("acme/api", C): [[batch("acme/api", 1)]]})
    runtime, bus, _ = await make_runtime(client)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert client.calls == []
    assert await bus.list_topics() == set()
    assert runtime.status.to_dict()["suspended"] is True
    assert runtime.status.integration_status()["message"].startswith("suspended")


async def wait_for(predicate: Any) -> None:
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 - polls state the fake client records
            await asyncio.sleep(0.01)


async def test_run_syncs_at_start_then_on_demand_then_stops() -> None:
    client = FakeClient(integration(), scripts={("acme/api", C): [[batch("acme/api", 1, cursor={"n": 1})]]})
    reports: list[dict[str, Any]] = []

    class Reporter:
        async def report(self, integration: str, status: dict[str, Any]) -> None:
            assert integration == KEY
            reports.append(status)

    runtime, _, _ = await make_runtime(client, status_reporter=Reporter())
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await wait_for(lambda: len(client.calls) == 2)  # commits and pull requests at start
    assert runtime.ready
    assert runtime.sync_now(P, "acme/api") == [P]
    await wait_for(lambda: len(client.calls) == 3)
    assert client.calls[-1][:2] == ("acme/api", P)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert reports
    IntegrationStatus.model_validate(reports[-1])  # the summary is a valid Integration status


async def test_stop_finishes_the_current_batch_saves_its_cursor_and_goes_no_further() -> None:
    batches: list[Batch | BaseException] = [batch("acme/api", n, cursor={"n": n}) for n in (1, 2, 3)]
    client = FakeClient(integration(), scripts={("acme/api", C): [batches]})
    stop = asyncio.Event()

    def progress(update: SyncProgress) -> None:
        if update.events == 1:
            stop.set()

    runtime, _, cursors = await make_runtime(client, progress=progress)
    await asyncio.wait_for(runtime.run(stop), 5)
    assert [s[3] for s in cursors.saves if s[2] == "commits"] == [{"n": 1}]


async def test_scopes_are_collected_concurrently_up_to_max_concurrency() -> None:
    running = 0
    peak = 0

    class SlowClient(FakeClient):
        async def collect(
            self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
        ) -> AsyncIterator[Batch]:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.02)
            running -= 1
            yield batch(scope.name, 1)

    client = SlowClient(integration(maxConcurrency=2), scopes=[f"acme/r{i}" for i in range(6)])
    runtime, _, _ = await make_runtime(client)
    (result,) = await runtime.sync_once(C)
    assert result.succeeded == 6
    assert peak == 2


async def test_rate_limit_budget_comes_from_the_clients_http_client() -> None:
    client = FakeClient(integration(), scripts={("acme/api", C): [[batch("acme/api", 1)]]})
    http = HttpClient("https://api.github.com")
    http.rate_limit.remaining = 4321
    client.http = http  # type: ignore[attr-defined]
    try:
        runtime, _, _ = await make_runtime(client)
        await runtime.sync_once(C)
    finally:
        await http.aclose()
    assert runtime.status.rate_limit_remaining == 4321
    assert runtime.status.integration_status()["rateLimitRemaining"] == 4321


async def test_cursors_round_trip_as_json() -> None:
    store = MemoryCursorStore()
    await store.save(KEY, "s", "commits", {"tips": {"main": "abc"}, "n": 1})
    loaded = await store.load(KEY, "s", "commits")
    assert loaded == {"tips": {"main": "abc"}, "n": 1}
    assert loaded is not None
    loaded["n"] = 2  # a copy: mutating it does not change the store
    assert await store.load(KEY, "s", "commits") == {"tips": {"main": "abc"}, "n": 1}
    with pytest.raises(TypeError):
        await store.save(KEY, "s", "commits", {"bad": {1, 2}})


def test_status_json_is_serialisable() -> None:
    client = FakeClient(integration())
    bus = MemoryBus()
    runtime = CollectorRuntime(
        client.integration, client, bus, MemoryCursorStore(), organization="acme", topic_prefix="doraflow"
    )
    runtime.status.sync_failed("acme/api", C, "boom", hint=None, retry_in=30)
    assert (
        orjson.loads(orjson.dumps(runtime.status.to_dict()))["scopes"]["acme/api"]["commits"]["failures"] == 1
    )
    Integration.model_validate(
        {**client.integration.model_dump(by_alias=True), "status": runtime.status.integration_status()}
    )
