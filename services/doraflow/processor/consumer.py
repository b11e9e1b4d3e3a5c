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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from doraflow.core.bus import Consumer, EventBus, Message, TopicPartition, TopicSpec
from doraflow.core.cache import Cache
from doraflow.processor import instruments, storage
from doraflow.processor.batching import Backoff, collect_batch, next_offsets
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.entities import Lookups
from doraflow.processor.invalidation import CacheInvalidator
from doraflow.processor.rollups import RollupRefresher
from doraflow.processor.statistics import StatisticsKeeper
from doraflow.processor.transform import SUPPORTED, Plan, PlanBuilder, build_plan
from doraflow.processor.validation import Accepted, ErrorKind, Rejected, dlq_record, dlq_topic, validate

logger = logging.getLogger(__name__)


# The batch connection's work_mem (see `Processor._connection`).
WORK_MEM = "64MB"

# Messages validated between two yields to the event loop while a batch is prepared.
PREPARE_SLICE = 16


@dataclass(slots=True)
class Prepared:
    """A batch read and validated, ready to store, with what `handle` reports once it is stored:
    worked out while the previous batch is being stored, not between two batches' stores."""

    messages: list[Message]
    accepted: list[Accepted]
    rejected: list[Rejected]
    builder: PlanBuilder
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    schemas: Counter[str] = field(default_factory=Counter)  # accepted events by schema


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
        self.invalidator = CacheInvalidator(cache, config.cache_invalidation_seconds, session_factory)
        self.lookups = Lookups()
        self._held: AsyncConnection | None = None
        self.rollups = RollupRefresher(session_factory, config.rollup_refresh_seconds)
        self.statistics = StatisticsKeeper(session_factory, config.statistics_seconds)
        self._known_topics: set[str] | None = None
        self.batches = 0
        self.events = 0

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`. While one batch is being stored, the next one is read and
        validated (parsing is CPU in this process, storing is CPU in PostgreSQL: they overlap);
        the read-ahead batch is thrown away, uncommitted, when a batch fails or on stop."""
        consumer = self.bus.consumer(self.config.group_id, pattern=self.config.pattern)
        await consumer.start()
        helpers = asyncio.Event()  # background tasks outlive the loop by one final flush
        background = [
            asyncio.create_task(self.invalidator.run(helpers), name="processor-cache-invalidation"),
            asyncio.create_task(self.rollups.run(helpers), name="processor-rollups"),
            asyncio.create_task(self.statistics.run(helpers), name="processor-statistics"),
        ]
        backoff = Backoff(self.config.retry_initial_seconds, self.config.retry_max_seconds)
        logger.info(
            "processor started", extra={"group_id": self.config.group_id, "pattern": self.config.pattern}
        )
        ahead = asyncio.create_task(self._read(consumer, stop))
        try:
            while not stop.is_set():
                try:
                    prepared = await ahead
                    if stop.is_set():
                        break  # read after the stop request: left uncommitted, read again next time
                    ahead = asyncio.create_task(self._read(consumer, stop))
                    if prepared is not None:
                        await self.handle(consumer, prepared)
                        backoff.reset()
                except TransientError as exc:
                    await _cancel(ahead)
                    delay = backoff.next_delay()
                    logger.warning(
                        "batch not stored, rewinding and retrying in %.1fs: %s",
                        delay,
                        exc,
                        extra={"attempt": backoff.failures},
                    )
                    await self._rewind(consumer)
                    await _sleep_unless(stop, delay)
                    ahead = asyncio.create_task(self._read(consumer, stop))
        finally:
            await _cancel(ahead)
            await self._release()
            helpers.set()
            await asyncio.gather(*background, return_exceptions=True)
            await consumer.stop()
            logger.info("processor stopped", extra={"batches": self.batches, "events": self.events})

    async def _read(self, consumer: Consumer, stop: asyncio.Event) -> Prepared | None:
        try:
            batch = await collect_batch(
                consumer,
                batch_size=self.config.batch_size,
                linger_ms=self.config.linger_ms,
                poll_timeout_ms=self.config.poll_timeout_ms,
                stop=stop,
            )
        except Exception as exc:  # the broker's client retries internally; this is what it gave up on
            raise TransientError(f"reading from the bus failed: {exc!r}") from exc
        return await self.prepare(batch) if batch else None

    async def _rewind(self, consumer: Consumer) -> None:
        try:
            await consumer.seek_to_committed()
        except Exception as exc:  # the broker may be unreachable too; positions stay, retry reads again
            logger.warning("seek to committed offsets failed: %s", exc)

    # -- one batch -------------------------------------------------------------------------------

    async def prepare(self, batch: Sequence[Message]) -> Prepared:
        """Validate and transform a batch, yielding to the event loop every `PREPARE_SLICE`
        messages so the batch being stored meanwhile keeps its database busy."""
        prepared = Prepared(list(batch), [], [], PlanBuilder())
        for index, message in enumerate(batch):
            outcome = validate(message, self.config.topic_prefix)
            if isinstance(outcome, Accepted) and type(outcome.event.data) not in SUPPORTED:
                outcome = Rejected(
                    message,
                    outcome.organization,
                    ErrorKind.UNKNOWN_SCHEMA,
                    f"the processor has no storage rule for {outcome.event.envelope.schema_}",
                )
            if isinstance(outcome, Accepted):
                prepared.accepted.append(outcome)
                prepared.builder.add(outcome)
            else:
                prepared.rejected.append(outcome)
            if index % PREPARE_SLICE == PREPARE_SLICE - 1:
                await asyncio.sleep(0)
        prepared.offsets = next_offsets(prepared.messages)
        prepared.schemas = Counter(a.event.envelope.schema_ for a in prepared.accepted)
        return prepared

    async def handle(self, consumer: Consumer, prepared: Prepared) -> None:
        """Store one batch, dead-letter what cannot be stored, commit its offsets. Raises
        `TransientError` when any of that failed (nothing was committed then)."""
        started = time.monotonic()
        refused = await self._store(prepared.accepted, prepared.builder.plan)
        rejected = prepared.rejected + refused
        await self._dead_letter(rejected)
        try:
            await consumer.commit(prepared.offsets)
        except Exception as exc:  # e.g. a rebalance took the partitions: stored data stays valid
            instruments.BUS_RETRIES.inc()
            raise TransientError(f"offset commit failed: {exc!r}") from exc

        now = time.time()
        stored = prepared.schemas
        if refused:  # rare: a data error the database found; those events went to the DLQ
            refused_ids = {id(r.message) for r in refused}
            stored = stored - Counter(
                a.event.envelope.schema_ for a in prepared.accepted if id(a.message) in refused_ids
            )
        for schema, count in stored.items():
            instruments.EVENTS.labels(schema).inc(count)
        for item in rejected:
            instruments.DEAD_LETTERS.labels(item.kind.value).inc()
        instruments.BATCH_SIZE.observe(len(prepared.messages))
        instruments.BATCH_SECONDS.observe(time.monotonic() - started)
        instruments.EVENT_LAG.set(max(0.0, now - min(m.timestamp_ms for m in prepared.messages) / 1000))
        instruments.LAST_COMMIT.set(now)
        self.batches += 1
        self.events += len(prepared.messages)

    async def _store(self, accepted: list[Accepted], plan: Plan | None = None) -> list[Rejected]:
        """Store `accepted` (whose plan may be given); on a data error find and return the
        events the database refuses."""
        if not accepted:
            return []
        try:
            await self._store_transaction(plan or build_plan(accepted))
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

    async def _store_transaction(self, plan: Plan) -> None:
        pg = await self._connection()
        try:
            # asyncpg's own transaction: storage talks to asyncpg directly (array binds, prepared
            # statements), and SQLAlchemy's adapter only begins one lazily, on its own execute.
            async with pg.transaction():
                changes = await storage.store(
                    pg, plan, lookups=self.lookups, attribution_window=self.config.attribution_window
                )
        except BaseException:
            self.lookups.discard()
            await self._release()  # the connection may be broken: the next batch takes a fresh one
            raise
        self.lookups.commit()
        self.invalidator.add(changes)
        self.statistics.mark_dirty()
        if changes.rollups:
            self.rollups.mark_dirty()

    async def _connection(self) -> Any:
        """The asyncpg connection the processor keeps between batches: taking one from the pool
        per batch (with its liveness ping) costs round trips on every batch's critical path."""
        if self._held is None:
            engine = self.sessions.kw["bind"]
            held = await engine.connect()
            raw = await held.get_raw_connection()
            # Plan every batch statement for the data at hand. A prepared statement's cached
            # generic plan is made once, typically while the tables are still small or empty,
            # and then kept as they grow by orders of magnitude (a sequential scan chosen for an
            # empty table stays a sequential scan); planning a statement that moves thousands of
            # rows costs well under a millisecond.
            #
            # work_mem: a batch's refresh sorts and hashes tens of thousands of candidate commits;
            # at the default 4 MB the sorts spill to disk (`external sort` in its EXPLAIN).
            assert raw.driver_connection is not None  # a checked-out connection always has one
            await raw.driver_connection.execute(
                f"SET plan_cache_mode = force_custom_plan; SET work_mem = '{WORK_MEM}'"
            )
            self._held = held
        raw = await self._held.get_raw_connection()
        return raw.driver_connection

    async def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):
                raw = await held.get_raw_connection()
                if raw.driver_connection is not None:  # back to the pool as it came
                    await raw.driver_connection.execute("RESET plan_cache_mode; RESET work_mem")
            with contextlib.suppress(Exception):
                await held.close()

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


async def _cancel(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
