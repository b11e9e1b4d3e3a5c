"""Local git repository → collector runtime → the real Kafka broker, with cursors in the real
PostgreSQL: topics, keys, stable event ids, no re-publication, a restart in the middle of a sync
that loses nothing, and branches, tags and contributors through the processor into PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from doraflow.collectors.base import Resource
from doraflow.collectors.cursors import DatabaseCursorStore, MemoryCursorStore
from doraflow.collectors.git.local import LocalGitClient
from doraflow.collectors.runtime import CollectorRuntime, SyncProgress
from doraflow.collectors.service import run_collector
from doraflow.core import migrate
from doraflow.core.bus import EventBus, Message, create_bus
from doraflow.core.cache import MemoryCache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.events import DeploymentData, ParsedEvent, parse_event
from doraflow.core.resources import Integration, KafkaTopicSettings
from doraflow.core.settings import Settings
from doraflow.processor.consumer import Processor
from tests.integration.collectors.test_local_git import ALICE, BOB, RELEASER, Repo
from tests.integration.processor.conftest import query
from tests.integration.processor.test_pipeline import config, run_until
from tests.testenv.common import free_port

pytestmark = pytest.mark.integration

COMMITS = 23
BATCH = 5
TOPICS = KafkaTopicSettings(partitions=3, replication_factor=1)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    repo = Repo(tmp_path_factory.mktemp("kafka-git") / "payments")
    for n in range(COMMITS):
        repo.write(f"src/module_{n % 4}.py", f"value = {n}\n" * (n + 1))
        repo.commit(f"Change {n}", ALICE if n % 2 else BOB, f"2024-02-{n + 1:02d}T10:00:00+01:00")
        if n in (7, 15):
            repo.git(
                "tag", "-a", f"v1.{n}.0", "-m", "release", who=RELEASER, when=f"2024-02-{n + 1:02d}T18:00:00Z"
            )
    repo.git("tag", "v2.0.0-beta")  # a pre-release: not a deployment
    return repo


def make_integration(repo: Repo) -> Integration:
    return Integration.model_validate(
        {
            "metadata": {"name": "payments", "namespace": "team"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "git",
                "scope": {"repositories": [str(repo.path)]},
                "backfillDays": 3650,
            },
        }
    )


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[EventBus]:
    created = create_bus(kafka_bootstrap, linger_ms=2)
    await created.start()
    try:
        yield created
    finally:
        await created.stop()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=database_url)
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def runtime(repo: Repo, bus: EventBus, cursors: Any, prefix: str, progress: Any = None) -> CollectorRuntime:
    integration = make_integration(repo)
    client = LocalGitClient(integration, None, batch_size=BATCH)
    return CollectorRuntime(
        integration,
        client,
        bus,
        cursors,
        organization="acme",
        topic_prefix=prefix,
        progress=progress,
        topic_settings=TOPICS,
    )


async def read(bus: EventBus, topics: list[str], expected: int, settle_s: float = 2.0) -> list[Message]:
    """Everything on `topics` (a fresh consumer group): wait for `expected` messages, then keep
    polling for `settle_s` to make sure no more arrive."""
    consumer = bus.consumer(f"test-{uuid.uuid4().hex[:8]}", topics=topics)
    await consumer.start()
    messages: list[Message] = []
    try:
        deadline = time.monotonic() + 60
        while len(messages) < expected and time.monotonic() < deadline:
            messages.extend(await consumer.getmany(max_records=500, timeout_ms=500))
        settle = time.monotonic() + settle_s
        while time.monotonic() < settle:
            messages.extend(await consumer.getmany(max_records=500, timeout_ms=250))
    finally:
        await consumer.stop()
    return messages


def parsed(messages: list[Message]) -> list[ParsedEvent]:
    return [parse_event(m.value) for m in messages]


async def test_events_land_on_the_org_topics_keyed_by_repository_and_are_not_republished(
    repository: Repo, bus: EventBus
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}.acme.git.commits", f"{prefix}.acme.git.deployments"]
    cursors = MemoryCursorStore()
    first = runtime(repository, bus, cursors, prefix)
    results = await first.sync_once()
    assert [(r.resource, r.events) for r in results] == [
        (Resource.COMMITS, COMMITS),
        (Resource.DEPLOYMENTS, 2),
        (Resource.BRANCHES_AND_TAGS, 4),  # main and three tags
        (Resource.CONTRIBUTORS, 2),
    ]
    assert set(topics) <= await bus.list_topics()

    messages = await read(bus, topics, COMMITS + 2)
    assert len(messages) == COMMITS + 2
    assert {m.key for m in messages} == {"acme/payments"}
    by_topic = {t: [m for m in messages if m.topic == t] for t in topics}
    assert len(by_topic[topics[0]]) == COMMITS
    assert len({m.partition for m in by_topic[topics[0]]}) == 1  # one key, one partition, in order
    events = parsed(messages)
    assert {e.envelope.schema_ for e in events} == {"git.commit/v1", "git.deployment/v1"}
    assert {e.envelope.integration for e in events} == {"team/payments"}
    deployments = [e.data for e in events if isinstance(e.data, DeploymentData)]
    assert sorted(d.deployment_id for d in deployments) == ["v1.15.0", "v1.7.0"]
    assert all(d.natural_key().endswith(f":{d.deployment_id}") for d in deployments)  # scoped by repository
    ids = {e.envelope.event_id for e in events}
    assert len(ids) == COMMITS + 2

    # Again with the saved cursors: no commit or deployment is published again (refs and
    # contributors are listed in full every time, with the same event ids).
    again = await first.sync_once()
    assert [r.events for r in again] == [0, 0, 4, 2]
    assert len(await read(bus, topics, COMMITS + 2, settle_s=1.0)) == COMMITS + 2

    # A collector starting from scratch (no cursors) produces the very same event ids.
    other = f"t{uuid.uuid4().hex[:8]}"
    await runtime(repository, bus, MemoryCursorStore(), other).sync_once()
    replay = parsed(
        await read(bus, [f"{other}.acme.git.commits", f"{other}.acme.git.deployments"], COMMITS + 2)
    )
    assert {e.envelope.event_id for e in replay} == ids


async def test_a_restart_mid_sync_resumes_from_the_cursor_without_losing_commits(
    repository: Repo, kafka_bootstrap: str, engine: AsyncEngine
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.acme.git.commits"
    sessions = create_session_factory(engine)

    # First process: stops (as on SIGTERM) right after its first batch of commits.
    stop = asyncio.Event()

    def progress(update: SyncProgress) -> None:
        if update.resource is Resource.COMMITS and update.events >= BATCH:
            stop.set()

    bus = create_bus(kafka_bootstrap, linger_ms=2)
    await bus.start()
    try:
        first = runtime(repository, bus, DatabaseCursorStore(sessions), prefix, progress)
        await asyncio.wait_for(first.run(stop), 60)
        assert first.status.state("payments", Resource.COMMITS).last_events == BATCH
    finally:
        await bus.stop()
    saved = await DatabaseCursorStore(sessions).load("team/payments", str(repository.path), "commits")
    assert saved is not None
    assert saved["walk"]["done"] == BATCH

    # Second process: new bus, new client, the same database.
    bus = create_bus(kafka_bootstrap, linger_ms=2)
    await bus.start()
    try:
        second = runtime(repository, bus, DatabaseCursorStore(sessions), prefix)
        results = await second.sync_once(Resource.COMMITS)
        assert results[0].events == COMMITS - BATCH
        messages = await read(bus, [topic], COMMITS)
    finally:
        await bus.stop()
    shas = [e.data.natural_key() for e in parsed(messages)]
    assert len(shas) == COMMITS  # every commit, each exactly once
    assert len(set(shas)) == COMMITS


async def test_run_collector_serves_status_and_sync_and_stops(
    repository: Repo, bus: EventBus, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    port = free_port()
    stop = asyncio.Event()
    updates: list[SyncProgress] = []
    task = asyncio.create_task(
        run_collector(
            Settings(kafka_topic_prefix=prefix),
            make_integration(repository),
            None,
            bus,
            MemoryCursorStore(),
            host="127.0.0.1",
            port=port,
            stop=stop,
            progress=updates.append,
            topic_settings=TOPICS,
            webhook_secret="s3cret",
        )
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 60
            status: dict[str, Any] = {}
            while time.monotonic() < deadline:
                try:
                    status = (await http.get("/status")).json()
                except httpx.TransportError:
                    status = {}
                done = status.get("summary", {}).get("resources", {})
                if all(done.get(r, {}).get("lastSyncTime") for r in ("commits", "deployments")):
                    break
                await asyncio.sleep(0.2)
            assert status["summary"]["resources"]["commits"]["events"] == COMMITS
            assert (await http.get("/ready")).status_code == 200
            assert (await http.post("/sync", params={"resource": "commits"})).status_code == 202
            response = await http.post("/webhooks/github", content=b"{}", headers={"X-GitHub-Event": "push"})
            assert response.status_code == 401
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert any(u.scope == "payments" and u.done for u in updates)


async def test_branches_tags_and_contributors_reach_postgres(
    repository: Repo, bus: EventBus, engine: AsyncEngine
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    collector = runtime(repository, bus, MemoryCursorStore(), prefix)
    published = 0
    for resource in (Resource.BRANCHES_AND_TAGS, Resource.CONTRIBUTORS):
        (result,) = await collector.sync_once(resource)
        published += result.events
    processor = Processor(config(prefix), bus, MemoryCache(), create_session_factory(engine))
    await run_until(processor, lambda: processor.events >= published)

    assert await query(engine, "SELECT name, is_default, deleted_at FROM branches") == [("main", True, None)]
    assert await query(engine, "SELECT name, annotated FROM tags ORDER BY tagged_at, name") == [
        ("v1.7.0", True),
        ("v1.15.0", True),
        ("v2.0.0-beta", False),
    ]
    assert await query(
        engine,
        "SELECT d.email, c.contributions FROM repository_contributors c "
        "JOIN developers d ON d.id = c.developer_id ORDER BY d.email",
    ) == [(ALICE[1], COMMITS // 2), (BOB[1], COMMITS - COMMITS // 2)]
    ((tagger,),) = await query(
        engine, "SELECT DISTINCT d.email FROM tags t JOIN developers d ON d.id = t.tagger_id"
    )
    assert tagger == RELEASER[1]
