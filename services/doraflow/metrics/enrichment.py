"""What the stored lead-time enrichment must hold, as executable SQL.

:mod:`doraflow.metrics.leadtime` reads lead time from stored columns instead of joining
deployments, pull requests and their commits at request time (which alone would cost more than
the request's whole budget). The columns must therefore mean exactly what the definition of
:func:`doraflow.metrics.dora.lead_time_for_changes` needs:

``pull_requests.first_deployed_at`` / ``first_deployment_id``
    The first successful production deployment row (earliest ``finished_at``, then lowest id)
    that shipped the PR's merge or squash commit: listed it in ``deployment_commits`` or
    deployed it as its ``revision``.

``commit_deployments.first_deployed_at`` / ``first_deployment_id``
    The commit's *shipped* time as the definition says: the earlier of its own first such
    deployment and the first deployment of its pull request (``pull_request_number`` in the
    same repository). The second is what makes squash merges right: a PR's branch commits
    never appear in a deployment, but their content shipped with the squash commit.

``commit_deployments.represented_by_pull_request``
    True for the merge or squash commit of a pull request (its ``merge_commit_sha``, in the same
    repository, not attached to another PR) when at least one other non-merge commit of that
    PR is stored: its work is counted through them, so it is not a change of its own.

Commits are matched to deployments by SHA within the organization, as the definition does. A
commit's three values are stored in ``commit_deployments`` (migration 0008), one row per commit whose
values are not the defaults (a first deployment, or represented); any other commit has no row.

:func:`refresh_lead_time_enrichment` recomputes all three for an organization (or some of its
repositories) in set-based statements. The tests and benchmarks fill their data with it; it is
also the backfill after a definition change, and :func:`lead_time_enrichment_mismatches` is the
consistency check of values maintained incrementally (by the processor).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final

from doraflow.metrics.loaders import Database

__all__ = ["lead_time_enrichment_mismatches", "refresh_lead_time_enrichment"]

# $1 organization, $2 repositories (NULL: all of the organization's).
_EXPECTED: Final = """
CREATE TEMP TABLE expected_first_shipped ON COMMIT DROP AS
SELECT DISTINCT ON (sha) sha, id, finished_at
FROM (
    SELECT dc.commit_sha AS sha, d.id, d.finished_at
    FROM deployment_commits dc
    JOIN deployments d ON d.id = dc.deployment_id
    WHERE d.organization_id = $1 AND d.is_production AND d.status = 'success' AND d.finished_at IS NOT NULL
    UNION ALL
    SELECT d.revision, d.id, d.finished_at
    FROM deployments d
    WHERE d.organization_id = $1 AND d.is_production AND d.status = 'success' AND d.finished_at IS NOT NULL
      AND d.revision IS NOT NULL
) AS shipped
ORDER BY sha, finished_at, id;

CREATE TEMP TABLE expected_pull_requests ON COMMIT DROP AS
SELECT p.time, p.repository_id, p.pr_number, p.merge_commit_sha, f.id, f.finished_at
FROM pull_requests p
LEFT JOIN expected_first_shipped f ON f.sha = p.merge_commit_sha
WHERE p.organization_id = $1 AND ($2::uuid[] IS NULL OR p.repository_id = ANY($2::uuid[]));

CREATE TEMP TABLE expected_commits ON COMMIT DROP AS
SELECT c.time, c.repository_id, c.commit_sha, c.organization_id, c.is_merge,
       CASE WHEN pr.finished_at < own.finished_at OR own.finished_at IS NULL THEN pr.id ELSE own.id END AS id,
       CASE WHEN pr.finished_at < own.finished_at OR own.finished_at IS NULL THEN pr.finished_at
            ELSE own.finished_at END AS finished_at,
       EXISTS (
           SELECT 1 FROM expected_pull_requests m
           WHERE m.repository_id = c.repository_id AND m.merge_commit_sha = c.commit_sha
             AND (c.pull_request_number IS NULL OR c.pull_request_number = m.pr_number)
             AND EXISTS (
                 SELECT 1 FROM commits o
                 WHERE o.repository_id = m.repository_id AND o.pull_request_number = m.pr_number
                   AND NOT o.is_merge AND o.commit_sha <> m.merge_commit_sha
             )
       ) AS represented
FROM commits c
LEFT JOIN expected_first_shipped own ON own.sha = c.commit_sha
LEFT JOIN expected_pull_requests pr
       ON pr.repository_id = c.repository_id AND pr.pr_number = c.pull_request_number
WHERE c.organization_id = $1 AND ($2::uuid[] IS NULL OR c.repository_id = ANY($2::uuid[]));
"""


async def _expected(
    db: Database, organization_id: uuid.UUID, repository_ids: Sequence[uuid.UUID] | None
) -> None:
    args = (organization_id, None if repository_ids is None else list(repository_ids))
    for statement in _EXPECTED.split(";"):
        if statement.strip():
            await db.connection.execute(statement, *args[: 2 if "$2" in statement else 1])
    await db.connection.execute("ANALYZE expected_first_shipped")
    await db.connection.execute("ANALYZE expected_pull_requests")
    await db.connection.execute("ANALYZE expected_commits")


async def refresh_lead_time_enrichment(
    db: Database, organization_id: uuid.UUID, repository_ids: Sequence[uuid.UUID] | None = None
) -> tuple[int, int]:
    """Recompute the lead-time values of the organization's pull requests and commits (of
    ``repository_ids`` only, when given). Must run inside a transaction (temporary tables are
    dropped at commit). Returns how many pull requests and commits changed."""
    await _expected(db, organization_id, repository_ids)
    pull_requests = await db.connection.execute(
        "UPDATE pull_requests p SET first_deployed_at = e.finished_at, first_deployment_id = e.id"
        " FROM expected_pull_requests e"
        " WHERE p.time = e.time AND p.repository_id = e.repository_id AND p.pr_number = e.pr_number"
        " AND (p.first_deployed_at, p.first_deployment_id) IS DISTINCT FROM (e.finished_at, e.id)"
    )
    upserted = await db.connection.execute(
        "INSERT INTO commit_deployments AS c (repository_id, time, commit_sha, organization_id, is_merge,"
        "                                     first_deployment_id, first_deployed_at,"
        "                                     represented_by_pull_request)"
        " SELECT e.repository_id, e.time, e.commit_sha, e.organization_id, e.is_merge, e.id, e.finished_at,"
        "        e.represented"
        " FROM expected_commits e WHERE e.finished_at IS NOT NULL OR e.represented"
        " ON CONFLICT (repository_id, time, commit_sha) DO UPDATE SET"
        "     organization_id = EXCLUDED.organization_id, is_merge = EXCLUDED.is_merge,"
        "     first_deployment_id = EXCLUDED.first_deployment_id,"
        "     first_deployed_at = EXCLUDED.first_deployed_at,"
        "     represented_by_pull_request = EXCLUDED.represented_by_pull_request"
        " WHERE (c.organization_id, c.is_merge, c.first_deployment_id, c.first_deployed_at,"
        "        c.represented_by_pull_request)"
        "     IS DISTINCT FROM (EXCLUDED.organization_id, EXCLUDED.is_merge, EXCLUDED.first_deployment_id,"
        "                       EXCLUDED.first_deployed_at, EXCLUDED.represented_by_pull_request)"
    )
    deleted = await db.connection.execute(
        "DELETE FROM commit_deployments c USING expected_commits e"
        " WHERE c.time = e.time AND c.repository_id = e.repository_id AND c.commit_sha = e.commit_sha"
        " AND e.finished_at IS NULL AND NOT e.represented"
    )
    return int(pull_requests.split()[-1]), int(upserted.split()[-1]) + int(deleted.split()[-1])


async def lead_time_enrichment_mismatches(
    db: Database, organization_id: uuid.UUID, *, limit: int = 100
) -> list[str]:
    """Rows whose stored lead-time columns differ from the definition, one line each (at most
    ``limit``); empty when everything is consistent. Must run inside a transaction."""
    await _expected(db, organization_id, None)
    rows = await db.fetch(
        "SELECT 'pull request ' || p.repository_id || '#' || p.pr_number,"
        "       p.first_deployed_at::text, e.finished_at::text"
        " FROM pull_requests p JOIN expected_pull_requests e"
        "   ON p.time = e.time AND p.repository_id = e.repository_id AND p.pr_number = e.pr_number"
        " WHERE p.first_deployed_at IS DISTINCT FROM e.finished_at"
        " UNION ALL"
        " SELECT 'commit ' || e.repository_id || '/' || e.commit_sha,"
        "        coalesce(c.first_deployed_at::text, 'none') || ' represented='"
        "        || coalesce(c.represented_by_pull_request, false)"
        "        || (CASE WHEN c.commit_sha IS NULL THEN '' ELSE ' (row)' END),"
        "        coalesce(e.finished_at::text, 'none') || ' represented=' || e.represented"
        "        || (CASE WHEN e.finished_at IS NULL AND NOT e.represented THEN '' ELSE ' (row)' END)"
        " FROM expected_commits e LEFT JOIN commit_deployments c"
        "   ON c.time = e.time AND c.repository_id = e.repository_id AND c.commit_sha = e.commit_sha"
        " WHERE (c.first_deployed_at, coalesce(c.represented_by_pull_request, false),"
        "        c.commit_sha IS NOT NULL)"
        "     IS DISTINCT FROM (e.finished_at, e.represented, e.finished_at IS NOT NULL OR e.represented)"
        " LIMIT $1",
        limit,
    )
    return [f"{what}: stored {stored}, expected {expected}" for what, stored, expected in rows]
