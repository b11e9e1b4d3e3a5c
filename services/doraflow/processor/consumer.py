"""The processor loop: consume → validate → transform → enrich → store → cache, one batch at a time.

Delivery guarantees (DESIGN.md §4) come from the order of the steps for each batch:

1. read a micro-batch; validate every message (invalid ones become dead letters, the rest go on);
2. store the whole batch in **one** database transaction (idempotent upserts, `storage`);
3. publish the batch's dead letters and wait until the broker has them;
4. commit the offsets (one past each partition's last message).

A crash anywhere before 4 re-delivers the batch, and storing it again changes nothing; nothing is
committed before it is stored, so nothing is lost. On a database error the transaction rolls back,
the consumer rewinds to the committed offsets (`seek_to_committed`), waits (exponential back-off,
capped) and reads the same events again — it never skips ahead. A *data* error (PostgreSQL classes
22 and 23, e.g. a value no column can hold) would fail the same way forever, so the batch is split
in halves, each stored in its own transaction, until the one event the database refuses is found;
that event is dead-lettered with the database's reason and the others are stored.

A stop request (SIGTERM) is honoured between batches: the current batch is finished and committed,
then the consumer leaves its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core.bus import Consumer, EventBus, Message, TopicSpec
from doraflow.core.cache import Cache
from doraflow.processor import instruments, storage
from doraflow.processor.batching import Backoff, collect_batch, next_offsets
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.invalidation import CacheInvalidator
from doraflow.processor.rollups import RollupRefresher
from doraflow.processor.transform import SUPPORTED, build_plan
from doraflow.processor.validation import Accepted, ErrorKind, Rejected, dlq_record, dlq_topic, validate

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """The batch could not be stored or acknowledged now; retry it later, unchanged."""


def is_data_error(exc: BaseException) -> bool:
    """PostgreSQL refused the *data* (SQLSTATE class 22 data exception, 23 constraint violation):
    retrying the same rows cannot succeed."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return isinstance(sqlstate, str) and sqlstate[:2] in {"22", "23"}


class Processor:
    def __init__(
        self,
        config: ProcessorConfig,
        bus: EventBus,
        cache: Cache,
        session_factory: async_sessionmaker[AsyncSession],
    ) -> None:
        self.config = config
        self.bus = bus
        self.sessions = session_factory
        self.invalidator = CacheInvalidator(cache, config.cache_invalidation_seconds)
        self.rollups = RollupRefresher(session_factory, config.rollup_refresh_seconds)
        self._known_topics: set[str] | None = None
        self.batches = 0
        self.events = 0

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        consumer = self.bus.consumer(self.config.group_id, pattern=self.config.pattern)
        await consumer.start()
        helpers = asyncio.Event()  # background tasks outlive the loop by one final flush
        background = [
            asyncio.create_task(self.invalidator.run(helpers), name="processor-cache-invalidation"),
            asyncio.create_task(self.rollups.run(helpers), name="processor-rollups"),
        ]
        backoff = Backoff(self.config.retry_initial_seconds, self.config.retry_max_seconds)
        logger.info(
            "processor started", extra={"group_id": self.config.group_id, "pattern": self.config.pattern}
        )
        try:
            while not stop.is_set():
                batch = await collect_batch(
                    consumer,
                    batch_size=self.config.batch_size,
                    linger_ms=self.config.linger_ms,
                    poll_timeout_ms=self.config.poll_timeout_ms,
                    stop=stop,
                )
                if not batch:
                    continue
                try:
                    await self.handle(consumer, batch)
                except TransientError as exc:
                    delay = backoff.next_delay()
                    logger.warning(
                        "batch not stored, rewinding and retrying in %.1fs: %s",
                        delay,
                        exc,
                        extra={"attempt": backoff.failures, "messages": len(batch)},
                    )
                    await self._rewind(consumer)
                    await _sleep_unless(stop, delay)
                else:
                    backoff.reset()
        finally:
            helpers.set()
            await asyncio.gather(*background, return_exceptions=True)
            await consumer.stop()
            logger.info("processor stopped", extra={"batches": self.batches, "events": self.events})

    async def _rewind(self, consumer: Consumer) -> None:
        try:
            await consumer.seek_to_committed()
        except Exception as exc:  # the broker may be unreachable too; positions stay, retry reads again
            logger.warning("seek to committed offsets failed: %s", exc)

    # -- one batch -------------------------------------------------------------------------------

    async def handle(self, consumer: Consumer, batch: Sequence[Message]) -> None:
        """Store one batch, dead-letter what cannot be stored, commit its offsets. Raises
        `TransientError` when any of that failed (nothing was committed then)."""
        started = time.monotonic()
        accepted: list[Accepted] = []
        rejected: list[Rejected] = []
        for message in batch:
            outcome = validate(message, self.config.topic_prefix)
            if isinstance(outcome, Accepted) and not isinstance(outcome.event.data, SUPPORTED):
                outcome = Rejected(
                    message,
                    outcome.organization,
                    ErrorKind.UNKNOWN_SCHEMA,
                    f"the processor has no storage rule for {outcome.event.envelope.schema_}",
                )
            (accepted if isinstance(outcome, Accepted) else rejected).append(outcome)  # type: ignore[arg-type]

        refused = await self._store(accepted)
        rejected.extend(refused)
        await self._dead_letter(rejected)
        try:
            await consumer.commit(next_offsets(batch))
        except Exception as exc:  # e.g. a rebalance took the partitions: stored data stays valid
            instruments.BUS_RETRIES.inc()
            raise TransientError(f"offset commit failed: {exc!r}") from exc

        now = time.time()
        refused_ids = {id(r.message) for r in refused}
        stored = Counter(a.event.envelope.schema_ for a in accepted if id(a.message) not in refused_ids)
        for schema, count in stored.items():
            instruments.EVENTS.labels(schema).inc(count)
        for item in rejected:
            instruments.DEAD_LETTERS.labels(item.kind.value).inc()
        instruments.BATCH_SIZE.observe(len(batch))
        instruments.BATCH_SECONDS.observe(time.monotonic() - started)
        instruments.EVENT_LAG.set(max(0.0, now - min(m.timestamp_ms for m in batch) / 1000))
        instruments.LAST_COMMIT.set(now)
        self.batches += 1
        self.events += len(batch)

    async def _store(self, accepted: list[Accepted]) -> list[Rejected]:
        """Store `accepted`; on a data error find and return the events the database refuses."""
        if not accepted:
            return []
        try:
            await self._store_transaction(accepted)
            return []
        except Exception as exc:
            if not is_data_error(exc):
                instruments.DATABASE_RETRIES.inc()
                raise TransientError(f"database error: {exc!r}") from exc
            if len(accepted) == 1:
                item = accepted[0]
                logger.warning(
                    "event refused by the database",
                    extra={
                        "sqlstate": getattr(exc, "sqlstate", None),
                        "topic": item.message.topic,
                        "partition": item.message.partition,
                        "offset": item.message.offset,
                    },
                )
                return [
                    Rejected(
                        item.message,
                        item.organization,
                        ErrorKind.REJECTED_BY_DATABASE,
                        f"database refused the event: {type(exc).__name__}: {exc}",
                    )
                ]
        middle = len(accepted) // 2
        return [*await self._store(accepted[:middle]), *await self._store(accepted[middle:])]

    async def _store_transaction(self, accepted: list[Accepted]) -> None:
        plan = build_plan(accepted)
        window: timedelta = self.config.attribution_window
        async with self.sessions() as session:
            connection = await session.connection()
            raw = await connection.get_raw_connection()
            pg = raw.driver_connection
            # asyncpg's own transaction: the storage layer talks to asyncpg directly (array binds,
            # prepared statements) and SQLAlchemy's adapter only begins lazily, on its own execute.
            assert pg is not None  # a checked-out connection always has its driver connection
            async with pg.transaction():
                changes = await storage.store(pg, plan, attribution_window=window)
        self.invalidator.add(changes)
        if changes.rollups:
            self.rollups.mark_dirty()

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        try:
            topics = {dlq_topic(self.config.topic_prefix, r.organization) for r in rejected}
            await self._ensure_topics(topics)
            for item in rejected:
                await self.bus.publish(
                    dlq_topic(self.config.topic_prefix, item.organization),
                    item.message.key or item.message.topic,
                    dlq_record(item),
                )
            await self.bus.flush()
        except Exception as exc:
            instruments.BUS_RETRIES.inc()
            raise TransientError(f"publishing {len(rejected)} dead letters failed: {exc!r}") from exc
        for item in rejected:
            logger.warning(
                "event dead-lettered",
                extra={
                    "error": item.kind.value,
                    "topic": item.message.topic,
                    "partition": item.message.partition,
                    "offset": item.message.offset,
                },
            )

    async def _ensure_topics(self, topics: set[str]) -> None:
        """DLQ topics are normally created by the operator with the organization's topics; one that
        is missing (an organization registered by hand, the embedded mode) is created here rather
        than blocking the batch."""
        if self._known_topics is None or not topics <= self._known_topics:
            self._known_topics = await self.bus.list_topics()
        missing = sorted(topics - self._known_topics)
        if missing:
            await self.bus.ensure_topics([TopicSpec(name) for name in missing])
            self._known_topics |= set(missing)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
