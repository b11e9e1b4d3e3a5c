"""GitLab (gitlab.com and self-managed, REST v4) as a source of commits, merge requests, reviews and
deployments.

Why REST and not GitLab's GraphQL: every self-managed version we must support has the REST endpoints
below with the same shapes, while the GraphQL schema moved a lot between 13.x and 17.x.

Calls are bounded by the cursor: commits walk `last_head..default_branch` (a revision range, so a
merge that brings in week-old commits is still seen, which a `since` date filter would miss); merge
requests are listed newest-updated first with `updated_after`, and only those get their approvals,
notes and commits fetched (three calls per changed MR); deployments are read per production
environment with `updated_after`, and each successful one is compared with the previous successful
one of the same environment (one compare call) to list the commits it shipped.

The first half of this module holds provider-neutral helpers (scope globs, time-window cursors,
deployment → previous-deployment pairing, hotfix detection) that the Bitbucket client imports too;
they belong in a shared `collectors/git` module once the GitHub client settles its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef, SourceClient
from doraflow.core.events import (
    CodeReviewData,
    CommitData,
    DeploymentData,
    EventData,
    PersonRef,
    PullRequestData,
    RepositoryRef,
)
from doraflow.core.http import (
    AuthenticationError,
    ForbiddenError,
    HttpClient,
    HttpError,
    NotFoundError,
)
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------------------------------
# Provider-neutral helpers (candidates for a shared collectors/git module)
# --------------------------------------------------------------------------------------------------


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """`*` matches within one path segment, `**` across segments (`acme/**` includes subgroups),
    `?` one character; case-insensitive because GitLab and Bitbucket paths are."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out), re.IGNORECASE)


def glob_match(name: str, pattern: str) -> bool:
    return glob_regex(pattern).fullmatch(name) is not None


def literal_prefix(pattern: str) -> str:
    """The path segments before the first glob segment: the group/workspace to list."""
    segments: list[str] = []
    for segment in pattern.split("/"):
        if is_glob(segment):
            break
        segments.append(segment)
    return "/".join(segments)


def excluded(name: str, excludes: Iterable[str]) -> bool:
    return any(glob_match(name, pattern) for pattern in excludes)


def parse_time(value: Any) -> datetime | None:
    """Provider timestamps are ISO 8601 with an offset or `Z`; anything else is treated as absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def matches_any(pattern: str, texts: Iterable[str | None]) -> bool:
    """Hotfix rule (`hotfixPattern`): any of the ref, run name, tag, or shipped commit messages."""
    compiled = re.compile(pattern)
    return any(text and compiled.search(text) for text in texts)


def person(name: Any = None, email: Any = None, username: Any = None) -> PersonRef:
    def clean(value: Any) -> str | None:
        return str(value)[:255] if isinstance(value, str) and value else None

    return PersonRef(name=clean(name), email=clean(email), username=clean(username))


@dataclass
class TimeWindow:
    """Cursor for resources listed newest first with a time filter (merge requests by `updated_at`,
    deployments, CI runs, tags).

    `since`: everything at or after it was collected by earlier runs. `owed_after`/`owed_before`: a
    back-fill range still owed — the first sync owes `[horizon, now)`, and an interrupted back-fill
    resumes at the oldest item it had safely published instead of starting over. Each run reads the
    new range `[since, now)` first (recent data appears first), then the owed range, newest first.
    """

    since: datetime | None = None
    owed_after: datetime | None = None
    owed_before: datetime | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any] | None, horizon: datetime) -> TimeWindow:
        if not raw:
            return cls(since=None, owed_after=horizon, owed_before=None)
        owed = raw.get("owed") or {}
        return cls(
            since=parse_time(raw.get("since")),
            owed_after=parse_time(owed.get("after")),
            owed_before=parse_time(owed.get("before")),
        )

    def dump(self) -> dict[str, Any]:
        owed = None
        if self.owed_after is not None:
            owed = {"after": iso(self.owed_after), "before": self.owed_before and iso(self.owed_before)}
        return {"since": self.since and iso(self.since), "owed": owed}


@dataclass(frozen=True)
class WindowPass:
    """A range to read. The new-data pass starts just after `since` (what is at `since` was seen);
    the back-fill pass includes both ends (`hi` is where an interrupted back-fill stopped, and that
    item may be the one it had not published yet)."""

    lo: datetime
    hi: datetime | None  # None: up to now
    backfill: bool

    def below(self, moment: datetime) -> bool:
        return moment < self.lo if self.backfill else moment <= self.lo

    def contains(self, moment: datetime) -> bool:
        return not self.below(moment) and (self.hi is None or moment <= self.hi)


class WindowRun:
    """One run over a `TimeWindow`: the ranges to read and the cursor to save after each page.

    During the new-data pass nothing is saved until it completes (a crash re-reads it: events are
    idempotent); during the back-fill pass every page moves `owed_before` down to the oldest point
    below which nothing was published yet, so a restart neither skips nor repeats much.
    """

    def __init__(self, window: TimeWindow, started_at: datetime) -> None:
        self.window = window
        self.started_at = started_at
        self.newest: datetime | None = None
        self.pinned: datetime | None = None

    def passes(self) -> list[WindowPass]:
        result: list[WindowPass] = []
        if self.window.since is not None:
            result.append(WindowPass(self.window.since, None, backfill=False))
        if self.window.owed_after is not None:
            result.append(WindowPass(self.window.owed_after, self.window.owed_before, backfill=True))
        return result

    def saw(self, moment: datetime | None) -> None:
        if moment is not None and (self.newest is None or moment > self.newest):
            self.newest = moment

    def pin(self, moment: datetime) -> None:
        """Keep `since` below `moment`: the item there will change without its time changing (a
        running deployment keeps its start time), so the next run must read it again."""
        moment -= timedelta(microseconds=1)
        if self.pinned is None or moment < self.pinned:
            self.pinned = moment

    def _since(self) -> datetime:
        candidates = [m for m in (self.newest, self.window.since) if m is not None]
        since = max(candidates) if candidates else self.started_at
        return min(since, self.pinned) if self.pinned is not None else since

    def page_cursor(self, current: WindowPass, published_down_to: datetime | None) -> dict[str, Any] | None:
        if not current.backfill:
            return None
        before = published_down_to if published_down_to is not None else current.hi
        return TimeWindow(self._since(), current.lo, before).dump()

    def pass_done_cursor(self, current: WindowPass) -> dict[str, Any]:
        if current.backfill:
            return TimeWindow(self._since(), None, None).dump()
        return TimeWindow(self._since(), self.window.owed_after, self.window.owed_before).dump()


@dataclass
class DeploySighting:
    """A deployment (or CI run, or tag) seen while reading newest first."""

    lane: str  # the environment: commits shipped are relative to the previous success in the lane
    at: datetime  # the ordering key of the listing
    sha: str
    success: bool
    raw: Any = None
    in_progress: bool = False


@dataclass
class Paired:
    sighting: DeploySighting
    previous_sha: str | None  # previous successful deployment of the lane; None: none known


@dataclass
class DeploymentPairer:
    """Pairs each successful deployment with the previous successful one of the same environment
    while the listing streams newest first: a success is held until the next (older) success of its
    lane shows up. `known` holds the newest success per lane from earlier runs (the predecessor of
    the oldest new deployment)."""

    known: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    pending: dict[str, DeploySighting] = field(default_factory=dict)
    newest_success: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def push(self, sighting: DeploySighting) -> list[Paired]:
        if not sighting.success:
            return [Paired(sighting, None)]
        lane = sighting.lane
        current = self.newest_success.get(lane)
        if current is None or sighting.at > current[1]:
            self.newest_success[lane] = (sighting.sha, sighting.at)
        ready: list[Paired] = []
        held = self.pending.get(lane)
        if held is not None:
            ready.append(Paired(held, sighting.sha))
        self.pending[lane] = sighting
        return ready

    def held_newest(self) -> datetime | None:
        """The newest deployment still held: a restarted back-fill must read again from there."""
        return max((s.at for s in self.pending.values()), default=None)

    def resolve_from_known(self) -> list[Paired]:
        ready: list[Paired] = []
        for lane, held in list(self.pending.items()):
            known = self.known.get(lane)
            if known is not None and known[1] < held.at:
                ready.append(Paired(held, known[0]))
                del self.pending[lane]
        return ready

    def offer_older(self, sighting: DeploySighting) -> list[Paired]:
        """An item beyond the window, read only to find predecessors."""
        held = self.pending.get(sighting.lane)
        if held is None or not sighting.success or sighting.at >= held.at:
            return []
        del self.pending[sighting.lane]
        return [Paired(held, sighting.sha)]

    def drain(self) -> list[Paired]:
        ready = [Paired(held, None) for held in self.pending.values()]
        self.pending.clear()
        return ready

    def last_successes(self) -> dict[str, tuple[str, datetime]]:
        merged = dict(self.known)
        for lane, (sha, at) in self.newest_success.items():
            if lane not in merged or at > merged[lane][1]:
                merged[lane] = (sha, at)
        return merged


def dump_successes(successes: Mapping[str, tuple[str, datetime]]) -> dict[str, Any]:
    return {lane: {"sha": sha, "at": iso(at)} for lane, (sha, at) in successes.items()}


def load_successes(raw: Any) -> dict[str, tuple[str, datetime]]:
    result: dict[str, tuple[str, datetime]] = {}
    if isinstance(raw, Mapping):
        for lane, value in raw.items():
            at = parse_time(value.get("at")) if isinstance(value, Mapping) else None
            if at is not None and isinstance(value.get("sha"), str):
                result[str(lane)] = (value["sha"], at)
    return result


Pages = Callable[[str, Any], AsyncIterator[tuple[list[Any], str | None]]]


@dataclass(frozen=True)
class Lane:
    """One deployment listing: how to query a time range of it (`listing`), which items are
    deployments (`sight`), and how to turn a paired deployment into an event (`build`).

    `order_key` is set for listings without a server-side date filter (tags, Bitbucket): the window
    is then applied client-side on that key, and reading goes on a few pages below the window while a
    held deployment still needs its predecessor. Server-filtered listings give `older` instead: the
    query for items below the window's lower edge. `pin_in_progress`: the listing's time never
    changes when a run finishes (a start time), so the cursor must not move past a running one.
    """

    path: str
    listing: Callable[[datetime | None, datetime | None], Any]
    sight: Callable[[Mapping[str, Any]], DeploySighting | None]
    build: Callable[[Paired], Awaitable[DeploymentData]]
    order_key: Callable[[Mapping[str, Any]], datetime | None] | None = None
    older: Callable[[datetime], Any] | None = None
    pin_in_progress: bool = False


async def stream_lane(
    lane: Lane, cursor: Mapping[str, Any] | None, *, pages: Pages, horizon: datetime, now: datetime
) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
    """Stream one deployment listing through the window cursor and the predecessor pairing; yield
    (events, the lane's cursor — None while nothing may be saved yet)."""
    run = WindowRun(TimeWindow.load(cursor, horizon), now)
    pairer = DeploymentPairer(known=load_successes((cursor or {}).get("last")))

    def lane_cursor(window_cursor: dict[str, Any] | None) -> dict[str, Any] | None:
        if window_cursor is None:
            return None
        return {**window_cursor, "last": dump_successes(pairer.last_successes())}

    for window in run.passes():
        oldest: datetime | None = None
        below = False  # client-side windows: the listing went past the window's lower edge
        extra_pages = 0
        async for page, _ in pages(lane.path, lane.listing(window.lo, window.hi)):
            events: list[EventData] = []
            for item in page:
                key = lane.order_key(item) if lane.order_key else None
                if key is not None and window.hi is not None and key > window.hi:
                    continue
                if key is not None and window.below(key):
                    below = True
                sighting = lane.sight(item)
                if sighting is None or (window.hi is not None and sighting.at > window.hi):
                    continue
                if below or window.below(sighting.at):
                    events += [await lane.build(p) for p in pairer.offer_older(sighting)]
                    continue
                run.saw(sighting.at)
                if lane.pin_in_progress and sighting.in_progress:
                    run.pin(sighting.at)
                oldest = sighting.at if oldest is None else min(oldest, sighting.at)
                events += [await lane.build(p) for p in pairer.push(sighting)]
            yield events, lane_cursor(run.page_cursor(window, pairer.held_newest() or oldest))
            if below:
                if not pairer.pending or extra_pages >= PREDECESSOR_PAGES:
                    break
                extra_pages += 1
        ready = pairer.resolve_from_known()
        if lane.older is not None and pairer.pending:
            ready += await _older_predecessors(lane, lane.older(window.lo), pages, pairer)
        ready += pairer.drain()
        events = [await lane.build(p) for p in ready]
        yield events, lane_cursor(run.pass_done_cursor(window))


async def _older_predecessors(
    lane: Lane, params: Any, pages: Pages, pairer: DeploymentPairer
) -> list[Paired]:
    """Deployments still held at the bottom of a server-filtered window: look a few pages below the
    window for their previous successful deployment."""
    found: list[Paired] = []
    read = 0
    async for page, _ in pages(lane.path, params):
        for item in page:
            sighting = lane.sight(item)
            if sighting is not None:
                found += pairer.offer_older(sighting)
        read += 1
        if not pairer.pending or read >= PREDECESSOR_PAGES:
            break
    return found


def http_failure(provider: str, exc: HttpError, scope: str | None) -> CollectorError:
    """What a user must fix, for the HTTP errors that retrying cannot fix."""
    where = f" for {scope}" if scope else ""
    if isinstance(exc, AuthenticationError):
        hint = (
            f"The {provider} credentials were rejected (401): the token is wrong, expired or revoked. "
            "Create a new one and update the Secret named in spec.credentialsSecretRef."
        )
    elif isinstance(exc, ForbiddenError):
        hint = (
            f"The {provider} credentials lack a permission{where}: grant read access to the repository "
            "(GitLab: read_api scope and at least Reporter role; Bitbucket: repository and pullrequest "
            "read, pipeline read) or remove it from spec.scope.repositories."
        )
    elif isinstance(exc, NotFoundError):
        hint = (
            f"{scope or 'The repository'} does not exist on {provider} or is invisible to these "
            "credentials: check the name in spec.scope.repositories and the token's access."
        )
    else:
        hint = f"{provider} keeps failing; check its status page and spec.baseUrl."
    return CollectorError(f"{provider}{where}: {exc}", hint=hint, scope=scope)


FATAL_HTTP = (AuthenticationError, ForbiddenError, NotFoundError)
PREDECESSOR_PAGES = 3  # pages read below a window to find a held deployment's predecessor


# --------------------------------------------------------------------------------------------------
# GitLab
# --------------------------------------------------------------------------------------------------

GITLAB_DEFAULT_URL = "https://gitlab.com"
MERGE_REQUEST_REF = re.compile(r"See merge request (?:[\w.\-/]+)?!(\d+)")
PIPELINE_STATUS = {
    "success": "success",
    "failed": "failed",
    "canceled": "cancelled",
    "running": "in_progress",
}


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
        self.hotfix_pattern = rules.hotfix_pattern

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
        scope = self.integration.spec.scope
        found: dict[str, ScopeRef] = {}
        try:
            if not scope.repositories:
                params = {"membership": "true", "archived": "false", "pagination": "keyset"}
                params |= {"order_by": "id", "sort": "asc"}
                async for page, _ in self._pages("/projects", params):
                    for project in page:
                        found.setdefault(str(project["id"]), _project_scope(project))
            for pattern in scope.repositories:
                for ref in await self._resolve(pattern):
                    found.setdefault(ref.id, ref)
        except FATAL_HTTP as exc:
            raise http_failure("GitLab", exc, None) from exc
        return [ref for ref in found.values() if not excluded(ref.name, scope.exclude)]

    async def _resolve(self, pattern: str) -> list[ScopeRef]:
        """A literal path is looked up directly; a glob lists its group with subgroups. A path or group
        that is not found becomes an unresolved scope, so collecting it reports the error with a hint
        while the other projects keep collecting."""
        pattern = pattern.strip("/")
        if not is_glob(pattern):
            try:
                return [_project_scope(await self._get(f"/projects/{quote(pattern, safe='')}"))]
            except NotFoundError:
                return [_unresolved(pattern, f"GitLab project {pattern} not found")]
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
            return [_unresolved(pattern, f"GitLab group {group} not found")]
        return refs

    # ---- collect ----------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        try:
            if scope.attributes.get("unresolved"):
                scope = await self._re_resolve(scope)
            repository = _repository(scope)
            if resource is Resource.COMMITS:
                async for batch in self._commits(scope, repository, cursor):
                    yield batch
            elif resource is Resource.PULL_REQUESTS:
                async for batch in self._merge_requests(scope, repository, cursor):
                    yield batch
            elif resource is Resource.DEPLOYMENTS:
                async for batch in self._deployments(scope, repository, cursor):
                    yield batch
        except FATAL_HTTP as exc:
            raise http_failure("GitLab", exc, scope.name) from exc

    async def _re_resolve(self, scope: ScopeRef) -> ScopeRef:
        refs = [ref for ref in await self._resolve(scope.name) if not ref.attributes.get("unresolved")]
        if refs:
            return refs[0]
        raise CollectorError(
            str(scope.attributes["unresolved"]),
            hint=(
                f"Check {scope.name!r} in spec.scope.repositories (full path, e.g. group/subgroup/project) "
                "and that the token's user is a member of it."
            ),
            scope=scope.name,
        )

    def _horizon(self) -> datetime:
        return self.clock() - timedelta(days=self.integration.spec.backfill_days)

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
        run = WindowRun(TimeWindow.load(cursor, self._horizon()), self.clock())
        for window in run.passes():
            params = {"state": "all", "order_by": "updated_at", "sort": "desc"}
            params |= _updated_range(window.lo, window.hi)
            oldest: datetime | None = None
            async for page, _ in self._pages(f"/projects/{scope.id}/merge_requests", params):
                events: list[EventData] = []
                for mr in page:
                    updated = parse_time(mr.get("updated_at"))
                    if updated is None or not window.contains(updated):
                        continue
                    run.saw(updated)
                    oldest = updated if oldest is None else min(oldest, updated)
                    events.extend(await self._merge_request_events(scope, repository, mr))
                yield Batch(events, run.page_cursor(window, oldest))
            yield Batch([], run.pass_done_cursor(window))

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
            t for t in (parse_time(c.get("authored_date") or c.get("created_at")) for c in commits) if t
        ]
        created = parse_time(mr.get("created_at"))
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
            updated_at=parse_time(mr.get("updated_at")),
            merged_at=parse_time(mr.get("merged_at")),
            closed_at=parse_time(mr.get("closed_at")),
            first_commit_at=min(commit_times) if commit_times else None,
            merge_commit_sha=merge_sha,
            commit_shas=[c["id"] for c in commits],
            head_branch=mr.get("source_branch"),
            base_branch=mr.get("target_branch"),
            review_comments=len(comments),
            url=mr.get("web_url"),
        )
        return [pull_request, *reviews]

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

        def sight(item: Mapping[str, Any]) -> DeploySighting | None:
            status = item.get("status")
            at = parse_time(item.get("updated_at"))
            if status not in PIPELINE_STATUS or at is None or not item.get("sha"):
                return None  # created/blocked/skipped: not started, nothing to report yet
            return DeploySighting(environment, at, item["sha"], status == "success", item)

        async def build(paired: Paired) -> DeploymentData:
            item = paired.sighting.raw
            deployable = item.get("deployable") or {}
            shipped, messages = await self._shipped(scope, paired)
            commit = deployable.get("commit") or {}
            started = parse_time(deployable.get("started_at")) or parse_time(item.get("created_at"))
            status = PIPELINE_STATUS[item["status"]]
            finished = None
            if status != "in_progress":
                finished = parse_time(deployable.get("finished_at")) or parse_time(item.get("updated_at"))
            user = item.get("user") or {}
            return DeploymentData(
                repository=repository,
                deployment_id=f"gitlab:{scope.id}:deployment:{item['id']}",
                environment=environment[:50],
                status=status,
                started_at=started or paired.sighting.at,
                finished_at=finished,
                revision=item["sha"],
                commit_shas=shipped,
                deployed_by=person(user.get("name"), None, user.get("username")) if user else None,
                is_hotfix=matches_any(
                    self.hotfix_pattern,
                    [item.get("ref"), deployable.get("name"), commit.get("message"), *messages],
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

        def sight(item: Mapping[str, Any]) -> DeploySighting | None:
            name = item.get("name") or ""
            at = parse_time(item.get("updated_at"))
            status = item.get("status")
            if not self.deployment_pattern.search(name) or status not in PIPELINE_STATUS or at is None:
                return None
            return DeploySighting("production", at, item["sha"], status == "success", item)

        async def build(paired: Paired) -> DeploymentData:
            summary = paired.sighting.raw
            detail = await self._get(f"{path}/{summary['id']}")  # started/finished/user: not in the list
            shipped, messages = await self._shipped(scope, paired)
            status = PIPELINE_STATUS[summary["status"]]
            user = detail.get("user") or {}
            finished = None
            if status != "in_progress":
                finished = parse_time(detail.get("finished_at")) or paired.sighting.at
            return DeploymentData(
                repository=repository,
                deployment_id=f"gitlab:{scope.id}:pipeline:{summary['id']}",
                environment="production",
                status=status,
                started_at=parse_time(detail.get("started_at")) or parse_time(summary.get("created_at")),
                finished_at=finished,
                revision=summary["sha"],
                commit_shas=shipped,
                deployed_by=person(user.get("name"), None, user.get("username")) if user else None,
                is_hotfix=matches_any(
                    self.hotfix_pattern, [summary.get("ref"), summary.get("name"), *messages]
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

        def sight(item: Mapping[str, Any]) -> DeploySighting | None:
            commit = item.get("commit") or {}
            at = parse_time(commit.get("committed_date"))
            if not self.tag_pattern.search(item.get("name", "")) or at is None or not commit.get("id"):
                return None
            return DeploySighting("production", at, commit["id"], True, item)

        def order_key(item: Mapping[str, Any]) -> datetime | None:
            return parse_time((item.get("commit") or {}).get("committed_date"))

        async def build(paired: Paired) -> DeploymentData:
            tag = paired.sighting.raw
            commit = tag.get("commit") or {}
            shipped, messages = await self._shipped(scope, paired)
            at = parse_time(tag.get("created_at")) or paired.sighting.at
            texts = [tag.get("name"), tag.get("message"), commit.get("message"), *messages]
            return DeploymentData(
                repository=repository,
                deployment_id=f"gitlab:{scope.id}:tag:{tag['name']}",
                environment="production",
                status="success",
                started_at=at,
                finished_at=at,
                revision=commit["id"],
                commit_shas=shipped,
                is_hotfix=matches_any(self.hotfix_pattern, texts),
                url=f"{repository.url}/-/tags/{quote(tag['name'])}" if repository.url else None,
            )

        lane = Lane(f"/projects/{scope.id}/repository/tags", listing, sight, build, order_key=order_key)
        async for result in self._stream(lane, cursor):
            yield result

    def _stream(
        self, lane: Lane, cursor: Mapping[str, Any] | None
    ) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
        return stream_lane(lane, cursor, pages=self._pages, horizon=self._horizon(), now=self.clock())

    async def _shipped(self, scope: ScopeRef, paired: Paired) -> tuple[list[str], list[str]]:
        """Commits a successful deployment shipped, `compare previous..this`, and their messages (for
        the hotfix rule). Without a known predecessor (the first deployment ever) only the deployed
        revision itself; a redeploy of the same revision ships nothing new."""
        sighting = paired.sighting
        if not sighting.success:
            return [], []
        if paired.previous_sha is None:
            return [sighting.sha], []
        if paired.previous_sha == sighting.sha:
            return [], []
        compare = await self._get(
            f"/projects/{scope.id}/repository/compare", {"from": paired.previous_sha, "to": sighting.sha}
        )
        commits = compare.get("commits") or []
        return [c["id"] for c in commits], [c.get("message") or c.get("title") or "" for c in commits]


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


def _unresolved(pattern: str, reason: str) -> ScopeRef:
    """A scope entry that matched nothing: kept (with the reason) so collecting it reports the error
    while the other scopes collect."""
    return ScopeRef(name=pattern, id=f"unresolved:{pattern}", attributes={"unresolved": reason})


def _repository(scope: ScopeRef) -> RepositoryRef:
    return RepositoryRef(
        provider="gitlab",
        id=scope.id,
        name=scope.name,
        url=scope.attributes.get("url"),
        default_branch=scope.attributes.get("default_branch"),
    )


def _commit_event(repository: RepositoryRef, item: Mapping[str, Any]) -> CommitData:
    stats = item.get("stats") or {}
    message = item.get("message") or item.get("title")
    mr = MERGE_REQUEST_REF.search(message or "")
    authored = parse_time(item.get("authored_date")) or parse_time(item.get("created_at"))
    assert authored is not None
    return CommitData(
        repository=repository,
        sha=item["id"],
        author=person(item.get("author_name"), item.get("author_email")),
        authored_at=authored,
        committed_at=parse_time(item.get("committed_date")),
        message=message,
        additions=stats.get("additions"),
        deletions=stats.get("deletions"),
        parents=list(item.get("parent_ids") or []),
        pull_request_number=int(mr.group(1)) if mr else None,
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
            at = parse_time(note.get("created_at"))
            if at:
                approval_times[user.get("id")] = at
        elif (
            note.get("system") and CHANGES_NOTE.match(note.get("body") or "") and user.get("id") != author_id
        ):
            at = parse_time(note.get("created_at"))
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
        at = parse_time(approval.get("approved_at")) or approval_times.get(user_id)
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
        first = min(t for t in (parse_time(c.get("created_at")) for c in items) if t)
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
