"""GitLab (gitlab.com and self-managed, REST v4) as a source of commits, merge requests, reviews,
deployments, branches, tags, releases and contributors.

Why REST and not GitLab's GraphQL: every self-managed version we must support has the REST endpoints
below with the same shapes, while the GraphQL schema moved a lot between 13.x and 17.x.

Calls are bounded by the cursor: commits walk `last_head..default_branch` (a revision range, so a
merge that brings in week-old commits is still seen, which a `since` date filter would miss); merge
requests are listed newest-updated first with `updated_after`, and only those get their approvals,
notes and commits fetched (three calls per changed MR; a merged MR's own commits are published from
that commit listing with its iid); deployments are read per production
environment with `updated_after`, and each successful one is compared with the previous successful
one of the same environment (one compare call) to list the commits it shipped. Branches, tags,
releases and contributors have no "changed since" filter: each run lists them in full (one call per
page, nothing per item), and the events of unchanged ones keep their ids.

The deployment pairing and the hotfix rule are shared with the other git providers
(`collectors.git.common`); scope globs, the time-window cursor and the error hints with every
collector (`collectors.common`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
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
    ContributorData,
    DeploymentData,
    EventData,
    PullRequestData,
    ReleaseData,
    RepositoryRef,
    TagData,
)
from doraflow.core.globs import glob_match, is_glob, literal_prefix
from doraflow.core.http import ForbiddenError, HttpClient, NotFoundError
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

GITLAB_DEFAULT_URL = "https://gitlab.com"
MERGE_REQUEST_REF = re.compile(r"See merge request (?:[\w.\-/]+)?!(\d+)")
PIPELINE_STATUS = {
    "success": "success",
    "failed": "failed",
    "canceled": "cancelled",
    "running": "in_progress",
}
ACCESS = ProviderAccess(
    provider="GitLab",
    repository_format="full path, e.g. group/subgroup/project",
    required_access="the read_api scope, and a user with at least the Reporter role on the projects",
    visibility="the token's user must be a member of the project or of its group",
)


def gitlab_api_url(base_url: str | None) -> str:
    base = (base_url or GITLAB_DEFAULT_URL).rstrip("/")
    return base if base.endswith("/api/v4") else f"{base}/api/v4"


def gitlab_auth_headers(credentials: str | None) -> dict[str, str]:
    """Personal, project, group and OAuth tokens all work as `Authorization: Bearer`; a secret written
    as `PRIVATE-TOKEN:<token>` is sent in GitLab's own header instead (some proxies strip
    Authorization)."""
    if not credentials:
        return {}
    token = credentials.strip()
    if token.upper().startswith("PRIVATE-TOKEN:"):
        return {"PRIVATE-TOKEN": token.split(":", 1)[1].strip()}
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return {"Authorization": f"Bearer {token}"}


class GitLabClient(SourceClient):
    provider: ClassVar[str] = "gitlab"
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
        page_size: int = 100,
        http_options: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(integration, credentials)
        self.page_size = page_size
        self.clock = clock or utc_now
        self.http = HttpClient(
            gitlab_api_url(integration.spec.base_url),
            headers=gitlab_auth_headers(credentials),
            **dict(http_options or {}),
        )
        rules = integration.spec.deployments
        self.environment_pattern = re.compile(rules.environment_pattern)
        self.deployment_pattern = re.compile(rules.deployment_pattern)
        self.tag_pattern = re.compile(rules.tag_pattern)
        self.hotfix_pattern = re.compile(rules.hotfix_pattern)

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def requests_made(self) -> int:
        return self.http.requests_made

    # ---- HTTP -------------------------------------------------------------------------------------

    async def _pages(
        self, path: str, params: Mapping[str, Any] | None = None, *, start_url: str | None = None
    ) -> AsyncIterator[tuple[list[Any], str | None]]:
        """Yield each page and the URL of the next one. `Link: rel="next"` (offset and keyset
        pagination alike); `x-next-page` when a proxy stripped the Link header."""
        url: str | None = start_url or path
        query: dict[str, Any] | None = None if start_url else {**(params or {}), "per_page": self.page_size}
        while url:
            response = await self.http.request("GET", url, params=query)
            body = response.json()
            next_url = _next_link(response, url, query)
            yield (body if isinstance(body, list) else []), next_url
            url, query = next_url, None

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.http.get_json(path, params=params)

    # ---- scopes -----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        try:
            return await expand_scope(
                self.integration.spec.scope, visible=self._member_projects, resolve=self._resolve
            )
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, None) from exc

    async def _member_projects(self) -> AsyncIterator[ScopeRef]:
        params = {"membership": "true", "archived": "false", "pagination": "keyset"}
        params |= {"order_by": "id", "sort": "asc"}
        async for page, _ in self._pages("/projects", params):
            for project in page:
                yield _project_scope(project)

    async def _resolve(self, pattern: str) -> list[ScopeRef]:
        """A literal path is looked up directly; a glob lists its group with subgroups. A path or group
        that is not found becomes an unresolved scope, so collecting it reports the error with a hint
        while the other projects keep collecting."""
        pattern = pattern.strip("/")
        if not is_glob(pattern):
            try:
                return [_project_scope(await self._get(f"/projects/{quote(pattern, safe='')}"))]
            except NotFoundError:
                return [unresolved_scope(pattern, f"GitLab project {pattern} not found")]
        group = literal_prefix(pattern)
        if not group:
            raise CollectorError(
                f"GitLab scope pattern {pattern!r} names no group",
                hint="Start repository globs with a group path, e.g. acme/* or acme/**.",
                scope=pattern,
            )
        refs: list[ScopeRef] = []
        params = {"include_subgroups": "true", "archived": "false", "order_by": "id", "sort": "asc"}
        try:
            async for page, _ in self._pages(f"/groups/{quote(group, safe='')}/projects", params):
                refs.extend(_project_scope(p) for p in page if glob_match(p["path_with_namespace"], pattern))
        except NotFoundError:
            return [unresolved_scope(pattern, f"GitLab group {group} not found")]
        return refs

    # ---- collect ----------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        try:
            if scope.attributes.get("unresolved"):
                scope = await resolve_again(scope, self._resolve, ACCESS)
            repository = repository_ref("gitlab", scope)
            if resource is Resource.COMMITS:
                async for batch in self._commits(scope, repository, cursor):
                    yield batch
            elif resource is Resource.PULL_REQUESTS:
                async for batch in self._merge_requests(scope, repository, cursor):
                    yield batch
            elif resource is Resource.DEPLOYMENTS:
                async for batch in self._deployments(scope, repository, cursor):
                    yield batch
            elif resource is Resource.BRANCHES_AND_TAGS:
                async for batch in self._refs(scope, repository, cursor):
                    yield batch
            elif resource is Resource.CONTRIBUTORS:
                async for batch in self._contributors(scope, repository):
                    yield batch
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, scope.name) from exc

    def _horizon(self) -> datetime:
        return backfill_horizon(self.integration, self.clock())

    # ---- commits ----------------------------------------------------------------------------------

    async def _commits(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """First sync: the default branch since the horizon, newest first; the next-page link is saved
        after each page so a restart resumes the back-fill. Later: `head..branch`, exactly the commits
        that became reachable since, whatever their dates."""
        branch = repository.default_branch or "HEAD"
        base = f"/projects/{scope.id}/repository/commits"
        cursor = cursor or {}
        head: str | None = cursor.get("head")
        head_at: str | None = cursor.get("head_at")
        owed_next: str | None = cursor.get("backfill_next")
        if head is None:
            params = {"ref_name": branch, "since": iso(self._horizon()), "with_stats": "true"}
            async for batch in self._commit_pages(base, params, None, repository, backfill=True):
                yield batch
            return
        new_head, new_head_at = head, head_at
        range_params = {"ref_name": f"{head}..{branch}", "with_stats": "true"}
        date_params = {"ref_name": branch, "since": head_at or iso(self._horizon()), "with_stats": "true"}
        for attempt, params in enumerate((range_params, date_params)):
            try:
                async for batch in self._commit_pages(base, params, None, repository):
                    if new_head == head and batch.events:
                        first = batch.events[0]
                        assert isinstance(first, CommitData)
                        new_head, new_head_at = first.sha, iso(first.committed_at or first.authored_at)
                    yield Batch(batch.events)
                break
            except NotFoundError:
                if attempt or new_head != head:
                    raise
                # the old head is gone (force push): read again from its date instead
                logger.warning("commit range base vanished, reading by date", extra={"scope": scope.name})
        yield Batch([], {"head": new_head, "head_at": new_head_at, "backfill_next": owed_next})
        if owed_next:
            async for batch in self._commit_pages(
                base, {}, owed_next, repository, backfill=True, head=(new_head, new_head_at)
            ):
                yield batch

    async def _commit_pages(
        self,
        path: str,
        params: Mapping[str, Any],
        start_url: str | None,
        repository: RepositoryRef,
        *,
        backfill: bool = False,
        head: tuple[str | None, str | None] | None = None,
    ) -> AsyncIterator[Batch]:
        head_sha, head_at = head if head else (None, None)
        async for page, next_url in self._pages(path, params, start_url=start_url):
            events: list[EventData] = [_commit_event(repository, item) for item in page]
            if head_sha is None and events:
                first = events[0]
                assert isinstance(first, CommitData)
                head_sha, head_at = first.sha, iso(first.committed_at or first.authored_at)
            cursor = None
            if backfill and head_sha is not None:
                cursor = {"head": head_sha, "head_at": head_at, "backfill_next": next_url}
            yield Batch(events, cursor)

    # ---- merge requests ---------------------------------------------------------------------------

    async def _merge_requests(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        async def pages(window: WindowPass) -> AsyncIterator[list[Any]]:
            params = {"state": "all", "order_by": "updated_at", "sort": "desc"}
            params |= _updated_range(window.lo, window.hi)
            async for page, _ in self._pages(f"/projects/{scope.id}/merge_requests", params):
                yield page

        async for events, window_cursor in stream_window(
            cursor,
            horizon=self._horizon(),
            now=self.clock(),
            pages=pages,
            updated_at=lambda mr: parse_time_or_none(mr.get("updated_at")),
            events=lambda mr: self._merge_request_events(scope, repository, mr),
        ):
            yield Batch(events, window_cursor)

    async def _merge_request_events(
        self, scope: ScopeRef, repository: RepositoryRef, mr: Mapping[str, Any]
    ) -> list[EventData]:
        iid = int(mr["iid"])
        base = f"/projects/{scope.id}/merge_requests/{iid}"
        author = mr.get("author") or {}
        author_id = author.get("id")
        commits: list[Mapping[str, Any]] = []
        async for page, _ in self._pages(f"{base}/commits"):
            commits.extend(page)
        notes: list[Mapping[str, Any]] = []
        async for page, _ in self._pages(f"{base}/notes", {"sort": "asc", "order_by": "created_at"}):
            notes.extend(page)
        approved_by: list[Mapping[str, Any]] = []
        try:
            approvals = await self._get(f"{base}/approvals")
            approved_by = list(approvals.get("approved_by") or [])
        except (NotFoundError, ForbiddenError):
            pass  # approvals unavailable on this instance/tier: the system notes still say who approved

        comments = [
            n for n in notes if not n.get("system") and (n.get("author") or {}).get("id") != author_id
        ]
        reviews = _gitlab_reviews(repository, iid, author_id, notes, approved_by, comments)
        commit_times = [
            t
            for t in (parse_time_or_none(c.get("authored_date") or c.get("created_at")) for c in commits)
            if t
        ]
        created = parse_time_or_none(mr.get("created_at"))
        assert created is not None
        state = {"opened": "open", "locked": "open", "merged": "merged"}.get(mr.get("state", ""), "closed")
        merge_sha = mr.get("merge_commit_sha") or mr.get("squash_commit_sha")
        pull_request = PullRequestData(
            repository=repository,
            number=iid,
            title=mr.get("title"),
            author=person(author.get("name"), None, author.get("username")),
            state=state,
            created_at=created,
            updated_at=parse_time_or_none(mr.get("updated_at")),
            merged_at=parse_time_or_none(mr.get("merged_at")),
            closed_at=parse_time_or_none(mr.get("closed_at")),
            first_commit_at=min(commit_times) if commit_times else None,
            merge_commit_sha=merge_sha,
            commit_shas=[c["id"] for c in commits],
            head_branch=mr.get("source_branch"),
            base_branch=mr.get("target_branch"),
            review_comments=len(comments),
            url=mr.get("web_url"),
        )
        return [pull_request, *reviews, *_merged_commit_events(repository, pull_request, commits)]

    # ---- branches, tags, releases, contributors ---------------------------------------------------

    async def _refs(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """Branches (offset pages, by name), tags (keyset pages by name: `page_token`, so a tag pushed
        during the listing cannot shift one off a page) and releases, then the refs gone since the
        previous complete listing, with the snapshot as the cursor."""
        base = f"/projects/{scope.id}"
        snapshot = RefSnapshot(cursor)
        async for page, _ in self._pages(f"{base}/repository/branches"):
            branches: list[EventData] = [e for e in (_branch_event(repository, item) for item in page) if e]
            snapshot.saw(branches)
            yield Batch(branches)
        tag_params = {"pagination": "keyset", "order_by": "name", "sort": "asc"}
        async for page, _ in self._pages(f"{base}/repository/tags", tag_params):
            tags: list[EventData] = [e for e in (_tag_event(repository, item) for item in page) if e]
            snapshot.saw(tags)
            yield Batch(tags)
        async for page, _ in self._pages(f"{base}/releases", {"order_by": "created_at", "sort": "desc"}):
            yield Batch([event for event in (_release_event(repository, item) for item in page) if event])
        yield Batch(snapshot.deleted(repository), snapshot.dump())

    async def _contributors(self, scope: ScopeRef, repository: RepositoryRef) -> AsyncIterator[Batch]:
        """Commit authors of the default branch with their commit counts, one per name and email as git
        recorded them (GitLab does not map them to accounts here; the processor resolves people)."""
        path = f"/projects/{scope.id}/repository/contributors"
        async for page, _ in self._pages(path, {"order_by": "commits", "sort": "desc"}):
            yield Batch([event for event in (_contributor_event(repository, item) for item in page) if event])

    # ---- deployments ------------------------------------------------------------------------------

    async def _deployments(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """In order of preference: GitLab deployments to production environments, pipelines whose name
        matches `deploymentPattern`, tags matching `tagPattern`. Environments are checked on every run
        (cheap), so a project that starts using them switches over."""
        cursor = dict(cursor or {})
        environments: list[Mapping[str, Any]] = []
        async for page, _ in self._pages(f"/projects/{scope.id}/environments"):
            environments.extend(e for e in page if self._is_production(e))
        if environments:
            state = dict(cursor.get("environments") or {})
            for environment in environments:
                name = str(environment["name"])
                lane_cursor = state.get(name)
                async for events, lane_state in self._environment_lane(scope, repository, name, lane_cursor):
                    if lane_state is not None:
                        state[name] = lane_state
                        yield Batch(events, {**cursor, "source": "environments", "environments": dict(state)})
                    else:
                        yield Batch(events)
            return
        pipelines_cursor = cursor.get("pipelines")
        matched = bool(pipelines_cursor and pipelines_cursor.get("matched"))
        async for events, lane_state in self._pipeline_lane(scope, repository, pipelines_cursor):
            matched = matched or bool(events)
            if lane_state is not None:
                lane_state["matched"] = matched
                cursor["pipelines"] = lane_state
                yield Batch(events, {**cursor, "source": "pipelines" if matched else "tags"})
            else:
                yield Batch(events)
        if matched:
            return
        async for events, lane_state in self._tag_lane(scope, repository, cursor.get("tags")):
            if lane_state is not None:
                cursor["tags"] = lane_state
                yield Batch(events, {**cursor, "source": "tags"})
            else:
                yield Batch(events)

    def _is_production(self, environment: Mapping[str, Any]) -> bool:
        name = str(environment.get("name", ""))
        return bool(self.environment_pattern.search(name)) or environment.get("tier") == "production"

    async def _environment_lane(
        self, scope: ScopeRef, repository: RepositoryRef, environment: str, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
        def listing(lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
            params: dict[str, Any] = {"environment": environment, "order_by": "updated_at", "sort": "desc"}
            return params | _updated_range(lo, hi)

        def sight(item: Mapping[str, Any]) -> DeploySighting[datetime] | None:
            status = item.get("status")
            at = parse_time_or_none(item.get("updated_at"))
            if status not in PIPELINE_STATUS or at is None or not item.get("sha"):
                return None  # created/blocked/skipped: not started, nothing to report yet
            return DeploySighting(environment, at, item["sha"], status == "success", item)

        async def build(paired: Paired[datetime]) -> DeploymentData:
            item = paired.sighting.raw
            deployable = item.get("deployable") or {}
            shipped = await self._shipped(scope, paired)
            commit = deployable.get("commit") or {}
            started = parse_time_or_none(deployable.get("started_at")) or parse_time_or_none(
                item.get("created_at")
            )
            status = PIPELINE_STATUS[item["status"]]
            finished = None
            if status != "in_progress":
                finished = parse_time_or_none(deployable.get("finished_at")) or parse_time_or_none(
                    item.get("updated_at")
                )
            user = item.get("user") or {}
            return DeploymentData(
                repository=repository,
                deployment_id=f"gitlab:{scope.id}:deployment:{item['id']}",
                environment=environment[:50],
                status=status,
                started_at=started or paired.sighting.at,
                finished_at=finished,
                revision=item["sha"],
                commit_shas=shipped.shas,
                deployed_by=person(user.get("name"), None, user.get("username")) if user else None,
                is_hotfix=is_hotfix(
                    self.hotfix_pattern,
                    [item.get("ref"), deployable.get("name")],
                    [commit.get("message"), *shipped.messages],
                ),
                url=(deployable.get("pipeline") or {}).get("web_url"),
            )

        def older(lo: datetime) -> dict[str, Any]:
            return listing(None, lo) | {"status": "success"}

        lane = Lane(f"/projects/{scope.id}/deployments", listing, sight, build, older=older)
        async for result in self._stream(lane, cursor):
            yield result

    async def _pipeline_lane(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
        path = f"/projects/{scope.id}/pipelines"

        def listing(lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
            return {"order_by": "updated_at", "sort": "desc"} | _updated_range(lo, hi)

        def sight(item: Mapping[str, Any]) -> DeploySighting[datetime] | None:
            name = item.get("name") or ""
            at = parse_time_or_none(item.get("updated_at"))
            status = item.get("status")
            if not self.deployment_pattern.search(name) or status not in PIPELINE_STATUS or at is None:
                return None
            return DeploySighting("production", at, item["sha"], status == "success", item)

        async def build(paired: Paired[datetime]) -> DeploymentData:
            summary = paired.sighting.raw
            detail = await self._get(f"{path}/{summary['id']}")  # started/finished/user: not in the list
            shipped = await self._shipped(scope, paired)
            status = PIPELINE_STATUS[summary["status"]]
            user = detail.get("user") or {}
            finished = None
            if status != "in_progress":
                finished = parse_time_or_none(detail.get("finished_at")) or paired.sighting.at
            return DeploymentData(
                repository=repository,
                deployment_id=f"gitlab:{scope.id}:pipeline:{summary['id']}",
                environment="production",
                status=status,
                started_at=parse_time_or_none(detail.get("started_at"))
                or parse_time_or_none(summary.get("created_at")),
                finished_at=finished,
                revision=summary["sha"],
                commit_shas=shipped.shas,
                deployed_by=person(user.get("name"), None, user.get("username")) if user else None,
                is_hotfix=is_hotfix(
                    self.hotfix_pattern, [summary.get("ref"), summary.get("name")], shipped.messages
                ),
                url=summary.get("web_url"),
            )

        lane = Lane(path, listing, sight, build, older=lambda lo: listing(None, lo))
        async for result in self._stream(lane, cursor):
            yield result

    async def _tag_lane(
        self, scope: ScopeRef, repository: RepositoryRef, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
        """Tags come newest commit first with no server-side date filter: the window is applied to
        the tagged commit's date here. The deployment time is the tag's creation (annotated tags),
        else the commit's date."""

        def listing(lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
            return {"order_by": "updated", "sort": "desc"}

        def sight(item: Mapping[str, Any]) -> DeploySighting[datetime] | None:
            commit = item.get("commit") or {}
            at = parse_time_or_none(commit.get("committed_date"))
            if not self.tag_pattern.search(item.get("name", "")) or at is None or not commit.get("id"):
                return None
            return DeploySighting("production", at, commit["id"], True, item)

        def order_key(item: Mapping[str, Any]) -> datetime | None:
            return parse_time_or_none((item.get("commit") or {}).get("committed_date"))

        async def build(paired: Paired[datetime]) -> DeploymentData:
            tag = paired.sighting.raw
            commit = tag.get("commit") or {}
            shipped = await self._shipped(scope, paired)
            at = parse_time_or_none(tag.get("created_at")) or paired.sighting.at
            messages = [tag.get("message"), commit.get("message"), *shipped.messages]
            return DeploymentData(
                repository=repository,
                deployment_id=f"gitlab:{scope.id}:tag:{tag['name']}",
                environment="production",
                status="success",
                started_at=at,
                finished_at=at,
                revision=commit["id"],
                commit_shas=shipped.shas,
                is_hotfix=is_hotfix(self.hotfix_pattern, [tag.get("name")], messages),
                url=f"{repository.url}/-/tags/{quote(tag['name'])}" if repository.url else None,
            )

        lane = Lane(f"/projects/{scope.id}/repository/tags", listing, sight, build, order_key=order_key)
        async for result in self._stream(lane, cursor):
            yield result

    def _stream(
        self, lane: Lane, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
        return stream_lane(lane, cursor, pages=self._pages, horizon=self._horizon(), now=self.clock())

    async def _shipped(self, scope: ScopeRef, paired: Paired[datetime]) -> Shipped:
        """Commits a successful deployment shipped, `compare previous..this`, and their messages (for
        the hotfix rule); see `shipped_without_listing` for when no call is needed."""
        known = shipped_without_listing(paired)
        if known is not None:
            return known
        compare = await self._get(
            f"/projects/{scope.id}/repository/compare",
            {"from": paired.previous_sha, "to": paired.sighting.sha},
        )
        commits = compare.get("commits") or []
        return Shipped(
            [c["id"] for c in commits], [c.get("message") or c.get("title") or "" for c in commits]
        )


# ---- GitLab payload mapping -----------------------------------------------------------------------


def _next_link(response: httpx.Response, url: str, query: Mapping[str, Any] | None) -> str | None:
    link = response.links.get("next")
    if link and link.get("url"):
        return str(link["url"])
    next_page = response.headers.get("x-next-page")
    if next_page:
        merged = httpx.URL(str(response.request.url)).copy_merge_params({"page": next_page})
        return str(merged)
    return None


def _updated_range(lo: datetime | None, hi: datetime | None) -> dict[str, Any]:
    """`updated_after`/`updated_before` for a window; the upper bound is inclusive in the cursor (a
    resumed back-fill must re-read the item it stopped at), so a second of slack is added."""
    params: dict[str, Any] = {}
    if lo is not None:
        params["updated_after"] = iso(lo)
    if hi is not None:
        params["updated_before"] = iso(hi + timedelta(seconds=1))
    return params


def _project_scope(project: Mapping[str, Any]) -> ScopeRef:
    return ScopeRef(
        name=project["path_with_namespace"],
        id=str(project["id"]),
        attributes={"default_branch": project.get("default_branch"), "url": project.get("web_url")},
    )


def _branch_event(repository: RepositoryRef, item: Mapping[str, Any]) -> BranchData | None:
    """Current GitLab versions flag the default branch (`default`); where a version does not, the
    project's default branch decides. A branch without a commit is skipped (nothing to point at)."""
    commit = item.get("commit") or {}
    if not item.get("name") or not commit.get("id"):
        return None
    default = item.get("default")
    return branch_data(
        repository,
        item["name"],
        commit["id"],
        default=default if isinstance(default, bool) else None,
        protected=item.get("protected") if isinstance(item.get("protected"), bool) else None,
        updated_at=parse_time_or_none(commit.get("committed_date")),
    )


def _tag_event(repository: RepositoryRef, item: Mapping[str, Any]) -> TagData | None:
    """An annotated tag's `target` is its tag object, not the commit, and it has a `created_at` (the
    tagger time, GitLab 16.11+) and usually a message; a lightweight tag's `target` is the commit. The
    tags API names no tagger."""
    commit = item.get("commit") or {}
    if not item.get("name") or not commit.get("id"):
        return None
    target = item.get("target")
    annotated = bool(target and target != commit["id"]) or bool(item.get("message"))
    tagged_at = parse_time_or_none(item.get("created_at")) if annotated else None
    return TagData(
        repository=repository,
        name=item["name"],
        sha=commit["id"],
        annotated=annotated,
        tagged_at=tagged_at or parse_time_or_none(commit.get("committed_date")),
        message=item.get("message") or None,
    )


def _release_event(repository: RepositoryRef, item: Mapping[str, Any]) -> ReleaseData | None:
    """A GitLab release is keyed by its tag (the API has no other id). An upcoming release
    (`released_at` in the future) is not published yet: no `published_at` until a later run sees it
    released. GitLab has neither drafts nor pre-releases."""
    created = parse_time_or_none(item.get("created_at"))
    if not item.get("tag_name") or created is None:
        return None
    author = item.get("author") or {}
    released = None if item.get("upcoming_release") else parse_time_or_none(item.get("released_at"))
    name = item.get("name")
    return ReleaseData(
        repository=repository,
        release_id=item["tag_name"],
        tag_name=item["tag_name"],
        name=name[:255] if isinstance(name, str) and name else None,
        created_at=created,
        published_at=released,
        author=person_or_none(author.get("name"), None, author.get("username")),
        url=(item.get("_links") or {}).get("self"),
    )


def _contributor_event(repository: RepositoryRef, item: Mapping[str, Any]) -> ContributorData | None:
    who = person_or_none(item.get("name"), item.get("email"))
    if who is None:
        return None
    commits = item.get("commits")
    return ContributorData(
        repository=repository,
        person=who,
        contributions=commits if isinstance(commits, int) and commits >= 0 else None,
    )


def _merged_commit_events(
    repository: RepositoryRef, pull_request: PullRequestData, commits: Sequence[Mapping[str, Any]]
) -> list[EventData]:
    """A merged merge request's own commits, from the `/commits` listing already fetched, with its
    iid: a squash merge leaves them off the default branch, and lead time starts at them, not at the
    squash commit. An open or closed-unmerged merge request's commits shipped nothing. That listing
    has no line stats, and its `parent_ids` is empty on some versions; a commit without a date is
    skipped."""
    if pull_request.state != "merged":
        return []
    unique = {c["id"]: c for c in commits if c.get("id")}
    return [
        _commit_event(repository, item, pull_request.number)
        for item in unique.values()
        if parse_time_or_none(item.get("authored_date")) or parse_time_or_none(item.get("created_at"))
    ]


def _commit_event(
    repository: RepositoryRef, item: Mapping[str, Any], pull_request_number: int | None = None
) -> CommitData:
    stats = item.get("stats") or {}
    message = item.get("message") or item.get("title")
    mr = MERGE_REQUEST_REF.search(message or "")
    if pull_request_number is None and mr:
        pull_request_number = int(mr.group(1))
    authored = parse_time_or_none(item.get("authored_date")) or parse_time_or_none(item.get("created_at"))
    assert authored is not None
    return CommitData(
        repository=repository,
        sha=item["id"],
        author=person(item.get("author_name"), item.get("author_email")),
        authored_at=authored,
        committed_at=parse_time_or_none(item.get("committed_date")),
        message=message,
        additions=stats.get("additions"),
        deletions=stats.get("deletions"),
        parents=list(item.get("parent_ids") or []),
        pull_request_number=pull_request_number,
    )


APPROVED_NOTE = re.compile(r"^approved this merge request", re.IGNORECASE)
CHANGES_NOTE = re.compile(r"^requested changes", re.IGNORECASE)


def _gitlab_reviews(
    repository: RepositoryRef,
    iid: int,
    author_id: Any,
    notes: Sequence[Mapping[str, Any]],
    approved_by: Sequence[Mapping[str, Any]],
    comments: Sequence[Mapping[str, Any]],
) -> list[EventData]:
    """One review per approval and per requested-changes (from the approvals API, timed by its
    `approved_at` or the "approved this merge request" system note), plus one `commented` review per
    reviewer who only commented, timed at their first comment: what time-to-first-review and review
    depth need, without one event per note."""
    approval_times: dict[Any, datetime] = {}
    reviews: list[EventData] = []
    for note in notes:
        user = note.get("author") or {}
        if note.get("system") and APPROVED_NOTE.match(note.get("body") or ""):
            at = parse_time_or_none(note.get("created_at"))
            if at:
                approval_times[user.get("id")] = at
        elif (
            note.get("system") and CHANGES_NOTE.match(note.get("body") or "") and user.get("id") != author_id
        ):
            at = parse_time_or_none(note.get("created_at"))
            if at:
                reviews.append(
                    CodeReviewData(
                        repository=repository,
                        pull_request_number=iid,
                        review_id=f"note:{note['id']}",
                        reviewer=person(user.get("name"), None, user.get("username")),
                        state="changes_requested",
                        submitted_at=at,
                    )
                )
    per_user: dict[Any, list[Mapping[str, Any]]] = {}
    for comment in comments:
        per_user.setdefault((comment.get("author") or {}).get("id"), []).append(comment)
    approvers: set[Any] = set()
    for approval in approved_by:
        user = approval.get("user") or {}
        user_id = user.get("id")
        at = parse_time_or_none(approval.get("approved_at")) or approval_times.get(user_id)
        if at is None or user_id == author_id:
            continue
        approvers.add(user_id)
        reviews.append(
            CodeReviewData(
                repository=repository,
                pull_request_number=iid,
                review_id=f"approval:{user_id}",
                reviewer=person(user.get("name"), None, user.get("username")),
                state="approved",
                submitted_at=at,
                comments_count=len(per_user.get(user_id, [])),
            )
        )
    for user_id, items in per_user.items():
        if user_id in approvers:
            continue
        user = items[0].get("author") or {}
        first = min(t for t in (parse_time_or_none(c.get("created_at")) for c in items) if t)
        reviews.append(
            CodeReviewData(
                repository=repository,
                pull_request_number=iid,
                review_id=f"comments:{user_id}",
                reviewer=person(user.get("name"), None, user.get("username")),
                state="commented",
                submitted_at=first,
                comments_count=len(items),
            )
        )
    return reviews
