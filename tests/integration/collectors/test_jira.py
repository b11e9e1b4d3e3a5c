"""The Jira client against the fake Jira over loopback: exact events for a small hand-made project
(transitions with their times, story points from the discovered field and from the override,
incidents with their service), sprints with carry-over, pagination (search tokens, changelog
overflow), incremental runs in the user's time zone, 429 + Retry-After, Data Center, and the
errors a user has to fix while the other projects keep syncing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from doraflow.collectors.base import Batch, CollectorError, Resource
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.runtime import CollectorRuntime
from doraflow.collectors.webhooks import WEBHOOKS
from doraflow.collectors.work.jira import JiraClient, jira_auth_headers
from doraflow.collectors.work.webhooks import jira_handle
from doraflow.core.bus import MemoryBus
from doraflow.core.events import (
    EventData,
    IncidentData,
    PersonRef,
    SprintData,
    TransitionData,
    WorkItemData,
    parse_event,
)
from doraflow.core.resources import Integration
from tests.fakes.jira import FakeJira, field_payload, history, status_payload, user_payload
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.integration

EMAIL, TOKEN = "bot@example.com", "api-token"
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
ADA = user_payload("acc-ada", "Ada Lovelace", "ada@example.com")
BOB = user_payload("acc-bob", "Bob Builder")
ADA_REF = PersonRef(name="Ada Lovelace", email="ada@example.com", username="acc-ada")
BOB_REF = PersonRef(name="Bob Builder", username="acc-bob")

TODO = status_payload("10000", "To Do", "todo")
PROGRESS = status_payload("3", "In Progress", "in_progress")
REVIEW = status_payload("10001", "In Review", "in_progress")
DONE = status_payload("10002", "Done", "done")


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def integration(base_url: str, **spec: Any) -> Integration:
    return Integration.model_validate(
        {
            "metadata": {"name": "acme-jira", "namespace": "doraflow"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "jira",
                "baseUrl": base_url,
                "credentialsSecretRef": {"name": "jira"},
                "scope": {"projects": ["ENG"]},
                "backfillDays": 90,
                "incidents": {"issueTypes": ["Incident"], "labels": ["outage"]},
                **spec,
            },
        }
    )


def client(
    base_url: str, *, credentials: str = f"{EMAIL}:{TOKEN}", sleeps: Sleeps | None = None, **spec: Any
) -> JiraClient:
    return JiraClient(
        integration(base_url, **spec), credentials, page_size=50, clock=lambda: NOW, sleep=sleeps or Sleeps()
    )


def eng_project(fake: FakeJira) -> None:
    """ENG: a finished story (points in "Story Points"), a story in progress (points in "Story point
    estimate"), an incident for the payments service, and an outage bug on the checkout component."""
    fake.statuses = [TODO, PROGRESS, REVIEW, DONE]
    fake.fields += [
        field_payload("customfield_10016", "Story point estimate"),
        field_payload("customfield_10028", "Story Points"),
        field_payload("customfield_10050", "Service", number=False),
    ]
    fake.add_project("10000", "ENG", "Engineering")
    fake.add_issue(
        "10001",
        "ENG-1",
        summary="Login page",
        status=DONE,
        created=at(1),
        updated=at(4, 15),
        resolved=at(4, 15),
        assignee=ADA,
        labels=["backend"],
        links=[{"id": "1", "type": {"name": "Blocks"}, "outwardIssue": {"id": "10002", "key": "ENG-2"}}],
        customfield_10028=5.0,
        histories=[
            history("100", at(2, 10), ADA, [(TODO, PROGRESS)]),
            history("101", at(3, 11), ADA, [(PROGRESS, REVIEW)], labels=("", "backend")),
            history("102", at(4, 15), BOB, [(REVIEW, DONE)]),
        ],
    )
    fake.add_issue(
        "10002",
        "ENG-2",
        summary="Sign-up flow",
        status=PROGRESS,
        created=at(2),
        updated=at(5, 9),
        customfield_10016=3.0,
        histories=[history("103", at(5, 9), ADA, [(TODO, PROGRESS)])],
    )
    fake.add_issue(
        "10003",
        "ENG-3",
        summary="Payments down",
        issue_type="Incident",
        priority="Highest",
        status=DONE,
        created=at(6, 8),
        updated=at(6, 10),
        resolved=at(6, 10),
        labels=["service:payments"],
        histories=[
            history("104", at(6, 8, 30), BOB, [(TODO, PROGRESS)]),
            history("105", at(6, 10), BOB, [(PROGRESS, DONE)]),
        ],
    )
    fake.add_issue(
        "10004",
        "ENG-4",
        summary="Checkout errors",
        issue_type="Bug",
        priority="High",
        status=DONE,
        created=at(7, 12),
        updated=at(7, 13),
        resolved=at(7, 13),
        labels=["outage"],
        components=["checkout"],
        histories=[history("106", at(7, 13), None, [(TODO, DONE)])],
    )


@pytest.fixture
def fake() -> FakeJira:
    jira = FakeJira(email=EMAIL, token=TOKEN)
    eng_project(jira)
    return jira


@pytest.fixture
def base_url(fake: FakeJira) -> Iterator[str]:
    with serve_in_thread(fake.app()) as url:
        yield url


async def collect(
    jira: JiraClient, resource: Resource, cursor: dict[str, Any] | None = None, name: str = "ENG"
) -> tuple[list[EventData], dict[str, Any] | None]:
    scope = next(s for s in await jira.list_scopes() if s.name == name)
    events: list[EventData] = []
    async for batch in jira.collect(scope, resource, cursor):
        events.extend(batch.events)
        if batch.cursor is not None:
            cursor = batch.cursor
    return events, cursor


async def drain(batches: AsyncIterator[Batch], sink: list[EventData]) -> None:
    async for batch in batches:
        sink.extend(batch.events)


def of(kind: type[EventData], events: list[EventData]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def expected_items(url: str) -> list[WorkItemData]:
    return [
        WorkItemData(
            project="ENG",
            external_id="10004",
            key="ENG-4",
            title="Checkout errors",
            issue_type="Bug",
            status="Done",
            status_category="done",
            priority="High",
            labels=["outage"],
            components=["checkout"],
            created_at=at(7, 12),
            updated_at=at(7, 13),
            resolved_at=at(7, 13),
            url=f"{url}/browse/ENG-4",
        ),
        WorkItemData(
            project="ENG",
            external_id="10003",
            key="ENG-3",
            title="Payments down",
            issue_type="Incident",
            status="Done",
            status_category="done",
            priority="Highest",
            labels=["service:payments"],
            created_at=at(6, 8),
            updated_at=at(6, 10),
            resolved_at=at(6, 10),
            url=f"{url}/browse/ENG-3",
        ),
        WorkItemData(
            project="ENG",
            external_id="10002",
            key="ENG-2",
            title="Sign-up flow",
            issue_type="Story",
            status="In Progress",
            status_category="in_progress",
            priority="Medium",
            story_points=3.0,
            created_at=at(2),
            updated_at=at(5, 9),
            url=f"{url}/browse/ENG-2",
        ),
        WorkItemData(
            project="ENG",
            external_id="10001",
            key="ENG-1",
            title="Login page",
            issue_type="Story",
            status="Done",
            status_category="done",
            priority="Medium",
            assignee=ADA_REF,
            story_points=5.0,
            labels=["backend"],
            linked_issues=["ENG-2"],
            created_at=at(1),
            updated_at=at(4, 15),
            resolved_at=at(4, 15),
            url=f"{url}/browse/ENG-1",
        ),
    ]


def transition(
    issue: str,
    tid: str,
    old: str | None,
    new: str,
    old_cat: Any,
    new_cat: Any,
    when: datetime,
    who: PersonRef | None,
) -> TransitionData:
    return TransitionData(
        project="ENG",
        issue_external_id=issue,
        transition_id=tid,
        from_status=old,
        to_status=new,
        from_category=old_cat,
        to_category=new_cat,
        transitioned_at=when,
        author=who,
    )


EXPECTED_TRANSITIONS = [
    transition("10004", "106", "To Do", "Done", "todo", "done", at(7, 13), None),
    transition("10003", "104", "To Do", "In Progress", "todo", "in_progress", at(6, 8, 30), BOB_REF),
    transition("10003", "105", "In Progress", "Done", "in_progress", "done", at(6, 10), BOB_REF),
    transition("10002", "103", "To Do", "In Progress", "todo", "in_progress", at(5, 9), ADA_REF),
    transition("10001", "100", "To Do", "In Progress", "todo", "in_progress", at(2, 10), ADA_REF),
    transition("10001", "101", "In Progress", "In Review", "in_progress", "in_progress", at(3, 11), ADA_REF),
    transition("10001", "102", "In Review", "Done", "in_progress", "done", at(4, 15), BOB_REF),
]


async def test_first_sync_yields_exact_items_transitions_and_incidents(fake: FakeJira, base_url: str) -> None:
    jira = client(base_url, incidents={"issueTypes": ["Incident"], "labels": ["outage"]})
    events, cursor = await collect(jira, Resource.ISSUES)
    await jira.aclose()

    assert of(WorkItemData, events) == expected_items(base_url)
    assert of(TransitionData, events) == EXPECTED_TRANSITIONS
    assert of(IncidentData, events) == [
        IncidentData(
            external_id="10004",
            title="Checkout errors",
            severity="High",
            service="checkout",  # no service label: the component names it
            created_at=at(7, 12),
            resolved_at=at(7, 13),
            url=f"{base_url}/browse/ENG-4",
        ),
        IncidentData(
            external_id="10003",
            title="Payments down",
            severity="Highest",
            service="payments",  # the `service:` label
            created_at=at(6, 8),
            resolved_at=at(6, 10),
            url=f"{base_url}/browse/ENG-3",
        ),
    ]
    # the newest issue's update is where the next run starts; the back-fill is done
    assert cursor == {"since": "2026-03-07T13:00:00Z", "owed": None}
    [search] = fake.calls("/rest/api/3/search/jql")
    assert 'project = "ENG" AND updated >= "2025/12/20 12:00" ORDER BY updated DESC' in _jql(search)
    assert "expand=changelog" in search
    assert "customfield_10016" in search
    assert "customfield_10028" in search


async def test_story_points_override_by_name_and_by_id(fake: FakeJira, base_url: str) -> None:
    by_name = client(base_url, storyPointsField="Story point estimate")
    items = of(WorkItemData, (await collect(by_name, Resource.ISSUES))[0])
    await by_name.aclose()
    assert {i.key: i.story_points for i in items} == {
        "ENG-1": None,
        "ENG-2": 3.0,
        "ENG-3": None,
        "ENG-4": None,
    }

    by_id = client(base_url, storyPointsField="customfield_10028")
    items = of(WorkItemData, (await collect(by_id, Resource.ISSUES))[0])
    await by_id.aclose()
    assert {i.key: i.story_points for i in items} == {
        "ENG-1": 5.0,
        "ENG-2": None,
        "ENG-3": None,
        "ENG-4": None,
    }


async def test_a_vanished_field_is_reported_after_everything_else_is_collected(
    fake: FakeJira, base_url: str
) -> None:
    jira = client(base_url, storyPointsField="Effort")
    scope = (await jira.list_scopes())[0]
    events: list[EventData] = []
    with pytest.raises(CollectorError) as raised:
        await drain(jira.collect(scope, Resource.ISSUES, None), events)
    await jira.aclose()
    assert len(of(WorkItemData, events)) == 4  # collected anyway, without points
    assert all(i.story_points is None for i in of(WorkItemData, events))
    assert "Effort" in str(raised.value)
    assert "spec.storyPointsField" in raised.value.hint


def sprint_board(fake: FakeJira) -> None:
    """Sprint 1 (closed): ENG-1 done in it, ENG-2 carried over into sprint 2 (active, where ENG-3
    is done already); sprint 3 is planned. The same sprint 1 also shows on another team's board."""
    fake.add_board(1, "ENG board", "ENG")
    fake.add_board(2, "ENG kanban", "ENG", kind="kanban")
    fake.add_board(3, "Cross-team board", "ENG")
    fake.add_sprint(
        1, 11, "Sprint 1", "closed", start=at(1), end=at(8), complete=at(8, 17), issues=["10001", "10002"]
    )
    fake.add_sprint(1, 12, "Sprint 2", "active", start=at(9), end=at(22), issues=["10002", "10003"])
    fake.add_sprint(1, 13, "Sprint 3", "future", issues=[])
    fake.add_sprint(
        3,
        11,
        "Sprint 1",
        "closed",
        start=at(1),
        end=at(8),
        complete=at(8, 17),
        issues=["10001", "10002"],
        origin=1,
    )


async def test_sprints_with_completed_and_carried_over_issues(fake: FakeJira, base_url: str) -> None:
    sprint_board(fake)
    jira = client(base_url)
    events, cursor = await collect(jira, Resource.SPRINTS)
    assert events == [
        SprintData(
            project="ENG",
            external_id="11",
            board="ENG board",
            name="Sprint 1",
            state="closed",
            start_at=at(1),
            end_at=at(8),
            completed_at=at(8, 17),
            issue_ids=["10001", "10002"],
            completed_issue_ids=["10001"],  # ENG-2 was not done at the sprint's end: carried over
        ),
        SprintData(
            project="ENG",
            external_id="12",
            board="ENG board",
            name="Sprint 2",
            state="active",
            start_at=at(9),
            end_at=at(22),
            issue_ids=["10002", "10003"],
            completed_issue_ids=["10003"],
        ),
        SprintData(project="ENG", external_id="13", board="ENG board", name="Sprint 3", state="future"),
    ]
    assert cursor == {"closed": [11]}
    assert not fake.calls("/board/2/sprint")  # kanban: no sprints to ask for

    # a closed sprint never changes: the next run does not read its issues again
    before = len(fake.calls("/sprint/11/issue"))
    again, _ = await collect(jira, Resource.SPRINTS, cursor)
    await jira.aclose()
    assert [e.external_id for e in of(SprintData, again)] == ["12", "13"]
    assert len(fake.calls("/sprint/11/issue")) == before


async def test_pages_of_the_search_and_of_long_changelogs_are_followed(fake: FakeJira, base_url: str) -> None:
    fake.embedded_histories = 1  # ENG-1 has three changelog entries: two must be paged
    jira = JiraClient(
        integration(base_url), f"{EMAIL}:{TOKEN}", page_size=3, clock=lambda: NOW, sleep=Sleeps()
    )
    events, _ = await collect(jira, Resource.ISSUES)
    await jira.aclose()
    assert of(TransitionData, events) == EXPECTED_TRANSITIONS
    searches = fake.calls("/rest/api/3/search/jql")
    assert len(searches) == 2
    assert "nextPageToken=token-3" in searches[1]
    assert fake.calls("/rest/api/3/issue/10001/changelog") == [
        "/rest/api/3/issue/10001/changelog?startAt=0&maxResults=100"
    ]


async def test_second_run_reads_only_what_changed_in_the_users_time_zone(
    fake: FakeJira, base_url: str
) -> None:
    fake.time_zone = "America/New_York"  # JQL dates are the user's local time
    jira = client(base_url)
    _, cursor = await collect(jira, Resource.ISSUES)
    assert cursor == {"since": "2026-03-07T13:00:00Z", "owed": None}

    issue = fake.issues["10002"]
    issue.fields["status"] = DONE
    issue.fields["updated"] = "2026-03-10T16:30:00.000+0000"
    issue.fields["resolutiondate"] = "2026-03-10T16:30:00.000+0000"
    issue.histories.append(history("107", at(10, 16, 30), ADA, [(PROGRESS, DONE)]))
    events, cursor = await collect(jira, Resource.ISSUES, cursor)
    await jira.aclose()

    # ENG-4 sits on the window's lower bound (the minute of the last run's newest update): read again,
    # which is harmless (same event ids); nothing older is read
    assert [i.key for i in of(WorkItemData, events)] == ["ENG-2", "ENG-4"]
    assert (
        transition("10002", "107", "In Progress", "Done", "in_progress", "done", at(10, 16, 30), ADA_REF)
        in events
    )
    assert cursor == {"since": "2026-03-10T16:30:00Z", "owed": None}
    # 13:00 UTC on 7 March is 08:00 in New York (EST, before the switch to summer time on 8 March)
    assert 'updated >= "2026/03/07 08:00"' in _jql(fake.calls("/search/jql")[-1])


async def test_an_interrupted_backfill_resumes_below_what_was_published(
    fake: FakeJira, base_url: str
) -> None:
    jira = JiraClient(
        integration(base_url), f"{EMAIL}:{TOKEN}", page_size=2, clock=lambda: NOW, sleep=Sleeps()
    )
    scope = (await jira.list_scopes())[0]
    batches = jira.collect(scope, Resource.ISSUES, None)
    assert isinstance(batches, AsyncGenerator)
    first = await anext(batches)
    await batches.aclose()
    assert [e.key for e in of(WorkItemData, first.events)] == ["ENG-4", "ENG-3"]
    assert first.cursor == {
        "since": "2026-03-07T13:00:00Z",
        "owed": {"from": "2025-12-20T12:00:00Z", "to": "2026-03-06T10:00:00Z"},
    }
    events, cursor = await collect(jira, Resource.ISSUES, first.cursor)
    await jira.aclose()
    assert [e.key for e in of(WorkItemData, events)] == ["ENG-4", "ENG-3", "ENG-2", "ENG-1"]
    assert cursor == {"since": "2026-03-07T13:00:00Z", "owed": None}
    assert 'updated < "2026/03/06 10:01"' in _jql(fake.calls("/search/jql")[-2])


async def test_429_waits_as_long_as_retry_after_says(fake: FakeJira, base_url: str) -> None:
    fake.fail(429, times=1, path_contains="/search/jql", **{"Retry-After": "7"})
    sleeps = Sleeps()
    jira = client(base_url, sleeps=sleeps)
    events, _ = await collect(jira, Resource.ISSUES)
    await jira.aclose()
    assert sleeps.seconds == [7.0]
    assert len(of(WorkItemData, events)) == 4


async def test_incident_filter_jql_selects_incidents(fake: FakeJira, base_url: str) -> None:
    fake.filters["labels = backend"] = lambda issue: "backend" in issue.fields["labels"]
    jira = client(
        base_url, incidents={"issueTypes": [], "filter": "labels = backend", "serviceField": "Service"}
    )
    fake.issues["10001"].fields["customfield_10050"] = "auth"
    events, _ = await collect(jira, Resource.ISSUES)
    await jira.aclose()
    assert [(i.external_id, i.service) for i in of(IncidentData, events)] == [("10001", "auth")]
    assert "key in (ENG-4, ENG-3, ENG-2, ENG-1) AND (labels = backend)" in _jql(fake.calls("/search/jql")[-1])


async def test_data_center_uses_v2_offset_search_and_a_bearer_token(base_url: str, fake: FakeJira) -> None:
    fake.cloud = False
    fake.pats = {"dc-personal-token"}
    jira = JiraClient(
        integration(base_url), "dc-personal-token", page_size=3, clock=lambda: NOW, sleep=Sleeps()
    )
    events, _ = await collect(jira, Resource.ISSUES)
    await jira.aclose()
    assert of(WorkItemData, events) == expected_items(base_url)
    assert of(TransitionData, events) == EXPECTED_TRANSITIONS
    assert [c.split("&startAt=")[-1] for c in fake.calls("/rest/api/2/search")] == ["0", "3"]
    assert not fake.calls("/rest/api/3/")


def test_auth_headers() -> None:
    assert jira_auth_headers("me@acme.com:secret") == {"Authorization": "Basic bWVAYWNtZS5jb206c2VjcmV0"}
    assert jira_auth_headers("pat-123") == {"Authorization": "Bearer pat-123"}


async def test_bad_credentials_are_a_problem_with_a_hint(base_url: str) -> None:
    jira = client(base_url, credentials=f"{EMAIL}:wrong")
    with pytest.raises(CollectorError) as raised:
        await jira.list_scopes()
    await jira.aclose()
    assert "401" in str(raised.value)
    assert "spec.credentialsSecretRef" in raised.value.hint


async def test_a_deleted_project_is_reported_once_while_the_others_sync(
    fake: FakeJira, base_url: str
) -> None:
    fake.add_project("10100", "OPS", "Operations")
    fake.add_issue("10100", "OPS-1", summary="Rotate keys", status=TODO, created=at(3), updated=at(3))
    jira = client(base_url, scope={"projects": ["ENG", "OPS", "GONE"]})
    bus = MemoryBus()
    await bus.start()
    runtime = CollectorRuntime(
        jira.integration, jira, bus, MemoryCursorStore(), organization="acme", topic_prefix="doraflow"
    )
    [first] = await runtime.sync_once(Resource.ISSUES)
    assert (first.scopes, first.succeeded, first.failed) == (3, 2, 1)

    fake.delete_project("OPS")
    runtime._scope_cache = None  # the listing still names OPS for a minute; force a fresh one
    [second] = await runtime.sync_once(Resource.ISSUES)
    await jira.aclose()
    assert (second.scopes, second.succeeded, second.failed) == (3, 1, 2)
    problems = runtime.status.problems
    assert sorted(scope for scope, _, _ in problems) == ["GONE", "OPS"]
    assert all(p.scope in p.message and "spec.scope.projects" in p.hint for p in problems.values())

    consumer = bus.consumer("t", pattern=r"doraflow\.acme\.jira\.issues")
    await consumer.start()
    messages = await consumer.getmany(max_records=1000, timeout_ms=0)
    await consumer.stop()
    keys = {m.key for m in messages}
    assert keys == {"acme/ENG", "acme/OPS"}
    assert all(parse_event(m.value).envelope.source == "jira" for m in messages)
    await bus.stop()


async def test_a_project_deleted_after_listing_fails_with_a_hint(fake: FakeJira, base_url: str) -> None:
    jira = client(base_url)
    [scope] = await jira.list_scopes()
    fake.delete_project("ENG")
    with pytest.raises(CollectorError) as raised:
        await drain(jira.collect(scope, Resource.ISSUES, None), [])
    await jira.aclose()
    assert "ENG" in str(raised.value)
    assert "spec.scope.projects" in raised.value.hint


def test_jira_webhook_signature_and_routing() -> None:
    source = WEBHOOKS["jira"]
    body = orjson.dumps(
        {
            "webhookEvent": "jira:issue_updated",
            "issue": {"id": "10001", "key": "ENG-1", "fields": {"project": {"key": "ENG"}}},
        }
    )
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert source.verify({"x-hub-signature": signature}, body, "s3cret") is None
    assert source.verify({"x-hub-signature": "sha256=" + "0" * 64}, body, "s3cret") is not None
    assert source.verify({}, body, "s3cret") is not None
    [request] = jira_handle({}, body).syncs
    assert (request.scope, request.resources) == ("ENG", (Resource.ISSUES,))
    [request] = jira_handle({}, orjson.dumps({"webhookEvent": "sprint_closed", "sprint": {"id": 11}})).syncs
    assert (request.scope, request.resources) == (None, (Resource.SPRINTS,))
    assert jira_handle({}, orjson.dumps({"webhookEvent": "comment_created"})).syncs == ()


def _jql(call: str) -> str:
    return parse_qs(urlsplit(call).query)["jql"][0]
