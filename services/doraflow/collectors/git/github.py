"""GitHub provider: github.com and GitHub Enterprise Server (`spec.baseUrl`).

What goes where, and why:

* **GraphQL v4 for bulk history.** One `PullRequests` page returns 100 pull requests with their
  reviews, review-comment counts, own commits and merge information; REST would need two more calls
  per pull request. Nested connections that overflow (a pull request with more than 100 commits or
  50 reviews) are paged on their own, so the common case stays at ~10 calls per 1,000 pull requests.
  Commits come from `history(since:)` on the default branch with additions/deletions/changed files,
  and a merged pull request's own commits (the same fields) from its page, with its number.
  Tags (the last deployment fallback) also come from GraphQL because REST's tag listing has no dates.
* **Branches, tags and releases** (`branches_and_tags`) come from GraphQL `refs` and `releases`,
  annotated tags peeled to their commit in the same page. They have no "changed since" filter, so
  each run lists them in full (one call per 100, nothing per item; unchanged ones keep their event
  ids), and refs gone since the previous complete listing are published as `deleted`
  (`RefSnapshot`, which is the cursor).
* **REST v3 where GraphQL has no equivalent**: repository listing for scope globs, deployments and
  their statuses, Actions workflow runs, compare (deployment → shipped commits) and contributors
  (commit counts per account on the default branch; GitHub leaves authors it cannot map to an account
  out unless asked for anonymous ones, and so do we: they have no identity to resolve).
* **Scope entries GitHub did not know** at start (a repository created or shared later) are looked
  up again each time they are collected (`resolve_again`), so they are collected without a restart.
* **Deployments**, in the Integration's order of preference: deployments to environments matching
  `environmentPattern`; else successful Actions runs on the default branch whose workflow name
  matches `deploymentPattern`; else tags matching `tagPattern`. Each successful deployment lists the
  commits it shipped: compare with the previous successful deployment of the same environment.
  Deployments are processed oldest first because that chain needs the previous one; commits and
  pull requests are walked newest first so recent metrics appear early.
* **Cursors** are high-water marks (commit date, pull-request `updatedAt`, deployment id, tag date)
  plus the SHAs/numbers sitting exactly on the mark, because GitHub's `since` is inclusive and a
  second run must yield only what changed. While a newest-first walk is under way the cursor also
  carries the GraphQL page cursor, so a restarted collector resumes mid-walk instead of starting
  over, and only the walk's last batch moves the high-water mark.
* **Errors** a user must fix (bad or revoked token, unknown repository, missing permission) become
  `CollectorError` with a hint; rate limits and 5xx are waited out / retried by `core.http`, GraphQL's
  too: it reports its limit inside a 200 response, which `_graphql_verdict` tells `core.http` about.
* **Shared with the other git providers** (`collectors.git.common`): expanding the scope, the hotfix
  rule, and pairing each deployment with the previous successful one; with every collector
  (`collectors.common`): scope globs and excludes, times, people and the error hints.

Two `HttpClient`s, because GitHub keeps separate budgets for REST (`core`) and GraphQL: a single
client would let one budget's low-water pause stall calls against the other.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx

from doraflow.collectors.base import Batch, Resource, ScopeRef, SourceClient
from doraflow.collectors.common import (
    USER_FIXABLE_HTTP_ERRORS,
    Clock,
    ProviderAccess,
    backfill_horizon,
    clip,
    parse_time_or_none,
    permission_missing,
    person,
    person_or_none,
    scope_not_found,
    user_error,
    utc_now,
)
from doraflow.collectors.common import parse_time as parse_time  # re-exported for the mapping tests
from doraflow.collectors.git import github_queries as q
from doraflow.collectors.git.common import (
    DeploymentPairer,
    DeploySighting,
    RefSnapshot,
    Shipped,
    branch_data,
    expand_scope,
    headline,
    is_hotfix,
    repository_ref,
    resolve_again,
    shipped_without_listing,
    unresolved_scope,
)
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
from doraflow.core.globs import glob_match, is_glob
from doraflow.core.http import (
    AuthenticationError,
    ForbiddenError,
    HttpClient,
    HttpError,
    NotFoundError,
    RateLimitExceededError,
    Verdict,
)
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

Json = dict[str, Any]
DeploymentStatus = Literal["success", "failed", "in_progress", "cancelled"]

PROVIDER = "github"
PAGE_SIZE = 100  # GitHub's maximum for `first` and `per_page`
MIN_PAGE_SIZE = 10  # a query that times out is retried with half the page, down to this
PR_COMMITS_FIRST = 100
PR_REVIEWS_FIRST = 50
DEPLOYMENT_CHUNK = 50  # deployments per batch (each costs a statuses call and a compare)
MAX_COMPARE_COMMITS = 10_000  # a deployment shipping more is truncated (memory stays bounded)
SUCCESS_HISTORY = 20  # previous successful deployments remembered per environment
BASE_SEARCH_LIMIT = 20  # deployments looked at beyond the back-fill horizon to find a compare base
PENDING_MAX_AGE = timedelta(days=7)  # an unfinished deployment is re-checked this long
GRAPHQL_RETRIES = 4
_RATE_LIMIT_TYPES = frozenset({"RATE_LIMITED", "RATE_LIMIT"})
ACCESS = ProviderAccess(
    provider="GitHub",
    repository_format="owner/name",
    required_access=(
        "classic tokens need `repo` (and `read:org` to list organization repositories); fine-grained "
        "tokens need read access to metadata, contents, pull requests, deployments and actions; "
        "organizations with SAML SSO must authorize the token"
    ),
    visibility=(
        "private repositories need the `repo` scope, fine-grained tokens must list the repository, and "
        "organizations with SAML SSO must authorize the token"
    ),
)


def api_urls(base_url: str | None) -> tuple[str, str]:
    """(REST base URL, GraphQL endpoint) for github.com, GHE.com or an Enterprise Server.

    github.com serves REST at `https://api.github.com` and GraphQL at `/graphql` under it; an
    Enterprise Server serves REST at `https://HOST/api/v3` and GraphQL at `https://HOST/api/graphql`.
    Users paste either the API URL or the server's address, so both are accepted."""
    if not base_url:
        return "https://api.github.com", "https://api.github.com/graphql"
    url = httpx.URL(base_url.rstrip("/"))
    host = url.host or ""
    path = url.path.rstrip("/")
    origin = f"{url.scheme}://{url.netloc.decode()}"
    if host in ("github.com", "www.github.com"):
        return "https://api.github.com", "https://api.github.com/graphql"
    if host.startswith("api.") and path in ("", "/"):
        return origin, f"{origin}/graphql"
    for suffix in ("/api/v3", "/api/graphql", "/api"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    root = f"{origin}{path}"
    return f"{root}/api/v3", f"{root}/api/graphql"


def format_time(value: datetime) -> str:
    """Whole seconds: GitHub's timestamps and `since` filters have no finer precision, and the
    high-water marks compare equal to what GitHub returns."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _actor(node: Json | None) -> PersonRef:
    """A GraphQL `Actor`; GitHub returns null for deleted accounts, shown on github.com as ghost."""
    if not node:
        return PersonRef(username="ghost")
    return person(node.get("name"), None, node.get("login"))


def _rest_user(node: Json | None) -> PersonRef | None:
    if not node or not node.get("login"):
        return None
    return person(username=node["login"])


def _git_actor(node: Json | None) -> PersonRef:
    """A GraphQL `GitActor` (the commit's author line) with the GitHub account it maps to."""
    node = node or {}
    user = node.get("user") or {}
    return person(node.get("name"), node.get("email"), user.get("login"))


def _graphql_verdict(response: httpx.Response) -> Verdict | None:
    """GraphQL says "rate limited" inside a 200 (`errors[].type` RATE_LIMITED): to `core.http` that
    is a rate limit like REST's 403, waited out until the budget's reset (its headers come along)."""
    if response.status_code != 200 or b"RATE_LIMIT" not in response.content:
        return None  # the common case decides without parsing the body
    try:
        body = response.json()
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    limited = isinstance(errors, list) and any(
        isinstance(error, dict) and error.get("type") in _RATE_LIMIT_TYPES for error in errors
    )
    return Verdict.rate_limited() if limited else None


class _LegacySchemaError(Exception):
    """The server's schema lacks `Commit.changedFilesIfAvailable` (older Enterprise Server)."""


class GitHubQueryError(HttpError):
    """A GraphQL error that is neither a rate limit nor a user-fixable problem."""


class _HeavyQueryError(GitHubQueryError):
    """GitHub gave up on a query (timeout, 502): paged queries retry with a smaller page."""


@dataclass(slots=True)
class _Candidate:
    """One deployment, whatever its source, before its shipped commits are known."""

    deployment_id: str
    order: str  # sortable within its source (zero-padded id, or an ISO time)
    sha: str
    environment: str
    status: DeploymentStatus
    started_at: datetime
    finished_at: datetime | None
    text: str  # names/descriptions the hotfix rule looks at
    deployed_by: PersonRef | None = None
    url: str | None = None
    message: str | None = None  # the revision's commit message, when the source gives it


class GitHubClient(SourceClient):
    """GitHub REST v3 + GraphQL v4 client for one Integration (see the module docstring)."""

    provider: ClassVar[str] = PROVIDER
    resources: ClassVar[tuple[Resource, ...]] = (
        Resource.COMMITS,
        Resource.PULL_REQUESTS,
        Resource.DEPLOYMENTS,
        Resource.BRANCHES_AND_TAGS,
        Resource.CONTRIBUTORS,
    )

    def __init__(
        self,
        integration: Integration,
        credentials: str | None,
        *,
        page_size: int = PAGE_SIZE,
        http_options: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(integration, credentials)
        self.rest_url, self.graphql_url = api_urls(integration.spec.base_url)
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        if credentials:
            headers["Authorization"] = f"Bearer {credentials.strip()}"
        else:
            logger.warning(
                "GitHub integration %s has no token: only public data, 60 calls/h", integration.key
            )
        options = dict(http_options or {})
        self._sleep: Callable[[float], Awaitable[None]] = options.get("sleep", asyncio.sleep)
        self.rest = HttpClient(self.rest_url, headers=headers, **options)
        graphql_origin = str(httpx.URL(self.graphql_url).copy_with(path="/", query=None))
        self.graphql = HttpClient(graphql_origin, headers=headers, classify=_graphql_verdict, **options)
        self._page_sizes: dict[str, int] = {}
        self._default_page_size = max(MIN_PAGE_SIZE, min(PAGE_SIZE, page_size))
        self._legacy_schema = False
        self.graphql_points = 0  # GraphQL cost GitHub charged (`rateLimit.cost`), for reporting
        self._clock = clock or utc_now
        rules = integration.spec.deployments
        self._environment_re = re.compile(rules.environment_pattern)
        self._deployment_re = re.compile(rules.deployment_pattern)
        self._tag_re = re.compile(rules.tag_pattern)
        self._hotfix_re = re.compile(rules.hotfix_pattern)

    async def aclose(self) -> None:
        await self.rest.aclose()
        await self.graphql.aclose()

    @property
    def requests_made(self) -> int:
        return self.rest.requests_made + self.graphql.requests_made

    @property
    def rate_limit_remaining(self) -> int | None:
        """The smaller of the REST and GraphQL budgets, for the Integration's status."""
        known = [
            s.remaining for s in (self.rest.rate_limit, self.graphql.rate_limit) if s.remaining is not None
        ]
        return min(known) if known else None

    # -- scopes ----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        """Expand `scope.repositories` (exact names, `owner/*` globs, or nothing = everything the
        token sees) and drop `scope.exclude`. An exact name GitHub does not know is kept as an
        unresolved scope so that collecting it reports the problem while the others proceed."""
        try:
            found = await expand_scope(
                self.integration.spec.scope, visible=self._visible_repos, resolve=self._resolve
            )
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, None) from exc
        return sorted(found, key=lambda repo: repo.name.lower())

    def _visible_repos(self) -> AsyncIterator[ScopeRef]:
        return self._list_repos("/user/repos", {"affiliation": "owner,collaborator,organization_member"})

    async def _resolve(self, pattern: str) -> list[ScopeRef]:
        if is_glob(pattern):
            return await self._expand_glob(pattern)
        return [await self._resolve_repo(pattern)]

    async def _resolve_repo(self, full_name: str) -> ScopeRef:
        try:
            response = await self.rest.request("GET", f"/repos/{full_name}", conditional=True)
        except NotFoundError:
            reason = f"GitHub repository {full_name} does not exist or is not visible to this token"
            logger.warning("%s (integration %s)", reason, self.integration.key)
            return unresolved_scope(full_name, reason)
        return _scope_ref(response.json())

    async def _expand_glob(self, pattern: str) -> list[ScopeRef]:
        owner, _, _ = pattern.partition("/")

        async def matching(path: str, params: Mapping[str, str]) -> list[ScopeRef]:
            return [repo async for repo in self._list_repos(path, params) if glob_match(repo.name, pattern)]

        if is_glob(owner):
            matches = await matching("/user/repos", {"affiliation": "owner,collaborator,organization_member"})
        else:
            try:
                matches = await matching(f"/orgs/{owner}/repos", {"type": "all"})
            except NotFoundError:
                # Not an organization but a user. Private repositories of a user are listed only to
                # that user, so try /user/repos first, then the user's public repositories.
                matches = await matching("/user/repos", {"affiliation": "owner"}) or await matching(
                    f"/users/{owner}/repos", {"type": "owner"}
                )
        if not matches:
            logger.warning(
                "scope pattern %s matches no repository (integration %s)", pattern, self.integration.key
            )
        return matches

    async def _list_repos(self, path: str, params: Mapping[str, str]) -> AsyncIterator[ScopeRef]:
        async for page in self._rest_pages(path, {**params, "per_page": PAGE_SIZE}, conditional=True):
            for repo in page:
                yield _scope_ref(repo)

    # -- collect ---------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        if scope.attributes.get("unresolved"):
            try:
                scope = await resolve_again(scope, self._resolve, ACCESS)
            except USER_FIXABLE_HTTP_ERRORS as exc:
                raise user_error(exc, ACCESS, self.integration, scope.name) from exc
        repo = repository_ref(PROVIDER, scope)
        walker: AsyncGenerator[Batch, None]
        if resource is Resource.COMMITS:
            walker = self._commits(scope, repo, cursor)
        elif resource is Resource.PULL_REQUESTS:
            walker = self._pull_requests(scope, repo, cursor)
        elif resource is Resource.DEPLOYMENTS:
            walker = self._deployments(scope, repo, cursor)
        elif resource is Resource.BRANCHES_AND_TAGS:
            walker = self._refs(scope, repo, cursor)
        elif resource is Resource.CONTRIBUTORS:
            walker = self._contributors(scope, repo)
        else:
            raise ValueError(f"the GitHub client does not collect {resource.value}")
        try:
            async for batch in walker:
                yield batch
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, scope.name) from exc
        finally:
            await walker.aclose()

    # -- commits ---------------------------------------------------------------------------------

    async def _commits(
        self, scope: ScopeRef, repo: RepositoryRef, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        """Default-branch history since the high-water mark (or the back-fill horizon), newest
        first. The walk pins the head commit it started from, so resuming after a restart continues
        the same history even if the branch moved meanwhile (the next run picks the new commits)."""
        owner, name = _split(scope.name)
        state = dict(cursor or {})
        since = state.get("since") or format_time(backfill_horizon(self.integration, self._clock()))
        since_at = parse_time(since)
        boundary = set(state.get("boundary", []))
        walk: Json = dict(state.get("walk") or {})
        rev = walk.get("head") or scope.attributes.get("default_branch") or "HEAD"
        after = walk.get("after")
        newest = walk.get("newest")
        newest_shas = set(walk.get("newest_shas", []))
        while True:
            data = await self._query_page(
                "CommitHistory",
                lambda: q.COMMIT_HISTORY_LEGACY if self._legacy_schema else q.COMMIT_HISTORY,
                {"owner": owner, "name": name, "rev": rev, "since": since, "after": after},
                scope.name,
            )
            target = (data.get("repository") or {}).get("object")
            if not target or "history" not in target:  # empty repository: nothing to walk yet
                yield Batch([], {"since": since, "boundary": sorted(boundary)})
                return
            history = target["history"]
            events: list[EventData] = []
            for node in history["nodes"]:
                committed = parse_time(node["committedDate"])
                if committed == since_at and node["oid"] in boundary:
                    continue
                if committed < since_at:  # GitHub's `since` is a hint for merged side branches
                    continue
                events.append(_commit_event(repo, node))
                mark = format_time(committed)
                if newest is None or committed > parse_time(newest):
                    newest, newest_shas = mark, {node["oid"]}
                elif mark == newest:
                    newest_shas.add(node["oid"])
            page = history["pageInfo"]
            if page["hasNextPage"]:
                rev, after = target["oid"], page["endCursor"]
                walk = {"head": rev, "after": after, "newest": newest, "newest_shas": sorted(newest_shas)}
                yield Batch(events, {"since": since, "boundary": sorted(boundary), "walk": walk})
                continue
            if newest is None:
                final = {"since": since, "boundary": sorted(boundary)}
            else:
                keep = boundary if parse_time(newest) == since_at else set()
                final = {"since": newest, "boundary": sorted(newest_shas | keep)}
            yield Batch(events, final)
            return

    # -- pull requests ---------------------------------------------------------------------------

    async def _pull_requests(
        self, scope: ScopeRef, repo: RepositoryRef, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        """Pull requests by `updatedAt`, newest first, down to the high-water mark (or the back-fill
        horizon): a changed pull request (new review, merged) moves to the top and is re-emitted."""
        owner, name = _split(scope.name)
        state = dict(cursor or {})
        mark = state.get("updated_at")
        horizon = parse_time(mark) if mark else backfill_horizon(self.integration, self._clock())
        boundary = set(state.get("boundary", []))
        walk: Json = dict(state.get("walk") or {})
        after = walk.get("after")
        newest = walk.get("newest")
        newest_numbers = set(walk.get("newest_numbers", []))
        while True:
            data = await self._query_page(
                "PullRequests",
                lambda: q.PULL_REQUESTS_LEGACY if self._legacy_schema else q.PULL_REQUESTS,
                {
                    "owner": owner,
                    "name": name,
                    "after": after,
                    "commitsFirst": PR_COMMITS_FIRST,
                    "reviewsFirst": PR_REVIEWS_FIRST,
                },
                scope.name,
            )
            connection = _repository(data, scope.name)["pullRequests"]
            events: list[EventData] = []
            reached_mark = False
            for node in connection["nodes"]:
                updated = parse_time(node["updatedAt"])
                if updated < horizon:
                    reached_mark = True
                    break
                if mark and updated == horizon and node["number"] in boundary:
                    continue
                events.extend(await self._pull_request_events(scope.name, repo, node))
                stamp = format_time(updated)
                if newest is None or updated > parse_time(newest):
                    newest, newest_numbers = stamp, {node["number"]}
                elif stamp == newest:
                    newest_numbers.add(node["number"])
            page = connection["pageInfo"]
            if page["hasNextPage"] and not reached_mark:
                after = page["endCursor"]
                walk = {"after": after, "newest": newest, "newest_numbers": sorted(newest_numbers)}
                yield Batch(events, {**_without(state, "walk"), "walk": walk})
                continue
            if newest is None:
                final = _without(state, "walk")
            else:
                keep = boundary if mark and parse_time(newest) == horizon else set()
                final = {"updated_at": newest, "boundary": sorted(newest_numbers | keep)}
            yield Batch(events, final)
            return

    async def _pull_request_events(self, scope: str, repo: RepositoryRef, node: Json) -> list[EventData]:
        """The pull request, its reviews and, once merged, its own commits. Reviews by the pull
        request's own author (replies in review threads show up as COMMENTED reviews) and pending
        drafts are not code reviews: counting them would make every answered thread look like a first
        review. A merged pull request's commits are published with `pull_request_number`: a squash
        merge leaves them off the default branch, and lead time starts at them, not at the squash
        commit. An open or closed-unmerged pull request's commits shipped nothing."""
        owner, name = _split(scope)
        number = node["number"]
        commits = list(node["commits"]["nodes"])
        if node["commits"]["pageInfo"]["hasNextPage"]:
            query = q.PULL_REQUEST_COMMITS_LEGACY if self._legacy_schema else q.PULL_REQUEST_COMMITS
            commits += await self._rest_of(
                "PullRequestCommits", query, owner, name, number, "commits",
                node["commits"]["pageInfo"]["endCursor"], scope,
            )  # fmt: skip
        reviews = list(node["reviews"]["nodes"])
        if node["reviews"]["pageInfo"]["hasNextPage"]:
            reviews += await self._rest_of(
                "PullRequestReviews", q.PULL_REQUEST_REVIEWS, owner, name, number, "reviews",
                node["reviews"]["pageInfo"]["endCursor"], scope,
            )  # fmt: skip
        author = _actor(node.get("author"))
        author_login = (node.get("author") or {}).get("login")
        review_events: list[EventData] = []
        review_comments = 0
        for review in reviews:
            state = _REVIEW_STATES.get(review.get("state") or "")
            reviewer_login = (review.get("author") or {}).get("login")
            if (
                state is None
                or not review.get("submittedAt")
                or (author_login and reviewer_login == author_login)
            ):
                continue
            comments = int((review.get("comments") or {}).get("totalCount") or 0)
            review_comments += comments
            review_events.append(
                CodeReviewData(
                    repository=repo,
                    pull_request_number=number,
                    review_id=str(review.get("databaseId") or review["id"]),
                    reviewer=_actor(review.get("author")),
                    state=state,
                    submitted_at=parse_time(review["submittedAt"]),
                    comments_count=comments,
                )
            )
        authored = [parse_time(c["commit"]["authoredDate"]) for c in commits if c.get("commit")]
        merge_commit = node.get("mergeCommit") or {}
        pull_request = PullRequestData(
            repository=repo,
            number=number,
            title=node.get("title"),
            author=author,
            state=_PR_STATES.get(node.get("state") or "", "open"),
            created_at=parse_time(node["createdAt"]),
            updated_at=parse_time_or_none(node.get("updatedAt")),
            merged_at=parse_time_or_none(node.get("mergedAt")),
            closed_at=parse_time_or_none(node.get("closedAt")),
            first_commit_at=min(authored) if authored else None,
            merge_commit_sha=merge_commit.get("oid"),
            commit_shas=list(dict.fromkeys(c["commit"]["oid"] for c in commits if c.get("commit"))),
            head_branch=node.get("headRefName"),
            base_branch=node.get("baseRefName"),
            additions=node.get("additions"),
            deletions=node.get("deletions"),
            changed_files=node.get("changedFiles"),
            review_comments=review_comments,
            url=node.get("url"),
        )
        commit_events: list[EventData] = []
        if pull_request.state == "merged":
            nodes = {c["commit"]["oid"]: c["commit"] for c in commits if c.get("commit")}
            commit_events = [_commit_event(repo, commit, number) for commit in nodes.values()]
        return [pull_request, *review_events, *commit_events]

    async def _rest_of(
        self,
        operation: str,
        query: str,
        owner: str,
        name: str,
        number: int,
        field_name: str,
        after: str,
        scope: str,
    ) -> list[Json]:
        """Page one pull request's overflowing nested connection (commits or reviews)."""
        nodes: list[Json] = []
        cursor: str | None = after
        while cursor:
            data = await self._graphql(
                operation,
                query,
                {"owner": owner, "name": name, "number": number, "after": cursor, "pageSize": PAGE_SIZE},
                scope,
            )
            pull = _repository(data, scope).get("pullRequest") or {}
            connection = pull.get(field_name) or {"nodes": [], "pageInfo": {"hasNextPage": False}}
            nodes.extend(connection["nodes"])
            page = connection["pageInfo"]
            cursor = page.get("endCursor") if page.get("hasNextPage") else None
        return nodes

    # -- branches, tags, releases, contributors ----------------------------------------------------

    async def _refs(
        self, scope: ScopeRef, repo: RepositoryRef, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        """Every branch, tag and release, page by page, then the refs gone since the previous complete
        listing; the snapshot is saved with that last batch only, so an interrupted listing is read
        again in full and never reports the unread rest as deleted."""
        snapshot = RefSnapshot(cursor)
        async for nodes, repository in self._graphql_pages("Branches", q.BRANCHES, "refs", scope.name):
            default = (repository.get("defaultBranchRef") or {}).get("name")
            branches: list[EventData] = [b for node in nodes if (b := _branch_event(repo, node, default))]
            snapshot.saw(branches)
            yield Batch(branches)
        async for nodes, _ in self._graphql_pages("Tags", q.TAGS, "refs", scope.name):
            tags: list[EventData] = [tag for node in nodes if (tag := _tag_event(repo, node))]
            snapshot.saw(tags)
            yield Batch(tags)
        async for nodes, _ in self._graphql_pages("Releases", q.RELEASES, "releases", scope.name):
            yield Batch([release for node in nodes if (release := _release_event(repo, node))])
        yield Batch(snapshot.deleted(repo), snapshot.dump())

    async def _graphql_pages(
        self, operation: str, query: str, connection: str, scope: str
    ) -> AsyncIterator[tuple[list[Json], Json]]:
        """(nodes, the repository object) of each page of one of the repository's connections."""
        owner, name = _split(scope)
        after: str | None = None
        while True:
            data = await self._query_page(
                operation, lambda: query, {"owner": owner, "name": name, "after": after}, scope
            )
            repository = _repository(data, scope)
            page = repository[connection]
            yield list(page["nodes"]), repository
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    async def _contributors(self, scope: ScopeRef, repo: RepositoryRef) -> AsyncGenerator[Batch, None]:
        """Accounts that authored commits on the default branch, most commits first (REST: GraphQL
        has no such listing). GitHub counts by account, over every email linked to it, and may
        answer from a cache a few hours old; an empty repository answers 204."""
        owner, name = _split(scope.name)
        path = f"/repos/{owner}/{name}/contributors"
        async for page in self._rest_pages(path, {"per_page": PAGE_SIZE}, conditional=True):
            yield Batch([event for item in page if (event := _contributor_event(repo, item))])

    # -- deployments -----------------------------------------------------------------------------

    async def _deployments(
        self, scope: ScopeRef, repo: RepositoryRef, cursor: dict[str, Any] | None
    ) -> AsyncGenerator[Batch, None]:
        """Deployments from the first source that has any, in the Integration's order of preference.
        Each source keeps its own sub-cursor, so switching sources later loses nothing."""
        state = dict(cursor or {})
        used = False
        async for batch in self._api_deployments(scope, repo, state):
            used = True
            yield batch
        if used:
            return
        async for batch in self._actions_deployments(scope, repo, state):
            used = True
            yield batch
        if used:
            return
        async for batch in self._tag_deployments(scope, repo, state):
            yield batch

    # Source 1: the Deployments API ---------------------------------------------------------------

    async def _api_deployments(
        self, scope: ScopeRef, repo: RepositoryRef, state: Json
    ) -> AsyncGenerator[Batch, None]:
        owner, name = _split(scope.name)
        environments = await self._production_environments(owner, name)
        sub: Json = dict(state.get("deployments") or {})
        # None: the environments endpoint is unavailable; list every deployment and filter here.
        targets: list[str | None] = list(environments) if environments is not None else [None]
        listings: list[tuple[str, list[Json], dict[str, tuple[str, str]]]] = []
        for environment in targets:
            key = environment if environment is not None else "*"
            listed, bases, ever = await self._list_deployments(owner, name, environment, sub.get(key) or {})
            if ever or key in sub:
                listings.append((key, listed, bases))
        if not listings:
            return
        for key, listed, bases in listings:
            env_state: Json = dict(sub.get(key) or {})
            pairer = _pairer(env_state)
            for env, (order, sha) in bases.items():
                pairer.record(env, order, sha)
            pending = {int(p) for p in env_state.get("pending", [])}
            last_id = int(env_state.get("last_id", 0))
            listed.sort(key=lambda d: int(d["id"]))
            for start in range(0, max(len(listed), 1), DEPLOYMENT_CHUNK):
                chunk = listed[start : start + DEPLOYMENT_CHUNK]
                candidates = await self._deployment_candidates(owner, name, chunk)
                fresh: list[_Candidate] = []
                for deployment, candidate in zip(chunk, candidates, strict=True):
                    deployment_id = int(deployment["id"])
                    was_pending = deployment_id in pending
                    if candidate.status == "in_progress":
                        if parse_time(deployment["created_at"]) > self._clock() - PENDING_MAX_AGE:
                            pending.add(deployment_id)
                        if was_pending:
                            continue  # still running: already emitted as in progress
                    else:
                        pending.discard(deployment_id)
                    fresh.append(candidate)
                    last_id = max(last_id, deployment_id)
                events = await self._ship(owner, name, repo, fresh, pairer)
                env_state = {
                    "last_id": last_id,
                    "pending": sorted(pending),
                    "successes": _successes_state(pairer),
                }
                sub[key] = env_state
                yield Batch(events, {**state, "source": "deployments", "deployments": dict(sub)})

    async def _production_environments(self, owner: str, name: str) -> list[str] | None:
        """Names of the repository's environments matching `environmentPattern`; None when the
        endpoint is unavailable (then deployments are listed unfiltered and matched here)."""
        names: list[str] = []
        try:
            async for page in self._rest_pages(
                f"/repos/{owner}/{name}/environments", {"per_page": PAGE_SIZE}, conditional=True
            ):
                names.extend(env["name"] for env in page.get("environments", []))
        except NotFoundError:
            return None
        return [env for env in names if self._environment_re.search(env)]

    async def _list_deployments(
        self, owner: str, name: str, environment: str | None, env_state: Json
    ) -> tuple[list[Json], dict[str, tuple[str, str]], bool]:
        """New (and still pending) deployments, newest first as GitHub lists them, plus — on a
        first sync — the last successful deployment before the horizon of each environment, the
        base its first deployment in the window is compared with. The flag says whether the
        environment has any deployment at all (decides the fallback to Actions runs)."""
        incremental = bool(env_state)
        last_id = int(env_state.get("last_id", 0))
        pending = {int(p) for p in env_state.get("pending", [])}
        floor = min([last_id, *(p - 1 for p in pending)]) if incremental else 0
        horizon = backfill_horizon(self.integration, self._clock())
        params: dict[str, Any] = {"per_page": PAGE_SIZE}
        if environment is not None:
            params["environment"] = environment
        listed: list[Json] = []
        bases: dict[str, tuple[str, str]] = {}
        base_checks = 0
        ever = False
        done = False
        async for page in self._rest_pages(f"/repos/{owner}/{name}/deployments", params, conditional=True):
            for deployment in page:
                if not self._environment_re.search(deployment.get("environment") or ""):
                    continue
                ever = True
                deployment_id = int(deployment["id"])
                if incremental:
                    if deployment_id <= floor:
                        done = True
                        break
                    if deployment_id > last_id or deployment_id in pending:
                        listed.append(deployment)
                    continue
                if parse_time(deployment["created_at"]) >= horizon:
                    listed.append(deployment)
                    continue
                env = deployment["environment"]
                if env not in bases and base_checks < BASE_SEARCH_LIMIT:
                    base_checks += 1
                    outcome = (await self._deployment_candidates(owner, name, [deployment]))[0]
                    if outcome.status == "success":
                        bases[env] = (outcome.order, outcome.sha)
                wanted = {d["environment"] for d in listed} | ({environment} if environment else set())
                if base_checks >= BASE_SEARCH_LIMIT or wanted <= set(bases):
                    done = True
                    break
            if done:
                break
        return listed, bases, ever

    async def _deployment_candidates(
        self, owner: str, name: str, deployments: list[Json]
    ) -> list[_Candidate]:
        """Outcome of each deployment from its statuses (newest decides; `inactive` means a later
        deployment replaced a successful one). GitHub deletes statuses after 90 days but keeps the
        deployment's state, so those are asked from GraphQL in one `nodes` query."""
        candidates: list[_Candidate] = []
        missing: dict[str, _Candidate] = {}
        for deployment in deployments:
            statuses: list[Json] = []
            async for page in self._rest_pages(
                f"/repos/{owner}/{name}/deployments/{deployment['id']}/statuses", {"per_page": PAGE_SIZE}
            ):
                statuses.extend(page)
            candidate = _deployment_candidate(deployment, statuses)
            candidates.append(candidate)
            if not statuses and deployment.get("node_id"):
                missing[deployment["node_id"]] = candidate
        if missing:
            data = await self._graphql(
                "DeploymentStates", q.DEPLOYMENT_STATES, {"ids": list(missing)}, f"{owner}/{name}"
            )
            for node in data.get("nodes") or []:
                if node and node.get("id") in missing:
                    _apply_graphql_state(missing[node["id"]], node)
        return candidates

    # Source 2: Actions workflow runs --------------------------------------------------------------

    async def _actions_deployments(
        self, scope: ScopeRef, repo: RepositoryRef, state: Json
    ) -> AsyncGenerator[Batch, None]:
        """Successful runs on the default branch whose workflow name matches `deploymentPattern`.
        The `created` filter keeps listings short (and under the 1,000 results GitHub returns for
        filtered run listings)."""
        owner, name = _split(scope.name)
        sub: Json = dict(state.get("actions") or {})
        last_id = int(sub.get("last_id", 0))
        branch = scope.attributes.get("default_branch") or "main"
        horizon = backfill_horizon(self.integration, self._clock())
        since_day = sub.get("last_day") or horizon.strftime("%Y-%m-%d")
        params = {"branch": branch, "status": "success", "per_page": PAGE_SIZE, "created": f">={since_day}"}
        runs: list[Json] = []
        async for page in self._rest_pages(f"/repos/{owner}/{name}/actions/runs", params, conditional=True):
            for run in page.get("workflow_runs", []):
                if int(run["id"]) > last_id and self._is_deploy_run(run, branch):
                    runs.append(run)
        if not runs and not sub:
            return
        pairer = _pairer(sub)
        if not sub:
            base = await self._run_before(owner, name, branch, since_day)
            if base is not None:
                pairer.record("production", _id_order(base["id"]), base["head_sha"])
        runs.sort(key=lambda run: int(run["id"]))
        for start in range(0, max(len(runs), 1), DEPLOYMENT_CHUNK):
            chunk = runs[start : start + DEPLOYMENT_CHUNK]
            events = await self._ship(owner, name, repo, [_run_candidate(run) for run in chunk], pairer)
            if chunk:
                last_id = max(last_id, *(int(run["id"]) for run in chunk))
                since_day = max(run["created_at"][:10] for run in chunk)
            sub = {
                "last_id": last_id,
                "last_day": since_day,
                "successes": _successes_state(pairer),
            }
            yield Batch(events, {**state, "source": "actions", "actions": sub})

    def _is_deploy_run(self, run: Json, branch: str) -> bool:
        return (
            run.get("conclusion") == "success"
            and run.get("head_branch") == branch
            and bool(self._deployment_re.search(run.get("name") or ""))
        )

    async def _run_before(self, owner: str, name: str, branch: str, day: str) -> Json | None:
        """The last deployment run before the back-fill horizon: the first run in the window is
        compared with it."""
        params = {"branch": branch, "status": "success", "per_page": PAGE_SIZE, "created": f"<{day}"}
        response = await self.rest.request("GET", f"/repos/{owner}/{name}/actions/runs", params=params)
        for run in response.json().get("workflow_runs", []):
            if self._is_deploy_run(run, branch):
                return dict(run)
        return None

    # Source 3: tags ------------------------------------------------------------------------------

    async def _tag_deployments(
        self, scope: ScopeRef, repo: RepositoryRef, state: Json
    ) -> AsyncGenerator[Batch, None]:
        """Tags matching `tagPattern` are production deployments at the tagger date (annotated) or
        the tagged commit's date (lightweight), as the local-git provider defines them."""
        owner, name = _split(scope.name)
        sub: Json = dict(state.get("tags") or {})
        mark = sub.get("last_time")
        mark_at = parse_time(mark) if mark else None
        seen = set(sub.get("seen", []))
        horizon = backfill_horizon(self.integration, self._clock())
        found: list[_Candidate] = []
        base: _Candidate | None = None
        after: str | None = None
        newest: datetime | None = None
        newest_names: set[str] = set()
        while True:
            data = await self._query_page(
                "Tags", lambda: q.TAGS, {"owner": owner, "name": name, "after": after}, scope.name
            )
            refs = _repository(data, scope.name)["refs"]
            done = False
            for node in refs["nodes"]:
                candidate, ordered_at = _tag_candidate(repo, node)
                if candidate is None or not self._tag_re.search(node["name"]):
                    continue
                if mark_at is not None:
                    if ordered_at < mark_at:
                        done = True
                        break
                    if ordered_at == mark_at and node["name"] in seen:
                        continue
                elif ordered_at < horizon:
                    base = candidate
                    done = True
                    break
                found.append(candidate)
                if newest is None or ordered_at > newest:
                    newest, newest_names = ordered_at, {node["name"]}
                elif ordered_at == newest:
                    newest_names.add(node["name"])
            page = refs["pageInfo"]
            if done or not page["hasNextPage"]:
                break
            after = page["endCursor"]
        pairer = _pairer(sub)
        if base is not None:
            pairer.record("production", base.order, base.sha)
        found.sort(key=lambda c: (c.order, c.deployment_id))
        events = await self._ship(owner, name, repo, found, pairer)
        if newest is not None:
            keep = seen if mark_at is not None and newest == mark_at else set()
            sub = {"last_time": format_time(newest), "seen": sorted(newest_names | keep)}
        sub["successes"] = _successes_state(pairer)
        yield Batch(events, {**state, "source": "tags", "tags": sub})

    # Shared: shipped commits, hotfix and rollback flags --------------------------------------------

    async def _ship(
        self,
        owner: str,
        name: str,
        repo: RepositoryRef,
        candidates: Iterable[_Candidate],
        pairer: DeploymentPairer[str],
    ) -> list[EventData]:
        """Events for `candidates`, oldest first. A successful deployment ships the commits since the
        previous successful deployment of its environment (`pairer`, which remembers each success
        for the ones after it); a failed or unfinished one ships nothing; going back to an ancestor
        is a rollback."""
        events: list[EventData] = []
        for candidate in candidates:
            sighting = DeploySighting(
                candidate.environment, candidate.order, candidate.sha, candidate.status == "success"
            )
            (paired,) = pairer.push(sighting)  # oldest first: paired at once
            shipped = shipped_without_listing(paired, candidate.message)
            if shipped is None:
                shipped = await self._compare(
                    owner, name, paired.previous_sha, candidate.sha, candidate.message
                )
            events.append(
                DeploymentData(
                    repository=repo,
                    deployment_id=candidate.deployment_id,
                    environment=candidate.environment[:50],
                    is_production=True,
                    status=candidate.status,
                    started_at=candidate.started_at,
                    finished_at=candidate.finished_at,
                    revision=candidate.sha,
                    commit_shas=shipped.shas,
                    deployed_by=candidate.deployed_by,
                    is_hotfix=is_hotfix(self._hotfix_re, [candidate.text], shipped.messages),
                    is_rollback=shipped.rollback,
                    url=candidate.url,
                )
            )
        return events

    async def _compare(
        self, owner: str, name: str, base: str | None, head: str, message: str | None
    ) -> Shipped:
        """Commits in `head` and not in `base`, paged (`per_page` lifts the 250-commit cap that an
        unpaged compare has) and bounded by MAX_COMPARE_COMMITS; `shipped_without_listing` answers
        the cases that need no compare."""
        shas: list[str] = []
        messages: list[str] = []
        total = 0
        try:
            async for page in self._rest_pages(
                f"/repos/{owner}/{name}/compare/{base}...{head}", {"per_page": PAGE_SIZE}
            ):
                if not total:
                    total = int(page.get("total_commits") or 0)
                    if page.get("status") == "behind":
                        return Shipped([], rollback=True)
                for commit in page.get("commits", []):
                    shas.append(commit["sha"])
                    messages.append((commit.get("commit") or {}).get("message") or "")
                if len(shas) >= MAX_COMPARE_COMMITS:
                    logger.warning(
                        "%s/%s: deployment %s ships %d commits, keeping the first %d",
                        owner, name, head, total, MAX_COMPARE_COMMITS,
                    )  # fmt: skip
                    break
        except NotFoundError:
            # A revision GitHub no longer has (force-pushed away): the deployment itself still counts.
            logger.warning(
                "%s/%s: cannot compare %s...%s, keeping the revision only", owner, name, base, head
            )
            return Shipped([head], [message] if message else [])
        if head not in shas:
            shas.append(head)
        return Shipped(shas, messages)

    # -- plumbing --------------------------------------------------------------------------------

    async def _rest_pages(
        self, path: str, params: Mapping[str, Any], *, conditional: bool = False
    ) -> AsyncIterator[Any]:
        """JSON pages following `Link: rel="next"`. Listings that are polled on every sync ask
        conditionally: an unchanged page costs a 304, which GitHub does not count against the
        budget. Not the rest (compare, statuses): their cached bodies would only cost memory."""
        url: str | None = path
        query: Mapping[str, Any] | None = params
        while url:
            response = await self.rest.request("GET", url, params=query, conditional=conditional)
            if response.status_code == 204:  # No Content: e.g. the contributors of an empty repository
                return
            yield response.json()
            link = response.links.get("next")
            url = link.get("url") if link else None
            query = None

    async def _query_page(
        self, operation: str, query: Callable[[], str], variables: Json, scope: str
    ) -> Json:
        """One page of a paged query. A page GitHub cannot finish in time is retried at half the size
        (remembered for the rest of this client's life); an old schema switches to the legacy query."""
        while True:
            size = self._page_sizes.get(operation, self._default_page_size)
            try:
                return await self._graphql(operation, query(), {**variables, "pageSize": size}, scope)
            except _LegacySchemaError:
                if self._legacy_schema:
                    raise
                logger.info("GitHub server lacks Commit.changedFilesIfAvailable: using changedFiles")
                self._legacy_schema = True
            except _HeavyQueryError as exc:
                if size <= MIN_PAGE_SIZE:
                    raise GitHubQueryError(f"{operation} keeps failing at page size {size}: {exc}") from exc
                self._page_sizes[operation] = max(MIN_PAGE_SIZE, size // 2)
                logger.warning("%s failed at page size %d (%s), retrying smaller", operation, size, exc)

    async def _graphql(self, operation: str, query: str, variables: Json, scope: str) -> Json:
        """POST one operation and map GraphQL's error types (its rate limit, reported in a 200, is
        waited out by `core.http`: see `_graphql_verdict`)."""
        payload = {"query": query, "variables": variables, "operationName": operation}
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await self.graphql.request("POST", self.graphql_url, json=payload)
            except (AuthenticationError, ForbiddenError, NotFoundError, RateLimitExceededError):
                raise
            except HttpError as exc:
                if exc.status is None or exc.status >= 500:
                    raise _HeavyQueryError(str(exc), status=exc.status, url=exc.url) from exc
                raise
            body = response.json()
            data = body.get("data") or {}
            self.graphql_points += int((data.get("rateLimit") or {}).get("cost") or 0)
            errors: list[Json] = body.get("errors") or []
            if not errors:
                return dict(data)
            types = {error.get("type") for error in errors}
            message = "; ".join(str(error.get("message")) for error in errors)[:500]
            if any(_is_scope_not_found(error) for error in errors):
                raise scope_not_found(ACCESS, scope)
            if "FORBIDDEN" in types:
                raise permission_missing(ACCESS, scope, f"{operation}: {message}")
            if any("changedFilesIfAvailable" in str(error.get("message")) for error in errors):
                raise _LegacySchemaError(message)
            if types & {"NOT_FOUND"} and data:
                return dict(data)  # a nested object vanished (deleted ref): the rest is usable
            if attempts > GRAPHQL_RETRIES:
                raise _HeavyQueryError(message)
            logger.info("GitHub %s failed (%s), retrying", operation, message)
            await self._sleep(min(30.0, 0.5 * 2**attempts))


_PR_STATES: dict[str, Literal["open", "closed", "merged"]] = {
    "OPEN": "open",
    "CLOSED": "closed",
    "MERGED": "merged",
}
_REVIEW_STATES: dict[str, Literal["approved", "changes_requested", "commented", "dismissed"]] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
    "DISMISSED": "dismissed",
}
# REST deployment status `state` → our status; `inactive` is handled separately (see below).
_STATUS_STATES: dict[str, DeploymentStatus] = {
    "success": "success",
    "failure": "failed",
    "error": "failed",
    "in_progress": "in_progress",
    "queued": "in_progress",
    "pending": "in_progress",
}
# GraphQL `DeploymentState` → our status (ACTIVE/INACTIVE: it succeeded, later maybe replaced).
_GRAPHQL_DEPLOYMENT_STATES: dict[str, DeploymentStatus] = {
    "ACTIVE": "success",
    "INACTIVE": "success",
    "SUCCESS": "success",
    "FAILURE": "failed",
    "ERROR": "failed",
    "ABANDONED": "cancelled",
    "DESTROYED": "cancelled",
}


def _pairer(state: Json) -> DeploymentPairer[str]:
    """The pairing for a deployment source, from its sub-cursor's `successes`: per environment, the
    last SUCCESS_HISTORY successful deployments as [order, sha] (a deployment still running when
    the cursor was saved may finish older than the newest success, and needs its own predecessor)."""
    earlier = {
        str(env): [(str(order), str(sha)) for order, sha in items]
        for env, items in (state.get("successes") or {}).items()
    }
    return DeploymentPairer("oldest_first", earlier)


def _successes_state(pairer: DeploymentPairer[str]) -> dict[str, list[list[str]]]:
    return {
        env: [[order, sha] for order, sha in items]
        for env, items in pairer.successes(SUCCESS_HISTORY).items()
    }


def _split(full_name: str) -> tuple[str, str]:
    owner, _, name = full_name.partition("/")
    return owner, name


def _without(state: Json, key: str) -> Json:
    return {k: v for k, v in state.items() if k != key}


def _id_order(value: Any) -> str:
    return f"{int(value):020d}"


def _repository(data: Json, scope: str) -> Json:
    repository = data.get("repository")
    if repository is None:
        raise scope_not_found(ACCESS, scope)
    return dict(repository)


def _is_scope_not_found(error: Json) -> bool:
    path = error.get("path") or []
    return error.get("type") == "NOT_FOUND" and bool(path) and path[0] == "repository" and len(path) == 1


def _scope_ref(repo: Json) -> ScopeRef:
    return ScopeRef(
        name=repo["full_name"],
        id=str(repo["id"]),
        attributes={
            "default_branch": repo.get("default_branch"),
            "url": repo.get("html_url"),
            "node_id": repo.get("node_id"),
            "archived": bool(repo.get("archived")),
            "private": bool(repo.get("private")),
        },
    )


def _commit_event(repo: RepositoryRef, node: Json, pull_request_number: int | None = None) -> CommitData:
    parents = (node.get("parents") or {}).get("nodes") or []
    return CommitData(
        repository=repo,
        sha=node["oid"],
        author=_git_actor(node.get("author")),
        authored_at=parse_time(node["authoredDate"]),
        committed_at=parse_time_or_none(node.get("committedDate")),
        message=node.get("message"),
        additions=node.get("additions"),
        deletions=node.get("deletions"),
        files_changed=node.get("changedFilesIfAvailable"),
        parents=[parent["oid"] for parent in parents],
        pull_request_number=pull_request_number,
    )


def _deployment_candidate(deployment: Json, statuses: list[Json]) -> _Candidate:
    status: DeploymentStatus = "in_progress"
    finished: datetime | None = None
    url: str | None = None
    ordered = sorted(statuses, key=lambda s: (s.get("created_at") or "", int(s.get("id") or 0)), reverse=True)
    for item in ordered:
        state = item.get("state") or ""
        if state == "inactive":
            status = "success"  # replaced by a later deployment: it had succeeded
            continue
        status = _STATUS_STATES.get(state, "in_progress")
        if status != "in_progress":
            finished = parse_time(item["created_at"])
            url = item.get("environment_url") or item.get("log_url") or item.get("target_url") or None
        break
    if status == "success" and finished is None and ordered:
        finished = parse_time(ordered[-1]["created_at"])
    text = " ".join(str(deployment.get(key) or "") for key in ("description", "ref", "task"))
    return _Candidate(
        deployment_id=f"github:deployment:{deployment['id']}",
        order=_id_order(deployment["id"]),
        sha=deployment["sha"],
        environment=deployment.get("environment") or "production",
        status=status,
        started_at=parse_time(deployment["created_at"]),
        finished_at=finished,
        text=text,
        deployed_by=_rest_user(deployment.get("creator")),
        url=url,
    )


def _apply_graphql_state(candidate: _Candidate, node: Json) -> None:
    state = _GRAPHQL_DEPLOYMENT_STATES.get(node.get("state") or "")
    if state is None:
        return
    candidate.status = state
    latest = node.get("latestStatus") or {}
    finished = latest.get("createdAt") or node.get("updatedAt")
    candidate.finished_at = parse_time_or_none(finished) if state != "in_progress" else None


def _run_candidate(run: Json) -> _Candidate:
    head_commit = run.get("head_commit") or {}
    started = run.get("run_started_at") or run["created_at"]
    return _Candidate(
        deployment_id=f"github:run:{run['id']}",
        order=_id_order(run["id"]),
        sha=run["head_sha"],
        environment="production",
        status="success",
        started_at=parse_time(started),
        finished_at=parse_time_or_none(run.get("updated_at")),
        text=" ".join(str(run.get(key) or "") for key in ("name", "display_title")),
        deployed_by=_rest_user(run.get("triggering_actor") or run.get("actor")),
        url=run.get("html_url"),
        message=head_commit.get("message"),
    )


def _branch_event(repo: RepositoryRef, node: Json, default: str | None) -> BranchData | None:
    """A `Ref` under refs/heads/. The repository's `defaultBranchRef` decides `is_default` (the
    scope listing's default branch may be older); a branch name the schema cannot hold is skipped."""
    target = node.get("target") or {}
    name = node.get("name") or ""
    if target.get("__typename") != "Commit" or not target.get("oid") or not 0 < len(name) <= 255:
        return None
    return branch_data(
        repo,
        name,
        target["oid"],
        default=name == default if default else None,
        updated_at=parse_time_or_none(target.get("committedDate")),
    )


def _tag_event(repo: RepositoryRef, node: Json) -> TagData | None:
    """A `Ref` under refs/tags/: an annotated tag (`Tag`) is peeled to its commit and dated by its
    tagger, a lightweight one is the commit and dated by it. A tag of a tree or a blob, or of another
    tag, names no commit here and is skipped."""
    target = node.get("target") or {}
    name = node.get("name") or ""
    annotated = target.get("__typename") == "Tag"
    commit = (target.get("target") or {}) if annotated else target
    if commit.get("__typename") != "Commit" or not commit.get("oid") or not 0 < len(name) <= 255:
        return None
    tagger: Json = (target.get("tagger") or {}) if annotated else {}
    message = target.get("message") if annotated else None
    return TagData(
        repository=repo,
        name=name,
        sha=commit["oid"],
        annotated=annotated,
        tagged_at=parse_time_or_none(tagger.get("date")) or parse_time_or_none(commit.get("committedDate")),
        tagger=person_or_none(tagger.get("name"), tagger.get("email")),
        message=message.rstrip("\n") or None if isinstance(message, str) else None,
    )


def _release_event(repo: RepositoryRef, node: Json) -> ReleaseData | None:
    created = parse_time_or_none(node.get("createdAt"))
    tag_name = node.get("tagName") or ""
    release_id = str(node.get("databaseId") or node.get("id") or "")
    if created is None or not 0 < len(tag_name) <= 255 or not release_id:
        return None
    author = node.get("author") or {}
    return ReleaseData(
        repository=repo,
        release_id=release_id,
        tag_name=tag_name,
        name=clip(node.get("name"), 255),
        created_at=created,
        published_at=parse_time_or_none(node.get("publishedAt")),
        draft=bool(node.get("isDraft")),
        prerelease=bool(node.get("isPrerelease")),
        author=person_or_none(author.get("name"), None, author.get("login")),
        url=node.get("url"),
    )


def _contributor_event(repo: RepositoryRef, item: Json) -> ContributorData | None:
    """An account (`login`) and its commit count; anonymous entries (an email GitHub could not map
    to an account, listed only with `anon=1`) are left out."""
    if item.get("type") == "Anonymous" or not item.get("login"):
        return None
    count = item.get("contributions")
    return ContributorData(
        repository=repo,
        person=person(username=item["login"]),
        contributions=count if isinstance(count, int) and count >= 0 else None,
    )


def _tag_candidate(repo: RepositoryRef, node: Json) -> tuple[_Candidate | None, datetime]:
    """A tag as a deployment, and the date GitHub orders tags by (the tagged commit's)."""
    target = node.get("target") or {}
    tagger: Json = {}
    if target.get("__typename") == "Tag":
        tagger = target.get("tagger") or {}
        commit = target.get("target") or {}
        message = target.get("message")
    else:
        commit = target
        message = None
    if commit.get("__typename", "Commit") != "Commit" or not commit.get("committedDate"):
        return None, datetime.min.replace(tzinfo=UTC)  # a tag of a tree or blob ships nothing
    committed = parse_time(commit["committedDate"])
    deployed = parse_time_or_none(tagger.get("date")) or committed
    tagged_by = person(tagger.get("name"), tagger.get("email")) if tagger else None
    candidate = _Candidate(
        deployment_id=f"github:tag:{repo.id}:{node['name']}",
        order=format_time(deployed),
        sha=commit["oid"],
        environment="production",
        status="success",
        started_at=deployed,
        finished_at=deployed,
        text=" ".join(part for part in (node["name"], headline(message)) if part),
        deployed_by=tagged_by,
        message=commit.get("message"),
    )
    return candidate, committed
