"""The local git provider on real repositories: one built here with `git` (fixed dates in several
time zones, a merge, annotated and lightweight tags, a pre-release tag, a revert), and this
project's own clone."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.git.local import LocalGitClient
from doraflow.collectors.runtime import CollectorRuntime
from doraflow.core.bus import MemoryBus
from doraflow.core.events import (
    BranchData,
    CommitData,
    ContributorData,
    DeploymentData,
    PersonRef,
    RepositoryRef,
    TagData,
    parse_event,
)
from doraflow.core.resources import Integration

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[3]
ALICE = ("Alice Example", "alice@example.com")
BOB = ("Bob Example", "bob@example.com")
CAROL = ("Carol Example", "carol@example.com")
RELEASER = ("Release Bot", "release@example.com")


class Repo:
    """Builds a repository with exact identities and dates; no user or system git config leaks in."""

    def __init__(self, path: Path, *, init: bool = True) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        if init:
            self.git("init", "--quiet", "--initial-branch=main")

    def git(
        self,
        *args: str,
        who: tuple[str, str] = ALICE,
        when: str = "2024-01-01T00:00:00+00:00",
        committed: str | None = None,
    ) -> str:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.path),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": who[0],
            "GIT_AUTHOR_EMAIL": who[1],
            "GIT_COMMITTER_NAME": who[0],
            "GIT_COMMITTER_EMAIL": who[1],
            "GIT_AUTHOR_DATE": when,
            "GIT_COMMITTER_DATE": committed or when,
        }
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def write(self, name: str, content: str | bytes) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        self.git("add", name)

    def commit(self, message: str, who: tuple[str, str], when: str, committed: str | None = None) -> str:
        self.git("commit", "--quiet", "-m", message, who=who, when=when, committed=committed)
        return self.git("rev-parse", "HEAD")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Repo, dict[str, str]]:
    repo = Repo(tmp_path_factory.mktemp("local-git") / "shop")
    c: dict[str, str] = {}
    repo.write("README.md", "# Shop\n\nA shop.\n")
    repo.write("logo.png", b"\x89PNG\r\n\x1a\n\x00\x00binary")
    c["c1"] = repo.commit("Initial commit", ALICE, "2024-01-10T09:00:00+01:00")
    repo.write("README.md", "# Shop\n\nThe shop.\n")
    repo.write("a.py", "print('a')\nprint('a2')\n")
    c["c2"] = repo.commit("Add feature A\n\nWith a body line.", BOB, "2024-01-11T10:00:00-05:00")
    repo.git("tag", "-a", "v1.0.0", "-m", "Release 1.0.0", who=RELEASER, when="2024-01-12T12:00:00+09:00")
    repo.git("checkout", "--quiet", "-b", "feature")
    repo.write("b.py", "1\n2\n3\n4\n5\n")
    c["c3"] = repo.commit(
        "Feature B", CAROL, "2024-01-13T08:00:00+05:30", committed="2024-01-13T09:00:00-03:00"
    )
    repo.git("checkout", "--quiet", "main")
    repo.write("README.md", "# Shop\n\nThe best shop.\n")
    c["c4"] = repo.commit("Fix typo", ALICE, "2024-01-14T00:30:00+00:00")
    repo.git(
        "merge",
        "--quiet",
        "--no-ff",
        "-m",
        "Merge branch 'feature'",
        "feature",
        when="2024-01-15T16:00:00-08:00",
    )
    c["c5"] = repo.git("rev-parse", "HEAD")
    repo.git(
        "tag", "-a", "v1.1.0-rc1", "-m", "Release candidate", who=RELEASER, when="2024-01-15T17:00:00-08:00"
    )
    repo.git("tag", "v1.1.0")  # lightweight: deployed at the merge's committer date
    repo.git("revert", "--no-edit", c["c4"], who=BOB, when="2024-01-17T10:00:00+02:00")
    c["c6"] = repo.git("rev-parse", "HEAD")
    repo.git("tag", "-a", "v1.1.1", "-m", "Patch release", who=RELEASER, when="2024-01-17T11:00:00+02:00")
    repo.write("docs/guide.md", "Guide\nMore\n")
    c["c7"] = repo.commit("Add docs", CAROL, "2024-01-18T09:15:00-07:00")
    return repo, c


def make_integration(*repositories: str, exclude: Sequence[str] = (), **spec: Any) -> Integration:
    return Integration.model_validate(
        {
            "metadata": {"name": "shop", "namespace": "team"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "git",
                "scope": {"repositories": list(repositories), "exclude": list(exclude)},
                "backfillDays": 3650,
                **spec,
            },
        }
    )


def fixed_clock(when: datetime = datetime(2024, 2, 1, tzinfo=UTC)) -> Any:
    return lambda: when


async def collect(
    client: LocalGitClient, resource: Resource, cursor: dict[str, Any] | None = None
) -> tuple[list[Any], dict[str, Any] | None]:
    (scope,) = await client.list_scopes()
    events: list[Any] = []
    async for batch in client.collect(scope, resource, cursor):
        events.extend(batch.events)
        cursor = batch.cursor if batch.cursor is not None else cursor
    return events, cursor


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


async def test_commits_are_exact_newest_first(history: tuple[Repo, dict[str, str]]) -> None:
    repo, c = history
    client = LocalGitClient(make_integration(str(repo.path)), None, clock=fixed_clock())
    commits, cursor = await collect(client, Resource.COMMITS)
    ref = RepositoryRef(provider="git", id=str(repo.path), name="shop", default_branch="main")

    def expected(
        key: str,
        who: tuple[str, str],
        message: str,
        when: str,
        stats: tuple[int, int, int],
        parents: Sequence[str],
        committed: str | None = None,
    ) -> CommitData:
        return CommitData(
            repository=ref,
            sha=c[key],
            author=PersonRef(name=who[0], email=who[1]),
            authored_at=utc(when),
            committed_at=utc(committed or when),
            message=message,
            additions=stats[0],
            deletions=stats[1],
            files_changed=stats[2],
            parents=[c[p] for p in parents],
        )

    assert commits == [
        expected("c7", CAROL, "Add docs", "2024-01-18T09:15:00-07:00", (2, 0, 1), ["c6"]),
        expected(
            "c6",
            BOB,
            f'Revert "Fix typo"\n\nThis reverts commit {c["c4"]}.',
            "2024-01-17T10:00:00+02:00",
            (1, 1, 1),
            ["c5"],
        ),
        # The merge: both parents, no lines of its own (they are counted on c3 and c4).
        expected("c5", ALICE, "Merge branch 'feature'", "2024-01-15T16:00:00-08:00", (0, 0, 0), ["c4", "c3"]),
        expected("c4", ALICE, "Fix typo", "2024-01-14T00:30:00+00:00", (1, 1, 1), ["c2"]),
        expected(
            "c3",
            CAROL,
            "Feature B",
            "2024-01-13T08:00:00+05:30",
            (5, 0, 1),
            ["c2"],
            committed="2024-01-13T09:00:00-03:00",
        ),
        expected(
            "c2", BOB, "Add feature A\n\nWith a body line.", "2024-01-11T10:00:00-05:00", (3, 1, 2), ["c1"]
        ),
        # logo.png is binary: changed, 0 lines.
        expected("c1", ALICE, "Initial commit", "2024-01-10T09:00:00+01:00", (3, 0, 2), []),
    ]
    assert cursor == {"tips": {"refs/heads/feature": c["c3"], "refs/heads/main": c["c7"]}, "walk": None}
    again, _ = await collect(client, Resource.COMMITS, cursor)
    assert again == []


async def test_deployments_are_release_tags_with_what_they_shipped(
    history: tuple[Repo, dict[str, str]],
) -> None:
    repo, c = history
    client = LocalGitClient(make_integration(str(repo.path)), None, clock=fixed_clock())
    deployments, cursor = await collect(client, Resource.DEPLOYMENTS)
    ref = RepositoryRef(provider="git", id=str(repo.path), name="shop", default_branch="main")
    releaser = PersonRef(name=RELEASER[0], email=RELEASER[1])

    def expected(
        tag: str, when: str, revision: str, shipped: list[str], by: PersonRef | None, hotfix: bool = False
    ) -> DeploymentData:
        return DeploymentData(
            repository=ref,
            deployment_id=tag,
            service="shop",
            environment="production",
            is_production=True,
            status="success",
            started_at=utc(when),
            finished_at=utc(when),
            revision=c[revision],
            commit_shas=[c[s] for s in shipped],
            deployed_by=by,
            is_hotfix=hotfix,
        )

    # Newest first; v1.1.0-rc1 is a pre-release, not a deployment.
    assert deployments == [
        # Annotated tag on a revert: a hotfix, deployed at the tagger date.
        expected("v1.1.1", "2024-01-17T11:00:00+02:00", "c6", ["c6"], releaser, hotfix=True),
        # Lightweight tag: the tagged merge's committer date; ships what v1.0.0 did not.
        expected("v1.1.0", "2024-01-15T16:00:00-08:00", "c5", ["c5", "c4", "c3"], None),
        # The first tag ships its whole history (within the horizon before the tag).
        expected("v1.0.0", "2024-01-12T12:00:00+09:00", "c2", ["c2", "c1"], releaser),
    ]
    assert cursor is not None
    assert cursor["complete"] is True
    again, _ = await collect(client, Resource.DEPLOYMENTS, cursor)
    assert again == []


async def test_the_backfill_horizon_bounds_commits_but_not_what_a_deployment_shipped(
    history: tuple[Repo, dict[str, str]],
) -> None:
    repo, c = history
    integration = make_integration(str(repo.path), backfillDays=5)
    client = LocalGitClient(integration, None, clock=fixed_clock(datetime(2024, 1, 20, 12, tzinfo=UTC)))
    commits, _ = await collect(client, Resource.COMMITS)
    assert [commit.sha for commit in commits] == [c["c7"], c["c6"], c["c5"]]  # committed since Jan 15 12:00
    deployments, _ = await collect(client, Resource.DEPLOYMENTS)
    assert [(d.deployment_id, d.commit_shas) for d in deployments] == [
        ("v1.1.1", [c["c6"]]),
        ("v1.1.0", [c["c5"], c["c4"], c["c3"]]),  # v1.0.0 is out of the horizon, yet still its baseline
    ]


async def test_interrupted_collection_resumes_without_gaps_or_repeats(
    history: tuple[Repo, dict[str, str]],
) -> None:
    repo, c = history
    integration = make_integration(str(repo.path))
    seen: list[str] = []
    cursor: dict[str, Any] | None = None
    for _ in range(10):  # a "crash" after every batch: a new client each time, from the saved cursor
        client = LocalGitClient(integration, None, clock=fixed_clock(), batch_size=2)
        (scope,) = await client.list_scopes()
        batches = client.collect(scope, Resource.COMMITS, cursor)
        first: Batch | None = await anext(aiter(batches), None)
        await batches.aclose()  # type: ignore[attr-defined]
        if first is None:
            break
        seen.extend(e.sha for e in first.events if isinstance(e, CommitData))
        cursor = first.cursor
    assert seen == [c[k] for k in ("c7", "c6", "c5", "c4", "c3", "c2", "c1")]


async def test_incremental_sync_after_new_commits_and_tags(
    tmp_path: Path, history: tuple[Repo, dict[str, str]]
) -> None:
    source, c = history
    repo = Repo(tmp_path / "shop", init=False)
    repo.git("clone", "--quiet", str(source.path), ".")
    repo.git("branch", "--quiet", "feature", "origin/feature")
    integration = make_integration(str(repo.path))
    client = LocalGitClient(integration, None, clock=fixed_clock())
    _, commit_cursor = await collect(client, Resource.COMMITS)
    _, deploy_cursor = await collect(client, Resource.DEPLOYMENTS)

    repo.write("c.py", "x = 1\n")
    c8 = repo.commit("Login fix", ALICE, "2024-01-19T10:00:00+00:00")
    repo.git("tag", "-a", "v1.2.0", "-m", "Hotfix: login", who=RELEASER, when="2024-01-19T11:00:00+00:00")
    repo.git(
        "tag", "-a", "v1.2.1", "-m", "Back to 1.1.1", c["c6"], who=RELEASER, when="2024-01-19T12:00:00+00:00"
    )

    commits, _ = await collect(client, Resource.COMMITS, commit_cursor)
    assert [commit.sha for commit in commits] == [c8]
    deployments, _ = await collect(client, Resource.DEPLOYMENTS, deploy_cursor)
    # New deployments oldest first (so the cursor only moves forward).
    assert [(d.deployment_id, d.commit_shas, d.is_hotfix, d.is_rollback) for d in deployments] == [
        ("v1.2.0", [c8, c["c7"]], True, False),  # the tag message says hotfix
        ("v1.2.1", [], False, True),  # points back to an ancestor of v1.2.0: a rollback
    ]


async def test_clone_urls_are_mirrored_and_fetched(
    tmp_path: Path, history: tuple[Repo, dict[str, str]]
) -> None:
    source, _ = history
    upstream = Repo(tmp_path / "upstream", init=False)
    upstream.git("clone", "--quiet", "--bare", str(source.path), ".")
    url = f"file://{upstream.path}"
    cache = tmp_path / "cache"
    client = LocalGitClient(
        make_integration(url), None, cache_dir=cache, fetch_interval=0, clock=fixed_clock()
    )
    (scope,) = await client.list_scopes()
    assert (scope.name, scope.id) == ("upstream", url)
    commits, cursor = await collect(client, Resource.COMMITS)
    assert len(commits) == 7
    assert commits[0].repository.url == url
    assert len(list(cache.glob("*.git"))) == 1

    work = Repo(tmp_path / "work", init=False)
    work.git("clone", "--quiet", url, ".")
    work.write("new.txt", "new\n")
    pushed = work.commit("Pushed later", BOB, "2024-01-25T10:00:00+00:00")
    work.git("push", "--quiet", "origin", "main")
    commits, _ = await collect(client, Resource.COMMITS, cursor)
    assert [commit.sha for commit in commits] == [pushed]


async def test_branches_and_tags_with_peeled_annotated_tags(history: tuple[Repo, dict[str, str]]) -> None:
    repo, c = history
    client = LocalGitClient(make_integration(str(repo.path)), None, clock=fixed_clock())
    events, cursor = await collect(client, Resource.BRANCHES_AND_TAGS)
    ref = RepositoryRef(provider="git", id=str(repo.path), name="shop", default_branch="main")
    releaser = PersonRef(name=RELEASER[0], email=RELEASER[1])

    def tag(name: str, commit: str, when: str, message: str | None = None) -> TagData:
        annotated = message is not None
        return TagData(
            repository=ref,
            name=name,
            sha=c[commit],
            annotated=annotated,
            tagged_at=utc(when),
            tagger=releaser if annotated else None,
            message=message,
        )

    assert events == [
        BranchData(
            repository=ref,
            name="feature",
            head_sha=c["c3"],
            updated_at=utc("2024-01-13T09:00:00-03:00"),  # the head commit's committer time
        ),
        BranchData(
            repository=ref,
            name="main",
            head_sha=c["c7"],
            is_default=True,
            updated_at=utc("2024-01-18T09:15:00-07:00"),
        ),
        # Every tag (pre-releases too), oldest first; annotated ones peeled to their commit and
        # dated by the tagger, lightweight ones by the commit.
        tag("v1.0.0", "c2", "2024-01-12T12:00:00+09:00", "Release 1.0.0"),
        tag("v1.1.0", "c5", "2024-01-15T16:00:00-08:00"),
        tag("v1.1.0-rc1", "c5", "2024-01-15T17:00:00-08:00", "Release candidate"),
        tag("v1.1.1", "c6", "2024-01-17T11:00:00+02:00", "Patch release"),
    ]
    assert cursor == {
        "branches": {"feature": c["c3"], "main": c["c7"]},
        "tags": {"v1.0.0": c["c2"], "v1.1.0": c["c5"], "v1.1.0-rc1": c["c5"], "v1.1.1": c["c6"]},
    }
    again, _ = await collect(client, Resource.BRANCHES_AND_TAGS, cursor)
    assert again == events  # a full listing each run; unchanged refs keep their event ids


async def test_a_clone_lists_its_remote_branches_and_reports_deleted_refs(
    tmp_path: Path, history: tuple[Repo, dict[str, str]]
) -> None:
    source, c = history
    repo = Repo(tmp_path / "shop", init=False)
    repo.git("clone", "--quiet", str(source.path), ".")
    repo.git("checkout", "--quiet", "-b", "wip", "origin/feature")  # on a local branch of its own
    client = LocalGitClient(make_integration(str(repo.path)), None, clock=fixed_clock())
    events, cursor = await collect(client, Resource.BRANCHES_AND_TAGS)
    branches = [(e.name, e.head_sha, e.is_default) for e in events if isinstance(e, BranchData)]
    # The remote's default branch stays the default whatever is checked out; remote-tracking
    # branches stand in for the local branches a fresh clone lacks.
    assert branches == [("feature", c["c3"], False), ("main", c["c7"], True), ("wip", c["c3"], False)]
    assert events[0].repository.default_branch == "main"

    repo.git("checkout", "--quiet", "main")
    repo.git("branch", "--quiet", "-D", "wip")
    repo.git("branch", "--quiet", "-d", "-r", "origin/feature")
    repo.git("tag", "-d", "v1.1.0-rc1")
    events, cursor = await collect(client, Resource.BRANCHES_AND_TAGS, cursor)
    ref = events[0].repository
    deleted = [e for e in events if e.deleted]
    assert deleted == [
        BranchData(repository=ref, name="feature", head_sha=c["c3"], deleted=True),
        BranchData(repository=ref, name="wip", head_sha=c["c3"], deleted=True),
        TagData(repository=ref, name="v1.1.0-rc1", sha=c["c5"], deleted=True),
    ]
    assert cursor is not None
    assert set(cursor["branches"]) == {"main"}
    assert "v1.1.0-rc1" not in cursor["tags"]
    again, _ = await collect(client, Resource.BRANCHES_AND_TAGS, cursor)
    assert not [e for e in again if e.deleted]  # reported once


async def test_contributors_of_the_default_branch(
    tmp_path: Path, history: tuple[Repo, dict[str, str]]
) -> None:
    source, _ = history
    client = LocalGitClient(make_integration(str(source.path)), None, clock=fixed_clock())
    events, cursor = await collect(client, Resource.CONTRIBUTORS)
    ref = RepositoryRef(provider="git", id=str(source.path), name="shop", default_branch="main")

    def contributor(who: tuple[str, str], commits: int) -> ContributorData:
        return ContributorData(
            repository=ref, person=PersonRef(name=who[0], email=who[1]), contributions=commits
        )

    # main includes the merged feature branch: Alice c1, c4 and the merge; Bob c2 and the revert.
    assert events == [contributor(ALICE, 3), contributor(BOB, 2), contributor(CAROL, 2)]
    assert cursor is None

    # Another name on the same email (in any case) is the same contributor; .mailmap applies.
    repo = Repo(tmp_path / "shop", init=False)
    repo.git("clone", "--quiet", str(source.path), ".")
    repo.git("remote", "remove", "origin")  # no remote: the checked-out branch is the default
    repo.write("x.txt", "x\n")
    repo.commit("Another", ("A. Example", "ALICE@example.com"), "2024-01-20T10:00:00+00:00")
    repo.write("y.txt", "y\n")
    repo.commit("Yet another", ("Bobby", "bobby@home.example"), "2024-01-20T11:00:00+00:00")
    repo.write(".mailmap", "Bob Example <bob@example.com> Bobby <bobby@home.example>\n")
    repo.commit("Mailmap", CAROL, "2024-01-20T12:00:00+00:00")
    clone = LocalGitClient(make_integration(str(repo.path)), None, clock=fixed_clock())
    events, _ = await collect(clone, Resource.CONTRIBUTORS)
    assert [(e.person.name, e.person.email, e.contributions) for e in events] == [
        ("Alice Example", "alice@example.com", 4),
        ("Bob Example", "bob@example.com", 3),
        ("Carol Example", "carol@example.com", 3),
    ]
    assert events[0].repository.default_branch == "main"


async def test_an_empty_repository_has_no_refs_nor_contributors(tmp_path: Path) -> None:
    empty = Repo(tmp_path / "empty")
    client = LocalGitClient(make_integration(str(empty.path)), None, clock=fixed_clock())
    assert await collect(client, Resource.CONTRIBUTORS) == ([], None)
    assert await collect(client, Resource.BRANCHES_AND_TAGS) == ([], {"branches": {}, "tags": {}})


async def test_problems_are_collector_errors_with_hints(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    plain = tmp_path / "plain"
    plain.mkdir()
    for path, text in ((missing, "does not exist"), (plain, "is not a git repository")):
        client = LocalGitClient(make_integration(str(path)), None, clock=fixed_clock())
        with pytest.raises(CollectorError, match=text) as raised:
            await collect(client, Resource.COMMITS)
        assert "spec.scope.repositories" in raised.value.hint
    client = LocalGitClient(make_integration(), None)
    with pytest.raises(CollectorError, match="no repositories"):
        await client.list_scopes()
    bad_url = LocalGitClient(make_integration(f"file://{tmp_path}/nope.git"), None, cache_dir=tmp_path / "c")
    with pytest.raises(CollectorError):
        await collect(bad_url, Resource.COMMITS)


async def test_globs_and_excludes(tmp_path: Path, history: tuple[Repo, dict[str, str]]) -> None:
    source, _ = history
    for name in ("api", "web", "legacy"):
        Repo(tmp_path / name).git("commit", "--quiet", "--allow-empty", "-m", "x")
    (tmp_path / "not-a-repo").mkdir()
    client = LocalGitClient(make_integration(f"{tmp_path}/*", str(source.path), exclude=["legacy"]), None)
    assert [s.name for s in await client.list_scopes()] == ["api", "web", "shop"]


async def test_this_projects_own_clone() -> None:
    """Sane things only: this repository changes while the suite runs."""
    integration = make_integration(str(PROJECT), backfillDays=3650)
    bus = MemoryBus()
    await bus.start()
    client = LocalGitClient(integration, None)
    cursors = MemoryCursorStore()
    runtime = CollectorRuntime(
        integration, client, bus, cursors, organization="acme", topic_prefix="doraflow"
    )
    # Every resource is scheduled from the Integration's schedules (the seed's defaults here).
    assert runtime.scheduler.interval(Resource.BRANCHES_AND_TAGS) == 4 * 3600
    assert runtime.scheduler.interval(Resource.CONTRIBUTORS) == 24 * 3600
    rounds = {result.resource: result for result in await runtime.sync_once()}
    assert set(rounds) == set(LocalGitClient.resources)
    assert all(result.failed == 0 for result in rounds.values())
    commits_round = rounds[Resource.COMMITS]
    assert rounds[Resource.BRANCHES_AND_TAGS].events > 0
    assert rounds[Resource.CONTRIBUTORS].events > 0
    consumer = bus.consumer("t", topics=["doraflow.acme.git.commits"])
    await consumer.start()
    messages = await consumer.getmany(max_records=100_000, timeout_ms=0)
    parsed = [parse_event(m.value) for m in messages]
    shas = [p.data.sha for p in parsed if isinstance(p.data, CommitData)]
    assert len(shas) == commits_round.events > 0
    assert len(set(shas)) == len(shas)
    roots = await asyncio.to_thread(
        subprocess.run,
        ["git", "rev-list", "--max-parents=0", "HEAD"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    )
    first = roots.stdout.split()
    assert set(first) <= set(shas)  # history reaches the root commit
    assert {m.key for m in messages} == {f"acme/{PROJECT.name}"}
    assert all(p.envelope.source == "git" and p.envelope.integration == "team/shop" for p in parsed)
    data = [p.data for p in parsed if isinstance(p.data, CommitData)]
    assert all(d.additions is not None and d.files_changed is not None for d in data)
    assert sum(d.additions or 0 for d in data) > 1000
    # A second round publishes only what was committed in between (colleagues commit concurrently).
    (again,) = await runtime.sync_once(Resource.COMMITS)
    later = await consumer.getmany(max_records=100_000, timeout_ms=0)
    assert not {parse_event(m.value).data.natural_key() for m in later} & {d.natural_key() for d in data}
    assert again.events == len(later)
    await consumer.stop()


def test_the_scope_ref_is_hashable_for_the_runtime() -> None:
    assert ScopeRef(name="a", id="b") == ScopeRef(name="a", id="b")
