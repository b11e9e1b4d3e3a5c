"""The GitLab client against the fake GitLab API over loopback: exact events for a small hand-made
project, deployments from environments, pipelines and tags, pagination, incremental runs, rate limits,
retries and the errors a user has to fix."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from doraflow.collectors.base import CollectorError, Resource, ScopeRef
from doraflow.collectors.git import common as git_common
from doraflow.collectors.git.gitlab import GitLabClient
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
from tests.fakes.gitlab import (
    FakeGitLab,
    branch_payload,
    commit_payload,
    contributor_payload,
    deployment_payload,
    environment_payload,
    merge_request_payload,
    note_payload,
    pipeline_payload,
    project_payload,
    release_payload,
    tag_payload,
    user_payload,
)
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.integration

TOKEN = "glpat-good-token"
NOW = datetime(2026, 3, 31, tzinfo=UTC)
ADA = user_payload(11, "ada", "Ada Lovelace")
BOB = user_payload(12, "bob", "Bob Builder")
CAROL = user_payload(13, "carol", "Carol Reviewer")


def sha(n: int) -> str:
    return f"{n:02d}" * 20


def t(day: int, hour: int = 9, minute: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00.000Z"


def dt(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def api_project(fake: FakeGitLab) -> None:
    """acme/api: a squash-merged MR, an MR with approvals and notes, an open MR, and production
    deployments (success, success, failed, hotfix success) plus a staging one that is ignored."""
    project = fake.add_project(project_payload(1, "acme/api"))
    c1 = commit_payload(sha(1), "Initial commit", at=t(1))
    c2 = commit_payload(sha(2), "Add health endpoint", at=t(2), parents=[sha(1)], additions=20)
    c3 = commit_payload(
        sha(3), "Add login", at=t(4), committed=t(5), parents=[sha(2)], additions=120, deletions=4
    )
    c4 = commit_payload(
        sha(4),
        "Merge branch 'login' into 'main'",
        at=t(5, 10),
        parents=[sha(2), sha(3)],
        message="Merge branch 'login' into 'main'\n\nAdd login\n\nSee merge request acme/api!1",
        additions=120,
        deletions=4,
    )
    c5 = commit_payload(
        sha(5), "Fix typo", at=t(10), parents=[sha(4)], author=("Bob Builder", "bob@example.com")
    )
    c6 = commit_payload(
        sha(6),
        "Merge branch 'hotfix/session' into 'main'",
        at=t(12, 10),
        parents=[sha(5), sha(61)],
        message=(
            "Merge branch 'hotfix/session' into 'main'\n\nFix session expiry\n\nSee merge request acme/api!2"
        ),
        additions=3,
        deletions=1,
    )
    project.commits = [c6, c5, c4, c3, c2, c1]

    project.merge_requests = [
        merge_request_payload(
            1,
            1,
            "Add login",
            author=ADA,
            state="merged",
            created_at=t(3),
            updated_at=t(5, 10),
            merged_at=t(5, 10),
            merge_commit_sha=sha(4),
            squash_commit_sha=sha(3),
            squash=True,
            source_branch="login",
        ),
        merge_request_payload(
            1,
            2,
            "Fix session expiry",
            author=ADA,
            state="merged",
            created_at=t(11),
            updated_at=t(12, 10),
            merged_at=t(12, 10),
            merge_commit_sha=sha(6),
            source_branch="hotfix/session",
            user_notes_count=4,
        ),
        merge_request_payload(
            1,
            3,
            "WIP: dark mode",
            author=BOB,
            state="opened",
            created_at=t(20),
            updated_at=t(20, 12),
            source_branch="dark-mode",
        ),
    ]
    project.mr_commits = {
        1: [
            commit_payload(sha(12), "Login form", at=t(4), parents=[sha(11)]),
            commit_payload(sha(11), "Login model", at=t(3, 8), parents=[sha(2)]),
        ],
        2: [commit_payload(sha(61), "Expire sessions after 1h", at=t(11, 8), parents=[sha(5)])],
        3: [commit_payload(sha(31), "Dark palette", at=t(19), parents=[sha(6)])],
    }
    project.notes = {
        1: [note_payload(100, 1, ADA, "mentioned in commit " + sha(4), t(5, 10), system=True)],
        2: [
            note_payload(201, 2, CAROL, "Should this be configurable?", t(11, 11)),
            note_payload(202, 2, ADA, "Good idea, later.", t(11, 12)),
            note_payload(203, 2, CAROL, "OK, nit: rename the constant.", t(11, 13)),
            note_payload(204, 2, BOB, "approved this merge request", t(11, 15), system=True),
            note_payload(205, 2, BOB, "LGTM", t(11, 15, 1)),
        ],
    }
    project.approvals = {2: [{"user": BOB, "approved_at": t(11, 15)}]}

    production = environment_payload(9, "production", tier="production")
    staging = environment_payload(10, "staging", tier="staging")
    project.environments = [production, staging]
    project.deployments = [
        deployment_payload(
            41, production, sha=sha(2), status="success", created_at=t(2, 11), updated_at=t(2, 12), user=ADA
        ),
        deployment_payload(
            42, production, sha=sha(4), status="success", created_at=t(6, 11), updated_at=t(6, 12), user=ADA
        ),
        deployment_payload(
            43, production, sha=sha(5), status="failed", created_at=t(10, 11), updated_at=t(10, 12), user=BOB
        ),
        deployment_payload(
            44,
            production,
            sha=sha(6),
            status="success",
            created_at=t(12, 11),
            updated_at=t(12, 12),
            user=BOB,
            commit_title="Merge branch 'hotfix/session' into 'main'",
        ),
        deployment_payload(
            45, staging, sha=sha(6), status="success", created_at=t(12, 10), updated_at=t(12, 11), user=BOB
        ),
    ]


def web_project(fake: FakeGitLab) -> None:
    """acme/web: no environments; pipelines named "Deploy production" are its deployments."""
    project = fake.add_project(project_payload(2, "acme/web"))
    project.commits = [
        commit_payload(sha(73), "Tune cache", at=t(16, 8), parents=[sha(72)]),
        commit_payload(sha(72), "Add cache", at=t(15, 8), parents=[sha(71)]),
        commit_payload(sha(71), "Scaffold", at=t(14, 8)),
    ]
    project.pipelines = [
        pipeline_payload(
            101,
            sha=sha(72),
            name="Deploy production",
            status="success",
            created_at=t(15, 9),
            started_at=t(15, 9, 1),
            finished_at=t(15, 9, 30),
            user=ADA,
        ),
        pipeline_payload(
            102,
            sha=sha(73),
            name="Build",
            status="success",
            created_at=t(16, 9),
            started_at=t(16, 9, 1),
            finished_at=t(16, 9, 10),
            user=ADA,
        ),
        pipeline_payload(
            103,
            sha=sha(73),
            name="Deploy production",
            status="failed",
            created_at=t(16, 10),
            started_at=t(16, 10, 1),
            finished_at=t(16, 10, 20),
            user=BOB,
        ),
        pipeline_payload(
            104,
            sha=sha(73),
            name="Deploy production",
            status="success",
            created_at=t(16, 11),
            started_at=t(16, 11, 1),
            finished_at=t(16, 11, 25),
            user=BOB,
        ),
    ]


def lib_project(fake: FakeGitLab) -> None:
    """acme/lib: no environments, no deploy pipelines; release tags are its deployments."""
    project = fake.add_project(project_payload(3, "acme/lib"))
    l1 = commit_payload(sha(81), "First release", at=t(17, 8))
    l2 = commit_payload(sha(82), "Revert broken parser", at=t(18, 8), parents=[sha(81)])
    l3 = commit_payload(sha(83), "Bump version", at=t(18, 9), parents=[sha(82)])
    project.commits = [l3, l2, l1]
    project.pipelines = [
        pipeline_payload(
            201,
            sha=sha(83),
            name="Test",
            status="success",
            created_at=t(18, 9),
            started_at=t(18, 9, 1),
            finished_at=t(18, 9, 5),
            user=ADA,
        ),
    ]
    project.tags = [
        tag_payload("v1.0.0", l1),
        tag_payload("v1.1.0-rc1", l2),
        tag_payload("v1.1.0", l3, created_at=t(18, 12), message="Release 1.1.0"),
    ]


@pytest.fixture
def fake() -> FakeGitLab:
    fake = FakeGitLab(TOKEN)
    api_project(fake)
    web_project(fake)
    lib_project(fake)
    return fake


@pytest.fixture
def base_url(fake: FakeGitLab) -> Iterator[str]:
    with serve_in_thread(fake.app()) as url:
        yield url


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def integration(
    base_url: str, repositories: list[str] | None = None, exclude: list[str] | None = None
) -> Integration:
    return Integration.model_validate(
        {
            "metadata": {"name": "gitlab", "namespace": "acme"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "gitlab",
                "baseUrl": base_url,
                "credentialsSecretRef": {"name": "gitlab-token"},
                "scope": {
                    "repositories": ["acme/api"] if repositories is None else repositories,
                    "exclude": exclude or [],
                },
            },
        }
    )


def client(base_url: str, token: str = TOKEN, sleeps: Sleeps | None = None, **options: Any) -> GitLabClient:
    return GitLabClient(
        integration(base_url, options.pop("repositories", None), options.pop("exclude", None)),
        token,
        clock=lambda: NOW,
        http_options={"sleep": sleeps or Sleeps(), "backoff_base": 0.01},
        **options,
    )


async def collect(
    gitlab: GitLabClient, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None = None
) -> tuple[list[EventData], dict[str, Any] | None]:
    events: list[EventData] = []
    last = cursor
    async for batch in gitlab.collect(scope, resource, cursor):
        events.extend(batch.events)
        if batch.cursor is not None:
            last = batch.cursor
    return events, last


async def scope_named(gitlab: GitLabClient, name: str) -> ScopeRef:
    return next(s for s in await gitlab.list_scopes() if s.name == name)


def repo(project_id: int, path: str) -> RepositoryRef:
    return RepositoryRef(
        provider="gitlab",
        id=str(project_id),
        name=path,
        url=f"https://gitlab.example.com/{path}",
        default_branch="main",
    )


API = repo(1, "acme/api")
ADA_REF = PersonRef(name="Ada Lovelace", username="ada")
BOB_REF = PersonRef(name="Bob Builder", username="bob")


# ---- scopes -----------------------------------------------------------------------------------------


async def test_scopes_from_globs_and_excludes(base_url: str, fake: FakeGitLab) -> None:
    gitlab = client(base_url, repositories=["acme/*"], exclude=["acme/lib"])
    scopes = await gitlab.list_scopes()
    await gitlab.aclose()
    assert [(s.name, s.id) for s in scopes] == [("acme/api", "1"), ("acme/web", "2")]
    assert scopes[0].attributes == {"default_branch": "main", "url": "https://gitlab.example.com/acme/api"}
    assert fake.calls("/groups/acme/projects")


async def test_all_visible_projects_with_keyset_pagination(base_url: str, fake: FakeGitLab) -> None:
    gitlab = client(base_url, page_size=2, repositories=[])
    scopes = await gitlab.list_scopes()
    await gitlab.aclose()
    assert [s.name for s in scopes] == ["acme/api", "acme/web", "acme/lib"]
    assert any("id_after=2" in r for r in fake.calls("/projects?"))


# ---- commits ----------------------------------------------------------------------------------------


async def test_commits_exact_events(base_url: str) -> None:
    gitlab = client(base_url)
    scope = await scope_named(gitlab, "acme/api")
    events, cursor = await collect(gitlab, scope, Resource.COMMITS)
    await gitlab.aclose()
    assert [e.sha for e in events if isinstance(e, CommitData)] == [
        sha(6),
        sha(5),
        sha(4),
        sha(3),
        sha(2),
        sha(1),
    ]
    merge = events[2]
    assert merge == CommitData(
        repository=API,
        sha=sha(4),
        author=PersonRef(name="Ada Lovelace", email="ada@example.com"),
        authored_at=dt(5, 10),
        committed_at=dt(5, 10),
        message="Merge branch 'login' into 'main'\n\nAdd login\n\nSee merge request acme/api!1",
        additions=120,
        deletions=4,
        parents=[sha(2), sha(3)],
        pull_request_number=1,
    )
    squash = events[3]
    assert isinstance(squash, CommitData)
    assert (squash.authored_at, squash.committed_at, squash.pull_request_number) == (dt(4), dt(5), None)
    assert cursor == {"head": sha(6), "head_at": "2026-03-12T10:00:00Z", "backfill_next": None}


async def test_commits_pagination_and_incremental_run(base_url: str, fake: FakeGitLab) -> None:
    project = fake.projects[1]
    history = [
        commit_payload(f"{n:040x}", f"Change {n}", at=f"2026-02-{1 + n // 10:02d}T{n % 10:02d}:00:00.000Z")
        for n in range(250, 0, -1)
    ]
    project.commits = history
    gitlab = client(base_url, page_size=100)
    scope = await scope_named(gitlab, "acme/api")
    events, cursor = await collect(gitlab, scope, Resource.COMMITS)
    assert len(events) == 250
    assert len(fake.calls("/projects/1/repository/commits")) == 3
    assert cursor is not None
    assert cursor["head"] == f"{250:040x}"

    project.commits = [
        commit_payload(
            sha(91),
            "Late merge of an old branch",
            at="2026-01-05T08:00:00.000Z",
            committed=t(25),
            parents=[f"{250:040x}"],
        ),
        *history,
    ]
    fake.requests.clear()
    events, cursor = await collect(gitlab, scope, Resource.COMMITS, cursor)
    await gitlab.aclose()
    assert [e.sha for e in events if isinstance(e, CommitData)] == [sha(91)]
    assert fake.requests[-1].startswith("/projects/1/repository/commits?ref_name=" + f"{250:040x}..main")
    assert cursor == {"head": sha(91), "head_at": "2026-03-25T09:00:00Z", "backfill_next": None}


async def test_interrupted_backfill_resumes_from_saved_page(base_url: str, fake: FakeGitLab) -> None:
    fake.projects[1].commits = [
        commit_payload(f"{n:040x}", f"Change {n}", at=f"2026-02-{1 + n // 10:02d}T{n % 10:02d}:00:00.000Z")
        for n in range(150, 0, -1)
    ]
    gitlab = client(base_url, page_size=100)
    scope = await scope_named(gitlab, "acme/api")
    stream = gitlab.collect(scope, Resource.COMMITS, None)
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    await stream.aclose()  # the collector was killed after publishing one page
    assert first.cursor is not None
    assert first.cursor["backfill_next"]
    events, cursor = await collect(gitlab, scope, Resource.COMMITS, first.cursor)
    await gitlab.aclose()
    assert len(events) == 50  # the second page only: nothing new at the head
    assert cursor is not None
    assert cursor["backfill_next"] is None


# ---- merge requests ---------------------------------------------------------------------------------


async def test_merge_requests_with_approvals_and_notes(base_url: str, fake: FakeGitLab) -> None:
    gitlab = client(base_url)
    scope = await scope_named(gitlab, "acme/api")
    events, cursor = await collect(gitlab, scope, Resource.PULL_REQUESTS)
    await gitlab.aclose()
    prs = {e.number: e for e in events if isinstance(e, PullRequestData)}
    reviews = [e for e in events if isinstance(e, CodeReviewData)]
    assert sorted(prs) == [1, 2, 3]
    assert prs[1] == PullRequestData(
        repository=API,
        number=1,
        title="Add login",
        author=ADA_REF,
        state="merged",
        created_at=dt(3),
        updated_at=dt(5, 10),
        merged_at=dt(5, 10),
        first_commit_at=dt(3, 8),
        merge_commit_sha=sha(4),
        commit_shas=[sha(12), sha(11)],
        head_branch="login",
        base_branch="main",
        review_comments=0,
        url="https://gitlab.example.com/acme/api/-/merge_requests/1",
    )
    assert prs[2].review_comments == 3
    assert prs[2].first_commit_at == dt(11, 8)
    assert prs[3].state == "open"
    assert prs[3].merged_at is None
    assert sorted(reviews, key=lambda r: r.review_id) == [
        CodeReviewData(
            repository=API,
            pull_request_number=2,
            review_id="approval:12",
            reviewer=BOB_REF,
            state="approved",
            submitted_at=dt(11, 15),
            comments_count=1,
        ),
        CodeReviewData(
            repository=API,
            pull_request_number=2,
            review_id="comments:13",
            reviewer=PersonRef(name="Carol Reviewer", username="carol"),
            state="commented",
            submitted_at=dt(11, 11),
            comments_count=2,
        ),
    ]
    # a merged MR's own commits (the squash-merged !1's branch commits too), from the commits listing
    # already read, with its iid; none for the open !3
    commits = [e for e in events if isinstance(e, CommitData)]
    assert sorted(commits, key=lambda c: c.pull_request_number or 0) == [
        CommitData(
            repository=API,
            sha=sha(12),
            author=PersonRef(name="Ada Lovelace", email="ada@example.com"),
            authored_at=dt(4),
            committed_at=dt(4),
            message="Login form\n",
            additions=1,
            deletions=0,
            parents=[sha(11)],
            pull_request_number=1,
        ),
        CommitData(
            repository=API,
            sha=sha(11),
            author=PersonRef(name="Ada Lovelace", email="ada@example.com"),
            authored_at=dt(3, 8),
            committed_at=dt(3, 8),
            message="Login model\n",
            additions=1,
            deletions=0,
            parents=[sha(2)],
            pull_request_number=1,
        ),
        CommitData(
            repository=API,
            sha=sha(61),
            author=PersonRef(name="Ada Lovelace", email="ada@example.com"),
            authored_at=dt(11, 8),
            committed_at=dt(11, 8),
            message="Expire sessions after 1h\n",
            additions=1,
            deletions=0,
            parents=[sha(5)],
            pull_request_number=2,
        ),
    ]
    assert sha(31) not in {c.sha for c in commits}
    assert cursor == {"since": "2026-03-20T12:00:00Z", "owed": None}
    # calls stay bounded: one list page plus commits, notes and approvals per merge request
    assert len(fake.requests) == 1 + 1 + 3 * 3


async def test_merge_requests_incremental_only_fetches_updated(base_url: str, fake: FakeGitLab) -> None:
    gitlab = client(base_url)
    scope = await scope_named(gitlab, "acme/api")
    _, cursor = await collect(gitlab, scope, Resource.PULL_REQUESTS)
    mr = fake.projects[1].merge_requests[2]
    mr.update(state="closed", closed_at=t(26), updated_at=t(26))
    fake.requests.clear()
    events, cursor = await collect(gitlab, scope, Resource.PULL_REQUESTS, cursor)
    await gitlab.aclose()
    assert [(e.number, e.state, e.closed_at) for e in events if isinstance(e, PullRequestData)] == [
        (3, "closed", dt(26))
    ]
    assert fake.requests[0].startswith("/projects/1/merge_requests?")
    assert "updated_after=2026-03-20T12:00:00Z" in unquote(fake.requests[0])
    assert not fake.calls("/merge_requests/1/")
    assert not fake.calls("/merge_requests/2/")
    assert cursor == {"since": "2026-03-26T09:00:00Z", "owed": None}


# ---- deployments ------------------------------------------------------------------------------------


async def test_production_deployments_with_shipped_commits(base_url: str, fake: FakeGitLab) -> None:
    gitlab = client(base_url)
    scope = await scope_named(gitlab, "acme/api")
    events, cursor = await collect(gitlab, scope, Resource.DEPLOYMENTS)
    await gitlab.aclose()
    deployments = {e.deployment_id: e for e in events if isinstance(e, DeploymentData)}
    assert sorted(deployments) == [f"gitlab:1:deployment:{n}" for n in (41, 42, 43, 44)]  # staging skipped
    assert deployments["gitlab:1:deployment:44"] == DeploymentData(
        repository=API,
        deployment_id="gitlab:1:deployment:44",
        environment="production",
        status="success",
        started_at=dt(12, 11),
        finished_at=dt(12, 12),
        revision=sha(6),
        commit_shas=[sha(5), sha(6)],
        deployed_by=BOB_REF,
        is_hotfix=True,
        url="https://gitlab.example.com/acme/api/-/pipelines/344",
    )
    assert deployments["gitlab:1:deployment:42"].commit_shas == [sha(3), sha(4)]
    assert not deployments["gitlab:1:deployment:42"].is_hotfix
    assert deployments["gitlab:1:deployment:41"].commit_shas == [sha(2)]  # first deployment: its revision
    failed = deployments["gitlab:1:deployment:43"]
    assert (failed.status, failed.commit_shas, failed.finished_at) == ("failed", [], dt(10, 12))
    assert cursor is not None
    assert cursor["source"] == "environments"
    assert cursor["environments"]["production"]["last"] == {
        "production": {"sha": sha(6), "at": "2026-03-12T12:00:00Z"}
    }
    assert len(fake.calls("/repository/compare")) == 2

    # second run: a new production deployment ships what came after the last one
    project = fake.projects[1]
    project.commits.insert(0, commit_payload(sha(7), "Add metrics", at=t(27), parents=[sha(6)]))
    project.deployments.append(
        deployment_payload(
            46,
            project.environments[0],
            sha=sha(7),
            status="success",
            created_at=t(27, 11),
            updated_at=t(27, 12),
            user=ADA,
        )
    )
    gitlab = client(base_url)
    events, cursor = await collect(gitlab, scope, Resource.DEPLOYMENTS, cursor)
    await gitlab.aclose()
    assert [(e.deployment_id, e.commit_shas) for e in events if isinstance(e, DeploymentData)] == [
        ("gitlab:1:deployment:46", [sha(7)])
    ]


async def test_pipeline_fallback(base_url: str) -> None:
    gitlab = client(base_url, repositories=["acme/web"])
    scope = await scope_named(gitlab, "acme/web")
    events, cursor = await collect(gitlab, scope, Resource.DEPLOYMENTS)
    await gitlab.aclose()
    deployments = {e.deployment_id: e for e in events if isinstance(e, DeploymentData)}
    assert sorted(deployments) == ["gitlab:2:pipeline:101", "gitlab:2:pipeline:103", "gitlab:2:pipeline:104"]
    assert deployments["gitlab:2:pipeline:104"] == DeploymentData(
        repository=repo(2, "acme/web"),
        deployment_id="gitlab:2:pipeline:104",
        environment="production",
        status="success",
        started_at=dt(16, 11, 1),
        finished_at=dt(16, 11, 25),
        revision=sha(73),
        commit_shas=[sha(73)],
        deployed_by=BOB_REF,
        url="https://gitlab.example.com/acme/api/-/pipelines/104",
    )
    assert deployments["gitlab:2:pipeline:103"].status == "failed"
    assert deployments["gitlab:2:pipeline:101"].commit_shas == [sha(72)]
    assert cursor is not None
    assert cursor["source"] == "pipelines"


async def test_tag_fallback(base_url: str) -> None:
    gitlab = client(base_url, repositories=["acme/lib"])
    scope = await scope_named(gitlab, "acme/lib")
    events, cursor = await collect(gitlab, scope, Resource.DEPLOYMENTS)
    await gitlab.aclose()
    deployments = {e.deployment_id: e for e in events if isinstance(e, DeploymentData)}
    assert sorted(deployments) == ["gitlab:3:tag:v1.0.0", "gitlab:3:tag:v1.1.0"]  # not the pre-release
    assert deployments["gitlab:3:tag:v1.1.0"] == DeploymentData(
        repository=repo(3, "acme/lib"),
        deployment_id="gitlab:3:tag:v1.1.0",
        environment="production",
        status="success",
        started_at=dt(18, 12),
        finished_at=dt(18, 12),
        revision=sha(83),
        commit_shas=[sha(82), sha(83)],
        is_hotfix=True,  # it ships "Revert broken parser"
        url="https://gitlab.example.com/acme/lib/-/tags/v1.1.0",
    )
    v1 = deployments["gitlab:3:tag:v1.0.0"]
    assert (v1.started_at, v1.commit_shas, v1.is_hotfix) == (dt(17, 8), [sha(81)], False)
    assert cursor is not None
    assert cursor["source"] == "tags"


# ---- branches, tags, releases, contributors ---------------------------------------------------------


def api_refs(fake: FakeGitLab) -> None:
    """acme/api's refs: the protected default branch, a feature branch, a lightweight and an
    annotated tag, a published and an upcoming release, and three contributors."""
    project = fake.projects[1]
    by_sha = {c["id"]: c for c in project.commits}
    project.branches = [
        branch_payload("main", by_sha[sha(6)], default=True, protected=True),
        branch_payload("hotfix/cache", by_sha[sha(5)]),
        branch_payload("login", by_sha[sha(4)]),
    ]
    project.tags = [
        tag_payload("v1.0.0", by_sha[sha(2)]),
        tag_payload("v1.1.0", by_sha[sha(6)], created_at=t(12, 13), message="Release 1.1.0\n"),
        tag_payload("v2.0.0", by_sha[sha(6)]),
    ]
    project.releases = [
        release_payload(
            "v1.1.0", by_sha[sha(6)], name="Sessions", created_at=t(12, 13), released_at=t(12, 14), author=BOB
        ),
        release_payload(
            "v2.0.0",
            by_sha[sha(6)],
            name="Next",
            created_at=t(30),
            released_at="2026-04-15T00:00:00.000Z",
            author=ADA,
            upcoming=True,
        ),
    ]
    project.contributors = [
        contributor_payload("Ada Lovelace", "ada@example.com", 5),
        contributor_payload("Bob Builder", "bob@example.com", 1),
        contributor_payload("Dependabot", "", 3),
    ]


async def test_branches_tags_and_releases(base_url: str, fake: FakeGitLab) -> None:
    api_refs(fake)
    gitlab = client(base_url, page_size=2)
    assert Resource.BRANCHES_AND_TAGS in gitlab.resources
    scope = await scope_named(gitlab, "acme/api")
    fake.requests.clear()
    events, cursor = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS)
    await gitlab.aclose()
    branches = [e for e in events if isinstance(e, BranchData)]
    assert branches == [
        BranchData(repository=API, name="hotfix/cache", head_sha=sha(5), protected=False, updated_at=dt(10)),
        BranchData(repository=API, name="login", head_sha=sha(4), protected=False, updated_at=dt(5, 10)),
        BranchData(
            repository=API,
            name="main",
            head_sha=sha(6),
            is_default=True,
            protected=True,
            updated_at=dt(12, 10),
        ),
    ]
    assert [e for e in events if isinstance(e, TagData)] == [
        TagData(repository=API, name="v1.0.0", sha=sha(2), tagged_at=dt(2)),
        TagData(
            repository=API,
            name="v1.1.0",
            sha=sha(6),
            annotated=True,
            tagged_at=dt(12, 13),
            message="Release 1.1.0\n",
        ),
        TagData(repository=API, name="v2.0.0", sha=sha(6), tagged_at=dt(12, 10)),
    ]
    assert [e for e in events if isinstance(e, ReleaseData)] == [
        ReleaseData(
            repository=API,
            release_id="v2.0.0",
            tag_name="v2.0.0",
            name="Next",
            created_at=dt(30),
            published_at=None,  # upcoming: not released yet
            author=ADA_REF,
            url="https://gitlab.example.com/acme/api/-/releases/v2.0.0",
        ),
        ReleaseData(
            repository=API,
            release_id="v1.1.0",
            tag_name="v1.1.0",
            name="Sessions",
            created_at=dt(12, 13),
            published_at=dt(12, 14),
            author=BOB_REF,
            url="https://gitlab.example.com/acme/api/-/releases/v1.1.0",
        ),
    ]
    # branches: two offset pages through `Link`; tags: keyset pages by name (`page_token`); releases: one
    assert len(fake.calls("/repository/branches")) == 2
    tag_calls = [unquote(c) for c in fake.calls("/repository/tags")]
    assert len(tag_calls) == 2
    assert "pagination=keyset" in tag_calls[0]
    assert "page_token=v1.1.0" in tag_calls[1]
    assert len(fake.calls("/releases")) == 1
    assert len(fake.requests) == 5
    assert cursor == {
        "branches": {"hotfix/cache": sha(5), "login": sha(4), "main": sha(6)},
        "tags": {"v1.0.0": sha(2), "v1.1.0": sha(6), "v2.0.0": sha(6)},
    }


async def test_refs_gone_from_the_listing_are_published_as_deleted(
    base_url: str, fake: FakeGitLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_refs(fake)
    project = fake.projects[1]
    gitlab = client(base_url)
    scope = await scope_named(gitlab, "acme/api")
    first, cursor = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS)
    assert not [e for e in first if isinstance(e, BranchData | TagData) and e.deleted]

    project.branches = [b for b in project.branches if b["name"] != "hotfix/cache"]
    project.tags = [t for t in project.tags if t["name"] != "v2.0.0"]
    second, cursor = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS, cursor)
    deleted = [e for e in second if isinstance(e, BranchData | TagData) and e.deleted]
    assert deleted == [
        BranchData(repository=API, name="hotfix/cache", head_sha=sha(5), deleted=True),
        TagData(repository=API, name="v2.0.0", sha=sha(6), deleted=True),
    ]
    # a new branch is simply listed; what was reported deleted is not reported again
    project.branches.append(branch_payload("dark-mode", project.commits[0]))
    third, cursor = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS, cursor)
    assert not [e for e in third if isinstance(e, BranchData | TagData) and e.deleted]
    assert "dark-mode" in {e.name for e in third if isinstance(e, BranchData)}

    # more refs than the cursor keeps: that kind is not tracked, and its deletions are not guessed
    monkeypatch.setattr(git_common, "MAX_TRACKED_REFS", 2)
    _, cursor = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS, cursor)
    assert cursor is not None
    assert cursor["branches"] is None
    assert cursor["tags"] == {"v1.0.0": sha(2), "v1.1.0": sha(6)}
    project.branches = project.branches[:1]
    fifth, _ = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS, cursor)
    await gitlab.aclose()
    assert not [e for e in fifth if isinstance(e, BranchData | TagData) and e.deleted]


async def test_default_branch_without_the_default_flag(base_url: str, fake: FakeGitLab) -> None:
    """Versions whose branch listing has no `default` fall back to the project's default branch."""
    project = fake.projects[1]
    older = [branch_payload(name, project.commits[0]) for name in ("main", "next")]
    project.branches = [{k: v for k, v in b.items() if k != "default"} for b in older]
    gitlab = client(base_url)
    scope = await scope_named(gitlab, "acme/api")
    events, _ = await collect(gitlab, scope, Resource.BRANCHES_AND_TAGS)
    await gitlab.aclose()
    assert [(e.name, e.is_default) for e in events if isinstance(e, BranchData)] == [
        ("main", True),
        ("next", False),
    ]


async def test_contributors(base_url: str, fake: FakeGitLab) -> None:
    api_refs(fake)
    gitlab = client(base_url, page_size=2)
    assert Resource.CONTRIBUTORS in gitlab.resources
    scope = await scope_named(gitlab, "acme/api")
    fake.requests.clear()
    events, cursor = await collect(gitlab, scope, Resource.CONTRIBUTORS)
    await gitlab.aclose()
    assert events == [
        ContributorData(
            repository=API, person=PersonRef(name="Ada Lovelace", email="ada@example.com"), contributions=5
        ),
        ContributorData(repository=API, person=PersonRef(name="Dependabot"), contributions=3),
        ContributorData(
            repository=API, person=PersonRef(name="Bob Builder", email="bob@example.com"), contributions=1
        ),
    ]
    assert cursor is None  # nothing to resume: every run lists them all
    assert len(fake.calls("/repository/contributors")) == 2
    assert "order_by=commits" in fake.requests[0]


# ---- rate limits, retries, errors -------------------------------------------------------------------


async def test_429_retry_after_is_honoured(base_url: str, fake: FakeGitLab) -> None:
    sleeps = Sleeps()
    fake.fail(429, times=1, path_contains="/repository/commits", **{"Retry-After": "7"})
    gitlab = client(base_url, sleeps=sleeps)
    scope = await scope_named(gitlab, "acme/api")
    events, _ = await collect(gitlab, scope, Resource.COMMITS)
    assert len(events) == 6
    assert sleeps.seconds[0] == 7.0
    assert all(s <= 8.5 for s in sleeps.seconds)
    assert gitlab.http.rate_limit.remaining is not None
    assert gitlab.http.rate_limit.remaining > 100
    await gitlab.aclose()


async def test_5xx_burst_is_retried(base_url: str, fake: FakeGitLab) -> None:
    sleeps = Sleeps()
    fake.fail(502, times=2, path_contains="/merge_requests")
    gitlab = client(base_url, sleeps=sleeps)
    scope = await scope_named(gitlab, "acme/api")
    events, _ = await collect(gitlab, scope, Resource.PULL_REQUESTS)
    await gitlab.aclose()
    assert len([e for e in events if isinstance(e, PullRequestData)]) == 3
    assert len(sleeps.seconds) == 2


async def test_bad_token_is_a_collector_error_with_hint(base_url: str) -> None:
    gitlab = client(base_url, token="glpat-revoked")
    with pytest.raises(CollectorError) as error:
        await gitlab.list_scopes()
    await gitlab.aclose()
    assert "401" in str(error.value)
    assert "revoked" in error.value.hint
    assert "credentialsSecretRef" in error.value.hint


async def test_unknown_project_fails_alone(base_url: str) -> None:
    gitlab = client(base_url, repositories=["acme/api", "acme/missing", "ghost/*"])
    scopes = await gitlab.list_scopes()
    assert [s.name for s in scopes] == ["acme/api", "acme/missing", "ghost/*"]
    collected: dict[str, int] = {}
    errors: dict[str, CollectorError] = {}
    for scope in scopes:
        try:
            events, _ = await collect(gitlab, scope, Resource.COMMITS)
            collected[scope.name] = len(events)
        except CollectorError as exc:
            errors[scope.name] = exc
    await gitlab.aclose()
    assert collected == {"acme/api": 6}
    assert set(errors) == {"acme/missing", "ghost/*"}
    assert errors["acme/missing"].scope == "acme/missing"
    assert "spec.scope.repositories" in errors["acme/missing"].hint
