"""A fake Jira (Cloud REST v3 and Data Center REST v2, plus the Agile REST API 1.0), shaped like
developer.atlassian.com's documented responses:

* `GET /rest/api/3/search/jql` — `{issues, nextPageToken, isLast}`, the token omitted on the last
  page (as Jira Cloud does, JRACLOUD-92184); `GET /rest/api/2/search` — `{startAt, maxResults,
  total, issues}` (Data Center);
* issues with `fields` (only those asked for) and, with `expand=changelog`, `changelog: {startAt,
  maxResults, total, histories: [{id, author, created, items: [{field, fieldtype, fieldId, from,
  fromString, to, toString}]}]}` — at most `embedded_histories` of them, the rest paged by
  `GET /rest/api/3/issue/{id}/changelog` (`{self, nextPage, maxResults, startAt, total, isLast,
  values}`);
* `/field` (`{id, key, name, custom, schema: {type, custom, customId}}`), `/status` (`{id, name,
  statusCategory: {id, key, name, colorName}}`), `/myself` (with `timeZone`), `/project/search`,
  `/project/{key}` (404 `{"errorMessages": [...], "errors": {}}` when it does not exist),
  `/rest/api/2/serverInfo` (`deploymentType`);
* Agile: `/board?projectKeyOrId` and `/board/{id}/sprint` (`{maxResults, startAt, isLast, values}`),
  `/sprint/{id}/issue` (`{expand, startAt, maxResults, total, issues}`); sprint objects `{id, self,
  state, name, startDate, endDate, completeDate, originBoardId, goal}`.

JQL understood: clauses joined by AND — `project = "K"`, `updated >= "yyyy/MM/dd HH:mm"`,
`updated < "…"` (in the user's time zone, as Jira reads them), `key in (A-1, A-2)`, and any
parenthesised filter registered in `filters` — then `ORDER BY updated DESC|ASC`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]

CATEGORIES = {
    "todo": {"id": 2, "key": "new", "name": "To Do", "colorName": "blue-gray"},
    "in_progress": {"id": 4, "key": "indeterminate", "name": "In Progress", "colorName": "yellow"},
    "done": {"id": 3, "key": "done", "name": "Done", "colorName": "green"},
}


@dataclass
class Failure:
    status: int
    times: int
    path_contains: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeIssue:
    id: str
    key: str
    project: str
    fields: Json
    histories: list[Json] = field(default_factory=list)


def jira_time(value: datetime) -> str:
    """Jira's timestamp format: milliseconds and an offset without a colon."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.000%z")


def user_payload(account_id: str, name: str, email: str | None = None) -> Json:
    user: Json = {
        "self": f"https://fake.atlassian.net/rest/api/3/user?accountId={account_id}",
        "accountId": account_id,
        "displayName": name,
        "active": True,
        "timeZone": "UTC",
        "accountType": "atlassian",
    }
    if email:
        user["emailAddress"] = email
    return user


def status_payload(status_id: str, name: str, category: str) -> Json:
    return {
        "self": f"https://fake.atlassian.net/rest/api/3/status/{status_id}",
        "description": "",
        "iconUrl": "https://fake.atlassian.net/images/icons/statuses/generic.png",
        "name": name,
        "untranslatedName": name,
        "id": status_id,
        "statusCategory": {
            "self": "https://fake.atlassian.net/rest/api/3/statuscategory",
            **CATEGORIES[category],
        },
    }


def field_payload(field_id: str, name: str, *, number: bool = True) -> Json:
    custom = field_id.startswith("customfield_")
    schema: Json = {"type": "number" if number else "string"}
    if custom:
        schema |= {
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float",
            "customId": int(field_id.split("_")[1]),
        }
    return {
        "id": field_id,
        "key": field_id,
        "name": name,
        "custom": custom,
        "orderable": True,
        "navigable": True,
        "searchable": True,
        "clauseNames": [name.lower()],
        "schema": schema,
    }


def history(
    history_id: str,
    at: datetime,
    author: Json | None,
    changes: list[tuple[Json, Json]] | None = None,
    **other: Any,
) -> Json:
    """A changelog entry; `changes` are (from status, to status) pairs of `status_payload`s,
    `other` extra non-status items (field name → (from, to))."""
    items: list[Json] = []
    for old, new in changes or []:
        items.append(
            {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": old["id"],
                "fromString": old["name"],
                "to": new["id"],
                "toString": new["name"],
            }
        )
    for name, (old_value, new_value) in other.items():
        items.append(
            {
                "field": name,
                "fieldtype": "custom",
                "fieldId": name,
                "from": None,
                "fromString": old_value,
                "to": None,
                "toString": new_value,
            }
        )
    entry: Json = {"id": history_id, "created": jira_time(at), "items": items}
    if author is not None:
        entry["author"] = author
    return entry


class FakeJira:
    def __init__(
        self,
        *,
        email: str = "bot@example.com",
        token: str = "api-token",  # noqa: S107 - the fake's own test credential
        pat: str | None = None,
        cloud: bool = True,
    ) -> None:
        self.credentials = {base64.b64encode(f"{email}:{token}".encode()).decode()}
        self.pats = {pat} if pat else set()
        self.cloud = cloud
        self.time_zone = "UTC"
        self.projects: dict[str, Json] = {}
        self.deleted_projects: set[str] = set()
        self.issues: dict[str, FakeIssue] = {}
        self.statuses: list[Json] = []
        self.fields: list[Json] = [
            field_payload("summary", "Summary", number=False),
            field_payload("status", "Status", number=False),
        ]
        self.boards: list[Json] = []
        self.sprints: dict[int, list[Json]] = {}  # board id → sprints
        self.sprint_issues: dict[int, list[str]] = {}  # sprint id → issue ids
        self.filters: dict[str, Callable[[FakeIssue], bool]] = {}
        self.embedded_histories = 100
        self.requests: list[str] = []
        self.failures: list[Failure] = []

    # ---- test controls ----------------------------------------------------------------------------

    def add_project(self, project_id: str, key: str, name: str) -> Json:
        project = {
            "self": f"https://fake.atlassian.net/rest/api/3/project/{project_id}",
            "id": project_id,
            "key": key,
            "name": name,
            "projectTypeKey": "software",
            "simplified": False,
            "style": "classic",
        }
        self.projects[key] = project
        return project

    def delete_project(self, key: str) -> None:
        self.projects.pop(key, None)
        self.deleted_projects.add(key)

    def add_issue(
        self,
        issue_id: str,
        key: str,
        *,
        summary: str,
        issue_type: str = "Story",
        status: Json,
        created: datetime,
        updated: datetime,
        resolved: datetime | None = None,
        priority: str | None = "Medium",
        assignee: Json | None = None,
        labels: list[str] | None = None,
        components: list[str] | None = None,
        links: list[Json] | None = None,
        histories: list[Json] | None = None,
        **custom: Any,
    ) -> FakeIssue:
        project = self.projects[key.split("-")[0]]
        fields: Json = {
            "summary": summary,
            "issuetype": {"id": "10001", "name": issue_type, "subtask": False, "hierarchyLevel": 0},
            "status": status,
            "priority": {"id": "3", "name": priority} if priority else None,
            "assignee": assignee,
            "labels": labels or [],
            "components": [{"id": str(100 + i), "name": c} for i, c in enumerate(components or [])],
            "issuelinks": links or [],
            "created": jira_time(created),
            "updated": jira_time(updated),
            "resolutiondate": jira_time(resolved) if resolved else None,
            "project": {"id": project["id"], "key": project["key"], "name": project["name"]},
            **custom,
        }
        issue = FakeIssue(issue_id, key, project["key"], fields, histories or [])
        self.issues[issue_id] = issue
        return issue

    def add_board(self, board_id: int, name: str, project_key: str, kind: str = "scrum") -> Json:
        board = {
            "id": board_id,
            "self": f"https://fake.atlassian.net/rest/agile/1.0/board/{board_id}",
            "name": name,
            "type": kind,
            "location": {"projectKey": project_key, "projectId": int(self.projects[project_key]["id"])},
        }
        self.boards.append(board)
        self.sprints.setdefault(board_id, [])
        return board

    def add_sprint(
        self,
        board_id: int,
        sprint_id: int,
        name: str,
        state: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        complete: datetime | None = None,
        issues: list[str] | None = None,
        origin: int | None = None,
    ) -> Json:
        sprint: Json = {
            "id": sprint_id,
            "self": f"https://fake.atlassian.net/rest/agile/1.0/sprint/{sprint_id}",
            "state": state,
            "name": name,
            "originBoardId": origin if origin is not None else board_id,
            "goal": "",
        }
        if start:
            sprint["startDate"] = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if end:
            sprint["endDate"] = end.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if complete:
            sprint["completeDate"] = complete.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self.sprints[board_id].append(sprint)
        self.sprint_issues[sprint_id] = issues or []
        return sprint

    def fail(self, status: int, times: int = 1, path_contains: str = "", **headers: str) -> None:
        self.failures.append(Failure(status, times, path_contains, dict(headers)))

    def calls(self, fragment: str) -> list[str]:
        return [r for r in self.requests if fragment in r]

    # ---- ASGI app ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET"])])

    async def _dispatch(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        self.requests.append(f"{path}?{request.url.query}" if request.url.query else path)
        for failure in self.failures:
            if failure.times > 0 and failure.path_contains in path:
                failure.times -= 1
                return self._error(failure.status, "injected failure", failure.headers)
        if not self._authorized(request):
            return Response("", status_code=401, headers={"WWW-Authenticate": 'Basic realm="protected-area"'})
        for pattern, handler in self._routes():
            match = pattern.fullmatch(path)
            if match:
                return handler(query, *match.groups())
        return self._error(404, "Not found")

    def _routes(self) -> list[tuple[re.Pattern[str], Callable[..., Response]]]:
        api = r"/rest/api/[23]"
        return [
            (re.compile(r"/rest/api/2/serverInfo"), self._server_info),
            (re.compile(api + r"/myself"), self._myself),
            (re.compile(api + r"/field"), lambda q: JSONResponse(self.fields)),
            (re.compile(api + r"/status"), lambda q: JSONResponse(self.statuses)),
            (re.compile(r"/rest/api/3/project/search"), self._project_search),
            (re.compile(r"/rest/api/2/project"), lambda q: JSONResponse(list(self.projects.values()))),
            (re.compile(api + r"/project/([^/]+)"), self._project),
            (re.compile(r"/rest/api/3/search/jql"), self._search_cloud),
            (re.compile(r"/rest/api/2/search"), self._search_dc),
            (re.compile(r"/rest/api/3/issue/([^/]+)/changelog"), self._changelog),
            (re.compile(api + r"/issue/([^/]+)"), self._issue),
            (re.compile(r"/rest/agile/1\.0/board"), self._boards),
            (re.compile(r"/rest/agile/1\.0/board/(\d+)/sprint"), self._board_sprints),
            (re.compile(r"/rest/agile/1\.0/sprint/(\d+)/issue"), self._sprint_issues),
        ]

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            return value in self.credentials
        if scheme.lower() == "bearer":
            return value in self.pats
        return False

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        extra = dict(headers or {})
        if status == 429:
            extra.setdefault("Retry-After", "1")
            return Response("Rate limit exceeded.", status_code=429, headers=extra, media_type="text/plain")
        return JSONResponse({"errorMessages": [message], "errors": {}}, status_code=status, headers=extra)

    # ---- platform ---------------------------------------------------------------------------------

    def _server_info(self, query: Json) -> Response:
        return JSONResponse(
            {
                "baseUrl": "https://fake.atlassian.net",
                "version": "1001.0.0-SNAPSHOT" if self.cloud else "9.12.4",
                "deploymentType": "Cloud" if self.cloud else "DataCenter",
                "serverTitle": "Jira",
            }
        )

    def _myself(self, query: Json) -> Response:
        me = user_payload("bot-account", "Doraflow Bot", "bot@example.com")
        return JSONResponse({**me, "timeZone": self.time_zone})

    def _project_search(self, query: Json) -> Response:
        start, size = int(query.get("startAt", 0)), int(query.get("maxResults", 50))
        values = list(self.projects.values())
        page = values[start : start + size]
        return JSONResponse(
            {
                "self": "https://fake.atlassian.net/rest/api/3/project/search",
                "maxResults": size,
                "startAt": start,
                "total": len(values),
                "isLast": start + size >= len(values),
                "values": page,
            }
        )

    def _project(self, query: Json, ident: str) -> Response:
        for project in self.projects.values():
            if ident in (project["id"], project["key"]):
                return JSONResponse(project)
        return self._error(404, f"No project could be found with key '{ident}'.")

    # ---- search -----------------------------------------------------------------------------------

    def _matching(self, jql: str) -> list[FakeIssue] | Response:
        zone = ZoneInfo(self.time_zone)
        order = re.search(r"\s+ORDER BY\s+(\w+)\s*(ASC|DESC)?\s*$", jql, re.IGNORECASE)
        where = jql[: order.start()] if order else jql
        predicates: list[Callable[[FakeIssue], bool]] = []
        for clause in _split_and(where):
            if m := re.fullmatch(r'project\s*=\s*"?([^"]+)"?', clause):
                key = m.group(1)
                if key not in self.projects:
                    return self._error(400, f"The value '{key}' does not exist for the field 'project'.")
                predicates.append(_project_is(key))
            elif m := re.fullmatch(r'updated\s*(>=|<)\s*"([^"]+)"', clause):
                bound = datetime.strptime(m.group(2), "%Y/%m/%d %H:%M").replace(tzinfo=zone)
                predicates.append(_updated_is(m.group(1), bound))
            elif m := re.fullmatch(r"key in \(([^)]*)\)", clause):
                keys = {k.strip() for k in m.group(1).split(",")}
                predicates.append(_key_in(keys))
            elif clause.startswith("(") and clause.endswith(")") and clause[1:-1] in self.filters:
                predicates.append(self.filters[clause[1:-1]])
            else:
                return self._error(400, f"Error in the JQL Query: cannot parse {clause!r}.")
        found = [i for i in self.issues.values() if all(p(i) for p in predicates)]
        descending = not order or (order.group(2) or "ASC").upper() == "DESC"
        found.sort(key=lambda i: (_updated(i), i.id), reverse=descending)
        return found

    def _render(self, issue: FakeIssue, query: Json) -> Json:
        wanted = [f for f in (query.get("fields") or "").split(",") if f]
        fields = {k: v for k, v in issue.fields.items() if not wanted or k in wanted or "*all" in wanted}
        for name in wanted:
            fields.setdefault(name, None)
        rendered: Json = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": issue.id,
            "self": f"https://fake.atlassian.net/rest/api/3/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }
        if "changelog" in (query.get("expand") or ""):
            embedded = issue.histories[: self.embedded_histories]
            rendered["changelog"] = {
                "startAt": 0,
                "maxResults": len(embedded),
                "total": len(issue.histories),
                "histories": embedded,
            }
        return rendered

    def _search_cloud(self, query: Json) -> Response:
        found = self._matching(query.get("jql", ""))
        if isinstance(found, Response):
            return found
        size = min(int(query.get("maxResults", 50)), 5000)
        start = int(query["nextPageToken"].split("-")[1]) if query.get("nextPageToken") else 0
        page = found[start : start + size]
        body: Json = {"issues": [self._render(i, query) for i in page], "isLast": start + size >= len(found)}
        if start + size < len(found):
            body["nextPageToken"] = f"token-{start + size}"
        return JSONResponse(body)

    def _search_dc(self, query: Json) -> Response:
        found = self._matching(query.get("jql", ""))
        if isinstance(found, Response):
            return found
        size, start = int(query.get("maxResults", 50)), int(query.get("startAt", 0))
        return JSONResponse(
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(found),
                "issues": [self._render(i, query) for i in found[start : start + size]],
            }
        )

    def _find(self, ident: str) -> FakeIssue | None:
        return self.issues.get(ident) or next((i for i in self.issues.values() if i.key == ident), None)

    def _changelog(self, query: Json, ident: str) -> Response:
        issue = self._find(ident)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        start, size = int(query.get("startAt", 0)), min(int(query.get("maxResults", 100)), 100)
        values = issue.histories[start : start + size]
        last = start + size >= len(issue.histories)
        body: Json = {
            "self": f"https://fake.atlassian.net/rest/api/3/issue/{ident}/changelog?maxResults={size}&startAt={start}",
            "maxResults": size,
            "startAt": start,
            "total": len(issue.histories),
            "isLast": last,
            "values": values,
        }
        if not last:
            base = f"https://fake.atlassian.net/rest/api/3/issue/{ident}/changelog"
            body["nextPage"] = f"{base}?maxResults={size}&startAt={start + size}"
        return JSONResponse(body)

    def _issue(self, query: Json, ident: str) -> Response:
        issue = self._find(ident)
        if issue is None:
            return self._error(404, "Issue does not exist or you do not have permission to see it.")
        rendered = self._render(issue, query)
        if "changelog" in rendered:
            rendered["changelog"] = {
                "startAt": 0,
                "maxResults": len(issue.histories),
                "total": len(issue.histories),
                "histories": issue.histories,
            }
        return JSONResponse(rendered)

    # ---- agile ------------------------------------------------------------------------------------

    def _paged(self, values: list[Json], query: Json) -> Json:
        start, size = int(query.get("startAt", 0)), int(query.get("maxResults", 50))
        return {
            "maxResults": size,
            "startAt": start,
            "total": len(values),
            "isLast": start + size >= len(values),
            "values": values[start : start + size],
        }

    def _boards(self, query: Json) -> Response:
        key = query.get("projectKeyOrId")
        if key and key not in self.projects and key not in {p["id"] for p in self.projects.values()}:
            return self._error(400, f"No project could be found with key '{key}'.")
        boards = [b for b in self.boards if not key or b["location"]["projectKey"] == key]
        return JSONResponse(self._paged(boards, query))

    def _board_sprints(self, query: Json, board_id: str) -> Response:
        board = next((b for b in self.boards if b["id"] == int(board_id)), None)
        if board is None:
            return self._error(404, "Board does not exist or you do not have permission to see it.")
        if board["type"] != "scrum":
            return self._error(400, "The board does not support sprints")
        return JSONResponse(self._paged(self.sprints.get(int(board_id), []), query))

    def _sprint_issues(self, query: Json, sprint_id: str) -> Response:
        ids = self.sprint_issues.get(int(sprint_id))
        if ids is None:
            return self._error(404, "Sprint does not exist")
        start, size = int(query.get("startAt", 0)), int(query.get("maxResults", 50))
        issues = [self._render(self.issues[i], query) for i in ids[start : start + size]]
        return JSONResponse(
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(ids),
                "issues": issues,
            }
        )


def _updated(issue: FakeIssue) -> datetime:
    return datetime.strptime(issue.fields["updated"], "%Y-%m-%dT%H:%M:%S.000%z")


def _project_is(key: str) -> Callable[[FakeIssue], bool]:
    return lambda issue: issue.project == key


def _updated_is(operator: str, bound: datetime) -> Callable[[FakeIssue], bool]:
    if operator == ">=":
        return lambda issue: _updated(issue) >= bound
    return lambda issue: _updated(issue) < bound


def _key_in(keys: set[str]) -> Callable[[FakeIssue], bool]:
    return lambda issue: issue.key in keys


def _split_and(where: str) -> list[str]:
    """Top-level `AND`-joined clauses (a parenthesised filter stays one clause)."""
    clauses: list[str] = []
    depth = 0
    current = ""
    tokens = re.split(r"(\s+AND\s+|\(|\))", where)
    for token in tokens:
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        if depth == 0 and re.fullmatch(r"\s+AND\s+", token or ""):
            clauses.append(current.strip())
            current = ""
        else:
            current += token or ""
    if current.strip():
        clauses.append(current.strip())
    return clauses
