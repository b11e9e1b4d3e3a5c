"""Micro-batches: collect up to `batch_size` messages, waiting at most `linger` after the first.

Bigger batches amortise the per-transaction cost (one round trip per table, one commit, one offset
commit); the linger bounds how long an event waits when traffic is light.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from doraflow.core.bus import Consumer, Message, TopicPartition


async def collect_batch(
    consumer: Consumer,
    *,
    batch_size: int,
    linger_ms: int,
    poll_timeout_ms: int,
    stop: asyncio.Event | None = None,
) -> list[Message]:
    """The next batch; empty when nothing arrived within `poll_timeout_ms` (so the caller can look
    at its stop flag) or when a stop was requested before the first message."""
    batch = await consumer.getmany(max_records=batch_size, timeout_ms=poll_timeout_ms)
    if not batch:
        return batch
    deadline = time.monotonic() + linger_ms / 1000
    while len(batch) < batch_size and not (stop is not None and stop.is_set()):
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            break
        more = await consumer.getmany(max_records=batch_size - len(batch), timeout_ms=remaining_ms)
        if not more:
            break
        batch.extend(more)
    return batch


def next_offsets(messages: Iterable[Message]) -> dict[TopicPartition, int]:
    """Per partition, the offset to commit: one past the highest offset in the batch."""
    highest: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic, message.partition)
        if message.offset >= highest.get(key, -1):
            highest[key] = message.offset
    return {TopicPartition(topic, partition): offset + 1 for (topic, partition), offset in highest.items()}


class Backoff:
    """Exponential back-off with a cap: 0.5 s, 1 s, 2 s, … 30 s, reset after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * 2.0**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
