"""Asana (REST 1.0) as a source of tasks, transitions and incidents.

Asana has no workflow states: a task's status is the section it sits in within the project, and
completion is a flag of its own. So a task's category is `done` when it is completed and otherwise
read from its section's name ("In Progress", "Review" → in_progress; anything else → todo; see
`common.category_from_name`), and its transitions are its stories: `section_changed` (moved between
sections of this project) and `marked_complete` / `marked_incomplete`. Estimates are a number custom
field ("Story Points", "Estimate", … or `spec.storyPointsField`), priority and type are custom fields
of those names, labels are tags.

Incremental sync uses the events API: the first call without a sync token answers 412 with a
token (taken before the first listing, so nothing changed during it is missed); each later run asks
for the events since the token and re-reads only the tasks they name. Because event streams are
"at most once" and tokens expire after a day, a run whose token expired — or whose last full
listing is older than `RELIST_AFTER` — lists the project's tasks with `modified_since` instead.
Listings use `limit`/`offset` pages (`next_page.offset`); the offset is saved after every page and
a listing whose offset expired starts again from its `modified_since`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

import doraflow.collectors.work.webhooks  # noqa: F401 - registers the Asana webhook source
from doraflow.collectors.base import Batch, CollectorError, Resource, ScopeRef, SourceClient
from doraflow.collectors.common import (
    CLOCK_SKEW,
    USER_FIXABLE_HTTP_ERRORS,
    Clock,
    ProviderAccess,
    backfill_horizon,
    clip,
    in_scope,
    iso,
    missing_literals,
    parse_time_or_none,
    person_or_none,
    scope_not_found,
    user_error,
    utc_now,
)
from doraflow.collectors.work.common import Category, IncidentMatcher, category_from_name, number
from doraflow.core.events import EventData, IncidentData, TransitionData, WorkItemData
from doraflow.core.http import HttpClient, HttpError, NotFoundError
from doraflow.core.resources import Integration

logger = logging.getLogger(__name__)

ASANA_URL = "https://app.asana.com/api/1.0"
TASK_FIELDS = ",".join(
    (
        "name",
        "resource_subtype",
        "created_at",
        "modified_at",
        "completed",
        "completed_at",
        "permalink_url",
        "assignee.name",
        "assignee.email",
        "memberships.project.gid",
        "memberships.section.gid",
        "memberships.section.name",
        "tags.name",
        "custom_fields.gid",
        "custom_fields.name",
        "custom_fields.resource_subtype",
        "custom_fields.number_value",
        "custom_fields.display_value",
        "custom_fields.text_value",
        "custom_fields.enum_value.name",
        "dependencies.gid",
    )
)
STORY_FIELDS = ",".join(
    (
        "created_at",
        "created_by.name",
        "created_by.email",
        "resource_subtype",
        "old_section.gid",
        "old_section.name",
        "new_section.gid",
        "new_section.name",
    )
)
ESTIMATE_NAMES = ("story points", "story point estimate", "points", "estimate")
TYPE_NAMES = ("type", "task type", "issue type")
SUBTYPES = {"default_task": "Task", "milestone": "Milestone", "approval": "Approval"}
RELIST_AFTER = timedelta(days=1)
ACCESS = ProviderAccess(
    provider="Asana",
    repository_format="project names, gids or globs",
    required_access="a personal access token or OAuth token of a user who can read the projects",
    visibility="the token's user must be a member of the project, or of its team for team-visible projects",
    kind="project",
    setting="spec.scope.projects",
)


def asana_auth_headers(credentials: str | None) -> dict[str, str]:
    if not credentials:
        return {}
    token = credentials.strip()
    return {"Authorization": token if token.lower().startswith("bearer ") else f"Bearer {token}"}


@dataclass
class Project:
    """What a run needs about the project: its sections and the custom fields it has."""

    gid: str
    name: str
    sections: dict[str, str]  # gid → name
    custom_fields: dict[str, str]  # lower-case name → gid
    problems: list[CollectorError] = field(default_factory=list)


def _custom(
    task: Mapping[str, Any], names: Sequence[str], gid: str | None = None
) -> Mapping[str, Any] | None:
    for wanted in names:
        for cf in task.get("custom_fields") or []:
            if (gid and cf.get("gid") == gid) or str(cf.get("name", "")).lower() == wanted:
                return cf  # type: ignore[no-any-return]
    return None


def _custom_text(cf: Mapping[str, Any] | None) -> str | None:
    if not cf:
        return None
    enum = cf.get("enum_value") or {}
    for value in (cf.get("display_value"), enum.get("name"), cf.get("text_value")):
        if isinstance(value, str) and value:
            return value
    return None


class AsanaClient(SourceClient):
    provider: ClassVar[str] = "asana"
    resources: ClassVar[tuple[Resource, ...]] = (Resource.ISSUES,)

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
        self.page_size = page_size
        self.clock = clock
        self.http = HttpClient(
            (integration.spec.base_url or ASANA_URL).rstrip("/"),
            headers=asana_auth_headers(credentials),
            **http_options,
        )
        self.incidents = IncidentMatcher(integration.spec.incidents, types_are_labels=True)

    async def aclose(self) -> None:
        await self.http.aclose()

    # ---- HTTP -------------------------------------------------------------------------------------

    async def _pages(
        self, path: str, params: Mapping[str, Any], offset: str | None = None
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str | None]]:
        """Each page's `data` and the offset of the next page (None on the last)."""
        while True:
            query = {**params, "limit": self.page_size, **({"offset": offset} if offset else {})}
            body = await self.http.get_json(path, params=query)
            offset = ((body.get("next_page") or {}).get("offset")) or None
            yield list(body.get("data") or []), offset
            if offset is None:
                return

    async def _all(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [item async for page, _ in self._pages(path, params) for item in page]

    # ---- scopes -----------------------------------------------------------------------------------

    async def list_scopes(self) -> list[ScopeRef]:
        scope = self.integration.spec.scope
        try:
            projects: list[dict[str, Any]] = []
            for workspace in await self._all("/workspaces", {}):
                params = {"workspace": workspace["gid"], "archived": "false", "opt_fields": "name"}
                projects += await self._all("/projects", params)
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, None) from exc
        refs = [
            ScopeRef(name=str(p["name"]), id=str(p["gid"]), attributes={})
            for p in projects
            if in_scope([p.get("name"), p.get("gid")], scope.projects, scope.exclude)
        ]
        found = ([p.get("name"), p.get("gid")] for p in projects)
        for literal in missing_literals(scope.projects, found, scope.exclude):
            refs.append(ScopeRef(name=literal, id=literal, attributes={"missing": True}))
        return refs

    # ---- collect ----------------------------------------------------------------------------------

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        if resource is not Resource.ISSUES:
            return
        try:
            project = await self._project(scope)
            async for batch in self._tasks(project, cursor or {}):
                yield batch
        except USER_FIXABLE_HTTP_ERRORS as exc:
            raise user_error(exc, ACCESS, self.integration, scope.name) from exc
        if project.problems:
            raise CollectorError(
                "; ".join(str(p) for p in project.problems),
                hint=" ".join(p.hint for p in project.problems),
                scope=scope.name,
            )

    async def _project(self, scope: ScopeRef) -> Project:
        if scope.attributes.get("missing"):
            raise scope_not_found(ACCESS, scope.name)
        sections = await self._all(f"/projects/{scope.id}/sections", {"opt_fields": "name"})
        settings = await self._all(
            f"/projects/{scope.id}/custom_field_settings",
            {"opt_fields": "custom_field.name,custom_field.gid"},
        )
        fields = {
            str((s.get("custom_field") or {}).get("name", "")).lower(): str(
                (s.get("custom_field") or {}).get("gid")
            )
            for s in settings
        }
        project = Project(
            scope.id, scope.name, {str(s["gid"]): str(s.get("name", "")) for s in sections}, fields
        )
        spec = self.integration.spec
        for wanted, setting in (
            (spec.story_points_field, "spec.storyPointsField"),
            (spec.incidents.service_field, "spec.incidents.serviceField"),
        ):
            if wanted and wanted.lower() not in fields and wanted not in fields.values():
                project.problems.append(
                    CollectorError(
                        f"Asana project {scope.name} has no custom field {wanted!r}",
                        hint=f"The custom field named in {setting} is not on this project (renamed or "
                        "removed?): set it to an existing custom field's name or gid, or remove it.",
                    )
                )
        return project

    async def _sync_token(self, gid: str, token: str | None) -> tuple[str | None, list[dict[str, Any]], bool]:
        """(new token, events since `token`, whether `token` was still valid). Asana gives at most
        100 events per call and says `has_more`."""
        events: list[dict[str, Any]] = []
        while True:
            params: dict[str, Any] = {"resource": gid, **({"sync": token} if token else {})}
            try:
                body = await self.http.get_json("/events", params=params)
            except HttpError as exc:
                # 412: no token yet, or it expired; the answer carries a fresh one
                fresh = exc.response.body if exc.status == 412 and exc.response else None
                if not isinstance(fresh, Mapping) or "sync" not in fresh:
                    raise
                return str(fresh["sync"]), [], False
            events += list(body.get("data") or [])
            token = str(body.get("sync") or token or "")
            if not body.get("has_more"):
                return token or None, events, True

    async def _tasks(self, project: Project, cursor: Mapping[str, Any]) -> AsyncIterator[Batch]:
        """Cursor: `sync` (the events token), `synced_at` (last successful run), `polled_at` (start
        of the last complete listing) and `listing` (a listing in progress: since, offset, started)."""
        now = self.clock()
        token: str | None = cursor.get("sync")
        synced = parse_time_or_none(cursor.get("synced_at"))
        polled = parse_time_or_none(cursor.get("polled_at"))
        listing: dict[str, Any] | None = cursor.get("listing")
        if listing is None and token and polled is not None and now - polled < RELIST_AFTER:
            new_token, changes, valid = await self._sync_token(project.gid, token)
            if valid:
                changed = _changed_tasks(changes)
                for start in range(0, len(changed), self.page_size):
                    out: list[EventData] = []
                    for gid in changed[start : start + self.page_size]:
                        try:
                            task = await self.http.get_json(
                                f"/tasks/{gid}", params={"opt_fields": TASK_FIELDS}
                            )
                        except NotFoundError:
                            continue  # deleted since: nothing to publish
                        out += await self._task_events(project, task.get("data") or {})
                    yield Batch(out)
                yield Batch([], {**cursor, "sync": new_token, "synced_at": iso(now), "listing": None})
                return
            token = new_token  # expired: list what changed since the last run instead
        elif listing is None:
            token, _, _ = await self._sync_token(project.gid, None)  # before listing: miss nothing
        if listing is None:
            since = (synced - CLOCK_SKEW) if synced is not None else self._horizon()
            listing = {"since": iso(since), "offset": None, "started": iso(now)}
        elif not token:
            token, _, _ = await self._sync_token(project.gid, None)
        async for batch in self._listing(project, listing, {**cursor, "sync": token}):
            yield batch

    async def _listing(
        self, project: Project, listing: Mapping[str, Any], cursor: Mapping[str, Any]
    ) -> AsyncIterator[Batch]:
        params = {"project": project.gid, "modified_since": listing["since"], "opt_fields": TASK_FIELDS}
        offset = listing.get("offset")
        try:
            async for page, next_offset in self._pages("/tasks", params, offset):
                events: list[EventData] = []
                for task in page:
                    events += await self._task_events(project, task)
                if next_offset:
                    saved = {**cursor, "listing": {**listing, "offset": next_offset}}
                else:
                    started = listing.get("started")
                    saved = {**cursor, "synced_at": started, "polled_at": started, "listing": None}
                yield Batch(events, saved)
        except HttpError as exc:
            if exc.status != 400 or not offset:
                raise
            logger.info("Asana listing offset expired; listing again", extra={"project": project.name})
            async for batch in self._listing(project, {**listing, "offset": None}, cursor):
                yield batch

    def _horizon(self) -> datetime:
        return backfill_horizon(self.integration, self.clock())

    # ---- events -----------------------------------------------------------------------------------

    async def _task_events(self, project: Project, task: Mapping[str, Any]) -> list[EventData]:
        created = parse_time_or_none(task.get("created_at"))
        if created is None or task.get("resource_subtype") == "section":
            return []
        gid = str(task["gid"])
        section = next(
            (
                (m.get("section") or {}).get("name")
                for m in task.get("memberships") or []
                if (m.get("project") or {}).get("gid") == project.gid
            ),
            None,
        )
        completed = bool(task.get("completed"))
        labels = [str(t["name"]) for t in task.get("tags") or [] if t.get("name")]
        spec = self.integration.spec
        points_field = _custom(
            task,
            [spec.story_points_field.lower()] if spec.story_points_field else ESTIMATE_NAMES,
            spec.story_points_field,
        )
        priority = clip(_custom_text(_custom(task, ("priority",))), 50)
        issue_type = clip(
            _custom_text(_custom(task, TYPE_NAMES)) or SUBTYPES.get(str(task.get("resource_subtype"))), 100
        )
        assignee = task.get("assignee") or {}
        item = WorkItemData(
            project=project.name,
            external_id=gid,
            title=task.get("name"),
            issue_type=issue_type,
            status=clip(section, 100),
            status_category="done" if completed else category_from_name(section) or "todo",
            priority=priority,
            assignee=person_or_none(assignee.get("name"), assignee.get("email"), assignee.get("gid")),
            story_points=number((points_field or {}).get("number_value")),
            labels=labels,
            linked_issues=[str(d["gid"]) for d in task.get("dependencies") or [] if d.get("gid")],
            created_at=created,
            updated_at=parse_time_or_none(task.get("modified_at")),
            resolved_at=parse_time_or_none(task.get("completed_at")) if completed else None,
            url=task.get("permalink_url"),
        )
        stories = await self._all(f"/tasks/{gid}/stories", {"opt_fields": STORY_FIELDS})
        events: list[EventData] = [item, *self._transitions(project, gid, section, stories)]
        if self.incidents.matches(issue_type, labels, priority):
            service_field = spec.incidents.service_field
            service = (
                _custom_text(_custom(task, [service_field.lower()], service_field)) if service_field else None
            )
            events.append(
                IncidentData(
                    external_id=gid,
                    title=task.get("name"),
                    severity=clip(priority, 20),
                    service=self.incidents.service(labels, [], service),
                    created_at=created,
                    resolved_at=item.resolved_at,
                    url=task.get("permalink_url"),
                )
            )
        return events

    def _transitions(
        self, project: Project, gid: str, section_now: str | None, stories: Sequence[Mapping[str, Any]]
    ) -> list[TransitionData]:
        """Replay the stories: the section (of this project) and the completion flag make the
        status; a move or a (un)completion is a transition between two of them."""
        ordered = sorted(
            (s for s in stories if parse_time_or_none(s.get("created_at")) is not None),
            key=lambda s: str(s.get("created_at")),
        )
        moves = [s for s in ordered if s.get("resource_subtype") == "section_changed" and _ours(project, s)]
        section = ((moves[0].get("old_section") or {}).get("name") if moves else None) or section_now
        section = section or "(no section)"
        completed = False
        result: list[TransitionData] = []

        def category(name: str, done: bool) -> Category:
            return "done" if done else category_from_name(name) or "todo"

        for story in ordered:
            kind = story.get("resource_subtype")
            before, was_done = section, completed
            if kind == "section_changed" and _ours(project, story):
                section = str((story.get("new_section") or {}).get("name") or section)
            elif kind == "marked_complete":
                completed = True
            elif kind == "marked_incomplete":
                completed = False
            else:
                continue
            author = story.get("created_by") or {}
            at = parse_time_or_none(story.get("created_at"))
            assert at is not None  # filtered above
            result.append(
                TransitionData(
                    project=project.name,
                    issue_external_id=gid,
                    transition_id=str(story["gid"]),
                    from_status=before,
                    to_status=section,
                    from_category=category(before, was_done),
                    to_category=category(section, completed),
                    transitioned_at=at,
                    author=person_or_none(author.get("name"), author.get("email"), author.get("gid")),
                )
            )
        return result


def _ours(project: Project, story: Mapping[str, Any]) -> bool:
    """A `section_changed` story of this project (a task in two projects moves in each)."""
    sections = {(story.get(k) or {}).get("gid") for k in ("old_section", "new_section")}
    return bool(sections & set(project.sections))


def _changed_tasks(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Tasks named by project events: the task itself, or the task a story was added to."""
    found: list[str] = []
    for event in events:
        resource = event.get("resource") or {}
        parent = event.get("parent") or {}
        gid = None
        if resource.get("resource_type") == "task" and event.get("action") != "deleted":
            gid = resource.get("gid")
        elif resource.get("resource_type") == "story" and parent.get("resource_type") == "task":
            gid = parent.get("gid")
        if gid and str(gid) not in found:
            found.append(str(gid))
    return found
