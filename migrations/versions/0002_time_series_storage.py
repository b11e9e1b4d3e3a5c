"""Time-series storage: TimescaleDB hypertables and continuous aggregates when the extension exists,
plain tables with BRIN indexes and ordinary materialized views when it does not (DESIGN.md §5).

Both paths expose the same relation names (`daily_commit_stats`, `weekly_dora_metrics`) with the same
columns, so readers never care which one is in place; the processor refreshes the plain views itself
(`doraflow.core.rollups`), Timescale refreshes its aggregates by policy.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HYPERTABLES = ("commits", "pull_requests", "deployments")

DAILY_COMMIT_STATS = """
SELECT {bucket} AS day,
       repository_id,
       COUNT(*) AS commit_count,
       SUM(lines_added) AS total_lines_added,
       SUM(lines_deleted) AS total_lines_deleted
FROM commits
GROUP BY 1, repository_id
"""

WEEKLY_DORA_METRICS = """
SELECT {bucket} AS week,
       repository_id,
       COUNT(*) AS deployment_count,
       AVG(duration_seconds) AS avg_duration,
       COUNT(*) FILTER (WHERE status = 'failed') AS failed_count
FROM deployments
GROUP BY 1, repository_id
"""


def timescaledb_available() -> bool:
    query = sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return op.get_bind().execute(query).scalar() is not None


def upgrade() -> None:
    if timescaledb_available():
        op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        for table in HYPERTABLES:
            op.execute(
                f"SELECT create_hypertable('{table}', 'time', if_not_exists => TRUE, migrate_data => TRUE)"
            )
        for name, query, bucket, interval in (
            ("daily_commit_stats", DAILY_COMMIT_STATS, "time_bucket('1 day', time)", "1 hour"),
            ("weekly_dora_metrics", WEEKLY_DORA_METRICS, "time_bucket('1 week', time)", "1 hour"),
        ):
            op.execute(
                f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS "
                f"{query.format(bucket=bucket)} WITH NO DATA"
            )
            op.execute(
                f"SELECT add_continuous_aggregate_policy('{name}', start_offset => NULL, "
                f"end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '{interval}')"
            )
        return

    # Plain PostgreSQL: rows arrive roughly in time order, which is what BRIN indexes exploit
    # (tiny, and good enough for the range scans the rollups do).
    for table in HYPERTABLES:
        op.execute(f"CREATE INDEX ix_{table}_time_brin ON {table} USING brin (time)")
    op.execute(
        "CREATE MATERIALIZED VIEW daily_commit_stats AS "
        + DAILY_COMMIT_STATS.format(bucket="date_trunc('day', time)")
    )
    op.execute(
        "CREATE MATERIALIZED VIEW weekly_dora_metrics AS "
        + WEEKLY_DORA_METRICS.format(bucket="date_trunc('week', time)")
    )
    # Unique indexes let the processor REFRESH … CONCURRENTLY without blocking readers.
    op.execute("CREATE UNIQUE INDEX ux_daily_commit_stats ON daily_commit_stats (day, repository_id)")
    op.execute("CREATE UNIQUE INDEX ux_weekly_dora_metrics ON weekly_dora_metrics (week, repository_id)")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS weekly_dora_metrics")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS daily_commit_stats")
    for table in HYPERTABLES:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_time_brin")
    # A hypertable cannot be turned back into a plain table in place; revision 0001's downgrade
    # drops the tables themselves.
