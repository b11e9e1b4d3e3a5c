"""Store: one batch's rows into PostgreSQL with set-based upserts on natural keys.

Every statement sends whole columns as arrays (`INSERT … SELECT FROM unnest($1::…[], …) ON CONFLICT`),
so a batch costs one round trip per table, not one per event. Every upsert is idempotent and
monotonic, which is what makes at-least-once delivery safe and a replay from offset 0 a no-op:

* an update happens only when the incoming version is not older than the stored one (pull requests
  by `updated_at` then state, deployments by finished/started time, work items by `updated_at`,
  incidents by resolved/created time) — an old event replayed never regresses a row;
* and only when something differs (`IS DISTINCT FROM`), so a replay does not even write.

Derived columns (first production deployment of commits and pull requests, first review, issue
start, incident attribution) are recomputed from the stored facts on *both* sides of each link —
when the commit arrives and when the deployment arrives — so they come out the same whatever order
the independent topics deliver in (see `enrichment`).

Ids are deterministic (`natural_id`), so the same events give the same rows in any database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson

from doraflow.core.models import natural_id
from doraflow.processor import enrichment, refs
from doraflow.processor.columns import append_row, empty_columns
from doraflow.processor.entities import Lookups, OrganizationInfo, developers, organizations, repositories
from doraflow.processor.identity import PersonKey
from doraflow.processor.transform import Plan, RepoKey, clamp, text

logger = logging.getLogger(__name__)

Connection = Any  # asyncpg.Connection (untyped library)
STORY_POINTS_MAX = 99_999_999.0  # issues.story_points is NUMERIC(10, 2)


@dataclass(slots=True)
class Changes:
    """What a stored batch touched: drives cache invalidation and rollup refreshes."""

    organizations: set[uuid.UUID] = field(default_factory=set)
    repositories: set[uuid.UUID] = field(default_factory=set)
    developers: set[uuid.UUID] = field(default_factory=set)
    teams: set[uuid.UUID] = field(default_factory=set)  # known directly; more are derived from the above
    rollups: bool = False


# --- git facts ----------------------------------------------------------------------------------

# Returns the rows inserted or changed, whether they existed before (`previous` is the table before
# this statement) and whether they count (a successful production deployment).
UPSERT_DEPLOYMENTS = """
WITH previous AS (
    SELECT id FROM deployments WHERE id = ANY($1::uuid[])
), upserted AS (
INSERT INTO deployments AS d (id, time, organization_id, repository_id, source, external_id, service,
                              environment, is_production, status, finished_at, duration_seconds,
                              deployed_by, revision, is_hotfix, is_rollback, url)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::bool[], $10::text[], $11::timestamptz[], $12::int[],
                     $13::uuid[], $14::text[], $15::bool[], $16::bool[], $17::text[])
ON CONFLICT (id, time) DO UPDATE SET
    repository_id = EXCLUDED.repository_id, service = EXCLUDED.service,
    environment = EXCLUDED.environment, is_production = EXCLUDED.is_production,
    status = EXCLUDED.status, finished_at = EXCLUDED.finished_at,
    duration_seconds = EXCLUDED.duration_seconds, deployed_by = EXCLUDED.deployed_by,
    revision = EXCLUDED.revision, is_hotfix = EXCLUDED.is_hotfix, is_rollback = EXCLUDED.is_rollback,
    url = EXCLUDED.url
WHERE (COALESCE(EXCLUDED.finished_at, EXCLUDED.time), EXCLUDED.status <> 'in_progress')
        >= (COALESCE(d.finished_at, d.time), COALESCE(d.status, 'in_progress') <> 'in_progress')
  AND (d.repository_id, d.service, d.environment, d.is_production, d.status, d.finished_at,
       d.duration_seconds, d.deployed_by, d.revision, d.is_hotfix, d.is_rollback, d.url)
      IS DISTINCT FROM
      (EXCLUDED.repository_id, EXCLUDED.service, EXCLUDED.environment, EXCLUDED.is_production,
       EXCLUDED.status, EXCLUDED.finished_at, EXCLUDED.duration_seconds, EXCLUDED.deployed_by,
       EXCLUDED.revision, EXCLUDED.is_hotfix, EXCLUDED.is_rollback, EXCLUDED.url)
RETURNING d.id, d.status = 'success' AND d.is_production AS counts
)
SELECT u.id, u.counts, p.id IS NOT NULL AS existed FROM upserted u LEFT JOIN previous p USING (id)
"""
INSERT_DEPLOYMENT_COMMITS = """
WITH inserted AS (
    INSERT INTO deployment_commits (deployment_id, commit_sha, repository_id)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[])
    ON CONFLICT (deployment_id, commit_sha) DO NOTHING
    RETURNING deployment_id
)
SELECT DISTINCT deployment_id FROM inserted
"""


@dataclass(frozen=True, slots=True)
class DeploymentRef:
    id: uuid.UUID
    organization_id: uuid.UUID
    external_id: str
    service: str
    since: datetime  # when it started: no incident before can be attributed to it


@dataclass(slots=True)
class DeploymentColumns:
    deployments: list[list[Any]]
    links: list[list[Any]]  # deployment_commits
    refs: dict[uuid.UUID, DeploymentRef]


def deployment_columns(
    plan: Plan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> DeploymentColumns:
    cols: list[list[Any]] = empty_columns(17)
    refs: dict[uuid.UUID, DeploymentRef] = {}
    links: list[list[Any]] = [[], [], []]
    for key, staged in plan.deployments.items():
        d = staged.data
        org_id = orgs[staged.organization].id
        # Scoped by repository (DeploymentData.natural_key): two repositories' `v1.0.0` tags differ.
        deployment_id = natural_id("deployment", org_id, staged.source, d.natural_key())
        repo_id = repos[staged.repository] if staged.repository is not None else None
        service = d.service or (d.repository.service or d.repository.name if d.repository else None) or "-"
        duration = (
            clamp(max(0, int((d.finished_at - d.started_at).total_seconds()))) if d.finished_at else None
        )
        row = (
            deployment_id,
            d.started_at,
            org_id,
            repo_id,
            staged.source,
            d.deployment_id,
            service,
            d.environment,
            d.is_production,
            d.status,
            d.finished_at,
            duration,
            people[staged.person] if staged.person is not None else None,
            d.revision,
            d.is_hotfix,
            d.is_rollback,
            d.url,
        )
        append_row(cols, row)
        refs[deployment_id] = DeploymentRef(deployment_id, org_id, d.deployment_id, service, d.started_at)
        for sha in sorted(plan.deployment_shas.get(key, ())):
            append_row(links, (deployment_id, sha, repo_id))
    return DeploymentColumns(cols, links, refs)


async def deployments(conn: Connection, built: DeploymentColumns) -> list[DeploymentRef]:
    """Upsert deployments and the commits they shipped; return the deployments whose links may
    have changed: those changed (status, time, …) or new and counting (a successful production
    deployment), and those that shipped a commit not recorded before. A new deployment that does
    not count (failed, staging) cannot change a link; a replayed one returns nothing at all."""
    if not built.refs:
        return []
    cols, links, refs = built.deployments, built.links, built.refs
    changed: set[uuid.UUID] = set()
    inert: set[uuid.UUID] = set()  # new and not counting: it cannot change any link
    for row in await conn.fetch(UPSERT_DEPLOYMENTS, *cols):
        (changed if row["counts"] or row["existed"] else inert).add(row["id"])
    if links[0]:
        changed |= {
            row["deployment_id"] for row in await conn.fetch(INSERT_DEPLOYMENT_COMMITS, *links)
        } - inert
    return [refs[deployment_id] for deployment_id in sorted(changed)]


# A commit's content never changes (its SHA names it), but sources know different parts of it: the
# default-branch history has line counts, a pull request's commit list may not. So a later, less
# complete version never erases what an earlier one stored (COALESCE), like `transform` in a batch.
# The lead-time values live in `commit_deployments` (see `enrichment`): right after this upsert they
# are computed for the rows it inserted or changed (`enrichment.STORE_WRITTEN_COMMITS`, from the
# stored row, so an event without `pull_request_number` cannot make them computed from less), and
# otherwise only by `enrichment.refresh_commits`. Rows inserted or changed are returned
# (`CommitRefresh.written`) with their pull request, whose squash commit is then refreshed.
UPSERT_COMMITS = """
INSERT INTO commits AS c (time, repository_id, commit_sha, organization_id, author_id, committed_at,
                          lines_added, lines_deleted, files_changed, message, is_merge,
                          pull_request_number)
SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::timestamptz[],
                     $7::int[], $8::int[], $9::int[], $10::text[], $11::bool[], $12::int[])
ON CONFLICT (time, repository_id, commit_sha) DO UPDATE SET
    organization_id = EXCLUDED.organization_id, author_id = EXCLUDED.author_id,
    committed_at = COALESCE(EXCLUDED.committed_at, c.committed_at),
    lines_added = COALESCE(EXCLUDED.lines_added, c.lines_added),
    lines_deleted = COALESCE(EXCLUDED.lines_deleted, c.lines_deleted),
    files_changed = COALESCE(EXCLUDED.files_changed, c.files_changed),
    message = COALESCE(EXCLUDED.message, c.message), is_merge = EXCLUDED.is_merge,
    pull_request_number = COALESCE(EXCLUDED.pull_request_number, c.pull_request_number)
WHERE (c.organization_id, c.author_id, c.committed_at, c.lines_added, c.lines_deleted,
       c.files_changed, c.message, c.is_merge, c.pull_request_number)
      IS DISTINCT FROM
      (EXCLUDED.organization_id, EXCLUDED.author_id, COALESCE(EXCLUDED.committed_at, c.committed_at),
       COALESCE(EXCLUDED.lines_added, c.lines_added), COALESCE(EXCLUDED.lines_deleted, c.lines_deleted),
       COALESCE(EXCLUDED.files_changed, c.files_changed), COALESCE(EXCLUDED.message, c.message),
       EXCLUDED.is_merge, COALESCE(EXCLUDED.pull_request_number, c.pull_request_number))
RETURNING c.time, c.repository_id, c.commit_sha, c.pull_request_number
"""


def commit_columns(
    plan: Plan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> list[list[Any]]:
    """The commits' column arrays, in `UPSERT_COMMITS` order (the hot loop: a third of the rows)."""
    cols: list[list[Any]] = empty_columns(12)
    (times, repo_ids, shas, org_ids, authors, committed, added, deleted, files, messages, merges, prs) = cols
    org_id_of = {slug: info.id for slug, info in orgs.items()}
    for staged in plan.commits.values():
        c = staged.data
        times.append(c.authored_at)
        repo_ids.append(repos[staged.repository])  # type: ignore[index]
        shas.append(c.sha)
        org_ids.append(org_id_of[staged.organization])
        authors.append(people[staged.person])  # type: ignore[index]
        committed.append(c.committed_at)
        added.append(clamp(c.additions))
        deleted.append(clamp(c.deletions))
        files.append(clamp(c.files_changed))
        messages.append(text(c.message))
        merges.append(len(c.parents) > 1)
        prs.append(c.pull_request_number)
    return cols


async def commits(conn: Connection, cols: list[list[Any]], refresh: enrichment.CommitRefresh) -> None:
    """Upsert commits and the lead-time values of those written; note in `refresh` the rows
    written and the pull requests they belong to."""
    if not cols[0]:
        return
    for time, repository_id, sha, number in await conn.fetch(UPSERT_COMMITS, *cols):
        append_row(refresh.written, (time, repository_id, sha))
        if number is not None:
            refresh.committed_pull_requests.add((repository_id, number))
    if refresh.written[0]:
        await conn.execute(enrichment.STORE_WRITTEN_COMMITS, *refresh.written)


UPSERT_REVIEWS = """
WITH upserted AS (
INSERT INTO pull_request_reviews AS r (id, organization_id, repository_id, pr_number, external_id,
                                       reviewer_id, state, submitted_at, comments_count)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::uuid[], $7::text[],
                     $8::timestamptz[], $9::int[])
ON CONFLICT (repository_id, external_id) DO UPDATE SET
    pr_number = EXCLUDED.pr_number, reviewer_id = EXCLUDED.reviewer_id, state = EXCLUDED.state,
    submitted_at = EXCLUDED.submitted_at, comments_count = EXCLUDED.comments_count
WHERE (r.pr_number, r.reviewer_id, r.state, r.submitted_at, r.comments_count) IS DISTINCT FROM
      (EXCLUDED.pr_number, EXCLUDED.reviewer_id, EXCLUDED.state, EXCLUDED.submitted_at,
       EXCLUDED.comments_count)
RETURNING r.repository_id, r.pr_number
)
SELECT DISTINCT repository_id, pr_number FROM upserted
"""


def review_columns(
    plan: Plan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> list[list[Any]]:
    cols: list[list[Any]] = empty_columns(9)
    for staged in plan.reviews.values():
        r = staged.data
        repo_id = repos[staged.repository]  # type: ignore[index]
        row = (
            natural_id("review", repo_id, r.review_id),
            orgs[staged.organization].id,
            repo_id,
            r.pull_request_number,
            r.review_id,
            people[staged.person] if staged.person is not None else None,
            r.state,
            r.submitted_at,
            clamp(r.comments_count),
        )
        append_row(cols, row)
    return cols


async def reviews(conn: Connection, cols: list[list[Any]]) -> list[tuple[uuid.UUID, int]]:
    """Upsert reviews; return the (repository, number) of the pull requests whose reviews changed."""
    if not cols[0]:
        return []
    rows = await conn.fetch(UPSERT_REVIEWS, *cols)
    return sorted({(row["repository_id"], row["pr_number"]) for row in rows})


PR_STATE_RANK_SQL = "CASE {0} WHEN 'merged' THEN 2 WHEN 'closed' THEN 1 ELSE 0 END"
# Returns the pull requests inserted or changed, and whether their first deployment changed (the
# `previous` snapshot is the table before this statement): their commits inherit it.
UPSERT_PULL_REQUESTS = f"""
WITH previous AS (
    SELECT p.repository_id, p.pr_number, p.first_deployment_id, p.first_deployed_at
    FROM unnest($2::uuid[], $3::int[]) AS k(repository_id, pr_number)
    JOIN pull_requests p ON p.repository_id = k.repository_id AND p.pr_number = k.pr_number
), upserted AS (
INSERT INTO pull_requests AS p (time, repository_id, pr_number, organization_id, author_id, title, state,
                                merged_at, closed_at, first_commit_at, merge_commit_sha, head_branch,
                                base_branch, lines_added, lines_deleted, files_changed, commits_count,
                                review_comments, updated_at, first_review_at, reviews_count,
                                first_deployment_id, first_deployed_at)
SELECT v.*, rv.first_review_at, rv.reviews_count, f.id, f.finished_at
FROM unnest($1::timestamptz[], $2::uuid[], $3::int[], $4::uuid[], $5::uuid[], $6::text[], $7::text[],
            $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[],
            $13::text[], $14::int[], $15::int[], $16::int[], $17::int[], $18::int[], $19::timestamptz[])
     AS v(time, repository_id, pr_number, organization_id, author_id, title, state, merged_at,
          closed_at, first_commit_at, merge_commit_sha, head_branch, base_branch, lines_added,
          lines_deleted, files_changed, commits_count, review_comments, updated_at)
CROSS JOIN LATERAL ({
    enrichment.REVIEW_STATS.format(repo="v.repository_id", number="v.pr_number", author="v.author_id")
}) rv
LEFT JOIN LATERAL ({
    enrichment.FIRST_DEPLOYMENT.format(org="v.organization_id", sha="v.merge_commit_sha")
}) f ON true
ON CONFLICT (time, repository_id, pr_number) DO UPDATE SET
    organization_id = EXCLUDED.organization_id, author_id = EXCLUDED.author_id, title = EXCLUDED.title,
    state = EXCLUDED.state, merged_at = EXCLUDED.merged_at, closed_at = EXCLUDED.closed_at,
    first_commit_at = EXCLUDED.first_commit_at, merge_commit_sha = EXCLUDED.merge_commit_sha,
    head_branch = EXCLUDED.head_branch, base_branch = EXCLUDED.base_branch,
    lines_added = EXCLUDED.lines_added, lines_deleted = EXCLUDED.lines_deleted,
    files_changed = EXCLUDED.files_changed, commits_count = EXCLUDED.commits_count,
    review_comments = EXCLUDED.review_comments, updated_at = EXCLUDED.updated_at,
    first_review_at = EXCLUDED.first_review_at, reviews_count = EXCLUDED.reviews_count,
    first_deployment_id = EXCLUDED.first_deployment_id, first_deployed_at = EXCLUDED.first_deployed_at
WHERE (COALESCE(EXCLUDED.updated_at, EXCLUDED.time), {PR_STATE_RANK_SQL.format("EXCLUDED.state")})
        >= (COALESCE(p.updated_at, p.time), {PR_STATE_RANK_SQL.format("p.state")})
  AND (p.organization_id, p.author_id, p.title, p.state, p.merged_at, p.closed_at, p.first_commit_at,
       p.merge_commit_sha, p.head_branch, p.base_branch, p.lines_added, p.lines_deleted,
       p.files_changed, p.commits_count, p.review_comments, p.updated_at, p.first_review_at,
       p.reviews_count, p.first_deployment_id, p.first_deployed_at)
      IS DISTINCT FROM
      (EXCLUDED.organization_id, EXCLUDED.author_id, EXCLUDED.title, EXCLUDED.state, EXCLUDED.merged_at,
       EXCLUDED.closed_at, EXCLUDED.first_commit_at, EXCLUDED.merge_commit_sha, EXCLUDED.head_branch,
       EXCLUDED.base_branch, EXCLUDED.lines_added, EXCLUDED.lines_deleted, EXCLUDED.files_changed,
       EXCLUDED.commits_count, EXCLUDED.review_comments, EXCLUDED.updated_at, EXCLUDED.first_review_at,
       EXCLUDED.reviews_count, EXCLUDED.first_deployment_id, EXCLUDED.first_deployed_at)
RETURNING p.repository_id, p.pr_number, p.first_deployment_id, p.first_deployed_at
)
SELECT u.repository_id, u.pr_number,
       (u.first_deployment_id, u.first_deployed_at)
           IS DISTINCT FROM (o.first_deployment_id, o.first_deployed_at) AS deployment_changed
FROM upserted u LEFT JOIN previous o USING (repository_id, pr_number)
"""  # noqa: S608 - composed of constants only


def pull_request_columns(
    plan: Plan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> list[list[Any]]:
    cols: list[list[Any]] = empty_columns(19)
    for staged in plan.pull_requests.values():
        p = staged.data
        row = (
            p.created_at,
            repos[staged.repository],  # type: ignore[index]
            p.number,
            orgs[staged.organization].id,
            people[staged.person],  # type: ignore[index]
            text(p.title),
            p.state,
            p.merged_at,
            p.closed_at,
            p.first_commit_at,
            p.merge_commit_sha,
            text(p.head_branch, 255),
            text(p.base_branch, 255),
            clamp(p.additions),
            clamp(p.deletions),
            clamp(p.changed_files),
            len(p.commit_shas) or None,
            clamp(p.review_comments),
            p.updated_at,
        )
        append_row(cols, row)
    return cols


async def pull_requests(conn: Connection, cols: list[list[Any]], refresh: enrichment.CommitRefresh) -> None:
    """Upsert pull requests; note in `refresh` those inserted or changed (their merge commit may
    be represented now) and those whose first deployment changed (their commits inherit it)."""
    if not cols[0]:
        return
    for row in await conn.fetch(UPSERT_PULL_REQUESTS, *cols):
        key = (row["repository_id"], row["pr_number"])
        refresh.pull_requests.add(key)
        if row["deployment_changed"]:
            refresh.deployed_pull_requests.add(key)


# --- work items ---------------------------------------------------------------------------------

UPSERT_ISSUES = """
INSERT INTO issues AS i (id, organization_id, source, external_id, key, project, title, issue_type,
                         status, status_category, priority, assignee_id, story_points, labels,
                         components, linked_issues, created_at, updated_at, resolved_at, url)
SELECT v.id, v.organization_id, v.source, v.external_id, v.key, v.project, v.title, v.issue_type,
       v.status, v.status_category, v.priority, v.assignee_id, v.story_points,
       ARRAY(SELECT jsonb_array_elements_text(v.labels::jsonb)),
       ARRAY(SELECT jsonb_array_elements_text(v.components::jsonb)),
       ARRAY(SELECT jsonb_array_elements_text(v.linked_issues::jsonb)),
       v.created_at, v.updated_at, v.resolved_at, v.url
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::float8[], $14::text[],
            $15::text[], $16::text[], $17::timestamptz[], $18::timestamptz[], $19::timestamptz[],
            $20::text[])
     AS v(id, organization_id, source, external_id, key, project, title, issue_type, status,
          status_category, priority, assignee_id, story_points, labels, components, linked_issues,
          created_at, updated_at, resolved_at, url)
ON CONFLICT (organization_id, source, external_id) DO UPDATE SET
    key = EXCLUDED.key, project = EXCLUDED.project, title = EXCLUDED.title,
    issue_type = EXCLUDED.issue_type, status = EXCLUDED.status,
    status_category = EXCLUDED.status_category, priority = EXCLUDED.priority,
    assignee_id = EXCLUDED.assignee_id, story_points = EXCLUDED.story_points, labels = EXCLUDED.labels,
    components = EXCLUDED.components, linked_issues = EXCLUDED.linked_issues,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
    resolved_at = EXCLUDED.resolved_at, url = EXCLUDED.url
WHERE (i.updated_at IS NULL OR COALESCE(EXCLUDED.updated_at, EXCLUDED.created_at) >= i.updated_at)
  AND (i.key, i.project, i.title, i.issue_type, i.status, i.status_category, i.priority,
       i.assignee_id, i.story_points, i.labels, i.components, i.linked_issues, i.created_at,
       i.updated_at, i.resolved_at, i.url)
      IS DISTINCT FROM
      (EXCLUDED.key, EXCLUDED.project, EXCLUDED.title, EXCLUDED.issue_type, EXCLUDED.status,
       EXCLUDED.status_category, EXCLUDED.priority, EXCLUDED.assignee_id, EXCLUDED.story_points,
       EXCLUDED.labels, EXCLUDED.components, EXCLUDED.linked_issues, EXCLUDED.created_at,
       EXCLUDED.updated_at, EXCLUDED.resolved_at, EXCLUDED.url)
RETURNING i.id
"""
# A transition or sprint may name an issue before the issue's own event arrives (independent
# topics): a placeholder row (no title, `updated_at` NULL) holds the foreign key until the issue
# event overwrites it — the guard above lets any real version replace a placeholder.
INSERT_ISSUE_PLACEHOLDERS = """
INSERT INTO issues (id, organization_id, source, external_id, project, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
ON CONFLICT (organization_id, source, external_id) DO NOTHING
"""


def _json_list(values: Sequence[str], limit: int = 255) -> str:
    return orjson.dumps([v[:limit] for v in values]).decode()


def work_item_columns(
    plan: Plan, orgs: dict[str, OrganizationInfo], people: dict[PersonKey, uuid.UUID]
) -> list[list[Any]]:
    cols: list[list[Any]] = empty_columns(20)
    for (org, source, external_id), staged in plan.work_items.items():
        w = staged.data
        org_id = orgs[org].id
        row = (
            issue_id(org_id, source, external_id),
            org_id,
            source,
            external_id,
            w.key,
            w.project,
            text(w.title),
            w.issue_type,
            w.status,
            w.status_category,
            w.priority,
            people[staged.person] if staged.person is not None else None,
            min(w.story_points, STORY_POINTS_MAX) if w.story_points is not None else None,
            _json_list(w.labels),
            _json_list(w.components),
            _json_list(w.linked_issues),
            w.created_at,
            w.updated_at,
            w.resolved_at,
            w.url,
        )
        append_row(cols, row)
    return cols


async def work_items(conn: Connection, cols: list[list[Any]]) -> list[uuid.UUID]:
    """Upsert issues; return the ids of rows that changed (their sprints' points follow them)."""
    if not cols[0]:
        return []
    rows = await conn.fetch(UPSERT_ISSUES, *cols)
    return [row["id"] for row in rows]


async def issue_placeholders(conn: Connection, plan: Plan, orgs: dict[str, OrganizationInfo]) -> None:
    """Placeholder rows for issues named by transitions or sprints but not (yet) stored; their
    creation time is the first fact at hand (the transition, the sprint's start, or when the
    sprint was collected), and the issue's own event replaces it."""
    wanted: dict[tuple[str, str, str], tuple[str, Any]] = {}
    for ((org, source, issue), _), staged in plan.transitions.items():
        wanted.setdefault((org, source, issue), (staged.data.project, staged.data.transitioned_at))
    for (org, source, _), sprint in plan.sprints.items():
        s = sprint.data
        when = s.start_at or s.end_at or s.completed_at or sprint.collected_at
        for issue in (*s.issue_ids, *s.completed_issue_ids):
            wanted.setdefault((org, source, issue), (s.project, when))
    keys = sorted(k for k in wanted if k not in plan.work_items)
    if not keys:
        return
    org_ids = [orgs[o].id for o, _, _ in keys]
    await conn.execute(
        INSERT_ISSUE_PLACEHOLDERS,
        [issue_id(org_id, s, e) for org_id, (_, s, e) in zip(org_ids, keys, strict=True)],
        org_ids,
        [s for _, s, _ in keys],
        [e[:255] for _, _, e in keys],
        [wanted[k][0] for k in keys],
        [wanted[k][1] for k in keys],
    )


# Issue ids are natural (`natural_id("issue", org, source, external_id)`), so transitions and sprint
# members name their issue directly; the placeholders above guarantee it exists.
UPSERT_TRANSITIONS = """
WITH upserted AS (
INSERT INTO issue_transitions AS t (id, organization_id, issue_id, external_id, from_status, to_status,
                                    from_category, to_category, transitioned_at, author_id)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::timestamptz[], $10::uuid[])
ON CONFLICT (issue_id, external_id) DO UPDATE SET
    from_status = EXCLUDED.from_status, to_status = EXCLUDED.to_status,
    from_category = EXCLUDED.from_category, to_category = EXCLUDED.to_category,
    transitioned_at = EXCLUDED.transitioned_at, author_id = EXCLUDED.author_id
WHERE (t.from_status, t.to_status, t.from_category, t.to_category, t.transitioned_at, t.author_id)
      IS DISTINCT FROM
      (EXCLUDED.from_status, EXCLUDED.to_status, EXCLUDED.from_category, EXCLUDED.to_category,
       EXCLUDED.transitioned_at, EXCLUDED.author_id)
RETURNING t.issue_id
)
SELECT DISTINCT issue_id FROM upserted
"""


def issue_id(org_id: uuid.UUID, source: str, external_id: str) -> uuid.UUID:
    return natural_id("issue", org_id, source, external_id)


def transition_columns(
    plan: Plan, orgs: dict[str, OrganizationInfo], people: dict[PersonKey, uuid.UUID]
) -> list[list[Any]]:
    cols: list[list[Any]] = empty_columns(10)
    for ((org, source, issue), transition_id), staged in plan.transitions.items():
        t = staged.data
        org_id = orgs[org].id
        row = (
            natural_id("transition", org_id, source, issue, transition_id),
            org_id,
            issue_id(org_id, source, issue),
            transition_id[:255],
            text(t.from_status, 100),
            text(t.to_status, 100),
            t.from_category,
            t.to_category,
            t.transitioned_at,
            people[staged.person] if staged.person is not None else None,
        )
        append_row(cols, row)
    return cols


async def transitions(conn: Connection, cols: list[list[Any]]) -> list[uuid.UUID]:
    """Upsert transitions; return the issues whose history changed."""
    if not cols[0]:
        return []
    rows = await conn.fetch(UPSERT_TRANSITIONS, *cols)
    return sorted({row["issue_id"] for row in rows})


UPSERT_SPRINTS = """
INSERT INTO sprints AS s (id, organization_id, source, external_id, board, name, state, start_at, end_at,
                          completed_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
ON CONFLICT (organization_id, source, external_id) DO UPDATE SET
    board = EXCLUDED.board, name = EXCLUDED.name, state = EXCLUDED.state, start_at = EXCLUDED.start_at,
    end_at = EXCLUDED.end_at, completed_at = EXCLUDED.completed_at
WHERE (s.board, s.name, s.state, s.start_at, s.end_at, s.completed_at) IS DISTINCT FROM
      (EXCLUDED.board, EXCLUDED.name, EXCLUDED.state, EXCLUDED.start_at, EXCLUDED.end_at,
       EXCLUDED.completed_at)
"""
# Membership follows the sprint's latest event: issues no longer listed leave the sprint.
DELETE_SPRINT_ISSUES = """
DELETE FROM sprint_issues si
WHERE si.sprint_id = ANY($1::uuid[])
  AND (si.sprint_id, si.issue_id) NOT IN (SELECT * FROM unnest($2::uuid[], $3::uuid[]))
"""
UPSERT_SPRINT_ISSUES = """
INSERT INTO sprint_issues AS si (sprint_id, issue_id, story_points, completed_in_sprint)
SELECT m.sprint_id, m.issue_id, i.story_points, m.completed
FROM unnest($1::uuid[], $2::uuid[], $3::bool[]) AS m(sprint_id, issue_id, completed)
JOIN issues i ON i.id = m.issue_id
ON CONFLICT (sprint_id, issue_id) DO UPDATE SET
    story_points = EXCLUDED.story_points, completed_in_sprint = EXCLUDED.completed_in_sprint
WHERE (si.story_points, si.completed_in_sprint)
      IS DISTINCT FROM (EXCLUDED.story_points, EXCLUDED.completed_in_sprint)
"""
SYNC_SPRINT_POINTS = """
UPDATE sprint_issues si SET story_points = i.story_points
FROM issues i
WHERE i.id = ANY($1::uuid[]) AND si.issue_id = i.id AND si.story_points IS DISTINCT FROM i.story_points
"""


async def sprints(conn: Connection, plan: Plan, orgs: dict[str, OrganizationInfo]) -> None:
    if not plan.sprints:
        return
    cols: list[list[Any]] = empty_columns(10)
    members: list[list[Any]] = [[], [], []]
    for (org, source, external_id), staged in plan.sprints.items():
        s = staged.data
        org_id = orgs[org].id
        sprint_id = natural_id("sprint", org_id, source, external_id)
        row = (
            sprint_id,
            org_id,
            source,
            external_id,
            text(s.board, 255),
            s.name,
            s.state,
            s.start_at,
            s.end_at,
            s.completed_at,
        )
        append_row(cols, row)
        completed = set(s.completed_issue_ids)
        for issue in sorted({*s.issue_ids, *completed}):
            append_row(members, (sprint_id, issue_id(org_id, source, issue), issue in completed))
    await conn.execute(UPSERT_SPRINTS, *cols)
    await conn.execute(DELETE_SPRINT_ISSUES, cols[0], members[0], members[1])
    if members[0]:
        await conn.execute(UPSERT_SPRINT_ISSUES, *members)


async def sync_sprint_points(conn: Connection, issue_ids: Sequence[uuid.UUID]) -> None:
    if issue_ids:
        await conn.execute(SYNC_SPRINT_POINTS, list(issue_ids))


# --- incidents ----------------------------------------------------------------------------------

UPSERT_INCIDENTS = """
INSERT INTO incidents AS i (id, organization_id, source, external_id, title, severity, service, created_at,
                            resolved_at, deployment_ref, commit_sha_ref, url)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[], $12::text[])
ON CONFLICT (organization_id, source, external_id) DO UPDATE SET
    title = EXCLUDED.title, severity = EXCLUDED.severity, service = EXCLUDED.service,
    created_at = EXCLUDED.created_at, resolved_at = EXCLUDED.resolved_at,
    deployment_ref = EXCLUDED.deployment_ref, commit_sha_ref = EXCLUDED.commit_sha_ref, url = EXCLUDED.url
WHERE COALESCE(EXCLUDED.resolved_at, EXCLUDED.created_at) >= COALESCE(i.resolved_at, i.created_at)
  AND (i.title, i.severity, i.service, i.created_at, i.resolved_at, i.deployment_ref, i.commit_sha_ref, i.url)
      IS DISTINCT FROM
      (EXCLUDED.title, EXCLUDED.severity, EXCLUDED.service, EXCLUDED.created_at, EXCLUDED.resolved_at,
       EXCLUDED.deployment_ref, EXCLUDED.commit_sha_ref, EXCLUDED.url)
RETURNING i.id
"""


async def incidents(conn: Connection, plan: Plan, orgs: dict[str, OrganizationInfo]) -> list[uuid.UUID]:
    """Upsert incidents; return those that changed (their attribution is re-derived)."""
    if not plan.incidents:
        return []
    cols: list[list[Any]] = empty_columns(12)
    for (org, source, external_id), staged in plan.incidents.items():
        n = staged.data
        org_id = orgs[org].id
        row = (
            natural_id("incident", org_id, source, external_id),
            org_id,
            source,
            external_id,
            text(n.title),
            n.severity,
            n.service,
            n.created_at,
            n.resolved_at,
            n.deployment_ref,
            n.commit_sha,
            n.url,
        )
        append_row(cols, row)
    return [row["id"] for row in await conn.fetch(UPSERT_INCIDENTS, *cols)]


# --- the whole batch ----------------------------------------------------------------------------

T = TypeVar("T")
U = TypeVar("U")


async def overlapped(statement: Coroutine[Any, Any, T], build: Callable[[], U]) -> tuple[T, U]:
    """Run `statement` (a database round trip) and, while the database executes it, `build`
    (Python work the next statement needs); return both results.

    asyncpg encodes and sends a statement before its first wait, so once the statement's task
    has run one step the connection is busy in PostgreSQL and this process is free: building the
    next statement's column arrays then costs the batch no time. (One connection runs one
    statement at a time: only Python work may overlap, never a second statement.)"""
    task = asyncio.ensure_future(statement)
    await asyncio.sleep(0)  # the task runs up to its first wait: the statement is on its way
    try:
        built = build()
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    return await task, built


# Replicas store their batches concurrently, and each side of a link is computed from what is
# *committed* when its statement runs: a deployment stored by one replica and the commits it shipped
# stored at the same time by another would each miss the other, and the link would be lost. So a
# batch takes a transaction-scoped lock per organization it touches (organizations sorted: no
# deadlock), before anything it computes a link from: the next holder starts after this one has
# committed and sees all of it. Links never cross organizations, so organizations stay parallel.
LOCK_ORGANIZATIONS = """
SELECT pg_advisory_xact_lock(1685025377, hashtext(id::text)) FROM unnest($1::uuid[]) AS id
"""  # 1685025377 is b"dora" read as an integer: the key space of these locks


async def store(conn: Connection, plan: Plan, *, lookups: Lookups, attribution_window: timedelta) -> Changes:
    """Write one batch inside the caller's transaction; return what changed for the caches.

    Order matters only within the batch (each side of a link re-derives from what is stored):
    deployments, then reviews, then pull requests (and their relinking), then commits, so each
    insert-time look-up sees everything of this batch it depends on — commits inherit their pull
    request's deployment, so the commits written here need no refresh for it; the commits'
    refresh last, when everything it reads is stored; issues before transitions and sprints.
    """
    changes = Changes()
    orgs = await organizations(conn, plan.organizations, lookups)
    changes.organizations = {info.id for info in orgs.values()}
    await conn.execute(LOCK_ORGANIZATIONS, sorted(changes.organizations))  # unnest keeps the order
    repos = await repositories(conn, plan, orgs, lookups)
    changes.repositories = set(repos.values())
    people = await developers(conn, plan.persons, orgs, lookups)
    changes.developers = set(people.values())
    await refs.store(conn, plan.refs, orgs, repos, people)

    # Each statement's column arrays are built while the database runs the statement before it
    # (`overlapped`): the order of the statements is the one described above.
    deployed, review_cols = await overlapped(
        deployments(conn, deployment_columns(plan, orgs, repos, people)),
        lambda: review_columns(plan, orgs, repos, people),
    )
    refresh = enrichment.CommitRefresh(deployments={d.id for d in deployed})
    reviewed, pull_request_cols = await overlapped(
        reviews(conn, review_cols), lambda: pull_request_columns(plan, orgs, repos, people)
    )
    _, commit_cols = await overlapped(
        pull_requests(conn, pull_request_cols, refresh), lambda: commit_columns(plan, orgs, repos, people)
    )
    if deployed:
        refresh.deployed_pull_requests.update(
            await enrichment.relink_pull_requests(conn, [d.id for d in deployed])
        )
    _, work_item_cols = await overlapped(
        commits(conn, commit_cols, refresh), lambda: work_item_columns(plan, orgs, people)
    )
    reviewed = sorted({*reviewed, *people.merged_pull_requests})
    if reviewed:
        await enrichment.refresh_review_stats(conn, reviewed)
    if refresh:
        await enrichment.refresh_commits(conn, refresh)

    changed_issues, transition_cols = await overlapped(
        work_items(conn, work_item_cols), lambda: transition_columns(plan, orgs, people)
    )
    await issue_placeholders(conn, plan, orgs)
    transitioned = await transitions(conn, transition_cols)
    if transitioned:
        await enrichment.refresh_issue_started(conn, transitioned)
    await sprints(conn, plan, orgs)
    await sync_sprint_points(conn, changed_issues)

    incident_ids = await incidents(conn, plan, orgs)
    if incident_ids or deployed:
        windows = {
            info.id: enrichment.attribution_window_of(info.settings, attribution_window)
            for info in orgs.values()
        }
        changes.repositories |= await enrichment.attribute_incidents(conn, incident_ids, deployed, windows)

    changes.rollups = bool(plan.commits or plan.deployments)
    return changes
