"""Commits' lead-time columns move to a narrow table, `commit_deployments` (issue #4).

When a deployment event arrives after the commits it shipped (the normal case in a Kafka backlog),
the processor sets the lead-time columns of every shipped commit. On `commits` that was an UPDATE of
`first_deployed_at`, an indexed column (`ix_commits_lead_time`), so no update was HOT: each wrote a
new wide commit tuple plus an entry in all 6 other indexes of `commits`. That refresh was 25% of the
store step (`python -m benchmarks.processor_store`, ~76 µs of PostgreSQL per event). Inserting the
same facts into a narrow table costs 4.5x less (micro-benchmark, 20k rows: 865 ms UPDATE vs 190 ms
INSERT).

`commit_deployments` holds `first_deployment_id`, `first_deployed_at` and
`represented_by_pull_request` (same names and meaning as on `commits` before) under the commit's key
`(repository_id, time, commit_sha)`, plus the two commit columns the lead-time index covers
(`is_merge`; `time` is in the key) and `organization_id`. A row exists exactly when the commit has a
first production deployment or is represented by its pull request; every other commit has the
defaults (NULL, NULL, false) and no row. `ix_commit_deployments_lead_time` is the former
`ix_commits_lead_time` on the narrow table: lead time stays one index-only range scan.

The views of 0002 (`daily_commit_stats`) read none of the moved columns.

Measured on the same 2-core machine on 2026-12-04, runs of the parent commit and of this change
alternated (both noisy, ±20% run to run):

* `benchmarks.processor_store` (100k events as a backlog arrives): before 10,270 and 12,323
  events/s, 66 and 55 µs of PostgreSQL CPU per event, the `UPDATE commits` refresh 2.24 s (23-28%)
  and the commit upsert 1.8-2.2 s. After 10,289-14,457 events/s, 45-62 µs per event; the
  `commit_deployments` refresh 1.15-1.30 s (15-17%), the written commits' statement 0.49-0.58 s (7%)
  and the commit upsert 1.3-1.7 s: the commit statements together 3.0-3.5 s instead of 4.0-4.5 s.
  Less than the micro-benchmark's 4.5x: most of the refresh is the look-ups of the enrichment
  (deployments, pull requests), which did not change.
* `benchmarks.processor_ingest` (Kafka to PostgreSQL, 200k events): before 11,304 and 11,331
  events/s (22.2%, 17.2% of COPY); after 8,005, 10,087 and 11,647 events/s (17.3%, 20.2%, 19.8%;
  the COPY baseline now also writes the 75k `commit_deployments` rows). No gain visible at this
  noise level.
* `benchmarks.metrics_dora`: organization p50 108 and 89 ms, team p50 31 and 24 ms (121-164 ms
  and 24-38 ms earlier that day with `commits`); lead time is still one index-only scan (of
  `ix_commit_deployments_lead_time`, no heap fetches).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATE_TABLE = """
CREATE TABLE commit_deployments (
    repository_id uuid NOT NULL,
    time timestamptz NOT NULL,
    commit_sha varchar(64) NOT NULL,
    organization_id uuid NOT NULL,
    is_merge boolean NOT NULL DEFAULT false,
    first_deployment_id uuid,
    first_deployed_at timestamptz,
    represented_by_pull_request boolean NOT NULL DEFAULT false,
    CONSTRAINT pk_commit_deployments PRIMARY KEY (repository_id, time, commit_sha)
)
"""
LEAD_TIME_INDEX = (
    "CREATE INDEX ix_commit_deployments_lead_time ON commit_deployments (repository_id, first_deployed_at)"
    " INCLUDE (time, is_merge, represented_by_pull_request) WHERE first_deployed_at IS NOT NULL"
)
# As migration 0003 created it.
COMMITS_LEAD_TIME_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_commits_lead_time ON commits (repository_id, first_deployed_at)"
    " INCLUDE (time, is_merge, represented_by_pull_request) WHERE first_deployed_at IS NOT NULL"
)


def upgrade() -> None:
    op.execute(CREATE_TABLE)
    op.execute(
        "INSERT INTO commit_deployments (repository_id, time, commit_sha, organization_id, is_merge,"
        " first_deployment_id, first_deployed_at, represented_by_pull_request)"
        " SELECT repository_id, time, commit_sha, organization_id, coalesce(is_merge, false),"
        " first_deployment_id, first_deployed_at, coalesce(represented_by_pull_request, false)"
        " FROM commits WHERE first_deployed_at IS NOT NULL OR represented_by_pull_request"
    )
    op.execute(LEAD_TIME_INDEX)
    op.execute("DROP INDEX IF EXISTS ix_commits_lead_time")
    op.execute(
        "ALTER TABLE commits DROP COLUMN first_deployment_id, DROP COLUMN first_deployed_at,"
        " DROP COLUMN represented_by_pull_request"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE commits ADD COLUMN first_deployment_id uuid, ADD COLUMN first_deployed_at timestamptz,"
        " ADD COLUMN represented_by_pull_request boolean NOT NULL DEFAULT false"
    )
    op.execute(
        "UPDATE commits c SET first_deployment_id = d.first_deployment_id,"
        " first_deployed_at = d.first_deployed_at, represented_by_pull_request = d.represented_by_pull_request"
        " FROM commit_deployments d"
        " WHERE c.repository_id = d.repository_id AND c.time = d.time AND c.commit_sha = d.commit_sha"
    )
    op.execute(COMMITS_LEAD_TIME_INDEX)
    op.execute("DROP TABLE commit_deployments")
