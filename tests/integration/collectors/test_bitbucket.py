"""The Bitbucket Cloud client against the fake Bitbucket API over loopback: exact events for a small
hand-made repository, deployments from environments, pipelines and tags, body pagination (including
`next` links that drop `sort`), incremental runs, rate limits, retries and the errors a user has to
fix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from doraflow.collectors.base import CollectorError, Resource, ScopeRef
from doraflow.collectors.git.bitbucket import BitbucketClient, CommitHashes
from doraflow.core.events import (
    BranchData,
    CodeReviewData,
    CommitData,
    DeploymentData,
    EventData,
    PersonRef,
    PullRequestData,
    RepositoryRef,
    TagData,
)
from doraflow.core.resources import Integration
from tests.fakes.bitbucket import (
    FakeBitbucket,
    account_payload,
    approval_activity,
    branch_payload,
    changes_requested_activity,
    comment_activity,
    commit_payload,
    deployment_payload,
    diffstat_payload,
    environment_payload,
    participant_payload,
    pipeline_payload,
    pull_request_payload,
    repository_payload,
    tag_payload,
    update_activity,
)
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.integration

APP_PASSWORD = "ada:app-password-1"
ACCESS_TOKEN = "repo-access-token-1"
NOW = datetime(2026, 3, 31, tzinfo=UTC)
ADA = account_payload("{a-11}", "ada", "Ada Lovelace")
BOB = account_payload("{b-12}", "bob", "Bob Builder")
CAROL = account_payload("{c-13}", "carol", "Carol Reviewer")
ADA_REF = PersonRef(name="Ada Lovelace", username="ada")
BOB_REF = PersonRef(name="Bob Builder", username="bob")
CAROL_REF = PersonRef(name="Carol Reviewer", username="carol")


def sha(n: int) -> str:
    return f"{n:02d}" * 20


def t(day: int, hour: int = 9, minute: int = 0) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00.000000+00:00"


def dt(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def api_repository(fake: FakeBitbucket) -> None:
    """acme/api: a squash-merged PR, a PR with approvals, change requests and comments, an open and a
    declined PR, and production deployments (success, success, failed, hotfix success)."""
    repository = fake.add_repository(repository_payload("{r-api}", "acme/api"))

    def commit(
        n: int, message: str, at: str, parents: list[int], who: dict[str, Any] = ADA
    ) -> dict[str, Any]:
        return commit_payload(
            sha(n),
            message,
            at=at,
            author=who,
            email=f"{who['nickname']}@example.com",
            parents=[sha(p) for p in parents],
        )

    repository.commits = [
        commit(6, "Merged in hotfix/session (pull request #2)\n\nFix session expiry\n", t(12, 10), [5, 61]),
        commit(61, "Expire sessions after 1h\n", t(11, 8), [5]),
        commit(5, "Fix typo\n", t(10), [4], BOB),
        commit(
            4,
            "Merged in login (pull request #1)\n\nAdd login\n\n* Login model\n* Login form\n",
            t(5, 10),
            [2],
        ),
        commit(2, "Add health endpoint\n", t(2), [1]),
        commit(1, "Initial commit\n", t(1), []),
    ]
    repository.diffstats = {
        sha(61): [diffstat_payload("src/session.py", 3, 1)],
        sha(5): [diffstat_payload("README.md", 1, 1)],
        sha(4): [diffstat_payload("src/login.py", 100, 0, "added"), diffstat_payload("src/app.py", 20, 4)],
        sha(2): [diffstat_payload("src/health.py", 20, 0, "added")],
        sha(1): [diffstat_payload("README.md", 5, 0, "added")],
    }

    reviewers = [
        participant_payload(BOB, "REVIEWER", approved=True, state="approved", participated_on=t(11, 15)),
        participant_payload(
            CAROL, "PARTICIPANT", approved=False, state="changes_requested", participated_on=t(11, 13)
        ),
    ]
    repository.pull_requests = [
        pull_request_payload(
            1,
            "Add login",
            author=ADA,
            state="MERGED",
            created_on=t(3),
            updated_on=t(5, 10, 1),
            source="login",
            merge_commit=(sha(4), t(5, 10)),  # the fake sends the 12-character short hash
        ),
        pull_request_payload(
            2,
            "Fix session expiry",
            author=ADA,
            state="MERGED",
            created_on=t(11),
            updated_on=t(12, 10, 1),
            source="hotfix/session",
            merge_commit=(sha(6), t(12, 10)),
            participants=reviewers,
            comment_count=4,
        ),
        pull_request_payload(
            3,
            "Dark mode",
            author=BOB,
            state="OPEN",
            created_on=t(20),
            updated_on=t(20, 12),
            source="dark-mode",
        ),
        pull_request_payload(
            4,
            "Try GraphQL",
            author=CAROL,
            state="DECLINED",
            created_on=t(21),
            updated_on=t(22, 9, 5),
            source="graphql",
        ),
    ]
    repository.activity = {
        1: [
            update_activity(1, "Add login", "MERGED", ADA, t(5, 10)),
            update_activity(1, "Add login", "OPEN", ADA, t(3)),
        ],
        2: [
            update_activity(2, "Fix session expiry", "MERGED", ADA, t(12, 10)),
            comment_activity(2, "Fix session expiry", 504, BOB, "LGTM", t(11, 15, 1)),
            approval_activity(2, "Fix session expiry", BOB, t(11, 15)),
            comment_activity(2, "Fix session expiry", 503, CAROL, "Rename the constant", t(11, 13)),
            comment_activity(2, "Fix session expiry", 502, ADA, "Good idea, later.", t(11, 12)),
            changes_requested_activity(2, "Fix session expiry", CAROL, t(11, 11, 30)),
            comment_activity(2, "Fix session expiry", 501, CAROL, "Should this be configurable?", t(11, 11)),
            update_activity(2, "Fix session expiry", "OPEN", ADA, t(11)),
        ],
        3: [update_activity(3, "Dark mode", "OPEN", BOB, t(20))],
        4: [
            update_activity(4, "Try GraphQL", "DECLINED", CAROL, t(22, 9)),
            update_activity(4, "Try GraphQL", "OPEN", CAROL, t(21)),
        ],
    }
    repository.pr_commits = {
        1: [commit(12, "Login form\n", t(4), [11]), commit(11, "Login model\n", t(3, 8), [2])],
        2: [commit(61, "Expire sessions after 1h\n", t(11, 8), [5])],
        3: [commit(31, "Dark palette\n", t(19), [6], BOB)],
        4: [],
    }

    production = environment_payload("{e-prod}", "Production", "Production")
    staging = environment_payload("{e-stg}", "Staging", "Staging")
    repository.environments = [environment_payload("{e-test}", "Test", "Test"), staging, production]

    def deploy(
        n: int, env: dict[str, Any], commit_n: int, result: str | None, day: int, who: dict[str, Any] = ADA
    ) -> dict[str, Any]:
        return deployment_payload(
            "{d-" + str(n) + "}",
            env,
            sha=sha(commit_n),
            result=result,
            started_on=t(day, 11),
            completed_on=t(day, 12) if result else None,
            deployer=who,
            build_number=n,
        )

    repository.deployments = [
        deploy(1, production, 2, "SUCCESSFUL", 2),
        deploy(2, production, 4, "SUCCESSFUL", 6),
        deploy(3, production, 5, "FAILED", 10, BOB),
        deploy(4, production, 6, "SUCCESSFUL", 12, BOB),
        deploy(5, staging, 6, "SUCCESSFUL", 12),
    ]


def web_repository(fake: FakeBitbucket) -> None:
    """acme/web: no deployment environments; custom pipelines named deploy-production deploy it."""
    repository = fake.add_repository(repository_payload("{r-web}", "acme/web"))
    repository.commits = [
        commit_payload(
            sha(n),
            f"Change {n}\n",
            at=t(day, 8),
            author=ADA,
            email="ada@example.com",
            parents=[sha(n - 1)] if n > 71 else [],
            repository="acme/web",
        )
        for n, day in ((73, 16), (72, 15), (71, 14))
    ]

    def run(
        n: int, commit_n: int, selector: tuple[str, str], result: str | None, day: int, hour: int
    ) -> dict[str, Any]:
        return pipeline_payload(
            "{p-" + str(n) + "}",
            n,
            sha=sha(commit_n),
            selector=selector,
            result=result,
            created_on=t(day, hour),
            completed_on=t(day, hour, 30) if result else None,
            creator=BOB,
        )

    repository.pipelines = [
        run(101, 72, ("custom", "deploy-production"), "SUCCESSFUL", 15, 9),
        run(102, 73, ("branches", "main"), "SUCCESSFUL", 16, 9),
        run(103, 73, ("custom", "deploy-production"), "FAILED", 16, 10),
        run(104, 73, ("custom", "deploy-production"), "SUCCESSFUL", 16, 11),
    ]


def lib_repository(fake: FakeBitbucket) -> None:
    """acme/lib: no environments, no deploy pipelines; release tags are its deployments."""
    repository = fake.add_repository(repository_payload("{r-lib}", "acme/lib"))

    def commit(n: int, message: str, at: str, parents: list[int]) -> dict[str, Any]:
        return commit_payload(
            sha(n),
            message,
            at=at,
            author=ADA,
            email="ada@example.com",
            parents=[sha(p) for p in parents],
            repository="acme/lib",
        )

    l3 = commit(83, "Bump version\n", t(18, 9), [82])
    l2 = commit(82, "Revert broken parser\n", t(18, 8), [81])
    l1 = commit(81, "First release\n", t(17, 8), [])
    repository.commits = [l3, l2, l1]
    repository.pipelines = [
        pipeline_payload(
            "{p-201}",
            201,
            sha=sha(83),
            selector=("branches", "main"),
            result="SUCCESSFUL",
            created_on=t(18, 9),
            completed_on=t(18, 9, 5),
            creator=ADA,
            repository="acme/lib",
        )
    ]
    repository.tags = [
        tag_payload("v1.0.0", l1),
        tag_payload("v1.1.0-rc1", l2),
        tag_payload(
            "v1.1.0", l3, date=t(18, 12), message="Release 1.1.0\n", tagger="Ada Lovelace <ada@example.com>"
        ),
    ]


@pytest.fixture
def fake() -> FakeBitbucket:
    fake = FakeBitbucket(APP_PASSWORD, ACCESS_TOKEN)
    api_repository(fake)
    web_repository(fake)
    lib_repository(fake)
    return fake


@pytest.fixture
def base_url(fake: FakeBitbucket) -> Iterator[str]:
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
            "metadata": {"name": "bitbucket", "namespace": "acme"},
            "spec": {
                "organizationRef": {"name": "acme"},
                "provider": "bitbucket",
                "baseUrl": f"{base_url}/2.0",
                "credentialsSecretRef": {"name": "bitbucket-credentials"},
                "scope": {
                    "repositories": ["acme/api"] if repositories is None else repositories,
                    "exclude": exclude or [],
                },
            },
        }
    )


def client(
    base_url: str, credentials: str = APP_PASSWORD, sleeps: Sleeps | None = None, **options: Any
) -> BitbucketClient:
    return BitbucketClient(
        integration(base_url, options.pop("repositories", None), options.pop("exclude", None)),
        credentials,
        clock=lambda: NOW,
        http_options={"sleep": sleeps or Sleeps(), "backoff_base": 0.01},
        **options,
    )


async def collect(
    bitbucket: BitbucketClient, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None = None
) -> tuple[list[EventData], dict[str, Any] | None]:
    events: list[EventData] = []
    last = cursor
    async for batch in bitbucket.collect(scope, resource, cursor):
        events.extend(batch.events)
        if batch.cursor is not None:
            last = batch.cursor
    return events, last


async def scope_named(bitbucket: BitbucketClient, name: str) -> ScopeRef:
    return next(s for s in await bitbucket.list_scopes() if s.name == name)


def repo(uuid: str, name: str) -> RepositoryRef:
    return RepositoryRef(
        provider="bitbucket", id=uuid, name=name, url=f"https://bitbucket.org/{name}", default_branch="main"
    )


API = repo("{r-api}", "acme/api")


# ---- scopes -----------------------------------------------------------------------------------------


async def test_scopes_from_globs_and_excludes(base_url: str) -> None:
    bitbucket = client(base_url, repositories=["acme/*"], exclude=["acme/lib"])
    scopes = await bitbucket.list_scopes()
    await bitbucket.aclose()
    assert [(s.name, s.id) for s in scopes] == [("acme/api", "{r-api}"), ("acme/web", "{r-web}")]
    assert scopes[0].attributes == {"default_branch": "main", "url": "https://bitbucket.org/acme/api"}


async def test_bearer_access_token_and_all_member_repositories(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url, credentials=ACCESS_TOKEN, repositories=[], page_size=2)
    scopes = await bitbucket.list_scopes()
    await bitbucket.aclose()
    assert [s.name for s in scopes] == ["acme/api", "acme/web", "acme/lib"]
    assert len(fake.calls("/repositories?")) == 2  # two pages through `next`


# ---- commits ----------------------------------------------------------------------------------------


async def test_commits_with_bounded_diffstats(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    events, cursor = await collect(bitbucket, scope, Resource.COMMITS)
    await bitbucket.aclose()
    commits = [e for e in events if isinstance(e, CommitData)]
    assert [c.sha for c in commits] == [sha(6), sha(61), sha(5), sha(4), sha(2), sha(1)]
    assert commits[3] == CommitData(
        repository=API,
        sha=sha(4),
        author=PersonRef(name="Ada Lovelace", email="ada@example.com", username="ada"),
        authored_at=dt(5, 10),
        message="Merged in login (pull request #1)\n\nAdd login\n\n* Login model\n* Login form\n",
        additions=120,
        deletions=4,
        files_changed=2,
        parents=[sha(2)],
        pull_request_number=1,
    )
    merge = commits[0]
    assert (merge.pull_request_number, merge.additions, merge.parents) == (2, None, [sha(5), sha(61)])
    assert len(fake.calls("/diffstat/")) == 5  # not for the merge commit
    assert cursor == {"head": sha(6), "head_at": t(12, 10), "backfill_next": None}


async def test_diffstat_budget_caps_calls(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url, diffstat_budget=2)
    scope = await scope_named(bitbucket, "acme/api")
    events, _ = await collect(bitbucket, scope, Resource.COMMITS)
    await bitbucket.aclose()
    assert [e.additions for e in events if isinstance(e, CommitData)] == [None, 3, 1, None, None, None]
    assert len(fake.calls("/diffstat/")) == 2


async def test_commits_pagination_and_incremental_run(base_url: str, fake: FakeBitbucket) -> None:
    repository = fake.repositories["acme/api"]
    repository.commits = [
        commit_payload(
            f"{n:040x}",
            f"Change {n}\n",
            at=f"2026-02-{1 + n // 10:02d}T{n % 10:02d}:00:00+00:00",
            author=ADA,
            email="ada@example.com",
            parents=[f"{n - 1:040x}"] if n > 1 else [],
        )
        for n in range(250, 0, -1)
    ]
    bitbucket = client(base_url, page_size=100, diffstat_budget=0)
    scope = await scope_named(bitbucket, "acme/api")
    events, cursor = await collect(bitbucket, scope, Resource.COMMITS)
    assert len(events) == 250
    assert len(fake.calls("/commits/")) == 3
    assert cursor is not None
    assert cursor["head"] == f"{250:040x}"

    repository.commits.insert(
        0,
        commit_payload(
            sha(91),
            "Merged in old-branch (pull request #9)\n",
            at=t(25),
            author=BOB,
            email="bob@example.com",
            parents=[f"{250:040x}"],
        ),
    )
    fake.requests.clear()
    events, cursor = await collect(bitbucket, scope, Resource.COMMITS, cursor)
    await bitbucket.aclose()
    assert [(e.sha, e.pull_request_number) for e in events if isinstance(e, CommitData)] == [(sha(91), 9)]
    assert fake.requests == [f"/repositories/acme/api/commits/main?exclude={250:040x}&pagelen=100"]
    assert cursor == {"head": sha(91), "head_at": t(25), "backfill_next": None}


# ---- pull requests ----------------------------------------------------------------------------------


async def test_pull_requests_with_participants_and_activity(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    events, cursor = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
    await bitbucket.aclose()
    prs = {e.number: e for e in events if isinstance(e, PullRequestData)}
    assert sorted(prs) == [1, 2, 3, 4]
    assert prs[1] == PullRequestData(
        repository=API,
        number=1,
        title="Add login",
        author=ADA_REF,
        state="merged",
        created_at=dt(3),
        updated_at=dt(5, 10, 1),
        merged_at=dt(5, 10),
        first_commit_at=dt(3, 8),
        merge_commit_sha=sha(4),  # expanded from the short hash Bitbucket sends
        commit_shas=[sha(12), sha(11)],
        head_branch="login",
        base_branch="main",
        review_comments=0,
        url="https://bitbucket.org/acme/api/pull-requests/1",
    )
    assert (prs[2].merged_at, prs[2].review_comments) == (dt(12, 10), 3)
    assert (prs[3].state, prs[3].merged_at, prs[3].closed_at) == ("open", None, None)
    assert (prs[4].state, prs[4].closed_at) == ("closed", dt(22, 9))
    reviews = sorted((e for e in events if isinstance(e, CodeReviewData)), key=lambda r: r.review_id)
    assert reviews == [
        CodeReviewData(
            repository=API,
            pull_request_number=2,
            review_id="approval:{b-12}",
            reviewer=BOB_REF,
            state="approved",
            submitted_at=dt(11, 15),
            comments_count=1,
        ),
        CodeReviewData(
            repository=API,
            pull_request_number=2,
            review_id="changes:{c-13}:2026-03-11T11:30:00Z",
            reviewer=CAROL_REF,
            state="changes_requested",
            submitted_at=dt(11, 11, 30),
        ),
        CodeReviewData(
            repository=API,
            pull_request_number=2,
            review_id="comments:{c-13}",
            reviewer=CAROL_REF,
            state="commented",
            submitted_at=dt(11, 11),
            comments_count=2,
        ),
    ]
    # a merged pull request's own commits, from the commits listing already read, with its number;
    # none for the open or the declined one
    commits = [e for e in events if isinstance(e, CommitData)]
    assert sorted(commits, key=lambda c: c.pull_request_number or 0) == [
        CommitData(
            repository=API,
            sha=sha(12),
            author=PersonRef(name="Ada Lovelace", email="ada@example.com", username="ada"),
            authored_at=dt(4),
            message="Login form\n",
            parents=[sha(11)],
            pull_request_number=1,
        ),
        CommitData(
            repository=API,
            sha=sha(11),
            author=PersonRef(name="Ada Lovelace", email="ada@example.com", username="ada"),
            authored_at=dt(3, 8),
            message="Login model\n",
            parents=[sha(2)],
            pull_request_number=1,
        ),
        CommitData(
            repository=API,
            sha=sha(61),
            author=PersonRef(name="Ada Lovelace", email="ada@example.com", username="ada"),
            authored_at=dt(11, 8),
            message="Expire sessions after 1h\n",
            parents=[sha(5)],
            pull_request_number=2,
        ),
    ]
    assert sha(31) not in {c.sha for c in commits}
    assert prs[2].merge_commit_sha == sha(6)
    # no extra calls: the repository lookup, one list page, activity and commits per pull request, and
    # one commit lookup per merge commit this client had not seen (its commits were not collected); no
    # diffstat
    assert len(fake.requests) == 1 + 1 + 2 * 4 + 2
    assert sorted(fake.calls("/commit/")) == [
        f"/repositories/acme/api/commit/{sha(4)[:12]}",
        f"/repositories/acme/api/commit/{sha(6)[:12]}",
    ]
    assert not fake.calls("/diffstat/")
    listing = unquote(fake.calls("/pullrequests?")[0])
    assert "state=MERGED" in listing
    assert "state=OPEN" in listing
    assert "q=updated_on >= 2025-03-31T00:00:00Z" in listing.replace("+", " ")
    assert cursor == {"since": "2026-03-22T09:05:00Z", "owed": None}


async def test_pull_requests_incremental_only_fetches_updated(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    _, cursor = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
    repository = fake.repositories["acme/api"]
    repository.pull_requests[2].update(
        state="MERGED",
        updated_on=t(26, 10, 1),
        merge_commit={"type": "commit", "hash": "c" * 12, "date": t(26, 10)},
    )
    repository.activity[3].insert(0, approval_activity(3, "Dark mode", CAROL, t(26, 9)))
    repository.activity[3].insert(0, update_activity(3, "Dark mode", "MERGED", BOB, t(26, 10)))
    fake.requests.clear()
    events, cursor = await collect(bitbucket, scope, Resource.PULL_REQUESTS, cursor)
    await bitbucket.aclose()
    assert [(e.number, e.state, e.merged_at) for e in events if isinstance(e, PullRequestData)] == [
        (3, "merged", dt(26, 10))
    ]
    assert [(e.review_id, e.submitted_at) for e in events if isinstance(e, CodeReviewData)] == [
        ("approval:{c-13}", dt(26, 9))
    ]
    assert not fake.calls("/pullrequests/1/")
    assert not fake.calls("/pullrequests/2/")
    assert cursor == {"since": "2026-03-26T10:01:00Z", "owed": None}


async def test_merge_hashes_expanded_from_commits_already_seen(base_url: str, fake: FakeBitbucket) -> None:
    """The same client collected the commits first: both merge commits are known, no lookup."""
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    await collect(bitbucket, scope, Resource.COMMITS)
    fake.requests.clear()
    events, _ = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
    await bitbucket.aclose()
    merged = {e.number: e.merge_commit_sha for e in events if isinstance(e, PullRequestData)}
    assert merged == {1: sha(4), 2: sha(6), 3: None, 4: None}
    assert not fake.calls("/commit/")


async def test_fast_forward_merge_hash_expanded_from_the_pull_requests_own_commits(
    base_url: str, fake: FakeBitbucket
) -> None:
    repository = fake.repositories["acme/api"]
    repository.pull_requests[0]["merge_commit"]["hash"] = sha(12)[:12]  # its own last commit
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    events, _ = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
    await bitbucket.aclose()
    merged = {e.number: e.merge_commit_sha for e in events if isinstance(e, PullRequestData)}
    assert (merged[1], merged[2]) == (sha(12), sha(6))
    assert fake.calls("/commit/") == [f"/repositories/acme/api/commit/{sha(6)[:12]}"]  # only #2's


async def test_unknown_merge_hash_is_published_as_none_and_asked_about_once(
    base_url: str, fake: FakeBitbucket, caplog: pytest.LogCaptureFixture
) -> None:
    repository = fake.repositories["acme/api"]
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    _, cursor = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
    # #3 merged with a merge commit Bitbucket no longer knows (history rewritten since)
    repository.pull_requests[2].update(
        state="MERGED",
        updated_on=t(26, 10, 1),
        merge_commit={"type": "commit", "hash": "c" * 12, "date": t(26, 10)},
    )
    repository.activity[3].insert(0, update_activity(3, "Dark mode", "MERGED", BOB, t(26, 10)))
    fake.requests.clear()
    with caplog.at_level("WARNING", logger="doraflow.collectors.git.bitbucket"):
        events, cursor = await collect(bitbucket, scope, Resource.PULL_REQUESTS, cursor)
        assert [(e.number, e.merge_commit_sha) for e in events if isinstance(e, PullRequestData)] == [
            (3, None)
        ]
        assert fake.calls("/commit/") == ["/repositories/acme/api/commit/cccccccccccc"]

        # updated again (a comment): neither asked nor logged again; #1 and #2 again: answered from
        # what the client learned, no lookup either
        for pull in repository.pull_requests[:3]:
            pull["updated_on"] = t(27)
        fake.requests.clear()
        events, _ = await collect(bitbucket, scope, Resource.PULL_REQUESTS, cursor)
    await bitbucket.aclose()
    merged = {e.number: e.merge_commit_sha for e in events if isinstance(e, PullRequestData)}
    assert merged == {1: sha(4), 2: sha(6), 3: None}
    assert not fake.calls("/commit/")
    warnings = [r for r in caplog.records if r.getMessage() == "merge commit not found, published without it"]
    assert len(warnings) == 1


def test_commit_hashes_are_bounded_per_repository_and_ask_when_ambiguous() -> None:
    hashes = CommitHashes(limit=2)
    first, second, third = "ab" * 20, "cd" * 20, "ef" * 20
    hashes.remember("{r}", [first, second, "not-a-sha"])
    assert hashes.expand("{r}", first[:12]) == (True, first)
    assert hashes.expand("{other}", first[:12]) == (False, None)  # another repository's commit
    hashes.remember("{r}", [first, third])  # `first` seen again: `second` is now the oldest
    assert hashes.expand("{r}", second[:12]) == (False, None)
    assert hashes.expand("{r}", first[:12]) == (True, first)
    # two known commits share the abbreviation: only the API can tell
    hashes.remember("{r}", [first[:12] + "0" * 28])  # a twin: drops the oldest, `first`
    assert hashes.expand("{r}", third[:12]) == (True, third)
    hashes.remember("{r}", [first])  # both known now, `third` dropped
    assert hashes.expand("{r}", first[:12]) == (False, None)
    assert hashes.expand("{r}", third[:12]) == (False, None)
    assert hashes.expand("{r}", first[:6]) == (False, None)  # shorter than git abbreviates
    hashes.answered("{r}", "c" * 12, None)
    assert hashes.expand("{r}", "c" * 12) == (True, None)  # the API did not know it: not asked again


# ---- deployments ------------------------------------------------------------------------------------


async def test_production_deployments_with_shipped_commits(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    events, cursor = await collect(bitbucket, scope, Resource.DEPLOYMENTS)
    await bitbucket.aclose()
    deployments = {e.deployment_id: e for e in events if isinstance(e, DeploymentData)}
    assert sorted(deployments) == [f"bitbucket:{{r-api}}:deployment:{{d-{n}}}" for n in (1, 2, 3, 4)]
    assert deployments["bitbucket:{r-api}:deployment:{d-4}"] == DeploymentData(
        repository=API,
        deployment_id="bitbucket:{r-api}:deployment:{d-4}",
        environment="Production",
        status="success",
        started_at=dt(12, 11),
        finished_at=dt(12, 12),
        revision=sha(6),
        commit_shas=[sha(6), sha(61), sha(5)],
        deployed_by=BOB_REF,
        is_hotfix=True,
        url="https://bitbucket.org/acme/api/addon/pipelines/home#!/results/4",
    )
    assert deployments["bitbucket:{r-api}:deployment:{d-2}"].commit_shas == [sha(4)]
    assert deployments["bitbucket:{r-api}:deployment:{d-1}"].commit_shas == [sha(2)]
    failed = deployments["bitbucket:{r-api}:deployment:{d-3}"]
    assert (failed.status, failed.commit_shas, failed.is_hotfix) == ("failed", [], False)
    assert cursor is not None
    assert cursor["source"] == "deployments"
    assert cursor["deployments"]["last"] == {"Production": {"sha": sha(6), "at": "2026-03-12T11:00:00Z"}}


async def test_running_deployment_is_collected_again_when_it_finishes(
    base_url: str, fake: FakeBitbucket
) -> None:
    repository = fake.repositories["acme/api"]
    production = repository.environments[2]
    repository.commits.insert(
        0,
        commit_payload(
            sha(7), "Add metrics\n", at=t(27), author=ADA, email="ada@example.com", parents=[sha(6)]
        ),
    )
    running = deployment_payload(
        "{d-6}",
        production,
        sha=sha(7),
        result=None,
        started_on=t(28, 11),
        completed_on=None,
        deployer=ADA,
        build_number=6,
    )
    repository.deployments.append(running)
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    events, cursor = await collect(bitbucket, scope, Resource.DEPLOYMENTS)
    latest = [e for e in events if isinstance(e, DeploymentData) and e.deployment_id.endswith("{d-6}")]
    assert [(e.status, e.finished_at, e.commit_shas) for e in latest] == [("in_progress", None, [])]
    assert cursor is not None
    assert cursor["deployments"]["since"] == "2026-03-28T10:59:59.999999Z"  # pinned below the running one

    repository.deployments[-1] = deployment_payload(
        "{d-6}",
        production,
        sha=sha(7),
        result="SUCCESSFUL",
        started_on=t(28, 11),
        completed_on=t(28, 12),
        deployer=ADA,
        build_number=6,
    )
    events, cursor = await collect(bitbucket, scope, Resource.DEPLOYMENTS, cursor)
    await bitbucket.aclose()
    assert [(e.deployment_id, e.status, e.commit_shas) for e in events if isinstance(e, DeploymentData)] == [
        ("bitbucket:{r-api}:deployment:{d-6}", "success", [sha(7)])
    ]


async def test_pipeline_fallback_and_next_links_missing_sort(base_url: str, fake: FakeBitbucket) -> None:
    bitbucket = client(base_url, repositories=["acme/web"], page_size=2)
    scope = await scope_named(bitbucket, "acme/web")
    events, cursor = await collect(bitbucket, scope, Resource.DEPLOYMENTS)
    await bitbucket.aclose()
    deployments = {e.deployment_id: e for e in events if isinstance(e, DeploymentData)}
    assert sorted(deployments) == [f"bitbucket:{{r-web}}:pipeline:{{p-{n}}}" for n in (101, 103, 104)]
    assert deployments["bitbucket:{r-web}:pipeline:{p-104}"] == DeploymentData(
        repository=repo("{r-web}", "acme/web"),
        deployment_id="bitbucket:{r-web}:pipeline:{p-104}",
        environment="production",
        status="success",
        started_at=dt(16, 11),
        finished_at=dt(16, 11, 30),
        revision=sha(73),
        commit_shas=[sha(73)],
        deployed_by=BOB_REF,
        url="https://bitbucket.org/acme/web/pipelines/results/104",
    )
    assert deployments["bitbucket:{r-web}:pipeline:{p-103}"].status == "failed"
    assert deployments["bitbucket:{r-web}:pipeline:{p-101}"].commit_shas == [sha(72)]
    second_page = fake.calls("/pipelines/?")[1]
    assert "sort=-created_on" in second_page
    assert "page=2" in second_page
    assert cursor is not None
    assert cursor["source"] == "pipelines"


async def test_tag_fallback(base_url: str) -> None:
    bitbucket = client(base_url, repositories=["acme/lib"])
    scope = await scope_named(bitbucket, "acme/lib")
    events, cursor = await collect(bitbucket, scope, Resource.DEPLOYMENTS)
    await bitbucket.aclose()
    deployments = {e.deployment_id: e for e in events if isinstance(e, DeploymentData)}
    assert sorted(deployments) == ["bitbucket:{r-lib}:tag:v1.0.0", "bitbucket:{r-lib}:tag:v1.1.0"]
    assert deployments["bitbucket:{r-lib}:tag:v1.1.0"] == DeploymentData(
        repository=repo("{r-lib}", "acme/lib"),
        deployment_id="bitbucket:{r-lib}:tag:v1.1.0",
        environment="production",
        status="success",
        started_at=dt(18, 12),
        finished_at=dt(18, 12),
        revision=sha(83),
        commit_shas=[sha(83), sha(82)],
        is_hotfix=True,  # it ships "Revert broken parser"
        url="https://bitbucket.org/acme/lib/src/v1.1.0",
    )
    v1 = deployments["bitbucket:{r-lib}:tag:v1.0.0"]
    assert (v1.started_at, v1.commit_shas, v1.is_hotfix) == (dt(17, 8), [sha(81)], False)
    assert cursor is not None
    assert cursor["source"] == "tags"


# ---- branches and tags ------------------------------------------------------------------------------


def api_refs(fake: FakeBitbucket) -> None:
    repository = fake.repositories["acme/api"]
    by_hash = {c["hash"]: c for c in repository.commits}
    repository.branches = [
        branch_payload("main", by_hash[sha(6)]),
        branch_payload("release/1.x", by_hash[sha(4)]),
        branch_payload("dark-mode", repository.pr_commits[3][0]),
    ]
    repository.tags = [
        tag_payload(
            "v1.1.0",
            by_hash[sha(6)],
            date=t(12, 13),
            message="Release 1.1.0\n",
            tagger="Bob Builder <bob@example.com>",
        ),
        tag_payload("v1.0.0", by_hash[sha(2)]),
    ]


async def test_branches_and_tags(base_url: str, fake: FakeBitbucket) -> None:
    api_refs(fake)
    bitbucket = client(base_url, page_size=2)
    assert Resource.BRANCHES_AND_TAGS in bitbucket.resources
    assert Resource.CONTRIBUTORS not in bitbucket.resources  # no contributors endpoint: not collected
    scope = await scope_named(bitbucket, "acme/api")
    fake.requests.clear()
    events, cursor = await collect(bitbucket, scope, Resource.BRANCHES_AND_TAGS)
    await bitbucket.aclose()
    assert [e for e in events if isinstance(e, BranchData)] == [
        BranchData(repository=API, name="dark-mode", head_sha=sha(31), updated_at=dt(19)),
        BranchData(repository=API, name="main", head_sha=sha(6), is_default=True, updated_at=dt(12, 10)),
        BranchData(repository=API, name="release/1.x", head_sha=sha(4), updated_at=dt(5, 10)),
    ]
    assert [e for e in events if isinstance(e, TagData)] == [
        TagData(repository=API, name="v1.0.0", sha=sha(2), tagged_at=dt(2)),
        TagData(
            repository=API,
            name="v1.1.0",
            sha=sha(6),
            annotated=True,
            tagged_at=dt(12, 13),
            tagger=PersonRef(name="Bob Builder", email="bob@example.com"),
            message="Release 1.1.0\n",
        ),
    ]
    branch_pages = fake.calls("/refs/branches")
    assert len(branch_pages) == 2
    assert all("sort=name" in page for page in branch_pages)  # the `next` link keeps the order
    assert len(fake.calls("/refs/tags")) == 1
    assert len(fake.requests) == 3
    assert cursor == {
        "branches": {"dark-mode": sha(31), "main": sha(6), "release/1.x": sha(4)},
        "tags": {"v1.0.0": sha(2), "v1.1.0": sha(6)},
    }


async def test_refs_gone_from_the_listing_are_published_as_deleted(
    base_url: str, fake: FakeBitbucket
) -> None:
    api_refs(fake)
    repository = fake.repositories["acme/api"]
    bitbucket = client(base_url)
    scope = await scope_named(bitbucket, "acme/api")
    _, cursor = await collect(bitbucket, scope, Resource.BRANCHES_AND_TAGS)
    repository.branches = [b for b in repository.branches if b["name"] != "dark-mode"]
    repository.tags = [t for t in repository.tags if t["name"] != "v1.0.0"]
    events, cursor = await collect(bitbucket, scope, Resource.BRANCHES_AND_TAGS, cursor)
    assert [e for e in events if isinstance(e, BranchData | TagData) and e.deleted] == [
        BranchData(repository=API, name="dark-mode", head_sha=sha(31), deleted=True),
        TagData(repository=API, name="v1.0.0", sha=sha(2), deleted=True),
    ]
    events, _ = await collect(bitbucket, scope, Resource.BRANCHES_AND_TAGS, cursor)
    await bitbucket.aclose()
    assert not [e for e in events if isinstance(e, BranchData | TagData) and e.deleted]


# ---- rate limits, retries, errors -------------------------------------------------------------------


async def test_429_retry_after_is_honoured(base_url: str, fake: FakeBitbucket) -> None:
    sleeps = Sleeps()
    fake.fail(429, times=1, path_contains="/pullrequests", **{"Retry-After": "11"})
    bitbucket = client(base_url, sleeps=sleeps)
    scope = await scope_named(bitbucket, "acme/api")
    events, _ = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
    await bitbucket.aclose()
    assert len([e for e in events if isinstance(e, PullRequestData)]) == 4
    assert sleeps.seconds == [11.0]


async def test_5xx_burst_is_retried(base_url: str, fake: FakeBitbucket) -> None:
    sleeps = Sleeps()
    fake.fail(503, times=2, path_contains="/deployments")
    fake.fail(500, times=1, path_contains="/commits/")
    bitbucket = client(base_url, sleeps=sleeps)
    scope = await scope_named(bitbucket, "acme/api")
    events, _ = await collect(bitbucket, scope, Resource.DEPLOYMENTS)
    await bitbucket.aclose()
    assert len([e for e in events if isinstance(e, DeploymentData)]) == 4
    assert len(sleeps.seconds) == 3


async def test_bad_credentials_are_a_collector_error_with_hint(base_url: str) -> None:
    bitbucket = client(base_url, credentials="ada:revoked-password")
    with pytest.raises(CollectorError) as error:
        await bitbucket.list_scopes()
    await bitbucket.aclose()
    assert "401" in str(error.value)
    assert "revoked" in error.value.hint
    assert "credentialsSecretRef" in error.value.hint


async def test_unknown_repository_fails_alone(base_url: str) -> None:
    bitbucket = client(base_url, repositories=["acme/api", "acme/missing", "ghost/*"])
    scopes = await bitbucket.list_scopes()
    assert [s.name for s in scopes] == ["acme/api", "acme/missing", "ghost/*"]
    collected: dict[str, int] = {}
    errors: dict[str, CollectorError] = {}
    for scope in scopes:
        try:
            events, _ = await collect(bitbucket, scope, Resource.PULL_REQUESTS)
            collected[scope.name] = len(events)
        except CollectorError as exc:
            errors[scope.name] = exc
    await bitbucket.aclose()
    assert collected == {"acme/api": 4 + 3 + 3}  # pull requests, reviews, merged ones' own commits
    assert set(errors) == {"acme/missing", "ghost/*"}
    assert errors["acme/missing"].scope == "acme/missing"
    assert "spec.scope.repositories" in errors["acme/missing"].hint
