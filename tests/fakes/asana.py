"""A fake Asana REST API 1.0, shaped like developers.asana.com's documented responses:

* every response is `{"data": ...}`; lists are paged with `limit` + `offset` and carry
  `next_page: {offset, path, uri}` (null on the last page); an expired offset is a 400;
* `opt_fields` is honoured: only the named (top-level) fields come back, with `gid` and
  `resource_type`, as Asana does;
* `/workspaces`, `/projects?workspace`, `/projects/{gid}/sections`,
  `/projects/{gid}/custom_field_settings`, `/tasks?project&modified_since`, `/tasks/{gid}`,
  `/tasks/{gid}/stories` (system stories `section_changed` with `old_section`/`new_section`,
  `marked_complete`, `marked_incomplete`, and comments);
* `/events?resource&sync`: without a token, or with an expired one, `412 Precondition Failed` with
  `{"errors": [...], "sync": "<new token>"}`; with a valid one, the events since it (at most 100,
  `has_more`) and the next token;
* errors as `{"errors": [{"message", "help"}]}`: 401 Not Authorized, 404 Unknown object, and
  injectable 429 + Retry-After.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]
SYNC_EXPIRED = (
    "Sync token invalid or too old. If you are attempting to keep resources in sync, you must fetch the "
    "full dataset for this query now and use the new sync token for the next sync."
)


def asana_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ref(gid: str, kind: str, name: str | None = None, **extra: Any) -> Json:
    found: Json = {"gid": gid, "resource_type": kind}
    if name is not None:
        found["name"] = name
    return found | extra


def section_moved(gid: str, at: datetime, who: Json | None, old: Json, new: Json) -> Json:
    return {
        "gid": gid,
        "resource_type": "story",
        "created_at": asana_time(at),
        "created_by": who,
        "resource_subtype": "section_changed",
        "type": "system",
        "text": f'moved this Task from "{old["name"]}" to "{new["name"]}"',
        "old_section": old,
        "new_section": new,
    }


def story(gid: str, at: datetime, who: Json | None, subtype: str, text: str = "") -> Json:
    return {
        "gid": gid,
        "resource_type": "story",
        "created_at": asana_time(at),
        "created_by": who,
        "resource_subtype": subtype,
        "type": "comment" if subtype == "comment_added" else "system",
        "text": text or subtype.replace("_", " "),
    }


@dataclass
class Failure:
    status: int
    times: int
    path_contains: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeAsana:
    token: str = "asana-pat"
    workspaces: list[Json] = field(default_factory=lambda: [ref("100", "workspace", "Acme")])
    projects: dict[str, Json] = field(default_factory=dict)
    sections: dict[str, list[Json]] = field(default_factory=dict)
    custom_fields: dict[str, list[Json]] = field(default_factory=dict)  # project gid → custom fields
    tasks: dict[str, Json] = field(default_factory=dict)
    stories: dict[str, list[Json]] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)  # the event log, in order
    generation: int = 0  # tokens of an older generation have expired
    offset_generation: int = 0  # offsets issued in an older generation have expired
    requests: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    # ---- test controls ----------------------------------------------------------------------------

    def add_project(self, gid: str, name: str, sections: list[Json], custom_fields: list[Json]) -> Json:
        project = ref(gid, "project", name, archived=False, workspace=self.workspaces[0])
        self.projects[gid] = project
        self.sections[gid] = sections
        self.custom_fields[gid] = custom_fields
        return project

    def add_task(
        self,
        gid: str,
        name: str,
        *,
        project: Json,
        section: Json,
        created: datetime,
        modified: datetime,
        completed: datetime | None = None,
        assignee: Json | None = None,
        tags: list[str] | None = None,
        custom: list[Json] | None = None,
        stories: list[Json] | None = None,
    ) -> Json:
        task: Json = {
            "gid": gid,
            "resource_type": "task",
            "resource_subtype": "default_task",
            "name": name,
            "created_at": asana_time(created),
            "modified_at": asana_time(modified),
            "completed": completed is not None,
            "completed_at": asana_time(completed) if completed else None,
            "permalink_url": f"https://app.asana.com/0/{project['gid']}/{gid}",
            "assignee": assignee,
            "memberships": [{"project": ref(project["gid"], "project", project["name"]), "section": section}],
            "tags": [ref(f"tag-{t}", "tag", t) for t in tags or []],
            "custom_fields": custom or [],
            "dependencies": [],
        }
        self.tasks[gid] = task
        self.stories[gid] = stories or []
        return task

    def changed(self, task_gid: str, at: datetime, *, story_gid: str | None = None) -> None:
        """Record what Asana's event stream would say about a change to a task (or a story added)."""
        project = self.tasks[task_gid]["memberships"][0]["project"]
        if story_gid:
            resource, parent = ref(story_gid, "story"), ref(task_gid, "task")
        else:
            resource, parent = (
                ref(task_gid, "task", self.tasks[task_gid]["name"]),
                ref(project["gid"], "project"),
            )
        self.events.append(
            {
                "user": ref("user-ada", "user", "Ada"),
                "created_at": asana_time(at),
                "action": "added" if story_gid else "changed",
                "resource": resource,
                "parent": parent,
                "change": None if story_gid else {"field": "name", "action": "changed"},
            }
        )

    def expire_offsets(self) -> None:
        self.offset_generation += 1

    def expire_tokens(self) -> None:
        self.generation += 1

    def fail(self, status: int, times: int = 1, path_contains: str = "", **headers: str) -> None:
        self.failures.append(Failure(status, times, path_contains, dict(headers)))

    def calls(self, fragment: str) -> list[str]:
        return [r for r in self.requests if fragment in r]

    # ---- ASGI app ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/1.0/{path:path}", self._dispatch, methods=["GET"])])

    async def _dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        self.requests.append(f"{path}?{request.url.query}" if request.url.query else path)
        for failure in self.failures:
            if failure.times > 0 and failure.path_contains in path:
                failure.times -= 1
                return self._error(failure.status, "injected", failure.headers)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, "Not Authorized")
        routes: list[tuple[str, Callable[..., Response]]] = [
            (r"/workspaces", self._workspaces),
            (r"/projects", self._projects),
            (r"/projects/(\d+)/sections", self._sections),
            (r"/projects/(\d+)/custom_field_settings", self._settings),
            (r"/tasks", self._list_tasks),
            (r"/tasks/(\d+)", self._task),
            (r"/tasks/(\d+)/stories", self._stories),
            (r"/events", self._events),
        ]
        for pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match:
                return handler(query, *match.groups())
        return self._error(404, "Not found")

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        extra = dict(headers or {})
        if status == 429:
            extra.setdefault("Retry-After", "2")
            message = "You have made too many requests recently. Please, be chill."
        body = {"errors": [{"message": message, "help": "For more information on API status codes ..."}]}
        return JSONResponse(body, status_code=status, headers=extra)

    def _fields(self, item: Json, query: Json) -> Json:
        wanted = {f.split(".")[0] for f in (query.get("opt_fields") or "").split(",") if f}
        if not wanted:
            return {k: item[k] for k in ("gid", "resource_type", "name", "resource_subtype") if k in item}
        return {k: v for k, v in item.items() if k in wanted or k in ("gid", "resource_type")}

    def _paged(self, items: list[Json], query: Json, path: str) -> Response:
        start = 0
        if query.get("offset"):
            generation, _, index = base64.b64decode(query["offset"]).decode().partition(":")
            if int(generation) != self.offset_generation:
                return self._error(400, "offset: Your pagination token has expired.")
            start = int(index)
        limit = int(query.get("limit", 100))
        page = items[start : start + limit]
        next_page = None
        if start + limit < len(items):
            offset = base64.b64encode(f"{self.offset_generation}:{start + limit}".encode()).decode()
            next_page = {
                "offset": offset,
                "path": f"{path}?limit={limit}&offset={offset}",
                "uri": f"https://app.asana.com/api/1.0{path}?limit={limit}&offset={offset}",
            }
        return JSONResponse({"data": [self._fields(i, query) for i in page], "next_page": next_page})

    def _workspaces(self, query: Json) -> Response:
        return self._paged(self.workspaces, query, "/workspaces")

    def _projects(self, query: Json) -> Response:
        found = [p for p in self.projects.values() if p["workspace"]["gid"] == query.get("workspace")]
        return self._paged(found, query, "/projects")

    def _unknown(self, kind: str, gid: str) -> Response:
        return self._error(404, f"{kind}: Unknown object: {gid}")

    def _sections(self, query: Json, gid: str) -> Response:
        if gid not in self.projects:
            return self._unknown("project", gid)
        return self._paged(self.sections[gid], query, f"/projects/{gid}/sections")

    def _settings(self, query: Json, gid: str) -> Response:
        if gid not in self.projects:
            return self._unknown("project", gid)
        settings = [
            {
                "gid": f"setting-{cf['gid']}",
                "resource_type": "custom_field_setting",
                "custom_field": {k: cf[k] for k in ("gid", "resource_type", "name", "resource_subtype")},
                "is_important": True,
            }
            for cf in self.custom_fields[gid]
        ]
        return self._paged(settings, query, f"/projects/{gid}/custom_field_settings")

    def _list_tasks(self, query: Json) -> Response:
        project = query.get("project", "")
        if project not in self.projects:
            return self._unknown("project", project)
        since = query.get("modified_since")
        found = [
            t
            for t in self.tasks.values()
            if any(m["project"]["gid"] == project for m in t["memberships"])
            and (not since or _at(t["modified_at"]) >= _at(since))
        ]
        return self._paged(found, query, "/tasks")

    def _task(self, query: Json, gid: str) -> Response:
        if gid not in self.tasks:
            return self._unknown("task", gid)
        return JSONResponse({"data": self._fields(self.tasks[gid], query)})

    def _stories(self, query: Json, gid: str) -> Response:
        if gid not in self.tasks:
            return self._unknown("task", gid)
        return self._paged(self.stories[gid], query, f"/tasks/{gid}/stories")

    def _events(self, query: Json) -> Response:
        parts = (query.get("sync") or "").split("-")
        valid = len(parts) == 3 and parts[0] == "tok" and int(parts[1]) == self.generation
        position = int(parts[2]) if valid else -1
        if not valid or position > len(self.events):
            body = {
                "errors": [{"message": SYNC_EXPIRED}],
                "sync": f"tok-{self.generation}-{len(self.events)}",
            }
            return JSONResponse(body, status_code=412)
        page = self.events[position : position + 100]
        end = position + len(page)
        token = f"tok-{self.generation}-{end}"
        return JSONResponse({"data": page, "sync": token, "has_more": end < len(self.events)})


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
