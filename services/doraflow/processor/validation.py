"""Validate: turn a consumed message into a typed event, or into a dead letter saying why.

Everything here is pure (no I/O), so the rules are unit-tested without a broker. A message is
dead-lettered when it is not an event (JSON, envelope, unknown schema version, invalid data) and
also when it is on the wrong topic: the organization is taken from the *topic* (the operator gives
each organization its own topics), so an envelope naming another organization, or a schema that
belongs on another topic, is refused rather than written into some other tenant's data.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import orjson

from doraflow.core.bus import Message
from doraflow.core.events import (
    DLQ_SUFFIX,
    SCHEMAS,
    EventValidationError,
    ParsedEvent,
    parse_event,
    topic_name,
)


class ErrorKind(StrEnum):
    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_SCHEMA = "unknown_schema"
    INVALID_DATA = "invalid_data"
    WRONG_TOPIC = "wrong_topic"
    REJECTED_BY_DATABASE = "rejected_by_database"


@dataclass(frozen=True, slots=True)
class Accepted:
    message: Message
    organization: str
    event: ParsedEvent


@dataclass(frozen=True, slots=True)
class Rejected:
    message: Message
    organization: str
    kind: ErrorKind
    reason: str


@functools.lru_cache(maxsize=4096)
def organization_of(topic: str, prefix: str) -> str:
    """`{prefix}.{org}.…` → `org` (the subscription pattern guarantees the shape)."""
    rest = topic[len(prefix) + 1 :] if topic.startswith(prefix + ".") else topic
    return rest.split(".", 1)[0]


def dlq_topic(prefix: str, organization: str) -> str:
    return topic_name(prefix, organization, DLQ_SUFFIX)


def classify(error: EventValidationError) -> ErrorKind:
    """Which check failed, from `parse_event`'s message (its wording is part of its contract)."""
    text = str(error)
    if text.startswith("not JSON"):
        return ErrorKind.INVALID_JSON
    if text.startswith("unknown schema"):
        return ErrorKind.UNKNOWN_SCHEMA
    if text.startswith("invalid ") and not text.startswith("invalid envelope"):
        return ErrorKind.INVALID_DATA
    return ErrorKind.INVALID_ENVELOPE


def validate(message: Message, prefix: str) -> Accepted | Rejected:
    organization = organization_of(message.topic, prefix)
    try:
        event = parse_event(message.value)
    except EventValidationError as exc:
        return Rejected(message, organization, classify(exc), str(exc))
    envelope = event.envelope
    if envelope.organization != organization:
        return Rejected(
            message,
            organization,
            ErrorKind.WRONG_TOPIC,
            f"envelope names organization {envelope.organization!r} but the topic belongs to "
            f"{organization!r}",
        )
    expected = _expected_topic(prefix, organization, envelope.schema_)
    if message.topic != expected:
        return Rejected(
            message,
            organization,
            ErrorKind.WRONG_TOPIC,
            f"schema {envelope.schema_} belongs on {expected}, not {message.topic}",
        )
    return Accepted(message, organization, event)


@functools.lru_cache(maxsize=4096)
def _expected_topic(prefix: str, organization: str, schema: str) -> str:
    return topic_name(prefix, organization, SCHEMAS[schema].topic_suffix)


def dlq_record(rejected: Rejected, *, now: datetime | None = None) -> bytes:
    """The dead letter: the original bytes (base64, so even non-UTF-8 input survives), why it was
    refused, and where it came from, so an operator can fix the producer and replay it."""
    message = rejected.message
    return orjson.dumps(
        {
            "error": rejected.kind.value,
            "reason": rejected.reason,
            "origin": {
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "key": message.key,
                "timestamp_ms": message.timestamp_ms,
            },
            "organization": rejected.organization,
            "value_base64": base64.b64encode(message.value).decode("ascii"),
            "dead_lettered_at": (now or datetime.now(UTC)).isoformat(),
        }
    )
