"""Each change's lead time is stored with it: `commit_deployments.lead_seconds` (issue #4).

The organization-wide DORA report spent most of its time in one query: lead time over a 90-day
window, ~114k changes of the benchmark dataset (`python -m benchmarks.metrics_dora`). Of its
~70 ms, the index-only range scan was 12 ms, sorting for the percentiles ~28 ms, and computing
`date_part('epoch', first_deployed_at) - date_part('epoch', time)` for every row ~20 ms. The
difference is now a stored generated column, carried in the lead-time index, so the query reads
it instead of computing it: ~50 ms on the same data, with identical results.

The expression is exactly the one the query used (and that `doraflow.metrics.stats` reproduces in
Python bit for bit): the difference of the two epoch values as float8. `date_part` on `timestamptz`
is only STABLE -- some fields depend on the session's time zone -- but the epoch does not, so
`doraflow_epoch_seconds` wraps it as IMMUTABLE, which a generated column requires. Every writer
(the processor, the enrichment backfill) gets the column without knowing about it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EPOCH_FUNCTION = """
CREATE FUNCTION doraflow_epoch_seconds(timestamptz) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT date_part('epoch', $1) $$
"""
LEAD_SECONDS = (
    "ALTER TABLE commit_deployments ADD COLUMN lead_seconds double precision GENERATED ALWAYS AS"
    " (doraflow_epoch_seconds(first_deployed_at) - doraflow_epoch_seconds(time)) STORED"
)
LEAD_TIME_INDEX = (
    "CREATE INDEX ix_commit_deployments_lead_time ON commit_deployments (repository_id, first_deployed_at)"
    " INCLUDE ({included}, is_merge, represented_by_pull_request) WHERE first_deployed_at IS NOT NULL"
)


def upgrade() -> None:
    op.execute(EPOCH_FUNCTION)
    op.execute(LEAD_SECONDS)
    op.execute("DROP INDEX ix_commit_deployments_lead_time")
    op.execute(LEAD_TIME_INDEX.format(included="lead_seconds"))


def downgrade() -> None:
    op.execute("DROP INDEX ix_commit_deployments_lead_time")
    op.execute("ALTER TABLE commit_deployments DROP COLUMN lead_seconds")
    op.execute("DROP FUNCTION doraflow_epoch_seconds(timestamptz)")
    op.execute(LEAD_TIME_INDEX.format(included="time"))
