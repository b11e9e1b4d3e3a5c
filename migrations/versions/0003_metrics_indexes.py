"""Metrics query layer: the indexes behind DORA and flow metrics, and the lead-time change flag.

Measured on the benchmark dataset (1M commits, 100k pull requests, 20k deployments, 2k incidents;
`benchmarks/metrics_dora.py`); each index serves one query of `doraflow.metrics`:

* `ix_commits_lead_time` -- lead time for changes is one index-only range scan of the changes
  first deployed in the window, per repository (`first_deployed_at`, authored `time`, and the two
  flags deciding whether a commit counts as a change). Partial: never-deployed commits are not in it.
* `ix_commits_repository_pull_request` -- a pull request's own commits (first-commit fallback of the
  cycle-time breakdown, the pull request drill-down, the enrichment of squash merges).
* `ix_pull_requests_lead_time` -- the pull requests whose merge/squash commit first reached production
  in the window, covering the cycle-time breakdown's timestamps (index-only).
* `ix_pull_requests_repository_merged_at`, `ix_pull_requests_repository_first_review_at` -- flow
  metrics select pull requests by merge and by first review.
* `ix_deployments_production_finished_at` -- successful production deployments by finish time (the
  only rows the DORA definitions count).
* `ix_deployments_organization_external_id` -- incidents name deployments by the source's id.
* `ix_issue_transitions_done` -- work items completed in a window.

`commits.represented_by_pull_request` is true for the merge or squash commit of a pull request whose
own commits are stored: its work is counted through those commits, so lead time leaves it out
(docs/metrics.md, "Squash merge"). Stored -- like `first_deployed_at` -- because deciding it at query
time joins every change of the window with the pull requests and their commits, which alone costs
more than the whole 100 ms budget of a 90-day report. `ADD COLUMN ... DEFAULT false` is instant in
PostgreSQL 11+ (no table rewrite).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    (
        "ix_commits_lead_time",
        "commits (repository_id, first_deployed_at) INCLUDE (time, is_merge, represented_by_pull_request)"
        " WHERE first_deployed_at IS NOT NULL",
    ),
    (
        "ix_commits_repository_pull_request",
        "commits (repository_id, pull_request_number) INCLUDE (time, is_merge)"
        " WHERE pull_request_number IS NOT NULL",
    ),
    (
        "ix_pull_requests_lead_time",
        "pull_requests (repository_id, first_deployed_at)"
        " INCLUDE (pr_number, time, merged_at, first_commit_at, first_review_at, merge_commit_sha)"
        " WHERE first_deployed_at IS NOT NULL",
    ),
    (
        "ix_pull_requests_repository_merged_at",
        "pull_requests (repository_id, merged_at) WHERE merged_at IS NOT NULL",
    ),
    (
        "ix_pull_requests_repository_first_review_at",
        "pull_requests (repository_id, first_review_at) WHERE first_review_at IS NOT NULL",
    ),
    (
        "ix_deployments_production_finished_at",
        "deployments (organization_id, finished_at) WHERE is_production AND status = 'success'",
    ),
    ("ix_deployments_organization_external_id", "deployments (organization_id, external_id)"),
    (
        "ix_issue_transitions_done",
        "issue_transitions (organization_id, transitioned_at) WHERE to_category = 'done'",
    ),
)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE commits ADD COLUMN IF NOT EXISTS represented_by_pull_request boolean NOT NULL DEFAULT false"
    )
    for name, definition in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}")


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("ALTER TABLE commits DROP COLUMN IF EXISTS represented_by_pull_request")
