"""The in-process event bus of the embedded mode (`doraflow up`, DESIGN.md §1).

It exists so a newcomer can run collectors, processor and API in one process without Kafka, and
so the processor's consumer loop behaves the same in both modes. It therefore mirrors the Kafka
semantics the rest of the code relies on, rather than being a simple queue:

* a topic has N partitions and a key always lands in the same one (`zlib.crc32`, never `hash()`,
  whose per-process salt would move keys between runs), so one repository's events stay ordered;
* each partition is an append-only log with offsets, so a consumer can commit "the next offset to
  read" and `seek_to_committed` can rewind after a failed batch;
* consumer groups keep committed offsets independently of their members, so a consumer that stops
  and a new one of the same group resumes after the last commit (at-least-once, DESIGN.md §4);
* the partitions of a topic are split between the live members of a group (like Kafka's range
  assignment, but recomputed on every membership change without a rebalance protocol); a member
  that gains a partition starts at the group's committed offset. With one member per group, the
  common in-process case, that member simply owns every partition;
* pattern subscriptions are re-evaluated on every poll, so a topic created later is picked up;
* retention is applied by time (`retention_ms`) when publishing, so a long-running embedded
  process does not keep every event forever.

What it deliberately does not do: persist anything (a restart starts empty, like a fresh broker),
replicate (replication factors are accepted and ignored), or fence commits from members that no
longer own a partition (Kafka would reject those; here they are accepted, which can only cause a
re-delivery, never a loss). Everything runs on the caller's event loop; no locks are needed because
every state change happens between two awaits.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from doraflow.core.bus.base import Consumer, EventBus, Message, TopicPartition, TopicSpec

logger = logging.getLogger(__name__)


class UnknownTopicError(LookupError):
    """Publishing to a topic that was never created. Kafka (with auto-creation disabled, as in
    every Doraflow cluster) refuses such writes too; failing fast here keeps the embedded mode from
    hiding a missing `ensure_topics` call that would break the cluster mode."""


def partition_for(key: str, partitions: int) -> int:
    """The partition of `key`: stable across processes and Python versions (crc32 of its UTF-8)."""
    return zlib.crc32(key.encode("utf-8")) % partitions


@dataclass(slots=True, eq=False)
class _Partition:
    """One ordered log. Old records are dropped from the front; `start_offset` remembers how many,
    so offsets stay those the record was published with (as in Kafka)."""

    records: deque[Message] = field(default_factory=deque)
    start_offset: int = 0

    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.records)

    def read(self, offset: int, limit: int) -> list[Message]:
        begin = max(offset, self.start_offset) - self.start_offset
        return list(itertools.islice(self.records, begin, begin + limit))

    def expire(self, older_than_ms: int) -> None:
        while self.records and self.records[0].timestamp_ms < older_than_ms:
            self.records.popleft()
            self.start_offset += 1


@dataclass(slots=True)
class _Topic:
    name: str
    retention_ms: int
    config: dict[str, str]
    partitions: list[_Partition]


@dataclass(slots=True)
class _Group:
    """A consumer group: its committed offsets outlive its members."""

    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: list[MemoryConsumer] = field(default_factory=list)


class MemoryBus(EventBus):
    """`EventBus` kept in this process's memory; see the module docstring for the semantics."""

    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._groups: dict[str, _Group] = {}
        # A fresh Event per change: waiters take the current one, and a change sets it and
        # replaces it, so every waiter wakes exactly once per change without a lock.
        self._changed = asyncio.Event()
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        """Nothing to flush (publishing is synchronous); the logs stay readable for consumers
        that are still running, as a broker would keep them after a producer disconnects."""
        self._started = False

    # -- producer --------------------------------------------------------------------------------

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Append at once: in memory there is nothing to batch, so `flush` has nothing to wait for."""
        t = self._topics.get(topic)
        if t is None:
            raise UnknownTopicError(f"topic {topic!r} does not exist (create it with ensure_topics)")
        now_ms = int(time.time() * 1000)
        index = partition_for(key, len(t.partitions))
        part = t.partitions[index]
        part.expire(now_ms - t.retention_ms)
        part.records.append(Message(topic, index, part.end_offset, key, bytes(value), now_ms))
        self._notify()

    async def flush(self) -> None:
        return None

    # -- admin -----------------------------------------------------------------------------------

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create missing topics; for existing ones align retention and config and grow (never
        shrink, as Kafka cannot) the partition count. Replication is meaningless in one process."""
        created: list[str] = []
        for spec in specs:
            if spec.partitions < 1:
                raise ValueError(f"topic {spec.name!r}: partitions must be at least 1")
            existing = self._topics.get(spec.name)
            if existing is None:
                self._topics[spec.name] = _Topic(
                    spec.name,
                    spec.retention_ms,
                    dict(spec.config),
                    [_Partition() for _ in range(spec.partitions)],
                )
                created.append(spec.name)
                continue
            existing.retention_ms = spec.retention_ms
            existing.config.update(spec.config)
            if spec.partitions > len(existing.partitions):
                existing.partitions.extend(
                    _Partition() for _ in range(spec.partitions - len(existing.partitions))
                )
            elif spec.partitions < len(existing.partitions):
                logger.warning(
                    "topic %s has %d partitions, spec asks for %d: partitions cannot be removed",
                    spec.name,
                    len(existing.partitions),
                    spec.partitions,
                )
        if created:
            logger.info("created topics %s", ", ".join(created))
        self._notify()
        return created

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Drop the topics and the groups' offsets for them, so a topic re-created under the same
        name starts from offset 0 for everyone (as after a Kafka topic deletion)."""
        doomed = set(names)
        for name in doomed:
            self._topics.pop(name, None)
        for group in self._groups.values():
            for tp in [tp for tp in group.committed if tp.topic in doomed]:
                del group.committed[tp]
            for member in group.members:
                member._forget(doomed)
        self._notify()

    async def list_topics(self) -> set[str]:
        return set(self._topics)

    # -- consumers -------------------------------------------------------------------------------

    def consumer(
        self,
        group_id: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> MemoryConsumer:
        if bool(topics) == (pattern is not None):
            raise ValueError("give either topics or pattern, not both and not neither")
        return MemoryConsumer(self, group_id, topics=topics, pattern=pattern, from_beginning=from_beginning)

    # -- internals shared with MemoryConsumer ----------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _group(self, group_id: str) -> _Group:
        return self._groups.setdefault(group_id, _Group())

    def _join(self, member: MemoryConsumer) -> None:
        self._group(member.group_id).members.append(member)
        self._notify()

    def _leave(self, member: MemoryConsumer) -> None:
        group = self._group(member.group_id)
        if member in group.members:
            group.members.remove(member)
        self._notify()

    def _assignment(self, member: MemoryConsumer) -> list[TopicPartition]:
        """The partitions `member` owns now: of each subscribed topic, every k-th partition, where
        k is the number of group members subscribed to it (members in the order they joined)."""
        group = self._group(member.group_id)
        owned: list[TopicPartition] = []
        for name in sorted(self._topics):
            if not member.subscribes(name):
                continue
            sharers = [m for m in group.members if m.subscribes(name)]
            if member not in sharers:
                continue
            index = sharers.index(member)
            owned.extend(
                TopicPartition(name, p)
                for p in range(len(self._topics[name].partitions))
                if p % len(sharers) == index
            )
        return owned

    def _partition(self, tp: TopicPartition) -> _Partition | None:
        topic = self._topics.get(tp.topic)
        if topic is None or tp.partition >= len(topic.partitions):
            return None
        return topic.partitions[tp.partition]


class MemoryConsumer(Consumer):
    """A member of a `MemoryBus` consumer group, with its own read positions."""

    def __init__(
        self,
        bus: MemoryBus,
        group_id: str,
        *,
        topics: Sequence[str],
        pattern: str | None,
        from_beginning: bool,
    ) -> None:
        self._bus = bus
        self.group_id = group_id
        self._topics = frozenset(topics)
        self._pattern = re.compile(pattern) if pattern is not None else None
        self._from_beginning = from_beginning
        self._positions: dict[TopicPartition, int] = {}
        self._running = False

    def subscribes(self, topic: str) -> bool:
        if self._pattern is not None:
            return self._pattern.fullmatch(topic) is not None
        return topic in self._topics

    async def start(self) -> None:
        if not self._running:
            self._running = True
            self._bus._join(self)

    async def stop(self) -> None:
        """Leave the group (its other members take over the partitions); commits stay."""
        if self._running:
            self._running = False
            self._positions.clear()
            self._bus._leave(self)

    def assignment(self) -> set[TopicPartition]:
        """Partitions this member currently owns (for tests and diagnostics)."""
        self._sync_assignment()
        return set(self._positions)

    def _forget(self, topics: set[str]) -> None:
        """Drop read positions in deleted topics, so a topic re-created under the same name is
        read from its start rather than from where the old one was left."""
        self._positions = {tp: o for tp, o in self._positions.items() if tp.topic not in topics}

    def _sync_assignment(self) -> list[TopicPartition]:
        """Adopt the current assignment: a newly owned partition starts at the group's committed
        offset, or, without one, at the start or end of its log (Kafka's auto.offset.reset)."""
        owned = self._bus._assignment(self)
        committed = self._bus._group(self.group_id).committed
        fresh: dict[TopicPartition, int] = {}
        for tp in owned:
            if tp in self._positions:
                fresh[tp] = self._positions[tp]
                continue
            part = self._bus._partition(tp)
            if part is None:
                continue
            if tp in committed:
                fresh[tp] = committed[tp]
            else:
                fresh[tp] = part.start_offset if self._from_beginning else part.end_offset
        self._positions = fresh
        return owned

    async def getmany(self, max_records: int, timeout_ms: int) -> list[Message]:
        """Take up to `max_records`, spread over the owned partitions in turn (so one busy
        partition does not starve the others), each partition's records in offset order."""
        if not self._running:
            raise RuntimeError("consumer is not started")
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        deadline = asyncio.get_running_loop().time() + max(timeout_ms, 0) / 1000
        while True:
            changed = self._bus._changed  # taken before reading, so no change is missed
            batch = self._take(max_records)
            if batch:
                return batch
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return []

    def _take(self, max_records: int) -> list[Message]:
        owned = self._sync_assignment()
        batch: list[Message] = []
        pending = list(owned)
        while pending and len(batch) < max_records:
            share = max(1, (max_records - len(batch)) // len(pending))
            still: list[TopicPartition] = []
            for tp in pending:
                part = self._bus._partition(tp)
                if part is None or tp not in self._positions:
                    continue
                # A position below the log start (expired records) continues at the log start.
                position = max(self._positions[tp], part.start_offset)
                records = part.read(position, min(share, max_records - len(batch)))
                if records:
                    batch.extend(records)
                    self._positions[tp] = records[-1].offset + 1
                    if self._positions[tp] < part.end_offset:
                        still.append(tp)
                if len(batch) >= max_records:
                    break
            pending = still
        return batch

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not self._running:
            raise RuntimeError("consumer is not started")
        self._bus._group(self.group_id).committed.update(offsets)

    async def seek_to_committed(self) -> None:
        """Rewind every owned partition to the group's committed offset; without a commit, to the
        start of the log, so nothing of a failed batch can be skipped (at-least-once)."""
        if not self._running:
            raise RuntimeError("consumer is not started")
        self._sync_assignment()
        committed = self._bus._group(self.group_id).committed
        for tp in self._positions:
            part = self._bus._partition(tp)
            start = part.start_offset if part is not None else 0
            self._positions[tp] = committed.get(tp, start)
