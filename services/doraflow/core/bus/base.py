"""The event bus interface: how collectors publish and the processor consumes.

Services never import aiokafka directly; they get an `EventBus` from `doraflow.core.bus.create_bus`
so the embedded mode (`doraflow up`) can swap Kafka for the in-process bus with no other change.
Values are bytes on purpose: the bus moves envelopes (doraflow.core.events) without parsing them,
and a malformed message must survive the trip intact so it can be dead-lettered as it arrived.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as the Organization resource describes it (DESIGN.md §4)."""

    name: str
    partitions: int = 10
    replication_factor: int = 3
    retention_ms: int = 7 * 24 * 3600 * 1000
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    """One consumed record with its origin, which is what the DLQ and offset commits need."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


class Consumer(abc.ABC):
    """A member of a consumer group. Offsets are committed explicitly, never automatically,
    because the processor commits only after its database transaction has committed."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def getmany(self, max_records: int, timeout_ms: int) -> list[Message]:
        """Up to `max_records` messages, waiting at most `timeout_ms` for the first one."""

    @abc.abstractmethod
    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the *next* message to read."""

    @abc.abstractmethod
    async def seek_to_committed(self) -> None:
        """Rewind every assigned partition to its last committed offset (after a failed batch)."""


class EventBus(abc.ABC):
    """Producer side plus a factory for consumers and an admin for topics."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None:
        """Flush pending messages and close connections."""

    @abc.abstractmethod
    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Queue one message; messages with the same key keep their order. May return before
        delivery: call `flush` to wait for everything queued so far."""

    @abc.abstractmethod
    async def flush(self) -> None: ...

    @abc.abstractmethod
    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create missing topics and align retention of existing ones; return the names created."""

    @abc.abstractmethod
    async def delete_topics(self, names: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def list_topics(self) -> set[str]: ...

    @abc.abstractmethod
    def consumer(
        self,
        group_id: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> Consumer:
        """A consumer of `topics`, or of every topic whose name fully matches the regex `pattern`
        (new matching topics are picked up without a restart)."""
