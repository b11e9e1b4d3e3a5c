"""The Kafka event bus of the cluster mode, on aiokafka (DESIGN.md §1, §4).

Choices and why:

* The producer is idempotent with `acks=all`: collectors retry on network errors, and without
  idempotence a retried batch could be written twice or out of order; `acks=all` so an
  acknowledged event survives the loss of a broker.
* `publish` only queues. Collectors publish thousands of events per sync and waiting for each
  acknowledgement would serialise them on round trips; the futures are kept and `flush` awaits
  them all, so a collector advances its cursor only after everything before it is durable. The
  number of unacknowledged messages is bounded (`max_in_flight`), so memory stays bounded too.
* Topics are never auto-created (brokers run with `auto.create.topics.enable=false`);
  `ensure_topics` is the one place that creates them, from the Organization spec. It also works on
  a one-broker test cluster by clamping the replication factor, with a warning.
* Consumers never auto-commit: the processor commits only after its database transaction, so an
  event is acknowledged only once stored (at-least-once, DESIGN.md §4).
* Values are never logged: they carry source data (commit messages, issue titles) that belongs in
  the database, not in log aggregation.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code

from doraflow.core.bus.base import Consumer, EventBus, Message, TopicPartition, TopicSpec

logger = logging.getLogger(__name__)

# DescribeConfigs' config_source for a value set on the topic itself (as opposed to a broker
# default); only those survive a (non-incremental) AlterConfigs, so only those are carried over.
_DYNAMIC_TOPIC_CONFIG = 1


class KafkaBus(EventBus):
    """`EventBus` on a Kafka cluster.

    `connection_options` go to every aiokafka client unchanged (security_protocol, ssl_context,
    sasl_* ...), so TLS/SASL clusters need no code change here.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "doraflow",
        linger_ms: int = 5,
        max_batch_size: int = 64 * 1024,
        max_in_flight: int = 10_000,
        compression_type: str | None = None,
        request_timeout_ms: int = 30_000,
        metadata_max_age_ms: int = 5_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        connection_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._max_in_flight = max_in_flight
        self._compression_type = compression_type
        self._request_timeout_ms = request_timeout_ms
        self._metadata_max_age_ms = metadata_max_age_ms
        self._session_timeout_ms = session_timeout_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._connection_options: dict[str, Any] = dict(connection_options or {})
        self._producer: Any = None
        self._admin: Any = None
        self._pending: list[asyncio.Future[Any]] = []

    def __repr__(self) -> str:  # connection options may hold credentials: never show them
        return f"KafkaBus({self.bootstrap_servers!r})"

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=self._linger_ms,
            max_batch_size=self._max_batch_size,
            compression_type=self._compression_type,
            request_timeout_ms=self._request_timeout_ms,
            metadata_max_age_ms=self._metadata_max_age_ms,
            **self._connection_options,
        )
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self._client_id}-admin",
            request_timeout_ms=self._request_timeout_ms,
            metadata_max_age_ms=self._metadata_max_age_ms,
            **self._connection_options,
        )
        await producer.start()
        try:
            await admin.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer, self._admin = producer, admin
        logger.info("connected to Kafka at %s", self.bootstrap_servers)

    async def stop(self) -> None:
        """Wait for everything queued, then close; a failed delivery still closes the clients."""
        producer, admin = self._producer, self._admin
        if producer is None:
            return
        try:
            await self.flush()
        finally:
            self._producer = self._admin = None
            await producer.stop()
            await admin.close()

    def _require_started(self) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaBus is not started")

    # -- producer --------------------------------------------------------------------------------

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        """Queue one message. `send` returns once the record is in the producer's batch (it waits
        only when the buffer is full or the topic's metadata is unknown); the delivery future is
        kept for `flush`. When `max_in_flight` deliveries are outstanding this waits for them,
        which is the back-pressure that keeps a fast collector from outrunning the broker."""
        self._require_started()
        future = await self._producer.send(topic, value=value, key=key.encode("utf-8"))
        self._pending.append(future)
        if len(self._pending) >= self._max_in_flight:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every message queued so far is acknowledged; raise if any was not.

        All futures are awaited even when one fails, so the error reported is complete and no
        delivery is left unobserved."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        results = await asyncio.gather(*pending, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            logger.error("%d of %d messages were not delivered: %r", len(errors), len(results), errors[0])
            raise errors[0]

    # -- admin -----------------------------------------------------------------------------------

    async def _broker_count(self) -> int:
        cluster = await self._admin.describe_cluster()
        return max(1, len(cluster.get("brokers") or []))

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Make the cluster match `specs`: create missing topics (partitions, replication,
        retention.ms and any extra config); for existing ones align retention.ms and the extra
        config when they differ, and add partitions when the spec has more (Kafka cannot remove
        any). Safe to call concurrently from several operators: a topic that appears between the
        listing and the creation counts as existing. Returns the names this call created."""
        self._require_started()
        if not specs:
            return []
        existing = set(await self._admin.list_topics())
        brokers = await self._broker_count()

        missing = [spec for spec in specs if spec.name not in existing]
        created: list[str] = []
        if missing:
            new_topics = []
            for spec in missing:
                replication = spec.replication_factor
                if replication > brokers:
                    logger.warning(
                        "topic %s: replication factor %d clamped to %d (only %d broker(s) in the cluster)",
                        spec.name,
                        replication,
                        brokers,
                        brokers,
                    )
                    replication = brokers
                new_topics.append(
                    NewTopic(
                        spec.name, spec.partitions, replication, topic_configs=self._desired_config(spec)
                    )
                )
            response = await self._admin.create_topics(new_topics, timeout_ms=self._request_timeout_ms)
            for name, code, message in _topic_errors(response):
                if code == 0:
                    created.append(name)
                elif code == TopicAlreadyExistsError.errno:
                    existing.add(name)  # created by someone else meanwhile: align it below
                else:
                    raise for_code(code)(f"creating topic {name}: {message}")
            if created:
                logger.info("created topics %s", ", ".join(created))

        to_align = [spec for spec in specs if spec.name in existing]
        if to_align:
            await self._align_configs(to_align)
            await self._grow_partitions(to_align)
        await self._await_leaders({spec.name: spec.partitions for spec in specs})
        return created

    async def _await_leaders(self, partitions: Mapping[str, int]) -> None:
        """Wait until the broker's metadata shows every topic with (at least) the expected number
        of partitions, each with a leader. The controller answers CreateTopics/CreatePartitions
        once the change is committed, but brokers learn of it a moment later; callers that publish
        or describe right after `ensure_topics` would otherwise see "unknown topic" or "not
        leader" errors. Bounded by the request timeout; a topic still not ready only logs."""
        deadline = asyncio.get_running_loop().time() + self._request_timeout_ms / 1000
        waiting = dict(partitions)
        while waiting:
            for topic in await self._admin.describe_topics(list(waiting)):
                name = topic["topic"]
                leaders = [p["leader"] for p in topic["partitions"]]
                complete = len(leaders) >= waiting.get(name, 1) and all(leader >= 0 for leader in leaders)
                if not topic["error_code"] and complete:
                    waiting.pop(name, None)
            if not waiting:
                return
            if asyncio.get_running_loop().time() > deadline:
                logger.warning(
                    "topics not ready after %d ms: %s", self._request_timeout_ms, ", ".join(waiting)
                )
                return
            await asyncio.sleep(0.05)

    @staticmethod
    def _desired_config(spec: TopicSpec) -> dict[str, str]:
        return {**{k: str(v) for k, v in spec.config.items()}, "retention.ms": str(spec.retention_ms)}

    async def _align_configs(self, specs: Sequence[TopicSpec]) -> None:
        """Alter the topics whose retention.ms or extra config differ from the spec.

        aiokafka offers only the legacy AlterConfigs, which *replaces* a topic's whole set of
        overrides; the overrides already on the topic are therefore sent back with the new values,
        so a setting someone added by hand is not silently dropped."""
        resources = [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs]
        responses = await self._admin.describe_configs(resources)
        current: dict[str, dict[str, str]] = {}
        overrides: dict[str, dict[str, str]] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                name = resource["resource_name"]
                if resource["error_code"]:
                    raise for_code(resource["error_code"])(
                        f"describing config of topic {name}: {resource['error_message']}"
                    )
                for entry in resource["config_entries"]:
                    key = entry.get("config_names", entry.get("config_name"))
                    value = entry["config_value"]
                    current.setdefault(name, {})[key] = value
                    if entry.get("config_source") == _DYNAMIC_TOPIC_CONFIG:
                        overrides.setdefault(name, {})[key] = value

        changes: list[ConfigResource] = []
        for spec in specs:
            desired = self._desired_config(spec)
            have = current.get(spec.name, {})
            differing = {k: v for k, v in desired.items() if have.get(k) != v}
            if not differing:
                continue
            logger.info(
                "topic %s: altering config %s",
                spec.name,
                ", ".join(f"{k}={have.get(k)}->{v}" for k, v in sorted(differing.items())),
            )
            changes.append(
                ConfigResource(
                    ConfigResourceType.TOPIC, spec.name, {**overrides.get(spec.name, {}), **desired}
                )
            )
        if not changes:
            return
        for response in await self._admin.alter_configs(changes):
            for resource in response.to_object()["resources"]:
                if resource["error_code"]:
                    raise for_code(resource["error_code"])(
                        f"altering config of topic {resource['resource_name']}: {resource['error_message']}"
                    )

    async def _grow_partitions(self, specs: Sequence[TopicSpec]) -> None:
        described = await self._admin.describe_topics([spec.name for spec in specs])
        counts = {t["topic"]: len(t["partitions"]) for t in described if not t["error_code"]}
        grow: dict[str, Any] = {}
        for spec in specs:
            have = counts.get(spec.name)
            if have is None:
                continue
            if spec.partitions > have:
                logger.info("topic %s: increasing partitions %d -> %d", spec.name, have, spec.partitions)
                grow[spec.name] = NewPartitions(spec.partitions)
            elif spec.partitions < have:
                logger.warning(
                    "topic %s has %d partitions, spec asks for %d: partitions cannot be removed",
                    spec.name,
                    have,
                    spec.partitions,
                )
        if grow:
            await self._admin.create_partitions(grow, timeout_ms=self._request_timeout_ms)

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete topics; one that does not exist is already in the desired state."""
        self._require_started()
        if not names:
            return
        response = await self._admin.delete_topics(list(names), timeout_ms=self._request_timeout_ms)
        for name, code, message in _topic_errors(response):
            if code and code != UnknownTopicOrPartitionError.errno:
                raise for_code(code)(f"deleting topic {name}: {message}")
        logger.info("deleted topics %s", ", ".join(names))

    async def list_topics(self) -> set[str]:
        """Topic names, without Kafka's internal ones (`__consumer_offsets`, ...), so the answer
        is the same as the in-process bus gives for the same topics."""
        self._require_started()
        topics = await self._admin.describe_topics(None)
        return {t["topic"] for t in topics if not t.get("is_internal") and not t["topic"].startswith("__")}

    # -- consumers -------------------------------------------------------------------------------

    def consumer(
        self,
        group_id: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
    ) -> KafkaConsumer:
        if bool(topics) == (pattern is not None):
            raise ValueError("give either topics or pattern, not both and not neither")
        return KafkaConsumer(
            self.bootstrap_servers,
            group_id,
            topics=topics,
            pattern=pattern,
            from_beginning=from_beginning,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
            metadata_max_age_ms=self._metadata_max_age_ms,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            connection_options=self._connection_options,
        )


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    """(topic, error code, message) from a CreateTopics/DeleteTopics response of any version
    (the field is `topic_errors` in one and `topic_error_codes` in the other, message optional)."""
    obj = response.to_object()
    rows = obj.get("topic_errors", obj.get("topic_error_codes", []))
    return [(row["topic"], row["error_code"], row.get("error_message")) for row in rows]


class KafkaConsumer(Consumer):
    """A consumer-group member on aiokafka with explicit commits.

    With a `pattern`, the subscription is re-evaluated whenever aiokafka refreshes its metadata
    (every `metadata_max_age_ms`), which is how a topic created for a new organization is picked
    up without a restart; the default of 5 s keeps that delay short at a negligible cost.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        *,
        topics: Sequence[str] = (),
        pattern: str | None = None,
        from_beginning: bool = True,
        client_id: str = "doraflow",
        request_timeout_ms: int = 30_000,
        metadata_max_age_ms: int = 5_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        max_poll_interval_ms: int = 300_000,
        connection_options: Mapping[str, Any] | None = None,
    ) -> None:
        if bool(topics) == (pattern is not None):
            raise ValueError("give either topics or pattern, not both and not neither")
        self.group_id = group_id
        self._topics = list(topics)
        # aiokafka tests `pattern.match(topic)`, which anchors only at the start; the interface
        # promises a full match, so anchor the end too.
        self._pattern = rf"(?:{pattern})\Z" if pattern is not None else None
        if self._pattern is not None:
            re.compile(self._pattern)  # fail here, not inside aiokafka's background task
        # aiokafka binds its clients to the running loop when constructed, and `consumer()` may be
        # called outside one, so the client itself is created in `start`.
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest" if from_beginning else "latest",
            "request_timeout_ms": max(request_timeout_ms, session_timeout_ms + 5_000),
            "metadata_max_age_ms": metadata_max_age_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            **dict(connection_options or {}),
        }
        self._consumer: Any = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(**self._options)
        if self._pattern is not None:
            consumer.subscribe(pattern=self._pattern)
        else:
            consumer.subscribe(topics=self._topics)
        await consumer.start()
        self._consumer = consumer

    async def stop(self) -> None:
        """Leave the group. Nothing is committed here: only the caller knows what was stored."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    def _require_started(self) -> Any:
        if self._consumer is None:
            raise RuntimeError("consumer is not started")
        return self._consumer

    def assignment(self) -> set[TopicPartition]:
        """Partitions this member currently owns (for tests and diagnostics)."""
        return {TopicPartition(tp.topic, tp.partition) for tp in self._require_started().assignment()}

    async def getmany(self, max_records: int, timeout_ms: int) -> list[Message]:
        """Flatten aiokafka's per-partition batches; each partition's records stay in offset order.

        Keys are decoded leniently: a foreign producer's non-UTF-8 key must not stop the consumer
        loop, the message still reaches validation (and the DLQ) with its value intact."""
        batches = await self._require_started().getmany(timeout_ms=timeout_ms, max_records=max_records)
        messages: list[Message] = []
        for records in batches.values():
            for record in records:
                key = record.key.decode("utf-8", errors="replace") if record.key is not None else None
                messages.append(
                    Message(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=key,
                        value=record.value if record.value is not None else b"",
                        timestamp_ms=record.timestamp,
                    )
                )
        return messages

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        await self._require_started().commit(
            {KafkaTopicPartition(tp.topic, tp.partition): o for tp, o in offsets.items()}
        )

    async def seek_to_committed(self) -> None:
        """Rewind each assigned partition to its committed offset, or to its beginning if the
        group never committed there: after a failed batch nothing may be skipped (aiokafka's own
        `seek_to_committed` leaves such partitions where they are, i.e. after the failed batch)."""
        consumer = self._require_started()
        for tp in consumer.assignment():
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
