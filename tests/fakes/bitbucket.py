"""A fake Bitbucket Cloud REST 2.0 API, shaped like developer.atlassian.com/cloud/bitbucket/rest:
repository, commit, diffstat, pull request (participants and `merge_commit.date` only when asked for
with `fields`), activity, environment, deployment, pipeline and tag payloads; body pagination
(`values`, `pagelen`, `size`, `page`, `next`; commits and activity without `size`); BBQL
`updated_on >=/<=` filters; Basic (user:app password) and Bearer auth; `401`/`404` error bodies; and
injectable 429 (with `Retry-After`) and 5xx bursts.

Like the real pipelines endpoint, the `next` link of `/pipelines/` drops the `sort` and `fields`
the first page was asked with (reported on the Atlassian community forum), so a client that follows
`next` blindly reads page 2 in the default, ascending order.

Like the real API, a pull request's `merge_commit.hash` is a 12-character short hash (tests hand the
builder the full one); `/commit/{revision}` answers for a full or abbreviated hash. Branches and tags
are listed from `/refs/branches` and `/refs/tags`, sorted by `sort=name` when asked.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlencode

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
class FakeRepository:
    payload: Json
    commits: list[Json] = field(default_factory=list)  # main branch, newest first (git log order)
    diffstats: dict[str, list[Json]] = field(default_factory=dict)
    pull_requests: list[Json] = field(default_factory=list)
    activity: dict[int, list[Json]] = field(default_factory=dict)  # newest first
    pr_commits: dict[int, list[Json]] = field(default_factory=dict)
    environments: list[Json] = field(default_factory=list)
    deployments: list[Json] = field(default_factory=list)
    pipelines: list[Json] = field(default_factory=list)
    tags: list[Json] = field(default_factory=list)
    branches: list[Json] = field(default_factory=list)  # `/refs/branches` listing


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


BBQL_UPDATED = re.compile(r"updated_on\s*(>=|<=|>|<)\s*\"?([0-9T:.+\-Z]+)\"?")


class FakeBitbucket:
    def __init__(self, basic: str, bearer: str | None = None) -> None:
        self.basic = basic
        self.bearer = bearer
        self.repositories: dict[str, FakeRepository] = {}
        self.requests: list[str] = []
        self.failures: list[Failure] = []

    # ---- test controls ----------------------------------------------------------------------------

    def add_repository(self, payload: Json) -> FakeRepository:
        repository = FakeRepository(payload)
        self.repositories[payload["full_name"]] = repository
        return repository

    def fail(self, status: int, times: int = 1, path_contains: str = "", **headers: str) -> None:
        self.failures.append(Failure(status, times, path_contains, dict(headers)))

    def calls(self, fragment: str) -> list[str]:
        return [r for r in self.requests if fragment in r]

    # ---- ASGI app ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/2.0/{rest:path}", self._dispatch, methods=["GET"])])

    async def _dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode() or request.url.path
        path = unquote(raw_path.split("?", 1)[0][len("/2.0") :])
        query = list(request.query_params.multi_items())
        self.requests.append(f"{path}?{request.url.query}" if request.url.query else path)
        for failure in self.failures:
            if failure.times > 0 and failure.path_contains in path:
                failure.times -= 1
                return self._error(failure.status, "injected", failure.headers)
        if not self._authorized(request):
            return self._error(401, "Invalid credentials")
        for pattern, handler in self._routes():
            match = pattern.fullmatch(path)
            if match:
                return handler(request, query, *match.groups())
        return self._error(404, "Resource not found")

    def _routes(self) -> Sequence[tuple[re.Pattern[str], Callable[..., Response]]]:
        repo = r"/repositories/([^/]+/[^/]+)"
        pr = repo + r"/pullrequests/(\d+)"
        return [
            (re.compile(r"/repositories"), self._all_repositories),
            (re.compile(r"/repositories/([^/]+)"), self._workspace_repositories),
            (re.compile(repo), self._repository),
            (re.compile(repo + r"/refs/branches"), self._branches),
            (re.compile(repo + r"/refs/branches/(.+)"), self._branch),
            (re.compile(repo + r"/commit/([^/]+)"), self._commit),
            (re.compile(repo + r"/refs/tags"), self._tags),
            (re.compile(repo + r"/commits/([^/]+)"), self._commits),
            (re.compile(repo + r"/diffstat/([0-9a-f]+)"), self._diffstat),
            (re.compile(repo + r"/pullrequests"), self._pull_requests),
            (re.compile(pr + r"/activity"), self._activity),
            (re.compile(pr + r"/commits"), self._pr_commits),
            (re.compile(repo + r"/environments/?"), self._environments),
            (re.compile(repo + r"/deployments/?"), self._deployments),
            (re.compile(repo + r"/pipelines/?"), self._pipelines),
        ]

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            return base64.b64decode(header[6:]).decode() == self.basic
        return self.bearer is not None and header == f"Bearer {self.bearer}"

    def _headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": "1000", "X-RateLimit-Resource": "api", "X-RateLimit-NearLimit": "false"}

    def _error(self, status: int, message: str, extra: dict[str, str] | None = None) -> Response:
        headers = self._headers() | (extra or {})
        if status == 429:
            headers.setdefault("Retry-After", "1")
            headers["X-RateLimit-NearLimit"] = "true"
            return Response(
                "Rate limit for this resource has been exceeded", status_code=429, headers=headers
            )
        return JSONResponse(
            {"type": "error", "error": {"message": message}}, status_code=status, headers=headers
        )

    def _page(
        self,
        request: Request,
        query: list[tuple[str, str]],
        items: list[Json],
        *,
        sized: bool = True,
        drop: Sequence[str] = (),
    ) -> Response:
        params = dict(query)
        pagelen = min(int(params.get("pagelen", 10)), 100)
        page = max(int(params.get("page", 1)), 1)
        chunk = items[(page - 1) * pagelen : page * pagelen]
        body: Json = {"pagelen": pagelen, "values": chunk}
        if sized:
            body |= {"size": len(items), "page": page}
        if page * pagelen < len(items):
            kept = [(k, v) for k, v in query if k != "page" and k not in drop] + [("page", str(page + 1))]
            raw_path = request.scope.get("raw_path", b"").decode().split("?", 1)[0] or request.url.path
            body["next"] = f"{request.url.scheme}://{request.url.netloc}{raw_path}?{urlencode(kept)}"
        return JSONResponse(body, headers=self._headers())

    def _repo(self, full_name: str) -> FakeRepository | Response:
        repository = self.repositories.get(full_name)
        if repository is None:
            return self._error(404, f"Repository {full_name} not found")
        return repository

    # ---- handlers ---------------------------------------------------------------------------------

    def _all_repositories(self, request: Request, query: list[tuple[str, str]]) -> Response:
        return self._page(request, query, [r.payload for r in self.repositories.values()])

    def _workspace_repositories(
        self, request: Request, query: list[tuple[str, str]], workspace: str
    ) -> Response:
        items = [r.payload for name, r in self.repositories.items() if name.startswith(workspace + "/")]
        if not items:
            return self._error(404, f"No workspace with identifier '{workspace}'.")
        return self._page(request, query, items)

    def _repository(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        return repository if isinstance(repository, Response) else JSONResponse(repository.payload)

    def _branch(self, request: Request, query: list[tuple[str, str]], full_name: str, name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        if name != repository.payload["mainbranch"]["name"] or not repository.commits:
            return self._error(404, f"Branch {name} not found")
        return JSONResponse(
            {
                "type": "branch",
                "name": name,
                "target": repository.commits[0],
                "merge_strategies": ["merge_commit", "squash"],
                "default_merge_strategy": "merge_commit",
                "links": {},
            },
            headers=self._headers(),
        )

    def _branches(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        branches = list(repository.branches)
        if dict(query).get("sort") == "name":
            branches.sort(key=lambda b: b["name"])
        return self._page(request, query, branches)

    def _commit(
        self, request: Request, query: list[tuple[str, str]], full_name: str, revision: str
    ) -> Response:
        """One commit by full or abbreviated hash, from the main branch or any pull request's commits."""
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        known = [*repository.commits, *(c for commits in repository.pr_commits.values() for c in commits)]
        found = {c["hash"]: c for c in known if c["hash"].startswith(revision.lower())}
        if len(found) != 1:
            return self._error(404, f"Commit {revision} not found")
        return JSONResponse(next(iter(found.values())), headers=self._headers())

    def _commits(
        self, request: Request, query: list[tuple[str, str]], full_name: str, revision: str
    ) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        hashes = [c["hash"] for c in repository.commits]
        if revision == repository.payload["mainbranch"]["name"]:
            start = 0
        elif revision in hashes:
            start = hashes.index(revision)
        else:
            return self._error(404, f"Commit {revision} not found")
        end = len(hashes)
        for key, value in query:
            if key == "exclude":
                if value not in hashes:
                    return self._error(404, f"Commit {value} not found")
                end = min(end, hashes.index(value))
        return self._page(request, query, repository.commits[start:end] if start < end else [], sized=False)

    def _diffstat(self, request: Request, query: list[tuple[str, str]], full_name: str, sha: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        if sha not in repository.diffstats:
            return self._error(404, f"Commit {sha} not found")
        return self._page(request, query, repository.diffstats[sha])

    def _tags(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        params = dict(query)
        if params.get("sort") == "name":
            return self._page(request, query, sorted(repository.tags, key=lambda t: t["name"]))
        descending = params.get("sort") == "-target.date"
        tags = sorted(repository.tags, key=lambda t: t["target"]["date"], reverse=descending)
        return self._page(request, query, tags)

    def _pull_requests(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        states = [v for k, v in query if k == "state"] or ["OPEN"]
        params = dict(query)
        items = [p for p in repository.pull_requests if p["state"] in states]
        for operator, value in BBQL_UPDATED.findall(params.get("q", "")):
            bound = _time(value)
            assert bound is not None
            items = [p for p in items if _compare(_time(p["updated_on"]), operator, bound)]
        sort = params.get("sort", "id")
        items = sorted(items, key=lambda p: p[sort.lstrip("-")], reverse=sort.startswith("-"))
        fields = params.get("fields", "")
        shaped = []
        for pull in items:
            shown = {k: v for k, v in pull.items() if k not in ("participants", "reviewers")}
            if "+values.participants" in fields:
                shown["participants"] = pull.get("participants", [])
            if pull.get("merge_commit") and "+values.merge_commit.date" not in fields:
                shown["merge_commit"] = {k: v for k, v in pull["merge_commit"].items() if k != "date"}
            shaped.append(shown)
        return self._page(request, query, shaped)

    def _activity(
        self, request: Request, query: list[tuple[str, str]], full_name: str, number: str
    ) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        return self._page(request, query, repository.activity.get(int(number), []), sized=False)

    def _pr_commits(
        self, request: Request, query: list[tuple[str, str]], full_name: str, number: str
    ) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        return self._page(request, query, repository.pr_commits.get(int(number), []), sized=False)

    def _environments(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        return self._page(request, query, repository.environments)

    def _deployments(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        descending = dict(query).get("sort") == "-state.started_on"
        items = sorted(repository.deployments, key=lambda d: d["state"]["started_on"], reverse=descending)
        return self._page(request, query, items)

    def _pipelines(self, request: Request, query: list[tuple[str, str]], full_name: str) -> Response:
        repository = self._repo(full_name)
        if isinstance(repository, Response):
            return repository
        descending = dict(query).get("sort") == "-created_on"
        items = sorted(repository.pipelines, key=lambda p: p["created_on"], reverse=descending)
        return self._page(request, query, items, drop=("sort", "fields"))


def _compare(value: datetime | None, operator: str, bound: datetime) -> bool:
    assert value is not None
    return {">=": value >= bound, "<=": value <= bound, ">": value > bound, "<": value < bound}[operator]


# ---- payload builders (documented field sets) -----------------------------------------------------


def account_payload(uuid: str, nickname: str, display_name: str) -> Json:
    return {
        "type": "user",
        "uuid": uuid,
        "account_id": f"5b{uuid.strip('{}')[:10]}",
        "nickname": nickname,
        "display_name": display_name,
        "links": {
            "self": {"href": f"https://api.bitbucket.org/2.0/users/{uuid}"},
            "avatar": {"href": f"https://avatar-management.example/{nickname}"},
            "html": {"href": f"https://bitbucket.org/{uuid}/"},
        },
    }


def repository_payload(uuid: str, full_name: str, mainbranch: str = "main") -> Json:
    workspace, slug = full_name.split("/")
    return {
        "type": "repository",
        "uuid": uuid,
        "full_name": full_name,
        "name": slug,
        "slug": slug,
        "is_private": True,
        "scm": "git",
        "mainbranch": {"type": "branch", "name": mainbranch},
        "workspace": {"type": "workspace", "slug": workspace, "name": workspace.title(), "uuid": "{w-1}"},
        "project": {"type": "project", "key": "CORE", "name": "Core"},
        "created_on": "2024-01-02T10:00:00.000000+00:00",
        "updated_on": "2026-03-20T10:00:00.000000+00:00",
        "links": {
            "self": {"href": f"https://api.bitbucket.org/2.0/repositories/{full_name}"},
            "html": {"href": f"https://bitbucket.org/{full_name}"},
        },
    }


def commit_payload(
    sha: str,
    message: str,
    *,
    at: str,
    author: Json,
    email: str,
    parents: Sequence[str] = (),
    repository: str = "acme/api",
) -> Json:
    return {
        "type": "commit",
        "hash": sha,
        "date": at,
        "author": {"type": "author", "raw": f"{author['display_name']} <{email}>", "user": author},
        "message": message,
        "summary": {"type": "rendered", "raw": message, "markup": "markdown", "html": f"<p>{message}</p>"},
        "parents": [
            {
                "type": "commit",
                "hash": p,
                "links": {
                    "self": {"href": f"https://api.bitbucket.org/2.0/repositories/{repository}/commit/{p}"}
                },
            }
            for p in parents
        ],
        "links": {
            "self": {"href": f"https://api.bitbucket.org/2.0/repositories/{repository}/commit/{sha}"},
            "html": {"href": f"https://bitbucket.org/{repository}/commits/{sha}"},
            "diff": {"href": f"https://api.bitbucket.org/2.0/repositories/{repository}/diff/{sha}"},
        },
        "repository": {
            "type": "repository",
            "full_name": repository,
            "name": repository.split("/")[1],
            "uuid": "{r}",
        },
    }


def diffstat_payload(path: str, added: int, removed: int, status: str = "modified") -> Json:
    file = {"path": path, "type": "commit_file", "escaped_path": path}
    return {
        "type": "diffstat",
        "status": status,
        "lines_added": added,
        "lines_removed": removed,
        "old": None if status == "added" else file,
        "new": file,
    }


def pull_request_payload(
    number: int,
    title: str,
    *,
    author: Json,
    state: str,
    created_on: str,
    updated_on: str,
    source: str,
    merge_commit: tuple[str, str] | None = None,
    participants: Sequence[Json] = (),
    comment_count: int = 0,
    repository: str = "acme/api",
) -> Json:
    repo = {"type": "repository", "full_name": repository, "name": repository.split("/")[1], "uuid": "{r}"}
    return {
        "type": "pullrequest",
        "id": number,
        "title": title,
        "description": "",
        "summary": {"type": "rendered", "raw": "", "markup": "markdown", "html": ""},
        "state": state,
        "draft": False,
        "author": author,
        "source": {
            "branch": {"name": source},
            "commit": {"type": "commit", "hash": "a" * 12},
            "repository": repo,
        },
        "destination": {
            "branch": {"name": "main"},
            "commit": {"type": "commit", "hash": "b" * 12},
            "repository": repo,
        },
        "merge_commit": {"type": "commit", "hash": merge_commit[0][:12], "date": merge_commit[1]}
        if merge_commit
        else None,
        "comment_count": comment_count,
        "task_count": 0,
        "close_source_branch": True,
        "closed_by": author if state in ("MERGED", "DECLINED") else None,
        "reason": "",
        "created_on": created_on,
        "updated_on": updated_on,
        "reviewers": [p["user"] for p in participants if p["role"] == "REVIEWER"],
        "participants": list(participants),
        "links": {
            "self": {
                "href": f"https://api.bitbucket.org/2.0/repositories/{repository}/pullrequests/{number}"
            },
            "html": {"href": f"https://bitbucket.org/{repository}/pull-requests/{number}"},
        },
    }


def participant_payload(
    user: Json, role: str, *, approved: bool, state: str | None, participated_on: str | None
) -> Json:
    return {
        "type": "participant",
        "user": user,
        "role": role,
        "approved": approved,
        "state": state,
        "participated_on": participated_on,
    }


def _pr_ref(number: int, title: str) -> Json:
    return {
        "type": "pullrequest",
        "id": number,
        "title": title,
        "links": {"html": {"href": f"https://bitbucket.org/acme/api/pull-requests/{number}"}},
    }


def update_activity(number: int, title: str, state: str, author: Json, at: str) -> Json:
    return {
        "update": {
            "state": state,
            "draft": False,
            "title": title,
            "description": "",
            "reason": "",
            "author": author,
            "date": at,
            "destination": {"branch": {"name": "main"}},
            "source": {"branch": {"name": "feature"}},
            "changes": {},
        },
        "pull_request": _pr_ref(number, title),
    }


def approval_activity(number: int, title: str, user: Json, at: str) -> Json:
    return {
        "approval": {"date": at, "user": user, "pullrequest": _pr_ref(number, title)},
        "pull_request": _pr_ref(number, title),
    }


def changes_requested_activity(number: int, title: str, user: Json, at: str) -> Json:
    return {
        "changes_requested": {"date": at, "user": user, "pullrequest": _pr_ref(number, title)},
        "pull_request": _pr_ref(number, title),
    }


def comment_activity(number: int, title: str, comment_id: int, user: Json, text: str, at: str) -> Json:
    return {
        "comment": {
            "id": comment_id,
            "type": "pullrequest_comment",
            "created_on": at,
            "updated_on": at,
            "content": {"type": "rendered", "raw": text, "markup": "markdown", "html": f"<p>{text}</p>"},
            "user": user,
            "deleted": False,
            "pending": False,
            "pullrequest": _pr_ref(number, title),
            "links": {
                "html": {
                    "href": f"https://bitbucket.org/acme/api/pull-requests/{number}#comment-{comment_id}"
                }
            },
        },
        "pull_request": _pr_ref(number, title),
    }


def environment_payload(uuid: str, name: str, kind: str) -> Json:
    return {
        "type": "deployment_environment",
        "uuid": uuid,
        "name": name,
        "slug": name.lower(),
        "rank": {"Test": 0, "Staging": 1, "Production": 2}[kind],
        "hidden": False,
        "environment_type": {
            "type": "deployment_environment_type",
            "name": kind,
            "rank": {"Test": 0, "Staging": 1, "Production": 2}[kind],
        },
        "environment_lock_enabled": True,
        "lock": {"type": "deployment_environment_lock_open", "name": "OPEN"},
        "restrictions": {"type": "deployment_restrictions_configuration", "admin_only": False},
        "deployment_gate_enabled": False,
        "category": {"name": kind},
    }


def deployment_payload(
    uuid: str,
    environment: Json,
    *,
    sha: str,
    result: str | None,
    started_on: str,
    completed_on: str | None,
    deployer: Json,
    build_number: int,
    repository: str = "acme/api",
) -> Json:
    url = f"https://bitbucket.org/{repository}/addon/pipelines/home#!/results/{build_number}"
    if result is None:
        state: Json = {
            "type": "deployment_state_in_progress",
            "name": "IN_PROGRESS",
            "url": url,
            "started_on": started_on,
            "deployer": deployer,
        }
    else:
        state = {
            "type": "deployment_state_completed",
            "name": "COMPLETED",
            "url": url,
            "status": {"type": f"deployment_state_completed_status_{result.lower()}", "name": result},
            "started_on": started_on,
            "completed_on": completed_on,
            "deployer": deployer,
        }
    return {
        "type": "deployment",
        "uuid": uuid,
        "number": build_number,
        "key": f"deploy-{build_number}",
        "version": 1,
        "step": {"uuid": "{s-" + str(build_number) + "}"},
        "environment": {"type": "deployment_environment", "uuid": environment["uuid"]},
        "release": {
            "type": "deployment_release_pipeline",
            "uuid": "{rel-" + str(build_number) + "}",
            "pipeline": {"type": "pipeline", "uuid": "{p-" + str(build_number) + "}"},
            "key": str(build_number),
            "name": f"#{build_number}",
            "url": url,
            "commit": {
                "type": "commit",
                "hash": sha,
                "links": {"html": {"href": f"https://bitbucket.org/{repository}/commits/{sha}"}},
            },
            "created_on": started_on,
        },
        "state": state,
        "last_update_time": completed_on or started_on,
    }


def pipeline_payload(
    uuid: str,
    build_number: int,
    *,
    sha: str,
    selector: tuple[str, str],
    result: str | None,
    created_on: str,
    completed_on: str | None,
    creator: Json,
    ref_name: str = "main",
    repository: str = "acme/web",
) -> Json:
    if result is None:
        state: Json = {
            "type": "pipeline_state_in_progress",
            "name": "IN_PROGRESS",
            "stage": {"type": "pipeline_state_in_progress_running", "name": "RUNNING"},
        }
    else:
        state = {
            "type": "pipeline_state_completed",
            "name": "COMPLETED",
            "result": {"type": f"pipeline_state_completed_{result.lower()}", "name": result},
        }
    return {
        "type": "pipeline",
        "uuid": uuid,
        "build_number": build_number,
        "creator": creator,
        "repository": {
            "type": "repository",
            "full_name": repository,
            "name": repository.split("/")[1],
            "uuid": "{r}",
        },
        "target": {
            "type": "pipeline_ref_target",
            "ref_type": "branch",
            "ref_name": ref_name,
            "selector": {"type": selector[0], "pattern": selector[1]},
            "commit": {"type": "commit", "hash": sha},
        },
        "trigger": {"type": "pipeline_trigger_manual", "name": "MANUAL"},
        "state": state,
        "created_on": created_on,
        "completed_on": completed_on,
        "build_seconds_used": 60,
        "links": {
            "self": {"href": f"https://api.bitbucket.org/2.0/repositories/{repository}/pipelines/{uuid}"}
        },
    }


def tag_payload(
    name: str, commit: Json, *, date: str | None = None, message: str | None = None, tagger: str | None = None
) -> Json:
    return {
        "type": "tag",
        "name": name,
        "target": commit,
        "message": message,
        "date": date,
        "tagger": {"type": "author", "raw": tagger} if tagger else None,
        "links": {"html": {"href": f"https://bitbucket.org/acme/lib/commits/tag/{name}"}},
    }


def branch_payload(name: str, commit: Json, repository: str = "acme/api") -> Json:
    return {
        "type": "branch",
        "name": name,
        "target": commit,
        "merge_strategies": ["merge_commit", "squash", "fast_forward"],
        "default_merge_strategy": "merge_commit",
        "links": {
            "self": {"href": f"https://api.bitbucket.org/2.0/repositories/{repository}/refs/branches/{name}"},
            "commits": {"href": f"https://api.bitbucket.org/2.0/repositories/{repository}/commits/{name}"},
            "html": {"href": f"https://bitbucket.org/{repository}/branch/{name}"},
        },
    }
