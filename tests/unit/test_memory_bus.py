"""The in-process bus must behave like Kafka where the processor depends on it (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import defaultdict

import pytest

from doraflow.core.bus import EventBus, MemoryBus, Message, TopicPartition, TopicSpec, create_bus
from doraflow.core.bus.memory import MemoryConsumer, UnknownTopicError, partition_for


async def drain(consumer: MemoryConsumer, expected: int, timeout_s: float = 2.0) -> list[Message]:
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < expected and time.monotonic() < deadline:
        messages.extend(await consumer.getmany(max_records=50, timeout_ms=100))
    return messages


async def bus_with(*specs: TopicSpec) -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics(specs)
    return bus


def test_create_bus_without_bootstrap_is_in_process() -> None:
    assert isinstance(create_bus(None), MemoryBus)
    assert isinstance(create_bus(""), MemoryBus)


async def test_create_bus_with_bootstrap_is_kafka() -> None:
    bus: EventBus = create_bus("127.0.0.1:1", linger_ms=1)
    assert type(bus).__name__ == "KafkaBus"


async def test_order_is_kept_per_key_and_a_key_stays_in_one_partition() -> None:
    bus = await bus_with(TopicSpec("t", partitions=4))
    keys = [f"acme/repo-{i}" for i in range(6)]
    for n in range(60):
        key = keys[n % len(keys)]
        await bus.publish("t", key, f"{key}:{n}".encode())
    await bus.flush()

    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    messages = await drain(consumer, 60)
    assert len(messages) == 60

    by_key: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        assert m.key is not None
        assert m.value.decode().startswith(f"{m.key}:")
        by_key[m.key].append(int(m.value.decode().rsplit(":", 1)[1]))
        partitions[m.key].add(m.partition)
    for key in keys:
        assert by_key[key] == sorted(by_key[key])
        assert len(by_key[key]) == 10
        assert len(partitions[key]) == 1


async def test_partition_is_a_stable_crc32_of_the_key() -> None:
    key = "acme/api"
    assert partition_for(key, 10) == zlib.crc32(b"acme/api") % 10
    first, second = (
        await bus_with(TopicSpec("t", partitions=10)),
        await bus_with(TopicSpec("t", partitions=10)),
    )
    for bus in (first, second):
        await bus.publish("t", key, b"x")
    seen = []
    for bus in (first, second):
        consumer = bus.consumer("g", topics=["t"])
        await consumer.start()
        (message,) = await drain(consumer, 1)
        seen.append(message.partition)
    assert seen == [partition_for(key, 10), partition_for(key, 10)]


async def test_offsets_count_per_partition_from_zero() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1))
    for n in range(3):
        await bus.publish("t", "k", str(n).encode())
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    messages = await drain(consumer, 3)
    assert [(m.partition, m.offset, m.value) for m in messages] == [(0, 0, b"0"), (0, 1, b"1"), (0, 2, b"2")]
    assert all(m.topic == "t" and m.timestamp_ms > 0 for m in messages)


async def test_a_new_member_of_the_group_resumes_after_the_commit() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1))
    for n in range(10):
        await bus.publish("t", "k", str(n).encode())

    first = bus.consumer("processor", topics=["t"])
    await first.start()
    batch = await first.getmany(max_records=4, timeout_ms=100)
    assert [m.value for m in batch] == [b"0", b"1", b"2", b"3"]
    await first.commit({TopicPartition("t", 0): batch[-1].offset + 1})
    await first.getmany(max_records=3, timeout_ms=100)  # read but never committed
    await first.stop()

    second = bus.consumer("processor", topics=["t"])
    await second.start()
    rest = await drain(second, 6)
    assert [m.value for m in rest] == [str(n).encode() for n in range(4, 10)]

    other_group = bus.consumer("auditor", topics=["t"])
    await other_group.start()
    assert len(await drain(other_group, 10)) == 10


async def test_from_latest_skips_what_was_there_before() -> None:
    bus = await bus_with(TopicSpec("t", partitions=2))
    await bus.publish("t", "k", b"old")
    consumer = bus.consumer("g", topics=["t"], from_beginning=False)
    await consumer.start()
    assert await consumer.getmany(max_records=10, timeout_ms=50) == []
    await bus.publish("t", "k", b"new")
    assert [m.value for m in await drain(consumer, 1)] == [b"new"]


async def test_pattern_subscription_picks_up_a_topic_created_later() -> None:
    bus = await bus_with(
        TopicSpec("doraflow.acme.git.commits", partitions=2), TopicSpec("other", partitions=1)
    )
    consumer = bus.consumer("g", pattern=r"doraflow\.[^.]+\.git\.commits")
    await consumer.start()
    await bus.publish("doraflow.acme.git.commits", "acme/a", b"1")
    await bus.publish("other", "x", b"ignored")
    assert [m.topic for m in await drain(consumer, 1)] == ["doraflow.acme.git.commits"]

    waiting = asyncio.create_task(consumer.getmany(max_records=10, timeout_ms=2000))
    await asyncio.sleep(0.01)
    await bus.ensure_topics([TopicSpec("doraflow.globex.git.commits", partitions=3)])
    await bus.publish("doraflow.globex.git.commits", "globex/b", b"2")
    late = await waiting
    assert [(m.topic, m.value) for m in late] == [("doraflow.globex.git.commits", b"2")]
    # The pattern must match the whole name, not a prefix of it.
    await bus.ensure_topics([TopicSpec("doraflow.initech.git.commits.dlq", partitions=1)])
    await bus.publish("doraflow.initech.git.commits.dlq", "k", b"no")
    assert await consumer.getmany(max_records=10, timeout_ms=50) == []


async def test_seek_to_committed_rewinds_a_failed_batch() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1))
    for n in range(6):
        await bus.publish("t", "k", str(n).encode())
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()

    await consumer.getmany(max_records=3, timeout_ms=100)
    await consumer.seek_to_committed()  # nothing committed yet: back to the start of the log
    again = await consumer.getmany(max_records=3, timeout_ms=100)
    assert [m.value for m in again] == [b"0", b"1", b"2"]

    await consumer.commit({TopicPartition("t", 0): 3})
    failed = await consumer.getmany(max_records=2, timeout_ms=100)
    assert [m.value for m in failed] == [b"3", b"4"]
    await consumer.seek_to_committed()
    retried = await drain(consumer, 3)
    assert [m.value for m in retried] == [b"3", b"4", b"5"]


async def test_getmany_waits_at_most_the_timeout() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1))
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    started = time.monotonic()
    assert await consumer.getmany(max_records=10, timeout_ms=200) == []
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.0


async def test_getmany_returns_as_soon_as_a_message_arrives() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1))
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()

    async def publish_soon() -> None:
        await asyncio.sleep(0.05)
        await bus.publish("t", "k", b"hello")

    started = time.monotonic()
    publisher = asyncio.create_task(publish_soon())
    messages = await consumer.getmany(max_records=10, timeout_ms=5000)
    await publisher
    assert [m.value for m in messages] == [b"hello"]
    assert time.monotonic() - started < 1.0


async def test_max_records_is_respected_and_shared_between_partitions() -> None:
    bus = await bus_with(TopicSpec("t", partitions=4))
    for n in range(40):
        await bus.publish("t", f"k{n}", b"v")
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    batch = await consumer.getmany(max_records=8, timeout_ms=100)
    assert len(batch) == 8
    assert len({m.partition for m in batch}) > 1


async def test_members_of_a_group_split_the_partitions() -> None:
    bus = await bus_with(TopicSpec("t", partitions=4))
    a, b = bus.consumer("g", topics=["t"]), bus.consumer("g", topics=["t"])
    await a.start()
    assert a.assignment() == {TopicPartition("t", p) for p in range(4)}
    await b.start()
    assert a.assignment().isdisjoint(b.assignment())
    assert a.assignment() | b.assignment() == {TopicPartition("t", p) for p in range(4)}
    for n in range(40):
        await bus.publish("t", f"k{n}", str(n).encode())
    got = await drain(a, 40, timeout_s=0.3) + await drain(b, 40, timeout_s=0.3)
    assert sorted(int(m.value) for m in got) == list(range(40))
    await b.stop()
    assert a.assignment() == {TopicPartition("t", p) for p in range(4)}


async def test_publishing_to_a_missing_topic_fails() -> None:
    bus = MemoryBus()
    await bus.start()
    with pytest.raises(UnknownTopicError):
        await bus.publish("nope", "k", b"v")


async def test_ensure_topics_is_idempotent_and_grows_partitions() -> None:
    bus = MemoryBus()
    await bus.start()
    spec = TopicSpec("t", partitions=2, retention_ms=1000)
    assert await bus.ensure_topics([spec]) == ["t"]
    assert await bus.ensure_topics([spec]) == []
    assert await bus.ensure_topics([TopicSpec("t", partitions=5), TopicSpec("u")]) == ["u"]
    assert await bus.list_topics() == {"t", "u"}
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    assert len(consumer.assignment()) == 5


async def test_delete_topics_forgets_data_and_offsets() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1))
    await bus.publish("t", "k", b"v")
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    await drain(consumer, 1)
    await consumer.commit({TopicPartition("t", 0): 1})
    await bus.delete_topics(["t", "never-existed"])
    assert await bus.list_topics() == set()
    await bus.ensure_topics([TopicSpec("t", partitions=1)])
    await bus.publish("t", "k", b"again")
    assert [(m.offset, m.value) for m in await drain(consumer, 1)] == [(0, b"again")]


async def test_retention_drops_old_records_but_keeps_offsets() -> None:
    bus = await bus_with(TopicSpec("t", partitions=1, retention_ms=50))
    await bus.publish("t", "k", b"old")
    await asyncio.sleep(0.1)
    await bus.publish("t", "k", b"new")
    consumer = bus.consumer("g", topics=["t"])
    await consumer.start()
    assert [(m.offset, m.value) for m in await drain(consumer, 1)] == [(1, b"new")]


def test_consumer_needs_topics_or_a_pattern() -> None:
    bus = MemoryBus()
    with pytest.raises(ValueError, match="either"):
        bus.consumer("g")
    with pytest.raises(ValueError, match="either"):
        bus.consumer("g", topics=["t"], pattern="t")
