"""What the GitHub, GitLab and Bitbucket clients share, written once.

Each piece is here because the providers must agree on it: the same scope pattern must select the
same repositories whatever the provider, the same deployment must count as a hotfix, a deployment
ships the commits since the previous successful one of its environment everywhere, and a user who
pasted a revoked token reads the same advice. What differs per provider (URLs, pagination, payload
shapes, which permissions a token needs) stays in the provider's module and is handed in.

Sections: times and the back-fill horizon · scopes (globs, excludes, unresolved entries) · people ·
errors a user must fix · hotfix rule · shipped commits and the deployment pairing · the time-window
cursor · streaming a deployment listing through both.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

from doraflow.collectors.base import CollectorError, ScopeRef
from doraflow.core.events import DeploymentData, EventData, PersonRef, RepositoryRef
from doraflow.core.http import AuthenticationError, ForbiddenError, NotFoundError
from doraflow.core.resources import Integration, Scope

# --------------------------------------------------------------------------------------------------
# Times and the back-fill horizon
# --------------------------------------------------------------------------------------------------

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The default clock; clients take a `clock` so tests can pin "now"."""
    return datetime.now(UTC)


def parse_time_or_none(value: Any) -> datetime | None:
    """A provider timestamp (ISO 8601 with an offset or `Z`) in UTC. Optional fields come back absent
    or empty, so anything that is not such a string is None; a time without an offset is UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_time(value: str) -> datetime:
    """A timestamp the API always sends (creation times, GraphQL `DateTime!`): missing one is a
    broken response, reported as ValueError rather than carried on as None."""
    parsed = parse_time_or_none(value)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 time: {value!r}")
    return parsed


def iso(moment: datetime) -> str:
    """UTC with a `Z`, microseconds kept: cursors must not round a mark onto the item before it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def backfill_horizon(integration: Integration, now: datetime) -> datetime:
    """The oldest moment a first sync collects (`spec.backfillDays` before now)."""
    return now - timedelta(days=integration.spec.backfill_days)


# --------------------------------------------------------------------------------------------------
# Scopes: globs, excludes, unresolved entries
# --------------------------------------------------------------------------------------------------


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """One glob dialect for `spec.scope.repositories` and `spec.scope.exclude` on every provider.

    `*` and `?` stay within one path segment, so `acme/*` is the group's own projects and not its
    subgroups' (GitLab nests groups); `**` crosses segments (`acme/**` includes subgroups);
    `[abc]`/`[!abc]` are character classes as in fnmatch. Case-insensitive, because GitHub, GitLab
    and Bitbucket treat repository paths so."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "[" and (end := _class_end(pattern, index)) is not None:
            out.append(_class_regex(pattern[index + 1 : end]))
            index = end + 1
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out), re.IGNORECASE)


def _class_end(pattern: str, start: int) -> int | None:
    """Index of the `]` closing the class opened at `start` (a `]` right after `[` or `[!` is a
    member); None when it is never closed, and `[` is then a literal character."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "!":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    end = pattern.find("]", index)
    return None if end == -1 else end


def _class_regex(members: str) -> str:
    negated = members.startswith("!")
    if negated:
        members = members[1:]
    escaped = "".join(char if char == "-" else re.escape(char) for char in members)  # a-z stays a range
    return f"[^/{escaped}]" if negated else f"[{escaped}]"


def glob_match(name: str, pattern: str) -> bool:
    return glob_regex(pattern).fullmatch(name) is not None


def literal_prefix(pattern: str) -> str:
    """The path segments before the first glob segment: the owner, group or workspace to list."""
    segments: list[str] = []
    for segment in pattern.split("/"):
        if is_glob(segment):
            break
        segments.append(segment)
    return "/".join(segments)


def excluded(name: str, excludes: Iterable[str]) -> bool:
    return any(glob_match(name, pattern) for pattern in excludes)


async def expand_scope(
    scope: Scope,
    *,
    visible: Callable[[], AsyncIterator[ScopeRef]],
    resolve: Callable[[str], Awaitable[list[ScopeRef]]],
) -> list[ScopeRef]:
    """The Integration's repositories: everything the credentials see (`visible`) when
    `scope.repositories` is empty, else each entry resolved (a name or a glob); each repository
    once (by id), in the order found, without the excluded ones."""
    found: dict[str, ScopeRef] = {}
    if not scope.repositories:
        async for ref in visible():
            found.setdefault(ref.id, ref)
    for pattern in scope.repositories:
        for ref in await resolve(pattern):
            found.setdefault(ref.id, ref)
    return [ref for ref in found.values() if not excluded(ref.name, scope.exclude)]


def unresolved_scope(pattern: str, reason: str) -> ScopeRef:
    """A scope entry that matched nothing. It is kept, with the reason, so that collecting it reports
    the problem to the user while the other scopes keep collecting."""
    return ScopeRef(name=pattern, id=f"unresolved:{pattern}", attributes={"unresolved": reason})


async def resolve_again(
    scope: ScopeRef, resolve: Callable[[str], Awaitable[list[ScopeRef]]], access: ProviderAccess
) -> ScopeRef:
    """An unresolved scope is looked up again when it is collected (the repository may exist by
    now); still missing, it is the user's to fix."""
    refs = [ref for ref in await resolve(scope.name) if not ref.attributes.get("unresolved")]
    if refs:
        return refs[0]
    reason = scope.attributes.get("unresolved")
    raise repository_not_found(access, scope.name, reason if isinstance(reason, str) else None)


def repository_ref(provider: str, scope: ScopeRef) -> RepositoryRef:
    """The repository events point at, from the attributes every provider's scope listing sets."""
    return RepositoryRef(
        provider=provider,
        id=scope.id,
        name=scope.name,
        url=scope.attributes.get("url"),
        default_branch=scope.attributes.get("default_branch"),
    )


# --------------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------------


def person(name: Any = None, email: Any = None, username: Any = None) -> PersonRef:
    """A PersonRef from whatever the API gave: non-strings and empty strings are absent, and values
    are cut to the 255 characters the processor stores."""

    def clean(value: Any) -> str | None:
        return str(value)[:255] if isinstance(value, str) and value else None

    return PersonRef(name=clean(name), email=clean(email), username=clean(username))


# --------------------------------------------------------------------------------------------------
# Errors a user must fix
# --------------------------------------------------------------------------------------------------

# 401, 403 and 404 are the HTTP failures retrying cannot fix. Everything else stays an HttpError on
# purpose: RateLimitExceededError (the server wants a longer wait than a sync may block), 5xx and
# network errors are the runtime's to retry with back-off, not the user's to fix.
USER_FIXABLE_HTTP_ERRORS = (AuthenticationError, ForbiddenError, NotFoundError)


@dataclass(frozen=True, slots=True)
class ProviderAccess:
    """A provider's own words for the hints; the sentences around them are the same everywhere."""

    provider: str  # "GitHub"
    repository_format: str  # how spec.scope.repositories names one: "owner/name"
    required_access: str  # what working credentials need (scopes, permissions, roles)
    visibility: str  # what makes a repository visible to the credentials


def user_error(
    exc: AuthenticationError | ForbiddenError | NotFoundError,
    access: ProviderAccess,
    integration: Integration,
    scope: str | None,
) -> CollectorError:
    """The `CollectorError` (message and hint) for one of `USER_FIXABLE_HTTP_ERRORS`."""
    if isinstance(exc, AuthenticationError):
        return credentials_rejected(access, integration, scope, str(exc))
    if isinstance(exc, ForbiddenError):
        return permission_missing(access, scope, str(exc))
    if scope is not None:
        return repository_not_found(access, scope)
    return CollectorError(
        f"{access.provider} answered 404: {exc}",
        hint=(
            f"Check spec.baseUrl and the owners, groups or workspaces named in spec.scope.repositories: "
            f"{access.provider} does not know what was asked for."
        ),
    )


def credentials_rejected(
    access: ProviderAccess, integration: Integration, scope: str | None, detail: str
) -> CollectorError:
    """401: the hint names the Secret to update, never the token itself."""
    ref = integration.spec.credentials_secret_ref
    secret = (
        f"Secret {integration.metadata.namespace}/{ref.name} (key {ref.key}, named in "
        "spec.credentialsSecretRef)"
        if ref
        else "a Secret named in spec.credentialsSecretRef"
    )
    return CollectorError(
        f"{access.provider} rejected the credentials (401: wrong, expired or revoked): {detail}",
        hint=(
            f"The {access.provider} token is wrong, expired or revoked: create a new one and put it in "
            f"{secret}; the collector picks it up on its next sync. What it needs: {access.required_access}."
        ),
        scope=scope,
    )


def permission_missing(access: ProviderAccess, scope: str | None, detail: str) -> CollectorError:
    """403 that is not a rate limit (core.http waits those out), or GitHub's in-band GraphQL
    FORBIDDEN (inside a 200, hence no status in the message)."""
    return CollectorError(
        f"{access.provider} refused access: {detail}",
        hint=(
            f"The {access.provider} credentials lack a permission: {access.required_access}. Grant it, or "
            "remove the repository from spec.scope.repositories."
        ),
        scope=scope,
    )


def repository_not_found(access: ProviderAccess, scope: str, reason: str | None = None) -> CollectorError:
    """404 for a repository: a typo in the scope, a deleted repository, or one the credentials
    cannot see (providers answer 404, not 403, for private repositories)."""
    return CollectorError(
        reason
        or f"{access.provider} repository {scope} does not exist or is not visible to these credentials",
        hint=(
            f"Check {scope!r} in spec.scope.repositories ({access.repository_format}) and that the "
            f"credentials can see it: {access.visibility}."
        ),
        scope=scope,
    )


# --------------------------------------------------------------------------------------------------
# Hotfix rule
# --------------------------------------------------------------------------------------------------


def headline(message: str | None) -> str:
    return (message or "").split("\n", 1)[0]


def is_hotfix(
    pattern: re.Pattern[str], names: Iterable[str | None], messages: Iterable[str | None] = ()
) -> bool:
    """`spec.deployments.hotfixPattern` over what names the deployment (ref, job, pipeline or run
    name, tag name, deployment description) and the first line of each message it carries (the
    commits it shipped, the deployed commit, an annotated tag's message).

    First lines only, because that is where "Revert …", "hotfix: …" and a fix branch's name stand,
    while bodies of squash and merge commits list every squashed subject and the merge request's
    description: matching those would mark ordinary releases as fixes, and a hotfix marks the
    deployment before it as failed (change failure rate)."""
    texts = [*names, *(headline(message) for message in messages)]
    return any(text and pattern.search(text) for text in texts)


# --------------------------------------------------------------------------------------------------
# Shipped commits and the deployment pairing
# --------------------------------------------------------------------------------------------------


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


OrderT = TypeVar("OrderT", bound=_Ordered)  # a listing's order: a time, or a zero-padded id


@dataclass(slots=True)
class DeploySighting(Generic[OrderT]):
    """A deployment (or CI run, or tag) as a listing shows it, before its shipped commits are known."""

    lane: str  # the environment: commits shipped are relative to the previous success in the lane
    at: OrderT  # the listing's ordering key
    sha: str
    success: bool
    raw: Any = None
    in_progress: bool = False


@dataclass(slots=True)
class Paired(Generic[OrderT]):
    sighting: DeploySighting[OrderT]
    previous_sha: str | None  # the previous successful deployment of the lane; None: none known


@dataclass(slots=True)
class Shipped:
    shas: list[str]
    messages: list[str] = field(default_factory=list)
    rollback: bool = False  # the revision is an ancestor of the previous one


def shipped_without_listing(paired: Paired[Any], revision_message: str | None = None) -> Shipped | None:
    """What a deployment shipped when no API call is needed, or None: list `previous..revision`.

    A failed or unfinished deployment ships nothing. Without a known predecessor (the first
    deployment ever, or none within reach) only the deployed revision is known to ship. A redeploy of
    the predecessor's revision ships nothing new."""
    sighting = paired.sighting
    if not sighting.success:
        return Shipped([])
    if paired.previous_sha is None:
        return Shipped([sighting.sha], [revision_message] if revision_message else [])
    if paired.previous_sha == sighting.sha:
        return Shipped([])
    return None


Direction = Literal["newest_first", "oldest_first"]


class DeploymentPairer(Generic[OrderT]):
    """Pairs each successful deployment with the previous successful deployment of the same
    environment (lane): the newest success of the lane that is older than it. Failed and unfinished
    deployments are paired with nothing (they ship nothing).

    `direction` is the order deployments are pushed in:

    * "oldest_first" (GitHub, which sorts each chunk it lists): the predecessor was pushed already,
      so `push` pairs at once.
    * "newest_first" (GitLab and Bitbucket, which stream listings page by page): the predecessor
      comes later, so a success is held until the next older success of its lane is pushed;
      `resolve_held`, `offer_older` and `drain` settle what is still held when the window ends.

    `earlier`: successes from earlier runs per lane as (order, sha), the predecessors of the oldest
    deployments of this run. Equal orders are told apart by the order they were pushed in."""

    def __init__(
        self, direction: Direction, earlier: Mapping[str, Iterable[tuple[OrderT, str]]] | None = None
    ) -> None:
        self.direction = direction
        self._successes: dict[str, list[tuple[OrderT, str]]] = {
            lane: sorted(items, key=_order) for lane, items in (earlier or {}).items()
        }
        self._held: dict[str, DeploySighting[OrderT]] = {}

    def push(self, sighting: DeploySighting[OrderT]) -> list[Paired[OrderT]]:
        """Deployments now paired: oldest first, always this one; newest first, the held one this
        success is the predecessor of (and failures at once)."""
        if not sighting.success:
            return [Paired(sighting, None)]
        if self.direction == "oldest_first":
            paired = Paired(sighting, self.previous_success(sighting.lane, sighting.at))
            self.record(sighting.lane, sighting.at, sighting.sha)
            return [paired]
        self.record(sighting.lane, sighting.at, sighting.sha)
        held = self._held.get(sighting.lane)
        self._held[sighting.lane] = sighting
        return [Paired(held, sighting.sha)] if held is not None else []

    def record(self, lane: str, at: OrderT, sha: str) -> None:
        """A success that can be a predecessor (also: one found beyond the back-fill horizon); the
        same one recorded again is kept once."""
        items = self._successes.setdefault(lane, [])
        first = bisect.bisect_left(items, at, key=_order)
        after = bisect.bisect_right(items, at, key=_order)
        if (at, sha) in items[first:after]:
            return
        items.insert(after if self.direction == "oldest_first" else first, (at, sha))

    def previous_success(self, lane: str, at: OrderT) -> str | None:
        items = self._successes.get(lane, [])
        index = bisect.bisect_left(items, at, key=_order)
        return items[index - 1][1] if index else None

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def held_newest(self) -> OrderT | None:
        """The newest deployment still held: a restarted back-fill must read again from there."""
        return max((sighting.at for sighting in self._held.values()), default=None)

    def resolve_held(self) -> list[Paired[OrderT]]:
        """Held deployments whose predecessor is known already (from earlier runs or passes)."""
        ready: list[Paired[OrderT]] = []
        for lane, held in list(self._held.items()):
            previous = self.previous_success(lane, held.at)
            if previous is not None:
                ready.append(Paired(held, previous))
                del self._held[lane]
        return ready

    def offer_older(self, sighting: DeploySighting[OrderT]) -> list[Paired[OrderT]]:
        """A deployment beyond the window, read only to find the predecessor of a held one."""
        held = self._held.get(sighting.lane)
        if held is None or not sighting.success or not sighting.at < held.at:
            return []
        del self._held[sighting.lane]
        return [Paired(held, sighting.sha)]

    def drain(self) -> list[Paired[OrderT]]:
        """Held deployments whose predecessor was not found: paired with nothing."""
        ready = [Paired(held, None) for held in self._held.values()]
        self._held.clear()
        return ready

    def successes(self, keep: int | None = None) -> dict[str, list[tuple[OrderT, str]]]:
        """Successes per lane, oldest first (the newest `keep` of each): a cursor's predecessors."""
        return {
            lane: items[-keep:] if keep else list(items) for lane, items in self._successes.items() if items
        }


def _order(item: tuple[OrderT, str]) -> OrderT:
    return item[0]


def dump_newest_successes(pairer: DeploymentPairer[datetime]) -> dict[str, Any]:
    """The newest success per lane, as the GitLab and Bitbucket cursors keep it (`last`)."""
    return {
        lane: {"sha": items[-1][1], "at": iso(items[-1][0])} for lane, items in pairer.successes(1).items()
    }


def load_newest_successes(raw: Any) -> dict[str, list[tuple[datetime, str]]]:
    result: dict[str, list[tuple[datetime, str]]] = {}
    if isinstance(raw, Mapping):
        for lane, value in raw.items():
            at = parse_time_or_none(value.get("at")) if isinstance(value, Mapping) else None
            if at is not None and isinstance(value.get("sha"), str):
                result[str(lane)] = [(at, value["sha"])]
    return result


# --------------------------------------------------------------------------------------------------
# The time-window cursor
# --------------------------------------------------------------------------------------------------


@dataclass
class TimeWindow:
    """Cursor for resources listed newest first with a time filter (merge and pull requests by
    their update time, deployments, CI runs, tags).

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
            since=parse_time_or_none(raw.get("since")),
            owed_after=parse_time_or_none(owed.get("after")),
            owed_before=parse_time_or_none(owed.get("before")),
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


Pages = Callable[[str, Any], AsyncIterator[tuple[list[Any], str | None]]]
"""A provider's paginator: (path, query) → (items of a page, URL of the next page or None)."""


async def stream_window(
    cursor: Mapping[str, Any] | None,
    *,
    horizon: datetime,
    now: datetime,
    pages: Callable[[WindowPass], AsyncIterator[list[Any]]],
    updated_at: Callable[[Mapping[str, Any]], datetime | None],
    events: Callable[[Mapping[str, Any]], Awaitable[list[EventData]]],
) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
    """Read a listing sorted newest-updated first through a `TimeWindow` cursor (merge and pull
    requests): `pages` lists one pass's range, `events` maps an item inside it. Yields (events, the
    cursor to save after publishing them — None while nothing may be saved yet)."""
    run = WindowRun(TimeWindow.load(cursor, horizon), now)
    for window in run.passes():
        oldest: datetime | None = None
        async for page in pages(window):
            found: list[EventData] = []
            for item in page:
                updated = updated_at(item)
                if updated is None or not window.contains(updated):
                    continue
                run.saw(updated)
                oldest = updated if oldest is None else min(oldest, updated)
                found.extend(await events(item))
            yield found, run.page_cursor(window, oldest)
        yield [], run.pass_done_cursor(window)


# --------------------------------------------------------------------------------------------------
# Streaming a deployment listing through the window cursor and the pairing
# --------------------------------------------------------------------------------------------------

PREDECESSOR_PAGES = 3  # pages read below a window to find a held deployment's predecessor


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
    sight: Callable[[Mapping[str, Any]], DeploySighting[datetime] | None]
    build: Callable[[Paired[datetime]], Awaitable[DeploymentData]]
    order_key: Callable[[Mapping[str, Any]], datetime | None] | None = None
    older: Callable[[datetime], Any] | None = None
    pin_in_progress: bool = False


async def stream_lane(
    lane: Lane, cursor: Mapping[str, Any] | None, *, pages: Pages, horizon: datetime, now: datetime
) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
    """Stream one deployment listing, newest first, through the window cursor and the predecessor
    pairing; yield (events, the lane's cursor — None while nothing may be saved yet)."""
    run = WindowRun(TimeWindow.load(cursor, horizon), now)
    pairer = DeploymentPairer[datetime]("newest_first", load_newest_successes((cursor or {}).get("last")))

    def lane_cursor(window_cursor: dict[str, Any] | None) -> dict[str, Any] | None:
        if window_cursor is None:
            return None
        return {**window_cursor, "last": dump_newest_successes(pairer)}

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
                if not pairer.holding or extra_pages >= PREDECESSOR_PAGES:
                    break
                extra_pages += 1
        ready = pairer.resolve_held()
        if lane.older is not None and pairer.holding:
            ready += await _older_predecessors(lane, lane.older(window.lo), pages, pairer)
        ready += pairer.drain()
        events = [await lane.build(p) for p in ready]
        yield events, lane_cursor(run.pass_done_cursor(window))


async def _older_predecessors(
    lane: Lane, params: Any, pages: Pages, pairer: DeploymentPairer[datetime]
) -> list[Paired[datetime]]:
    """Deployments still held at the bottom of a server-filtered window: look a few pages below the
    window for their previous successful deployment."""
    found: list[Paired[datetime]] = []
    read = 0
    async for page, _ in pages(lane.path, params):
        for item in page:
            sighting = lane.sight(item)
            if sighting is not None:
                found += pairer.offer_older(sighting)
        read += 1
        if not pairer.holding or read >= PREDECESSOR_PAGES:
            break
    return found
