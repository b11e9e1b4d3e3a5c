"""The whole pipeline on the real Kafka broker and PostgreSQL: events in → rows out, dead letters
with their origin, a replay from offset 0 that changes nothing, caches and rollups after the commit."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from doraflow.core.bus import EventBus, Message, TopicSpec, create_bus
from doraflow.core.cache import MemoryCache, keys
from doraflow.core.events import EventData, organization_topics
from doraflow.core.models import natural_id
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.consumer import Processor
from tests.integration.processor.conftest import dump, lead_time_mismatches, query, xmins
from tests.integration.processor.test_storage import git_history
from tests.unit.processor import factories as f

pytestmark = pytest.mark.integration


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def config(prefix: str, **overrides: object) -> ProcessorConfig:
    options: dict[str, object] = {
        "topic_prefix": prefix,
        "batch_size": 200,
        "linger_ms": 50,
        "poll_timeout_ms": 200,
        "retry_initial_seconds": 0.1,
        "retry_max_seconds": 1.0,
        "cache_invalidation_seconds": 0.05,
        "rollup_refresh_seconds": 0.2,
    }
    options.update(overrides)
    return ProcessorConfig(**options)  # type: ignore[arg-type]


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[EventBus]:
    bus = create_bus(kafka_bootstrap, linger_ms=2, metadata_max_age_ms=500)
    await bus.start()
    yield bus
    await bus.stop()


async def create_topics(bus: EventBus, prefix: str, organization: str = f.ORG) -> None:
    await bus.ensure_topics(
        [
            TopicSpec(name, partitions=3, replication_factor=1)
            for name in organization_topics(prefix, organization)
        ]
    )


async def publish(
    bus: EventBus, prefix: str, events: Sequence[EventData | bytes], organization: str = f.ORG
) -> None:
    for event in events:
        if isinstance(event, bytes):
            await bus.publish(f.topic_of(event, organization, prefix), f"{organization}/raw", event)
        else:
            key = f"{organization}/{event.partition_scope()}"
            await bus.publish(
                f.topic_for(event, organization, prefix), key, f.encode(event, organization=organization)
            )
    await bus.flush()


async def run_until(processor: Processor, done: Callable[[], bool], seconds: float = 90.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    try:
        async with asyncio.timeout(seconds):
            while not done():
                await asyncio.sleep(0.05)
                if task.done():
                    task.result()
    finally:
        stop.set()
        await task


async def read_topic(bus: EventBus, topic: str, expected: int) -> list[dict[str, object]]:
    consumer = bus.consumer(f"reader-{uuid.uuid4().hex[:6]}", topics=[topic])
    await consumer.start()
    messages: list[Message] = []
    try:
        async with asyncio.timeout(30):
            while len(messages) < expected:
                messages.extend(await consumer.getmany(100, 500))
    finally:
        await consumer.stop()
    return [orjson.loads(message.value) for message in messages]


async def test_events_flow_from_kafka_into_postgres_and_invalid_ones_into_the_dlq(
    kafka: EventBus, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    prefix = unique_prefix()
    await create_topics(kafka, prefix)
    history = git_history()
    document = orjson.loads(f.encode(f.commit(99)))
    document["data"]["sha"] = "not-a-sha"
    garbage = orjson.dumps(document)
    foreign = f.encode(f.commit(4242), organization="globex")  # another tenant's event on our topic
    events: list[EventData | bytes] = [*history["commits"][:3], garbage, *history["commits"][3:], foreign]
    events += history["prs"] + history["deployments"] + history["incidents"]
    await publish(kafka, prefix, events)

    org = natural_id("organization", f.ORG)
    repo = natural_id("repository", org, "github", "acme-api")
    cache = MemoryCache()
    stale = [
        keys.repository_metrics(repo, "90d"),
        keys.organization_metrics(org, "30d"),
        keys.organization(org),
    ]
    unrelated = keys.repository_metrics(uuid.uuid4(), "90d")
    for key in (*stale, unrelated):
        await cache.set(key, b"{}")

    processor = Processor(config(prefix), kafka, cache, sessions)
    await run_until(processor, lambda: processor.events == len(events) and processor.rollups.refreshes > 0)

    assert await query(engine, "SELECT count(*) FROM commits") == [(7,)]
    assert await query(engine, "SELECT count(*) FROM deployments") == [(5,)]
    assert await query(engine, "SELECT attribution FROM incidents") == [("inferred",)]
    letters = await read_topic(kafka, f"{prefix}.{f.ORG}.dlq", 2)
    by_error = {letter["error"]: letter for letter in letters}
    assert set(by_error) == {"invalid_data", "wrong_topic"}
    origin = by_error["invalid_data"]["origin"]
    assert isinstance(origin, dict)
    assert origin["topic"] == f"{prefix}.{f.ORG}.git.commits"
    assert isinstance(origin["offset"], int)
    assert base64.b64decode(str(by_error["invalid_data"]["value_base64"])) == garbage
    # after the commit: the changed repository's and organization's keys are gone, others stay
    assert [await cache.get(key) for key in stale] == [None, None, None]
    assert await cache.get(unrelated) == b"{}"
    # plain PostgreSQL: the rollup views were refreshed
    assert await query(engine, "SELECT sum(commit_count)::int FROM daily_commit_stats") == [(7,)]


async def test_a_replay_from_offset_zero_changes_no_table(
    kafka: EventBus, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], migrated_url: str
) -> None:
    from benchmarks.processor_workload import workload

    prefix = unique_prefix()
    await create_topics(kafka, prefix)
    events = [m.value for m in workload(2000, organization=f.ORG, prefix=prefix)]
    await publish(kafka, prefix, events)
    first = Processor(config(prefix), kafka, MemoryCache(), sessions)
    await run_until(first, lambda: first.events == len(events))
    before, versions = await dump(engine), await xmins(engine)

    replay = Processor(config(prefix, group_id="doraflow-processor-replay"), kafka, MemoryCache(), sessions)
    await run_until(replay, lambda: replay.events == len(events))
    assert await dump(engine) == before
    assert await xmins(engine) == versions  # not a single row rewritten
    assert await lead_time_mismatches(migrated_url) == []
