"""Micro-batching, offsets and back-off."""

from __future__ import annotations

import asyncio
import time

from doraflow.core.bus import MemoryBus, Message, TopicPartition, TopicSpec
from doraflow.processor.batching import Backoff, collect_batch, next_offsets


async def bus_with(count: int, topic: str = "t.acme.git.commits", partitions: int = 1) -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics([TopicSpec(topic, partitions=partitions)])
    for n in range(count):
        await bus.publish(topic, f"k{n % 4}", b"%d" % n)
    return bus


async def test_a_batch_is_capped_at_the_batch_size() -> None:
    bus = await bus_with(25)
    consumer = bus.consumer("g", topics=["t.acme.git.commits"])
    await consumer.start()
    batch = await collect_batch(consumer, batch_size=10, linger_ms=50, poll_timeout_ms=100)
    assert [m.offset for m in batch] == list(range(10))


async def test_linger_waits_for_more_after_the_first_message_but_not_longer() -> None:
    bus = await bus_with(3)
    consumer = bus.consumer("g", topics=["t.acme.git.commits"])
    await consumer.start()

    async def late() -> None:
        await asyncio.sleep(0.05)
        await bus.publish("t.acme.git.commits", "k", b"late")

    task = asyncio.create_task(late())
    started = time.monotonic()
    batch = await collect_batch(consumer, batch_size=100, linger_ms=300, poll_timeout_ms=100)
    elapsed = time.monotonic() - started
    await task
    assert [m.value for m in batch][-1] == b"late"
    assert len(batch) == 4
    assert 0.25 <= elapsed < 2


async def test_an_idle_poll_returns_an_empty_batch_after_the_poll_timeout() -> None:
    bus = await bus_with(0)
    consumer = bus.consumer("g", topics=["t.acme.git.commits"])
    await consumer.start()
    started = time.monotonic()
    assert await collect_batch(consumer, batch_size=10, linger_ms=1000, poll_timeout_ms=50) == []
    assert time.monotonic() - started < 0.5


def test_next_offsets_are_one_past_each_partitions_highest_offset() -> None:
    messages = [
        Message("a", 0, 5, None, b"", 0),
        Message("a", 0, 7, None, b"", 0),
        Message("a", 1, 2, None, b"", 0),
        Message("b", 0, 0, None, b"", 0),
        Message("a", 0, 6, None, b"", 0),
    ]
    assert next_offsets(messages) == {
        TopicPartition("a", 0): 8,
        TopicPartition("a", 1): 3,
        TopicPartition("b", 0): 1,
    }


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5
