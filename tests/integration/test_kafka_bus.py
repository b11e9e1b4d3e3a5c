"""KafkaBus against a real broker (tests/testenv/kafka.py): what the collectors and the processor
rely on — ordering per key, explicit commits, pattern subscriptions, topic administration."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from doraflow.core.bus import Message, TopicPartition, TopicSpec, create_bus
from doraflow.core.bus.kafka import KafkaBus, KafkaConsumer

pytestmark = pytest.mark.integration

BIG_MESSAGES = {"max.message.bytes": "2000000"}  # an extra per-topic config besides retention


@pytest.fixture
async def bus(kafka_bootstrap: str) -> AsyncIterator[KafkaBus]:
    # A short metadata age so pattern subscriptions see new topics within about a second.
    created = create_bus(kafka_bootstrap, linger_ms=2, max_in_flight=250, metadata_max_age_ms=500)
    assert isinstance(created, KafkaBus)
    await created.start()
    try:
        yield created
    finally:
        await created.stop()


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[Any]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


def unique(name: str) -> str:
    return f"test.{uuid.uuid4().hex[:8]}.{name}"


async def consume(consumer: KafkaConsumer, expected: int, timeout_s: float = 30.0) -> list[Message]:
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < expected and time.monotonic() < deadline:
        messages.extend(await consumer.getmany(max_records=200, timeout_ms=500))
    return messages


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> bool:
    """Topic metadata and configs reach the broker's cache shortly after the controller commits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def topic_config(admin: Any, topic: str) -> dict[str, str]:
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    (resource,) = response.to_object()["resources"]
    return {
        e.get("config_names", e.get("config_name")): e["config_value"] for e in resource["config_entries"]
    }


async def partition_count(admin: Any, topic: str) -> int:
    (described,) = await admin.describe_topics([topic])
    return len(described["partitions"])


async def test_a_batch_comes_back_with_keys_values_and_order_per_key(bus: KafkaBus) -> None:
    topic = unique("git.commits")
    assert await bus.ensure_topics([TopicSpec(topic, partitions=4, replication_factor=1)]) == [topic]
    keys = [f"acme/repo-{i}" for i in range(7)]
    sent: dict[str, list[bytes]] = defaultdict(list)
    for n in range(700):
        key = keys[n % len(keys)] if n % 3 else keys[(n * 7) % len(keys)]
        value = f'{{"n": {n}, "key": "{key}"}}'.encode()
        await bus.publish(topic, key, value)
        sent[key].append(value)
    await bus.flush()

    consumer = bus.consumer(unique("group"), topics=[topic])
    await consumer.start()
    try:
        messages = await consumer_all(consumer, 700)
    finally:
        await consumer.stop()

    received: dict[str, list[bytes]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        assert m.key is not None
        assert m.topic == topic
        received[m.key].append(m.value)
        partitions[m.key].add(m.partition)
    assert received == sent  # same keys, same values, same order per key
    assert all(len(p) == 1 for p in partitions.values())
    assert len({m.partition for m in messages}) > 1


async def consumer_all(consumer: KafkaConsumer, expected: int) -> list[Message]:
    messages = await consume(consumer, expected)
    assert len(messages) == expected, f"got {len(messages)} of {expected} messages"
    return messages


async def test_a_new_member_resumes_after_the_committed_offsets(bus: KafkaBus) -> None:
    topic = unique("git.pull_requests")
    await bus.ensure_topics([TopicSpec(topic, partitions=3, replication_factor=1)])
    for n in range(120):
        await bus.publish(topic, f"acme/r{n % 5}", str(n).encode())
    await bus.flush()
    group = unique("processor")

    first = bus.consumer(group, topics=[topic])
    await first.start()
    try:
        processed = await consume(first, 40)
        assert processed
        # The batch fails once: everything not committed must come again after the rewind.
        await first.seek_to_committed()
        replayed = await consume(first, len(processed))
        assert {(m.partition, m.offset) for m in processed} <= {(m.partition, m.offset) for m in replayed}
        processed = replayed
        commit: dict[TopicPartition, int] = {}
        for m in processed:
            tp = TopicPartition(m.topic, m.partition)
            commit[tp] = max(commit.get(tp, 0), m.offset + 1)
        await first.commit(commit)
    finally:
        await first.stop()

    second = bus.consumer(group, topics=[topic])
    await second.start()
    try:
        rest = await consume(second, 120 - len(processed))
        assert await second.getmany(max_records=10, timeout_ms=500) == []
    finally:
        await second.stop()
    seen = {(m.partition, m.offset) for m in processed}
    assert not seen & {(m.partition, m.offset) for m in rest}
    assert sorted(int(m.value) for m in processed + rest) == list(range(120))


async def test_pattern_subscription_picks_up_a_topic_created_later(bus: KafkaBus) -> None:
    prefix = unique("org")
    first, later = f"{prefix}.acme.git.commits", f"{prefix}.globex.git.commits"
    await bus.ensure_topics([TopicSpec(first, partitions=2, replication_factor=1)])
    consumer = bus.consumer(unique("group"), pattern=re.escape(prefix) + r"\.[^.]+\.git\.commits")
    await consumer.start()
    try:
        await bus.publish(first, "acme/a", b"first")
        await bus.flush()
        (message,) = await consume(consumer, 1)
        assert message.value == b"first"
        # Committed, or the rebalance that the new topic causes would (rightly) deliver it again.
        await consumer.commit({TopicPartition(message.topic, message.partition): message.offset + 1})

        # A longer name that only starts like a match must stay out (full match, not prefix).
        await bus.ensure_topics(
            [
                TopicSpec(later, partitions=2, replication_factor=1),
                TopicSpec(f"{later}.dlq", partitions=1, replication_factor=1),
            ]
        )
        await bus.publish(later, "globex/b", b"later")
        await bus.publish(f"{later}.dlq", "globex/b", b"never")
        await bus.flush()
        started = time.monotonic()
        got = await consume(consumer, 1, timeout_s=30)
        assert [(m.topic, m.value) for m in got] == [(later, b"later")]
        assert time.monotonic() - started < 15
        assert await consumer.getmany(max_records=10, timeout_ms=1500) == []
        assert TopicPartition(later, 1) in consumer.assignment()
        assert not any(tp.topic.endswith(".dlq") for tp in consumer.assignment())
    finally:
        await consumer.stop()


async def test_ensure_topics_creates_then_is_a_no_op_then_aligns(bus: KafkaBus, admin: Any) -> None:
    commits, issues = unique("git.commits"), unique("jira.issues")
    specs = [
        # Replication 3 as in the Organization default: clamped to the single test broker.
        TopicSpec(commits, partitions=3, replication_factor=3, retention_ms=3_600_000),
        TopicSpec(
            issues,
            partitions=2,
            replication_factor=1,
            retention_ms=7_200_000,
            config={"max.message.bytes": "2000000"},
        ),
    ]
    assert sorted(await bus.ensure_topics(specs)) == sorted([commits, issues])
    assert {commits, issues} <= await bus.list_topics()
    assert not any(name.startswith("__") for name in await bus.list_topics())

    assert await partition_count(admin, commits) == 3
    assert await partition_count(admin, issues) == 2
    assert (await topic_config(admin, commits))["retention.ms"] == "3600000"
    issues_config = await topic_config(admin, issues)
    assert issues_config["retention.ms"] == "7200000"
    assert issues_config["max.message.bytes"] == "2000000"

    assert await bus.ensure_topics(specs) == []
    assert (await topic_config(admin, commits))["retention.ms"] == "3600000"

    grown = [
        TopicSpec(commits, partitions=5, replication_factor=3, retention_ms=86_400_000),
        TopicSpec(
            issues,
            partitions=2,
            replication_factor=1,
            retention_ms=14_400_000,
            config={"max.message.bytes": "2000000"},
        ),
    ]
    assert await bus.ensure_topics(grown) == []

    async def aligned() -> bool:
        commits_config, issues_config = await topic_config(admin, commits), await topic_config(admin, issues)
        return (
            commits_config["retention.ms"] == "86400000"
            and issues_config["retention.ms"] == "14400000"
            and issues_config["max.message.bytes"] == "2000000"  # the other override survived
            and await partition_count(admin, commits) == 5
        )

    assert await eventually(aligned)

    await bus.delete_topics([commits, issues, unique("never-existed")])

    async def gone() -> bool:
        return not {commits, issues} & await bus.list_topics()

    assert await eventually(gone)
