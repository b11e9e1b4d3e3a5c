"""Push ingestion publishes the processor's events on the organization's topics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from doraflow.core.bus import Message
from doraflow.core.events import DeploymentData, IncidentData, parse_event
from doraflow.core.models import Incident, Repository
from tests.integration.api.conftest import Api, Org, bearer

pytestmark = pytest.mark.integration
SHA = "0123456789abcdef0123456789abcdef01234567"


async def read_topic(api: Api, topic: str) -> list[Message]:
    consumer = api.bus.consumer(f"test-{topic}", topics=[topic])
    await consumer.start()
    try:
        return await consumer.getmany(100, 200)
    finally:
        await consumer.stop()


def deployments(messages: list[Message]) -> list[DeploymentData]:
    parsed = [parse_event(message.value).data for message in messages]
    assert all(isinstance(data, DeploymentData) for data in parsed)
    return [data for data in parsed if isinstance(data, DeploymentData)]


async def member(api: Api, org: Org) -> dict[str, str]:
    return bearer(await api.key(org, "member"))


async def test_deployment_is_published_as_a_deployment_event(api: Api) -> None:
    org = await api.new_org()
    headers = await member(api, org)
    finished = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    body = {
        "deployment_id": "build-42",
        "source": "jenkins",
        "service": "checkout",
        "status": "success",
        "started_at": (finished - timedelta(minutes=5)).isoformat(),
        "finished_at": finished.isoformat().replace("+00:00", "Z"),
        "revision": SHA,
        "commit_shas": [SHA, "abcdef1"],
        "deployed_by": {"email": "ci@acme.example"},
        "url": "https://ci.acme.example/42",
    }
    response = await api.client.post("/api/v1/deployments", json=body, headers=headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "accepted"
    assert accepted["schema"] == "git.deployment/v1"

    messages = await read_topic(api, f"doraflow.{org.slug}.git.deployments")
    assert len(messages) == 1
    message = messages[0]
    assert message.key == f"{org.slug}/checkout"
    event = parse_event(message.value)
    envelope, data = event.envelope, event.data
    assert envelope.event_id == accepted["event_id"]
    assert envelope.schema_ == "git.deployment/v1"
    assert envelope.organization == org.slug
    assert envelope.source == "jenkins"
    assert envelope.integration.startswith("api/dfk_")
    assert envelope.occurred_at == finished
    assert data.model_dump(exclude_none=True) == {
        "deployment_id": "build-42",
        "service": "checkout",
        "environment": "production",
        "is_production": True,
        "status": "success",
        "started_at": finished - timedelta(minutes=5),
        "finished_at": finished,
        "revision": SHA,
        "commit_shas": [SHA, "abcdef1"],
        "deployed_by": {"email": "ci@acme.example"},
        "is_hotfix": False,
        "is_rollback": False,
        "url": "https://ci.acme.example/42",
    }

    # The same report again is the same event (the processor's upsert makes it a no-op).
    again = await api.client.post("/api/v1/deployments", json=body, headers=headers)
    assert again.json()["event_id"] == accepted["event_id"]


async def test_reports_without_times_keep_the_first_start(api: Api) -> None:
    org = await api.new_org()
    headers = await member(api, org)
    first = await api.client.post(
        "/api/v1/deployments",
        json={"deployment_id": "run-7", "service": "api", "status": "in_progress", "environment": "staging"},
        headers=headers,
    )
    assert first.status_code == 202
    done = await api.client.post(
        "/api/v1/deployments",
        json={"deployment_id": "run-7", "service": "api", "status": "success", "environment": "staging"},
        headers=headers,
    )
    assert done.status_code == 202
    events = [
        parse_event(m.value).data for m in await read_topic(api, f"doraflow.{org.slug}.git.deployments")
    ]
    assert [e.status for e in events] == ["in_progress", "success"]  # type: ignore[attr-defined]
    assert events[0].started_at == events[1].started_at  # type: ignore[attr-defined]
    assert events[1].is_production is False  # type: ignore[attr-defined]
    assert events[1].finished_at >= events[1].started_at  # type: ignore[attr-defined]


async def test_repository_by_name_and_validation(api: Api) -> None:
    org = await api.new_org()
    headers = await member(api, org)
    async with api.factory() as session:
        session.add(
            Repository(
                organization_id=org.id, name="acme/api", provider="gitlab", provider_id="77", service="api"
            )
        )
        await session.commit()
    ok = await api.client.post(
        "/api/v1/deployments", json={"deployment_id": "d1", "repository": "acme/api"}, headers=headers
    )
    assert ok.status_code == 202, ok.text
    (event,) = deployments(await read_topic(api, f"doraflow.{org.slug}.git.deployments"))
    assert event.repository is not None
    assert event.repository.model_dump(exclude_none=True) == {
        "provider": "gitlab",
        "id": "77",
        "name": "acme/api",
        "service": "api",
    }
    for body, field in [
        ({"deployment_id": "d2", "repository": "acme/unknown"}, "repository"),
        ({"deployment_id": "d2"}, "body"),
        ({"deployment_id": "d2", "service": "s", "started_at": "2025-01-01T00:00:00"}, "started_at"),
        ({"deployment_id": "d2", "service": "s", "revision": "not-a-sha"}, "revision"),
        ({"deployment_id": "has space", "service": "s"}, "deployment_id"),
        ({"deployment_id": "d2", "service": "s", "status": "exploded"}, "status"),
        (
            {
                "deployment_id": "d2",
                "service": "s",
                "started_at": "2025-01-02T00:00:00Z",
                "finished_at": "2025-01-01T00:00:00Z",
            },
            "finished_at",
        ),
    ]:
        response = await api.client.post("/api/v1/deployments", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, (body, response.json())


async def test_incident_and_its_resolution(api: Api) -> None:
    org = await api.new_org()
    headers = await member(api, org)
    opened = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    reported = await api.client.post(
        "/api/v1/incidents",
        json={
            "incident_id": "PD-1",
            "source": "pagerduty",
            "title": "Checkout down",
            "severity": "sev1",
            "service": "checkout",
            "created_at": opened.isoformat(),
            "deployment_id": "build-42",
        },
        headers=headers,
    )
    assert reported.status_code == 202, reported.text
    resolved = await api.client.post(
        "/api/v1/incidents/PD-1/resolve", json={"source": "pagerduty"}, headers=headers
    )
    assert resolved.status_code == 202, resolved.text
    messages = await read_topic(api, f"doraflow.{org.slug}.incidents")
    events = [parse_event(m.value) for m in messages]
    assert [e.envelope.schema_ for e in events] == ["incident/v1", "incident/v1"]
    assert {m.key for m in messages} == {f"{org.slug}/checkout"}
    first, second = (e.data for e in events)
    assert isinstance(first, IncidentData)
    assert isinstance(second, IncidentData)
    assert first.resolved_at is None
    assert second.resolved_at is not None
    assert second.resolved_at >= opened
    assert second.model_dump(exclude={"resolved_at"}) == first.model_dump(exclude={"resolved_at"})
    assert events[1].envelope.event_id == resolved.json()["event_id"]

    unknown = await api.client.post("/api/v1/incidents/PD-404/resolve", headers=headers)
    assert unknown.status_code == 404
    wrong_source = await api.client.post(
        "/api/v1/incidents/PD-1/resolve", json={"source": "opsgenie"}, headers=headers
    )
    assert wrong_source.status_code == 404
    early = await api.client.post(
        "/api/v1/incidents/PD-1/resolve",
        json={"source": "pagerduty", "resolved_at": (opened - timedelta(hours=1)).isoformat()},
        headers=headers,
    )
    assert early.status_code == 422
    assert early.json()["errors"][0]["field"] == "resolved_at"


async def test_resolving_an_incident_the_processor_stored(api: Api) -> None:
    org = await api.new_org()
    async with api.factory() as session:
        session.add(
            Incident(
                organization_id=org.id,
                source="api",
                external_id="INC-9",
                title="Stored",
                service="search",
                created_at=datetime(2025, 5, 1, tzinfo=UTC),
            )
        )
        await session.commit()
    response = await api.client.post(
        "/api/v1/incidents/INC-9/resolve", json={"resolved_at": "2025-05-01T03:00:00Z"}, headers=org.headers
    )
    assert response.status_code == 202
    event = parse_event((await read_topic(api, f"doraflow.{org.slug}.incidents"))[0].value)
    assert event.data.model_dump(exclude_none=True) == {
        "external_id": "INC-9",
        "title": "Stored",
        "service": "search",
        "created_at": datetime(2025, 5, 1, tzinfo=UTC),
        "resolved_at": datetime(2025, 5, 1, 3, tzinfo=UTC),
    }


async def test_bus_failures_are_503(api: Api) -> None:
    org = await api.new_org()
    await api.bus.delete_topics([f"doraflow.{org.slug}.git.deployments"])
    response = await api.client.post(
        "/api/v1/deployments", json={"deployment_id": "x", "service": "s"}, headers=org.headers
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"] == "application/problem+json"
