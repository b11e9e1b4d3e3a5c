"""End to end for work trackers: a fake Jira → the Jira client → the collector runtime → the real
Kafka broker → the processor → PostgreSQL → the metric definitions, compared with values computed
by hand below.

The hand-made project ENG (window: 1 to 21 March 2026, UTC):

| issue | created     | in progress | done        | cycle time | lead time | sprints            |
|-------|-------------|-------------|-------------|------------|-----------|--------------------|
| ENG-1 | 1 Mar 09:00 | 2 Mar 09:00 | 4 Mar 09:00 | 2 d        | 3 d       | S1 (done, 5 pts)   |
| ENG-2 | 2 Mar 09:00 | 3 Mar 09:00 | 7 Mar 09:00 | 4 d        | 5 d       | S1 (done, 3 pts)   |
| ENG-3 | 3 Mar 09:00 | 5 Mar 09:00 | —           | —          | —         | S1, S2 carried, S3 |
| ENG-6 | 8 Mar 09:00 | 9 Mar 09:00 | 11 Mar 09:00| 2 d        | 3 d       | S2 (done, 1 pt)    |
| ENG-4 | 10 Mar 10:00| 10:30       | 12:00       | 1.5 h      | 2 h       | incident: payments |
| ENG-5 | 12 Mar 14:00| (never)     | 15:00       | — (counted)| 1 h       | incident: checkout |

* work item cycle time: {1.5 h, 2 d, 2 d, 4 d} → median 2 d = 172 800 s (ENG-5 never was in progress);
* work item lead time: {1 h, 2 h, 3 d, 3 d, 5 d} → median 3 d = 259 200 s;
* sprints ending in the window: S1 (1 to 8 Mar, completed 8 Mar 17:00: ENG-1, ENG-2 done, ENG-3 carried)
  and S2 (9 to 15 Mar, completed 15 Mar 17:00: ENG-6 done, ENG-3 carried); S3 is still active.
  Throughput per sprint {2, 1} → median 1.5; story points {8, 1} → median 4.5; carry-over 2 of 5 = 0.4;
* incidents (an `Incident` type with label `service:payments`, and an `outage` bug whose component
  `checkout` names the service): time to restore {2 h, 1 h} → median 1.5 h = 5 400 s;
* production deployments (as the git collector would publish them): payments on 2, 10, 14 and 18
  March, checkout on 12 March; ENG-4 starts one hour after the 10 March payments deployment and
  ENG-5 one hour after the checkout deployment → 2 failed of 5: change failure rate 0.4.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from doraflow.collectors.base import Resource
from doraflow.collectors.cursors import DatabaseCursorStore
from doraflow.collectors.runtime import CollectorRuntime
from doraflow.collectors.work.jira import JiraClient
from doraflow.core import migrate
from doraflow.core.bus import EventBus, create_bus
from doraflow.core.cache.memory import MemoryCache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.events import DeploymentData, make_event, message_key
from doraflow.core.resources import Integration, KafkaTopicSettings
from doraflow.core.settings import Settings
from doraflow.metrics import (
    IssueTransition,
    Sprint,
    SprintMembership,
    StatusCategory,
    Window,
    WorkItem,
    sprint_carry_over,
    sprint_throughput,
    work_item_cycle_time,
    work_item_lead_time,
)
from doraflow.metrics.queries import MetricScope, dora_report
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.service import run_processor
from tests.fakes.jira import FakeJira, field_payload, history, status_payload, user_payload
from tests.fakes.server import serve_in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ORG = "acme"
NOW = datetime(2026, 3, 21, 12, 0, tzinfo=UTC)
WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 21, tzinfo=UTC))
TOPICS = KafkaTopicSettings(partitions=3, replication_factor=1)
TODO = status_payload("10000", "To Do", "todo")
PROGRESS = status_payload("3", "In Progress", "in_progress")
DONE = status_payload("10002", "Done", "done")
ADA = user_payload("acc-ada", "Ada Lovelace", "ada@example.com")
DAY, HOUR = 86_400.0, 3_600.0


def at(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def story(
    fake: FakeJira,
    n: int,
    created: datetime,
    started: datetime | None,
    done: datetime | None,
    points: float,
    **extra: Any,
) -> None:
    histories = []
    if started is not None:
        histories.append(history(f"{n}01", started, ADA, [(TODO, PROGRESS)]))
    if done is not None:
        histories.append(history(f"{n}02", done, ADA, [(PROGRESS if started else TODO, DONE)]))
    status = DONE if done else PROGRESS if started else TODO
    updated = max(m for m in (created, started, done) if m is not None)
    fake.add_issue(
        f"100{n:02d}",
        f"ENG-{n}",
        summary=f"Issue {n}",
        status=status,
        created=created,
        updated=updated,
        resolved=done,
        histories=histories,
        customfield_10016=points,
        **extra,
    )


def jira_site() -> FakeJira:
    fake = FakeJira(email="bot@example.com", token="api-token")
    fake.statuses = [TODO, PROGRESS, DONE]
    fake.fields.append(field_payload("customfield_10016", "Story point estimate"))
    fake.add_project("10000", "ENG", "Engineering")
    story(fake, 1, at(1), at(2), at(4), 5)
    story(fake, 2, at(2), at(3), at(7), 3)
    story(fake, 3, at(3), at(5), None, 2)
    story(fake, 6, at(8), at(9), at(11), 1)
    story(
        fake,
        4,
        at(10, 10),
        at(10, 10, 30),
        at(10, 12),
        0,
        issue_type="Incident",
        priority="Highest",
        labels=["service:payments"],
    )
    story(
        fake,
        5,
        at(12, 14),
        None,
        at(12, 15),
        0,
        issue_type="Bug",
        priority="High",
        labels=["outage"],
        components=["checkout"],
    )
    fake.add_board(1, "ENG board", "ENG")
    fake.add_sprint(
        1,
        1,
        "Sprint 1",
        "closed",
        start=at(1, 8),
        end=at(8, 17),
        complete=at(8, 17),
        issues=["10001", "10002", "10003"],
    )
    fake.add_sprint(
        1,
        2,
        "Sprint 2",
        "closed",
        start=at(9, 8),
        end=at(15, 17),
        complete=at(15, 17),
        issues=["10003", "10006"],
    )
    fake.add_sprint(1, 3, "Sprint 3", "active", start=at(16, 8), end=at(29, 17), issues=["10003"])
    return fake


def integration(base_url: str) -> Integration:
    return Integration.model_validate(
        {
            "metadata": {"name": "acme-jira", "namespace": "doraflow"},
            "spec": {
                "organizationRef": {"name": ORG},
                "provider": "jira",
                "baseUrl": base_url,
                "credentialsSecretRef": {"name": "jira"},
                "scope": {"projects": ["ENG"]},
                "backfillDays": 90,
                "incidents": {"issueTypes": ["Incident"], "labels": ["outage"]},
            },
        }
    )


DEPLOYMENTS = [
    ("payments", at(2, 10), "a1"),
    ("payments", at(10, 9), "a2"),
    ("checkout", at(12, 13), "b1"),
    ("payments", at(14, 10), "a3"),
    ("payments", at(18, 10), "a4"),
]


async def publish_deployments(bus: EventBus, prefix: str) -> None:
    """What the git collector would have published for the two services."""
    for service, finished, revision in DEPLOYMENTS:
        data = DeploymentData(
            deployment_id=f"deploy-{revision}",
            service=service,
            environment="production",
            status="success",
            started_at=finished - timedelta(minutes=10),
            finished_at=finished,
            revision=(revision * 20)[:40],
        )
        envelope = make_event(data, organization=ORG, integration="doraflow/acme-github", source="github")
        await bus.publish(envelope.topic(prefix), message_key(envelope, data), envelope.to_bytes())
    await bus.flush()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), url=database_url)
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table: int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608
            for table in (
                "issues",
                "issue_transitions",
                "sprints",
                "sprint_issues",
                "incidents",
                "deployments",
            )
        }


async def wait_for(engine: AsyncEngine, expected: dict[str, int], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        seen = await counts(engine)
        if seen == expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the processor stored {seen}, expected {expected}")


async def flow_inputs(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[list[WorkItem], list[IssueTransition], list[Sprint], list[SprintMembership]]:
    """The stored rows as the metric definitions' records (the flow query layer is not there yet)."""
    async with sessions() as session:
        items = [
            WorkItem(item_id=str(row.id), created_at=row.created_at, kind=row.issue_type)
            for row in await session.execute(text("SELECT id, created_at, issue_type FROM issues"))
        ]
        transitions = [
            IssueTransition(
                item_id=str(row.issue_id),
                at=row.transitioned_at,
                to_category=StatusCategory(row.to_category),
                to_status=row.to_status,
            )
            for row in await session.execute(
                text("SELECT issue_id, transitioned_at, to_category, to_status FROM issue_transitions")
            )
        ]
        sprints = [
            Sprint(
                sprint_id=str(row.id),
                started_at=row.start_at,
                ended_at=row.completed_at or row.end_at,
                name=row.name,
            )
            for row in await session.execute(
                text("SELECT id, name, start_at, end_at, completed_at FROM sprints")
            )
        ]
        memberships = [
            SprintMembership(
                sprint_id=str(row.sprint_id),
                item_id=str(row.issue_id),
                story_points=None if row.story_points is None else float(row.story_points),  # numeric
            )
            for row in await session.execute(
                text("SELECT sprint_id, issue_id, story_points FROM sprint_issues")
            )
        ]
    return items, transitions, sprints, memberships


async def test_jira_to_flow_and_dora_metrics(kafka_bootstrap: str, engine: AsyncEngine) -> None:
    prefix = f"e2ework{uuid.uuid4().hex[:8]}"
    sessions = create_session_factory(engine)
    bus = create_bus(kafka_bootstrap, linger_ms=2)
    await bus.start()
    stop = asyncio.Event()
    config = ProcessorConfig(topic_prefix=prefix, group_id=f"{prefix}-processor", linger_ms=50)
    try:
        with serve_in_thread(jira_site().app()) as base_url:
            jira = JiraClient(integration(base_url), "bot@example.com:api-token", clock=lambda: NOW)
            runtime = CollectorRuntime(
                jira.integration,
                jira,
                bus,
                DatabaseCursorStore(sessions),
                organization=ORG,
                topic_prefix=prefix,
                topic_settings=TOPICS,
            )
            results = await runtime.sync_once()
            await jira.aclose()
        assert {r.resource: (r.succeeded, r.failed, r.events) for r in results} == {
            Resource.ISSUES: (1, 0, 6 + 10 + 2),  # 6 issues, 10 transitions, 2 incidents
            Resource.SPRINTS: (1, 0, 3),
        }
        await publish_deployments(bus, prefix)

        processor = asyncio.create_task(
            run_processor(
                Settings(kafka_topic_prefix=prefix), bus, MemoryCache(), sessions, stop=stop, config=config
            )
        )
        await wait_for(
            engine,
            {
                "issues": 6,
                "issue_transitions": 10,
                "sprints": 3,
                "sprint_issues": 6,
                "incidents": 2,
                "deployments": 5,
            },
        )
    finally:
        stop.set()
        if "processor" in locals():
            await asyncio.wait_for(processor, 60)
        await bus.stop()

    # what the collector said about sprint membership landed as such
    async with sessions() as session:
        completed = {
            (row.name, row.key)
            for row in await session.execute(
                text(
                    "SELECT s.name, i.key FROM sprint_issues si JOIN sprints s ON s.id = si.sprint_id "
                    "JOIN issues i ON i.id = si.issue_id WHERE si.completed_in_sprint"
                )
            )
        }
    assert completed == {("Sprint 1", "ENG-1"), ("Sprint 1", "ENG-2"), ("Sprint 2", "ENG-6")}

    items, transitions, sprints, memberships = await flow_inputs(sessions)
    cycle = work_item_cycle_time(transitions, WINDOW)
    assert (cycle.value, cycle.sample_size) == (2 * DAY, 4)
    assert cycle.details["completed_without_in_progress"] == 1
    lead = work_item_lead_time(items, transitions, WINDOW)
    assert (lead.value, lead.sample_size) == (3 * DAY, 5)
    throughput = sprint_throughput(sprints, memberships, transitions, WINDOW)
    assert (throughput.value, throughput.sample_size) == (1.5, 2)
    assert throughput.details["median_story_points"] == 4.5
    carry = sprint_carry_over(sprints, memberships, transitions, WINDOW)
    assert (carry.value, carry.details["carried_over"], carry.details["in_sprints_at_end"]) == (0.4, 2, 5)

    async with sessions() as session:
        organization_id = (
            await session.execute(text("SELECT id FROM organizations WHERE slug = :slug"), {"slug": ORG})
        ).scalar_one()
        report = await dora_report(
            session, organization_id=organization_id, scope=MetricScope.organization(), window=WINDOW
        )
    restore = report.metrics["time_to_restore_service"]
    assert (restore.value, restore.sample_size) == (1.5 * HOUR, 2)
    failure_rate = report.metrics["change_failure_rate"]
    assert failure_rate.value == pytest.approx(0.4)
