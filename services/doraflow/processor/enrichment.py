"""Enrich: the links between facts that arrive on independent topics, kept order-independent.

A deployment may arrive before the commits it shipped, a pull request before its merge commit, an
incident before the deployment that caused it, a review before its pull request. Each derived value
is therefore a *function of the stored facts*, recomputed on both sides of the link in set-based SQL.
The lead-time columns mean exactly what `doraflow.metrics.enrichment` specifies (the definition
lives there, with a full recomputation and a consistency check; this module maintains the same
values incrementally, batch by batch):

* `pull_requests.first_deployment_id / first_deployed_at` — the first successful production
  deployment (earliest `finished_at`, then lowest id) that shipped the merge or squash commit, i.e.
  listed it in `deployment_commits` (its `commit_shas` plus its `revision`), matched by SHA within
  the organization. Computed when the pull request is stored and again for the pull requests whose
  merge commit a changed deployment shipped.
* `commit_deployments.first_deployment_id / first_deployed_at` (a commit's) — the earlier of the
  commit's own first deployment and its pull request's (`pull_request_number`): squash-merged branch
  commits never appear in a deployment, their content shipped with the squash commit.
* `commit_deployments.represented_by_pull_request` — the merge or squash commit of a pull request
  whose own commits are stored (their work is counted through them).
* `pull_requests.first_review_at / reviews_count` — reviews by anyone but the author.
* `issues.started_at` — the first transition into an `in_progress` category.
* `incidents.deployment_id / attribution` — `doraflow.metrics.attribute_incidents` (the one
  definition) over the organization's stored production deployments, re-run for the incidents a
  batch's incidents or deployments can affect.

A commit's three values live in the narrow table `commit_deployments` (migration 0008), one row
per commit that has a first deployment or is represented — any other commit has the defaults (NULL,
NULL, false) and no row. They used to be columns of `commits`, but a deployment usually arrives
after the commits it shipped (a Kafka backlog), and setting `first_deployed_at` — indexed for lead
time — on the wide commit row was a non-HOT update: a new commit tuple plus entries in all 6 other
indexes of `commits`. That refresh was 25% of the store step (`benchmarks.processor_store`);
inserting the same facts into the narrow table costs 4.5x less (20k rows: 865 ms vs 190 ms).

The values are computed for the commits an upsert wrote, right after it (`STORE_WRITTEN_COMMITS`),
and recomputed (`refresh_commits`) when a deployment that shipped them changed, when their pull
request's deployment changed, or when the pull request or its other commits arrived. Both go
through `STORE_COMMIT_DEPLOYMENTS`: an upsert of the rows whose values are not the defaults and a
delete of those whose values became the defaults. Because each value is recomputed from the stored
state and never accumulated, the result is the same for any arrival order, and replaying events
recomputes identical values — and writes nothing: the upsert is guarded by `IS DISTINCT FROM`, the
delete finds no row, and both run only for commits an upsert actually changed.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from doraflow.core.resources import parse_duration
from doraflow.metrics import AttributionMethod, production_deployments
from doraflow.metrics import Deployment as DeploymentRecord
from doraflow.metrics import Incident as IncidentRecord
from doraflow.metrics import attribute_incidents as attribute
from doraflow.processor.columns import empty_columns

if TYPE_CHECKING:
    from doraflow.processor.storage import DeploymentRef

logger = logging.getLogger(__name__)

Connection = Any  # asyncpg.Connection

# `{org}`, `{repo}`, `{sha}`: SQL expressions of the row the look-up is for (a LATERAL subquery).
# `{org}`, `{sha}`: SQL expressions of the row the look-up is for (a LATERAL subquery). The
# deployment is read in a subquery fenced by `OFFSET 0` that can only use the primary key: right
# after a fresh start the tables have no statistics and, left free, the planner would start from a
# partial index of production deployments and scan all of them for every commit.
FIRST_DEPLOYMENT = """
SELECT d.id, d.finished_at
FROM deployment_commits dc
CROSS JOIN LATERAL (
    SELECT d.id, d.finished_at, d.organization_id, d.status, d.is_production
    FROM deployments d WHERE d.id = dc.deployment_id OFFSET 0
) d
WHERE dc.commit_sha = {sha} AND d.organization_id = {org}
  AND d.status = 'success' AND d.is_production AND d.finished_at IS NOT NULL
ORDER BY d.finished_at, d.id
LIMIT 1
"""

# `{org}`, `{repo}`, `{sha}`, `{number}` (the commit's `pull_request_number`): the three lead-time
# columns of one commit, as `doraflow.metrics.enrichment` defines them.
COMMIT_ENRICHMENT = f"""
SELECT CASE WHEN pr.finished_at < own.finished_at OR own.finished_at IS NULL THEN pr.id ELSE own.id END
           AS first_deployment_id,
       CASE WHEN pr.finished_at < own.finished_at OR own.finished_at IS NULL THEN pr.finished_at
            ELSE own.finished_at END AS first_deployed_at,
       EXISTS (
           SELECT 1 FROM pull_requests m
           WHERE m.repository_id = {{repo}} AND m.merge_commit_sha = {{sha}}
             AND ({{number}} IS NULL OR {{number}} = m.pr_number)
             AND EXISTS (
                 SELECT 1 FROM commits o
                 WHERE o.repository_id = m.repository_id AND o.pull_request_number = m.pr_number
                   AND NOT o.is_merge AND o.commit_sha <> m.merge_commit_sha)
       ) AS represented
FROM (SELECT 1) AS one
LEFT JOIN LATERAL ({FIRST_DEPLOYMENT.format(org="{org}", sha="{sha}")}) own ON true
LEFT JOIN LATERAL (
    SELECT p.first_deployment_id AS id, p.first_deployed_at AS finished_at
    FROM pull_requests p
    WHERE p.repository_id = {{repo}} AND p.pr_number = {{number}} AND p.first_deployed_at IS NOT NULL
    LIMIT 1
) pr ON true
"""  # noqa: S608 - composed of constants only

REVIEW_STATS = """
SELECT min(r.submitted_at) AS first_review_at, count(*)::int AS reviews_count
FROM pull_request_reviews r
WHERE r.repository_id = {repo} AND r.pr_number = {number} AND r.reviewer_id IS DISTINCT FROM {author}
"""

# The commits a set of deployments ($1) shipped, computed first (`OFFSET 0`): without statistics
# the planner would otherwise join the commits with the deployments of their organization first —
# millions of rows — and only then filter by the shipped SHAs.
SHIPPED = """
SELECT DISTINCT d.organization_id, dc.commit_sha
FROM deployment_commits dc
JOIN deployments d ON d.id = dc.deployment_id
WHERE dc.deployment_id = ANY($1::uuid[])
OFFSET 0
"""

# `{label}` names the statement (as `benchmarks.processor_store` lists it); `{candidates}`: a query
# of commits `t` (time, repository_id, commit_sha, organization_id, pull_request_number, is_merge),
# each at most once. Their lead-time values are recomputed from the stored facts and written to
# `commit_deployments`: rows whose values are not the defaults are upserted, and only when something
# differs (a replay writes nothing); rows whose values became the defaults (no deployment, not
# represented) are deleted. Both parts read one snapshot and touch disjoint keys.
STORE_COMMIT_DEPLOYMENTS = f"""-- commit_deployments {{label}}
WITH computed AS MATERIALIZED (
    SELECT t.repository_id, t.time, t.commit_sha, t.organization_id, t.is_merge, e.*
    FROM ({{candidates}}) t
    CROSS JOIN LATERAL ({
    COMMIT_ENRICHMENT.format(
        org="t.organization_id", repo="t.repository_id", sha="t.commit_sha", number="t.pull_request_number"
    )
    .replace("{", "{{")
    .replace("}", "}}")
}) e
), upserted AS (
    INSERT INTO commit_deployments AS cd (repository_id, time, commit_sha, organization_id, is_merge,
                                          first_deployment_id, first_deployed_at,
                                          represented_by_pull_request)
    SELECT repository_id, time, commit_sha, organization_id, is_merge, first_deployment_id,
           first_deployed_at, represented
    FROM computed
    WHERE first_deployed_at IS NOT NULL OR represented
    ON CONFLICT (repository_id, time, commit_sha) DO UPDATE SET
        organization_id = EXCLUDED.organization_id, is_merge = EXCLUDED.is_merge,
        first_deployment_id = EXCLUDED.first_deployment_id, first_deployed_at = EXCLUDED.first_deployed_at,
        represented_by_pull_request = EXCLUDED.represented_by_pull_request
    WHERE (cd.organization_id, cd.is_merge, cd.first_deployment_id, cd.first_deployed_at,
           cd.represented_by_pull_request)
          IS DISTINCT FROM
          (EXCLUDED.organization_id, EXCLUDED.is_merge, EXCLUDED.first_deployment_id,
           EXCLUDED.first_deployed_at, EXCLUDED.represented_by_pull_request)
)
DELETE FROM commit_deployments cd
USING computed s
WHERE cd.repository_id = s.repository_id AND cd.time = s.time AND cd.commit_sha = s.commit_sha
  AND s.first_deployed_at IS NULL AND NOT s.represented
"""  # noqa: S608 - composed of constants only

_COMMIT = "c2.time, c2.repository_id, c2.commit_sha, c2.organization_id, c2.pull_request_number, c2.is_merge"

# The commits a batch's upsert inserted or changed ($1-$3): computed once everything of the batch
# they depend on (its deployments and pull requests, its other commits) is stored.
STORE_WRITTEN_COMMITS = STORE_COMMIT_DEPLOYMENTS.format(
    label="of the commits an upsert wrote",
    candidates=f"""
    SELECT {_COMMIT}
    FROM unnest($1::timestamptz[], $2::uuid[], $3::text[]) AS w(time, repository_id, commit_sha)
    JOIN commits c2
      ON c2.time = w.time AND c2.repository_id = w.repository_id AND c2.commit_sha = w.commit_sha
""",  # noqa: S608 - composed of constants only
)

REFRESH_COMMITS = STORE_COMMIT_DEPLOYMENTS.format(
    label="refresh",
    candidates=f"""
    WITH written AS (SELECT * FROM unnest($7::timestamptz[], $8::uuid[], $9::text[]))
    SELECT {_COMMIT}
    FROM ({SHIPPED}) s
    JOIN commits c2 ON c2.commit_sha = s.commit_sha AND c2.organization_id = s.organization_id
    WHERE (c2.time, c2.repository_id, c2.commit_sha) NOT IN (SELECT * FROM written)
    UNION
    SELECT {_COMMIT}
    FROM unnest($2::uuid[], $3::int[]) AS a(repository_id, pr_number)
    JOIN commits c2 ON c2.repository_id = a.repository_id AND c2.pull_request_number = a.pr_number
    WHERE (c2.time, c2.repository_id, c2.commit_sha) NOT IN (SELECT * FROM written)
    UNION
    SELECT {_COMMIT}
    FROM unnest($4::uuid[], $5::int[], $6::bool[]) AS a(repository_id, pr_number, any_state)
    JOIN pull_requests p ON p.repository_id = a.repository_id AND p.pr_number = a.pr_number
    JOIN commits c2 ON c2.repository_id = p.repository_id AND c2.commit_sha = p.merge_commit_sha
    LEFT JOIN commit_deployments r
           ON r.repository_id = c2.repository_id AND r.time = c2.time AND r.commit_sha = c2.commit_sha
    WHERE a.any_state OR NOT coalesce(r.represented_by_pull_request, false)
""",  # noqa: S608 - composed of constants only
)


RELINK_PULL_REQUESTS = f"""
UPDATE pull_requests p SET first_deployment_id = s.id, first_deployed_at = s.finished_at
FROM (
    SELECT t.time, t.repository_id, t.pr_number, f.id, f.finished_at
    FROM (
        SELECT DISTINCT p2.time, p2.repository_id, p2.pr_number, p2.organization_id, p2.merge_commit_sha
        FROM ({SHIPPED}) s
        JOIN pull_requests p2 ON p2.merge_commit_sha = s.commit_sha AND p2.organization_id = s.organization_id
    ) t
    LEFT JOIN LATERAL ({FIRST_DEPLOYMENT.format(org="t.organization_id", sha="t.merge_commit_sha")}) f ON true
) s
WHERE p.time = s.time AND p.repository_id = s.repository_id AND p.pr_number = s.pr_number
  AND (p.first_deployment_id IS DISTINCT FROM s.id OR p.first_deployed_at IS DISTINCT FROM s.finished_at)
RETURNING p.repository_id, p.pr_number
"""  # noqa: S608 - composed of constants only


async def relink_pull_requests(
    conn: Connection, deployment_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, int]]:
    """The deployment side of the pull-request link, for deployments that changed (whatever their
    status now: one that turned out failed must release what it was credited with). Returns the
    pull requests whose first deployment changed (their commits follow)."""
    rows = await conn.fetch(RELINK_PULL_REQUESTS, list(deployment_ids))
    return [(row["repository_id"], row["pr_number"]) for row in rows]


@dataclass(slots=True)
class CommitRefresh:
    """Which commits a batch may have changed the lead-time columns of, by cause."""

    deployments: set[uuid.UUID] = field(default_factory=set)  # changed: the commits they shipped
    deployed_pull_requests: set[tuple[uuid.UUID, int]] = field(default_factory=set)  # their commits
    pull_requests: set[tuple[uuid.UUID, int]] = field(default_factory=set)  # changed: their merge commit
    # Pull requests that got commits: their merge commit, unless already represented (more commits
    # cannot make it less so).
    committed_pull_requests: set[tuple[uuid.UUID, int]] = field(default_factory=set)
    # Commits the batch's upsert inserted or changed, *after* this batch's deployments and pull
    # requests were stored: their own and inherited deployments were computed from the current
    # state, so the first two causes skip them (only the merge-commit flag can still change).
    # As column arrays (authored time, repository, sha): they go to the database as parameters.
    written: list[list[Any]] = field(default_factory=lambda: empty_columns(3))

    def __bool__(self) -> bool:
        return bool(
            self.deployments
            or self.deployed_pull_requests
            or self.pull_requests
            or self.committed_pull_requests
        )


async def refresh_commits(conn: Connection, refresh: CommitRefresh) -> None:
    """Recompute the lead-time values of the commits changed deployments shipped, of the commits
    of pull requests whose first deployment changed (they inherit it), and of the merge commits
    of pull requests that changed or got commits (whether their work is represented)."""
    deployed = sorted(refresh.deployed_pull_requests)
    changed = refresh.pull_requests | refresh.deployed_pull_requests
    merged = sorted(changed | refresh.committed_pull_requests)
    await conn.execute(
        REFRESH_COMMITS,
        sorted(refresh.deployments),
        [r for r, _ in deployed],
        [n for _, n in deployed],
        [r for r, _ in merged],
        [n for _, n in merged],
        [key in changed for key in merged],
        *refresh.written,
    )


REFRESH_REVIEW_STATS = f"""
UPDATE pull_requests p SET first_review_at = s.first_review_at, reviews_count = s.reviews_count
FROM (
    SELECT p2.time, p2.repository_id, p2.pr_number, rv.first_review_at, rv.reviews_count
    FROM unnest($1::uuid[], $2::int[]) AS a(repository_id, pr_number)
    JOIN pull_requests p2 ON p2.repository_id = a.repository_id AND p2.pr_number = a.pr_number
    CROSS JOIN LATERAL ({
    REVIEW_STATS.format(repo="p2.repository_id", number="p2.pr_number", author="p2.author_id")
}) rv
) s
WHERE p.time = s.time AND p.repository_id = s.repository_id AND p.pr_number = s.pr_number
  AND (p.first_review_at IS DISTINCT FROM s.first_review_at
      OR p.reviews_count IS DISTINCT FROM s.reviews_count)
"""  # noqa: S608 - composed of constants only


async def refresh_review_stats(conn: Connection, pull_requests: Sequence[tuple[uuid.UUID, int]]) -> None:
    """The review side of `first_review_at` (the pull-request side is in its upsert)."""
    await conn.execute(REFRESH_REVIEW_STATS, [r for r, _ in pull_requests], [n for _, n in pull_requests])


REFRESH_ISSUE_STARTED = """
UPDATE issues i SET started_at = s.started_at
FROM (
    SELECT a.id, (SELECT min(t.transitioned_at) FROM issue_transitions t
                  WHERE t.issue_id = a.id AND t.to_category = 'in_progress') AS started_at
    FROM unnest($1::uuid[]) AS a(id)
) s
WHERE i.id = s.id AND i.started_at IS DISTINCT FROM s.started_at
"""


async def refresh_issue_started(conn: Connection, issue_ids: Sequence[uuid.UUID]) -> None:
    await conn.execute(REFRESH_ISSUE_STARTED, list(issue_ids))


# --- incident attribution ---------------------------------------------------------------------

_INCIDENT_COLUMNS = (
    "i.id, i.organization_id, i.service, i.created_at, i.deployment_ref, i.commit_sha_ref, "
    "i.deployment_id, i.attribution"
)
CANDIDATE_INCIDENTS = f"""
SELECT {_INCIDENT_COLUMNS} FROM incidents i WHERE i.id = ANY($1::uuid[])
UNION
SELECT {_INCIDENT_COLUMNS} FROM incidents i
JOIN unnest($2::uuid[], $3::text[], $4::timestamptz[]) AS s(organization_id, service, since)
  ON i.organization_id = s.organization_id AND i.created_at >= s.since AND i.service = s.service
UNION
SELECT {_INCIDENT_COLUMNS} FROM incidents i
JOIN unnest($5::uuid[], $6::text[]) AS r(organization_id, ref)
  ON i.organization_id = r.organization_id AND i.deployment_ref = r.ref
UNION
SELECT {_INCIDENT_COLUMNS} FROM incidents i
JOIN deployment_commits dc ON dc.commit_sha = i.commit_sha_ref AND dc.deployment_id = ANY($7::uuid[])
JOIN deployments d ON d.id = dc.deployment_id AND d.organization_id = i.organization_id
"""  # noqa: S608 - composed of constants only
RESOLVE_DEPLOYMENT_REFS = """
SELECT r.organization_id, r.ref, d.id, d.service,
       (d.status = 'success' AND d.is_production AND d.finished_at IS NOT NULL) AS counts, d.finished_at
FROM unnest($1::uuid[], $2::text[]) AS r(organization_id, ref)
JOIN deployments d ON d.organization_id = r.organization_id AND (d.external_id = r.ref OR d.id::text = r.ref)
"""
SHIPPING_DEPLOYMENTS = """
SELECT x.organization_id, x.sha, d.id, d.service
FROM unnest($1::uuid[], $2::text[]) AS x(organization_id, sha)
JOIN deployment_commits dc ON dc.commit_sha = x.sha
JOIN deployments d ON d.id = dc.deployment_id AND d.organization_id = x.organization_id
WHERE d.status = 'success' AND d.is_production AND d.finished_at IS NOT NULL
"""
# The production deployments of the services involved, from `$3` on: the attribution window
# before the earliest incident plus a month of history, which is what grouping the rows into
# rollouts needs (the rows of one multi-region rollout are hours apart, not months); loading a
# service's whole history for every batch would grow without bound.
SERVICE_DEPLOYMENTS = """
SELECT d.id, d.organization_id, d.repository_id, d.service, d.environment, d.revision, d.finished_at,
       d.is_hotfix, d.is_rollback
FROM unnest($1::uuid[], $2::text[]) AS s(organization_id, service)
JOIN deployments d ON d.organization_id = s.organization_id AND d.service = s.service
WHERE d.status = 'success' AND d.is_production AND d.finished_at >= $3
UNION
SELECT d.id, d.organization_id, d.repository_id, d.service, d.environment, d.revision, d.finished_at,
       d.is_hotfix, d.is_rollback
FROM deployments d
WHERE d.id = ANY($4::uuid[]) AND d.status = 'success' AND d.is_production AND d.finished_at IS NOT NULL
"""
ROLLOUT_HISTORY = timedelta(days=30)
UPDATE_ATTRIBUTION = """
UPDATE incidents i SET deployment_id = v.deployment_id, attribution = v.attribution
FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS v(id, deployment_id, attribution)
WHERE i.id = v.id AND (i.deployment_id, i.attribution) IS DISTINCT FROM (v.deployment_id, v.attribution)
"""

ATTRIBUTION_COLUMN = {
    AttributionMethod.EXPLICIT_DEPLOYMENT: "explicit",
    AttributionMethod.EXPLICIT_COMMIT: "explicit",
    AttributionMethod.SERVICE_WINDOW: "inferred",
    AttributionMethod.UNATTRIBUTED: "unattributed",
}


def attribution_window_of(settings: Mapping[str, Any], default: timedelta) -> timedelta:
    """The organization's `attributionWindow` setting (`7d`, `36h`, …), else `default`."""
    raw = settings.get("attributionWindow")
    if not isinstance(raw, str):
        return default
    try:
        return parse_duration(raw)
    except ValueError:
        logger.warning("ignoring invalid attributionWindow organization setting %r", raw)
        return default


def _affected_by(deployed: Sequence[DeploymentRef]) -> tuple[list[Any], ...]:
    since: dict[tuple[uuid.UUID, str], datetime] = {}
    refs: set[tuple[uuid.UUID, str]] = set()
    for d in deployed:
        key = (d.organization_id, d.service)
        since[key] = min(since.get(key, d.since), d.since)
        refs.update({(d.organization_id, d.external_id), (d.organization_id, str(d.id))})
    keys = sorted(since)
    ref_list = sorted(refs)
    return (
        [o for o, _ in keys],
        [s for _, s in keys],
        [since[k] for k in keys],
        [o for o, _ in ref_list],
        [r for _, r in ref_list],
    )


async def attribute_incidents(
    conn: Connection,
    incident_ids: Sequence[uuid.UUID],
    deployed: Sequence[DeploymentRef],
    windows: Mapping[uuid.UUID, timedelta],
) -> set[uuid.UUID]:
    """(Re-)attribute every incident this batch can affect: its own incidents, and for its
    deployments the incidents of the same services since the deployment started, those naming
    the deployment and those naming a commit it shipped. Returns the repositories of the
    deployments whose incidents changed (their cached metrics are stale)."""
    candidates = await conn.fetch(
        CANDIDATE_INCIDENTS, list(incident_ids), *_affected_by(deployed), [d.id for d in deployed]
    )
    if not candidates:
        return set()

    refs = sorted(
        {(row["organization_id"], row["deployment_ref"]) for row in candidates if row["deployment_ref"]}
    )
    shas = sorted(
        {(row["organization_id"], row["commit_sha_ref"]) for row in candidates if row["commit_sha_ref"]}
    )
    services: set[tuple[uuid.UUID, str]] = {
        (row["organization_id"], row["service"]) for row in candidates if row["service"]
    }

    resolved_ref: dict[tuple[uuid.UUID, str], str] = {}
    if refs:
        best: dict[tuple[uuid.UUID, str], tuple[Any, ...]] = {}
        for row in await conn.fetch(RESOLVE_DEPLOYMENT_REFS, [o for o, _ in refs], [r for _, r in refs]):
            key = (row["organization_id"], row["ref"])
            # Prefer the row that counts (a production success), then the earliest, then by id.
            rank = (not row["counts"], row["finished_at"] is None, row["finished_at"], str(row["id"]))
            if key not in best or rank < best[key]:
                best[key] = rank
                resolved_ref[key] = str(row["id"])
            services.add((row["organization_id"], row["service"]))
    shipped: dict[uuid.UUID, set[str]] = defaultdict(set)
    if shas:
        for row in await conn.fetch(SHIPPING_DEPLOYMENTS, [o for o, _ in shas], [s for _, s in shas]):
            shipped[row["id"]].add(row["sha"])
            services.add((row["organization_id"], row["service"]))

    service_list = sorted(services)
    # Explicitly named deployments are loaded whatever their age (an incident may name an old one).
    named = {uuid.UUID(deployment) for deployment in resolved_ref.values()} | set(shipped)
    since = min(row["created_at"] for row in candidates) - max(windows.values(), default=timedelta(days=7))
    rows = await conn.fetch(
        SERVICE_DEPLOYMENTS,
        [o for o, _ in service_list],
        [s for _, s in service_list],
        since - ROLLOUT_HISTORY,
        sorted(named),
    )
    records: dict[uuid.UUID, list[DeploymentRecord]] = defaultdict(list)
    repository_of: dict[str, uuid.UUID | None] = {}
    for row in rows:
        deployment_id = str(row["id"])
        repository_of[deployment_id] = row["repository_id"]
        records[row["organization_id"]].append(
            DeploymentRecord(
                deployment_id=deployment_id,
                service=row["service"],
                environment=row["environment"] or "",
                # A deployment without a revision never merges with another one into a rollout.
                revision=row["revision"] or f"deployment:{deployment_id}",
                finished_at=row["finished_at"],
                succeeded=True,
                is_production=True,
                commit_shas=tuple(sorted(shipped.get(row["id"], ()))),
                is_hotfix=row["is_hotfix"],
                is_rollback=row["is_rollback"],
            )
        )

    incidents_by_org: dict[uuid.UUID, list[IncidentRecord]] = defaultdict(list)
    current: dict[str, tuple[uuid.UUID | None, str]] = {}
    for row in candidates:
        ref = row["deployment_ref"]
        org = row["organization_id"]
        incident_id = str(row["id"])
        current[incident_id] = (row["deployment_id"], row["attribution"])
        incidents_by_org[org].append(
            IncidentRecord(
                incident_id=incident_id,
                created_at=row["created_at"],
                service=row["service"],
                deployment_id=resolved_ref.get((org, ref), ref) if ref else None,
                commit_sha=row["commit_sha_ref"],
            )
        )

    ids: list[uuid.UUID] = []
    deployment_ids: list[uuid.UUID | None] = []
    methods: list[str] = []
    touched: set[uuid.UUID] = set()
    for org, org_incidents in incidents_by_org.items():
        production = production_deployments(records.get(org, []))
        window = windows.get(org, timedelta(days=7))
        for result in attribute(org_incidents, production, window=window):
            new_deployment = uuid.UUID(result.deployment_id) if result.deployment_id else None
            new_method = ATTRIBUTION_COLUMN[result.method]
            incident_id = result.incident.incident_id
            if current[incident_id] == (new_deployment, new_method):
                continue
            ids.append(uuid.UUID(incident_id))
            deployment_ids.append(new_deployment)
            methods.append(new_method)
            for deployment in (current[incident_id][0], new_deployment):
                repository = repository_of.get(str(deployment)) if deployment else None
                if repository is not None:
                    touched.add(repository)
    if ids:
        await conn.execute(UPDATE_ATTRIBUTION, ids, deployment_ids, methods)
    return touched
