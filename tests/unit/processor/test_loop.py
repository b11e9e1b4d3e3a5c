"""The processor loop on the in-process bus with a stand-in store: dead letters, offsets committed
only after a stored batch, retries that rewind instead of skipping, bisection of data errors, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core.bus import MemoryBus, Message, TopicSpec
from doraflow.core.cache import MemoryCache
from doraflow.core.events import organization_topics
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.consumer import Processor
from doraflow.processor.transform import Plan
from tests.unit.processor import factories as f

CONFIG = ProcessorConfig(
    topic_prefix=f.PREFIX,
    batch_size=50,
    linger_ms=10,
    poll_timeout_ms=50,
    retry_initial_seconds=0.01,
    retry_max_seconds=0.05,
    cache_invalidation_seconds=0.01,
    rollup_refresh_seconds=3600,
)


class DataError(Exception):
    sqlstate = "22001"  # string_data_right_truncation: the database refuses this data


class FakeProcessor(Processor):
    """Stores commit SHAs instead of rows; `fail` decides per attempt whether to raise."""

    def __init__(self, bus: MemoryBus, fail: Callable[[Plan], Exception | None] | None = None) -> None:
        sessions = cast(async_sessionmaker[AsyncSession], None)
        super().__init__(CONFIG, bus, MemoryCache(), sessions)
        self.stored: list[str] = []
        self.attempts = 0
        self.fail = fail
        self.entered = asyncio.Event()
        self.release: asyncio.Event | None = None

    async def _store_transaction(self, plan: Plan) -> None:
        self.attempts += 1
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        error = self.fail(plan) if self.fail else None
        if error is not None:
            raise error
        self.stored.extend(sha for (_, sha) in plan.commits)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    await bus.start()
    await bus.ensure_topics([TopicSpec(t, partitions=3) for t in organization_topics(f.PREFIX, f.ORG)])
    yield bus
    await bus.stop()


async def publish_commits(bus: MemoryBus, numbers: range) -> None:
    for n in numbers:
        data = f.commit(n)
        await bus.publish(f.topic_for(data), f"acme/{n % 5}", f.encode(data))


async def run_until(
    processor: Processor,
    done: Callable[[], bool],
    seconds: float = 10.0,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run the processor until `done()` (checked at every committed batch or 10 ms)."""
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    try:
        async with asyncio.timeout(seconds):
            if meanwhile is not None:
                await meanwhile()
            while not done():
                await asyncio.sleep(0.01)
                if task.done():
                    task.result()
    finally:
        stop.set()
        await task


async def dead_letters(bus: MemoryBus) -> list[dict[str, Any]]:
    consumer = bus.consumer("dlq-reader", topics=[f"{f.PREFIX}.{f.ORG}.dlq"])
    await consumer.start()
    messages = await consumer.getmany(100, 100)
    await consumer.stop()
    return [orjson.loads(m.value) for m in messages]


async def uncommitted(bus: MemoryBus) -> list[Message]:
    """What a new member of the processor's group would be given: everything not committed."""
    consumer = bus.consumer(CONFIG.group_id, pattern=CONFIG.pattern)
    await consumer.start()
    messages = await consumer.getmany(1000, 100)
    await consumer.stop()
    return messages


async def test_a_malformed_event_is_dead_lettered_and_the_rest_of_the_batch_stored(bus: MemoryBus) -> None:
    await publish_commits(bus, range(1, 6))
    await bus.publish(f"{f.PREFIX}.{f.ORG}.git.commits", "acme/x", b'{"schema": "git.commit/v1"')
    await publish_commits(bus, range(6, 11))
    processor = FakeProcessor(bus)
    await run_until(processor, lambda: processor.events == 11)
    assert sorted(processor.stored) == sorted(f.sha(n) for n in range(1, 11))
    (letter,) = await dead_letters(bus)
    assert letter["error"] == "invalid_json"
    assert letter["origin"]["topic"] == f"{f.PREFIX}.{f.ORG}.git.commits"
    assert letter["value_base64"]
    assert await uncommitted(bus) == []


async def test_a_missing_dlq_topic_is_created(bus: MemoryBus) -> None:
    await bus.delete_topics([f"{f.PREFIX}.{f.ORG}.dlq"])
    await bus.publish(f"{f.PREFIX}.{f.ORG}.incidents", "acme/x", b"nope")
    processor = FakeProcessor(bus)
    await run_until(processor, lambda: processor.events == 1)
    assert len(await dead_letters(bus)) == 1


async def test_a_database_error_rewinds_and_retries_without_losing_anything(bus: MemoryBus) -> None:
    await publish_commits(bus, range(1, 31))
    failures = iter([ConnectionRefusedError("db down"), OSError("db down"), None])
    processor = FakeProcessor(bus, fail=lambda plan: next(failures, None))
    await run_until(processor, lambda: processor.events == 30)
    assert sorted(set(processor.stored)) == sorted(f.sha(n) for n in range(1, 31))
    assert processor.attempts >= 3
    assert await dead_letters(bus) == []
    assert await uncommitted(bus) == []


async def test_offsets_are_committed_only_after_the_batch_is_stored(bus: MemoryBus) -> None:
    await publish_commits(bus, range(1, 4))
    processor = FakeProcessor(bus)
    processor.release = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    await asyncio.wait_for(processor.entered.wait(), 5)
    assert len(await uncommitted(bus)) == 3  # storing: nothing acknowledged yet
    stop.set()  # a stop request while storing: the batch is finished and committed
    processor.release.set()
    await asyncio.wait_for(task, 5)
    assert sorted(processor.stored) == sorted(f.sha(n) for n in range(1, 4))
    assert await uncommitted(bus) == []


async def test_the_event_the_database_refuses_is_found_and_dead_lettered(bus: MemoryBus) -> None:
    await publish_commits(bus, range(1, 21))
    poison = f.sha(13)

    def fail(plan: Plan) -> Exception | None:
        return DataError("value too long") if any(sha == poison for _, sha in plan.commits) else None

    processor = FakeProcessor(bus, fail=fail)
    await run_until(processor, lambda: processor.events == 20)
    assert sorted(processor.stored) == sorted(f.sha(n) for n in range(1, 21) if n != 13)
    (letter,) = await dead_letters(bus)
    assert letter["error"] == "rejected_by_database"
    assert "value too long" in letter["reason"]
    assert await uncommitted(bus) == []


async def test_a_new_organizations_topics_are_consumed_without_a_restart(bus: MemoryBus) -> None:
    processor = FakeProcessor(bus)

    async def new_organization() -> None:
        await asyncio.sleep(0.2)  # the processor is polling by now
        await bus.ensure_topics([TopicSpec(t) for t in organization_topics(f.PREFIX, "globex")])
        data = f.commit(77)
        await bus.publish(f.topic_for(data, "globex"), "globex/x", f.encode(data, organization="globex"))

    await run_until(processor, lambda: processor.events == 1, meanwhile=new_organization)
    assert processor.stored == [f.sha(77)]
