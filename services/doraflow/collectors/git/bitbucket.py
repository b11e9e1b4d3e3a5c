"""Bitbucket Cloud (REST 2.0) as a source of commits, pull requests, reviews, deployments, branches and
tags.

Bitbucket pages through a `next` URL in the body (`values`, `pagelen`, `page`, `next`); some `next`
links drop the query the first page was asked with (`sort`, `fields`, `q`), so the paginator puts
back whatever they lost.

Bounds on API calls:
- commits: the list has no line stats, so `/diffstat/{sha}` is called per commit, but only for
  non-merge commits collected in this run, at most `diffstat_budget` per run and scope, and at most
  `DIFFSTAT_PAGES` pages per commit (a vendoring commit with thousands of files gets no stats rather
  than dozens of calls). Commits beyond the budget are published without stats.
- pull requests: only those updated since the cursor (`q=updated_on>=…`), each with its activity log
  (approvals, change requests and comments with their times, the merge time) and its commits; a
  merged pull request's own commits are published from that listing with its number (no diffstat).
- deployments: the deployments list is read newest first and stopped at the cursor; each successful
  production deployment costs one `commits/{sha}?exclude={previous}` walk (at most `SHIPPED_PAGES`
  pages) to list what it shipped.
- merge commits: a pull request's `merge_commit.hash` is a 12-character short hash, while deployments
  are linked to pull requests by full SHA. It is expanded from full hashes the client saw (the pull
  request's own commits, the commits and shipped-commit walks, earlier expansions: `CommitHashes`),
  else with one `commit/{short}` call, whose answer is remembered too.
- branches and tags: listed in full each run (one call per page); the refs gone since the previous
  complete listing are published as deleted.

Not collected: releases (Bitbucket has none) and contributors. Bitbucket has no contributors
endpoint, and counting commits per author would mean walking the whole history again every day; the
commit events already name their authors, which is where the processor finds people.
"""

from __future__ import annotations

import base64
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef, SourceClient
from doraflow.collectors.common import (
    USER_FIXABLE_HTTP_ERRORS,
    Clock,
    ProviderAccess,
    WindowPass,
    backfill_horizon,
    iso,
    parse_time_or_none,
    person,
    person_or_none,
    stream_window,
    user_error,
    utc_now,
)
from doraflow.collectors.git.common import (
    DeploySighting,
    Lane,
    Paired,
    RefSnapshot,
    Shipped,
    branch_data,
    expand_scope,
    is_hotfix,
    repository_ref,
    resolve_again,
    shipped_without_listing,
    stream_lane,
    unresolved_scope,
)
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
from doraflow.core.globs import glob_match, is_glob, literal_prefix
from doraflow.core.http import HttpClient, NotFoundError
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

BITBUCKET_DEFAULT_URL = "https://api.bitbucket.org/2.0"
PULL_REQUEST_REF = re.compile(r"\(pull request #(\d+)\)")
PR_STATES = ("OPEN", "MERGED", "DECLINED", "SUPERSEDED")
PR_FIELDS = "+values.participants,+values.merge_commit.date"
DIFFSTAT_PAGES = 5
SHIPPED_PAGES = 10
KEPT_PARAMS = ("sort", "fields", "q", "pagelen", "state", "exclude", "include", "role")
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
RECENT_COMMITS = 50_000  # full hashes kept to expand short ones (about 6 MB at most)
COMPLETED_STATUS = {"SUCCESSFUL": "success", "FAILED": "failed", "ERROR": "failed", "STOPPED": "cancelled"}

ACCESS = ProviderAccess(
    provider="Bitbucket",
    repository_format="workspace/repo-slug",
    required_access="repository, pull request and pipeline read permissions",
    visibility="the account or access token must have read access to the repository",
)

Params = list[tuple[str, Any]]


def bitbucket_api_url(base_url: str | None) -> str:
    base = (base_url or BITBUCKET_DEFAULT_URL).rstrip("/")
    return base if base.endswith("/2.0") else f"{base}/2.0"


def bitbucket_auth_headers(credentials: str | None) -> dict[str, str]:
    """`user:app_password` (or `email:api_token`) is Basic auth; anything else is an access token
    (repository, project or workspace token, OAuth) sent as Bearer."""
    if not credentials:
        return {}
    secret = credentials.strip()
    if ":" in secret:
        return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
    return {"Authorization": f"Bearer {secret}"}


class BitbucketClient(SourceClient):
    provider: ClassVar[str] = "bitbucket"
    resources: ClassVar[tuple[Resource, ...]] = (
        Resource.COMMITS,
        Resource.PULL_REQUESTS,
        Resource.DEPLOYMENTS,
        Resource.BRANCHES_AND_TAGS,
    )

    def __init__(
        self,
        integration: Integration,
        credentials: str | None,
        *,
        page_size: int = 100,
        diffstat_budget: int = 200,
        http_options: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(integration, credentials)
        self.page_size = page_size
        self.diffstat_budget = diffstat_budget
        self.clock = clock or utc_now
        self.http = HttpClient(
            bitbucket_api_url(integration.spec.base_url),
            headers=bitbucket_auth_headers(credentials),
            **dict(http_options or {}),
        )
        rules = integration.spec.deployments
        self.environment_pattern = re.compile(rules.environment_pattern)
        self.deployment_pattern = re.compile(rules.deployment_pattern)
        self.tag_pattern = re.compile(rules.tag_pattern)
        self.hotfix_pattern = re.compile(rules.hotfix_pattern)
        self.commit_hashes = CommitHashes()

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    # ---- HTTP -------------------------------------------------------------------------------------

    async def _pages(
        self, path: str, params: Any = None, *, start_url: str | None = None
    ) -> AsyncIterator[tuple[list[Any], str | None]]:
        """Follow the body's `next` URL, restoring query parameters it dropped."""
        asked: Params = list(params or [])
        if not start_url and not any(key == "pagelen" for key, _ in asked):
            asked.append(("pagelen", self.page_size))
        url: str | None = start_url or path
        query: httpx.QueryParams | None = None if start_url else httpx.QueryParams(asked)
        while url:
            body = await self.http.get_json(url, params=query)
            body = body if isinstance(body, dict) else {}
            next_url = _restore_params(body.get("next"), asked)
            yield body.get("values") or [], next_url
            url, query = next_url, None

    async def _get(self, path: str, params: Any = None) -> Any:
        return await self.http.get_json(path, params=params)

    # ---- scopes -----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        try:
            return await expand_scope(
                self.integration.spec.scope, visible=self._member_repositories, resolve=self._resolve
            )
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, None) from exc

    async def _member_repositories(self) -> AsyncIterator[ScopeRef]:
        async for page, _ in self._pages("/repositories", [("role", "member")]):
            for repository in page:
                yield _repository_scope(repository)

    async def _resolve(self, pattern: str) -> list[ScopeRef]:
        """`workspace/slug` is looked up directly, `workspace/*` lists the workspace. What is not found
        becomes an unresolved scope: collecting it reports the error, the others keep collecting."""
        pattern = pattern.strip("/")
        if not is_glob(pattern):
            try:
                return [_repository_scope(await self._get(f"/repositories/{_path(pattern)}"))]
            except NotFoundError:
                return [unresolved_scope(pattern, f"Bitbucket repository {pattern} not found")]
        workspace = literal_prefix(pattern)
        if not workspace or "/" in workspace:
            raise CollectorError(
                f"Bitbucket scope pattern {pattern!r} names no workspace",
                hint="Bitbucket repository globs look like workspace/* or workspace/api-*.",
                scope=pattern,
            )
        refs: list[ScopeRef] = []
        try:
            async for page, _ in self._pages(f"/repositories/{quote(workspace, safe='')}"):
                refs.extend(_repository_scope(r) for r in page if glob_match(r["full_name"], pattern))
        except NotFoundError:
            return [unresolved_scope(pattern, f"Bitbucket workspace {workspace} not found")]
        return refs

    # ---- collect ----------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        try:
            if scope.attributes.get("unresolved"):
                scope = await resolve_again(scope, self._resolve, ACCESS)
            repository = repository_ref("bitbucket", scope)
            if resource is Resource.COMMITS:
                async for batch in self._commits(scope, repository, cursor):
                    yield batch
            elif resource is Resource.PULL_REQUESTS:
                async for batch in self._pull_requests(scope, repository, cursor):
                    yield batch
            elif resource is Resource.DEPLOYMENTS:
                async for batch in self._deployments(scope, repository, cursor):
                    yield batch
            elif resource is Resource.BRANCHES_AND_TAGS:
                async for batch in self._refs(scope, repository, cursor):
                    yield batch
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, scope.name) from exc

    def _horizon(self) -> datetime:
        return backfill_horizon(self.integration, self.clock())

    # ---- commits ----------------------------------------------------------------------------------

    async def _commits(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """First sync: walk the default branch's tip (pinned by hash, so pages stay stable while
        people push) back to the horizon, saving the next page after each. Later: `{branch}?exclude=
        {last head}`, exactly the commits that became reachable, whatever their dates."""
        base = f"/repositories/{_path(scope.name)}/commits"
        branch = repository.default_branch or "main"
        budget = [self.diffstat_budget]
        cursor = cursor or {}
        head: str | None = cursor.get("head")
        head_at: str | None = cursor.get("head_at")
        if head is None:
            tip = await self._get(f"/repositories/{_path(scope.name)}/refs/branches/{quote(branch, safe='')}")
            target = tip.get("target") or {}
            head, head_at = target.get("hash"), target.get("date")
            if not head:
                return
            async for batch in self._walk(scope, repository, f"{base}/{head}", (head, head_at), budget):
                yield batch
            return
        new_head, new_head_at = head, head_at
        try:
            async for page, _ in self._pages(f"{base}/{quote(branch, safe='')}", [("exclude", head)]):
                if new_head == head and page:
                    new_head, new_head_at = page[0]["hash"], page[0].get("date")
                yield Batch(await self._commit_events(scope, repository, page, budget))
        except NotFoundError:
            if new_head != head:
                raise
            # the old head is gone (force push): read the branch down to the old head's date
            logger.warning("commit range base vanished, reading by date", extra={"scope": scope.name})
            since = parse_time_or_none(head_at) or self._horizon()
            async for page, _ in self._pages(f"{base}/{quote(branch, safe='')}"):
                if new_head == head and page:
                    new_head, new_head_at = page[0]["hash"], page[0].get("date")
                recent = [c for c in page if (parse_time_or_none(c.get("date")) or since) >= since]
                yield Batch(await self._commit_events(scope, repository, recent, budget))
                if len(recent) < len(page):
                    break
        owed_next = cursor.get("backfill_next")
        yield Batch([], {"head": new_head, "head_at": new_head_at, "backfill_next": owed_next})
        if owed_next:
            async for batch in self._walk(
                scope, repository, None, (new_head, new_head_at), budget, owed_next
            ):
                yield batch

    async def _walk(
        self,
        scope: ScopeRef,
        repository: RepositoryRef,
        path: str | None,
        head: tuple[str | None, str | None],
        budget: list[int],
        start_url: str | None = None,
    ) -> AsyncIterator[Batch]:
        """Back-fill: newest first down to the horizon. Commit order is topological, so dates are not
        monotonic: stop at the first page with nothing inside the horizon."""
        horizon = self._horizon()
        async for page, next_url in self._pages(path or "", start_url=start_url):
            recent = [c for c in page if (parse_time_or_none(c.get("date")) or horizon) >= horizon]
            done = not recent or next_url is None
            events = await self._commit_events(scope, repository, recent, budget)
            yield Batch(
                events, {"head": head[0], "head_at": head[1], "backfill_next": None if done else next_url}
            )
            if done:
                return

    async def _commit_events(
        self, scope: ScopeRef, repository: RepositoryRef, page: Sequence[Mapping[str, Any]], budget: list[int]
    ) -> list[EventData]:
        self.commit_hashes.remember(repository.id, (item["hash"] for item in page))
        events: list[EventData] = []
        for item in page:
            parents = [p["hash"] for p in item.get("parents") or []]
            stats: tuple[int, int, int] | None = None
            if len(parents) <= 1 and budget[0] > 0:
                budget[0] -= 1
                stats = await self._diffstat(scope, item["hash"])
            events.append(_commit_event(repository, item, parents, stats))
        return events

    async def _diffstat(self, scope: ScopeRef, sha: str) -> tuple[int, int, int] | None:
        added = removed = files = 0
        pages = 0
        async for page, next_url in self._pages(f"/repositories/{_path(scope.name)}/diffstat/{sha}"):
            for entry in page:
                added += int(entry.get("lines_added") or 0)
                removed += int(entry.get("lines_removed") or 0)
                files += 1
            pages += 1
            if next_url and pages >= DIFFSTAT_PAGES:
                return None  # too big to count cheaply: no stats rather than dozens of calls
        return added, removed, files

    # ---- pull requests ----------------------------------------------------------------------------

    async def _pull_requests(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        base = f"/repositories/{_path(scope.name)}/pullrequests"

        async def pages(window: WindowPass) -> AsyncIterator[list[Any]]:
            query = f"updated_on {'>=' if window.backfill else '>'} {iso(window.lo)}"
            if window.hi is not None:
                query += f" AND updated_on <= {iso(window.hi + timedelta(seconds=1))}"
            params: Params = [("state", state) for state in PR_STATES]
            params += [("q", query), ("sort", "-updated_on"), ("fields", PR_FIELDS), ("pagelen", 50)]
            async for page, _ in self._pages(base, params):
                yield page

        async for events, window_cursor in stream_window(
            cursor,
            horizon=self._horizon(),
            now=self.clock(),
            pages=pages,
            updated_at=lambda pull: parse_time_or_none(pull.get("updated_on")),
            events=lambda pull: self._pull_request_events(base, repository, pull),
        ):
            yield Batch(events, window_cursor)

    async def _pull_request_events(
        self, base: str, repository: RepositoryRef, pull: Mapping[str, Any]
    ) -> list[EventData]:
        number = int(pull["id"])
        author = pull.get("author") or {}
        activity: list[Mapping[str, Any]] = []
        async for page, _ in self._pages(f"{base}/{number}/activity", [("pagelen", 50)]):
            activity.extend(page)
        commits: list[Mapping[str, Any]] = []
        async for page, _ in self._pages(f"{base}/{number}/commits"):
            commits.extend(page)
        self.commit_hashes.remember(repository.id, (c["hash"] for c in commits))

        author_key = _account_key(author)
        comments = [
            entry["comment"]
            for entry in activity
            if "comment" in entry
            and not entry["comment"].get("deleted")
            and _account_key(entry["comment"].get("user") or {}) != author_key
        ]
        state = {"OPEN": "open", "MERGED": "merged"}.get(pull.get("state", ""), "closed")
        updates = [entry["update"] for entry in activity if "update" in entry]
        finished = _state_change_time(updates, pull.get("state", ""))
        merge_commit = pull.get("merge_commit") or {}
        merged_at = closed_at = None
        if state == "merged":
            merged_at = (
                finished
                or parse_time_or_none(merge_commit.get("date"))
                or parse_time_or_none(pull.get("updated_on"))
            )
        elif state == "closed":
            closed_at = finished or parse_time_or_none(pull.get("updated_on"))
        commit_times = [t for t in (parse_time_or_none(c.get("date")) for c in commits) if t]
        created = parse_time_or_none(pull.get("created_on"))
        assert created is not None
        pull_request = PullRequestData(
            repository=repository,
            number=number,
            title=pull.get("title"),
            author=_account(author),
            state=state,
            created_at=created,
            updated_at=parse_time_or_none(pull.get("updated_on")),
            merged_at=merged_at,
            closed_at=closed_at,
            first_commit_at=min(commit_times) if commit_times else None,
            merge_commit_sha=await self._full_sha(repository, merge_commit.get("hash")),
            commit_shas=[c["hash"] for c in commits],
            head_branch=((pull.get("source") or {}).get("branch") or {}).get("name"),
            base_branch=((pull.get("destination") or {}).get("branch") or {}).get("name"),
            review_comments=len(comments),
            url=((pull.get("links") or {}).get("html") or {}).get("href"),
        )
        reviews = _bitbucket_reviews(
            repository, number, author_key, activity, comments, pull.get("participants")
        )
        return [pull_request, *reviews, *_merged_commit_events(repository, pull_request, commits)]

    async def _full_sha(self, repository: RepositoryRef, hash_value: Any) -> str | None:
        """The full SHA of a (short) hash: from the hashes already seen, else `commit/{sha}` (one call,
        remembered). A commit Bitbucket does not know (404: history rewritten since the merge) is
        published without a merge commit rather than with a short hash nothing can match; it is
        logged and asked about once."""
        if not isinstance(hash_value, str) or not hash_value:
            return None
        sha = hash_value.lower()
        if FULL_SHA.match(sha):
            return sha
        known, full = self.commit_hashes.expand(repository.id, sha)
        if known:
            return full
        try:
            commit = await self._get(f"/repositories/{_path(repository.name)}/commit/{quote(sha, safe='')}")
        except NotFoundError:
            logger.warning(
                "merge commit not found, published without it",
                extra={"scope": repository.name, "sha": sha},
            )
            self.commit_hashes.answered(repository.id, sha, None)
            return None
        answer = str(commit.get("hash") or "").lower()
        resolved = answer if FULL_SHA.match(answer) and answer.startswith(sha) else None
        self.commit_hashes.answered(repository.id, sha, resolved)
        return resolved

    # ---- branches and tags ------------------------------------------------------------------------

    async def _refs(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """Branches and tags sorted by name (a natural order for branches), then the refs gone since
        the previous complete listing, with the snapshot as the cursor."""
        refs = f"/repositories/{_path(scope.name)}/refs"
        snapshot = RefSnapshot(cursor)
        async for page, _ in self._pages(f"{refs}/branches", [("sort", "name")]):
            branches: list[EventData] = [e for e in (_branch_event(repository, item) for item in page) if e]
            snapshot.saw(branches)
            yield Batch(branches)
        async for page, _ in self._pages(f"{refs}/tags", [("sort", "name")]):
            tags: list[EventData] = [e for e in (_tag_event(repository, item) for item in page) if e]
            snapshot.saw(tags)
            yield Batch(tags)
        yield Batch(snapshot.deleted(repository), snapshot.dump())

    # ---- deployments ------------------------------------------------------------------------------

    async def _deployments(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """In order of preference: Bitbucket deployments to production environments, pipelines whose
        custom-pipeline name (or ref) matches `deploymentPattern`, tags matching `tagPattern`."""
        cursor = dict(cursor or {})
        repo_path = f"/repositories/{_path(scope.name)}"
        environments: dict[str, str] = {}
        async for page, _ in self._pages(f"{repo_path}/environments/"):
            for environment in page:
                if self._is_production(environment):
                    environments[environment["uuid"]] = environment["name"]
        if environments:
            lane = self._deployment_lane(scope, repository, environments)
            async for events, state in self._stream(lane, cursor.get("deployments")):
                if state is not None:
                    cursor["deployments"] = state
                yield Batch(events, {**cursor, "source": "deployments"} if state is not None else None)
            return
        matched = bool((cursor.get("pipelines") or {}).get("matched"))
        async for events, state in self._stream(
            self._pipeline_lane(scope, repository), cursor.get("pipelines")
        ):
            matched = matched or bool(events)
            if state is not None:
                cursor["pipelines"] = state | {"matched": matched}
            yield Batch(events, {**cursor, "source": "pipelines" if matched else "tags"} if state else None)
        if matched:
            return
        async for events, state in self._stream(self._tag_lane(scope, repository), cursor.get("tags")):
            if state is not None:
                cursor["tags"] = state
            yield Batch(events, {**cursor, "source": "tags"} if state is not None else None)

    def _is_production(self, environment: Mapping[str, Any]) -> bool:
        kind = ((environment.get("environment_type") or {}).get("name") or "").lower()
        return bool(self.environment_pattern.search(environment.get("name", ""))) or kind == "production"

    def _stream(
        self, lane: Lane, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
        return stream_lane(lane, cursor, pages=self._pages, horizon=self._horizon(), now=self.clock())

    def _deployment_lane(
        self, scope: ScopeRef, repository: RepositoryRef, environments: Mapping[str, str]
    ) -> Lane:
        """One listing for all environments (no documented environment filter), newest start first;
        each production environment is its own lane for the previous-deployment comparison."""

        def started(item: Mapping[str, Any]) -> datetime | None:
            state = item.get("state") or {}
            release = item.get("release") or item.get("deployable") or {}
            return (
                parse_time_or_none(state.get("started_on"))
                or parse_time_or_none(state.get("start_date"))
                or parse_time_or_none(release.get("created_on"))
            )

        def sight(item: Mapping[str, Any]) -> DeploySighting[datetime] | None:
            environment = environments.get((item.get("environment") or {}).get("uuid", ""))
            status = _deployment_status(item.get("state") or {})
            sha = _deployment_sha(item)
            at = started(item)
            if environment is None or status is None or sha is None or at is None:
                return None
            return DeploySighting(environment, at, sha, status == "success", item, status == "in_progress")

        async def build(paired: Paired[datetime]) -> DeploymentData:
            item = paired.sighting.raw
            state = item.get("state") or {}
            release = item.get("release") or item.get("deployable") or {}
            status = _deployment_status(state) or "in_progress"
            shipped = await self._shipped(scope, paired)
            finished = parse_time_or_none(state.get("completed_on")) or parse_time_or_none(
                state.get("completion_date")
            )
            deployer = state.get("deployer")
            return DeploymentData(
                repository=repository,
                deployment_id=f"bitbucket:{scope.id}:deployment:{item['uuid']}",
                environment=paired.sighting.lane[:50],
                status=status,
                started_at=paired.sighting.at,
                finished_at=None if status == "in_progress" else finished,
                revision=paired.sighting.sha,
                commit_shas=shipped.shas,
                deployed_by=_account(deployer) if deployer else None,
                is_hotfix=is_hotfix(self.hotfix_pattern, [release.get("name")], shipped.messages),
                url=state.get("url") or release.get("url"),
            )

        return Lane(
            f"/repositories/{_path(scope.name)}/deployments/",
            lambda lo, hi: [("sort", "-state.started_on")],
            sight,
            build,
            order_key=started,
            pin_in_progress=True,
        )

    def _pipeline_lane(self, scope: ScopeRef, repository: RepositoryRef) -> Lane:
        def created(item: Mapping[str, Any]) -> datetime | None:
            return parse_time_or_none(item.get("created_on"))

        def sight(item: Mapping[str, Any]) -> DeploySighting[datetime] | None:
            target = item.get("target") or {}
            names = [(target.get("selector") or {}).get("pattern"), target.get("ref_name")]
            sha = (target.get("commit") or {}).get("hash")
            status = _pipeline_status(item.get("state") or {})
            at = created(item)
            deploys = any(name and self.deployment_pattern.search(name) for name in names)
            if not deploys or sha is None or status is None or at is None:
                return None
            return DeploySighting("production", at, sha, status == "success", item, status == "in_progress")

        async def build(paired: Paired[datetime]) -> DeploymentData:
            item = paired.sighting.raw
            target = item.get("target") or {}
            status = _pipeline_status(item.get("state") or {}) or "in_progress"
            shipped = await self._shipped(scope, paired)
            creator = item.get("creator")
            name = (target.get("selector") or {}).get("pattern")
            return DeploymentData(
                repository=repository,
                deployment_id=f"bitbucket:{scope.id}:pipeline:{item['uuid']}",
                environment="production",
                status=status,
                started_at=paired.sighting.at,
                finished_at=None if status == "in_progress" else parse_time_or_none(item.get("completed_on")),
                revision=paired.sighting.sha,
                commit_shas=shipped.shas,
                deployed_by=_account(creator) if creator else None,
                is_hotfix=is_hotfix(self.hotfix_pattern, [target.get("ref_name"), name], shipped.messages),
                url=f"{repository.url}/pipelines/results/{item['build_number']}" if repository.url else None,
            )

        return Lane(
            f"/repositories/{_path(scope.name)}/pipelines/",
            lambda lo, hi: [("sort", "-created_on")],
            sight,
            build,
            order_key=created,
            pin_in_progress=True,
        )

    def _tag_lane(self, scope: ScopeRef, repository: RepositoryRef) -> Lane:
        """Tags newest tagged commit first; the deployment time is the tag's own date (annotated
        tags), else its commit's date."""

        def committed(item: Mapping[str, Any]) -> datetime | None:
            return parse_time_or_none((item.get("target") or {}).get("date"))

        def sight(item: Mapping[str, Any]) -> DeploySighting[datetime] | None:
            sha = (item.get("target") or {}).get("hash")
            at = committed(item)
            if not self.tag_pattern.search(item.get("name", "")) or sha is None or at is None:
                return None
            return DeploySighting("production", at, sha, True, item)

        async def build(paired: Paired[datetime]) -> DeploymentData:
            tag = paired.sighting.raw
            target = tag.get("target") or {}
            shipped = await self._shipped(scope, paired)
            at = parse_time_or_none(tag.get("date")) or paired.sighting.at
            messages = [tag.get("message"), target.get("message"), *shipped.messages]
            return DeploymentData(
                repository=repository,
                deployment_id=f"bitbucket:{scope.id}:tag:{tag['name']}",
                environment="production",
                status="success",
                started_at=at,
                finished_at=at,
                revision=paired.sighting.sha,
                commit_shas=shipped.shas,
                is_hotfix=is_hotfix(self.hotfix_pattern, [tag.get("name")], messages),
                url=f"{repository.url}/src/{quote(tag['name'])}" if repository.url else None,
            )

        return Lane(
            f"/repositories/{_path(scope.name)}/refs/tags",
            lambda lo, hi: [("sort", "-target.date")],
            sight,
            build,
            order_key=committed,
        )

    async def _shipped(self, scope: ScopeRef, paired: Paired[datetime]) -> Shipped:
        """Commits reachable from the deployed revision and not from the previous successful one of
        the environment (`commits/{sha}?exclude={previous}`), newest first, at most `SHIPPED_PAGES`
        pages; see `shipped_without_listing` for when no call is needed."""
        known = shipped_without_listing(paired)
        if known is not None:
            return known
        sighting = paired.sighting
        shas: list[str] = []
        messages: list[str] = []
        pages = 0
        path = f"/repositories/{_path(scope.name)}/commits/{sighting.sha}"
        async for page, next_url in self._pages(path, [("exclude", paired.previous_sha)]):
            self.commit_hashes.remember(scope.id, (c["hash"] for c in page))
            shas += [c["hash"] for c in page]
            messages += [c.get("message") or "" for c in page]
            pages += 1
            if next_url and pages >= SHIPPED_PAGES:
                logger.warning(
                    "deployment shipped too many commits, list truncated", extra={"sha": sighting.sha}
                )
                break
        return Shipped(shas, messages)


class CommitHashes:
    """Full commit hashes the client has seen, per repository, to expand Bitbucket's short hashes
    without a call: the newest `limit` of them (least recently seen dropped first), indexed by their
    first seven characters, and the expansions asked of the API (including the ones it could not
    answer, so that those are asked about, and logged, once)."""

    PREFIX = 7  # the shortest abbreviation git prints

    def __init__(self, limit: int = RECENT_COMMITS) -> None:
        self.limit = limit
        self._recent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._by_prefix: dict[tuple[str, str], set[str]] = {}
        self._asked: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    def remember(self, repository_id: str, shas: Iterable[str]) -> None:
        for sha in shas:
            if not isinstance(sha, str) or not FULL_SHA.match(sha):
                continue
            key = (repository_id, sha)
            if key in self._recent:
                self._recent.move_to_end(key)
                continue
            self._recent[key] = None
            self._by_prefix.setdefault((repository_id, sha[: self.PREFIX]), set()).add(sha)
            if len(self._recent) > self.limit:
                (old_repository, old_sha), _ = self._recent.popitem(last=False)
                bucket = self._by_prefix[(old_repository, old_sha[: self.PREFIX])]
                bucket.discard(old_sha)
                if not bucket:
                    del self._by_prefix[(old_repository, old_sha[: self.PREFIX])]

    def expand(self, repository_id: str, short: str) -> tuple[bool, str | None]:
        """(known, full hash): known is False when only the API can tell (never seen, or ambiguous);
        a known None is a hash the API did not know."""
        if (repository_id, short) in self._asked:
            return True, self._asked[(repository_id, short)]
        if len(short) >= self.PREFIX:
            bucket = self._by_prefix.get((repository_id, short[: self.PREFIX]), set())
            matches = [sha for sha in bucket if sha.startswith(short)]
            if len(matches) == 1:
                return True, matches[0]
        return False, None

    def answered(self, repository_id: str, short: str, full: str | None) -> None:
        """What the API said of a short hash: its full hash, or None (unknown)."""
        self._asked[(repository_id, short)] = full
        if full is not None:
            self.remember(repository_id, (full,))
        if len(self._asked) > self.limit:
            self._asked.popitem(last=False)


# ---- Bitbucket payload mapping --------------------------------------------------------------------


def _restore_params(next_url: Any, asked: Params) -> str | None:
    """The `next` URL with the query parameters it dropped put back (httpx replaces, not merges, a
    URL's query when given `params`, so this is done on the URL itself)."""
    if not isinstance(next_url, str) or not next_url:
        return None
    url = httpx.URL(next_url)
    present = set(url.params.keys())
    missing = [(k, v) for k, v in asked if k in KEPT_PARAMS and k not in present]
    return str(url.copy_merge_params(httpx.QueryParams(missing))) if missing else next_url


def _path(full_name: str) -> str:
    workspace, _, slug = full_name.partition("/")
    return f"{quote(workspace, safe='')}/{quote(slug, safe='')}"


def _repository_scope(repository: Mapping[str, Any]) -> ScopeRef:
    return ScopeRef(
        name=repository["full_name"],
        id=repository["uuid"],
        attributes={
            "default_branch": (repository.get("mainbranch") or {}).get("name"),
            "url": ((repository.get("links") or {}).get("html") or {}).get("href"),
        },
    )


def _branch_event(repository: RepositoryRef, item: Mapping[str, Any]) -> BranchData | None:
    """Bitbucket flags no default branch in listings (the repository's `mainbranch` decides) and
    keeps protection in branch restrictions, a separate API: `protected` stays unknown. The head's
    `date` is the only commit time the API gives."""
    target = item.get("target") or {}
    if not item.get("name") or not target.get("hash"):
        return None
    return branch_data(
        repository, item["name"], target["hash"], updated_at=parse_time_or_none(target.get("date"))
    )


def _tag_event(repository: RepositoryRef, item: Mapping[str, Any]) -> TagData | None:
    """An annotated tag has its own `date`, `tagger` and `message`; a lightweight one has none of
    them and takes its commit's date."""
    target = item.get("target") or {}
    if not item.get("name") or not target.get("hash"):
        return None
    tag_date = parse_time_or_none(item.get("date"))
    tagger = item.get("tagger") or {}
    annotated = bool(tag_date or tagger or item.get("message"))
    return TagData(
        repository=repository,
        name=item["name"],
        sha=target["hash"],
        annotated=annotated,
        tagged_at=tag_date or parse_time_or_none(target.get("date")),
        tagger=_author(tagger) if tagger else None,
        message=item.get("message") or None,
    )


def _author(author: Mapping[str, Any]) -> PersonRef | None:
    """A git identity (`raw`: "Name <email>") with the Bitbucket account it matched, if any."""
    name, email = parseaddr(author.get("raw") or "")
    user = author.get("user") or {}
    return person_or_none(name or user.get("display_name"), email or None, user.get("nickname"))


def _account(account: Mapping[str, Any]) -> PersonRef:
    return person(account.get("display_name"), None, account.get("nickname"))


def _account_key(account: Mapping[str, Any]) -> str | None:
    key = account.get("uuid") or account.get("account_id") or account.get("nickname")
    return str(key) if key else None


def _merged_commit_events(
    repository: RepositoryRef, pull_request: PullRequestData, commits: Sequence[Mapping[str, Any]]
) -> list[EventData]:
    """A merged pull request's own commits, from the `/commits` listing already fetched, with its
    number: a squash merge leaves them off the main branch, and lead time starts at them, not at the
    squash commit. An open or declined pull request's commits shipped nothing. No diffstat calls, so
    no line counts; a commit without a date is skipped."""
    if pull_request.state != "merged":
        return []
    unique = {c["hash"]: c for c in commits if c.get("hash")}
    return [
        _commit_event(
            repository, item, [p["hash"] for p in item.get("parents") or []], None, pull_request.number
        )
        for item in unique.values()
        if parse_time_or_none(item.get("date"))
    ]


def _commit_event(
    repository: RepositoryRef,
    item: Mapping[str, Any],
    parents: list[str],
    stats: tuple[int, int, int] | None,
    pull_request_number: int | None = None,
) -> CommitData:
    author = item.get("author") or {}
    name, email = parseaddr(author.get("raw") or "")
    user = author.get("user") or {}
    message = item.get("message")
    pull = PULL_REQUEST_REF.search(message or "")
    if pull_request_number is None and pull:
        pull_request_number = int(pull.group(1))
    authored = parse_time_or_none(item.get("date"))
    assert authored is not None
    return CommitData(
        repository=repository,
        sha=item["hash"],
        author=person(name or user.get("display_name"), email or None, user.get("nickname")),
        authored_at=authored,
        message=message,
        additions=stats[0] if stats else None,
        deletions=stats[1] if stats else None,
        files_changed=stats[2] if stats else None,
        parents=parents,
        pull_request_number=pull_request_number,
    )


def _state_change_time(updates: Sequence[Mapping[str, Any]], state: str) -> datetime | None:
    """When the pull request reached its final state: the activity log's update entry for it (the
    pull request itself carries no merged/closed time)."""
    times = [parse_time_or_none(u.get("date")) for u in updates if u.get("state") == state]
    return min((t for t in times if t), default=None)


def _bitbucket_reviews(
    repository: RepositoryRef,
    number: int,
    author_key: str | None,
    activity: Sequence[Mapping[str, Any]],
    comments: Sequence[Mapping[str, Any]],
    participants: Any,
) -> list[EventData]:
    """Approvals and change requests from the activity log (with their times), reviewers who
    approved but whose approval fell off the log (participants, timed by `participated_on`), and one
    `commented` review per reviewer who only commented, timed at their first comment."""
    per_user: dict[str | None, list[Mapping[str, Any]]] = {}
    for comment in comments:
        per_user.setdefault(_account_key(comment.get("user") or {}), []).append(comment)
    reviews: list[EventData] = []
    approvers: set[str | None] = set()
    approvals: dict[str | None, tuple[datetime, Mapping[str, Any]]] = {}
    for entry in activity:
        approval = entry.get("approval")
        if approval:
            user = approval.get("user") or {}
            key, at = _account_key(user), parse_time_or_none(approval.get("date"))
            if at and key != author_key and (key not in approvals or at > approvals[key][0]):
                approvals[key] = (at, user)
        change = entry.get("changes_requested")
        if change:
            user = change.get("user") or {}
            at = parse_time_or_none(change.get("date"))
            if at and _account_key(user) != author_key:
                reviews.append(
                    CodeReviewData(
                        repository=repository,
                        pull_request_number=number,
                        review_id=f"changes:{_account_key(user)}:{iso(at)}",
                        reviewer=_account(user),
                        state="changes_requested",
                        submitted_at=at,
                    )
                )
    for participant in participants or []:
        user = participant.get("user") or {}
        key, at = _account_key(user), parse_time_or_none(participant.get("participated_on"))
        if participant.get("approved") and key not in approvals and key != author_key and at:
            approvals[key] = (at, user)
    for key, (at, user) in approvals.items():
        approvers.add(key)
        reviews.append(
            CodeReviewData(
                repository=repository,
                pull_request_number=number,
                review_id=f"approval:{key}",
                reviewer=_account(user),
                state="approved",
                submitted_at=at,
                comments_count=len(per_user.get(key, [])),
            )
        )
    for key, items in per_user.items():
        if key in approvers:
            continue
        first = min(t for t in (parse_time_or_none(c.get("created_on")) for c in items) if t)
        reviews.append(
            CodeReviewData(
                repository=repository,
                pull_request_number=number,
                review_id=f"comments:{key}",
                reviewer=_account(items[0].get("user") or {}),
                state="commented",
                submitted_at=first,
                comments_count=len(items),
            )
        )
    return reviews


def _deployment_status(state: Mapping[str, Any]) -> str | None:
    name = state.get("name")
    if name == "COMPLETED":
        return COMPLETED_STATUS.get((state.get("status") or {}).get("name", ""))
    if name == "IN_PROGRESS":
        return "in_progress"
    return None  # UNDEPLOYED: never ran


def _pipeline_status(state: Mapping[str, Any]) -> str | None:
    name = state.get("name")
    if name == "COMPLETED":
        return COMPLETED_STATUS.get((state.get("result") or {}).get("name", ""))
    if name in ("IN_PROGRESS", "PENDING"):
        return "in_progress"
    return None


def _deployment_sha(item: Mapping[str, Any]) -> str | None:
    release = item.get("release") or item.get("deployable") or {}
    sha = (release.get("commit") or {}).get("hash")
    return str(sha) if sha else None
