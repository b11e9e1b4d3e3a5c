"""What the GitHub, GitLab, Bitbucket and local git clients share, written once.

Each piece is here because the git providers must agree on it: the same deployment must count as a
hotfix, a deployment ships the commits since the previous successful one of its environment
everywhere, and an unknown repository in the scope is reported the same way. What differs per
provider (URLs, pagination, payload shapes, which permissions a token needs) stays in the provider's
module and is handed in. What work trackers need too (times, people, scope globs, the error hints,
the time-window cursor) is in `collectors.common`.

Sections: repository scopes · hotfix rule · shipped commits and the deployment pairing · streaming a
deployment listing through the time-window cursor and the pairing · branches and tags (the default
flag, deleted refs).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from doraflow.collectors.base import ScopeRef
from doraflow.collectors.common import (
    ProviderAccess,
    TimeWindow,
    WindowRun,
    excluded,
    iso,
    parse_time_or_none,
    scope_not_found,
)
from doraflow.core.events import BranchData, DeploymentData, EventData, RepositoryRef, TagData
from doraflow.core.resources import Scope

# --------------------------------------------------------------------------------------------------
# Repository scopes: listed or resolved, excludes, unresolved entries
# --------------------------------------------------------------------------------------------------


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
    raise scope_not_found(access, scope.name, reason if isinstance(reason, str) else None)


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
# Streaming a deployment listing through the window cursor and the pairing
# --------------------------------------------------------------------------------------------------

PREDECESSOR_PAGES = 3  # pages read below a window to find a held deployment's predecessor

Pages = Callable[[str, Any], AsyncIterator[tuple[list[Any], str | None]]]
"""A provider's paginator: (path, query) → (items of a page, URL of the next page or None)."""


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


# --------------------------------------------------------------------------------------------------
# Branches and tags: the default flag, and the snapshot that tells which refs were deleted
# --------------------------------------------------------------------------------------------------

MAX_TRACKED_REFS = 5000  # per kind and repository; beyond it the cursor would grow without bound

RefKind = Literal["branches", "tags"]


def branch_data(
    repository: RepositoryRef,
    name: str,
    head_sha: str,
    *,
    default: bool | None = None,
    protected: bool | None = None,
    updated_at: datetime | None = None,
) -> BranchData:
    """A branch as a listing shows it. `is_default` is the provider's own flag where the listing has
    one (GitLab's `default`), else whether the branch is the repository's default branch as the scope
    listing named it: providers without the flag (Bitbucket, GitHub's REST listing) must agree with
    those that have it, or the processor would see the default branch change with the provider."""
    is_default = default if default is not None else name == repository.default_branch
    return BranchData(
        repository=repository,
        name=name,
        head_sha=head_sha,
        is_default=is_default,
        protected=protected,
        updated_at=updated_at,
    )


class RefSnapshot:
    """The branches and tags one listing of a repository showed, kept in the cursor, so that the next
    complete listing can publish the refs that are gone as `deleted` (a deletion has no event of its
    own in a listing, and webhooks can be missed).

    Only a complete listing may be compared: the cursor is saved with the last batch of a run, so an
    interrupted listing is read again in full and never reports the unread rest as deleted. A kind
    with more than `MAX_TRACKED_REFS` refs is not kept (the cursor would grow with the repository),
    and its deletions are then not detected from listings."""

    def __init__(self, previous: Mapping[str, Any] | None) -> None:
        self._previous: dict[RefKind, dict[str, str] | None] = {
            kind: _ref_map((previous or {}).get(kind)) for kind in ("branches", "tags")
        }
        self._seen: dict[RefKind, dict[str, str]] = {"branches": {}, "tags": {}}

    def saw(self, events: Iterable[EventData]) -> None:
        for event in events:
            if isinstance(event, BranchData) and not event.deleted:
                self._seen["branches"][event.name] = event.head_sha
            elif isinstance(event, TagData) and not event.deleted:
                self._seen["tags"][event.name] = event.sha

    def deleted(self, repository: RepositoryRef) -> list[EventData]:
        """Refs of the previous listing that this one did not show, with the commit they last
        pointed at (the events need one)."""
        gone: list[EventData] = []
        for name, sha in (self._previous["branches"] or {}).items():
            if name not in self._seen["branches"]:
                gone.append(BranchData(repository=repository, name=name, head_sha=sha, deleted=True))
        for name, sha in (self._previous["tags"] or {}).items():
            if name not in self._seen["tags"]:
                gone.append(TagData(repository=repository, name=name, sha=sha, deleted=True))
        return gone

    def dump(self) -> dict[str, Any]:
        return {
            kind: dict(refs) if len(refs) <= MAX_TRACKED_REFS else None for kind, refs in self._seen.items()
        }


def _ref_map(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, Mapping):
        return None
    return {str(name): sha for name, sha in raw.items() if isinstance(sha, str)}
