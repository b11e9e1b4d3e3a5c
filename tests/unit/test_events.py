from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from doraflow.core.events import (
    SCHEMAS,
    CommitData,
    DeploymentData,
    EventValidationError,
    PersonRef,
    RepositoryRef,
    make_event,
    message_key,
    organization_topics,
    parse_event,
)

REPO = RepositoryRef(provider="github", id="R_1", name="acme/api")
COLLECTED = datetime(2024, 5, 1, tzinfo=UTC)


def commit(**overrides: object) -> CommitData:
    fields: dict[str, object] = {
        "repository": REPO,
        "sha": "a" * 40,
        "author": PersonRef(email="dev@acme.io"),
        "authored_at": datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
        "additions": 3,
    }
    return CommitData.model_validate({**fields, **overrides})


def test_envelope_round_trip_keeps_schema_topic_and_instants() -> None:
    event = make_event(
        commit(), organization="acme", integration="team/gh", source="github", collected_at=COLLECTED
    )
    parsed = parse_event(event.to_bytes())
    assert parsed.envelope.schema_ == "git.commit/v1"
    assert orjson.loads(event.to_bytes())["schema"] == "git.commit/v1"
    assert parsed.envelope.topic("doraflow") == "doraflow.acme.git.commits"
    assert isinstance(parsed.data, CommitData)
    # 12:00+02:00 travels as 10:00Z; a parsed model keeps whatever offset the JSON had
    assert b'"authored_at":"2024-05-01T10:00:00Z"' in event.to_bytes()
    assert parsed.data.authored_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert commit().authored_at.utcoffset() == timedelta(hours=2)
    assert parsed.envelope.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert message_key(parsed.envelope, parsed.data) == "acme/acme/api"


def test_one_pass_and_stepwise_parsing_agree_whatever_the_key_order() -> None:
    """Producers write `schema` first and get the one-pass path; any other key order is still a
    valid event and must parse to the same thing (through the stepwise path)."""
    event = make_event(commit(), organization="acme", integration="a/b", source="github")
    raw = event.to_bytes()
    assert raw.startswith(b'{"schema":')
    reordered = orjson.dumps(dict(reversed(list(orjson.loads(raw).items()))))
    fast, stepwise = parse_event(raw), parse_event(reordered)
    assert fast.data == stepwise.data
    assert fast.envelope.model_dump(exclude={"data"}) == stepwise.envelope.model_dump(exclude={"data"})


def test_an_invalid_event_of_a_known_schema_is_described_field_by_field() -> None:
    document = orjson.loads(
        make_event(commit(), organization="acme", integration="a/b", source="g").to_bytes()
    )
    document["data"]["sha"] = "not-a-sha"
    with pytest.raises(EventValidationError, match=r"^invalid git.commit/v1 data: sha: String should match"):
        parse_event(orjson.dumps(document))


def test_event_id_is_stable_for_same_content_and_changes_with_content() -> None:
    first = make_event(commit(), organization="acme", integration="a/b", source="github")
    again = make_event(
        commit(),
        organization="acme",
        integration="a/b",
        source="github",
        collected_at=datetime.now(UTC) + timedelta(hours=1),
    )
    changed = make_event(commit(additions=4), organization="acme", integration="a/b", source="github")
    other_org = make_event(commit(), organization="other", integration="a/b", source="github")
    assert first.event_id == again.event_id
    assert first.event_id != changed.event_id
    assert first.event_id != other_org.event_id


def test_same_instant_in_other_time_zone_gives_same_event_id() -> None:
    in_utc = commit(authored_at=datetime(2024, 5, 1, 10, tzinfo=UTC))
    in_cest = commit(authored_at=datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert (
        make_event(in_utc, organization="acme", integration="a/b", source="github").event_id
        == make_event(in_cest, organization="acme", integration="a/b", source="github").event_id
    )


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        commit(authored_at=datetime(2024, 5, 1, 12))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (orjson.dumps({"schema": "git.commit/v1"}), "invalid envelope: event_id"),
    ],
)
def test_malformed_messages_explain_what_is_wrong(raw: bytes, reason: str) -> None:
    with pytest.raises(EventValidationError, match=reason):
        parse_event(raw)


def test_unknown_schema_version_is_an_error_not_a_guess() -> None:
    document = orjson.loads(
        make_event(commit(), organization="acme", integration="a/b", source="github").to_bytes()
    )
    document["schema"] = "git.commit/v9"
    with pytest.raises(EventValidationError, match=r"unknown schema 'git\.commit/v9'"):
        parse_event(orjson.dumps(document))


def test_invalid_data_names_the_field() -> None:
    document = orjson.loads(
        make_event(commit(), organization="acme", integration="a/b", source="github").to_bytes()
    )
    document["data"]["sha"] = "not-a-sha"
    with pytest.raises(EventValidationError, match=r"invalid git.commit/v1 data: sha"):
        parse_event(orjson.dumps(document))


def test_deployment_without_repository_is_keyed_by_service() -> None:
    deployment = DeploymentData(
        deployment_id="argo-17",
        service="checkout",
        environment="prod",
        status="success",
        started_at=COLLECTED,
        commit_shas=["b" * 40],
    )
    event = make_event(deployment, organization="acme", integration="api", source="argocd")
    assert message_key(event, deployment) == "acme/checkout"
    assert event.topic("df") == "df.acme.git.deployments"


def test_every_schema_has_a_topic_and_org_topics_include_the_dlq() -> None:
    topics = organization_topics("doraflow", "acme")
    assert "doraflow.acme.dlq" in topics
    for info in SCHEMAS.values():
        assert f"doraflow.acme.{info.topic_suffix}" in topics
    assert len(topics) == len(set(topics)) == 11
