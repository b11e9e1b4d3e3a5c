"""Branches, tags, releases and repository contributors (events git.branch, git.tag, git.release and
git.contributor).

Every row carries `observed_at`, the `collected_at` of the event it was written from: branches and
tags move both ways (a force push, a tag moved back to an older commit), so the processor decides
which version is newer by when it was observed rather than by the time of the commit it points
at, and an older event replayed never regresses a row. A ref gone from its repository keeps its
row with `deleted_at` set (deployments and pull requests still name it).

`tags.tagger_id` and `releases.author_id` are cleared when their developer is deleted; a
contributor row goes with its developer. The processor moves them to the surviving developer when
it merges a provisional one (`processor.entities`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ref_columns(table: str) -> list[SchemaItem]:
    """The columns every ref table starts with: its natural id, organization and repository."""
    return [
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f(f"fk_{table}_repository_id_repositories"),
            ondelete="CASCADE",
        ),
    ]


def _developer_fk(table: str, column: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["developers.id"], name=op.f(f"fk_{table}_{column}_developers"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "branches",
        *_ref_columns("branches"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("protected", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("repository_id", "name", name=op.f("uq_branches_repository_id_name")),
    )
    op.create_table(
        "tags",
        *_ref_columns("tags"),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("annotated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tagger_id", sa.UUID(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        _developer_fk("tags", "tagger_id", "SET NULL"),
        sa.UniqueConstraint("repository_id", "name", name=op.f("uq_tags_repository_id_name")),
    )
    op.create_table(
        "releases",
        *_ref_columns("releases"),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("tag_name", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("draft", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("prerelease", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("author_id", sa.UUID(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        _developer_fk("releases", "author_id", "SET NULL"),
        sa.UniqueConstraint(
            "repository_id", "external_id", name=op.f("uq_releases_repository_id_external_id")
        ),
    )
    op.create_table(
        "repository_contributors",
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.Column("developer_id", sa.UUID(), nullable=False),
        sa.Column("contributions", sa.Integer(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "developer_id", name=op.f("pk_repository_contributors")),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_repository_contributors_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        _developer_fk("repository_contributors", "developer_id", "CASCADE"),
    )
    for table, column in (
        ("branches", "organization_id"),
        ("tags", "organization_id"),
        ("tags", "tagger_id"),
        ("releases", "organization_id"),
        ("releases", "author_id"),
        ("repository_contributors", "developer_id"),
    ):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes and constraints.
    for table in ("repository_contributors", "releases", "tags", "branches"):
        op.drop_table(table)
