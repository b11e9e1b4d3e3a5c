"""A fake Linear GraphQL API (`POST /graphql`), executed by graphql-core against a schema that is a
faithful subset of Linear's (type, field and argument names as in Linear's public schema), so a
query naming a field Linear does not have fails here as it would there.

What it reproduces: Relay-style connections (`nodes`, `pageInfo { hasNextPage endCursor }`,
`first`/`after`), `issues(filter: {team|project: {id: {eq}}, updatedAt: {gte, lte}}, orderBy:
updatedAt)` newest first, `Issue.history` (IssueHistory with `fromState`/`toState`), cycles with
`issues` and `uncompletedIssuesUponClose`; `Authorization: <api key>` (bare) or `Bearer <oauth>`;
errors as Linear sends them — HTTP 400 with `extensions.code` `AUTHENTICATION_ERROR` or
`RATELIMITED` (`statusCode` 401/429), `Entity not found: Team` for a deleted team; and the
rate-limit headers `X-RateLimit-Requests-{Limit,Remaining,Reset}`,
`X-RateLimit-Complexity-{Limit,Remaining,Reset}` (resets in epoch milliseconds) and `X-Complexity`.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLObjectType, build_schema, graphql_sync
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Json = dict[str, Any]

SCHEMA = """
scalar DateTime
type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
type User { id: ID! name: String! displayName: String! email: String! }
type WorkflowState { id: ID! name: String! type: String! color: String! }
type IssueLabel { id: ID! name: String! }
type IssueLabelConnection { nodes: [IssueLabel!]! pageInfo: PageInfo! }
type Project { id: ID! name: String! }
type ProjectConnection { nodes: [Project!]! pageInfo: PageInfo! }
type IssueHistory {
  id: ID! createdAt: DateTime! updatedAt: DateTime!
  fromState: WorkflowState toState: WorkflowState actor: User
}
type IssueHistoryConnection { nodes: [IssueHistory!]! pageInfo: PageInfo! }
type IssueRelation { id: ID! type: String! issue: Issue! relatedIssue: Issue! }
type IssueRelationConnection { nodes: [IssueRelation!]! pageInfo: PageInfo! }
type Issue {
  id: ID! identifier: String! title: String! url: String! number: Float!
  createdAt: DateTime! updatedAt: DateTime! startedAt: DateTime completedAt: DateTime canceledAt: DateTime
  archivedAt: DateTime estimate: Float priority: Float! priorityLabel: String!
  state: WorkflowState! assignee: User project: Project team: Team! cycle: Cycle
  labels(first: Int, after: String): IssueLabelConnection!
  relations(first: Int, after: String): IssueRelationConnection!
  history(first: Int, after: String): IssueHistoryConnection!
}
type IssueConnection { nodes: [Issue!]! pageInfo: PageInfo! }
type Cycle {
  id: ID! number: Float! name: String startsAt: DateTime! endsAt: DateTime! completedAt: DateTime
  issues(first: Int, after: String, includeArchived: Boolean): IssueConnection!
  uncompletedIssuesUponClose(first: Int, after: String, includeArchived: Boolean): IssueConnection!
}
type CycleConnection { nodes: [Cycle!]! pageInfo: PageInfo! }
type Team {
  id: ID! key: String! name: String!
  cycles(first: Int, after: String, includeArchived: Boolean): CycleConnection!
}
type TeamConnection { nodes: [Team!]! pageInfo: PageInfo! }
input IDComparator { eq: ID neq: ID in: [ID!] }
input DateComparator { eq: DateTime gte: DateTime lte: DateTime gt: DateTime lt: DateTime }
input TeamFilter { id: IDComparator }
input NullableProjectFilter { id: IDComparator }
input IssueFilter { team: TeamFilter project: NullableProjectFilter updatedAt: DateComparator }
enum PaginationOrderBy { createdAt updatedAt }
type Query {
  teams(first: Int, after: String): TeamConnection!
  projects(first: Int, after: String): ProjectConnection!
  team(id: String!): Team!
  project(id: String!): Project!
  issue(id: String!): Issue!
  cycle(id: String!): Cycle!
  issues(
    filter: IssueFilter, first: Int, after: String, orderBy: PaginationOrderBy, includeArchived: Boolean
  ): IssueConnection!
}
"""

STATE_COLORS = {"backlog": "#bec2c8", "unstarted": "#e2e2e2", "started": "#f2c94c", "completed": "#5e6ad2"}


def linear_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def state(state_id: str, name: str, kind: str) -> Json:
    return {"id": state_id, "name": name, "type": kind, "color": STATE_COLORS.get(kind, "#95a2b3")}


def user(user_id: str, name: str, email: str) -> Json:
    return {"id": user_id, "name": name, "displayName": name.split()[0].lower(), "email": email}


def history_entry(
    entry_id: str, at: datetime, old: Json | None, new: Json | None, actor: Json | None
) -> Json:
    return {
        "id": entry_id,
        "createdAt": linear_time(at),
        "updatedAt": linear_time(at),
        "fromState": old,
        "toState": new,
        "actor": actor,
    }


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def connection(items: list[Any], first: int | None, after: str | None) -> Json:
    start = int(base64.b64decode(after).decode().split(":")[1]) + 1 if after else 0
    size = first if first is not None else 50
    page = items[start : start + size]
    end = start + len(page) - 1
    return {
        "nodes": page,
        "pageInfo": {
            "hasNextPage": start + size < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(start) if page else None,
            "endCursor": _cursor(end) if page else None,
        },
    }


def not_found(kind: str) -> GraphQLError:
    return GraphQLError(
        f"Entity not found: {kind}",
        extensions={
            "type": "invalid input",
            "code": "INVALID_INPUT",
            "statusCode": 400,
            "userError": True,
            "userPresentableMessage": f"Could not find referenced {kind}.",
        },
    )


@dataclass
class Failure:
    code: str  # RATELIMITED | AUTHENTICATION_ERROR
    times: int


@dataclass
class FakeLinear:
    api_key: str = "lin_api_good"
    teams: list[Json] = field(default_factory=list)
    projects: list[Json] = field(default_factory=list)
    issues: list[Json] = field(default_factory=list)
    cycles: dict[str, list[Json]] = field(default_factory=dict)  # team id → cycles
    cycle_issues: dict[str, list[str]] = field(default_factory=dict)  # cycle id → issue ids
    cycle_carried: dict[str, list[str]] = field(default_factory=dict)
    requests: list[Json] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    complexity_remaining: int = 240_000
    complexity_reset_in: float = 30.0
    requests_reset_in: float = 30.0

    def __post_init__(self) -> None:
        self.schema = build_schema(SCHEMA)
        query = self.schema.query_type
        assert query is not None
        resolvers = {
            "teams": lambda _, info, first=None, after=None: connection(self.teams, first, after),
            "projects": lambda _, info, first=None, after=None: connection(self.projects, first, after),
            "team": lambda _, info, id: self._find(self.teams, id, "Team"),
            "project": lambda _, info, id: self._find(self.projects, id, "Project"),
            "issue": lambda _, info, id: self._find(self.issues, id, "Issue"),
            "cycle": lambda _, info, id: self._cycle(id),
            "issues": self._issues,
        }
        for name, resolver in resolvers.items():
            query.fields[name].resolve = resolver
        self._type("Team").fields["cycles"].resolve = lambda team, info, first=None, after=None, **_: (
            connection(sorted(self.cycles.get(team["id"], []), key=lambda c: c["startsAt"]), first, after)
        )
        cycle = self._type("Cycle")
        cycle.fields["issues"].resolve = lambda c, info, first=None, after=None, **_: connection(
            [self._find(self.issues, i, "Issue") for i in self.cycle_issues.get(c["id"], [])], first, after
        )
        cycle.fields["uncompletedIssuesUponClose"].resolve = lambda c, info, first=None, after=None, **_: (
            connection(
                [self._find(self.issues, i, "Issue") for i in self.cycle_carried.get(c["id"], [])],
                first,
                after,
            )
        )
        issue = self._type("Issue")
        for name in ("labels", "relations", "history"):
            issue.fields[name].resolve = lambda i, info, first=None, after=None, name=name: connection(
                i.get(f"_{name}", []), first, after
            )

    def _type(self, name: str) -> GraphQLObjectType:
        found = self.schema.get_type(name)
        assert isinstance(found, GraphQLObjectType)
        return found

    # ---- test controls ----------------------------------------------------------------------------

    def add_team(self, team_id: str, key: str, name: str) -> Json:
        team = {"id": team_id, "key": key, "name": name}
        self.teams.append(team)
        return team

    def add_issue(
        self,
        issue_id: str,
        identifier: str,
        *,
        team: Json,
        title: str,
        state: Json,
        created: datetime,
        updated: datetime,
        completed: datetime | None = None,
        canceled: datetime | None = None,
        estimate: float | None = None,
        priority: int = 0,
        assignee: Json | None = None,
        labels: list[str] | None = None,
        project: Json | None = None,
        history: list[Json] | None = None,
        relations: list[str] | None = None,
    ) -> Json:
        labels_ = [{"id": f"label-{n}", "name": n} for n in labels or []]
        priority_labels = {0: "No priority", 1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}
        issue: Json = {
            "id": issue_id,
            "identifier": identifier,
            "number": float(identifier.split("-")[1]),
            "title": title,
            "url": f"https://linear.app/acme/issue/{identifier.lower()}",
            "createdAt": linear_time(created),
            "updatedAt": linear_time(updated),
            "startedAt": None,
            "completedAt": linear_time(completed) if completed else None,
            "canceledAt": linear_time(canceled) if canceled else None,
            "archivedAt": None,
            "estimate": estimate,
            "priority": float(priority),
            "priorityLabel": priority_labels[priority],
            "state": state,
            "assignee": assignee,
            "project": project,
            "team": team,
            "cycle": None,
            "_labels": labels_,
            "_history": history or [],
            "_relations": [],
        }
        self.issues.append(issue)
        for other in relations or []:
            target = next(i for i in self.issues if i["identifier"] == other)
            issue["_relations"].append(
                {"id": f"rel-{issue_id}-{other}", "type": "blocks", "issue": issue, "relatedIssue": target}
            )
        return issue

    def add_cycle(
        self,
        team: Json,
        cycle_id: str,
        number: int,
        *,
        starts: datetime,
        ends: datetime,
        completed: datetime | None = None,
        issues: list[str] | None = None,
        carried: list[str] | None = None,
        name: str | None = None,
    ) -> Json:
        cycle = {
            "id": cycle_id,
            "number": float(number),
            "name": name,
            "startsAt": linear_time(starts),
            "endsAt": linear_time(ends),
            "completedAt": linear_time(completed) if completed else None,
        }
        self.cycles.setdefault(team["id"], []).append(cycle)
        self.cycle_issues[cycle_id] = issues or []
        self.cycle_carried[cycle_id] = carried or []
        return cycle

    def fail(self, code: str, times: int = 1) -> None:
        self.failures.append(Failure(code, times))

    def queries(self, fragment: str) -> list[Json]:
        return [r for r in self.requests if fragment in r["query"]]

    # ---- resolvers --------------------------------------------------------------------------------

    def _find(self, items: list[Json], ident: str, kind: str) -> Json:
        for item in items:
            if ident in (item["id"], item.get("key"), item.get("identifier")):
                return item
        raise not_found(kind)

    def _cycle(self, ident: str) -> Json:
        for cycles in self.cycles.values():
            for cycle in cycles:
                if cycle["id"] == ident:
                    return cycle
        raise not_found("Cycle")

    def _issues(
        self,
        _: Any,
        info: Any,
        filter: Json | None = None,
        first: int | None = None,
        after: str | None = None,
        **__: Any,
    ) -> Json:
        found = list(self.issues)
        rules = filter or {}
        if team := ((rules.get("team") or {}).get("id") or {}).get("eq"):
            found = [i for i in found if i["team"]["id"] == team]
        if project := ((rules.get("project") or {}).get("id") or {}).get("eq"):
            found = [i for i in found if (i.get("project") or {}).get("id") == project]
        window = rules.get("updatedAt") or {}
        if "gte" in window:
            found = [i for i in found if _at(i["updatedAt"]) >= _at(window["gte"])]
        if "lte" in window:
            found = [i for i in found if _at(i["updatedAt"]) <= _at(window["lte"])]
        found.sort(key=lambda i: (i["updatedAt"], i["id"]), reverse=True)
        return connection(found, first, after)

    # ---- ASGI app ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/graphql", self._graphql, methods=["POST"])])

    def _headers(self, cost: int) -> dict[str, str]:
        now = time.time()
        self.complexity_remaining = max(0, self.complexity_remaining - cost)
        return {
            "X-RateLimit-Requests-Limit": "5000",
            "X-RateLimit-Requests-Remaining": "4990",
            "X-RateLimit-Requests-Reset": str(int((now + self.requests_reset_in) * 1000)),
            "X-RateLimit-Complexity-Limit": "250000",
            "X-RateLimit-Complexity-Remaining": str(self.complexity_remaining),
            "X-RateLimit-Complexity-Reset": str(int((now + self.complexity_reset_in) * 1000)),
            "X-Complexity": str(cost),
        }

    def _error(self, code: str, message: str, status: int, headers: dict[str, str]) -> Response:
        body = {
            "errors": [
                {
                    "message": message,
                    "extensions": {
                        "type": code.lower().replace("_", " "),
                        "code": code,
                        "statusCode": status,
                        "userError": True,
                        "userPresentableMessage": message,
                    },
                }
            ]
        }
        return Response(orjson.dumps(body), status_code=400, headers=headers, media_type="application/json")

    async def _graphql(self, request: Request) -> Response:
        payload = orjson.loads(await request.body())
        self.requests.append(payload)
        for failure in self.failures:
            if failure.times > 0:
                failure.times -= 1
                headers = self._headers(0)
                if failure.code == "RATELIMITED":
                    headers["X-RateLimit-Requests-Remaining"] = "0"
                    headers["X-RateLimit-Requests-Reset"] = str(int((time.time() + 4) * 1000))
                    return self._error("RATELIMITED", "Rate limit exceeded", 429, headers)
                return self._error(failure.code, "injected", 500, headers)
        authorization = request.headers.get("authorization", "")
        if authorization.removeprefix("Bearer ") != self.api_key:
            return self._error(
                "AUTHENTICATION_ERROR", "Authentication required, not authenticated", 401, self._headers(0)
            )
        result = graphql_sync(self.schema, payload["query"], variable_values=payload.get("variables"))
        body: Json = {"data": result.data}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        cost = 10 + 2 * len(payload["query"]) // 100
        return Response(
            orjson.dumps(body), status_code=200, headers=self._headers(cost), media_type="application/json"
        )


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
