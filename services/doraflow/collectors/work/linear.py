"""Linear (GraphQL) as a source of issues, state transitions, cycles (as sprints) and incidents.

Scope: `spec.scope.projects` entries match team keys or names (`ENG`, `Eng*`) first, then Linear
project names; with no entries every team is collected. Issues are listed with an `updatedAt`
window (`collectors.common.stream_window`), `orderBy: updatedAt` (newest first) and cursor pagination
(`pageInfo { hasNextPage endCursor }`), archived issues included (a finished cycle archives its
issues, and they are exactly the ones the metrics need). Each issue carries its first page of
`history`; longer histories are paged per issue. Transitions are the history entries with a
`toState`; a workflow state's `type` is the status category (triage/backlog/unstarted → todo,
started → in_progress, completed/canceled → done, as Jira files "Won't do" under done).

Rate limits: every response reports the request budget (`X-RateLimit-Requests-*`) and the complexity
budget (`X-RateLimit-Complexity-*`, `X-Complexity` for the query just made); `core.http` records both
and, before a query, waits for the reset when the complexity left would not cover twice the last
query's cost. Linear signals an exhausted budget as HTTP 400 with `extensions.code: RATELIMITED`
(and bad keys as 400 `AUTHENTICATION_ERROR`); `classify` tells `core.http` what those mean, so it
waits for the reset or raises its typed errors as for any other provider.

Linear has no issue types and no custom fields: incident rules match a type by label name, the
service comes from a label prefix, and `incidents.filter` / `serviceField` do not apply.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx

import doraflow.collectors.work.webhooks  # noqa: F401 - registers the Linear webhook source
from doraflow.collectors.base import Batch, Resource, ScopeRef, SourceClient
from doraflow.collectors.common import (
    USER_FIXABLE_HTTP_ERRORS,
    Clock,
    ProviderAccess,
    WindowPass,
    backfill_horizon,
    clip,
    in_scope,
    iso,
    matches_any,
    missing_literals,
    parse_time_or_none,
    person_or_none,
    scope_not_found,
    stream_window,
    user_error,
    utc_now,
)
from doraflow.collectors.work.common import UPDATED_WINDOW, Category, IncidentMatcher, number
from doraflow.core.events import EventData, IncidentData, SprintData, TransitionData, WorkItemData
from doraflow.core.http import HttpClient, NotFoundError, Verdict
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

LINEAR_URL = "https://api.linear.app"
STATE_TYPES: dict[str, Category] = {
    "triage": "todo",
    "backlog": "todo",
    "unstarted": "todo",
    "started": "in_progress",
    "completed": "done",
    "canceled": "done",
}
# Linear reports `extensions.statusCode` next to its error codes; the ones core.http reacts to.
STATUS_BY_CODE = {"RATELIMITED": 429, "AUTHENTICATION_ERROR": 401, "FORBIDDEN": 403}
ACCESS = ProviderAccess(
    provider="Linear",
    repository_format="team keys such as ENG, team or project names, or globs",
    required_access="a personal API key or OAuth token of a user who can read the teams' issues",
    visibility="the key's user must be a member of private teams",
    kind="team or project",
    setting="spec.scope.projects",
)

HISTORY_FIELDS = """
  nodes { id createdAt fromState { id name type } toState { id name type }
          actor { id name displayName email } }
  pageInfo { hasNextPage endCursor }
"""
ISSUE_FIELDS = f"""
  id identifier title url createdAt updatedAt completedAt canceledAt estimate priority priorityLabel
  state {{ id name type }}
  assignee {{ id name displayName email }}
  labels(first: 25) {{ nodes {{ name }} }}
  project {{ id name }}
  team {{ id key }}
  relations(first: 25) {{ nodes {{ type relatedIssue {{ identifier }} }} }}
  history(first: 25) {{ {HISTORY_FIELDS} }}
"""
ISSUES_QUERY = f"""
query Issues($filter: IssueFilter, $first: Int!, $after: String) {{
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt, includeArchived: true) {{
    nodes {{ {ISSUE_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
HISTORY_QUERY = f"""
query History($id: String!, $after: String) {{
  issue(id: $id) {{ history(first: 100, after: $after) {{ {HISTORY_FIELDS} }} }}
}}
"""
TEAMS_QUERY = """
query Teams($after: String) {
  teams(first: 100, after: $after) { nodes { id key name } pageInfo { hasNextPage endCursor } }
}
"""
PROJECTS_QUERY = """
query Projects($after: String) {
  projects(first: 100, after: $after) { nodes { id name } pageInfo { hasNextPage endCursor } }
}
"""
TEAM_QUERY = "query Team($id: String!) { team(id: $id) { id key } }"
PROJECT_QUERY = "query Project($id: String!) { project(id: $id) { id name } }"
CYCLES_QUERY = """
query Cycles($id: String!, $after: String) {
  team(id: $id) {
    cycles(first: 50, after: $after, includeArchived: true) {
      nodes { id number name startsAt endsAt completedAt }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
CYCLE_ISSUES_QUERY = """
query CycleIssues($id: String!, $after: String) {
  cycle(id: $id) {
    issues(first: 100, after: $after, includeArchived: true) {
      nodes { id completedAt }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
CYCLE_CARRIED_QUERY = """
query CycleCarried($id: String!, $after: String) {
  cycle(id: $id) {
    uncompletedIssuesUponClose(first: 100, after: $after) {
      nodes { id }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def linear_auth_headers(credentials: str | None) -> dict[str, str]:
    """Personal API keys go bare in `Authorization`; OAuth access tokens need `Bearer`."""
    if not credentials:
        return {}
    key = credentials.strip()
    if key.lower().startswith("bearer "):
        return {"Authorization": key}
    if key.startswith("lin_oauth_"):
        return {"Authorization": f"Bearer {key}"}
    return {"Authorization": key}


class LinearError(Exception):
    """A GraphQL error that is not one of the HTTP-like ones (retried by the runtime)."""


def _error_code(body: Any) -> tuple[str | None, int | None, str]:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], Mapping):
        return None, None, ""
    first = errors[0]
    extensions = first.get("extensions") or {}
    status = extensions.get("statusCode")
    return extensions.get("code"), status if isinstance(status, int) else None, str(first.get("message", ""))


def _is_not_found(message: str) -> bool:
    return message.startswith("Entity not found")


def classify(response: httpx.Response) -> Verdict | None:
    """What Linear's HTTP 400 means: its error code (or `statusCode`) says rate limit, bad key or
    missing permission, and "Entity not found" is a 404; `core.http` then waits for the exhausted
    budget's reset or raises the typed error. Other 400s are what they say."""
    if response.status_code != 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    code, status, message = _error_code(body)
    status = 404 if _is_not_found(message) else STATUS_BY_CODE.get(code or "", status)
    return Verdict(status) if status in (401, 403, 404, 429) else None


class LinearClient(SourceClient):
    provider: ClassVar[str] = "linear"
    resources: ClassVar[tuple[Resource, ...]] = (Resource.ISSUES, Resource.SPRINTS)

    def __init__(
        self,
        integration: Integration,
        credentials: str | None,
        *,
        page_size: int = 25,
        clock: Clock = utc_now,
        **http_options: Any,
    ) -> None:
        super().__init__(integration, credentials)
        self.page_size = page_size
        self.clock = clock
        self.http = HttpClient(
            (integration.spec.base_url or LINEAR_URL).rstrip("/"),
            headers=linear_auth_headers(credentials),
            classify=classify,
            **http_options,
        )
        self.incidents = IncidentMatcher(integration.spec.incidents, types_are_labels=True)
        if integration.spec.incidents.filter or integration.spec.incidents.service_field:
            logger.warning(
                "incidents.filter and incidents.serviceField do not apply to Linear; use labels",
                extra={"integration": integration.key},
            )

    async def aclose(self) -> None:
        await self.http.aclose()

    # ---- HTTP -------------------------------------------------------------------------------------

    async def query(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL request; errors inside a 200 answer are raised here (HTTP-level ones, Linear's
        400s included, by `core.http`)."""
        response = await self.http.request(
            "POST", "/graphql", json={"query": document, "variables": dict(variables or {})}
        )
        body = response.json()
        code, _, message = _error_code(body)
        if message:
            if _is_not_found(message):
                raise NotFoundError(f"Linear: {message}", status=404, url="/graphql")
            raise LinearError(f"Linear GraphQL error {code or ''}: {message}".strip())
        data = body.get("data")
        return data if isinstance(data, dict) else {}

    async def _nodes(
        self, document: str, variables: Mapping[str, Any], path: Sequence[str]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of a connection at `path` in the result, following `pageInfo.endCursor`."""
        after: str | None = None
        while True:
            data: Any = await self.query(document, {**variables, "after": after})
            for step in path:
                data = (data or {}).get(step)
            connection = data or {}
            yield list(connection.get("nodes") or [])
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                return
            after = str(info["endCursor"])

    # ---- scopes -----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        scope = self.integration.spec.scope
        try:
            teams = [t async for page in self._nodes(TEAMS_QUERY, {}, ("teams",)) for t in page]
            projects: list[dict[str, Any]] = []
            if scope.projects:
                projects = [p async for page in self._nodes(PROJECTS_QUERY, {}, ("projects",)) for p in page]
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, None) from exc
        refs: list[ScopeRef] = []
        for team in teams:
            if in_scope([team.get("key"), team.get("name")], scope.projects, scope.exclude):
                refs.append(ScopeRef(name=str(team["key"]), id=str(team["id"]), attributes={"kind": "team"}))
        team_names = [[t.get("key"), t.get("name")] for t in teams]
        # a pattern that names a team selects teams; the others select Linear projects by name
        project_patterns = [p for p in scope.projects if not any(matches_any(n, [p]) for n in team_names)]
        for project in projects:
            if in_scope([project.get("name")], project_patterns, scope.exclude) and project_patterns:
                ref = ScopeRef(
                    name=str(project["name"]), id=str(project["id"]), attributes={"kind": "project"}
                )
                refs.append(ref)
        found = [*team_names, *([p.get("name")] for p in projects)]
        for literal in missing_literals(scope.projects, found, scope.exclude):
            refs.append(ScopeRef(name=literal, id=literal, attributes={"kind": "missing"}))
        return refs

    # ---- collect ----------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        try:
            await self._check(scope)
            if resource is Resource.ISSUES:
                async for batch in self._issues(scope, cursor):
                    yield batch
            elif resource is Resource.SPRINTS and scope.attributes.get("kind") == "team":
                async for batch in self._cycles(scope, cursor):
                    yield batch
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, scope.name) from exc

    async def _check(self, scope: ScopeRef) -> None:
        kind = scope.attributes.get("kind")
        if kind == "missing":
            raise scope_not_found(ACCESS, scope.name)
        await self.query(TEAM_QUERY if kind == "team" else PROJECT_QUERY, {"id": scope.id})

    def _horizon(self) -> datetime:
        return backfill_horizon(self.integration, self.clock())

    async def _issues(self, scope: ScopeRef, cursor: Mapping[str, Any] | None) -> AsyncIterator[Batch]:
        owner = "team" if scope.attributes.get("kind") == "team" else "project"

        async def pages(window: WindowPass) -> AsyncIterator[list[dict[str, Any]]]:
            updated: dict[str, str] = {"gte": iso(window.lo)}
            if window.hi is not None:
                updated["lte"] = iso(window.hi)
            issue_filter = {owner: {"id": {"eq": scope.id}}, "updatedAt": updated}
            async for page in self._nodes(
                ISSUES_QUERY, {"filter": issue_filter, "first": self.page_size}, ("issues",)
            ):
                yield page

        async for events, window_cursor in stream_window(
            cursor,
            horizon=self._horizon(),
            now=self.clock(),
            pages=pages,
            updated_at=lambda issue: parse_time_or_none(issue.get("updatedAt")),
            events=lambda issue: self._issue_events(scope, issue),
            rules=UPDATED_WINDOW,
        ):
            yield Batch(events, window_cursor)

    async def _history(self, issue: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        connection = issue.get("history") or {}
        entries = list(connection.get("nodes") or [])
        info = connection.get("pageInfo") or {}
        if info.get("hasNextPage") and info.get("endCursor"):
            entries = [
                entry
                async for page in self._nodes(HISTORY_QUERY, {"id": issue["id"]}, ("issue", "history"))
                for entry in page
            ]
        return entries

    async def _issue_events(self, scope: ScopeRef, issue: Mapping[str, Any]) -> list[EventData]:
        created = parse_time_or_none(issue.get("createdAt"))
        if created is None:
            return []
        issue_id = str(issue["id"])
        state = issue.get("state") or {}
        labels = [str(n["name"]) for n in (issue.get("labels") or {}).get("nodes") or [] if n.get("name")]
        priority = clip(issue.get("priorityLabel"), 50) if issue.get("priority") else None
        assignee = issue.get("assignee") or {}
        resolved = parse_time_or_none(issue.get("completedAt")) or parse_time_or_none(issue.get("canceledAt"))
        linked = [
            str(r["relatedIssue"]["identifier"])
            for r in (issue.get("relations") or {}).get("nodes") or []
            if (r.get("relatedIssue") or {}).get("identifier")
        ]
        item = WorkItemData(
            project=scope.name,
            external_id=issue_id,
            key=clip(issue.get("identifier"), 100),
            title=issue.get("title"),
            status=clip(state.get("name"), 100),
            status_category=STATE_TYPES.get(str(state.get("type"))),
            priority=priority,
            assignee=person_or_none(
                assignee.get("displayName") or assignee.get("name"), assignee.get("email"), assignee.get("id")
            ),
            story_points=number(issue.get("estimate")),
            labels=labels,
            linked_issues=linked,
            created_at=created,
            updated_at=parse_time_or_none(issue.get("updatedAt")),
            resolved_at=resolved,
            url=issue.get("url"),
        )
        events: list[EventData] = [item]
        for entry in await self._history(issue):
            to_state = entry.get("toState") or {}
            at = parse_time_or_none(entry.get("createdAt"))
            if not to_state.get("name") or at is None:
                continue
            from_state = entry.get("fromState") or {}
            actor = entry.get("actor") or {}
            events.append(
                TransitionData(
                    project=scope.name,
                    issue_external_id=issue_id,
                    transition_id=str(entry["id"]),
                    from_status=from_state.get("name"),
                    to_status=str(to_state["name"]),
                    from_category=STATE_TYPES.get(str(from_state.get("type"))),
                    to_category=STATE_TYPES.get(str(to_state.get("type"))),
                    transitioned_at=at,
                    author=person_or_none(
                        actor.get("displayName") or actor.get("name"), actor.get("email"), actor.get("id")
                    ),
                )
            )
        if self.incidents.matches(None, labels, priority):
            events.append(
                IncidentData(
                    external_id=issue_id,
                    title=issue.get("title"),
                    severity=clip(priority, 20),
                    service=self.incidents.service(labels, []),
                    created_at=created,
                    resolved_at=resolved,
                    url=issue.get("url"),
                )
            )
        return events

    # ---- cycles -----------------------------------------------------------------------------------

    async def _cycles(self, scope: ScopeRef, cursor: Mapping[str, Any] | None) -> AsyncIterator[Batch]:
        """A team's cycles that ended within the horizon or are current/upcoming. Issues not
        completed when a cycle closed move to the next one; Linear lists them in the closed cycle's
        `uncompletedIssuesUponClose`, which is what carry-over is made of. Closed cycles are
        remembered in the cursor and not read again."""
        closed: set[str] = {str(c) for c in (cursor or {}).get("closed", [])}
        now, horizon = self.clock(), self._horizon()
        async for page in self._nodes(CYCLES_QUERY, {"id": scope.id}, ("team", "cycles")):
            for cycle in page:
                cycle_id = str(cycle["id"])
                starts, ends = (
                    parse_time_or_none(cycle.get("startsAt")),
                    parse_time_or_none(cycle.get("endsAt")),
                )
                completed = parse_time_or_none(cycle.get("completedAt"))
                if cycle_id in closed or (ends is not None and ends < horizon):
                    continue
                state: Literal["future", "active", "closed"]
                if completed is not None or (ends is not None and ends <= now):
                    state = "closed"
                elif starts is not None and starts <= now:
                    state = "active"
                else:
                    state = "future"
                issues = [
                    i
                    async for p in self._nodes(CYCLE_ISSUES_QUERY, {"id": cycle_id}, ("cycle", "issues"))
                    for i in p
                ]
                carried: list[dict[str, Any]] = []
                if state == "closed":
                    carried = [
                        i
                        async for p in self._nodes(
                            CYCLE_CARRIED_QUERY, {"id": cycle_id}, ("cycle", "uncompletedIssuesUponClose")
                        )
                        for i in p
                    ]
                end = completed or ends
                done = [
                    str(i["id"])
                    for i in issues
                    if (finished := parse_time_or_none(i.get("completedAt"))) is not None
                    and (end is None or finished <= end)
                ]
                members = list(
                    dict.fromkeys([*(str(i["id"]) for i in issues), *(str(i["id"]) for i in carried)])
                )
                number_ = cycle.get("number")
                name = cycle.get("name") or (
                    f"Cycle {int(number_)}" if isinstance(number_, int | float) else cycle_id
                )
                event = SprintData(
                    project=scope.name,
                    external_id=cycle_id,
                    board=scope.name,
                    name=clip(name, 255) or cycle_id,
                    state=state,
                    start_at=starts,
                    end_at=ends,
                    completed_at=completed,
                    issue_ids=members,
                    completed_issue_ids=[i for i in done if i in members],
                )
                if state == "closed":
                    closed.add(cycle_id)
                yield Batch([event], {"closed": sorted(closed)})
