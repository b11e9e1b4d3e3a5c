"""Branches, tags, releases and contributors against a real PostgreSQL: events land in their tables,
a replay writes nothing, an older observation never regresses a newer one, deletions are kept."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from doraflow.core.events import (
    BranchData,
    ContributorData,
    EventData,
    PersonRef,
    ReleaseData,
    TagData,
    make_event,
)
from tests.integration.processor.conftest import Ingest, query
from tests.unit.processor import factories as f

pytestmark = pytest.mark.integration

REFS_TABLES = ("branches", "tags", "releases", "repository_contributors")
OBSERVED = f.COLLECTED


def observed(data: EventData, hours: float = 0) -> bytes:
    """`data` as collected `hours` after the reference observation time."""
    return make_event(
        data,
        organization=f.ORG,
        integration="default/test",
        source="github",
        collected_at=OBSERVED + timedelta(hours=hours),
    ).to_bytes()


def branch(name: str, n: int, **kw: object) -> BranchData:
    return BranchData(repository=f.repo(), name=name, head_sha=f.sha(n), updated_at=f.at(n), **kw)


def tag(name: str, n: int, **kw: object) -> TagData:
    return TagData(repository=f.repo(), name=name, sha=f.sha(n), tagged_at=f.at(n), **kw)


JANE = PersonRef(email="jane@acme.com", name="Jane Doe", username="jane")


def refs_history() -> list[EventData]:
    return [
        branch("main", 3, is_default=True, protected=True),
        branch("feature/x", 2),
        tag(
            "v1.0.0",
            1,
            annotated=True,
            tagger=PersonRef(email="jane@acme.com", name="Jane Doe"),
            message="one",
        ),
        tag("nightly", 2),
        ReleaseData(
            repository=f.repo(),
            release_id="123",
            tag_name="v1.0.0",
            name="First",
            created_at=f.at(1),
            published_at=f.at(5),
            author=PersonRef(username="jane"),
            url="https://github.com/acme/api/releases/tag/v1.0.0",
        ),
        ContributorData(repository=f.repo(), person=JANE, contributions=7),
        ContributorData(repository=f.repo(), person=PersonRef(username="bob"), contributions=2),
    ]


async def rows(engine: AsyncEngine) -> dict[str, list[tuple[object, ...]]]:
    return {
        "branches": await query(
            engine,
            "SELECT name, head_sha, is_default, protected, updated_at, deleted_at FROM branches"
            " ORDER BY name",
        ),
        "tags": await query(
            engine,
            "SELECT t.name, t.commit_sha, t.annotated, t.tagged_at, d.email, t.message, t.deleted_at "
            "FROM tags t LEFT JOIN developers d ON d.id = t.tagger_id ORDER BY t.name",
        ),
        "releases": await query(
            engine,
            "SELECT r.external_id, r.tag_name, r.name, r.published_at, d.email, r.draft "
            "FROM releases r LEFT JOIN developers d ON d.id = r.author_id",
        ),
        "repository_contributors": await query(
            engine,
            "SELECT d.email, c.contributions FROM repository_contributors c "
            "JOIN developers d ON d.id = c.developer_id ORDER BY d.email",
        ),
    }


async def versions(engine: AsyncEngine) -> dict[str, list[str]]:
    return {
        table: sorted(str(v) for (v,) in await query(engine, f"SELECT xmin::text FROM {table}"))  # noqa: S608
        for table in REFS_TABLES
    }


async def test_events_land_and_resolve_people(ingest: Ingest, engine: AsyncEngine) -> None:
    await ingest([observed(event) for event in refs_history()])
    assert await rows(engine) == {
        "branches": [
            ("feature/x", f.sha(2), False, None, f.at(2), None),
            ("main", f.sha(3), True, True, f.at(3), None),
        ],
        "tags": [
            ("nightly", f.sha(2), False, f.at(2), None, None, None),
            ("v1.0.0", f.sha(1), True, f.at(1), "jane@acme.com", "one", None),
        ],
        # The release's login and the contributor's login+email are one person: Jane.
        "releases": [("123", "v1.0.0", "First", f.at(5), "jane@acme.com", False)],
        "repository_contributors": [
            ("bob@users.noreply.github", 2),
            ("jane@acme.com", 7),
        ],
    }
    ((repository_id, organization_id),) = await query(engine, "SELECT id, organization_id FROM repositories")
    for table in ("branches", "tags", "releases"):
        assert await query(engine, f"SELECT DISTINCT repository_id, organization_id FROM {table}") == [  # noqa: S608
            (repository_id, organization_id)
        ]


async def test_a_replay_writes_nothing(ingest: Ingest, engine: AsyncEngine) -> None:
    batches = [
        [observed(event) for event in refs_history()],
        [observed(branch("main", 4, is_default=True, protected=True), hours=1)],
        [observed(branch("feature/x", 2, deleted=True), hours=2)],
    ]
    await ingest(*batches)
    before, stamps = await rows(engine), await versions(engine)
    await ingest(*batches)  # batch by batch, as first delivered
    await ingest([event for batch in batches for event in batch])  # and all in one batch
    assert await rows(engine) == before
    assert await versions(engine) == stamps


async def test_an_older_observation_never_regresses_a_newer_one(ingest: Ingest, engine: AsyncEngine) -> None:
    newer = observed(branch("main", 5, is_default=True), hours=2)
    older = observed(branch("main", 4, is_default=True), hours=1)
    newer_tag = observed(tag("v2", 9, message="moved"), hours=2)
    older_tag = observed(tag("v2", 8, message="first"), hours=1)
    await ingest([newer, newer_tag], [older, older_tag])
    await ingest([newer, older, newer_tag, older_tag])  # in one batch too
    current = await rows(engine)
    assert current["branches"] == [("main", f.sha(5), True, None, f.at(5), None)]
    assert current["tags"] == [("v2", f.sha(9), False, f.at(9), None, "moved", None)]


async def test_a_force_push_to_an_older_commit_is_followed(ingest: Ingest, engine: AsyncEngine) -> None:
    """The newer observation wins even though its head commit is older (a reset branch)."""
    await ingest([observed(branch("main", 9), hours=1)], [observed(branch("main", 3), hours=2)])
    assert (await rows(engine))["branches"] == [("main", f.sha(3), False, None, f.at(3), None)]


async def test_a_newer_unchanged_observation_protects_against_an_older_one(
    ingest: Ingest, engine: AsyncEngine
) -> None:
    """main seen at 1, then at 2 (delivered late), while a later listing saw it at 1 again: the
    late event is older than the last observation and must not win, though it differs from it."""
    at_one, at_two, at_one_again = (
        observed(branch("main", 1), hours=1),
        observed(branch("main", 2), hours=2),
        observed(branch("main", 1), hours=3),
    )
    await ingest([at_one], [at_one_again], [at_two])
    assert (await rows(engine))["branches"] == [("main", f.sha(1), False, None, f.at(1), None)]
    stamps = await versions(engine)
    await ingest([at_one], [at_two], [at_one_again])  # the whole history replayed
    assert await versions(engine) == stamps


async def test_deleted_branches_and_tags_keep_their_row(ingest: Ingest, engine: AsyncEngine) -> None:
    created = observed(branch("feature/x", 2, protected=False), hours=1)
    deleted = observed(
        BranchData(repository=f.repo(), name="feature/x", head_sha=f.sha(2), deleted=True), hours=2
    )
    tagged = observed(tag("rc", 4, annotated=True, message="candidate"), hours=1)
    untagged = observed(TagData(repository=f.repo(), name="rc", sha=f.sha(4), deleted=True), hours=2)
    await ingest([created, tagged], [deleted, untagged])
    gone_at = OBSERVED + timedelta(hours=2)
    current = await rows(engine)
    # The deletion keeps what was known (protected, head commit time, message) and says when.
    assert current["branches"] == [("feature/x", f.sha(2), False, False, f.at(2), gone_at)]
    assert current["tags"] == [("rc", f.sha(4), True, f.at(4), None, "candidate", gone_at)]

    # Seen deleted again later: still deleted since the first time. Older events do not revive it.
    await ingest(
        [
            observed(
                BranchData(repository=f.repo(), name="feature/x", head_sha=f.sha(2), deleted=True), hours=3
            )
        ],
        [created, tagged],
    )
    assert (await rows(engine))["branches"][0][5] == gone_at
    assert (await rows(engine))["tags"][0][6] == gone_at

    # Created again: live.
    await ingest([observed(branch("feature/x", 6), hours=4)])
    assert (await rows(engine))["branches"] == [("feature/x", f.sha(6), False, None, f.at(6), None)]


async def test_a_deletion_seen_first_is_not_undone_by_the_older_creation(
    ingest: Ingest, engine: AsyncEngine
) -> None:
    deleted = observed(BranchData(repository=f.repo(), name="tmp", head_sha=f.sha(2), deleted=True), hours=2)
    await ingest([deleted], [observed(branch("tmp", 2), hours=1)])
    ((deleted_at,),) = await query(engine, "SELECT deleted_at FROM branches")
    assert deleted_at == OBSERVED + timedelta(hours=2)


async def test_release_edits_follow_the_observation_order(ingest: Ingest, engine: AsyncEngine) -> None:
    def release(draft: bool, published: datetime | None) -> ReleaseData:
        return ReleaseData(
            repository=f.repo(),
            release_id="7",
            tag_name="v7",
            created_at=f.at(1),
            published_at=published,
            draft=draft,
        )

    await ingest([observed(release(True, None), hours=1)], [observed(release(False, f.at(9)), hours=2)])
    await ingest([observed(release(True, None), hours=1)])  # the draft, replayed
    assert (await rows(engine))["releases"] == [("7", "v7", None, f.at(9), None, False)]


async def test_contributors_follow_developer_merges(ingest: Ingest, engine: AsyncEngine) -> None:
    """A login-only contributor (GitHub's contributors listing has no emails) becomes a provisional
    developer; when a commit shows that login with an email, the contributor row moves over."""
    await ingest(
        [observed(ContributorData(repository=f.repo(), person=PersonRef(username="jane"), contributions=3))]
    )
    assert (await rows(engine))["repository_contributors"] == [("jane@users.noreply.github", 3)]
    await ingest([f.commit(1, author=JANE)])
    assert (await rows(engine))["repository_contributors"] == [("jane@acme.com", 3)]
    assert await query(engine, "SELECT email FROM developers") == [("jane@acme.com",)]


async def test_a_merge_keeps_the_newer_observation_even_when_it_counts_less(
    ingest: Ingest, engine: AsyncEngine
) -> None:
    """The surviving developer's newer row wins over the provisional developer's older, larger one."""
    await ingest(
        [observed(ContributorData(repository=f.repo(), person=PersonRef(username="jane"), contributions=5))]
    )
    await ingest(
        [
            observed(
                ContributorData(
                    repository=f.repo(), person=PersonRef(email="jane@acme.com"), contributions=2
                ),
                hours=1,
            )
        ]
    )
    await ingest([f.commit(1, author=JANE)])  # the login turns out to be jane@acme.com: merged
    assert (await rows(engine))["repository_contributors"] == [("jane@acme.com", 2)]


async def test_identities_of_one_person_in_one_listing_add_up(ingest: Ingest, engine: AsyncEngine) -> None:
    await ingest([f.commit(1, author=JANE)])  # jane's login and email are known to be one person
    await ingest(
        [
            observed(
                ContributorData(repository=f.repo(), person=PersonRef(email="jane@acme.com"), contributions=4)
            ),
            observed(
                ContributorData(repository=f.repo(), person=PersonRef(username="jane"), contributions=3)
            ),
        ]
    )
    assert (await rows(engine))["repository_contributors"] == [("jane@acme.com", 7)]
    # The next listing replaces the count.
    await ingest([observed(ContributorData(repository=f.repo(), person=JANE, contributions=9), hours=1)])
    assert (await rows(engine))["repository_contributors"] == [("jane@acme.com", 9)]
