"""Indexes the processor's links rely on: commits by SHA (deployment ↔ commit, organization-wide),
pull requests by number and by merge commit, and authors/reviewers (developer merges).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_commits_commit_sha": "commits (commit_sha)",
    "ix_pull_requests_repository_id_pr_number": "pull_requests (repository_id, pr_number)",
    "ix_pull_requests_merge_commit_sha": "pull_requests (merge_commit_sha)",
    "ix_commits_author_id": "commits (author_id)",
    "ix_pull_requests_author_id": "pull_requests (author_id)",
    "ix_pull_request_reviews_reviewer_id": "pull_request_reviews (reviewer_id)",
}


def upgrade() -> None:
    for name, target in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
