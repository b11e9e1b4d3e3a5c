"""Event bus: Kafka in a cluster, in-process in the embedded mode (DESIGN.md §1, §4).

Services ask `create_bus` for an `EventBus` and never import aiokafka, so `doraflow up` swaps the
broker for `MemoryBus` through configuration alone (`DORAFLOW_KAFKA_BOOTSTRAP_SERVERS` unset).
"""

from __future__ import annotations

from typing import Any

from doraflow.core.bus.base import Consumer, EventBus, Message, TopicPartition, TopicSpec
from doraflow.core.bus.memory import MemoryBus, UnknownTopicError

__all__ = [
    "Consumer",
    "EventBus",
    "MemoryBus",
    "Message",
    "TopicPartition",
    "TopicSpec",
    "UnknownTopicError",
    "create_bus",
]


def create_bus(bootstrap_servers: str | None, **kafka_options: Any) -> EventBus:
    """A `KafkaBus` for `bootstrap_servers` (options go to its constructor), or a `MemoryBus`
    when there is no broker to talk to (None or empty).

    The Kafka module is imported only here so the embedded mode does not load aiokafka."""
    if not bootstrap_servers:
        return MemoryBus()
    from doraflow.core.bus.kafka import KafkaBus  # lazy on purpose (see docstring)

    return KafkaBus(bootstrap_servers, **kafka_options)
