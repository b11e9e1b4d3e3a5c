"""The GitHub client against the fake GitHub over real HTTP (loopback), Enterprise-style URLs.

A small hand-made organization pins the exact events (squash merge, reviews by the author and
others, deployments with statuses and compare, a failed deployment, the Actions-run and tag
fallbacks); generated repositories exercise paging; injected failures exercise rate limits,
secondary limits, 5xx bursts and bad credentials.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef
from doraflow.collectors.git.github import GitHubClient
from doraflow.core.events import (
    BranchData,
    CodeReviewData,
    CommitData,
    ContributorData,
    DeploymentData,
    EventData,
    PersonRef,
    PullRequestData,
    ReleaseData,
    RepositoryRef,
    TagData,
)
from doraflow.core.resources import Integration
from tests.fakes.github import (
    Commit,
    Deployment,
    DeploymentStatus,
    FakeGitHub,
    Person,
    PullRequest,
    Release,
    Repo,
    Review,
    Tag,
    WorkflowRun,
    create_app,
    fake_sha,
    generate,
)
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.integration

TOKEN = "ghp_fake"
NOW = datetime.now(UTC).replace(microsecond=0)
FAST = {"backoff_base": 0.01}


def ago(days: float, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


# -- the hand-made organization ----------------------------------------------------------------


@dataclass
class Acme:
    fake: FakeGitHub
    api: Repo
    web: Repo
    lib: Repo
    people: dict[str, Person]


def commit(repo: Repo, key: str, message: str, author: Person, when: datetime, *, main: bool = True) -> str:
    sha = fake_sha(repo.name, key)
    repo.add_commit(
        Commit(
            sha, message, author, authored_at=when - timedelta(minutes=30), committed_at=when, additions=3
        ),
        on_default_branch=main,
    )
    return sha


def build_acme() -> Acme:
    fake = FakeGitHub(token=TOKEN)
    alice = fake.person("alice", "Alice Doe", "alice@acme.test")
    bob = fake.person("bob", "Bob Roe", "bob@acme.test")
    carol = fake.person("carol", "Carol Poe", "carol@acme.test")
    fake.org("acme")

    api = fake.repo("acme", "api")
    commit(api, "c1", "Initial commit", alice, ago(30))
    c2 = commit(api, "c2", "Add endpoint", alice, ago(20))
    p1a = commit(api, "p1a", "WIP feature A", alice, ago(12), main=False)
    p1b = commit(api, "p1b", "Finish feature A", alice, ago(11), main=False)
    c3 = commit(api, "c3", "Feature A (#1)", alice, ago(10))  # the squash commit of #1
    c4 = commit(api, "c4", "Fix typo", bob, ago(8))
    p2a = commit(api, "p2a", "Feature B", bob, ago(7), main=False)
    c5 = commit(api, "c5", "Feature B (#2)", bob, ago(5))
    c6 = commit(api, "c6", "hotfix: null check in handler", bob, ago(3))
    p3a = commit(api, "p3a", "Feature C", bob, ago(2), main=False)
    p4a = commit(api, "p4a", "Abandoned idea", carol, ago(15), main=False)
    api.commits[p1a].parents = [c2]  # the feature branch starts at c2
    api.commits[p1b].parents = [p1a]
    api.add_pull(
        PullRequest(1, "Feature A", alice, ago(12), ago(10), "MERGED", ago(10), ago(10), c3, "feature-a",
                    commits=[p1a, p1b], reviews=[Review(11, bob, "APPROVED", ago(10, 2), 0)])
    )  # fmt: skip
    api.add_pull(
        PullRequest(2, "Feature B", bob, ago(7), ago(5), "MERGED", ago(5), ago(5), c5, "feature-b",
                    commits=[p2a],
                    reviews=[
                        Review(21, alice, "CHANGES_REQUESTED", ago(6), 2),
                        Review(22, bob, "COMMENTED", ago(5, 23), 1),  # the author answering: not a review
                        Review(23, carol, "APPROVED", ago(5, 12), 0),
                        Review(24, carol, "PENDING", None, 0),  # a draft: not submitted
                    ])
    )  # fmt: skip
    api.add_pull(PullRequest(3, "Feature C", bob, ago(2), ago(1), head_ref="feature-c", commits=[p3a]))
    api.add_pull(PullRequest(4, "Abandoned", None, ago(16), ago(14), "CLOSED", None, ago(14), commits=[p4a]))
    api.deployments += [
        Deployment(101, c2, "production", ago(19), alice, statuses=[
            DeploymentStatus(1, "in_progress", ago(19)),
            DeploymentStatus(2, "success", ago(19) + timedelta(minutes=10), environment_url="https://api.acme.test"),
            DeploymentStatus(3, "inactive", ago(5)),
        ]),
        Deployment(102, c4, "production", ago(8), bob, statuses=[DeploymentStatus(4, "failure", ago(8, -1))]),
        Deployment(103, c5, "production", ago(5), bob, statuses=[DeploymentStatus(5, "success", ago(5, -1))]),
        Deployment(104, c6, "production", ago(3), bob, statuses=[DeploymentStatus(6, "success", ago(3, -1))]),
        Deployment(105, c6, "staging", ago(3, 1), bob, statuses=[DeploymentStatus(7, "success", ago(3))]),
    ]  # fmt: skip

    web = fake.repo("acme", "web")
    w1 = commit(web, "w1", "Scaffold", carol, ago(9))
    w2 = commit(web, "w2", "Landing page", carol, ago(7))
    w3 = commit(web, "w3", "Revert landing tweak", carol, ago(4))
    w4 = commit(web, "w4", "Pricing page", carol, ago(2, 1))
    web.runs += [
        WorkflowRun(201, "Deploy to production", w2, ago(6), ago(6, -0.2), carol),
        WorkflowRun(202, "CI", w3, ago(4), ago(4, -0.1), carol),
        WorkflowRun(203, "Deploy to production", w3, ago(3.9), ago(3.8), carol, conclusion="failure"),
        WorkflowRun(204, "Deploy to production", w4, ago(2.1), ago(2), carol, head_branch="feature"),
        WorkflowRun(205, "Deploy to production", w4, ago(2), ago(2, -0.2), carol),
    ]
    del w1

    lib = fake.repo("acme", "lib")
    l1 = commit(lib, "l1", "Start", alice, ago(25))
    l2 = commit(lib, "l2", "Parser", alice, ago(20))
    l3 = commit(lib, "l3", "Lexer", bob, ago(10))
    l4 = commit(lib, "l4", "Faster lexer", bob, ago(4))
    lib.tags += [
        Tag("v1.0.0", l2, alice, ago(15), "Release 1.0"),
        Tag("v1.1.0", l4),  # lightweight: deployed at the commit's date
        Tag("v1.2.0-rc1", l4, alice, ago(3), "Release candidate"),
        Tag("nightly", l3),
    ]
    del l1
    fake.repo("acme", "archive-2019", archived=True)
    fake.repo("octocat", "dotfiles")  # the viewer's own repository: outside the acme/* scope
    return Acme(fake, api, web, lib, {"alice": alice, "bob": bob, "carol": carol})


# -- harness -----------------------------------------------------------------------------------


@pytest.fixture
def acme() -> Acme:
    return build_acme()


@pytest.fixture
def url(acme: Acme) -> Iterator[str]:
    with serve_in_thread(create_app(acme.fake)) as base:
        yield base


def integration(
    url: str, repositories: Sequence[str], *, exclude: Sequence[str] = (), days: int = 365
) -> Integration:
    return Integration.model_validate(
        {
            "apiVersion": "doraflow.dev/v1alpha1",
            "kind": "Integration",
            "metadata": {"name": "github", "namespace": "team-a"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "github",
                "baseUrl": f"{url}/api/v3",  # Enterprise Server layout: GraphQL at /api/graphql
                "credentialsSecretRef": {"name": "github-token", "key": "token"},
                "scope": {"repositories": list(repositories), "exclude": list(exclude)},
                "backfillDays": days,
            },
        }
    )


def client(
    url: str, repositories: Sequence[str] = ("acme/*",), token: str = TOKEN, **options: Any
) -> GitHubClient:
    return GitHubClient(integration(url, repositories, **options), token, http_options=FAST)


async def drain(
    github: GitHubClient, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None = None
) -> tuple[list[EventData], dict[str, Any] | None, list[Batch]]:
    batches = [batch async for batch in github.collect(scope, resource, cursor)]
    for batch in batches:
        if batch.cursor is not None:
            cursor = batch.cursor
    return [event for batch in batches for event in batch.events], cursor, batches


async def scope_of(github: GitHubClient, name: str) -> ScopeRef:
    return next(s for s in await github.list_scopes() if s.name == name)


def ref(repo: Repo) -> RepositoryRef:
    return RepositoryRef(
        provider="github", id=str(repo.id), name=repo.full_name, url=f"https://github.com/{repo.full_name}",
        default_branch="main",
    )  # fmt: skip


def sha(repo: Repo, key: str) -> str:
    return fake_sha(repo.name, key)


def person(p: Person) -> PersonRef:
    return PersonRef(username=p.login, name=p.name)


# -- scopes and exact events -------------------------------------------------------------------


async def test_scope_globs_excludes_and_unknown_repository(acme: Acme, url: str) -> None:
    github = client(url, ["acme/*", "acme/missing"], exclude=["acme/archive-*"])
    try:
        scopes = await github.list_scopes()
        assert [s.name for s in scopes] == ["acme/api", "acme/lib", "acme/missing", "acme/web"]
        api = scopes[0]
        assert api.id == str(acme.api.id)
        assert api.attributes["default_branch"] == "main"
        missing = scopes[2]
        with pytest.raises(CollectorError) as error:
            await drain(github, missing, Resource.COMMITS)
        assert error.value.scope == "acme/missing"
        assert "spec.scope.repositories" in error.value.hint
        # The unknown repository does not stop the others.
        events, _, _ = await drain(github, api, Resource.COMMITS)
        assert len(events) == 6
    finally:
        await github.aclose()


async def test_commits_of_the_default_branch_newest_first(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        events, cursor, _ = await drain(github, await scope_of(github, "acme/api"), Resource.COMMITS)
    finally:
        await github.aclose()
    repo, alice, bob = acme.api, acme.people["alice"], acme.people["bob"]

    def expected(key: str, message: str, who: Person, days: float, parent: str | None) -> CommitData:
        return CommitData(
            repository=ref(repo), sha=sha(repo, key),
            author=PersonRef(email=who.email, name=who.name, username=who.login),
            authored_at=ago(days) - timedelta(minutes=30), committed_at=ago(days), message=message,
            additions=3, deletions=0, files_changed=1, parents=[sha(repo, parent)] if parent else [],
        )  # fmt: skip

    assert events == [
        expected("c6", "hotfix: null check in handler", bob, 3, "c5"),
        expected("c5", "Feature B (#2)", bob, 5, "c4"),
        expected("c4", "Fix typo", bob, 8, "c3"),
        expected("c3", "Feature A (#1)", alice, 10, "c2"),
        expected("c2", "Add endpoint", alice, 20, "c1"),
        expected("c1", "Initial commit", alice, 30, None),
    ]
    assert cursor == {"since": ago(3).strftime("%Y-%m-%dT%H:%M:%SZ"), "boundary": [sha(repo, "c6")]}


async def test_pull_requests_with_reviews_squash_merge_and_review_comments(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        events, _, _ = await drain(github, await scope_of(github, "acme/api"), Resource.PULL_REQUESTS)
        assert github.graphql.requests_made == 1  # pull requests, reviews and commits in one query
    finally:
        await github.aclose()
    repo, alice, bob, carol = acme.api, acme.people["alice"], acme.people["bob"], acme.people["carol"]
    web = "https://github.com/acme/api/pull"

    def branch_commit(
        key: str, message: str, who: Person, days: float, number: int, parent: str
    ) -> CommitData:
        """A merged pull request's own commit: off the default branch after a squash merge."""
        return CommitData(
            repository=ref(repo), sha=sha(repo, key),
            author=PersonRef(email=who.email, name=who.name, username=who.login),
            authored_at=ago(days) - timedelta(minutes=30), committed_at=ago(days), message=message,
            additions=3, deletions=0, files_changed=1, parents=[sha(repo, parent)] if parent else [],
            pull_request_number=number,
        )  # fmt: skip

    assert events == [
        PullRequestData(
            repository=ref(repo), number=3, title="Feature C", author=person(bob), state="open",
            created_at=ago(2), updated_at=ago(1), first_commit_at=ago(2) - timedelta(minutes=30),
            commit_shas=[sha(repo, "p3a")], head_branch="feature-c", base_branch="main",
            additions=10, deletions=2, changed_files=1, review_comments=0, url=f"{web}/3",
        ),
        PullRequestData(
            repository=ref(repo), number=2, title="Feature B", author=person(bob), state="merged",
            created_at=ago(7), updated_at=ago(5), merged_at=ago(5), closed_at=ago(5),
            first_commit_at=ago(7) - timedelta(minutes=30), merge_commit_sha=sha(repo, "c5"),
            commit_shas=[sha(repo, "p2a")], head_branch="feature-b", base_branch="main",
            additions=10, deletions=2, changed_files=1, review_comments=2, url=f"{web}/2",
        ),
        CodeReviewData(
            repository=ref(repo), pull_request_number=2, review_id="21", reviewer=person(alice),
            state="changes_requested", submitted_at=ago(6), comments_count=2,
        ),
        CodeReviewData(
            repository=ref(repo), pull_request_number=2, review_id="23", reviewer=person(carol),
            state="approved", submitted_at=ago(5, 12), comments_count=0,
        ),
        branch_commit("p2a", "Feature B", bob, 7, 2, ""),
        PullRequestData(
            repository=ref(repo), number=1, title="Feature A", author=person(alice), state="merged",
            created_at=ago(12), updated_at=ago(10), merged_at=ago(10), closed_at=ago(10),
            first_commit_at=ago(12) - timedelta(minutes=30), merge_commit_sha=sha(repo, "c3"),
            commit_shas=[sha(repo, "p1a"), sha(repo, "p1b")], head_branch="feature-a", base_branch="main",
            additions=10, deletions=2, changed_files=1, review_comments=0, url=f"{web}/1",
        ),
        CodeReviewData(
            repository=ref(repo), pull_request_number=1, review_id="11", reviewer=person(bob),
            state="approved", submitted_at=ago(10, 2), comments_count=0,
        ),
        # The squash-merged #1's two branch commits, with their authored times: lead time starts there.
        branch_commit("p1a", "WIP feature A", alice, 12, 1, "c2"),
        branch_commit("p1b", "Finish feature A", alice, 11, 1, "p1a"),
        # Closed without merging: its commit shipped nothing, so it is not published (nor #3's, open).
        PullRequestData(
            repository=ref(repo), number=4, title="Abandoned", author=PersonRef(username="ghost"),
            state="closed", created_at=ago(16), updated_at=ago(14), closed_at=ago(14),
            first_commit_at=ago(15) - timedelta(minutes=30), commit_shas=[sha(repo, "p4a")],
            head_branch="feature", base_branch="main",
            additions=10, deletions=2, changed_files=1, review_comments=0, url=f"{web}/4",
        ),
    ]  # fmt: skip


def deployment(
    repo: Repo, deployment_id: str, revision: str, shipped: list[str], **fields: Any
) -> DeploymentData:
    return DeploymentData(
        repository=ref(repo),
        deployment_id=deployment_id,
        environment="production",
        revision=sha(repo, revision),
        commit_shas=[sha(repo, key) for key in shipped],
        **fields,
    )


async def test_deployments_with_statuses_and_shipped_commits(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        events, cursor, _ = await drain(github, await scope_of(github, "acme/api"), Resource.DEPLOYMENTS)
    finally:
        await github.aclose()
    repo, alice, bob = acme.api, acme.people["alice"], acme.people["bob"]
    assert events == [
        deployment(repo, "github:deployment:101", "c2", ["c2"], status="success", started_at=ago(19),
                   finished_at=ago(19) + timedelta(minutes=10), deployed_by=PersonRef(username=alice.login),
                   url="https://api.acme.test"),
        deployment(repo, "github:deployment:102", "c4", [], status="failed", started_at=ago(8),
                   finished_at=ago(8, -1), deployed_by=PersonRef(username=bob.login)),
        deployment(repo, "github:deployment:103", "c5", ["c3", "c4", "c5"], status="success",
                   started_at=ago(5), finished_at=ago(5, -1), deployed_by=PersonRef(username=bob.login)),
        deployment(repo, "github:deployment:104", "c6", ["c6"], status="success", started_at=ago(3),
                   finished_at=ago(3, -1), deployed_by=PersonRef(username=bob.login), is_hotfix=True),
    ]  # fmt: skip
    assert cursor is not None
    assert cursor["source"] == "deployments"
    assert acme.fake.calls["GET /repos/{o}/{r}/compare/{basehead}"] == 2


async def test_actions_runs_are_the_fallback_without_deployments(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        events, cursor, _ = await drain(github, await scope_of(github, "acme/web"), Resource.DEPLOYMENTS)
    finally:
        await github.aclose()
    repo, carol = acme.web, PersonRef(username="carol")
    run_url = "https://github.com/acme/web/actions/runs"
    assert events == [
        deployment(repo, "github:run:201", "w2", ["w2"], status="success", started_at=ago(6),
                   finished_at=ago(6, -0.2), deployed_by=carol, url=f"{run_url}/201"),
        deployment(repo, "github:run:205", "w4", ["w3", "w4"], status="success", started_at=ago(2),
                   finished_at=ago(2, -0.2), deployed_by=carol, url=f"{run_url}/205",
                   is_hotfix=True),  # ships "Revert landing tweak"
    ]  # fmt: skip
    assert cursor is not None
    assert cursor["source"] == "actions"


async def test_release_tags_are_the_last_fallback(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        events, cursor, _ = await drain(github, await scope_of(github, "acme/lib"), Resource.DEPLOYMENTS)
    finally:
        await github.aclose()
    repo, alice = acme.lib, acme.people["alice"]
    assert events == [
        deployment(repo, f"github:tag:{repo.id}:v1.0.0", "l2", ["l2"], status="success", started_at=ago(15),
                   finished_at=ago(15), deployed_by=PersonRef(name=alice.name, email=alice.email)),
        deployment(repo, f"github:tag:{repo.id}:v1.1.0", "l4", ["l3", "l4"], status="success",
                   started_at=ago(4), finished_at=ago(4)),
    ]  # fmt: skip
    assert cursor is not None
    assert cursor["source"] == "tags"


async def test_branches_tags_and_releases(acme: Acme, url: str) -> None:
    repo, alice, bob = acme.lib, acme.people["alice"], acme.people["bob"]
    repo.branches["feature/lexer"] = sha(repo, "l3")
    repo.releases += [
        Release(501, "v1.0.0", alice, ago(15), ago(15), "One point oh"),
        Release(502, "v1.2.0-rc1", bob, ago(3), ago(2), "Candidate", prerelease=True),
        Release(503, "v2.0.0", bob, ago(1)),  # a draft: not published
    ]
    github = client(url)
    try:
        scope = await scope_of(github, "acme/lib")
        events, cursor, batches = await drain(github, scope, Resource.BRANCHES_AND_TAGS)
    finally:
        await github.aclose()
    lib = ref(repo)
    tagger = PersonRef(name=alice.name, email=alice.email)

    def tag(name: str, key: str, when: datetime, message: str | None = None) -> TagData:
        return TagData(
            repository=lib,
            name=name,
            sha=sha(repo, key),
            annotated=message is not None,
            tagged_at=when,
            tagger=tagger if message is not None else None,
            message=message,
        )

    def release(
        number: int, tag_name: str, name: str | None, by: Any, created: datetime, **kw: Any
    ) -> ReleaseData:
        return ReleaseData(
            repository=lib,
            release_id=str(number),
            tag_name=tag_name,
            name=name,
            created_at=created,
            author=PersonRef(name=by.name, username=by.login),
            url=f"https://github.com/acme/lib/releases/tag/{tag_name}",
            **kw,
        )

    assert events == [
        BranchData(repository=lib, name="feature/lexer", head_sha=sha(repo, "l3"), updated_at=ago(10)),
        BranchData(repository=lib, name="main", head_sha=sha(repo, "l4"), is_default=True, updated_at=ago(4)),
        # Tags as GitHub orders them (by the tagged commit's date); annotated ones peeled to their
        # commit and dated by the tagger, lightweight ones dated by the commit.
        tag("v1.2.0-rc1", "l4", ago(3), "Release candidate"),
        tag("v1.1.0", "l4", ago(4)),
        tag("nightly", "l3", ago(10)),
        tag("v1.0.0", "l2", ago(15), "Release 1.0"),
        release(503, "v2.0.0", None, bob, ago(1), draft=True),
        release(502, "v1.2.0-rc1", "Candidate", bob, ago(3), published_at=ago(2), prerelease=True),
        release(501, "v1.0.0", "One point oh", alice, ago(15), published_at=ago(15)),
    ]
    # Only the last batch carries the cursor: the snapshot of a complete listing.
    assert [batch.cursor is not None for batch in batches] == [False, False, False, True]
    assert cursor == {
        "branches": {"feature/lexer": sha(repo, "l3"), "main": sha(repo, "l4")},
        "tags": {name: sha(repo, key) for name, key in
                 (("v1.2.0-rc1", "l4"), ("v1.1.0", "l4"), ("nightly", "l3"), ("v1.0.0", "l2"))},
    }  # fmt: skip

    # The branch is merged and deleted, the nightly tag removed: published once as deleted.
    del repo.branches["feature/lexer"]
    repo.tags = [t for t in repo.tags if t.name != "nightly"]
    github = client(url)
    try:
        events, cursor, _ = await drain(github, scope, Resource.BRANCHES_AND_TAGS, cursor)
        again, _, _ = await drain(github, scope, Resource.BRANCHES_AND_TAGS, cursor)
    finally:
        await github.aclose()
    assert [e for e in events if getattr(e, "deleted", False)] == [
        BranchData(repository=lib, name="feature/lexer", head_sha=sha(repo, "l3"), deleted=True),
        TagData(repository=lib, name="nightly", sha=sha(repo, "l3"), deleted=True),
    ]
    assert not [e for e in again if getattr(e, "deleted", False)]


async def test_refs_are_paged_and_an_empty_repository_has_none(acme: Acme, url: str) -> None:
    repo = acme.web
    for n in range(25):
        repo.branches[f"topic-{n:02d}"] = sha(repo, "w2")
    empty = acme.fake.repo("acme", "empty")
    github = GitHubClient(integration(url, ["acme/*"]), TOKEN, page_size=10, http_options=FAST)
    try:
        events, cursor, _ = await drain(
            github, await scope_of(github, "acme/web"), Resource.BRANCHES_AND_TAGS
        )
        assert len([e for e in events if isinstance(e, BranchData)]) == 26
        assert cursor is not None
        assert len(cursor["branches"]) == 26
        assert acme.fake.calls["graphql Branches"] == 3  # 26 branches, 10 a page
        scope = await scope_of(github, empty.full_name)
        assert await drain(github, scope, Resource.BRANCHES_AND_TAGS) == (
            [],
            {"branches": {}, "tags": {}},
            [Batch([]), Batch([]), Batch([]), Batch([], {"branches": {}, "tags": {}})],
        )
        assert (await drain(github, scope, Resource.CONTRIBUTORS))[0] == []  # GitHub answers 204
    finally:
        await github.aclose()


async def test_contributors_are_accounts_with_their_commit_counts(acme: Acme, url: str) -> None:
    repo = acme.api
    ghost = acme.fake.person("ghost-writer", "Ghost Writer", "ghost@elsewhere.test")
    ghost.account = False  # an email GitHub maps to no account: listed only as anonymous
    commit(repo, "c7", "Docs", ghost, ago(1))
    github = client(url)
    try:
        events, cursor, _ = await drain(github, await scope_of(github, "acme/api"), Resource.CONTRIBUTORS)
    finally:
        await github.aclose()
    api = ref(repo)
    assert events == [
        ContributorData(repository=api, person=PersonRef(username="alice"), contributions=3),
        ContributorData(repository=api, person=PersonRef(username="bob"), contributions=3),
    ]
    assert cursor is None  # a full listing every time
    assert acme.fake.calls["GET /repos/{o}/{r}/contributors"] == 1


async def test_a_repository_created_later_is_collected_without_a_restart(acme: Acme, url: str) -> None:
    github = client(url, ["acme/api", "acme/new"])
    try:
        scopes = await github.list_scopes()
        new = next(s for s in scopes if s.name == "acme/new")
        assert new.attributes.get("unresolved")
        with pytest.raises(CollectorError) as error:
            await drain(github, new, Resource.COMMITS)
        assert error.value.scope == "acme/new"

        # Created (or shared with the token) later: the same scope now resolves and is collected.
        repo = acme.fake.repo("acme", "new")
        commit(repo, "n1", "Hello", acme.people["carol"], ago(1))
        events, _, _ = await drain(github, new, Resource.COMMITS)
        assert [(e.repository.id, e.repository.name) for e in events] == [  # type: ignore[attr-defined]
            (str(repo.id), "acme/new")
        ]
        assert (await drain(github, new, Resource.CONTRIBUTORS))[0] == [
            ContributorData(repository=ref(repo), person=PersonRef(username="carol"), contributions=1)
        ]
    finally:
        await github.aclose()


# -- paging and incremental runs ---------------------------------------------------------------


async def test_paging_across_pages_and_overflowing_nested_connections(url: str, acme: Acme) -> None:
    (repo,) = generate(acme.fake, org="gen", repos=1, pulls=1000, commits=2500, now=NOW, days=200)
    github = client(url, ["gen/*"])
    try:
        scope = await scope_of(github, repo.full_name)
        commits, _, commit_batches = await drain(github, scope, Resource.COMMITS)
        assert len(commits) == 2500
        assert len({c.natural_key() for c in commits}) == 2500
        assert len(commit_batches) == 25
        before = github.graphql.requests_made
        events, _, batches = await drain(github, scope, Resource.PULL_REQUESTS)
        pr_calls = github.graphql.requests_made - before
    finally:
        await github.aclose()
    pulls = [e for e in events if isinstance(e, PullRequestData)]
    reviews = [e for e in events if isinstance(e, CodeReviewData)]
    assert [p.number for p in pulls] == [p.number for p in repo.pulls_by_update()]
    big = next(p for p in pulls if p.number == 400)
    assert len(big.commit_shas) == 150  # 100 with the page + one PullRequestCommits page
    assert sum(1 for r in reviews if r.pull_request_number == 500) == sum(
        1 for r in repo.pulls[500].reviews if r.author != repo.pulls[500].author
    )  # 50 with the page + one PullRequestReviews page, the author's own left out
    assert len(batches) == 10
    # A merged pull request's own commits come with its page (and overflow pages): no extra calls.
    commits_of_pulls = [e for e in events if isinstance(e, CommitData)]
    merged = {p.number: p for p in repo.pulls.values() if p.state == "MERGED"}
    assert 0 < len(merged) < len(repo.pulls)
    assert sorted((c.pull_request_number, c.sha) for c in commits_of_pulls) == sorted(
        {(number, s) for number, p in merged.items() for s in p.commits}
    )
    assert pr_calls == 10 + 2 + 2  # 10 pages; #400 and #800 overflow commits, #500 and #1000 reviews
    assert acme.fake.calls["graphql PullRequestCommits"] == 2
    assert acme.fake.calls["graphql PullRequestReviews"] == 2


async def test_second_run_with_the_cursor_yields_only_changes(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        scope = await scope_of(github, "acme/api")
        _, commit_cursor, _ = await drain(github, scope, Resource.COMMITS)
        _, pr_cursor, _ = await drain(github, scope, Resource.PULL_REQUESTS)
        _, deploy_cursor, _ = await drain(github, scope, Resource.DEPLOYMENTS)

        # Nothing changed: nothing is emitted, and the REST listings are revalidated with 304s.
        not_modified = acme.fake.not_modified
        assert (await drain(github, scope, Resource.COMMITS, commit_cursor))[0] == []
        assert (await drain(github, scope, Resource.PULL_REQUESTS, pr_cursor))[0] == []
        assert (await drain(github, scope, Resource.DEPLOYMENTS, deploy_cursor))[0] == []
        assert acme.fake.not_modified > not_modified

        # One new commit, one pull request gets a review, one new deployment (still running).
        repo, carol = acme.api, acme.people["carol"]
        c7 = commit(repo, "c7", "Feature C (#3)", carol, ago(0, 1))
        repo.pulls[3].reviews.append(Review(31, carol, "APPROVED", ago(0, 2), 1))
        repo.touch_pull(3, ago(0, 2))
        repo.deployments.append(
            Deployment(
                106,
                c7,
                "production",
                ago(0, 0.5),
                carol,
                statuses=[DeploymentStatus(8, "in_progress", ago(0, 0.5))],
            )
        )
        commits, commit_cursor, _ = await drain(github, scope, Resource.COMMITS, commit_cursor)
        assert [c.sha for c in commits] == [c7]  # type: ignore[attr-defined]
        prs, pr_cursor, _ = await drain(github, scope, Resource.PULL_REQUESTS, pr_cursor)
        assert [(type(e).__name__, getattr(e, "number", None)) for e in prs] == [
            ("PullRequestData", 3),
            ("CodeReviewData", None),
        ]
        deployments, deploy_cursor, _ = await drain(github, scope, Resource.DEPLOYMENTS, deploy_cursor)
        assert [(d.deployment_id, d.status, d.commit_shas) for d in deployments] == [  # type: ignore[attr-defined]
            ("github:deployment:106", "in_progress", [])
        ]

        # The running deployment finishes: emitted again, now with what it shipped.
        repo.deployments[-1].statuses.append(DeploymentStatus(9, "success", ago(0, 0.25)))
        deployments, deploy_cursor, _ = await drain(github, scope, Resource.DEPLOYMENTS, deploy_cursor)
        assert [(d.deployment_id, d.status, d.commit_shas) for d in deployments] == [  # type: ignore[attr-defined]
            ("github:deployment:106", "success", [c7])
        ]
        assert (await drain(github, scope, Resource.DEPLOYMENTS, deploy_cursor))[0] == []
        assert (await drain(github, scope, Resource.COMMITS, commit_cursor))[0] == []
        assert (await drain(github, scope, Resource.PULL_REQUESTS, pr_cursor))[0] == []
    finally:
        await github.aclose()


async def test_a_restart_mid_walk_resumes_from_the_batch_cursor(acme: Acme, url: str) -> None:
    (repo,) = generate(acme.fake, org="gen", repos=1, pulls=10, commits=350, now=NOW, days=100)
    github = client(url, ["gen/*"])
    try:
        scope = await scope_of(github, repo.full_name)
        walk = github.collect(scope, Resource.COMMITS, None)
        first = await anext(walk)
        await walk.aclose()  # type: ignore[attr-defined]  # the collector dies after the first page
        assert first.cursor is not None
        assert "walk" in first.cursor
        rest, cursor, _ = await drain(github, scope, Resource.COMMITS, first.cursor)
    finally:
        await github.aclose()
    shas = [c.sha for c in first.events + rest]  # type: ignore[attr-defined]
    assert len(shas) == 350
    assert len(set(shas)) == 350
    assert cursor is not None
    assert "walk" not in cursor


# -- rate limits, retries and errors -----------------------------------------------------------


async def test_primary_rate_limit_waits_until_the_reset(acme: Acme, url: str) -> None:
    acme.fake.inject("primary", path="/deployments", seconds=1)
    github = client(url)
    try:
        scope = await scope_of(github, "acme/api")
        started = time.monotonic()
        events, _, _ = await drain(github, scope, Resource.DEPLOYMENTS)
        waited = time.monotonic() - started
    finally:
        await github.aclose()
    assert len(events) == 4
    assert waited >= 1.0
    assert acme.fake.calls["injected primary"] == 1
    assert acme.fake.violations == 0  # nothing was sent before the reset


async def test_graphql_rate_limit_in_a_200_is_waited_out(acme: Acme, url: str) -> None:
    acme.fake.inject("graphql_rate_limited", path="graphql", seconds=1)
    github = client(url)
    try:
        started = time.monotonic()
        events, _, _ = await drain(github, await scope_of(github, "acme/api"), Resource.PULL_REQUESTS)
        waited = time.monotonic() - started
    finally:
        await github.aclose()
    assert len(events) == 10  # 4 pull requests, 3 reviews, 3 commits of the merged ones
    assert waited >= 1.0
    assert acme.fake.violations == 0


async def test_secondary_rate_limit_honours_retry_after(acme: Acme, url: str) -> None:
    acme.fake.inject("secondary", path="/statuses", seconds=1)
    github = client(url)
    try:
        started = time.monotonic()
        events, _, _ = await drain(github, await scope_of(github, "acme/api"), Resource.DEPLOYMENTS)
        waited = time.monotonic() - started
    finally:
        await github.aclose()
    assert len(events) == 4
    assert waited >= 1.0
    assert acme.fake.calls["injected secondary"] == 1
    assert acme.fake.violations == 0


async def test_a_burst_of_5xx_is_retried(acme: Acme, url: str) -> None:
    acme.fake.inject("5xx", count=3, path="graphql", status=502)
    acme.fake.inject("5xx", count=2, path="/compare", status=503)
    github = client(url)
    try:
        scope = await scope_of(github, "acme/api")
        commits, _, _ = await drain(github, scope, Resource.COMMITS)
        deployments, _, _ = await drain(github, scope, Resource.DEPLOYMENTS)
    finally:
        await github.aclose()
    assert len(commits) == 6
    assert len(deployments) == 4
    assert acme.fake.calls["injected 5xx"] == 5


async def test_bad_token_is_a_collector_error_with_a_hint(acme: Acme, url: str) -> None:
    github = client(url, token="ghp_wrong")
    try:
        with pytest.raises(CollectorError) as error:
            await github.list_scopes()
    finally:
        await github.aclose()
    assert "401" in str(error.value)
    assert "Secret team-a/github-token" in error.value.hint
    assert "repo" in error.value.hint
    assert "ghp_wrong" not in str(error.value) + error.value.hint


async def test_revoked_token_during_collection(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        scope = await scope_of(github, "acme/api")
        acme.fake.revoke(TOKEN)
        for resource in (Resource.COMMITS, Resource.DEPLOYMENTS):
            with pytest.raises(CollectorError) as error:
                await drain(github, scope, resource)
            assert error.value.scope == "acme/api"
            assert "revoked" in str(error.value)
    finally:
        await github.aclose()


async def test_repository_deleted_after_listing(acme: Acme, url: str) -> None:
    github = client(url)
    try:
        scopes = await github.list_scopes()
        del acme.fake.repos["acme/lib"]
        by_name = {s.name: s for s in scopes}
        with pytest.raises(CollectorError) as error:
            await drain(github, by_name["acme/lib"], Resource.PULL_REQUESTS)  # GraphQL NOT_FOUND
        assert error.value.scope == "acme/lib"
        with pytest.raises(CollectorError):
            await drain(github, by_name["acme/lib"], Resource.DEPLOYMENTS)  # REST 404
        assert len((await drain(github, by_name["acme/web"], Resource.COMMITS))[0]) == 4
    finally:
        await github.aclose()


async def test_old_enterprise_schema_without_changed_files_if_available(acme: Acme, url: str) -> None:
    acme.fake.legacy_schema = True
    github = client(url)
    try:
        events, _, _ = await drain(github, await scope_of(github, "acme/api"), Resource.COMMITS)
    finally:
        await github.aclose()
    assert len(events) == 6
    assert all(isinstance(e, CommitData) and e.files_changed == 1 for e in events)
    github = client(url)  # a pull request's commits select the same fields: the legacy variant too
    try:
        events, _, _ = await drain(github, await scope_of(github, "acme/api"), Resource.PULL_REQUESTS)
    finally:
        await github.aclose()
    commits = [e for e in events if isinstance(e, CommitData)]
    assert [(c.sha, c.pull_request_number, c.files_changed) for c in commits] == [
        (sha(acme.api, "p2a"), 2, 1),
        (sha(acme.api, "p1a"), 1, 1),
        (sha(acme.api, "p1b"), 1, 1),
    ]


async def test_expired_statuses_fall_back_to_the_deployment_state(acme: Acme, url: str) -> None:
    """GitHub deletes deployment statuses after 90 days; the deployment's state survives."""
    for item in acme.api.deployments:
        item.statuses.clear()
        item.state = "FAILURE" if item.id == 102 else "INACTIVE"
    github = client(url)
    try:
        events, _, _ = await drain(github, await scope_of(github, "acme/api"), Resource.DEPLOYMENTS)
    finally:
        await github.aclose()
    assert [(e.deployment_id, e.status) for e in events] == [  # type: ignore[attr-defined]
        ("github:deployment:101", "success"),
        ("github:deployment:102", "failed"),
        ("github:deployment:103", "success"),
        ("github:deployment:104", "success"),
    ]
    assert acme.fake.calls["graphql DeploymentStates"] == 1
