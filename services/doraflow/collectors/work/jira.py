"""Jira Cloud and Jira Data Center as a source of work items, status transitions, sprints and incidents.

Cloud and Data Center differ in three places, decided once per site from `/rest/api/2/serverInfo`:
Cloud has REST v3 and the token-paged `/rest/api/3/search/jql`; Data Center has v2 and the
offset-paged `/rest/api/2/search`; Cloud pages a long changelog with `/issue/{id}/changelog`.
The Agile API (`/rest/agile/1.0`) for boards and sprints is the same on both. Credentials decide
the authentication: `email:api-token` is Basic (Cloud), anything else a Bearer personal access
token (Data Center).

Issues are read with `updated` JQL windows (`collectors.common.stream_window`), newest first, with the
changelog expanded, so one call per page yields the issues *and* every status transition. JQL
dates are minutes in the *user's* time zone (Jira's rule, not UTC), so the window bounds are
written in the zone `/myself` reports and widened to whole minutes; re-reading an item at a bound
is harmless (stable event ids), skipping one is not.

Site-specific fields are discovered, not assumed: the story-points field is whichever numeric
custom field is called "Story Points" / "Story point estimate" (sites have one or both; the first
non-empty wins per issue) unless `spec.storyPointsField` names one; status categories come from
`/status` (new → todo, indeterminate → in_progress, done → done), so a transition into a status the
issue is no longer in still gets its category.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import doraflow.collectors.work.webhooks  # noqa: F401 - registers the Jira webhook source
from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef, SourceClient
from doraflow.collectors.common import (
    USER_FIXABLE_HTTP_ERRORS,
    Clock,
    ProviderAccess,
    WindowPass,
    backfill_horizon,
    clip,
    in_scope,
    missing_literals,
    parse_time_or_none,
    person_or_none,
    scope_not_found,
    stream_window,
    user_error,
    utc_now,
)
from doraflow.collectors.work.common import (
    UPDATED_WINDOW,
    Category,
    IncidentMatcher,
    category_from_name,
    field_text,
    number,
)
from doraflow.core.events import (
    EventData,
    IncidentData,
    PersonRef,
    SprintData,
    TransitionData,
    WorkItemData,
)
from doraflow.core.http import HttpClient, HttpError, NotFoundError
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

STATUS_CATEGORIES: dict[str, Category] = {"new": "todo", "indeterminate": "in_progress", "done": "done"}
SPRINT_STATES: dict[str, Literal["future", "active", "closed"]] = {
    "future": "future",
    "active": "active",
    "closed": "closed",
}
STORY_POINT_NAMES = ("story points", "story point estimate", "story point", "storypoints")
BASE_FIELDS = (
    "summary",
    "issuetype",
    "status",
    "priority",
    "assignee",
    "labels",
    "components",
    "issuelinks",
    "created",
    "updated",
    "resolutiondate",
)
ACCESS = ProviderAccess(
    provider="Jira",
    repository_format="project keys such as ENG, project names, or globs such as ENG*",
    required_access="an account with the Browse Projects permission on the projects (and on their boards)",
    visibility="the account needs the Browse Projects permission on the project",
    kind="project",
    setting="spec.scope.projects",
)
SITE_TTL = 3600.0  # fields, statuses and the user's time zone are re-read hourly
CHANGELOG_PAGE = 100


def jira_auth_headers(credentials: str | None) -> dict[str, str]:
    """`email:api-token` → Basic (Cloud); a bare token → Bearer (Data Center personal access
    token); a value that already names its scheme is sent as it is."""
    if not credentials:
        return {}
    secret = credentials.strip()
    if secret.lower().startswith(("basic ", "bearer ")):
        return {"Authorization": secret}
    user, sep, token = secret.partition(":")
    if sep and "@" in user and token:
        encoded = base64.b64encode(f"{user}:{token}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}
    return {"Authorization": f"Bearer {secret}"}


def jql_time(moment: datetime, zone: tzinfo, *, upper: bool = False) -> str:
    """A JQL date literal: minutes in the user's zone; an upper bound is the *next* minute (used
    with `<`), so nothing within the bound's minute is cut off."""
    local = moment.astimezone(zone).replace(second=0, microsecond=0)
    if upper:
        local += timedelta(minutes=1)
    return local.strftime("%Y/%m/%d %H:%M")


def jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Site:
    """What is read once per site (and refreshed hourly)."""

    cloud: bool
    zone: tzinfo
    statuses: dict[str, tuple[str, Category | None]]  # id → (name, category)
    status_names: dict[str, Category | None]  # lower-case name → category
    story_point_fields: list[str]
    service_fields: list[str]
    problems: list[CollectorError] = field(default_factory=list)
    loaded_at: float = 0.0

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.cloud else "/rest/api/2"

    def category(self, status_id: Any, name: Any) -> Category | None:
        if status_id is not None and str(status_id) in self.statuses:
            return self.statuses[str(status_id)][1]
        if isinstance(name, str) and name.lower() in self.status_names:
            return self.status_names[name.lower()]
        return category_from_name(name if isinstance(name, str) else None)


def _status_category(raw: Mapping[str, Any] | None) -> Category | None:
    key = ((raw or {}).get("statusCategory") or {}).get("key")
    return STATUS_CATEGORIES.get(key) if isinstance(key, str) else None


def resolve_fields(
    fields: Sequence[Mapping[str, Any]], wanted: str | None, defaults: Sequence[str], what: str, setting: str
) -> tuple[list[str], CollectorError | None]:
    """Field ids for `wanted` (an id such as customfield_10016, or a name), else for the default
    names in order of preference. A configured field that the site does not have is a problem for
    the user — reported, while everything else is still collected."""
    if wanted:
        for f in fields:
            if f.get("id") == wanted or str(f.get("name", "")).lower() == wanted.lower():
                return [str(f["id"])], None
        problem = CollectorError(
            f"Jira has no field {wanted!r} ({what})",
            hint=f"The field named in {setting} does not exist on this Jira site (renamed or deleted?): "
            "set it to an existing field's name or id (see /rest/api/3/field), or remove it.",
        )
        return [], problem
    found: list[str] = []
    for name in defaults:
        for f in fields:
            numeric = (f.get("schema") or {}).get("type") == "number"
            if str(f.get("name", "")).lower() == name and numeric and str(f["id"]) not in found:
                found.append(str(f["id"]))
    return found, None


class JiraClient(SourceClient):
    provider: ClassVar[str] = "jira"
    resources: ClassVar[tuple[Resource, ...]] = (Resource.ISSUES, Resource.SPRINTS)

    def __init__(
        self,
        integration: Integration,
        credentials: str | None,
        *,
        page_size: int = 100,
        clock: Clock = utc_now,
        **http_options: Any,
    ) -> None:
        super().__init__(integration, credentials)
        self.base_url = (integration.spec.base_url or "").rstrip("/")
        self.page_size = page_size
        self.clock = clock
        self.http = HttpClient(
            self.base_url or "https://jira.invalid", headers=jira_auth_headers(credentials), **http_options
        )
        self.incidents = IncidentMatcher(integration.spec.incidents)
        self._site: Site | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    # ---- site -------------------------------------------------------------------------------------

    async def site(self) -> Site:
        if self._site is not None and time.monotonic() - self._site.loaded_at < SITE_TTL:
            return self._site
        if not self.base_url:
            raise CollectorError(
                "Jira needs the site's address",
                hint="Set spec.baseUrl to https://<your-site>.atlassian.net or your Data Center URL.",
            )
        try:
            info = await self.http.get_json("/rest/api/2/serverInfo")
            cloud = str(info.get("deploymentType", "")).lower() == "cloud"
        except NotFoundError:
            cloud = self.base_url.endswith(".atlassian.net")
        api = "/rest/api/3" if cloud else "/rest/api/2"
        myself = await self.http.get_json(f"{api}/myself")
        zone = _zone(myself.get("timeZone"))
        fields = await self.http.get_json(f"{api}/field")
        statuses = await self.http.get_json(f"{api}/status")
        by_id: dict[str, tuple[str, Category | None]] = {}
        by_name: dict[str, Category | None] = {}
        for status in statuses if isinstance(statuses, list) else []:
            category = _status_category(status)
            by_id[str(status.get("id"))] = (str(status.get("name", "")), category)
            by_name.setdefault(str(status.get("name", "")).lower(), category)
        spec = self.integration.spec
        points, points_problem = resolve_fields(
            fields, spec.story_points_field, STORY_POINT_NAMES, "story points", "spec.storyPointsField"
        )
        services: list[str] = []
        service_problem: CollectorError | None = None
        if spec.incidents.service_field:
            services, service_problem = resolve_fields(
                fields, spec.incidents.service_field, (), "incident service", "spec.incidents.serviceField"
            )
        if not points and points_problem is None:
            logger.info("no story points field on this Jira site", extra={"site": self.base_url})
        self._site = Site(
            cloud=cloud,
            zone=zone,
            statuses=by_id,
            status_names=by_name,
            story_point_fields=points,
            service_fields=services,
            problems=[p for p in (points_problem, service_problem) if p is not None],
            loaded_at=time.monotonic(),
        )
        return self._site

    # ---- scopes -----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        scope = self.integration.spec.scope
        try:
            site = await self.site()
            projects = await self._projects(site)
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, None) from exc
        refs = [
            ScopeRef(name=str(p["key"]), id=str(p["id"]), attributes={"name": p.get("name"), "key": p["key"]})
            for p in projects
            if in_scope([p.get("key"), p.get("name")], scope.projects, scope.exclude)
        ]
        found = ([p.get("key"), p.get("name")] for p in projects)
        for literal in missing_literals(scope.projects, found, scope.exclude):
            refs.append(ScopeRef(name=literal, id=literal, attributes={"missing": True}))
        return refs

    async def _projects(self, site: Site) -> list[Mapping[str, Any]]:
        if not site.cloud:
            listing = await self.http.get_json("/rest/api/2/project")
            return list(listing) if isinstance(listing, list) else []
        projects: list[Mapping[str, Any]] = []
        start = 0
        while True:
            page = await self.http.get_json(
                "/rest/api/3/project/search", params={"startAt": start, "maxResults": 50}
            )
            values = page.get("values") or []
            projects.extend(values)
            start += len(values)
            if page.get("isLast", True) or not values:
                return projects

    async def _check_project(self, site: Site, scope: ScopeRef) -> str:
        """The project's key, or a `CollectorError` saying it is gone (a deleted or renamed project,
        or an entry in the spec that never existed)."""
        try:
            project = await self.http.get_json(f"{site.api}/project/{scope.id}")
        except NotFoundError as exc:
            raise scope_not_found(ACCESS, scope.name) from exc
        return str(project.get("key") or scope.name)

    # ---- collect ----------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        try:
            site = await self.site()
            key = await self._check_project(site, scope)
            if resource is Resource.ISSUES:
                async for batch in self._issues(site, key, cursor):
                    yield batch
                if site.problems:
                    raise CollectorError(
                        "; ".join(str(p) for p in site.problems),
                        hint=" ".join(p.hint for p in site.problems),
                        scope=scope.name,
                    )
            elif resource is Resource.SPRINTS:
                async for batch in self._sprints(site, key, cursor):
                    yield batch
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, scope.name) from exc

    def _horizon(self) -> datetime:
        return backfill_horizon(self.integration, self.clock())

    # ---- issues -----------------------------------------------------------------------------------

    def _fields(self, site: Site) -> list[str]:
        return list(dict.fromkeys((*BASE_FIELDS, *site.story_point_fields, *site.service_fields)))

    async def _issues(self, site: Site, key: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Batch]:
        fields = ",".join(self._fields(site))
        incident_ids: set[str] = set()  # the incident filter's hits on the page being mapped

        async def pages(window: WindowPass) -> AsyncIterator[list[Mapping[str, Any]]]:
            jql = f"project = {jql_string(key)} AND updated >= {jql_string(jql_time(window.lo, site.zone))}"
            if window.hi is not None:
                jql += f" AND updated < {jql_string(jql_time(window.hi, site.zone, upper=True))}"
            jql += " ORDER BY updated DESC"
            async for page in self._search(site, jql, fields, changelog=True):
                incident_ids.clear()
                incident_ids.update(await self._filter_hits(site, page))
                yield page

        async for events, window_cursor in stream_window(
            cursor,
            horizon=self._horizon(),
            now=self.clock(),
            pages=pages,
            updated_at=lambda issue: parse_time_or_none((issue.get("fields") or {}).get("updated")),
            events=lambda issue: self._issue_events(site, key, issue, str(issue["id"]) in incident_ids),
            rules=UPDATED_WINDOW,
        ):
            yield Batch(events, window_cursor)

    async def _search(
        self, site: Site, jql: str, fields: str, *, changelog: bool = False
    ) -> AsyncIterator[list[Mapping[str, Any]]]:
        params: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": self.page_size}
        if changelog:
            params["expand"] = "changelog"
        try:
            if site.cloud:
                token: str | None = None
                while True:
                    query = {**params, **({"nextPageToken": token} if token else {})}
                    page = await self.http.get_json("/rest/api/3/search/jql", params=query)
                    issues = list(page.get("issues") or [])
                    yield issues
                    token = page.get("nextPageToken")
                    # the last page may omit the token instead of sending null (JRACLOUD-92184)
                    if not token or page.get("isLast") is True or not issues:
                        return
            else:
                start = 0
                while True:
                    page = await self.http.get_json("/rest/api/2/search", params={**params, "startAt": start})
                    issues = list(page.get("issues") or [])
                    yield issues
                    start += len(issues)
                    if not issues or start >= int(page.get("total", 0)):
                        return
        except HttpError as exc:
            if exc.status == 400:
                raise CollectorError(
                    f"Jira rejected a search: {exc}",
                    hint="A project in spec.scope.projects no longer exists, or spec.incidents.filter is not "
                    "valid JQL: fix the spec (try the JQL in Jira's issue search first).",
                ) from exc
            raise

    async def _filter_hits(self, site: Site, page: Sequence[Mapping[str, Any]]) -> set[str]:
        """Which issues of a page the incident JQL filter selects: one extra search per page,
        restricted to the page's keys, so the filter's exact semantics are Jira's own."""
        rule = self.integration.spec.incidents.filter
        if not rule or not page:
            return set()
        keys = ", ".join(str(issue["key"]) for issue in page)
        hits: set[str] = set()
        async for matched in self._search(site, f"key in ({keys}) AND ({rule})", "summary"):
            hits.update(str(issue["id"]) for issue in matched)
        return hits

    async def _histories(self, site: Site, issue: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """Every changelog entry; the search embeds at most a page of them, the rest are paged."""
        changelog = issue.get("changelog") or {}
        histories = list(changelog.get("histories") or [])
        total = int(changelog.get("total", len(histories)) or 0)
        if total <= len(histories):
            return histories
        if not site.cloud:
            full = await self.http.get_json(
                f"/rest/api/2/issue/{issue['id']}", params={"expand": "changelog", "fields": "created"}
            )
            return list((full.get("changelog") or {}).get("histories") or histories)
        histories = []
        start = 0
        while True:
            page = await self.http.get_json(
                f"/rest/api/3/issue/{issue['id']}/changelog",
                params={"startAt": start, "maxResults": CHANGELOG_PAGE},
            )
            values = list(page.get("values") or [])
            histories.extend(values)
            start += len(values)
            if page.get("isLast", True) or not values:
                return histories

    async def _issue_events(
        self, site: Site, key: str, issue: Mapping[str, Any], filtered: bool
    ) -> list[EventData]:
        f: Mapping[str, Any] = issue.get("fields") or {}
        issue_id = str(issue["id"])
        created = parse_time_or_none(f.get("created"))
        if created is None:
            logger.warning("issue without a creation time skipped", extra={"issue": issue.get("key")})
            return []
        status = f.get("status") or {}
        labels = [str(label) for label in f.get("labels") or []]
        components = [str(c.get("name")) for c in f.get("components") or [] if c.get("name")]
        issue_type = clip((f.get("issuetype") or {}).get("name"), 100)
        priority = clip((f.get("priority") or {}).get("name"), 50)
        assignee = f.get("assignee") or None
        url = f"{self.base_url}/browse/{issue['key']}"
        item = WorkItemData(
            project=key,
            external_id=issue_id,
            key=clip(issue.get("key"), 100),
            title=f.get("summary"),
            issue_type=issue_type,
            status=clip(status.get("name"), 100),
            status_category=_status_category(status) or site.category(status.get("id"), status.get("name")),
            priority=priority,
            assignee=_person(assignee) if assignee else None,
            story_points=next(
                (p for p in (number(f.get(fid)) for fid in site.story_point_fields) if p is not None), None
            ),
            labels=labels,
            components=components,
            linked_issues=_linked(f.get("issuelinks") or []),
            created_at=created,
            updated_at=parse_time_or_none(f.get("updated")),
            resolved_at=parse_time_or_none(f.get("resolutiondate")),
            url=url,
        )
        events: list[EventData] = [item]
        events.extend(self._transitions(site, key, issue_id, await self._histories(site, issue)))
        if self.incidents.matches(issue_type, labels, priority, filtered=filtered):
            service_value = next((field_text(f.get(fid)) for fid in site.service_fields if f.get(fid)), None)
            events.append(
                IncidentData(
                    external_id=issue_id,
                    title=f.get("summary"),
                    severity=clip(priority, 20),
                    service=self.incidents.service(labels, components, service_value),
                    created_at=created,
                    resolved_at=item.resolved_at,
                    url=url,
                )
            )
        return events

    def _transitions(
        self, site: Site, key: str, issue_id: str, histories: Sequence[Mapping[str, Any]]
    ) -> list[TransitionData]:
        transitions: list[TransitionData] = []
        for history in histories:
            at = parse_time_or_none(history.get("created"))
            if at is None:
                continue
            changes = [
                item
                for item in history.get("items") or []
                if item.get("field") == "status" or item.get("fieldId") == "status"
            ]
            for index, item in enumerate(changes):
                to_name = item.get("toString") or site.statuses.get(str(item.get("to")), ("", None))[0]
                if not to_name:
                    continue
                from_name = item.get("fromString") or None
                transitions.append(
                    TransitionData(
                        project=key,
                        issue_external_id=issue_id,
                        transition_id=str(history.get("id")) + (f".{index}" if index else ""),
                        from_status=from_name,
                        to_status=str(to_name),
                        from_category=site.category(item.get("from"), from_name) if from_name else None,
                        to_category=site.category(item.get("to"), to_name),
                        transitioned_at=at,
                        author=_person(history.get("author") or {}),
                    )
                )
        return transitions

    # ---- sprints ----------------------------------------------------------------------------------

    async def _agile_pages(self, path: str, params: Mapping[str, Any] | None = None) -> AsyncIterator[Any]:
        """The Agile API's offset pages: `values` + `isLast` (boards, sprints) or `issues` + `total`
        (a sprint's issues)."""
        start = 0
        while True:
            page = await self.http.get_json(
                path, params={**(params or {}), "startAt": start, "maxResults": self.page_size}
            )
            items = list(page.get("values") or page.get("issues") or [])
            for item in items:
                yield item
            start += len(items)
            if not items:
                return
            if page.get("isLast"):
                return
            if "total" in page and start >= int(page["total"]):
                return

    async def _sprints(self, site: Site, key: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Batch]:
        """Every sprint of the project's scrum boards that ended within the horizon or is still
        open, with its issues and which of them were completed in it. A closed sprint never changes
        again: once published it is remembered in the cursor and not read again."""
        closed: set[int] = {int(i) for i in (cursor or {}).get("closed", [])}
        horizon = self._horizon()
        async for board in self._agile_pages("/rest/agile/1.0/board", {"projectKeyOrId": key}):
            if board.get("type") == "kanban":
                continue  # kanban boards have no sprints
            board_id = int(board["id"])
            try:
                async for sprint in self._agile_pages(f"/rest/agile/1.0/board/{board_id}/sprint"):
                    sprint_id = int(sprint["id"])
                    if sprint.get("originBoardId") not in (None, board_id) or sprint_id in closed:
                        continue  # shown on several boards: collected from the board it belongs to
                    ended = parse_time_or_none(sprint.get("completeDate")) or parse_time_or_none(
                        sprint.get("endDate")
                    )
                    if sprint.get("state") == "closed" and ended is not None and ended < horizon:
                        continue
                    event = await self._sprint_event(site, key, board, sprint)
                    if event.state == "closed":
                        closed.add(sprint_id)
                    yield Batch([event], {"closed": sorted(closed)})
            except HttpError as exc:
                if exc.status not in (400, 404):
                    raise
                logger.warning(
                    "board has no readable sprints; skipped",
                    extra={"project": key, "board": board_id, "status": exc.status},
                )

    async def _sprint_event(
        self, site: Site, key: str, board: Mapping[str, Any], sprint: Mapping[str, Any]
    ) -> SprintData:
        state = SPRINT_STATES.get(str(sprint.get("state", "")).lower(), "future")
        start = parse_time_or_none(sprint.get("startDate"))
        end = parse_time_or_none(sprint.get("endDate"))
        complete = parse_time_or_none(sprint.get("completeDate"))
        members: list[str] = []
        completed: list[str] = []
        params = {"fields": "status,resolutiondate"}
        async for issue in self._agile_pages(f"/rest/agile/1.0/sprint/{sprint['id']}/issue", params):
            issue_id = str(issue["id"])
            members.append(issue_id)
            f = issue.get("fields") or {}
            status = f.get("status") or {}
            category = _status_category(status) or site.category(status.get("id"), status.get("name"))
            done_now = category == "done"
            resolved = parse_time_or_none(f.get("resolutiondate"))
            if state == "closed" and complete is not None:
                # done when the sprint was completed: resolved by then (a reopened issue loses its
                # resolution date, so it counts as carried over)
                if resolved is not None and resolved <= complete:
                    completed.append(issue_id)
            elif state == "active" and done_now:
                completed.append(issue_id)
        return SprintData(
            project=key,
            external_id=str(sprint["id"]),
            board=clip(board.get("name"), 255),
            name=clip(sprint.get("name"), 255) or f"Sprint {sprint['id']}",
            state=state,
            start_at=start,
            end_at=end,
            completed_at=complete,
            issue_ids=members,
            completed_issue_ids=completed,
        )


def _zone(name: Any) -> tzinfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            logger.warning("unknown Jira time zone; using UTC", extra={"zone": name})
    return ZoneInfo("UTC")


def _person(raw: Mapping[str, Any]) -> PersonRef | None:
    """Cloud users have `accountId` (and an e-mail only if visible); Data Center users `name`."""
    return person_or_none(
        name=raw.get("displayName"),
        email=raw.get("emailAddress"),
        username=raw.get("accountId") or raw.get("name") or raw.get("key"),
    )


def _linked(links: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for link in links:
        other = link.get("outwardIssue") or link.get("inwardIssue") or {}
        if other.get("key") and other["key"] not in keys:
            keys.append(str(other["key"]))
    return keys
