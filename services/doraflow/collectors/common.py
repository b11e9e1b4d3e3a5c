"""What every provider client needs the same way, git hosts and work trackers alike, written once.

Each piece is here because two families of collectors would otherwise each carry their own and
drift apart: a timestamp must parse the same whatever API sent it, a scope pattern must select the
same names in every provider, a user who pasted a revoked token must read the same advice, and the
"updated since" cursor must resume an interrupted back-fill the same way everywhere. What only one
family needs stays in its own module: deployment pairing, lanes and the hotfix rule in
`collectors.git.common`; incident rules, status categories and custom fields in
`collectors.work.common`.

Sections: times · text and people · scope patterns · errors a user must fix · the time-window cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from doraflow.collectors.base import CollectorError
from doraflow.core.events import EventData, PersonRef
from doraflow.core.globs import glob_match, is_glob
from doraflow.core.http import AuthenticationError, ForbiddenError, NotFoundError
from doraflow.core.resources import Integration

# --------------------------------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------------------------------

Clock = Callable[[], datetime]

# How far our clock and a provider's may disagree, and how long a provider's "updated" filter may lag
# behind a write. Where a cursor has to guess "now" (nothing was seen), it guesses this much earlier.
CLOCK_SKEW = timedelta(minutes=5)


def utc_now() -> datetime:
    """The default clock; clients take a `clock` so tests can pin "now"."""
    return datetime.now(UTC)


def parse_time_or_none(value: Any) -> datetime | None:
    """A provider timestamp in UTC: ISO 8601 with `Z`, `+00:00` or Jira's `+0000`, or a bare date
    (midnight UTC); a time without an offset is UTC. Optional fields come back absent, empty or
    malformed, so anything that is not such a string is None rather than a guess."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_time(value: Any) -> datetime:
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
# Text and people
# --------------------------------------------------------------------------------------------------


def clip(value: Any, limit: int) -> str | None:
    """A field as the event schema stores it: text cut to `limit` characters (a 300-character
    priority name must not make the whole event invalid), blank as absent."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] if text else None


def person(name: Any = None, email: Any = None, username: Any = None) -> PersonRef:
    """A PersonRef from whatever the API gave: non-strings and blank strings are absent, and values
    are cut to the 255 characters the processor stores."""

    def clean(value: Any) -> str | None:
        return clip(value, 255) if isinstance(value, str) else None

    return PersonRef(name=clean(name), email=clean(email), username=clean(username))


def person_or_none(name: Any = None, email: Any = None, username: Any = None) -> PersonRef | None:
    """`person`, or None when nothing about the person is known: for optional fields (an assignee, a
    tagger), where an empty reference would read as a person without a name."""
    ref = person(name, email, username)
    return ref if (ref.name or ref.email or ref.username) else None


# --------------------------------------------------------------------------------------------------
# Scope patterns (the glob dialect itself is `core.globs`, shared with the API's declared teams)
# --------------------------------------------------------------------------------------------------


def matches_any(candidates: Iterable[str | None], patterns: Iterable[str]) -> bool:
    """Whether one of the names a thing goes by matches one of the patterns: a Jira project by key or
    name, a Linear team by key or name, a local repository by name or path."""
    names = [candidate for candidate in candidates if candidate]
    return any(glob_match(name, pattern) for pattern in patterns for name in names)


def excluded(name: str, excludes: Iterable[str]) -> bool:
    return matches_any((name,), excludes)


def in_scope(candidates: Sequence[str | None], include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Selected by `include` (everything when it is empty) and not excluded, by any of its names."""
    if include and not matches_any(candidates, include):
        return False
    return not matches_any(candidates, exclude)


def missing_literals(
    include: Sequence[str], found: Iterable[Sequence[str | None]], exclude: Sequence[str] = ()
) -> list[str]:
    """Literal (non-glob) scope entries that name nothing found (and are not excluded): they become
    scopes of their own, so the user reads "project X does not exist" for that entry instead of
    silence."""
    names = [name for names in found for name in names if name]
    return [
        entry
        for entry in include
        if not is_glob(entry) and not matches_any(names, (entry,)) and not excluded(entry, exclude)
    ]


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
    repository_format: str  # how the scope setting names one entry: "owner/name", "keys such as ENG"
    required_access: str  # what working credentials need (scopes, permissions, roles)
    visibility: str  # what makes a repository or project visible to the credentials
    kind: str = "repository"  # what one scope entry is: "repository", "project", "team or project"
    setting: str = "spec.scope.repositories"  # where the entries are listed


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
        return scope_not_found(access, scope)
    return CollectorError(
        f"{access.provider} answered 404: {exc}",
        hint=(
            f"Check spec.baseUrl and the entries of {access.setting} ({access.repository_format}): "
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
    """403 that is not a rate limit (core.http waits those out), or an in-band GraphQL FORBIDDEN
    (inside a 200, hence no status in the message)."""
    return CollectorError(
        f"{access.provider} refused access: {detail}",
        hint=(
            f"The {access.provider} credentials lack a permission: {access.required_access}. Grant it, or "
            f"remove the {access.kind} from {access.setting}."
        ),
        scope=scope,
    )


def scope_not_found(access: ProviderAccess, scope: str, reason: str | None = None) -> CollectorError:
    """404 for a scope entry: a typo, a deleted or renamed repository or project, or one the
    credentials cannot see (providers answer 404, not 403, for what is private to others)."""
    return CollectorError(
        reason
        or f"{access.provider} {access.kind} {scope} does not exist or is not visible to these credentials",
        hint=(
            f"Check {scope!r} in {access.setting} ({access.repository_format}) and that the "
            f"credentials can see it: {access.visibility}."
        ),
        scope=scope,
    )


# --------------------------------------------------------------------------------------------------
# The time-window cursor
# --------------------------------------------------------------------------------------------------

OwedKeys = tuple[str, str]
OWED_KEYS: OwedKeys = ("after", "before")
_ALL_OWED_KEYS: tuple[OwedKeys, ...] = (OWED_KEYS, ("from", "to"))  # work collectors wrote from/to


@dataclass(frozen=True, slots=True)
class WindowRules:
    """What a family of listings sets about the window; the cursor logic itself is the same.

    `reread_since`: the new-data pass reads again what sits exactly at `since`. Work items are cheap
    to map (their history comes with them) and trackers round their "updated" filters, so re-reading
    the boundary costs nothing and catches an item updated within the same instant; a merge request
    costs three more calls, so the git listings take `since` as seen.
    `owed_keys`: the names the owed range is saved under. Both spellings are read; each family keeps
    writing the one its saved cursors already use (git `after`/`before`, work `from`/`to`).
    """

    reread_since: bool = False
    owed_keys: OwedKeys = OWED_KEYS


@dataclass
class TimeWindow:
    """Cursor for listings filtered and ordered by an "updated" (or start) time, newest first: merge
    and pull requests, work items, deployments, CI runs, tags.

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
        after, before = next((keys for keys in _ALL_OWED_KEYS if keys[0] in owed), OWED_KEYS)
        return cls(
            since=parse_time_or_none(raw.get("since")),
            owed_after=parse_time_or_none(owed.get(after)),
            owed_before=parse_time_or_none(owed.get(before)),
        )

    def dump(self, keys: OwedKeys = OWED_KEYS) -> dict[str, Any]:
        owed = None
        if self.owed_after is not None:
            owed = {keys[0]: iso(self.owed_after), keys[1]: self.owed_before and iso(self.owed_before)}
        return {"since": self.since and iso(self.since), "owed": owed}


@dataclass(frozen=True)
class WindowPass:
    """A range to read. The new-data pass starts just after `since` (what is at `since` was seen)
    unless the listing `reread`s it; the back-fill pass includes both ends (`hi` is where an
    interrupted back-fill stopped, and that item may be the one it had not published yet)."""

    lo: datetime
    hi: datetime | None  # None: up to now
    backfill: bool
    reread: bool = False

    def below(self, moment: datetime) -> bool:
        return moment < self.lo if self.backfill or self.reread else moment <= self.lo

    def contains(self, moment: datetime) -> bool:
        return not self.below(moment) and (self.hi is None or moment <= self.hi)


class WindowRun:
    """One run over a `TimeWindow`: the ranges to read and the cursor to save after each page.

    During the new-data pass nothing is saved until it completes (a crash re-reads it: events are
    idempotent); during the back-fill pass every page moves `owed_before` down to the oldest point
    below which nothing was published yet, so a restart neither skips nor repeats much.
    """

    def __init__(self, window: TimeWindow, started_at: datetime, rules: WindowRules = WindowRules()) -> None:
        self.window = window
        self.started_at = started_at
        self.rules = rules
        self.newest: datetime | None = None
        self.pinned: datetime | None = None

    def passes(self) -> list[WindowPass]:
        result: list[WindowPass] = []
        if self.window.since is not None:
            result.append(WindowPass(self.window.since, None, backfill=False, reread=self.rules.reread_since))
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
        since = max(candidates) if candidates else self.started_at - CLOCK_SKEW
        return min(since, self.pinned) if self.pinned is not None else since

    def _dump(self, window: TimeWindow) -> dict[str, Any]:
        return window.dump(self.rules.owed_keys)

    def page_cursor(self, current: WindowPass, published_down_to: datetime | None) -> dict[str, Any] | None:
        if not current.backfill:
            return None
        before = published_down_to if published_down_to is not None else current.hi
        return self._dump(TimeWindow(self._since(), current.lo, before))

    def pass_done_cursor(self, current: WindowPass) -> dict[str, Any]:
        if current.backfill:
            return self._dump(TimeWindow(self._since(), None, None))
        return self._dump(TimeWindow(self._since(), self.window.owed_after, self.window.owed_before))


async def stream_window(
    cursor: Mapping[str, Any] | None,
    *,
    horizon: datetime,
    now: datetime,
    pages: Callable[[WindowPass], AsyncIterator[list[Any]]],
    updated_at: Callable[[Mapping[str, Any]], datetime | None],
    events: Callable[[Mapping[str, Any]], Awaitable[list[EventData]]],
    rules: WindowRules = WindowRules(),
) -> AsyncIterator[tuple[list[EventData], dict[str, Any] | None]]:
    """Read a listing sorted newest-updated first through a `TimeWindow` cursor: `pages` lists one
    pass's range, `events` maps an item inside it. Items outside the pass (a provider filter that
    rounds to minutes, or includes a bound the pass excludes) are skipped. Yields (events, the cursor
    to save after publishing them — None while nothing may be saved yet)."""
    run = WindowRun(TimeWindow.load(cursor, horizon), now, rules)
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
