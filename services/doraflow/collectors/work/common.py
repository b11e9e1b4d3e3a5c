"""What the Jira, Linear and Asana clients share.

* `WindowRun`: the cursor for listings filtered and ordered by "updated" time. Work items change in
  place (a status moves, points are re-estimated), so the only way to see changes is "everything
  updated since"; a back-fill is read newest first so recent metrics appear early, and it records
  after every page how far down it got, so a restart resumes instead of starting over.
* `IncidentMatcher`: the Integration's incident rules (types, labels, priorities, a provider
  filter) and how an incident names its service (a field, a label prefix, a component).
* `category_from_name`: a status-name heuristic for trackers without status categories (Asana
  sections), and for Jira statuses deleted since a transition happened.
* `http_problem`: HTTP failures that only a user can fix → `CollectorError` with a hint.
* `AdaptingTransport`: lets a provider translate its dialect (Linear's rate limit as HTTP 400,
  Asana's 412 carrying a sync token) into what the shared `core.http` client understands, so that
  retries and waits stay in one place.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import httpx

from doraflow.collectors.base import CollectorError
from doraflow.core.events import PersonRef
from doraflow.core.http import AuthenticationError, ForbiddenError, HttpError, NotFoundError
from doraflow.core.resources import IncidentRules

Category = Literal["todo", "in_progress", "done"]
Clock = Callable[[], datetime]
FATAL_HTTP = (AuthenticationError, ForbiddenError, NotFoundError)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 as the trackers send it (`Z`, `+00:00`, Jira's `+0000`, a bare date); anything
    else is treated as absent rather than guessed."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clip(value: Any, limit: int) -> str | None:
    """A string field cut to what the event schema allows (a 300-character priority name must
    not make the whole work item invalid)."""
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] if text else None


def person(name: Any = None, email: Any = None, username: Any = None) -> PersonRef | None:
    ref = PersonRef(name=clip(name, 255), email=clip(email, 255), username=clip(username, 255))
    return ref if (ref.name or ref.email or ref.username) else None


# -- scope ---------------------------------------------------------------------------------------


def is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def matches_any(candidates: Iterable[str | None], patterns: Sequence[str]) -> bool:
    """Project keys and names are matched case-insensitively (Jira keys are upper case, people
    write them either way in a spec)."""
    names = [c.lower() for c in candidates if c]
    return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in patterns for name in names)


def in_scope(candidates: Sequence[str | None], include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not matches_any(candidates, include):
        return False
    return not matches_any(candidates, exclude)


def missing_literals(include: Sequence[str], found: Iterable[Sequence[str | None]]) -> list[str]:
    """Literal (non-glob) scope entries that matched nothing: they become scopes of their own, so
    the user sees "project X does not exist" for that entry instead of silence."""
    seen = [c.lower() for names in found for c in names if c]
    return [p for p in include if not is_glob(p) and p.lower() not in seen]


# -- updated-time windows -------------------------------------------------------------------------


@dataclass
class UpdatedWindow:
    """`since`: items updated at or after it were collected by earlier runs (read again from there
    next time). `owed_from`/`owed_to`: a back-fill range still owed; `owed_to` None is open-ended
    (the first back-fill, read from now downwards)."""

    since: datetime | None = None
    owed_from: datetime | None = None
    owed_to: datetime | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any] | None, horizon: datetime) -> UpdatedWindow:
        if not raw:
            return cls(None, horizon, None)
        owed = raw.get("owed") or {}
        return cls(parse_time(raw.get("since")), parse_time(owed.get("from")), parse_time(owed.get("to")))

    def dump(self) -> dict[str, Any]:
        owed = None
        if self.owed_from is not None:
            owed = {"from": iso(self.owed_from), "to": self.owed_to and iso(self.owed_to)}
        return {"since": self.since and iso(self.since), "owed": owed}


@dataclass(frozen=True)
class WindowPass:
    lo: datetime  # inclusive
    hi: datetime | None  # inclusive; None = now
    backfill: bool


class WindowRun:
    """One run over an `UpdatedWindow`: first the new range `[since, now]`, then the owed back-fill,
    both newest first. The new range is saved once complete (it is small, and a crash just reads it
    again); the back-fill saves after every page, lowering `owed_to` to the oldest item published."""

    SAFETY = timedelta(minutes=5)  # clock skew between us and the tracker

    def __init__(self, window: UpdatedWindow, started_at: datetime) -> None:
        self.window = window
        self.started_at = started_at
        self.newest: datetime | None = None

    def passes(self) -> list[WindowPass]:
        result: list[WindowPass] = []
        if self.window.since is not None:
            result.append(WindowPass(self.window.since, None, backfill=False))
        if self.window.owed_from is not None:
            result.append(WindowPass(self.window.owed_from, self.window.owed_to, backfill=True))
        return result

    def saw(self, moment: datetime | None) -> None:
        if moment is not None and (self.newest is None or moment > self.newest):
            self.newest = moment

    def _since(self) -> datetime:
        candidates = [m for m in (self.newest, self.window.since) if m is not None]
        return max(candidates) if candidates else self.started_at - self.SAFETY

    def page_cursor(self, current: WindowPass, oldest: datetime | None) -> dict[str, Any] | None:
        if not current.backfill:
            return None
        to = oldest if oldest is not None else current.hi
        return UpdatedWindow(self._since(), current.lo, to).dump()

    def done_cursor(self, current: WindowPass) -> dict[str, Any]:
        if current.backfill:
            return UpdatedWindow(self._since()).dump()
        return UpdatedWindow(self._since(), self.window.owed_from, self.window.owed_to).dump()


# -- statuses ------------------------------------------------------------------------------------

_DONE_WORDS = re.compile(r"(?i)\b(done|complete[d]?|closed|resolved|shipped|released|deployed|finished)\b")
_PROGRESS_WORDS = re.compile(
    r"(?i)\b(in[ -]?progress|doing|started|active|review|reviewing|qa|testing|wip|development|"
    r"implementing|blocked)\b"
)


def category_from_name(name: str | None) -> Category | None:
    """Best effort for names without a category: "Done"/"Closed" → done, "In Progress"/"Review" →
    in_progress, anything else named → todo."""
    if not name:
        return None
    if _DONE_WORDS.search(name):
        return "done"
    if _PROGRESS_WORDS.search(name):
        return "in_progress"
    return "todo"


# -- incidents -----------------------------------------------------------------------------------


class IncidentMatcher:
    """The Integration's `incidents` rules for one provider. A work item is an incident when its
    type, one of its labels or its priority is listed, or when the provider filter selects it;
    `types_are_labels` lets trackers without issue types (Linear, Asana) match a type by label."""

    def __init__(self, rules: IncidentRules, *, types_are_labels: bool = False) -> None:
        self.rules = rules
        self._types = {t.lower() for t in rules.issue_types}
        self._labels = {label.lower() for label in rules.labels}
        self._priorities = {p.lower() for p in rules.priorities}
        self._types_are_labels = types_are_labels

    def matches(
        self, issue_type: str | None, labels: Iterable[str], priority: str | None, *, filtered: bool = False
    ) -> bool:
        names = {label.lower() for label in labels}
        if filtered:
            return True
        if issue_type and issue_type.lower() in self._types:
            return True
        if self._types_are_labels and names & self._types:
            return True
        if names & self._labels:
            return True
        return bool(priority and priority.lower() in self._priorities)

    def service(
        self, labels: Sequence[str], components: Sequence[str], field_value: str | None = None
    ) -> str | None:
        """The service an incident names: the service field, else a label with the prefix (the
        prefix removed), else the first component when components name services."""
        if field_value:
            return clip(field_value, 255)
        prefix = self.rules.service_label_prefix
        if prefix:
            for label in labels:
                if label.lower().startswith(prefix.lower()) and len(label) > len(prefix):
                    return clip(label[len(prefix) :], 255)
        if self.rules.use_components and components:
            return clip(components[0], 255)
        return None


def field_text(value: Any) -> str | None:
    """A custom field's value as text: a string, a select option (`value`/`name`), the first of a
    multi-select, or a number."""
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Mapping):
        for key in ("value", "name", "displayName", "display_value"):
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
        return None
    if isinstance(value, list):
        for item in value:
            text = field_text(item)
            if text:
                return text
    return None


def number(value: Any) -> float | None:
    """A non-negative estimate, or None (story points are never negative in the event schema)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result >= 0 else None


# -- errors --------------------------------------------------------------------------------------


def http_problem(
    provider: str, exc: HttpError, scope: str | None, *, where: str = "spec.scope.projects"
) -> CollectorError:
    """The HTTP failures retrying cannot fix, with what the user has to do about them."""
    at = f" ({scope})" if scope else ""
    if isinstance(exc, AuthenticationError):
        hint = (
            f"{provider} rejected the credentials (401): the token is wrong, expired or revoked. Create "
            "a new one and update the Secret named in spec.credentialsSecretRef."
        )
    elif isinstance(exc, ForbiddenError):
        hint = (
            f"The {provider} credentials may not read this{at} (403): grant the account read access "
            f"or remove the entry from {where}."
        )
    elif isinstance(exc, NotFoundError):
        hint = (
            f"{scope or 'The project'} does not exist on {provider} any more or is invisible to these "
            f"credentials: fix or remove it in {where}."
        )
    else:
        hint = f"{provider} keeps failing; check its status page and spec.baseUrl."
    return CollectorError(f"{provider}{at}: {exc}", hint=hint, scope=scope)


# -- transport -----------------------------------------------------------------------------------

Adapt = Callable[[httpx.Request, httpx.Response], Awaitable[httpx.Response]]


class AdaptingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport and lets a provider rewrite a response before `core.http` sees it.

    httpx applies `HTTPS_PROXY`/`NO_PROXY` only to transports it builds itself, so without an
    explicit `inner` this one does the same for https requests (a collector behind a corporate
    proxy must keep working when its client gains an adapter)."""

    def __init__(self, adapt: Adapt, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._adapt = adapt
        self._inner = inner or httpx.AsyncHTTPTransport()
        proxy = None if inner else _environment_proxy()
        self._proxied = httpx.AsyncHTTPTransport(proxy=proxy) if proxy else None
        self._no_proxy = [h.strip().lower().lstrip(".") for h in _env("NO_PROXY").split(",") if h.strip()]

    def _transport_for(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        if self._proxied is None or url.scheme != "https":
            return self._inner
        host = url.host.lower()
        if any(rule == "*" or host == rule or host.endswith("." + rule) for rule in self._no_proxy):
            return self._inner
        return self._proxied

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport_for(request.url).handle_async_request(request)
        return await self._adapt(request, response)

    async def aclose(self) -> None:
        await self._inner.aclose()
        if self._proxied is not None:
            await self._proxied.aclose()


def _env(name: str) -> str:
    return os.environ.get(name) or os.environ.get(name.lower()) or ""


def _environment_proxy() -> str | None:
    return _env("HTTPS_PROXY") or _env("ALL_PROXY") or None


async def rewritten(
    response: httpx.Response, request: httpx.Request, status: int, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """The same response (body read) with another status and extra headers."""
    content = await response.aread()
    merged = httpx.Headers(response.headers)
    for name, value in (headers or {}).items():
        merged[name] = value
    merged.pop("content-encoding", None)  # `content` is already decoded
    merged.pop("content-length", None)
    merged.pop("transfer-encoding", None)
    return httpx.Response(status, headers=merged, content=content, request=request)
