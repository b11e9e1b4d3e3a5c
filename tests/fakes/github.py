"""A fake GitHub: REST v3 and GraphQL v4 over real HTTP, from a small in-memory model.

Payloads follow GitHub's documented shapes (field names of repositories, deployments, deployment
statuses, environments, workflow runs, compare, commits, contributors, pull requests and reviews;
GraphQL's refs, releases, `pageInfo { hasNextPage endCursor }`, `rateLimit`, `errors[].type`), and so
does the transport: `Link` pagination with `page`/`per_page`, 204 for an empty repository's
contributors, `x-ratelimit-*` headers with per-resource budgets (REST `core` and `graphql`), `ETag`
+ 304 for a matching `If-None-Match` (free, as on GitHub), 401 for a bad token, primary-limit 403s
until the reset, secondary-limit 403s with `Retry-After`, and 5xx bursts — the last three on demand
(`FakeGitHub.inject`).

GraphQL is interpreted minimally: the operation is recognised by name (`operationName`, or the name
in the document) and answered from its variables with every field the client's documents select;
nothing else of GraphQL is implemented. Both URL layouts are served: github.com's (`/repos/…`,
`/graphql`) and Enterprise Server's (`/api/v3/repos/…`, `/api/graphql`).

It scales to the benchmark's 10k pull requests and 100k commits: lists are kept sorted and pages
are sliced, never filtered from scratch per request where it matters.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Json = dict[str, Any]
WEB = "https://github.com"


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def fake_sha(*parts: object) -> str:
    return hashlib.sha1("/".join(str(p) for p in parts).encode()).hexdigest()  # noqa: S324 - ids


# -- the model -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    login: str
    id: int
    name: str | None = None
    email: str | None = None
    type: str = "User"
    account: bool = True  # False: a commit author whose email maps to no GitHub account


@dataclass(slots=True)
class Commit:
    sha: str
    message: str
    author: Person
    authored_at: datetime
    committed_at: datetime
    parents: list[str] = field(default_factory=list)
    additions: int = 1
    deletions: int = 0
    changed_files: int = 1


@dataclass(slots=True)
class Review:
    id: int
    author: Person | None
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
    submitted_at: datetime | None
    comments: int = 0


@dataclass(slots=True)
class PullRequest:
    number: int
    title: str
    author: Person | None
    created_at: datetime
    updated_at: datetime
    state: str = "OPEN"  # OPEN, CLOSED, MERGED
    merged_at: datetime | None = None
    closed_at: datetime | None = None
    merge_commit_sha: str | None = None
    head_ref: str = "feature"
    base_ref: str = "main"
    commits: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    additions: int = 10
    deletions: int = 2
    changed_files: int = 1


@dataclass(slots=True)
class DeploymentStatus:
    id: int
    state: str  # error, failure, inactive, in_progress, queued, pending, success
    created_at: datetime
    description: str = ""
    environment_url: str = ""
    log_url: str = ""


@dataclass(slots=True)
class Deployment:
    id: int
    sha: str
    environment: str
    created_at: datetime
    creator: Person
    ref: str = "main"
    task: str = "deploy"
    description: str = ""
    statuses: list[DeploymentStatus] = field(default_factory=list)
    state: str | None = None  # GraphQL DeploymentState kept after statuses expire (90 days)

    @property
    def node_id(self) -> str:
        return f"DE_kwDO{self.id:010d}"


@dataclass(slots=True)
class WorkflowRun:
    id: int
    name: str
    head_sha: str
    created_at: datetime
    updated_at: datetime
    actor: Person
    head_branch: str = "main"
    conclusion: str | None = "success"
    status: str = "completed"
    event: str = "push"
    display_title: str = ""
    message: str = ""
    run_number: int = 1


@dataclass(slots=True)
class Tag:
    name: str
    sha: str
    tagger: Person | None = None  # None: a lightweight tag
    tagged_at: datetime | None = None
    message: str | None = None


@dataclass(slots=True)
class Release:
    id: int
    tag_name: str
    author: Person
    created_at: datetime
    published_at: datetime | None = None  # None: a draft
    name: str | None = None
    prerelease: bool = False


@dataclass
class Repo:
    owner: Person
    name: str
    id: int
    default_branch: str = "main"
    private: bool = True
    archived: bool = False
    created_at: datetime = field(default_factory=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    commits: dict[str, Commit] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # default branch, oldest first
    pulls: dict[int, PullRequest] = field(default_factory=dict)
    deployments: list[Deployment] = field(default_factory=list)
    runs: list[WorkflowRun] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)  # besides the default branch: name → head
    releases: list[Release] = field(default_factory=list)
    environments: list[str] | None = None  # None: every environment deployed to
    _position: dict[str, int] = field(default_factory=dict, repr=False)
    _pulls_by_update: list[PullRequest] | None = field(default=None, repr=False)

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    # Mutators keep the derived indexes right; tests and generators use only these.

    def add_commit(self, commit: Commit, *, on_default_branch: bool = True) -> Commit:
        self.commits[commit.sha] = commit
        if on_default_branch:
            if self.history:
                commit.parents = commit.parents or [self.history[-1]]
            self._position[commit.sha] = len(self.history)
            self.history.append(commit.sha)
        return commit

    def add_pull(self, pull: PullRequest) -> PullRequest:
        self.pulls[pull.number] = pull
        self._pulls_by_update = None
        return pull

    def touch_pull(self, number: int, updated_at: datetime) -> PullRequest:
        pull = self.pulls[number]
        pull.updated_at = updated_at
        self._pulls_by_update = None
        return pull

    def pulls_by_update(self) -> list[PullRequest]:
        if self._pulls_by_update is None:
            self._pulls_by_update = sorted(
                self.pulls.values(), key=lambda p: (p.updated_at, p.number), reverse=True
            )
        return self._pulls_by_update

    def position(self, sha: str) -> int | None:
        return self._position.get(sha)

    def heads(self) -> dict[str, str]:
        """Every branch and its head commit, the default branch's being the history's last."""
        default = {self.default_branch: self.history[-1]} if self.history else {}
        return {**self.branches, **default}

    def environment_names(self) -> list[str]:
        if self.environments is not None:
            return list(self.environments)
        return sorted({d.environment for d in self.deployments})


class FakeGitHub:
    """The in-memory GitHub: accounts, repositories, tokens, budgets and injected failures."""

    def __init__(
        self,
        *,
        token: str = "ghp_fake",  # noqa: S107 - the fake's only token
        rate_limit: int = 5000,
        login: str = "octocat",
    ) -> None:
        self.tokens = {token}
        self.rate_limit = rate_limit
        self.people: dict[str, Person] = {}
        self.orgs: set[str] = set()
        self.repos: dict[str, Repo] = {}
        self._ids = itertools.count(1000)
        self.viewer = self.person(login)
        self.calls: Counter[str] = Counter()
        self.not_modified = 0
        self.violations = 0  # requests that arrived while the client had been told to wait
        self._budgets: dict[str, tuple[int, float]] = {}  # resource -> (used, reset)
        self._blocked_until: dict[str, float] = {}  # resource -> time (primary limit)
        self._secondary_until = 0.0
        self._failures: list[Json] = []
        self._lock = threading.Lock()
        self.legacy_schema = False  # an old Enterprise Server without changedFilesIfAvailable

    # -- building the model ----------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def person(self, login: str, name: str | None = None, email: str | None = None) -> Person:
        if login not in self.people:
            self.people[login] = Person(
                login, self.next_id(), name or login.title(), email or f"{login}@example.com"
            )
        return self.people[login]

    def org(self, login: str) -> Person:
        self.orgs.add(login)
        org = self.person(login)
        org.type = "Organization"
        return org

    def repo(self, owner: str, name: str, **options: Any) -> Repo:
        account = self.people.get(owner) or (self.org(owner) if owner != self.viewer.login else self.viewer)
        repo = Repo(owner=account, name=name, id=self.next_id(), **options)
        self.repos[repo.full_name.lower()] = repo
        return repo

    # -- failure injection -----------------------------------------------------------------------

    def inject(
        self, kind: str, *, count: int = 1, path: str = "", status: int = 502, seconds: float = 1.0
    ) -> None:
        """Queue failures for the next matching requests (`path` is a substring of the URL path;
        "graphql" matches GraphQL calls): `5xx` (status), `secondary` (403 + Retry-After seconds),
        `primary` (budget exhausted until seconds from now), `graphql_rate_limited` (GraphQL's 200
        with errors[].type RATE_LIMITED until seconds from now)."""
        with self._lock:
            self._failures.extend(
                {"kind": kind, "path": path, "status": status, "seconds": seconds} for _ in range(count)
            )

    def revoke(self, token: str) -> None:
        self.tokens.discard(token)

    def total_calls(self, prefix: str = "") -> int:
        return sum(n for key, n in self.calls.items() if key.startswith(prefix))

    # -- budget ----------------------------------------------------------------------------------

    def _budget(self, resource: str) -> tuple[int, float]:
        used, reset = self._budgets.get(resource, (0, time.time() + 3600))
        if time.time() >= reset:
            used, reset = 0, time.time() + 3600
        self._budgets[resource] = (used, reset)
        return used, reset

    def _charge(self, resource: str) -> None:
        used, reset = self._budget(resource)
        self._budgets[resource] = (used + 1, reset)

    def rate_headers(self, resource: str) -> dict[str, str]:
        used, reset = self._budget(resource)
        blocked = self._blocked_until.get(resource, 0.0)
        remaining = 0 if time.time() < blocked else max(0, self.rate_limit - used)
        if time.time() < blocked:
            reset = blocked
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-reset": str(int(reset) if reset == int(reset) else int(reset) + 1),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": resource,
        }

    def _take_failure(self, path: str, is_graphql: bool) -> Json | None:
        with self._lock:
            for index, failure in enumerate(self._failures):
                wanted = failure["path"]
                if wanted == "graphql" and not is_graphql:
                    continue
                if wanted and wanted != "graphql" and wanted not in path:
                    continue
                if failure["kind"] == "graphql_rate_limited" and not is_graphql:
                    continue
                return self._failures.pop(index)
        return None


# -- the ASGI app --------------------------------------------------------------------------------


def create_app(fake: FakeGitHub) -> Starlette:
    async def endpoint(request: Request) -> Response:
        return await _Handler(fake, request).handle()

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])


class _Handler:
    def __init__(self, fake: FakeGitHub, request: Request) -> None:
        self.fake = fake
        self.request = request
        path = request.url.path
        self.api_prefix = "/api/v3" if path.startswith("/api/") else ""
        for prefix in ("/api/v3", "/api"):
            if path.startswith(prefix + "/"):
                path = path[len(prefix) :]
                break
        self.path = path.rstrip("/") or "/"
        self.is_graphql = self.path == "/graphql"
        self.resource = "graphql" if self.is_graphql else "core"
        self.query = request.query_params

    # -- transport concerns ----------------------------------------------------------------------

    async def handle(self) -> Response:
        fake = self.fake
        now = time.time()
        token = _token(self.request.headers.get("authorization", ""))
        if token not in fake.tokens:
            fake.calls["401"] += 1
            return self.json(
                {
                    "message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest",
                    "status": "401",
                },
                status=401,
            )
        if now < fake._secondary_until or now < fake._blocked_until.get(self.resource, 0.0):
            fake.violations += 1
        failure = fake._take_failure(self.path, self.is_graphql)
        if failure is not None:
            response = self.failure(failure)
            if response is not None:
                return response
        if now < fake._secondary_until:
            return self.secondary_limit(fake._secondary_until - now)
        if now < fake._blocked_until.get(self.resource, 0.0):
            return self.primary_limit()
        used, _ = fake._budget(self.resource)
        if used >= fake.rate_limit:
            fake._blocked_until[self.resource] = fake._budget(self.resource)[1]
            return self.primary_limit()
        if self.is_graphql and self.request.method == "POST":
            body = orjson.loads(await self.request.body())
            operation = body.get("operationName") or _operation_name(body.get("query") or "")
            fake.calls[f"graphql {operation}"] += 1
            fake._charge("graphql")
            return self.json(
                _GraphQL(fake, self).answer(operation, body.get("query") or "", body.get("variables") or {})
            )
        return self.rest()

    def failure(self, failure: Json) -> Response | None:
        fake, kind = self.fake, failure["kind"]
        fake.calls[f"injected {kind}"] += 1
        if kind == "5xx":
            return self.json({"message": "Server Error"}, status=int(failure["status"]), charge=False)
        if kind == "secondary":
            fake._secondary_until = time.time() + float(failure["seconds"])
            return self.secondary_limit(float(failure["seconds"]))
        if kind in ("primary", "graphql_rate_limited"):
            fake._blocked_until[self.resource] = time.time() + float(failure["seconds"])
            return self.primary_limit()
        return None

    def secondary_limit(self, seconds: float) -> Response:
        return self.json(
            {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again. If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": "403",
            },
            status=403,
            headers={"retry-after": str(max(1, round(seconds)))},
            charge=False,
        )

    def primary_limit(self) -> Response:
        message = f"API rate limit exceeded for user ID {self.fake.viewer.id}."
        if self.is_graphql:
            # GraphQL reports its exhausted budget inside a 200, as errors[].type RATE_LIMITED.
            return self.json(
                {"data": None, "errors": [{"type": "RATE_LIMITED", "message": message}]}, charge=False
            )
        return self.json(
            {
                "message": message
                + " If you reach out to GitHub Support for help, please include the request ID.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                "status": "403",
            },
            status=403,
            charge=False,
        )

    def json(
        self,
        payload: Any,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        charge: bool = True,
    ) -> Response:
        body = orjson.dumps(payload)
        out = {
            "content-type": "application/json; charset=utf-8",
            "x-github-media-type": "github.v3; format=json",
            "x-github-request-id": hashlib.md5(body).hexdigest()[:16].upper(),  # noqa: S324
            **(headers or {}),
        }
        if status == 200 and self.request.method == "GET":
            etag = f'W/"{hashlib.sha256(body).hexdigest()[:40]}"'
            out["etag"] = etag
            if self.request.headers.get("if-none-match") == etag:
                self.fake.not_modified += 1
                out.update(self.fake.rate_headers(self.resource))
                return Response(
                    status_code=304, headers={k: v for k, v in out.items() if k != "content-type"}
                )
        if charge and status < 500:
            self.fake._charge(self.resource)
        out.update(self.fake.rate_headers(self.resource))
        return Response(body, status_code=status, headers=out)

    def not_found(self) -> Response:
        return self.json(
            {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"},
            status=404,
        )

    def paged(self, items: list[Any], wrap: Callable[[list[Any]], Any] | None = None) -> Response:
        """Slice by `page`/`per_page` and announce the neighbours in `Link`, as GitHub does."""
        per_page = max(1, min(100, int(self.query.get("per_page", 30))))
        page = max(1, int(self.query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        if page < last:
            links += [f'<{self.page_url(page + 1)}>; rel="next"', f'<{self.page_url(last)}>; rel="last"']
        if page > 1:
            links = [f'<{self.page_url(page - 1)}>; rel="prev"', *links, f'<{self.page_url(1)}>; rel="first"']
        headers = {"link": ", ".join(links)} if links else {}
        return self.json(wrap(chunk) if wrap else chunk, headers=headers)

    def page_url(self, page: int) -> str:
        params = dict(self.query)
        params["page"] = str(page)
        base = str(self.request.url.replace(query=""))
        return f"{base}?{urlencode(params)}"

    def api(self, path: str) -> str:
        return f"{self.request.url.scheme}://{self.request.url.netloc}{self.api_prefix}{path}"

    # -- REST routes -----------------------------------------------------------------------------

    def rest(self) -> Response:
        fake, path = self.fake, self.path
        for pattern, name, handler in self.routes():
            match = pattern.fullmatch(path)
            if match is None:
                continue
            fake.calls[f"GET {name}"] += 1
            groups = match.groupdict()
            if "owner" in groups:
                repo = fake.repos.get(f"{groups['owner']}/{groups['repo']}".lower())
                if repo is None:
                    return self.not_found()
                return handler(repo, **{k: v for k, v in groups.items() if k not in ("owner", "repo")})
            return handler(**groups)
        fake.calls[f"GET {path} (unknown)"] += 1
        return self.not_found()

    def routes(self) -> list[tuple[re.Pattern[str], str, Callable[..., Response]]]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        return [
            (re.compile(r"/user"), "/user", lambda: self.json(self.user(self.fake.viewer))),
            (re.compile(r"/user/repos"), "/user/repos", self.user_repos),
            (re.compile(r"/orgs/(?P<org>[^/]+)/repos"), "/orgs/{org}/repos", self.org_repos),
            (re.compile(r"/users/(?P<login>[^/]+)/repos"), "/users/{user}/repos", self.users_repos),
            (re.compile(repo), "/repos/{o}/{r}", lambda r: self.json(self.repository(r))),
            (re.compile(repo + r"/environments"), "/repos/{o}/{r}/environments", self.environments),
            (re.compile(repo + r"/deployments"), "/repos/{o}/{r}/deployments", self.deployments),
            (
                re.compile(repo + r"/deployments/(?P<deployment_id>\d+)/statuses"),
                "/repos/{o}/{r}/deployments/{id}/statuses",
                self.statuses,
            ),
            (re.compile(repo + r"/actions/runs"), "/repos/{o}/{r}/actions/runs", self.runs),
            (
                re.compile(repo + r"/compare/(?P<basehead>.+)"),
                "/repos/{o}/{r}/compare/{basehead}",
                self.compare,
            ),
            (re.compile(repo + r"/commits"), "/repos/{o}/{r}/commits", self.commits),
            (re.compile(repo + r"/contributors"), "/repos/{o}/{r}/contributors", self.contributors),
            (re.compile(repo + r"/pulls"), "/repos/{o}/{r}/pulls", self.pulls),
            (
                re.compile(repo + r"/pulls/(?P<number>\d+)/reviews"),
                "/repos/{o}/{r}/pulls/{n}/reviews",
                self.reviews,
            ),
            (
                re.compile(repo + r"/pulls/(?P<number>\d+)/commits"),
                "/repos/{o}/{r}/pulls/{n}/commits",
                self.pull_commits,
            ),
        ]

    def visible(self) -> list[Repo]:
        return sorted(self.fake.repos.values(), key=lambda r: r.full_name.lower())

    def user_repos(self) -> Response:
        repos = self.visible()
        if self.query.get("affiliation") == "owner":
            repos = [r for r in repos if r.owner.login == self.fake.viewer.login]
        return self.paged([self.repository(r) for r in repos])

    def org_repos(self, org: str) -> Response:
        if org not in self.fake.orgs:
            return self.not_found()
        return self.paged([self.repository(r) for r in self.visible() if r.owner.login == org])

    def users_repos(self, login: str) -> Response:
        if login not in self.fake.people:
            return self.not_found()
        return self.paged(
            [self.repository(r) for r in self.visible() if r.owner.login == login and not r.private]
        )

    def environments(self, repo: Repo) -> Response:
        names = repo.environment_names()
        items: list[Json] = [
            {
                "id": 9000 + i,
                "node_id": f"EN_kwDO{repo.id}{i}",
                "name": name,
                "url": self.api(f"/repos/{repo.full_name}/environments/{name}"),
                "html_url": f"{WEB}/{repo.full_name}/deployments/activity_log?environments_filter={name}",
                "created_at": iso(repo.created_at),
                "updated_at": iso(repo.created_at),
                "protection_rules": [],
                "deployment_branch_policy": None,
            }
            for i, name in enumerate(names)
        ]
        return self.paged(items, lambda chunk: {"total_count": len(items), "environments": chunk})

    def deployments(self, repo: Repo) -> Response:
        items = sorted(repo.deployments, key=lambda d: d.id, reverse=True)
        for key in ("environment", "sha", "ref", "task"):
            if key in self.query:
                items = [d for d in items if getattr(d, key) == self.query[key]]
        return self.paged([self.deployment(repo, d) for d in items])

    def statuses(self, repo: Repo, deployment_id: str) -> Response:
        deployment = next((d for d in repo.deployments if d.id == int(deployment_id)), None)
        if deployment is None:
            return self.not_found()
        items = sorted(deployment.statuses, key=lambda s: (s.created_at, s.id), reverse=True)
        return self.paged([self.status(repo, deployment, s) for s in items])

    def runs(self, repo: Repo) -> Response:
        items = sorted(repo.runs, key=lambda r: (r.created_at, r.id), reverse=True)
        if "branch" in self.query:
            items = [r for r in items if r.head_branch == self.query["branch"]]
        if "event" in self.query:
            items = [r for r in items if r.event == self.query["event"]]
        if "status" in self.query:
            wanted = self.query["status"]
            items = [r for r in items if wanted in (r.status, r.conclusion)]
        if "created" in self.query:
            items = [r for r in items if _date_filter(self.query["created"], r.created_at)]
        total = len(items)
        items = items[:1000]  # GitHub returns at most 1,000 runs for a filtered listing
        return self.paged(
            [self.run(repo, r) for r in items], lambda chunk: {"total_count": total, "workflow_runs": chunk}
        )

    def compare(self, repo: Repo, basehead: str) -> Response:
        base, _, head = basehead.partition("...")
        base_pos, head_pos = repo.position(base), repo.position(head)
        if base_pos is None or head_pos is None:
            return self.not_found()
        if head_pos > base_pos:
            status, shas = "ahead", repo.history[base_pos + 1 : head_pos + 1]
        elif head_pos < base_pos:
            status, shas = "behind", []
        else:
            status, shas = "identical", []
        commits = [self.commit(repo, repo.commits[s]) for s in shas]
        document: Json = {
            "url": self.api(f"/repos/{repo.full_name}/compare/{basehead}"),
            "html_url": f"{WEB}/{repo.full_name}/compare/{basehead}",
            "permalink_url": f"{WEB}/{repo.full_name}/compare/{base[:7]}...{head[:7]}",
            "diff_url": f"{WEB}/{repo.full_name}/compare/{basehead}.diff",
            "patch_url": f"{WEB}/{repo.full_name}/compare/{basehead}.patch",
            "base_commit": self.commit(repo, repo.commits[base]),
            "merge_base_commit": self.commit(repo, repo.commits[repo.history[min(base_pos, head_pos)]]),
            "status": status,
            "ahead_by": len(shas),
            "behind_by": max(0, base_pos - head_pos),
            "total_commits": len(shas),
        }
        if "per_page" not in self.query and "page" not in self.query:
            # Unpaged: at most 250 commits, the last one being the most recent of the comparison.
            return self.json({**document, "commits": commits[-250:], "files": []})
        first_page = int(self.query.get("page", 1)) == 1
        return self.paged(
            commits, lambda chunk: {**document, "commits": chunk, **({"files": []} if first_page else {})}
        )

    def commits(self, repo: Repo) -> Response:
        sha = self.query.get("sha", repo.default_branch)
        head = repo.position(sha) if sha != repo.default_branch else len(repo.history) - 1
        if head is None:
            return self.not_found()
        newest_first = repo.history[head::-1]
        if "since" in self.query:
            since = parse_iso(self.query["since"])
            newest_first = list(
                itertools.takewhile(lambda s: repo.commits[s].committed_at >= since, newest_first)
            )
        return self.paged_lazy(newest_first, lambda s: self.commit(repo, repo.commits[s]))

    def contributors(self, repo: Repo) -> Response:
        """Commit counts per account on the default branch, most first (then by login); authors
        without an account only with `anon=1` (`type` Anonymous, by email); 204 for no commits."""
        if not repo.history:
            self.fake._charge(self.resource)
            return Response(status_code=204, headers=self.fake.rate_headers(self.resource))
        counts: Counter[str] = Counter()
        people: dict[str, Person] = {}
        for sha in repo.history:
            author = repo.commits[sha].author
            key = author.login if author.account else f"anon:{author.email}"
            counts[key] += 1
            people[key] = author
        anonymous = self.query.get("anon") in ("1", "true")
        items: list[Json] = []
        for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            author = people[key]
            if author.account:
                items.append({**(self.user(author) or {}), "contributions": count})
            elif anonymous:
                items.append(
                    {"email": author.email, "name": author.name, "type": "Anonymous", "contributions": count}
                )
        return self.paged(items)

    def paged_lazy(self, keys: list[Any], render: Callable[[Any], Any]) -> Response:
        """`paged` for big lists: render only the requested page."""
        per_page = max(1, min(100, int(self.query.get("per_page", 30))))
        page = max(1, int(self.query.get("page", 1)))
        window = keys[(page - 1) * per_page : page * per_page]
        placeholder: list[Any] = [None] * len(keys)
        placeholder[(page - 1) * per_page : (page - 1) * per_page + len(window)] = [render(k) for k in window]
        return self.paged(placeholder)

    def pulls(self, repo: Repo) -> Response:
        items = (
            repo.pulls_by_update()
            if self.query.get("sort") == "updated"
            else sorted(repo.pulls.values(), key=lambda p: -p.number)
        )
        state = self.query.get("state", "open")
        if state != "all":
            items = [p for p in items if (p.state == "OPEN") == (state == "open")]
        if self.query.get("direction") == "asc":
            items = list(reversed(items))
        return self.paged_lazy(items, lambda p: self.pull(repo, p))

    def reviews(self, repo: Repo, number: str) -> Response:
        pull = repo.pulls.get(int(number))
        if pull is None:
            return self.not_found()
        return self.paged([self.review(repo, pull, r) for r in pull.reviews])

    def pull_commits(self, repo: Repo, number: str) -> Response:
        pull = repo.pulls.get(int(number))
        if pull is None:
            return self.not_found()
        return self.paged([self.commit(repo, repo.commits[s]) for s in pull.commits[:250]])

    # -- REST documents --------------------------------------------------------------------------

    def user(self, person: Person | None) -> Json | None:
        if person is None:
            return None
        return {
            "login": person.login,
            "id": person.id,
            "node_id": f"U_kgDO{person.id:08d}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{person.id}?v=4",
            "gravatar_id": "",
            "url": self.api(f"/users/{person.login}"),
            "html_url": f"{WEB}/{person.login}",
            "type": person.type,
            "site_admin": False,
        }

    def repository(self, repo: Repo) -> Json:
        return {
            "id": repo.id,
            "node_id": f"R_kgDO{repo.id:08d}",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user(repo.owner),
            "html_url": f"{WEB}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": self.api(f"/repos/{repo.full_name}"),
            "archived": repo.archived,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "default_branch": repo.default_branch,
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
            "pushed_at": iso(repo.commits[repo.history[-1]].committed_at) if repo.history else None,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def deployment(self, repo: Repo, d: Deployment) -> Json:
        url = self.api(f"/repos/{repo.full_name}/deployments/{d.id}")
        updated = max([d.created_at, *(s.created_at for s in d.statuses)])
        return {
            "url": url,
            "id": d.id,
            "node_id": d.node_id,
            "sha": d.sha,
            "ref": d.ref,
            "task": d.task,
            "payload": {},
            "original_environment": d.environment,
            "environment": d.environment,
            "description": d.description or None,
            "creator": self.user(d.creator),
            "created_at": iso(d.created_at),
            "updated_at": iso(updated),
            "statuses_url": f"{url}/statuses",
            "repository_url": self.api(f"/repos/{repo.full_name}"),
            "transient_environment": False,
            "production_environment": d.environment.lower() in ("production", "prod"),
        }

    def status(self, repo: Repo, d: Deployment, s: DeploymentStatus) -> Json:
        url = self.api(f"/repos/{repo.full_name}/deployments/{d.id}")
        return {
            "url": f"{url}/statuses/{s.id}",
            "id": s.id,
            "node_id": f"DES_kwDO{s.id:010d}",
            "state": s.state,
            "creator": self.user(d.creator),
            "description": s.description,
            "environment": d.environment,
            "target_url": s.log_url,
            "created_at": iso(s.created_at),
            "updated_at": iso(s.created_at),
            "deployment_url": url,
            "repository_url": self.api(f"/repos/{repo.full_name}"),
            "environment_url": s.environment_url,
            "log_url": s.log_url,
        }

    def run(self, repo: Repo, r: WorkflowRun) -> Json:
        url = self.api(f"/repos/{repo.full_name}/actions/runs/{r.id}")
        commit = repo.commits.get(r.head_sha)
        minimal = {
            "id": repo.id,
            "node_id": f"R_kgDO{repo.id:08d}",
            "name": repo.name,
            "full_name": repo.full_name,
        }
        return {
            "id": r.id,
            "name": r.name,
            "node_id": f"WFR_kwLO{r.id:010d}",
            "check_suite_id": r.id * 10,
            "check_suite_node_id": f"CS_kwDO{r.id:010d}",
            "head_branch": r.head_branch,
            "head_sha": r.head_sha,
            "path": f".github/workflows/{r.name.lower().replace(' ', '-')}.yml",
            "display_title": r.display_title or (commit.message.split("\n")[0] if commit else r.name),
            "run_number": r.run_number,
            "event": r.event,
            "status": r.status,
            "conclusion": r.conclusion,
            "workflow_id": zlib.crc32(r.name.encode()) % 10**8,
            "url": url,
            "html_url": f"{WEB}/{repo.full_name}/actions/runs/{r.id}",
            "pull_requests": [],
            "created_at": iso(r.created_at),
            "updated_at": iso(r.updated_at),
            "actor": self.user(r.actor),
            "run_attempt": 1,
            "run_started_at": iso(r.created_at),
            "triggering_actor": self.user(r.actor),
            "jobs_url": f"{url}/jobs",
            "logs_url": f"{url}/logs",
            "head_commit": {
                "id": r.head_sha,
                "tree_id": fake_sha("tree", r.head_sha),
                "message": r.message or (commit.message if commit else ""),
                "timestamp": iso(commit.committed_at if commit else r.created_at),
                "author": {"name": commit.author.name, "email": commit.author.email} if commit else None,
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
            "repository": minimal,
            "head_repository": minimal,
        }

    def commit(self, repo: Repo, c: Commit) -> Json:
        api = self.api(f"/repos/{repo.full_name}")
        signature = {"name": c.author.name, "email": c.author.email, "date": iso(c.authored_at)}
        return {
            "url": f"{api}/commits/{c.sha}",
            "sha": c.sha,
            "node_id": f"C_kwDO{c.sha[:12]}",
            "html_url": f"{WEB}/{repo.full_name}/commit/{c.sha}",
            "comments_url": f"{api}/commits/{c.sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{c.sha}",
                "author": signature,
                "committer": {**signature, "date": iso(c.committed_at)},
                "message": c.message,
                "tree": {"url": f"{api}/git/trees/{fake_sha('tree', c.sha)}", "sha": fake_sha("tree", c.sha)},
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "author": self.user(c.author) if c.author.account else None,
            "committer": self.user(c.author) if c.author.account else None,
            "parents": [
                {"url": f"{api}/commits/{p}", "sha": p, "html_url": f"{WEB}/{repo.full_name}/commit/{p}"}
                for p in c.parents
            ],
        }

    def pull(self, repo: Repo, p: PullRequest) -> Json:
        api = self.api(f"/repos/{repo.full_name}")
        head_sha = p.commits[-1] if p.commits else (repo.history[-1] if repo.history else fake_sha(p.number))
        return {
            "url": f"{api}/pulls/{p.number}",
            "id": p.number * 1000 + repo.id,
            "node_id": f"PR_kwDO{repo.id:06d}{p.number:06d}",
            "html_url": f"{WEB}/{repo.full_name}/pull/{p.number}",
            "number": p.number,
            "state": "open" if p.state == "OPEN" else "closed",
            "locked": False,
            "title": p.title,
            "user": self.user(p.author),
            "body": None,
            "labels": [],
            "milestone": None,
            "created_at": iso(p.created_at),
            "updated_at": iso(p.updated_at),
            "closed_at": iso(p.closed_at),
            "merged_at": iso(p.merged_at),
            "merge_commit_sha": p.merge_commit_sha,
            "draft": False,
            "head": {
                "label": f"{repo.owner.login}:{p.head_ref}",
                "ref": p.head_ref,
                "sha": head_sha,
                "user": self.user(repo.owner),
            },
            "base": {
                "label": f"{repo.owner.login}:{p.base_ref}",
                "ref": p.base_ref,
                "sha": repo.history[-1] if repo.history else head_sha,
                "user": self.user(repo.owner),
            },
            "author_association": "MEMBER",
        }

    def review(self, repo: Repo, p: PullRequest, r: Review) -> Json:
        return {
            "id": r.id,
            "node_id": f"PRR_kwDO{r.id:010d}",
            "user": self.user(r.author),
            "body": "",
            "state": r.state,
            "html_url": f"{WEB}/{repo.full_name}/pull/{p.number}#pullrequestreview-{r.id}",
            "pull_request_url": self.api(f"/repos/{repo.full_name}/pulls/{p.number}"),
            "author_association": "MEMBER",
            "submitted_at": iso(r.submitted_at),
            "commit_id": p.commits[-1] if p.commits else None,
        }


# -- GraphQL -------------------------------------------------------------------------------------


class _GraphQL:
    """Answers the client's named operations from their variables (see the module docstring)."""

    def __init__(self, fake: FakeGitHub, handler: _Handler) -> None:
        self.fake = fake
        self.handler = handler

    def answer(self, operation: str, query: str, variables: Json) -> Json:
        method = getattr(self, f"op_{operation}", None)
        if method is None:
            return {"errors": [{"message": f"fake GitHub does not know operation {operation!r}"}]}
        if (
            self.fake.legacy_schema
            and "changedFilesIfAvailable" in query
            and "changedFilesIfAvailable: changedFiles" not in query
        ):
            return {
                "errors": [
                    {
                        "path": [
                            f"query {operation}",
                            *_COMMIT_PATHS.get(operation, ()),
                            "changedFilesIfAvailable",
                        ],
                        "extensions": {
                            "code": "undefinedField",
                            "typeName": "Commit",
                            "fieldName": "changedFilesIfAvailable",
                        },
                        "locations": [{"line": 12, "column": 9}],
                        "message": "Field 'changedFilesIfAvailable' doesn't exist on type 'Commit'",
                    }
                ]
            }
        repo = None
        if "owner" in variables:
            repo = self.fake.repos.get(f"{variables['owner']}/{variables['name']}".lower())
            if repo is None:
                full = f"{variables['owner']}/{variables['name']}"
                return {
                    "data": {"rateLimit": self.rate_limit(), "repository": None},
                    "errors": [
                        {
                            "type": "NOT_FOUND",
                            "path": ["repository"],
                            "locations": [{"line": 3, "column": 3}],
                            "message": f"Could not resolve to a Repository with the name '{full}'.",
                        }
                    ],
                }
        data = method(repo, variables) if repo is not None else method(variables)
        return {"data": {"rateLimit": self.rate_limit(), **data}}

    def rate_limit(self) -> Json:
        headers = self.fake.rate_headers("graphql")
        reset = datetime.fromtimestamp(int(headers["x-ratelimit-reset"]), UTC)
        return {"cost": 1, "remaining": int(headers["x-ratelimit-remaining"]), "resetAt": iso(reset)}

    # -- operations ------------------------------------------------------------------------------

    def op_CommitHistory(self, repo: Repo, v: Json) -> Json:  # noqa: N802 - named after the operation
        rev = v["rev"]
        head: int | None
        if rev in (repo.default_branch, "HEAD", f"refs/heads/{repo.default_branch}"):
            head = len(repo.history) - 1
        else:
            head = repo.position(rev) if rev in repo.commits else None
        if head is None or head < 0:
            return {"repository": {"object": None}}
        head_sha = repo.history[head]
        offset = _decode_offset(v.get("after"), head_sha)
        size = _first(v, "pageSize")
        since = parse_iso(v["since"]) if v.get("since") else None
        start = head - offset
        nodes: list[Json] = []
        index = start
        while index >= 0 and len(nodes) < size:
            commit = repo.commits[repo.history[index]]
            if since is not None and commit.committed_at < since:
                index = -1
                break
            nodes.append(self.commit(commit))
            index -= 1
        has_next = index >= 0 and (since is None or repo.commits[repo.history[index]].committed_at >= since)
        end = offset + len(nodes)
        return {
            "repository": {
                "object": {
                    "oid": head_sha,
                    "history": {
                        "pageInfo": {
                            "hasNextPage": has_next,
                            "endCursor": f"{head_sha} {end - 1}" if nodes else None,
                        },
                        "nodes": nodes,
                    },
                }
            }
        }

    def op_PullRequests(self, repo: Repo, v: Json) -> Json:  # noqa: N802
        ordered = repo.pulls_by_update()
        offset = _decode_cursor(v.get("after"))
        size = _first(v, "pageSize")
        page = ordered[offset : offset + size]
        return {
            "repository": {
                "pullRequests": {
                    "pageInfo": {
                        "hasNextPage": offset + size < len(ordered),
                        "endCursor": _cursor(offset + len(page)) if page else None,
                    },
                    "nodes": [
                        self.pull(repo, p, _first(v, "commitsFirst"), _first(v, "reviewsFirst")) for p in page
                    ],
                }
            }
        }

    def op_PullRequestCommits(self, repo: Repo, v: Json) -> Json:  # noqa: N802
        pull = repo.pulls.get(int(v["number"]))
        if pull is None:
            return {"repository": {"pullRequest": None}}
        return {
            "repository": {
                "pullRequest": {"commits": self.commits(repo, pull, _first(v, "pageSize"), v.get("after"))}
            }
        }

    def op_PullRequestReviews(self, repo: Repo, v: Json) -> Json:  # noqa: N802
        pull = repo.pulls.get(int(v["number"]))
        if pull is None:
            return {"repository": {"pullRequest": None}}
        return {
            "repository": {
                "pullRequest": {"reviews": self.reviews(pull, _first(v, "pageSize"), v.get("after"))}
            }
        }

    def op_Tags(self, repo: Repo, v: Json) -> Json:  # noqa: N802
        ordered = sorted(repo.tags, key=lambda t: (repo.commits[t.sha].committed_at, t.name), reverse=True)
        offset = _decode_cursor(v.get("after"))
        size = _first(v, "pageSize")
        page = ordered[offset : offset + size]
        nodes = []
        for tag in page:
            commit = repo.commits[tag.sha]
            commit_node: Json = {
                "__typename": "Commit",
                "oid": commit.sha,
                "committedDate": iso(commit.committed_at),
                "message": commit.message,
            }
            target: Json
            if tag.tagger is None:
                target = commit_node
            else:
                target = {
                    "__typename": "Tag",
                    "oid": fake_sha("tag", tag.name),
                    "message": tag.message or "",
                    "tagger": {
                        "date": iso(tag.tagged_at),
                        "name": tag.tagger.name,
                        "email": tag.tagger.email,
                    },
                    "target": commit_node,
                }
            nodes.append({"name": tag.name, "target": target})
        return {
            "repository": {
                "refs": {
                    "pageInfo": {
                        "hasNextPage": offset + size < len(ordered),
                        "endCursor": _cursor(offset + len(page)) if page else None,
                    },
                    "nodes": nodes,
                }
            }
        }

    def op_Branches(self, repo: Repo, v: Json) -> Json:  # noqa: N802
        """`refs(refPrefix: "refs/heads/", orderBy: ALPHABETICAL)` and `defaultBranchRef`."""
        heads = sorted(repo.heads().items())
        offset = _decode_cursor(v.get("after"))
        size = _first(v, "pageSize")
        page = heads[offset : offset + size]
        nodes = [
            {
                "name": name,
                "target": {
                    "__typename": "Commit",
                    "oid": sha,
                    "committedDate": iso(repo.commits[sha].committed_at),
                },
            }
            for name, sha in page
        ]
        return {
            "repository": {
                "defaultBranchRef": {"name": repo.default_branch} if repo.history else None,
                "refs": {
                    "pageInfo": {
                        "hasNextPage": offset + size < len(heads),
                        "endCursor": _cursor(offset + len(page)) if page else None,
                    },
                    "nodes": nodes,
                },
            }
        }

    def op_Releases(self, repo: Repo, v: Json) -> Json:  # noqa: N802
        ordered = sorted(repo.releases, key=lambda r: (r.created_at, r.id), reverse=True)
        offset = _decode_cursor(v.get("after"))
        size = _first(v, "pageSize")
        page = ordered[offset : offset + size]
        nodes = [
            {
                "id": f"RE_kwDO{r.id:08d}",
                "databaseId": r.id,
                "name": r.name,
                "tagName": r.tag_name,
                "createdAt": iso(r.created_at),
                "publishedAt": iso(r.published_at),
                "isDraft": r.published_at is None,
                "isPrerelease": r.prerelease,
                "url": f"{WEB}/{repo.full_name}/releases/tag/{r.tag_name}",
                "author": self.actor(r.author),
            }
            for r in page
        ]
        return {
            "repository": {
                "releases": {
                    "pageInfo": {
                        "hasNextPage": offset + size < len(ordered),
                        "endCursor": _cursor(offset + len(page)) if page else None,
                    },
                    "nodes": nodes,
                }
            }
        }

    def op_DeploymentStates(self, v: Json) -> Json:  # noqa: N802
        by_node = {d.node_id: d for repo in self.fake.repos.values() for d in repo.deployments}
        nodes: list[Json | None] = []
        for node_id in v.get("ids", []):
            d = by_node.get(node_id)
            if d is None:
                nodes.append(None)
                continue
            latest = max(d.statuses, key=lambda s: (s.created_at, s.id)) if d.statuses else None
            updated = latest.created_at if latest else d.created_at
            nodes.append(
                {
                    "id": d.node_id,
                    "databaseId": d.id,
                    "state": d.state or (latest.state.upper() if latest else "PENDING"),
                    "updatedAt": iso(updated),
                    "latestStatus": {"state": latest.state.upper(), "createdAt": iso(latest.created_at)}
                    if latest
                    else None,
                }
            )
        return {"nodes": nodes}

    # -- GraphQL documents -----------------------------------------------------------------------

    @staticmethod
    def actor(person: Person | None) -> Json | None:
        if person is None:
            return None
        return (
            {"login": person.login, "name": person.name} if person.type == "User" else {"login": person.login}
        )

    def commit(self, c: Commit) -> Json:
        return {
            "oid": c.sha,
            "message": c.message,
            "authoredDate": iso(c.authored_at),
            "committedDate": iso(c.committed_at),
            "additions": c.additions,
            "deletions": c.deletions,
            "changedFilesIfAvailable": c.changed_files,
            "author": {
                "name": c.author.name,
                "email": c.author.email,
                "user": {"login": c.author.login} if c.author.account else None,
            },
            "parents": {"nodes": [{"oid": p} for p in c.parents[:5]]},
        }

    def pull(self, repo: Repo, p: PullRequest, commits_first: int, reviews_first: int) -> Json:
        return {
            "number": p.number,
            "title": p.title,
            "url": f"{WEB}/{repo.full_name}/pull/{p.number}",
            "state": p.state,
            "createdAt": iso(p.created_at),
            "updatedAt": iso(p.updated_at),
            "mergedAt": iso(p.merged_at),
            "closedAt": iso(p.closed_at),
            "headRefName": p.head_ref,
            "baseRefName": p.base_ref,
            "additions": p.additions,
            "deletions": p.deletions,
            "changedFiles": p.changed_files,
            "author": self.actor(p.author),
            "mergeCommit": {"oid": p.merge_commit_sha} if p.merge_commit_sha else None,
            "commits": self.commits(repo, p, commits_first, None),
            "reviews": self.reviews(p, reviews_first, None),
        }

    def commits(self, repo: Repo, p: PullRequest, first: int, after: str | None) -> Json:
        offset = _decode_cursor(after)
        page = p.commits[offset : offset + first]
        return {
            "totalCount": len(p.commits),
            "pageInfo": {
                "hasNextPage": offset + first < len(p.commits),
                "endCursor": _cursor(offset + len(page)) if page else None,
            },
            "nodes": [{"commit": self.commit(repo.commits[s])} for s in page],  # PullRequestCommit.commit
        }

    def reviews(self, p: PullRequest, first: int, after: str | None) -> Json:
        offset = _decode_cursor(after)
        page = p.reviews[offset : offset + first]
        return {
            "totalCount": len(p.reviews),
            "pageInfo": {
                "hasNextPage": offset + first < len(p.reviews),
                "endCursor": _cursor(offset + len(page)) if page else None,
            },
            "nodes": [
                {
                    "databaseId": r.id,
                    "id": f"PRR_kwDO{r.id:010d}",
                    "state": r.state,
                    "submittedAt": iso(r.submitted_at),
                    "author": self.actor(r.author),
                    "comments": {"totalCount": r.comments},
                }
                for r in page
            ],
        }


# Where an operation selects Commit fields, for the error an old schema reports about them.
_COMMIT_PATHS: dict[str, tuple[str, ...]] = {
    "CommitHistory": ("repository", "object", "history", "nodes"),
    "PullRequests": ("repository", "pullRequests", "nodes", "commits", "nodes", "commit"),
    "PullRequestCommits": ("repository", "pullRequest", "commits", "nodes", "commit"),
}


def _first(variables: Json, name: str) -> int:
    value = int(variables[name])
    if not 1 <= value <= 100:
        raise ValueError(f"{name} must be within 1-100 (GitHub's node limit), got {value}")
    return value


def _cursor(offset: int) -> str:
    return base64.b64encode(f"cursor:v2:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1])


def _decode_offset(cursor: str | None, head: str) -> int:
    """History cursors look like GitHub's: `<head oid> <index of the last commit returned>`."""
    if not cursor:
        return 0
    oid, _, index = cursor.partition(" ")
    if oid != head:
        raise ValueError("history cursor belongs to another head commit")
    return int(index) + 1


def _token(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") else ""


def _operation_name(query: str) -> str:
    match = re.search(r"\b(?:query|mutation)\s+(\w+)", query)
    return match.group(1) if match else ""


def _date_filter(expression: str, moment: datetime) -> bool:
    """GitHub's search-style date qualifiers: `>=D`, `>D`, `<=D`, `<D`, `D..D`, `D`."""
    day = moment.date().isoformat()
    if ".." in expression:
        low, high = expression.split("..", 1)
        return (low == "*" or day >= low) and (high == "*" or day <= high)
    for op, test in ((">=", str.__ge__), ("<=", str.__le__), (">", str.__gt__), ("<", str.__lt__)):
        if expression.startswith(op):
            return bool(test(day, expression[len(op) :]))
    return day == expression


# -- generated organizations ---------------------------------------------------------------------


def generate(
    fake: FakeGitHub,
    *,
    org: str = "bench",
    repos: int = 1,
    pulls: int = 1000,
    commits: int = 10_000,
    now: datetime | None = None,
    days: int = 300,
    seed: int = 7,
) -> list[Repo]:
    """An organization of `repos` repositories sharing `pulls` pull requests and `commits` default-
    branch commits, spread over `days`. Realistic proportions: 1-6 commits and 0-5 reviews per pull
    request (some by the author), a few pull requests with more than 100 commits or 50 reviews (the
    client must page those), merged, closed and open ones."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    start = now - timedelta(days=days)
    people = [fake.person(f"dev{i}", f"Developer {i}", f"dev{i}@example.com") for i in range(40)]
    created: list[Repo] = []
    review_ids = itertools.count(1)
    for r in range(repos):
        repo = fake.repo(org, f"service-{r}")
        created.append(repo)
        n_commits = commits // repos + (1 if r < commits % repos else 0)
        step = (now - start) / max(1, n_commits)
        for i in range(n_commits):
            moment = start + step * i
            author = people[rng.randrange(len(people))]
            repo.add_commit(
                Commit(
                    sha=fake_sha(repo.id, "c", i),
                    message=f"Change {i} in {repo.name}\n\nDetails.",
                    author=author,
                    authored_at=moment - timedelta(minutes=rng.randrange(0, 600)),
                    committed_at=moment,
                    additions=rng.randrange(1, 200),
                    deletions=rng.randrange(0, 80),
                    changed_files=rng.randrange(1, 12),
                )
            )
        n_pulls = pulls // repos + (1 if r < pulls % repos else 0)
        for number in range(1, n_pulls + 1):
            author = people[rng.randrange(len(people))]
            opened = start + (now - start) * (number / (n_pulls + 1))
            # Every 400th pull request overflows the 100 commits fetched with the page.
            n_own = 150 if number % 400 == 0 else rng.randrange(1, 7)
            anchor = rng.randrange(0, max(1, len(repo.history) - n_own))
            own = repo.history[anchor : anchor + n_own]
            n_reviews = 60 if number % 500 == 0 else rng.randrange(0, 6)
            reviews = []
            for k in range(n_reviews):
                reviewer = author if k == 0 and rng.random() < 0.2 else people[rng.randrange(len(people))]
                reviews.append(
                    Review(
                        id=next(review_ids),
                        author=reviewer,
                        state=rng.choice(["APPROVED", "COMMENTED", "CHANGES_REQUESTED", "COMMENTED"]),
                        submitted_at=opened + timedelta(hours=1 + k),
                        comments=rng.randrange(0, 4),
                    )
                )
            roll = rng.random()
            state = "MERGED" if roll < 0.8 else ("CLOSED" if roll < 0.9 else "OPEN")
            finished = opened + timedelta(hours=rng.randrange(2, 96))
            repo.add_pull(
                PullRequest(
                    number=number,
                    title=f"Feature {number}",
                    author=author,
                    created_at=opened,
                    updated_at=min(now, finished),
                    state=state,
                    merged_at=min(now, finished) if state == "MERGED" else None,
                    closed_at=min(now, finished) if state != "OPEN" else None,
                    merge_commit_sha=own[-1] if state == "MERGED" and own else None,
                    head_ref=f"feature/{number}",
                    commits=list(own),
                    reviews=reviews,
                    additions=rng.randrange(1, 500),
                    deletions=rng.randrange(0, 200),
                    changed_files=rng.randrange(1, 20),
                )
            )
    return created


__all__ = [
    "Commit",
    "Deployment",
    "DeploymentStatus",
    "FakeGitHub",
    "Person",
    "PullRequest",
    "Repo",
    "Review",
    "Tag",
    "WorkflowRun",
    "create_app",
    "fake_sha",
    "generate",
    "iso",
]
