"""The Linear client against the fake Linear GraphQL API over loopback: exact events for a small
hand-made team (state history as transitions, estimates, labels, incidents by label), cycles as
sprints with carry-over, cursor pagination (issues and long histories), incremental runs, Linear's
rate limits (RATELIMITED as HTTP 400, the complexity budget), a bad key, and a deleted team while
the other teams keep syncing."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from doraflow.collectors.base import Batch, CollectorError, Resource
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.runtime import CollectorRuntime
from doraflow.collectors.webhooks import WEBHOOKS
from doraflow.collectors.work.common import Category
from doraflow.collectors.work.linear import LinearClient, linear_auth_headers
from doraflow.collectors.work.webhooks import linear_handle
from doraflow.core.bus import MemoryBus
from doraflow.core.events import EventData, IncidentData, PersonRef, SprintData, TransitionData, WorkItemData
from doraflow.core.resources import Integration
from tests.fakes.linear import FakeLinear, history_entry, state, user
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.integration

KEY = "lin_api_good"
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
ADA = user("user-ada", "Ada Lovelace", "ada@example.com")
BOB = user("user-bob", "Bob Builder", "bob@example.com")
ADA_REF = PersonRef(name="ada", email="ada@example.com", username="user-ada")
BOB_REF = PersonRef(name="bob", email="bob@example.com", username="user-bob")
TODO = state("st-todo", "Todo", "unstarted")
PROGRESS = state("st-progress", "In Progress", "started")
REVIEW = state("st-review", "In Review", "started")
DONE = state("st-done", "Done", "completed")


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
            "metadata": {"name": "acme-linear", "namespace": "doraflow"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "linear",
                "baseUrl": base_url,
                "credentialsSecretRef": {"name": "linear"},
                "scope": {"projects": ["ENG"]},
                "backfillDays": 90,
                **spec,
            },
        }
    )


def client(
    base_url: str, *, key: str = KEY, sleeps: Sleeps | None = None, page_size: int = 25, **spec: Any
) -> LinearClient:
    return LinearClient(
        integration(base_url, **spec), key, page_size=page_size, clock=lambda: NOW, sleep=sleeps or Sleeps()
    )


def eng_team(fake: FakeLinear) -> None:
    eng = fake.add_team("team-eng", "ENG", "Engineering")
    fake.add_team("team-ops", "OPS", "Operations")
    fake.add_issue(
        "iss-2",
        "ENG-2",
        team=eng,
        title="Sign-up flow",
        state=PROGRESS,
        created=at(2),
        updated=at(5),
        estimate=3,
        priority=3,
        history=[history_entry("h4", at(5), TODO, PROGRESS, ADA)],
    )
    fake.add_issue(
        "iss-1",
        "ENG-1",
        team=eng,
        title="Login page",
        state=DONE,
        created=at(1),
        updated=at(4, 15),
        completed=at(4, 15),
        estimate=5,
        priority=2,
        assignee=ADA,
        labels=["backend"],
        relations=["ENG-2"],
        history=[
            history_entry("h0", at(1, 9, 5), None, None, ADA),  # a label change: no state in it
            history_entry("h1", at(2, 10), TODO, PROGRESS, ADA),
            history_entry("h2", at(3, 11), PROGRESS, REVIEW, ADA),
            history_entry("h3", at(4, 15), REVIEW, DONE, BOB),
        ],
    )
    fake.add_issue(
        "iss-3",
        "ENG-3",
        team=eng,
        title="Payments down",
        state=DONE,
        created=at(6, 8),
        updated=at(6, 10),
        completed=at(6, 10),
        priority=1,
        labels=["Incident", "service:payments"],
        history=[
            history_entry("h5", at(6, 8, 30), TODO, PROGRESS, BOB),
            history_entry("h6", at(6, 10), PROGRESS, DONE, BOB),
        ],
    )


@pytest.fixture
def fake() -> FakeLinear:
    linear = FakeLinear(api_key=KEY)
    eng_team(linear)
    return linear


@pytest.fixture
def base_url(fake: FakeLinear) -> Iterator[str]:
    with serve_in_thread(fake.app()) as url:
        yield url


async def drain(batches: AsyncIterator[Batch], sink: list[EventData]) -> dict[str, Any] | None:
    cursor = None
    async for batch in batches:
        sink.extend(batch.events)
        cursor = batch.cursor if batch.cursor is not None else cursor
    return cursor


async def collect(
    linear: LinearClient, resource: Resource, cursor: dict[str, Any] | None = None, name: str = "ENG"
) -> tuple[list[EventData], dict[str, Any] | None]:
    scope = next(s for s in await linear.list_scopes() if s.name == name)
    events: list[EventData] = []
    saved = await drain(linear.collect(scope, resource, cursor), events)
    return events, saved if saved is not None else cursor


def of(kind: type[EventData], events: list[EventData]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def url(identifier: str) -> str:
    return f"https://linear.app/acme/issue/{identifier.lower()}"


EXPECTED_ITEMS = [
    WorkItemData(
        project="ENG",
        external_id="iss-3",
        key="ENG-3",
        title="Payments down",
        status="Done",
        status_category="done",
        priority="Urgent",
        labels=["Incident", "service:payments"],
        created_at=at(6, 8),
        updated_at=at(6, 10),
        resolved_at=at(6, 10),
        url=url("ENG-3"),
    ),
    WorkItemData(
        project="ENG",
        external_id="iss-2",
        key="ENG-2",
        title="Sign-up flow",
        status="In Progress",
        status_category="in_progress",
        priority="Medium",
        story_points=3.0,
        created_at=at(2),
        updated_at=at(5),
        url=url("ENG-2"),
    ),
    WorkItemData(
        project="ENG",
        external_id="iss-1",
        key="ENG-1",
        title="Login page",
        status="Done",
        status_category="done",
        priority="High",
        assignee=ADA_REF,
        story_points=5.0,
        labels=["backend"],
        linked_issues=["ENG-2"],
        created_at=at(1),
        updated_at=at(4, 15),
        resolved_at=at(4, 15),
        url=url("ENG-1"),
    ),
]


def transition(issue: str, tid: str, old: Any, new: Any, when: datetime, who: PersonRef) -> TransitionData:
    categories: dict[str, Category] = {
        "Todo": "todo",
        "In Progress": "in_progress",
        "In Review": "in_progress",
        "Done": "done",
    }
    return TransitionData(
        project="ENG",
        issue_external_id=issue,
        transition_id=tid,
        from_status=old,
        to_status=new,
        from_category=categories.get(old),
        to_category=categories[new],
        transitioned_at=when,
        author=who,
    )


EXPECTED_TRANSITIONS = [
    transition("iss-3", "h5", "Todo", "In Progress", at(6, 8, 30), BOB_REF),
    transition("iss-3", "h6", "In Progress", "Done", at(6, 10), BOB_REF),
    transition("iss-2", "h4", "Todo", "In Progress", at(5), ADA_REF),
    transition("iss-1", "h1", "Todo", "In Progress", at(2, 10), ADA_REF),
    transition("iss-1", "h2", "In Progress", "In Review", at(3, 11), ADA_REF),
    transition("iss-1", "h3", "In Review", "Done", at(4, 15), BOB_REF),
]


async def test_first_sync_yields_exact_items_transitions_and_incidents(
    fake: FakeLinear, base_url: str
) -> None:
    linear = client(base_url)
    events, cursor = await collect(linear, Resource.ISSUES)
    await linear.aclose()
    assert of(WorkItemData, events) == EXPECTED_ITEMS
    assert of(TransitionData, events) == EXPECTED_TRANSITIONS
    assert of(IncidentData, events) == [
        IncidentData(
            external_id="iss-3",
            title="Payments down",
            severity="Urgent",
            service="payments",
            created_at=at(6, 8),
            resolved_at=at(6, 10),
            url=url("ENG-3"),
        )
    ]
    assert cursor == {"since": "2026-03-06T10:00:00Z", "owed": None}
    [request] = fake.queries("query Issues")
    assert request["variables"]["filter"] == {
        "team": {"id": {"eq": "team-eng"}},
        "updatedAt": {"gte": "2025-12-20T12:00:00Z"},
    }


async def test_pages_of_issues_and_of_long_histories_are_followed(fake: FakeLinear, base_url: str) -> None:
    eng = fake.teams[0]
    noise = [history_entry(f"n{i}", at(7, 9, i), None, None, ADA) for i in range(30)]
    fake.add_issue(
        "iss-4",
        "ENG-4",
        team=eng,
        title="Long history",
        state=PROGRESS,
        created=at(7),
        updated=at(7, 11),
        history=[*noise, history_entry("h7", at(7, 11), TODO, PROGRESS, ADA)],
    )
    linear = client(base_url, page_size=2)
    events, _ = await collect(linear, Resource.ISSUES)
    await linear.aclose()
    assert [i.key for i in of(WorkItemData, events)] == ["ENG-4", "ENG-3", "ENG-2", "ENG-1"]
    assert transition("iss-4", "h7", "Todo", "In Progress", at(7, 11), ADA_REF) in events
    pages = fake.queries("query Issues")
    assert [p["variables"]["after"] is None for p in pages] == [True, False]
    # the issue page carried 25 of 31 entries: the whole history is read again in pages of 100
    [history_query] = fake.queries("query History")
    assert history_query["variables"] == {"id": "iss-4", "after": None}


async def test_second_run_reads_only_what_changed(fake: FakeLinear, base_url: str) -> None:
    linear = client(base_url)
    _, cursor = await collect(linear, Resource.ISSUES)
    issue = next(i for i in fake.issues if i["id"] == "iss-2")
    issue.update(state=DONE, updatedAt="2026-03-10T16:30:00.000Z", completedAt="2026-03-10T16:30:00.000Z")
    issue["_history"].append(history_entry("h8", at(10, 16, 30), PROGRESS, DONE, ADA))
    events, cursor = await collect(linear, Resource.ISSUES, cursor)
    await linear.aclose()
    # ENG-3 is on the lower bound (the last run's newest update): read again, harmlessly
    assert [i.key for i in of(WorkItemData, events)] == ["ENG-2", "ENG-3"]
    assert transition("iss-2", "h8", "In Progress", "Done", at(10, 16, 30), ADA_REF) in events
    assert cursor == {"since": "2026-03-10T16:30:00Z", "owed": None}
    last = fake.queries("query Issues")[-1]
    assert last["variables"]["filter"]["updatedAt"] == {"gte": "2026-03-06T10:00:00Z"}


async def test_cycles_are_sprints_with_carry_over(fake: FakeLinear, base_url: str) -> None:
    eng = fake.teams[0]
    fake.add_cycle(
        eng,
        "cyc-1",
        1,
        starts=at(1),
        ends=at(8),
        completed=at(8, 17),
        issues=["iss-1", "iss-3"],
        carried=["iss-2"],
    )
    fake.add_cycle(eng, "cyc-2", 2, starts=at(8), ends=at(22), issues=["iss-2"], name="Launch")
    fake.add_cycle(eng, "cyc-3", 3, starts=at(22), ends=datetime(2026, 4, 5, tzinfo=UTC))
    linear = client(base_url)
    events, cursor = await collect(linear, Resource.SPRINTS)
    assert events == [
        SprintData(
            project="ENG",
            external_id="cyc-1",
            board="ENG",
            name="Cycle 1",
            state="closed",
            start_at=at(1),
            end_at=at(8),
            completed_at=at(8, 17),
            issue_ids=["iss-1", "iss-3", "iss-2"],
            completed_issue_ids=["iss-1", "iss-3"],
        ),
        SprintData(
            project="ENG",
            external_id="cyc-2",
            board="ENG",
            name="Launch",
            state="active",
            start_at=at(8),
            end_at=at(22),
            issue_ids=["iss-2"],
        ),
        SprintData(
            project="ENG",
            external_id="cyc-3",
            board="ENG",
            name="Cycle 3",
            state="future",
            start_at=at(22),
            end_at=datetime(2026, 4, 5, tzinfo=UTC),
        ),
    ]
    assert cursor == {"closed": ["cyc-1"]}
    again, _ = await collect(linear, Resource.SPRINTS, cursor)
    await linear.aclose()
    assert [s.external_id for s in of(SprintData, again)] == ["cyc-2", "cyc-3"]
    assert len(fake.queries("uncompletedIssuesUponClose")) == 1


async def test_a_project_scope_collects_the_projects_issues(fake: FakeLinear, base_url: str) -> None:
    eng = fake.teams[0]
    revamp = {"id": "proj-1", "name": "Checkout revamp"}
    fake.projects.append(revamp)
    fake.add_issue(
        "iss-9", "ENG-9", team=eng, title="New cart", state=TODO, created=at(9), updated=at(9), project=revamp
    )
    linear = client(base_url, scope={"projects": ["Checkout*"]})
    [scope] = await linear.list_scopes()
    assert (scope.name, scope.id, scope.attributes["kind"]) == ("Checkout revamp", "proj-1", "project")
    events, _ = await collect(linear, Resource.ISSUES, name="Checkout revamp")
    sprints, _ = await collect(linear, Resource.SPRINTS, name="Checkout revamp")
    await linear.aclose()
    assert [(i.project, i.key) for i in of(WorkItemData, events)] == [("Checkout revamp", "ENG-9")]
    assert sprints == []  # cycles belong to teams


async def test_ratelimited_400_is_retried_after_the_reset(fake: FakeLinear, base_url: str) -> None:
    fake.fail("RATELIMITED", times=1)
    sleeps = Sleeps()
    linear = client(base_url, sleeps=sleeps)
    events, _ = await collect(linear, Resource.ISSUES)
    await linear.aclose()
    assert len(of(WorkItemData, events)) == 3
    [waited] = sleeps.seconds
    assert 3 <= waited <= 6  # the fake's request budget resets 4 s later


async def test_a_low_complexity_budget_pauses_until_it_resets(fake: FakeLinear, base_url: str) -> None:
    fake.complexity_remaining = 300
    fake.complexity_reset_in = 20.0
    sleeps = Sleeps()
    linear = client(base_url, sleeps=sleeps)
    events, _ = await collect(linear, Resource.ISSUES)
    await linear.aclose()
    assert len(of(WorkItemData, events)) == 3
    assert sleeps.seconds
    assert all(15 <= s <= 22 for s in sleeps.seconds)
    assert linear.http.rate_limit.remaining == 4990


def test_auth_headers() -> None:
    assert linear_auth_headers("lin_api_123") == {"Authorization": "lin_api_123"}
    assert linear_auth_headers("lin_oauth_abc") == {"Authorization": "Bearer lin_oauth_abc"}


async def test_a_bad_key_is_a_problem_with_a_hint(base_url: str) -> None:
    linear = client(base_url, key="lin_api_revoked")
    with pytest.raises(CollectorError) as raised:
        await linear.list_scopes()
    await linear.aclose()
    assert "401" in str(raised.value)
    assert "spec.credentialsSecretRef" in raised.value.hint


async def test_a_deleted_team_is_reported_while_the_others_sync(fake: FakeLinear, base_url: str) -> None:
    linear = client(base_url, scope={"projects": ["ENG", "OPS", "Mobile"]})
    bus = MemoryBus()
    await bus.start()
    runtime = CollectorRuntime(
        linear.integration, linear, bus, MemoryCursorStore(), organization="acme", topic_prefix="doraflow"
    )
    scopes = await linear.list_scopes()
    assert [(s.name, s.attributes["kind"]) for s in scopes] == [
        ("ENG", "team"),
        ("OPS", "team"),
        ("Mobile", "missing"),
    ]
    fake.teams = [t for t in fake.teams if t["key"] != "OPS"]  # deleted after the listing
    [result] = await runtime.sync_once(Resource.ISSUES)
    await linear.aclose()
    assert (result.scopes, result.succeeded, result.failed) == (3, 1, 2)
    problems = runtime.status.problems.values()
    assert sorted(p.scope for p in problems) == ["Mobile", "OPS"]
    assert all("spec.scope.projects" in p.hint for p in problems)
    assert result.events == 3 + 6 + 1
    await bus.stop()


def test_linear_webhook_signature_timestamp_and_routing() -> None:
    source = WEBHOOKS["linear"]
    payload = {
        "action": "update",
        "type": "Issue",
        "data": {"id": "iss-1", "teamId": "team-eng", "projectId": None},
        "webhookTimestamp": int(time.time() * 1000),
    }
    body = orjson.dumps(payload)
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert source.verify({"linear-signature": signature}, body, "s3cret") is None
    assert source.verify({"linear-signature": "0" * 64}, body, "s3cret") is not None
    stale = orjson.dumps({**payload, "webhookTimestamp": int((time.time() - 3600) * 1000)})
    stale_signature = hmac.new(b"s3cret", stale, hashlib.sha256).hexdigest()
    assert "too old" in (source.verify({"linear-signature": stale_signature}, stale, "s3cret") or "")
    [request] = linear_handle({}, body).syncs
    assert (request.scope, request.resources) == ("team-eng", (Resource.ISSUES,))
    cycle = orjson.dumps({"action": "update", "type": "Cycle", "data": {"id": "cyc-1", "teamId": "team-eng"}})
    [request] = linear_handle({}, cycle).syncs
    assert (request.scope, request.resources) == ("team-eng", (Resource.SPRINTS,))
