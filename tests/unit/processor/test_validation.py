"""Validation and dead letters: what is refused, why, and what the DLQ record carries."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import orjson
import pytest

from doraflow.core.bus import Message
from doraflow.processor.config import topic_pattern
from doraflow.processor.validation import (
    Accepted,
    ErrorKind,
    Rejected,
    dlq_record,
    dlq_topic,
    organization_of,
    validate,
)
from tests.unit.processor import factories as f


def msg(value: bytes, topic: str = "doraflow.acme.git.commits") -> Message:
    return Message(topic, 3, 41, "acme/acme/api", value, 1_700_000_000_000)


def rejected(value: bytes, topic: str = "doraflow.acme.git.commits") -> Rejected:
    outcome = validate(msg(value, topic), "doraflow")
    assert isinstance(outcome, Rejected)
    return outcome


def envelope(**changes: object) -> bytes:
    document = orjson.loads(f.encode(f.commit(1)))
    document.update(changes)
    return orjson.dumps(document)


def test_a_valid_event_is_accepted_with_the_topics_organization() -> None:
    outcome = validate(msg(f.encode(f.commit(1))), "doraflow")
    assert isinstance(outcome, Accepted)
    assert outcome.organization == "acme"
    assert outcome.event.envelope.schema_ == "git.commit/v1"


@pytest.mark.parametrize(
    ("value", "kind", "reason"),
    [
        (b"{not json", ErrorKind.INVALID_JSON, "not JSON"),
        (b"[1, 2]", ErrorKind.INVALID_ENVELOPE, "must be a JSON object"),
        (envelope(event_id="xyz"), ErrorKind.INVALID_ENVELOPE, "event_id"),
        (envelope(schema="git.commit/v9"), ErrorKind.UNKNOWN_SCHEMA, "unknown schema 'git.commit/v9'"),
        (envelope(data={"sha": "zz"}), ErrorKind.INVALID_DATA, "invalid git.commit/v1 data"),
    ],
)
def test_invalid_messages_are_rejected_with_a_reason(value: bytes, kind: ErrorKind, reason: str) -> None:
    outcome = rejected(value)
    assert outcome.kind is kind
    assert reason in outcome.reason
    assert outcome.organization == "acme"


def test_an_envelope_naming_another_organization_is_refused() -> None:
    outcome = rejected(f.encode(f.commit(1), organization="globex"))
    assert outcome.kind is ErrorKind.WRONG_TOPIC
    assert "globex" in outcome.reason


def test_an_event_on_the_wrong_topic_is_refused() -> None:
    outcome = rejected(f.encode(f.commit(1)), topic="doraflow.acme.git.deployments")
    assert outcome.kind is ErrorKind.WRONG_TOPIC
    assert "doraflow.acme.git.commits" in outcome.reason


def test_dlq_record_has_original_bytes_reason_and_origin() -> None:
    original = b"\xff\xfe not utf-8 {"
    outcome = rejected(original)
    record = orjson.loads(dlq_record(outcome, now=datetime(2025, 1, 2, tzinfo=UTC)))
    assert record == {
        "error": "invalid_json",
        "reason": outcome.reason,
        "origin": {
            "topic": "doraflow.acme.git.commits",
            "partition": 3,
            "offset": 41,
            "key": "acme/acme/api",
            "timestamp_ms": 1_700_000_000_000,
        },
        "organization": "acme",
        "value_base64": base64.b64encode(original).decode(),
        "dead_lettered_at": "2025-01-02T00:00:00+00:00",
    }
    assert base64.b64decode(record["value_base64"]) == original


def test_dlq_topic_and_organization_come_from_the_topic_name() -> None:
    assert organization_of("doraflow.acme-corp.jira.issues", "doraflow") == "acme-corp"
    assert dlq_topic("doraflow", "acme-corp") == "doraflow.acme-corp.dlq"


@pytest.mark.parametrize(
    ("topic", "matches"),
    [
        ("doraflow.acme.git.commits", True),
        ("doraflow.acme.git.pull_requests", True),
        ("doraflow.new-org.jira.transitions", True),
        ("doraflow.acme.incidents", True),
        ("doraflow.acme.dlq", False),  # never consume our own dead letters
        ("doraflow.acme.git", False),
        ("other.acme.git.commits", False),
        ("doraflowX.acme.git.commits", False),
        ("doraflow.a.b.git.commits", False),
    ],
)
def test_subscription_pattern(topic: str, matches: bool) -> None:
    assert (re.fullmatch(topic_pattern("doraflow"), topic) is not None) is matches
