"""A fake GitLab REST v4 API, shaped like docs.gitlab.com/api: project, merge request, note, approval,
deployment, environment, pipeline, branch, tag, release, contributor and compare payloads; offset
pagination with `Link`, `x-next-page`, `x-total*` headers (no totals on commits, as on gitlab.com);
keyset pagination for `/projects?pagination=keyset` (`id_after`) and for tags ordered by name
(`page_token`, only a `Link` header); `RateLimit-*` headers; `401`/`404` bodies as GitLab sends them; and
injectable 429 and 5xx bursts.

Tests fill `FakeGitLab` with payload dicts (the `*_payload` builders below produce the documented
fields) and read `requests` to check which calls a client made.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]


@dataclass
class Failure:
    status: int
    times: int
    path_contains: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeProject:
    payload: Json
    commits: list[Json] = field(default_factory=list)  # default branch, newest first (git log order)
    merge_requests: list[Json] = field(default_factory=list)
    mr_commits: dict[int, list[Json]] = field(default_factory=dict)
    notes: dict[int, list[Json]] = field(default_factory=dict)
    approvals: dict[int, list[Json]] = field(default_factory=dict)
    environments: list[Json] = field(default_factory=list)
    deployments: list[Json] = field(default_factory=list)
    pipelines: list[Json] = field(default_factory=list)
    tags: list[Json] = field(default_factory=list)
    branches: list[Json] = field(default_factory=list)
    releases: list[Json] = field(default_factory=list)
    contributors: list[Json] = field(default_factory=list)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class FakeGitLab:
    def __init__(self, token: str) -> None:
        self.tokens = {token}
        self.projects: dict[int, FakeProject] = {}
        self.groups: dict[str, Json] = {}
        self.requests: list[str] = []
        self.failures: list[Failure] = []
        self.rate_limit_remaining = 1990
        self.commit_limit = 5000

    # ---- test controls ----------------------------------------------------------------------------

    def add_project(self, payload: Json) -> FakeProject:
        project = FakeProject(payload)
        self.projects[int(payload["id"])] = project
        namespace = payload["path_with_namespace"].rsplit("/", 1)[0]
        self.groups.setdefault(namespace, {"id": 1000 + len(self.groups), "full_path": namespace})
        return project

    def fail(self, status: int, times: int = 1, path_contains: str = "", **headers: str) -> None:
        self.failures.append(Failure(status, times, path_contains, dict(headers)))

    def calls(self, fragment: str) -> list[str]:
        return [r for r in self.requests if fragment in r]

    # ---- ASGI app ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/v4/{rest:path}", self._dispatch, methods=["GET"])])

    async def _dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
        path = raw_path.split("?", 1)[0][len("/api/v4") :]
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        self.requests.append(f"{path}?{request.url.query}" if request.url.query else path)
        for failure in self.failures:
            if failure.times > 0 and failure.path_contains in path:
                failure.times -= 1
                return self._error(failure.status, "injected", failure.headers)
        if not self._authorized(request):
            return self._error(401, "401 Unauthorized")
        for pattern, handler in self._routes():
            match = pattern.fullmatch(path)
            if match:
                return handler(request, query, *match.groups())
        return self._error(404, "404 Not Found")

    def _routes(self) -> Sequence[tuple[re.Pattern[str], Callable[..., Response]]]:
        project = r"/projects/([^/]+)"
        mr = project + r"/merge_requests/(\d+)"
        return [
            (re.compile(r"/projects"), self._list_projects),
            (re.compile(r"/groups/([^/]+)/projects"), self._group_projects),
            (re.compile(project), self._get_project),
            (re.compile(project + r"/repository/commits"), self._commits),
            (re.compile(project + r"/repository/compare"), self._compare),
            (re.compile(project + r"/repository/tags"), self._tags),
            (re.compile(project + r"/repository/branches"), self._branches),
            (re.compile(project + r"/repository/contributors"), self._contributors),
            (re.compile(project + r"/releases"), self._releases),
            (re.compile(project + r"/merge_requests"), self._merge_requests),
            (re.compile(mr + r"/commits"), self._mr_commits),
            (re.compile(mr + r"/notes"), self._mr_notes),
            (re.compile(mr + r"/approvals"), self._mr_approvals),
            (re.compile(project + r"/environments"), self._environments),
            (re.compile(project + r"/deployments"), self._deployments),
            (re.compile(project + r"/pipelines"), self._pipelines),
            (re.compile(project + r"/pipelines/(\d+)"), self._pipeline),
        ]

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("private-token")
        return token in self.tokens

    def _headers(self) -> dict[str, str]:
        self.rate_limit_remaining = max(self.rate_limit_remaining - 1, 100)
        reset = int(time.time()) + 60
        return {
            "RateLimit-Limit": "2000",
            "RateLimit-Observed": str(2000 - self.rate_limit_remaining),
            "RateLimit-Remaining": str(self.rate_limit_remaining),
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
        }

    def _error(self, status: int, message: str, extra: dict[str, str] | None = None) -> Response:
        headers = self._headers() | (extra or {})
        if status == 429:
            headers.setdefault("Retry-After", "1")
            headers["RateLimit-Remaining"] = "0"
            headers["RateLimit-Reset"] = str(int(time.time()) + int(headers["Retry-After"]))
            return Response("Retry later\n", status_code=429, headers=headers, media_type="text/plain")
        body = {"message": message} if status != 401 else {"message": "401 Unauthorized"}
        return JSONResponse(body, status_code=status, headers=headers)

    def _project(self, ident: str) -> FakeProject | None:
        ident = unquote(ident)
        if ident.isdigit():
            return self.projects.get(int(ident))
        return next((p for p in self.projects.values() if p.payload["path_with_namespace"] == ident), None)

    def _paginate(
        self, request: Request, query: dict[str, str], items: list[Json], totals: bool = True
    ) -> Response:
        per_page = min(int(query.get("per_page", 20)), 100)
        page = max(int(query.get("page", 1)), 1)
        pages = max(math.ceil(len(items) / per_page), 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
        base = f"{request.url.scheme}://{request.url.netloc}{raw_path.split('?', 1)[0]}"

        def link(number: int) -> str:
            return f"{base}?{urlencode({**query, 'page': number, 'per_page': per_page})}"

        links = []
        headers = self._headers() | {"x-page": str(page), "x-per-page": str(per_page)}
        headers["x-next-page"] = str(page + 1) if page < pages else ""
        headers["x-prev-page"] = str(page - 1) if page > 1 else ""
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        if totals:
            links.append(f'<{link(pages)}>; rel="last"')
            headers["x-total"] = str(len(items))
            headers["x-total-pages"] = str(pages)
        headers["Link"] = ", ".join(links)
        return JSONResponse(chunk, headers=headers)

    # ---- handlers ---------------------------------------------------------------------------------

    def _list_projects(self, request: Request, query: dict[str, str]) -> Response:
        """Keyset pagination (`pagination=keyset&order_by=id`): the next link carries `id_after`."""
        items = sorted((p.payload for p in self.projects.values()), key=lambda p: p["id"])
        if query.get("pagination") != "keyset":
            return self._paginate(request, query, items)
        per_page = min(int(query.get("per_page", 20)), 100)
        after = int(query.get("id_after", 0))
        chunk = [p for p in items if p["id"] > after][:per_page]
        headers = self._headers()
        if chunk and any(p["id"] > chunk[-1]["id"] for p in items):
            next_query = {k: v for k, v in query.items() if k != "id_after"} | {"id_after": chunk[-1]["id"]}
            base = f"{request.url.scheme}://{request.url.netloc}/api/v4/projects"
            headers["Link"] = f'<{base}?{urlencode(next_query)}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def _group_projects(self, request: Request, query: dict[str, str], group: str) -> Response:
        path = unquote(group)
        if path not in self.groups:
            return self._error(404, "404 Group Not Found")
        items = [
            p.payload
            for p in self.projects.values()
            if p.payload["path_with_namespace"].startswith(path + "/")
            and (
                query.get("include_subgroups") == "true"
                or p.payload["path_with_namespace"].count("/") == path.count("/") + 1
            )
        ]
        return self._paginate(request, query, sorted(items, key=lambda p: p["id"]))

    def _get_project(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._project(ident)
        if project is None:
            return self._error(404, "404 Project Not Found")
        return JSONResponse(project.payload, headers=self._headers())

    def _with_project(self, ident: str) -> FakeProject | Response:
        project = self._project(ident)
        return project if project is not None else self._error(404, "404 Project Not Found")

    def _commits(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        commits = project.commits
        ref = str(query.get("ref_name", project.payload["default_branch"]))
        if ".." in ref:
            base, _ = ref.split("..", 1)
            index = next((i for i, c in enumerate(commits) if c["id"] == base), None)
            if index is None:
                return self._error(404, "404 Commit Not Found")
            commits = commits[:index]
        elif ref != project.payload["default_branch"]:
            index = next((i for i, c in enumerate(commits) if c["id"] == ref), None)
            if index is None:
                return self._error(404, "404 Reference Not Found")
            commits = commits[index:]
        since, until = _time(query.get("since")), _time(query.get("until"))
        selected = [
            c
            for c in commits
            if (since is None or _time(c["committed_date"]) >= since)  # type: ignore[operator]
            and (until is None or _time(c["committed_date"]) <= until)  # type: ignore[operator]
        ]
        if query.get("with_stats") != "true":
            selected = [{k: v for k, v in c.items() if k != "stats"} for c in selected]
        return self._paginate(request, query, selected, totals=False)

    def _compare(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        ids = [c["id"] for c in project.commits]
        if query.get("from") not in ids or query.get("to") not in ids:
            return self._error(404, "404 Ref Not Found")
        start, end = ids.index(query["to"]), ids.index(query["from"])
        between = list(reversed(project.commits[start:end])) if start < end else []
        short = [
            {
                k: c[k]
                for k in ("id", "short_id", "title", "author_name", "author_email", "created_at", "message")
            }
            for c in between
        ]
        body = {
            "commit": short[-1] if short else None,
            "commits": short,
            "diffs": [],
            "compare_timeout": False,
            "compare_same_ref": query["from"] == query["to"],
            "web_url": f"{project.payload['web_url']}/-/compare/{query['from']}...{query['to']}",
        }
        return JSONResponse(body, headers=self._headers())

    def _tags(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        if query.get("order_by") == "name":
            tags = sorted(project.tags, key=lambda t: t["name"], reverse=query.get("sort", "desc") == "desc")
            if query.get("pagination") == "keyset":
                return self._keyset_by_name(request, query, tags)
            return self._paginate(request, query, tags)
        tags = sorted(
            project.tags,
            key=lambda t: t["commit"]["committed_date"],
            reverse=query.get("sort", "desc") == "desc",
        )
        return self._paginate(request, query, tags)

    def _keyset_by_name(self, request: Request, query: dict[str, str], items: list[Json]) -> Response:
        """Gitaly keyset pages: the items after `page_token` (a name), and a `Link` to the next page
        only when this one is full; no `x-page`/`x-next-page`/totals."""
        per_page = min(int(query.get("per_page", 20)), 100)
        token = query.get("page_token")
        start = next((i + 1 for i, item in enumerate(items) if item["name"] == token), 0) if token else 0
        chunk = items[start : start + per_page]
        headers = self._headers()
        if len(chunk) == per_page:
            raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
            base = f"{request.url.scheme}://{request.url.netloc}{raw_path.split('?', 1)[0]}"
            next_query = {k: v for k, v in query.items() if k != "page_token"} | {
                "page_token": chunk[-1]["name"]
            }
            headers["Link"] = f'<{base}?{urlencode(next_query)}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def _branches(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        return self._paginate(request, query, sorted(project.branches, key=lambda b: b["name"]))

    def _contributors(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        key = query.get("order_by", "commits")
        items = sorted(project.contributors, key=lambda c: c[key], reverse=query.get("sort", "asc") == "desc")
        return self._paginate(request, query, items)

    def _releases(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        key = query.get("order_by", "released_at")
        items = sorted(project.releases, key=lambda r: r[key], reverse=query.get("sort", "desc") == "desc")
        return self._paginate(request, query, items)

    def _merge_requests(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        items = _filter_updated(project.merge_requests, query, inclusive=True)
        state = query.get("state", "all")
        if state != "all":
            items = [m for m in items if m["state"] == state]
        key = query.get("order_by", "created_at")
        items = sorted(items, key=lambda m: m[key], reverse=query.get("sort", "desc") == "desc")
        return self._paginate(request, query, items)

    def _mr(self, ident: str, iid: str) -> tuple[FakeProject, int] | Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        if not any(m["iid"] == int(iid) for m in project.merge_requests):
            return self._error(404, "404 Not found")
        return project, int(iid)

    def _mr_commits(self, request: Request, query: dict[str, str], ident: str, iid: str) -> Response:
        found = self._mr(ident, iid)
        if isinstance(found, Response):
            return found
        project, number = found
        return self._paginate(request, query, project.mr_commits.get(number, []))

    def _mr_notes(self, request: Request, query: dict[str, str], ident: str, iid: str) -> Response:
        found = self._mr(ident, iid)
        if isinstance(found, Response):
            return found
        project, number = found
        notes = sorted(
            project.notes.get(number, []),
            key=lambda n: n[query.get("order_by", "created_at")],
            reverse=query.get("sort", "desc") == "desc",
        )
        return self._paginate(request, query, notes)

    def _mr_approvals(self, request: Request, query: dict[str, str], ident: str, iid: str) -> Response:
        found = self._mr(ident, iid)
        if isinstance(found, Response):
            return found
        project, number = found
        mr = next(m for m in project.merge_requests if m["iid"] == number)
        approved_by = project.approvals.get(number, [])
        body = {
            "id": mr["id"],
            "iid": number,
            "project_id": mr["project_id"],
            "title": mr["title"],
            "description": mr.get("description", ""),
            "state": mr["state"],
            "created_at": mr["created_at"],
            "updated_at": mr["updated_at"],
            "merge_status": "can_be_merged",
            "approved": bool(approved_by),
            "approvals_required": 1,
            "approvals_left": 0 if approved_by else 1,
            "approved_by": approved_by,
        }
        return JSONResponse(body, headers=self._headers())

    def _environments(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        return self._paginate(request, query, project.environments)

    def _deployments(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        items = _filter_updated(project.deployments, query, inclusive=False)
        if "environment" in query:
            items = [d for d in items if d["environment"]["name"] == query["environment"]]
        if "status" in query:
            items = [d for d in items if d["status"] == query["status"]]
        key = query.get("order_by", "id")
        items = sorted(items, key=lambda d: d[key], reverse=query.get("sort", "asc") == "desc")
        return self._paginate(request, query, items)

    def _pipelines(self, request: Request, query: dict[str, str], ident: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        items = _filter_updated(project.pipelines, query, inclusive=False)
        key = query.get("order_by", "id")
        items = sorted(items, key=lambda p: p[key], reverse=query.get("sort", "desc") == "desc")
        listed = [{k: p[k] for k in PIPELINE_LIST_FIELDS} for p in items]
        return self._paginate(request, query, listed)

    def _pipeline(self, request: Request, query: dict[str, str], ident: str, pipeline_id: str) -> Response:
        project = self._with_project(ident)
        if isinstance(project, Response):
            return project
        pipeline = next((p for p in project.pipelines if p["id"] == int(pipeline_id)), None)
        if pipeline is None:
            return self._error(404, "404 Not found")
        return JSONResponse(pipeline, headers=self._headers())


PIPELINE_LIST_FIELDS = (
    "id",
    "iid",
    "project_id",
    "status",
    "source",
    "ref",
    "sha",
    "name",
    "web_url",
    "created_at",
    "updated_at",
)


def _filter_updated(items: list[Json], query: dict[str, str], *, inclusive: bool) -> list[Json]:
    after, before = _time(query.get("updated_after")), _time(query.get("updated_before"))
    result = []
    for item in items:
        updated = _time(item["updated_at"])
        assert updated is not None
        if after is not None and (updated < after if inclusive else updated <= after):
            continue
        if before is not None and (updated > before if inclusive else updated >= before):
            continue
        result.append(item)
    return result


# ---- payload builders (documented field sets) -----------------------------------------------------


def user_payload(user_id: int, username: str, name: str) -> Json:
    return {
        "id": user_id,
        "username": username,
        "name": name,
        "state": "active",
        "avatar_url": f"https://secure.gravatar.com/avatar/{user_id}?s=80&d=identicon",
        "web_url": f"https://gitlab.example.com/{username}",
    }


def project_payload(project_id: int, path: str, default_branch: str = "main") -> Json:
    namespace, name = path.rsplit("/", 1)
    return {
        "id": project_id,
        "description": None,
        "name": name,
        "name_with_namespace": path.replace("/", " / "),
        "path": name,
        "path_with_namespace": path,
        "created_at": "2024-01-02T10:00:00.000Z",
        "default_branch": default_branch,
        "ssh_url_to_repo": f"git@gitlab.example.com:{path}.git",
        "http_url_to_repo": f"https://gitlab.example.com/{path}.git",
        "web_url": f"https://gitlab.example.com/{path}",
        "archived": False,
        "visibility": "private",
        "namespace": {"id": 7, "name": namespace, "path": namespace, "kind": "group", "full_path": namespace},
        "last_activity_at": "2026-03-20T10:00:00.000Z",
    }


def commit_payload(
    sha: str,
    title: str,
    *,
    at: str,
    author: tuple[str, str] = ("Ada Lovelace", "ada@example.com"),
    parents: Sequence[str] = (),
    message: str | None = None,
    additions: int = 1,
    deletions: int = 0,
    committed: str | None = None,
) -> Json:
    return {
        "id": sha,
        "short_id": sha[:11],
        "title": title,
        "author_name": author[0],
        "author_email": author[1],
        "authored_date": at,
        "committer_name": author[0],
        "committer_email": author[1],
        "committed_date": committed or at,
        "created_at": committed or at,
        "message": message or f"{title}\n",
        "parent_ids": list(parents),
        "web_url": f"https://gitlab.example.com/acme/api/-/commit/{sha}",
        "trailers": {},
        "extended_trailers": {},
        "stats": {"additions": additions, "deletions": deletions, "total": additions + deletions},
    }


def merge_request_payload(
    project_id: int,
    iid: int,
    title: str,
    *,
    author: Json,
    state: str,
    created_at: str,
    updated_at: str,
    merged_at: str | None = None,
    closed_at: str | None = None,
    sha: str = "0" * 40,
    merge_commit_sha: str | None = None,
    squash_commit_sha: str | None = None,
    squash: bool = False,
    source_branch: str = "feature",
    user_notes_count: int = 0,
) -> Json:
    return {
        "id": project_id * 1000 + iid,
        "iid": iid,
        "project_id": project_id,
        "title": title,
        "description": "",
        "state": state,
        "created_at": created_at,
        "updated_at": updated_at,
        "merged_by": author if merged_at else None,
        "merge_user": author if merged_at else None,
        "merged_at": merged_at,
        "closed_by": None,
        "closed_at": closed_at,
        "target_branch": "main",
        "source_branch": source_branch,
        "user_notes_count": user_notes_count,
        "upvotes": 0,
        "downvotes": 0,
        "author": author,
        "assignees": [],
        "assignee": None,
        "reviewers": [],
        "source_project_id": project_id,
        "target_project_id": project_id,
        "labels": [],
        "draft": False,
        "work_in_progress": False,
        "milestone": None,
        "merge_when_pipeline_succeeds": False,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "sha": sha,
        "merge_commit_sha": merge_commit_sha,
        "squash_commit_sha": squash_commit_sha,
        "discussion_locked": None,
        "should_remove_source_branch": True,
        "force_remove_source_branch": True,
        "reference": f"!{iid}",
        "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"acme/api!{iid}"},
        "web_url": f"https://gitlab.example.com/acme/api/-/merge_requests/{iid}",
        "time_stats": {
            "time_estimate": 0,
            "total_time_spent": 0,
            "human_time_estimate": None,
            "human_total_time_spent": None,
        },
        "squash": squash,
        "squash_on_merge": squash,
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_conflicts": False,
        "blocking_discussions_resolved": True,
    }


def note_payload(note_id: int, iid: int, author: Json, body: str, at: str, *, system: bool = False) -> Json:
    return {
        "id": note_id,
        "type": None if system else "DiffNote",
        "body": body,
        "attachment": None,
        "author": author,
        "created_at": at,
        "updated_at": at,
        "system": system,
        "noteable_id": 9000 + iid,
        "noteable_type": "MergeRequest",
        "project_id": 1,
        "noteable_iid": iid,
        "resolvable": not system,
        "confidential": False,
        "internal": False,
        "imported": False,
        "imported_from": "none",
    }


def environment_payload(env_id: int, name: str, tier: str = "other") -> Json:
    return {
        "id": env_id,
        "name": name,
        "slug": name.lower().replace("/", "-"),
        "external_url": f"https://{name}.example.com",
        "state": "available",
        "tier": tier,
        "created_at": "2024-01-02T10:00:00.000Z",
        "updated_at": "2026-03-20T10:00:00.000Z",
    }


def deployment_payload(
    deployment_id: int,
    environment: Json,
    *,
    sha: str,
    status: str,
    created_at: str,
    updated_at: str,
    user: Json,
    commit_title: str = "Deploy",
    job_name: str = "deploy",
    ref: str = "main",
) -> Json:
    return {
        "id": deployment_id,
        "iid": deployment_id,
        "ref": ref,
        "sha": sha,
        "created_at": created_at,
        "updated_at": updated_at,
        "status": status,
        "user": user,
        "environment": {k: environment[k] for k in ("id", "name", "external_url")},
        "deployable": {
            "id": 600 + deployment_id,
            "status": status,
            "stage": "deploy",
            "name": job_name,
            "ref": ref,
            "tag": False,
            "coverage": None,
            "created_at": created_at,
            "started_at": created_at,
            "finished_at": updated_at if status in ("success", "failed", "canceled") else None,
            "project": {"ci_job_token_scope_enabled": False},
            "user": user,
            "commit": {
                "id": sha,
                "short_id": sha[:8],
                "title": commit_title,
                "author_name": user["name"],
                "author_email": f"{user['username']}@example.com",
                "created_at": created_at,
                "message": commit_title,
            },
            "pipeline": {
                "id": 300 + deployment_id,
                "sha": sha,
                "ref": ref,
                "status": status,
                "created_at": created_at,
                "updated_at": updated_at,
                "web_url": f"https://gitlab.example.com/acme/api/-/pipelines/{300 + deployment_id}",
            },
            "runner": None,
        },
    }


def pipeline_payload(
    pipeline_id: int,
    *,
    sha: str,
    name: str | None,
    status: str,
    created_at: str,
    started_at: str,
    finished_at: str | None,
    user: Json,
    ref: str = "main",
) -> Json:
    return {
        "id": pipeline_id,
        "iid": pipeline_id - 100,
        "project_id": 1,
        "name": name,
        "sha": sha,
        "ref": ref,
        "status": status,
        "source": "push",
        "created_at": created_at,
        "updated_at": finished_at or started_at,
        "web_url": f"https://gitlab.example.com/acme/api/-/pipelines/{pipeline_id}",
        "before_sha": "0" * 40,
        "tag": False,
        "yaml_errors": None,
        "user": user,
        "started_at": started_at,
        "finished_at": finished_at,
        "committed_at": None,
        "duration": 60,
        "queued_duration": 2,
        "coverage": None,
        "detailed_status": {"icon": f"status_{status}", "text": status, "label": status, "group": status},
    }


def tag_payload(
    name: str, commit: Json, *, created_at: str | None = None, message: str | None = None
) -> Json:
    return {
        "name": name,
        "message": message,
        "target": commit["id"] if created_at is None else "f" * 40,
        "commit": {
            k: commit[k]
            for k in (
                "id",
                "short_id",
                "title",
                "created_at",
                "parent_ids",
                "message",
                "author_name",
                "author_email",
                "authored_date",
                "committer_name",
                "committer_email",
                "committed_date",
            )
        },
        "release": None,
        "protected": False,
        "created_at": created_at,
    }


def branch_payload(
    name: str, commit: Json, *, default: bool = False, protected: bool = False, path: str = "acme/api"
) -> Json:
    return {
        "name": name,
        "merged": False,
        "protected": protected,
        "default": default,
        "developers_can_push": False,
        "developers_can_merge": False,
        "can_push": True,
        "web_url": f"https://gitlab.example.com/{path}/-/tree/{name}",
        "commit": {
            k: commit[k]
            for k in (
                "id",
                "short_id",
                "created_at",
                "parent_ids",
                "title",
                "message",
                "author_name",
                "author_email",
                "authored_date",
                "committer_name",
                "committer_email",
                "committed_date",
                "trailers",
                "extended_trailers",
                "web_url",
            )
        },
    }


def release_payload(
    tag_name: str,
    commit: Json,
    *,
    name: str,
    created_at: str,
    released_at: str,
    author: Json,
    upcoming: bool = False,
    path: str = "acme/api",
) -> Json:
    web = f"https://gitlab.example.com/{path}"
    return {
        "tag_name": tag_name,
        "description": f"## CHANGELOG\n\n- {name}",
        "name": name,
        "created_at": created_at,
        "released_at": released_at,
        "upcoming_release": upcoming,
        "author": author,
        "commit": {k: commit[k] for k in ("id", "short_id", "title", "created_at", "parent_ids", "message")},
        "milestones": [],
        "commit_path": f"/{path}/-/commit/{commit['id']}",
        "tag_path": f"/{path}/-/tags/{tag_name}",
        "assets": {
            "count": 1,
            "sources": [{"format": "zip", "url": f"{web}/-/archive/{tag_name}/{tag_name}.zip"}],
            "links": [],
        },
        "evidences": [],
        "_links": {
            **{
                f"{state}_{kind}_url": f"{web}/-/{kind}?release_tag={tag_name}&scope=all&state={state}"
                for state, kind in (
                    ("closed", "issues"),
                    ("closed", "merge_requests"),
                    ("merged", "merge_requests"),
                    ("opened", "issues"),
                    ("opened", "merge_requests"),
                )
            },
            "edit_url": f"{web}/-/releases/{tag_name}/edit",
            "self": f"{web}/-/releases/{tag_name}",
        },
    }


def contributor_payload(name: str, email: str, commits: int) -> Json:
    """`additions`/`deletions` are still sent but always 0 since GitLab 13.4 (deprecated)."""
    return {"name": name, "email": email, "commits": commits, "additions": 0, "deletions": 0}
