"""Loading compact metric records from PostgreSQL.

The pure definitions of this package take records (:mod:`doraflow.metrics.records`); this module
fetches exactly the rows they need for one scope and window and turns them into records. It
talks to the asyncpg connection underneath the caller's SQLAlchemy session (same connection,
same transaction): the queries are hand-written SQL anyway, and asyncpg's records are several
times cheaper to build than ORM rows or SQLAlchemy ``Row`` objects when thousands come back.

How much history is loaded around a window (see ``docs/metrics.md``, "How the database
computes it"):

* deployments from ``DEPLOYMENT_HISTORY`` before the window to ``FOLLOW_UP`` after it --
  earlier ones tell rollbacks (going back to a revision shipped before) and incident
  attribution (the latest deployment before an incident) apart; later ones decide whether the
  last deployments of the window failed (the next deployment is a rollback or a hotfix, an
  incident is attributed to it);
* incidents open at some point in the window, or created up to ``FOLLOW_UP`` after it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from doraflow.metrics.deployments import DeploymentRules, ProductionDeployment, production_deployments
from doraflow.metrics.dora import DeliveryAnalysis, analyse_delivery
from doraflow.metrics.incidents import DEFAULT_ATTRIBUTION_WINDOW
from doraflow.metrics.records import Change, Deployment, Incident, PullRequest, Window
from doraflow.metrics.report import MetricScope, ResolvedScope, ScopeNotFoundError

__all__ = [
    "DEPLOYMENT_HISTORY",
    "FOLLOW_UP",
    "Database",
    "Delivery",
    "load_changes",
    "load_delivery",
    "load_deployment_rows",
    "load_pull_requests",
    "pull_request_key",
    "resolve_repositories",
    "resolve_scope",
    "side_database",
]

DEPLOYMENT_HISTORY: Final = timedelta(days=30)
FOLLOW_UP: Final = timedelta(days=30)

# asyncpg is untyped: its records are ``Any`` here, converted to typed records right away.
Record = Any


class Database:
    """The asyncpg connection under an :class:`AsyncSession`, inside the session's transaction.

    Created with :meth:`of`, which starts the session's transaction through SQLAlchemy first (so
    that SQLAlchemy knows about it and commits or rolls it back as usual) and sets two planner
    settings for that transaction only (``SET LOCAL``):

    * ``work_mem``: sorting a 90-day window of changes for its percentiles needs ~10 MB, and
      spilling it to disk would triple the query time;
    * ``plan_cache_mode = force_custom_plan``: asyncpg prepares every statement, and after five
      executions PostgreSQL may switch to a generic plan that cannot see how many repositories
      or deployments an array parameter holds -- measured: one query went from 15 ms to 10 s.
    """

    __slots__ = ("connection",)

    WORK_MEM: Final = "64MB"

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @classmethod
    async def of(cls, session: AsyncSession | AsyncConnection) -> Database:
        await session.execute(
            text(
                "SELECT set_config('work_mem', :work_mem, true),"
                " set_config('plan_cache_mode', 'force_custom_plan', true)"
            ),
            {"work_mem": cls.WORK_MEM},
        )
        connection = session if isinstance(session, AsyncConnection) else await session.connection()
        raw = await connection.get_raw_connection()
        return cls(raw.driver_connection)

    async def fetch(self, query: str, *args: object) -> list[Record]:
        rows: list[Record] = await self.connection.fetch(query, *args)
        return rows

    async def fetchrow(self, query: str, *args: object) -> Record | None:
        return await self.connection.fetchrow(query, *args)


@asynccontextmanager
async def side_database(session: AsyncSession) -> AsyncIterator[Database | None]:
    """Another connection from the session's engine pool, for a query to run concurrently with
    the session's own (``None`` when the session is not bound to an engine).

    Why: the lead-time percentiles keep one PostgreSQL backend busy for tens of milliseconds;
    meanwhile the session's connection loads deployments and incidents and Python analyses them,
    so a report costs roughly its longest part rather than the sum. The side connection has its
    own read-only transaction (same ``SET LOCAL`` settings), rolled back on exit; it reads
    committed data, as the session's own statements do (READ COMMITTED).
    """
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        yield None
        return
    async with engine.connect() as connection:
        yield await Database.of(connection)


# --------------------------------------------------------------------------------------------
# Scope
# --------------------------------------------------------------------------------------------


async def resolve_scope(db: Database, organization_id: uuid.UUID, scope: MetricScope) -> ResolvedScope:
    """Check the scope belongs to the organization and list the repositories and services it
    covers. Raises :class:`ScopeNotFoundError` for an unknown organization, team or repository, and
    for one of another organization (indistinguishable on purpose)."""
    if scope.kind == "organization":
        row = await db.fetchrow(
            "SELECT o.name,"
            " ARRAY(SELECT r.id FROM repositories r WHERE r.organization_id = o.id ORDER BY r.id)"
            " FROM organizations o WHERE o.id = $1",
            organization_id,
        )
        if row is None:
            raise ScopeNotFoundError(f"organization {organization_id} not found")
        return ResolvedScope("organization", organization_id, row[0], organization_id, tuple(row[1]), None)
    assert scope.id is not None  # MetricScope enforces it
    if scope.kind == "team":
        row = await db.fetchrow(
            """
            SELECT t.name,
                   ARRAY(SELECT r.id FROM team_repositories tr
                         JOIN repositories r
                           ON r.id = tr.repository_id AND r.organization_id = t.organization_id
                         WHERE tr.team_id = t.id ORDER BY r.id),
                   ARRAY(SELECT DISTINCT r.service FROM team_repositories tr
                         JOIN repositories r
                           ON r.id = tr.repository_id AND r.organization_id = t.organization_id
                         WHERE tr.team_id = t.id AND r.service IS NOT NULL ORDER BY r.service)
            FROM teams t WHERE t.id = $2 AND t.organization_id = $1
            """,
            organization_id,
            scope.id,
        )
    else:
        row = await db.fetchrow(
            "SELECT r.name, ARRAY[r.id], ARRAY_REMOVE(ARRAY[r.service], NULL)"
            " FROM repositories r WHERE r.id = $2 AND r.organization_id = $1",
            organization_id,
            scope.id,
        )
    if row is None:
        raise ScopeNotFoundError(f"{scope.kind} {scope.id} not found in organization {organization_id}")
    return ResolvedScope(scope.kind, scope.id, row[0], organization_id, tuple(row[1]), tuple(row[2]))


async def resolve_repositories(
    db: Database, organization_id: uuid.UUID, repository_ids: Sequence[uuid.UUID] | None
) -> ResolvedScope:
    """A scope given as repository ids (``None``: the whole organization). Ids of another
    organization's repositories are dropped, never read; an unknown organization raises
    :class:`ScopeNotFoundError`."""
    if repository_ids is None:
        return await resolve_scope(db, organization_id, MetricScope.organization())
    row = await db.fetchrow(
        "SELECT o.name,"
        " ARRAY(SELECT r.id FROM repositories r WHERE r.organization_id = o.id AND r.id = ANY($2::uuid[])"
        "       ORDER BY r.id),"
        " ARRAY(SELECT DISTINCT r.service FROM repositories r WHERE r.organization_id = o.id"
        "       AND r.id = ANY($2::uuid[]) AND r.service IS NOT NULL ORDER BY r.service)"
        " FROM organizations o WHERE o.id = $1",
        organization_id,
        list(repository_ids),
    )
    if row is None:
        raise ScopeNotFoundError(f"organization {organization_id} not found")
    repositories = tuple(row[1])
    name = f"{len(repositories)} repositories of {row[0]}"
    return ResolvedScope(
        "repository",
        repositories[0] if repositories else organization_id,
        name,
        organization_id,
        repositories,
        tuple(row[2]),
    )


def _deployment_scope_sql(scope: ResolvedScope, first_param: int) -> tuple[str, list[object]]:
    """The WHERE fragment placing a deployment row in a team/repository scope: its repository is
    in scope, or it names no repository and deploys one of the scope's services."""
    if scope.services is None:
        return "", []
    return (
        f" AND (d.repository_id = ANY(${first_param}::uuid[])"
        f" OR (d.repository_id IS NULL AND d.service = ANY(${first_param + 1}::text[])))",
        [list(scope.repository_ids), list(scope.services)],
    )


# --------------------------------------------------------------------------------------------
# Deployments and incidents: everything the stability metrics need
# --------------------------------------------------------------------------------------------

# Only what the definitions read: a few thousand rows per report, so every column costs. A
# deployment without a revision is its own revision (it never merges with another into a rollout).
_DEPLOYMENT_COLUMNS = """
    d.id, d.service, coalesce(d.environment, ''), coalesce(d.revision, 'deployment:' || d.id::text),
    d.finished_at, d.is_hotfix, d.is_rollback
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The deployments and incidents of one scope around one window, analysed once.

    ``rows`` are the successful production deployment rows as records, ``row_info`` their
    database rows by id (``id, service, environment, revision, finished_at, is_hotfix,
    is_rollback``), ``deployments`` the
    DORA deployments built from them, ``analysis`` the shared incident attribution and
    deployment outcomes, ``incident_info`` the incidents' database rows by id.
    """

    scope: ResolvedScope
    rows: tuple[Deployment, ...]
    row_info: Mapping[str, Record]
    deployments: tuple[ProductionDeployment, ...]
    incidents: tuple[Incident, ...]
    incident_info: Mapping[str, Record]
    analysis: DeliveryAnalysis


async def load_deployment_rows(
    db: Database,
    scope: ResolvedScope,
    start: datetime,
    end: datetime,
    *,
    shipped_shas: Iterable[str] | None = (),
) -> tuple[list[Deployment], dict[str, Record]]:
    """Successful production deployment rows of the scope that finished in ``[start, end)``.

    ``commit_shas`` of each record are restricted to ``shipped_shas`` plus the revisions of the
    loaded rows: that is all :func:`production_deployments` (rollback detection compares when
    revisions were first shipped) and incident attribution (commits named by incidents) look
    at, and it spares loading the ~50 commits of every deployment. ``shipped_shas=None`` loads
    every commit (the reference path of the tests, which needs them for lead time).
    """
    scope_sql, scope_args = _deployment_scope_sql(scope, 4)
    rows = await db.fetch(
        f"SELECT {_DEPLOYMENT_COLUMNS} FROM deployments d"  # noqa: S608 - constants and placeholders only
        " WHERE d.organization_id = $1 AND d.is_production AND d.status = 'success'"
        f" AND d.finished_at >= $2 AND d.finished_at < $3{scope_sql}",
        scope.organization_id,
        start,
        end,
        *scope_args,
    )
    ids = [row[0] for row in rows]
    if shipped_shas is None:
        links = await db.fetch(
            "SELECT dc.deployment_id, dc.commit_sha FROM deployment_commits dc"
            " JOIN unnest($1::uuid[]) AS wanted(id) ON wanted.id = dc.deployment_id",
            ids,
        )
    else:
        # Looked up by SHA (a few rows per revision); rows outside the loaded set are dropped
        # here, which is much cheaper than an ``= ANY(thousands of ids)`` filter in SQL.
        wanted = {row[3] for row in rows}
        wanted.update(shipped_shas)
        links = await db.fetch(
            "SELECT dc.deployment_id, dc.commit_sha FROM deployment_commits dc"
            " WHERE dc.commit_sha = ANY($1::text[])",
            sorted(wanted),
        )
    loaded = set(ids)
    shas_of: dict[uuid.UUID, list[str]] = {}
    for deployment_id, sha in links:
        if deployment_id in loaded:
            shas_of.setdefault(deployment_id, []).append(sha)
    records: list[Deployment] = []
    info: dict[str, Record] = {}
    for row in rows:
        key = str(row[0])
        records.append(
            Deployment(
                deployment_id=key,
                service=row[1],
                environment=row[2],
                revision=row[3],
                finished_at=row[4],
                succeeded=True,
                is_production=True,
                commit_shas=tuple(shas_of.get(row[0], ())),
                is_hotfix=row[5],
                is_rollback=row[6],
            )
        )
        info[key] = row
    return records, info


_INCIDENT_COLUMNS = """
    i.id, i.created_at, i.resolved_at, i.service, i.deployment_ref, i.commit_sha_ref, i.severity,
    i.external_id, i.source, i.title, i.url
"""


async def _load_incidents(
    db: Database, scope: ResolvedScope, window: Window, history_start: datetime, follow_up_end: datetime
) -> list[Record]:
    """Incidents that may matter for the window: open at some point during it, or created
    between the start of the loaded deployment history and the end of the follow-up.

    Not filtered by scope here: an incident names a service (or a deployment, or a commit), and
    which services a team deploys is known only once its deployments are loaded. An
    organization has a few hundred incidents in such a range.
    """
    rows: list[Record] = await db.fetch(
        f"SELECT {_INCIDENT_COLUMNS} FROM incidents i"  # noqa: S608 - constants and placeholders only
        " WHERE i.organization_id = $1 AND i.created_at < $4"
        " AND (i.resolved_at IS NULL OR i.resolved_at >= $2 OR i.created_at >= $3)"
        " ORDER BY i.created_at, i.id",
        scope.organization_id,
        window.start,
        history_start,
        follow_up_end,
    )
    return rows


async def _resolve_deployment_refs(
    db: Database, organization_id: uuid.UUID, refs: set[str], loaded: Mapping[str, Record]
) -> dict[str, str]:
    """Explicit deployment references (the source's deployment id, or our row id) → row id.

    A reference matching several rows (two CI systems using the same id) prefers a loaded
    successful production row. An unknown reference maps to nothing: the incident keeps it and
    stays unattributed, as the definition demands.
    """
    if not refs:
        return {}
    as_ids: list[uuid.UUID] = []
    for ref in refs:
        try:
            as_ids.append(uuid.UUID(ref))
        except ValueError:
            continue
    rows = await db.fetch(
        "SELECT d.id, d.external_id FROM deployments d WHERE d.organization_id = $1"
        " AND (d.external_id = ANY($2::text[]) OR d.id = ANY($3::uuid[]))"
        " ORDER BY d.finished_at NULLS LAST, d.id",
        organization_id,
        sorted(refs),
        as_ids,
    )
    resolved: dict[str, str] = {}
    for row_id, external_id in rows:
        key = str(row_id)
        for ref in (external_id, key):
            if ref in refs and (ref not in resolved or (key in loaded and resolved[ref] not in loaded)):
                resolved[ref] = key
    return resolved


async def load_delivery(
    db: Database,
    scope: ResolvedScope,
    window: Window,
    *,
    rules: DeploymentRules | None = None,
    attribution_window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
) -> Delivery:
    """Deployments and incidents around ``window``, collapsed, attributed and classified once.

    Incidents are attributed here, at query time, by :func:`attribute_incidents` from the
    references the source gave (``deployment_ref``, ``commit_sha_ref``, ``service``), so the
    metrics follow the rules and attribution window of the request and never depend on the
    order in which events were processed.
    """
    history_start = window.start - max(DEPLOYMENT_HISTORY, attribution_window)
    follow_up_end = window.end + FOLLOW_UP
    incident_rows = await _load_incidents(db, scope, window, history_start, follow_up_end)
    named_shas = {row[5] for row in incident_rows if row[5]}
    rows, row_info = await load_deployment_rows(
        db, scope, history_start, follow_up_end, shipped_shas=named_shas
    )
    refs = {row[4] for row in incident_rows if row[4]}
    resolved_refs = await _resolve_deployment_refs(db, scope.organization_id, refs, row_info)

    scope_services: set[str] | None = None
    if scope.services is not None:
        scope_services = set(scope.services)
        scope_services.update(deployment.service for deployment in rows)
    shipped_in_scope: set[str] = set()
    if scope_services is not None and named_shas:
        for deployment in rows:
            shipped_in_scope.update(named_shas.intersection(deployment.commit_shas))

    incidents: list[Incident] = []
    incident_info: dict[str, Record] = {}
    for row in incident_rows:
        ref = row[4]
        deployment_id = resolved_refs.get(ref, ref) if ref else None
        if scope_services is not None and not (
            row[3] in scope_services
            or (deployment_id is not None and deployment_id in row_info)
            or (row[5] is not None and row[5] in shipped_in_scope)
        ):
            continue  # another team's incident that names nothing of this scope
        key = str(row[0])
        incidents.append(
            Incident(
                incident_id=key,
                created_at=row[1],
                service=row[3],
                resolved_at=row[2],
                deployment_id=deployment_id,
                commit_sha=row[5],
                severity=row[6],
            )
        )
        incident_info[key] = row

    deployments = production_deployments(rows, rules)
    analysis = analyse_delivery(deployments, incidents, rules=rules, attribution_window=attribution_window)
    return Delivery(scope, tuple(rows), row_info, deployments, tuple(incidents), incident_info, analysis)


# --------------------------------------------------------------------------------------------
# Full record loaders (reference path: every change of a scope)
# --------------------------------------------------------------------------------------------


def pull_request_key(repository_id: uuid.UUID, number: int) -> str:
    """The ``pull_request_id`` of records built from the database: unique per organization."""
    return f"{repository_id}#{number}"


async def load_changes(db: Database, scope: ResolvedScope) -> list[Change]:
    """Every commit of the scope's repositories as a :class:`Change`.

    For the reference path only (tests, offline checks): a scope holds up to millions of
    commits. The metrics read lead time from the database instead (:mod:`.leadtime`).
    """
    rows = await db.fetch(
        "SELECT c.commit_sha, c.time, c.repository_id, c.pull_request_number, c.is_merge,"
        " coalesce(c.lines_added, 0), coalesce(c.lines_deleted, 0), coalesce(c.files_changed, 0)"
        " FROM commits c WHERE c.repository_id = ANY($1::uuid[])",
        list(scope.repository_ids),
    )
    return [
        Change(
            sha=row[0],
            authored_at=row[1],
            repository=str(row[2]),
            pull_request_id=None if row[3] is None else pull_request_key(row[2], row[3]),
            is_merge_commit=row[4],
            additions=row[5],
            deletions=row[6],
            files_changed=row[7],
        )
        for row in rows
    ]


async def load_pull_requests(
    db: Database, scope: ResolvedScope, where: str = "TRUE", *args: object
) -> list[PullRequest]:
    """Pull requests of the scope as :class:`PullRequest` records (``where`` narrows them, with
    parameters from ``$2``). Review and comment counts come from the stored counters."""
    rows = await db.fetch(
        "SELECT p.repository_id, p.pr_number, p.time, p.author_id, p.first_commit_at, p.first_review_at,"  # noqa: S608 - constants and placeholders only
        " p.merged_at, p.merge_commit_sha, coalesce(p.lines_added, 0), coalesce(p.lines_deleted, 0),"
        " coalesce(p.files_changed, 0), coalesce(p.reviews_count, 0), coalesce(p.review_comments, 0)"
        f" FROM pull_requests p WHERE p.repository_id = ANY($1::uuid[]) AND ({where})",
        list(scope.repository_ids),
        *args,
    )
    return [
        PullRequest(
            pull_request_id=pull_request_key(row[0], row[1]),
            opened_at=row[2],
            repository=str(row[0]),
            author=str(row[3]),
            first_commit_at=row[4],
            first_review_at=row[5],
            merged_at=row[6],
            merge_commit_sha=row[7],
            additions=row[8],
            deletions=row[9],
            files_changed=row[10],
            review_count=row[11],
            comment_count=row[12],
        )
        for row in rows
    ]
