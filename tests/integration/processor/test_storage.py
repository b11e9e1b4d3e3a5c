"""Storage and enrichment against a real PostgreSQL: every schema lands, links come out the same in
any arrival order, a replay changes nothing, rows never regress."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from doraflow.core.events import EventData, PersonRef
from doraflow.core.models import natural_id
from tests.integration.processor.conftest import Ingest, dump, fresh, lead_time_mismatches, query, xmins
from tests.unit.processor import factories as f

pytestmark = pytest.mark.integration

# Commits with their lead-time values (no `commit_deployments` row: the defaults).
WITH_LEAD_TIME = "commits c LEFT JOIN commit_deployments d USING (repository_id, time, commit_sha)"

MakeDatabase = Callable[[], Awaitable[str]]


def git_history() -> dict[str, list[EventData]]:
    """Six commits; PR 3 squash-merged as commit 900; a failed, a staging and two production
    deployments; an incident after the second deployment."""
    commits: list[EventData] = [f.commit(n, pull_request_number=3 if n == 3 else None) for n in range(1, 7)]
    commits.append(f.commit(900, parents=[f.sha(2)]))  # the squash commit of PR 3
    prs: list[EventData] = [
        f.pull_request(3, merge_commit_sha=f.sha(900), commit_shas=[f.sha(3)]),
        f.review(3, "r-1", minutes=20),
    ]
    deployments: list[EventData] = [
        f.deployment("d-failed", [f.sha(1)], minutes=100, status="failed"),
        f.deployment("d-staging", [f.sha(1), f.sha(2)], minutes=150, environment="staging"),
        f.deployment("d-1", [f.sha(1), f.sha(2), f.sha(900)], minutes=200),
        f.deployment("d-2", [f.sha(4), f.sha(5), f.sha(6)], minutes=400),
        f.deployment("d-2-eu", [f.sha(4), f.sha(5), f.sha(6)], minutes=420, revision=f.sha(6)),
    ]
    incidents: list[EventData] = [f.incident("INC-1", minutes=430)]
    return {"commits": commits, "prs": prs, "deployments": deployments, "incidents": incidents}


async def test_every_schema_lands_in_its_table(ingest: Ingest, engine: AsyncEngine) -> None:
    history = git_history()
    work: list[EventData] = [
        f.work_item("W-1"),
        f.transition("W-1", "h1", minutes=30),
        f.sprint("S-1", ["W-1", "W-2"], completed=["W-1"]),
    ]
    await ingest([event for events in history.values() for event in events] + work)
    counts = {
        table: (await query(engine, f"SELECT count(*) FROM {table}"))[0][0]  # noqa: S608
        for table in (
            "organizations",
            "repositories",
            "commits",
            "pull_requests",
            "pull_request_reviews",
            "deployments",
            "deployment_commits",
            "issues",
            "issue_transitions",
            "sprints",
            "sprint_issues",
            "incidents",
        )
    }
    assert counts == {
        "organizations": 1,
        "repositories": 1,
        "commits": 7,
        "pull_requests": 1,
        "pull_request_reviews": 1,
        "deployments": 5,
        "deployment_commits": 12,
        "issues": 2,  # W-2 is a placeholder named by the sprint
        "issue_transitions": 1,
        "sprints": 1,
        "sprint_issues": 2,
        "incidents": 1,
    }
    org = natural_id("organization", f.ORG)
    d1 = natural_id("deployment", org, "github", f.deployment_key("d-1"))
    d2 = natural_id("deployment", org, "github", f.deployment_key("d-2"))
    rows = await query(
        engine,
        f"SELECT c.commit_sha, d.first_deployment_id FROM {WITH_LEAD_TIME}",  # noqa: S608,
    )
    firsts: dict[object, object] = dict(rows)  # type: ignore[arg-type]
    assert firsts == {
        f.sha(1): d1,  # not the failed nor the staging deployment
        f.sha(2): d1,
        f.sha(3): d1,  # squash-merged: shipped with its pull request's squash commit
        f.sha(4): d2,  # the first of the two regions
        f.sha(5): d2,
        f.sha(6): d2,
        f.sha(900): d1,
    }
    ((state, first_review, reviews, pr_deployment, pr_deployed_at),) = await query(
        engine,
        "SELECT state, first_review_at, reviews_count, first_deployment_id, first_deployed_at "
        "FROM pull_requests",
    )
    assert (state, first_review, reviews, pr_deployment, pr_deployed_at) == (
        "merged",
        f.at(23),
        1,
        d1,
        f.at(200),
    )
    ((deployment, attribution),) = await query(engine, "SELECT deployment_id, attribution FROM incidents")
    assert (deployment, attribution) == (d2, "inferred")
    ((started_at,),) = await query(engine, "SELECT started_at FROM issues WHERE external_id = 'W-1'")
    assert started_at == f.at(30)
    represented = await query(
        engine, "SELECT commit_sha FROM commit_deployments WHERE represented_by_pull_request"
    )
    assert represented == [(f.sha(900),)]  # its work is counted through commit 3
    assert await lead_time_mismatches(ingest.url) == []


@pytest.mark.parametrize("order", ["facts first", "deployments first", "one by one, reversed", "one batch"])
async def test_links_do_not_depend_on_arrival_order(make_database: MakeDatabase, order: str) -> None:
    history = git_history()
    reference_ingest, reference = await fresh(make_database)
    other_ingest, other = await fresh(make_database)
    try:
        await reference_ingest(
            history["commits"], history["prs"], history["deployments"], history["incidents"]
        )
        everything = [event for events in history.values() for event in events]
        if order == "facts first":
            await other_ingest(
                history["commits"] + history["prs"], history["deployments"] + history["incidents"]
            )
        elif order == "deployments first":
            await other_ingest(
                history["incidents"], history["deployments"], history["prs"], history["commits"]
            )
        elif order == "one by one, reversed":
            await other_ingest(*[[event] for event in reversed(everything)])
        else:
            await other_ingest(everything)
        assert await dump(other) == await dump(reference)
        assert await lead_time_mismatches(other_ingest.url) == []
    finally:
        await reference.dispose()
        await other.dispose()


async def test_incident_attribution_does_not_depend_on_arrival_order(make_database: MakeDatabase) -> None:
    deployments: list[EventData] = [
        f.deployment("d-1", [f.sha(1)], minutes=100),
        f.deployment("d-2", [f.sha(2)], minutes=300),
        f.deployment("other", [f.sha(3)], minutes=350, repository=f.repo("acme/web")),
    ]
    incidents: list[EventData] = [
        f.incident("inferred", minutes=320),  # latest acme/api deployment before it: d-2
        f.incident("explicit", minutes=320, deployment_ref="d-1"),
        f.incident("by-commit", minutes=320, service=None, commit_sha=f.sha(1)),
        f.incident("too-late", minutes=300 + 8 * 24 * 60),  # outside the 7-day window
        f.incident("no-service", minutes=320, service=None),
        f.incident("unknown-service", minutes=320, service="billing"),
    ]
    expected = {
        "inferred": ("d-2", "inferred"),
        "explicit": ("d-1", "explicit"),
        "by-commit": ("d-1", "explicit"),
        "too-late": (None, "unattributed"),
        "no-service": (None, "unattributed"),
        "unknown-service": (None, "unattributed"),
    }
    org = natural_id("organization", f.ORG)
    for arrangement in (
        [deployments, incidents],
        [incidents, deployments],
        [[e] for e in incidents + deployments],
    ):
        ingest, engine = await fresh(make_database)
        try:
            await ingest(*arrangement)
            rows = await query(engine, "SELECT external_id, deployment_id, attribution FROM incidents")
            got = {external_id: (deployment, attribution) for external_id, deployment, attribution in rows}
            assert got == {
                name: (natural_id("deployment", org, "github", f.deployment_key(d)) if d else None, how)
                for name, (d, how) in expected.items()
            }
        finally:
            await engine.dispose()


async def test_a_replay_changes_nothing_not_even_row_versions(ingest: Ingest, engine: AsyncEngine) -> None:
    from benchmarks.processor_workload import workload

    events = [message.value for message in workload(3000, organization=f.ORG)]
    await ingest(*[events[i : i + 500] for i in range(0, len(events), 500)])
    before, versions = await dump(engine), await xmins(engine)
    assert sum(len(rows) for rows in before.values()) > 3000
    replay = Ingest(ingest.url)  # a fresh process: nothing remembered
    await replay(*[events[i : i + 700] for i in range(0, len(events), 700)])
    await replay(events[1000:1300], events[:50])  # and part of it once more, out of order
    assert await dump(engine) == before
    assert await xmins(engine) == versions
    assert await lead_time_mismatches(ingest.url) == []


async def test_a_pull_request_never_regresses(ingest: Ingest, engine: AsyncEngine) -> None:
    opened = f.pull_request(5, state="open", updated_at=f.at(10), merged_at=None, merge_commit_sha=None)
    merged = f.pull_request(5, state="merged", updated_at=f.at(90), title="final title")
    await ingest([merged], [opened])
    assert await query(engine, "SELECT state, title FROM pull_requests") == [("merged", "final title")]


async def test_a_deployment_status_moves_forward_and_releases_its_commits(
    ingest: Ingest, engine: AsyncEngine
) -> None:
    await ingest([f.commit(1)], [f.deployment("d", [f.sha(1)], minutes=100, status="in_progress")])
    assert await query(
        engine,
        f"SELECT d.first_deployment_id FROM {WITH_LEAD_TIME}",  # noqa: S608,
    ) == [(None,)]
    await ingest([f.deployment("d", [f.sha(1)], minutes=100, status="success")])
    await ingest([f.deployment("d", [f.sha(1)], minutes=100, status="in_progress")])  # a stale event
    assert await query(engine, "SELECT status FROM deployments") == [("success",)]
    ((deployed,),) = await query(
        engine,
        f"SELECT d.first_deployed_at FROM {WITH_LEAD_TIME}",  # noqa: S608,
    )
    assert deployed == f.at(100)


async def test_one_person_across_providers_is_one_developer(ingest: Ingest, engine: AsyncEngine) -> None:
    jane_git = PersonRef(email="Jane@Acme.com", name="Jane", username="jdoe")
    await ingest(
        [f.pull_request(1, author=PersonRef(username="jdoe"))],  # GitHub: a login, no email
        [f.commit(1, author=jane_git)],
        [f.work_item("W-1", assignee=PersonRef(email="jane@acme.com", username="5b10a2844c20165700ede21g"))],
        [f.commit(2, author=PersonRef(name="Jane", email="jane@acme.com"))],
        [f.commit(3, author=PersonRef(username="jane-gl"), repository=f.repo("acme/lib", provider="gitlab"))],
    )
    developers = await query(engine, "SELECT email, github_username FROM developers ORDER BY email")
    assert developers == [("jane-gl@users.noreply.gitlab", None), ("jane@acme.com", "jdoe")]
    identities = await query(engine, "SELECT kind, value FROM developer_identities ORDER BY kind, value")
    assert identities == [
        ("email", "jane@acme.com"),
        ("github", "jdoe"),
        ("gitlab", "jane-gl"),
        ("jira", "5b10a2844c20165700ede21g"),
    ]
    authors = await query(engine, "SELECT DISTINCT author_id FROM commits WHERE commit_sha <> :s", s=f.sha(3))
    assert len(authors) == 1
    assert await query(engine, "SELECT count(DISTINCT author_id) FROM pull_requests") == [(1,)]


async def test_organization_aliases_merge_identities(ingest: Ingest, engine: AsyncEngine) -> None:
    await ingest([f.commit(1, author=PersonRef(email="jane@acme.com"))])
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE organizations SET settings = CAST(:s AS jsonb)"),
            {"s": '{"aliases": {"Jane@Laptop.local": "jane@acme.com", "janegl": "jane@acme.com"}}'},
        )
    ingest.lookups.organizations.discard()
    again = Ingest(ingest.url)  # organization settings are re-read (memory is per process, 30 s)
    await again(
        [
            f.commit(2, author=PersonRef(email="jane@laptop.local")),
            f.commit(
                3, author=PersonRef(username="janegl"), repository=f.repo("acme/lib", provider="gitlab")
            ),
        ]
    )
    assert await query(engine, "SELECT count(*) FROM developers") == [(1,)]
    assert await query(engine, "SELECT count(DISTINCT author_id) FROM commits") == [(1,)]


async def test_a_less_complete_version_of_a_commit_erases_nothing(make_database: MakeDatabase) -> None:
    """The default branch knows line counts; a pull request's commit list may know only its number."""
    from_history = f.commit(7, additions=12, deletions=3, files_changed=2)
    from_pull_request = f.commit(
        7, additions=None, deletions=None, files_changed=None, message=None, pull_request_number=4
    )
    for arrangement in (
        [[from_history], [from_pull_request]],
        [[from_pull_request], [from_history]],
        [[from_history, from_pull_request]],
        [[from_pull_request, from_history]],
    ):
        ingest, engine = await fresh(make_database)
        try:
            await ingest(*arrangement)
            rows = await query(
                engine,
                "SELECT lines_added, lines_deleted, files_changed, message, pull_request_number FROM commits",
            )
            assert rows == [(12, 3, 2, "change 7", 4)], arrangement
        finally:
            await engine.dispose()


async def test_reviews_and_pull_requests_in_any_order(make_database: MakeDatabase) -> None:
    author = PersonRef(username="dev1")
    events: list[EventData] = [
        f.pull_request(9, author=author),
        f.review(9, "self", reviewer=author, minutes=5),  # the author's own comment does not count
        f.review(9, "r-2", reviewer=PersonRef(username="dev2"), minutes=50),
        f.review(9, "r-1", reviewer=PersonRef(username="dev3"), minutes=40),
    ]
    results = []
    for permutation in itertools.islice(itertools.permutations(events), 0, 24, 5):
        ingest, engine = await fresh(make_database)
        try:
            await ingest(*[[event] for event in permutation])
            results.append(await query(engine, "SELECT first_review_at, reviews_count FROM pull_requests"))
        finally:
            await engine.dispose()
    assert results == [[(f.at(49), 2)]] * len(results)


async def test_work_items_transitions_and_sprints(ingest: Ingest, engine: AsyncEngine) -> None:
    await ingest(
        [f.transition("W-1", "h2", minutes=50, to="done"), f.transition("W-1", "h1", minutes=20)],
        [f.sprint("S-1", ["W-1", "W-2"])],
    )
    # placeholders hold the references until the issues arrive
    assert await query(engine, "SELECT external_id, title, started_at FROM issues ORDER BY 1") == [
        ("W-1", None, f.at(20)),
        ("W-2", None, None),
    ]
    await ingest([f.work_item("W-1", story_points=5.0)], [f.sprint("S-1", ["W-1", "W-3"], completed=["W-1"])])
    assert await query(engine, "SELECT external_id, title, started_at FROM issues ORDER BY 1") == [
        ("W-1", "issue W-1", f.at(20)),
        ("W-2", None, None),
        ("W-3", None, None),
    ]
    members = await query(
        engine,
        "SELECT i.external_id, si.story_points, si.completed_in_sprint FROM sprint_issues si "
        "JOIN issues i ON i.id = si.issue_id ORDER BY 1",
    )
    assert members == [("W-1", 5.0, True), ("W-3", None, False)]


async def test_developers_do_not_depend_on_arrival_order(make_database: MakeDatabase) -> None:
    """A login seen first on a pull request makes a placeholder developer; when the login shows up
    with its email it is merged into the email's developer, so every order ends identically."""
    events: list[EventData] = [
        f.pull_request(4, author=PersonRef(username="octocat")),
        f.review(4, "r", reviewer=PersonRef(username="hubot")),
        f.commit(1, author=PersonRef(email="octo@acme.com", name="Octo", username="octocat")),
        f.work_item("W-9", assignee=PersonRef(email="octo@acme.com", username="jira-octo")),
        f.commit(2, author=PersonRef(email="hubot@acme.com", username="hubot")),
    ]
    reference_ingest, reference = await fresh(make_database)
    try:
        await reference_ingest(events)
        expected = await dump(reference)
        assert await query(reference, "SELECT email FROM developers ORDER BY 1") == [
            ("hubot@acme.com",),
            ("octo@acme.com",),
        ]
    finally:
        await reference.dispose()
    for permutation in itertools.islice(itertools.permutations(events), 0, 120, 17):
        ingest, engine = await fresh(make_database)
        try:
            await ingest(*[[event] for event in permutation])
            assert await dump(engine) == expected, permutation
        finally:
            await engine.dispose()
