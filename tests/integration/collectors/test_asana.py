"""The Asana client against the fake Asana API over loopback: exact events for a small hand-made
project (sections as statuses, stories as transitions, a custom field as story points, incidents
by tag), the events API with sync tokens for incremental runs (and a token that expired), offset
pagination with resume, 429 + Retry-After, a bad token, a vanished custom field, a deleted project
while the others keep syncing, and the webhook handshake."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from doraflow.collectors.base import Batch, CollectorError, Resource
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.runtime import CollectorRuntime
from doraflow.collectors.service import create_app
from doraflow.collectors.webhooks import WEBHOOKS
from doraflow.collectors.work.asana import AsanaClient
from doraflow.collectors.work.webhooks import asana_handle, forget_asana_secrets
from doraflow.core.bus import MemoryBus
from doraflow.core.events import EventData, IncidentData, PersonRef, TransitionData, WorkItemData
from doraflow.core.resources import Integration
from tests.fakes.asana import FakeAsana, ref, section_moved, story
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.integration

TOKEN = "asana-pat"
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
ADA = ref("user-ada", "user", "Ada Lovelace", email="ada@example.com")
BOB = ref("user-bob", "user", "Bob Builder")
ADA_REF = PersonRef(name="Ada Lovelace", email="ada@example.com", username="user-ada")
BOB_REF = PersonRef(name="Bob Builder", username="user-bob")
TODO, DOING = ref("s1", "section", "To Do"), ref("s2", "section", "In Progress")
REVIEW, DONE = ref("s3", "section", "Review"), ref("s4", "section", "Done")
POINTS = ref("cf-points", "custom_field", "Story Points", resource_subtype="number")
ESTIMATE = ref("cf-estimate", "custom_field", "Estimate", resource_subtype="number")
PRIORITY = ref("cf-priority", "custom_field", "Priority", resource_subtype="enum")


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def number(field: dict[str, Any], value: float) -> dict[str, Any]:
    return {**field, "type": "number", "number_value": value, "display_value": str(value)}


def enum(field: dict[str, Any], value: str) -> dict[str, Any]:
    return {
        **field,
        "type": "enum",
        "enum_value": ref(f"opt-{value}", "enum_option", value),
        "display_value": value,
    }


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def integration(base_url: str, **spec: Any) -> Integration:
    return Integration.model_validate(
        {
            "metadata": {"name": "acme-asana", "namespace": "doraflow"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "asana",
                "baseUrl": f"{base_url}/api/1.0",
                "credentialsSecretRef": {"name": "asana"},
                "scope": {"projects": ["Web"]},
                "backfillDays": 90,
                **spec,
            },
        }
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def client(
    base_url: str,
    *,
    token: str = TOKEN,
    clock: Clock | None = None,
    sleeps: Sleeps | None = None,
    page_size: int = 100,
    **spec: Any,
) -> AsanaClient:
    return AsanaClient(
        integration(base_url, **spec),
        token,
        page_size=page_size,
        clock=clock or Clock(NOW),
        sleep=sleeps or Sleeps(),
    )


def web_project(fake: FakeAsana) -> None:
    web = fake.add_project("1201", "Web", [TODO, DOING, REVIEW, DONE], [POINTS, ESTIMATE, PRIORITY])
    fake.add_task(
        "3001",
        "Login page",
        project=web,
        section=REVIEW,
        created=at(1),
        modified=at(4, 15),
        completed=at(4, 15),
        assignee=ADA,
        tags=["backend"],
        custom=[number(POINTS, 5)],
        stories=[
            story("9000", at(1, 9, 1), ADA, "added_to_project"),
            section_moved("9001", at(2, 10), ADA, TODO, DOING),
            story("9002", at(2, 11), BOB, "comment_added", "looks good"),
            section_moved("9003", at(3, 11), ADA, DOING, REVIEW),
            story("9004", at(4, 15), BOB, "marked_complete"),
        ],
    )
    fake.add_task(
        "3002",
        "Sign-up flow",
        project=web,
        section=DOING,
        created=at(2),
        modified=at(5),
        custom=[number(POINTS, 3), number(ESTIMATE, 8)],
        stories=[section_moved("9005", at(5), ADA, TODO, DOING)],
    )
    fake.add_task(
        "3003",
        "Payments down",
        project=web,
        section=DOING,
        created=at(6, 8),
        modified=at(6, 10),
        completed=at(6, 10),
        tags=["incident", "service:payments"],
        custom=[enum(PRIORITY, "High")],
        stories=[
            section_moved("9006", at(6, 8, 30), BOB, TODO, DOING),
            story("9007", at(6, 10), BOB, "marked_complete"),
        ],
    )


@pytest.fixture
def fake() -> FakeAsana:
    asana = FakeAsana(token=TOKEN)
    web_project(asana)
    return asana


@pytest.fixture
def base_url(fake: FakeAsana) -> Iterator[str]:
    with serve_in_thread(fake.app()) as url:
        yield url


async def drain(batches: AsyncIterator[Batch], sink: list[EventData]) -> dict[str, Any] | None:
    cursor = None
    async for batch in batches:
        sink.extend(batch.events)
        cursor = batch.cursor if batch.cursor is not None else cursor
    return cursor


async def collect(
    asana: AsanaClient, cursor: dict[str, Any] | None = None, name: str = "Web"
) -> tuple[list[EventData], dict[str, Any] | None]:
    scope = next(s for s in await asana.list_scopes() if s.name == name)
    events: list[EventData] = []
    saved = await drain(asana.collect(scope, Resource.ISSUES, cursor), events)
    return events, saved if saved is not None else cursor


def of(kind: type[EventData], events: list[EventData]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def link(gid: str) -> str:
    return f"https://app.asana.com/0/1201/{gid}"


EXPECTED_ITEMS = [
    WorkItemData(
        project="Web",
        external_id="3001",
        title="Login page",
        issue_type="Task",
        status="Review",
        status_category="done",  # completed, whatever its section
        assignee=ADA_REF,
        story_points=5.0,
        labels=["backend"],
        created_at=at(1),
        updated_at=at(4, 15),
        resolved_at=at(4, 15),
        url=link("3001"),
    ),
    WorkItemData(
        project="Web",
        external_id="3002",
        title="Sign-up flow",
        issue_type="Task",
        status="In Progress",
        status_category="in_progress",
        story_points=3.0,
        created_at=at(2),
        updated_at=at(5),
        url=link("3002"),
    ),
    WorkItemData(
        project="Web",
        external_id="3003",
        title="Payments down",
        issue_type="Task",
        status="In Progress",
        status_category="done",
        priority="High",
        labels=["incident", "service:payments"],
        created_at=at(6, 8),
        updated_at=at(6, 10),
        resolved_at=at(6, 10),
        url=link("3003"),
    ),
]


def transition(
    task: str, sid: str, old: str, new: str, cats: tuple[Any, Any], when: datetime, who: PersonRef
) -> TransitionData:
    return TransitionData(
        project="Web",
        issue_external_id=task,
        transition_id=sid,
        from_status=old,
        to_status=new,
        from_category=cats[0],
        to_category=cats[1],
        transitioned_at=when,
        author=who,
    )


EXPECTED_TRANSITIONS = [
    transition("3001", "9001", "To Do", "In Progress", ("todo", "in_progress"), at(2, 10), ADA_REF),
    transition("3001", "9003", "In Progress", "Review", ("in_progress", "in_progress"), at(3, 11), ADA_REF),
    transition("3001", "9004", "Review", "Review", ("in_progress", "done"), at(4, 15), BOB_REF),
    transition("3002", "9005", "To Do", "In Progress", ("todo", "in_progress"), at(5), ADA_REF),
    transition("3003", "9006", "To Do", "In Progress", ("todo", "in_progress"), at(6, 8, 30), BOB_REF),
    transition("3003", "9007", "In Progress", "In Progress", ("in_progress", "done"), at(6, 10), BOB_REF),
]


async def test_first_sync_yields_exact_tasks_transitions_and_incidents(
    fake: FakeAsana, base_url: str
) -> None:
    asana = client(base_url)
    events, cursor = await collect(asana)
    await asana.aclose()
    assert of(WorkItemData, events) == EXPECTED_ITEMS
    assert of(TransitionData, events) == EXPECTED_TRANSITIONS
    assert of(IncidentData, events) == [
        IncidentData(
            external_id="3003",
            title="Payments down",
            severity="High",
            service="payments",
            created_at=at(6, 8),
            resolved_at=at(6, 10),
            url=link("3003"),
        )
    ]
    assert cursor == {
        "sync": "tok-0-0",
        "synced_at": "2026-03-20T12:00:00Z",
        "polled_at": "2026-03-20T12:00:00Z",
        "listing": None,
    }
    # the sync token is taken before the listing, so nothing changed during it is missed
    events_call, listing = fake.calls("/events")[0], fake.calls("/tasks?")[0]
    assert fake.requests.index(events_call) < fake.requests.index(listing)
    assert "modified_since=2025-12-20T12%3A00%3A00Z" in listing


async def test_second_run_reads_the_event_stream_and_only_the_tasks_it_names(
    fake: FakeAsana, base_url: str
) -> None:
    clock = Clock(NOW)
    asana = client(base_url, clock=clock)
    _, cursor = await collect(asana)
    fake.tasks["3002"].update(
        completed=True, completed_at="2026-03-20T13:00:00.000Z", modified_at="2026-03-20T13:00:00.000Z"
    )
    fake.stories["3002"].append(story("9008", datetime(2026, 3, 20, 13, tzinfo=UTC), ADA, "marked_complete"))
    fake.changed("3002", datetime(2026, 3, 20, 13, tzinfo=UTC))
    fake.changed("3002", datetime(2026, 3, 20, 13, tzinfo=UTC), story_gid="9008")
    clock.now = datetime(2026, 3, 20, 14, tzinfo=UTC)
    before = len(fake.requests)
    events, cursor = await collect(asana, cursor)
    await asana.aclose()
    assert [i.external_id for i in of(WorkItemData, events)] == ["3002"]
    assert of(TransitionData, events)[-1] == transition(
        "3002",
        "9008",
        "In Progress",
        "In Progress",
        ("in_progress", "done"),
        datetime(2026, 3, 20, 13, tzinfo=UTC),
        ADA_REF,
    )
    assert cursor is not None
    assert (cursor["sync"], cursor["synced_at"], cursor["polled_at"]) == (
        "tok-0-2",
        "2026-03-20T14:00:00Z",
        "2026-03-20T12:00:00Z",
    )
    new_calls = fake.requests[before:]
    assert not [c for c in new_calls if c.startswith("/tasks?")]  # no listing
    assert [c.split("?")[0] for c in new_calls if c.startswith("/tasks/")] == [
        "/tasks/3002",
        "/tasks/3002/stories",
    ]


async def test_an_expired_sync_token_lists_what_changed_since_the_last_run(
    fake: FakeAsana, base_url: str
) -> None:
    asana = client(base_url)
    _, cursor = await collect(asana)
    fake.expire_tokens()
    events, cursor = await collect(asana, cursor)
    await asana.aclose()
    assert cursor is not None
    assert cursor["sync"] == "tok-1-0"
    assert "modified_since=2026-03-20T11%3A55%3A00Z" in fake.calls("/tasks?")[-1]  # last run - 5 min
    assert of(WorkItemData, events) == []  # nothing was modified since


async def test_listing_pages_resume_and_an_expired_offset_starts_over(fake: FakeAsana, base_url: str) -> None:
    asana = client(base_url, page_size=2)
    scope = (await asana.list_scopes())[0]
    batches = asana.collect(scope, Resource.ISSUES, None)
    first = await anext(batches)
    await batches.aclose()  # type: ignore[attr-defined]
    assert [i.external_id for i in of(WorkItemData, first.events)] == ["3001", "3002"]
    assert first.cursor is not None
    assert first.cursor["listing"]["offset"] == "MDoy"  # base64 of the fake's "0:2"
    events, cursor = await collect(asana, first.cursor)
    assert [i.external_id for i in of(WorkItemData, events)] == ["3003"]
    assert cursor is not None
    assert cursor["listing"] is None

    fake.expire_offsets()
    events, _ = await collect(asana, first.cursor)
    await asana.aclose()
    assert [i.external_id for i in of(WorkItemData, events)] == ["3001", "3002", "3003"]


async def test_story_points_from_an_overriding_custom_field(fake: FakeAsana, base_url: str) -> None:
    asana = client(base_url, storyPointsField="Estimate")
    events, _ = await collect(asana)
    await asana.aclose()
    assert [i.story_points for i in of(WorkItemData, events)] == [None, 8.0, None]


async def test_a_vanished_custom_field_is_reported_after_collecting(fake: FakeAsana, base_url: str) -> None:
    asana = client(base_url, storyPointsField="Effort")
    scope = (await asana.list_scopes())[0]
    events: list[EventData] = []
    with pytest.raises(CollectorError) as raised:
        await drain(asana.collect(scope, Resource.ISSUES, None), events)
    await asana.aclose()
    assert len(of(WorkItemData, events)) == 3
    assert "Effort" in str(raised.value)
    assert "spec.storyPointsField" in raised.value.hint


async def test_429_waits_as_long_as_retry_after_says(fake: FakeAsana, base_url: str) -> None:
    fake.fail(429, times=1, path_contains="/stories", **{"Retry-After": "3"})
    sleeps = Sleeps()
    asana = client(base_url, sleeps=sleeps)
    events, _ = await collect(asana)
    await asana.aclose()
    assert sleeps.seconds == [3.0]
    assert of(TransitionData, events) == EXPECTED_TRANSITIONS


async def test_a_bad_token_is_a_problem_with_a_hint(base_url: str) -> None:
    asana = client(base_url, token="revoked")
    with pytest.raises(CollectorError) as raised:
        await asana.list_scopes()
    await asana.aclose()
    assert "401" in str(raised.value)
    assert "spec.credentialsSecretRef" in raised.value.hint


async def test_a_deleted_project_is_reported_while_the_others_sync(fake: FakeAsana, base_url: str) -> None:
    fake.add_project("1202", "Mobile", [TODO], [])
    asana = client(base_url, scope={"projects": ["Web", "Mobile", "1203"]})
    bus = MemoryBus()
    await bus.start()
    runtime = CollectorRuntime(
        asana.integration, asana, bus, MemoryCursorStore(), organization="acme", topic_prefix="doraflow"
    )
    scopes = await asana.list_scopes()
    assert [(s.name, s.id) for s in scopes] == [("Web", "1201"), ("Mobile", "1202"), ("1203", "1203")]
    del fake.projects["1202"]  # deleted after the listing
    [result] = await runtime.sync_once(Resource.ISSUES)
    await asana.aclose()
    assert (result.scopes, result.succeeded, result.failed) == (3, 1, 2)
    problems = runtime.status.problems.values()
    assert sorted(p.scope for p in problems) == ["1203", "Mobile"]
    assert all("spec.scope.projects" in p.hint for p in problems)
    assert result.events == 3 + 6 + 1
    await bus.stop()


def test_asana_webhook_handshake_then_signed_deliveries() -> None:
    forget_asana_secrets()
    source = WEBHOOKS["asana"]
    handshake = {"x-hook-secret": "chosen-by-asana"}
    assert source.verify(handshake, b"", None) is None
    outcome = asana_handle(handshake, b"")
    assert (outcome.status_code, dict(outcome.headers)) == (200, {"X-Hook-Secret": "chosen-by-asana"})
    assert outcome.syncs == ()

    body = orjson.dumps(
        {"events": [{"action": "changed", "resource": ref("3002", "task"), "parent": ref("1201", "project")}]}
    )
    signature = hmac.new(b"chosen-by-asana", body, hashlib.sha256).hexdigest()
    assert source.verify({"x-hook-signature": signature}, body, None) is None
    assert source.verify({"x-hook-signature": "0" * 64}, body, None) is not None
    assert source.verify({}, body, None) is not None
    [request] = asana_handle({"x-hook-signature": signature}, body).syncs
    assert (request.scope, request.resources) == ("1201", (Resource.ISSUES,))
    forget_asana_secrets()
    assert source.verify({"x-hook-signature": signature}, body, None) is not None
    assert source.verify({"x-hook-signature": signature}, body, "chosen-by-asana") is None


async def test_the_collector_service_answers_the_handshake_and_triggers_a_sync(base_url: str) -> None:
    """Through the runtime's HTTP app: `POST /webhooks/asana` is mounted for an Asana integration,
    echoes the handshake secret, and a signed delivery schedules a sync of the named project."""
    forget_asana_secrets()
    asana = client(base_url)
    bus = MemoryBus()
    runtime = CollectorRuntime(
        asana.integration, asana, bus, MemoryCursorStore(), organization="acme", topic_prefix="doraflow"
    )
    app = create_app(runtime, webhook_secret=None, webhook_debounce=0.0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://collector") as http:
        handshake = await http.post("/webhooks/asana", headers={"X-Hook-Secret": "from-asana"})
        assert handshake.status_code == 200
        assert handshake.headers["x-hook-secret"] == "from-asana"
        body = orjson.dumps(
            {
                "events": [
                    {"action": "changed", "resource": ref("3002", "task"), "parent": ref("1201", "project")}
                ]
            }
        )
        unsigned = await http.post("/webhooks/asana", content=body)
        assert unsigned.status_code == 401
        signature = hmac.new(b"from-asana", body, hashlib.sha256).hexdigest()
        delivery = await http.post("/webhooks/asana", content=body, headers={"X-Hook-Signature": signature})
        assert delivery.status_code == 202
        assert delivery.json()["syncs"] == [{"scope": "1201", "resource": "issues"}]
        assert (await http.post("/webhooks/github", content=body)).status_code == 404  # not this provider's
    await asana.aclose()
    forget_asana_secrets()
