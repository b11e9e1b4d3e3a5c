"""Initial schema: the seed's entity and time-series tables plus what the metrics need.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 16:11:37.609921
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commits",
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("author_id", sa.UUID(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lines_added", sa.Integer(), nullable=True),
        sa.Column("lines_deleted", sa.Integer(), nullable=True),
        sa.Column("files_changed", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("is_merge", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("pull_request_number", sa.Integer(), nullable=True),
        sa.Column("first_deployment_id", sa.UUID(), nullable=True),
        sa.Column("first_deployed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("time", "repository_id", "commit_sha", name=op.f("pk_commits")),
    )
    op.create_index(
        "ix_commits_org_first_deployed_at", "commits", ["organization_id", "first_deployed_at"], unique=False
    )
    op.create_index("ix_commits_repository_id_time", "commits", ["repository_id", "time"], unique=False)
    op.create_table(
        "deployment_commits",
        sa.Column("deployment_id", sa.UUID(), nullable=False),
        sa.Column("commit_sha", sa.String(length=64), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=True),
        sa.PrimaryKeyConstraint("deployment_id", "commit_sha", name=op.f("pk_deployment_commits")),
    )
    op.create_index("ix_deployment_commits_commit_sha", "deployment_commits", ["commit_sha"], unique=False)
    op.create_table(
        "deployments",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=True),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=50), nullable=True),
        sa.Column("is_production", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("deployed_by", sa.UUID(), nullable=True),
        sa.Column("revision", sa.String(length=64), nullable=True),
        sa.Column("is_hotfix", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_rollback", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", "time", name=op.f("pk_deployments")),
        sa.UniqueConstraint(
            "organization_id",
            "source",
            "external_id",
            "time",
            name=op.f("uq_deployments_organization_id_source_external_id_time"),
        ),
    )
    op.create_index(
        "ix_deployments_org_finished_at", "deployments", ["organization_id", "finished_at"], unique=False
    )
    op.create_index(op.f("ix_deployments_repository_id"), "deployments", ["repository_id"], unique=False)
    op.create_table(
        "organizations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
    )
    op.create_table(
        "pull_request_reviews",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("reviewer_id", sa.UUID(), nullable=True),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comments_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pull_request_reviews")),
        sa.UniqueConstraint(
            "repository_id", "external_id", name=op.f("uq_pull_request_reviews_repository_id_external_id")
        ),
    )
    op.create_index(
        op.f("ix_pull_request_reviews_organization_id"),
        "pull_request_reviews",
        ["organization_id"],
        unique=False,
    )
    op.create_index(
        "ix_pull_request_reviews_repository_id_pr_number",
        "pull_request_reviews",
        ["repository_id", "pr_number"],
        unique=False,
    )
    op.create_table(
        "pull_requests",
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.Column("pr_number", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("author_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_commit_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_review_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merge_commit_sha", sa.String(length=64), nullable=True),
        sa.Column("head_branch", sa.String(length=255), nullable=True),
        sa.Column("base_branch", sa.String(length=255), nullable=True),
        sa.Column("lines_added", sa.Integer(), nullable=True),
        sa.Column("lines_deleted", sa.Integer(), nullable=True),
        sa.Column("files_changed", sa.Integer(), nullable=True),
        sa.Column("commits_count", sa.Integer(), nullable=True),
        sa.Column("review_comments", sa.Integer(), nullable=True),
        sa.Column("reviews_count", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_deployment_id", sa.UUID(), nullable=True),
        sa.Column("first_deployed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("time", "repository_id", "pr_number", name=op.f("pk_pull_requests")),
    )
    op.create_index(
        "ix_pull_requests_org_merged_at", "pull_requests", ["organization_id", "merged_at"], unique=False
    )
    op.create_index(
        "ix_pull_requests_repository_id_merge_commit_sha",
        "pull_requests",
        ["repository_id", "merge_commit_sha"],
        unique=False,
    )
    op.create_table(
        "sync_cursors",
        sa.Column("integration", sa.String(length=255), nullable=False),
        sa.Column("scope", sa.String(length=512), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("cursor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("integration", "scope", "resource", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_organization_id"), "api_keys", ["organization_id"], unique=False)
    op.create_index(op.f("ix_api_keys_prefix"), "api_keys", ["prefix"], unique=False)
    op.create_table(
        "developers",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("github_username", sa.String(length=255), nullable=True),
        sa.Column("gitlab_username", sa.String(length=255), nullable=True),
        sa.Column("bitbucket_username", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_developers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_developers")),
        sa.UniqueConstraint("organization_id", "email", name=op.f("uq_developers_organization_id_email")),
    )
    op.create_index(op.f("ix_developers_organization_id"), "developers", ["organization_id"], unique=False)
    op.create_table(
        "incidents",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(length=20), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deployment_ref", sa.String(length=255), nullable=True),
        sa.Column("commit_sha_ref", sa.String(length=64), nullable=True),
        sa.Column("deployment_id", sa.UUID(), nullable=True),
        sa.Column("attribution", sa.String(length=20), server_default="unattributed", nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_incidents_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint(
            "organization_id",
            "source",
            "external_id",
            name=op.f("uq_incidents_organization_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_incidents_deployment_id"), "incidents", ["deployment_id"], unique=False)
    op.create_index(
        "ix_incidents_org_created_at", "incidents", ["organization_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_incidents_organization_id"), "incidents", ["organization_id"], unique=False)
    op.create_table(
        "integrations",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("namespace", sa.String(length=253), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column(
            "spec",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_integrations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrations")),
        sa.UniqueConstraint("namespace", "name", name=op.f("uq_integrations_namespace_name")),
    )
    op.create_index(
        op.f("ix_integrations_organization_id"), "integrations", ["organization_id"], unique=False
    )
    op.create_table(
        "issues",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=True),
        sa.Column("project", sa.String(length=255), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("issue_type", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=100), nullable=True),
        sa.Column("status_category", sa.String(length=20), nullable=True),
        sa.Column("priority", sa.String(length=50), nullable=True),
        sa.Column("assignee_id", sa.UUID(), nullable=True),
        sa.Column("story_points", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column(
            "labels", postgresql.ARRAY(sa.String(length=255)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column(
            "components",
            postgresql.ARRAY(sa.String(length=255)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "linked_issues",
            postgresql.ARRAY(sa.String(length=255)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_issues_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
        sa.UniqueConstraint(
            "organization_id",
            "source",
            "external_id",
            name=op.f("uq_issues_organization_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_issues_organization_id"), "issues", ["organization_id"], unique=False)
    op.create_table(
        "repositories",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("default_branch", sa.String(length=100), nullable=True),
        sa.Column("service", sa.String(length=255), nullable=True),
        sa.Column("integration", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_repositories_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repositories")),
        sa.UniqueConstraint(
            "organization_id",
            "provider",
            "provider_id",
            name=op.f("uq_repositories_organization_id_provider_provider_id"),
        ),
    )
    op.create_index(
        op.f("ix_repositories_organization_id"), "repositories", ["organization_id"], unique=False
    )
    op.create_table(
        "sprints",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("board", sa.String(length=255), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sprints_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sprints")),
        sa.UniqueConstraint(
            "organization_id",
            "source",
            "external_id",
            name=op.f("uq_sprints_organization_id_source_external_id"),
        ),
    )
    op.create_index(op.f("ix_sprints_organization_id"), "sprints", ["organization_id"], unique=False)
    op.create_table(
        "teams",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_teams_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("organization_id", "slug", name=op.f("uq_teams_organization_id_slug")),
    )
    op.create_index(op.f("ix_teams_organization_id"), "teams", ["organization_id"], unique=False)
    op.create_table(
        "developer_identities",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("developer_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["developer_id"],
            ["developers.id"],
            name=op.f("fk_developer_identities_developer_id_developers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_developer_identities_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_developer_identities")),
        sa.UniqueConstraint(
            "organization_id",
            "kind",
            "value",
            name=op.f("uq_developer_identities_organization_id_kind_value"),
        ),
    )
    op.create_index(
        op.f("ix_developer_identities_developer_id"), "developer_identities", ["developer_id"], unique=False
    )
    op.create_index(
        op.f("ix_developer_identities_organization_id"),
        "developer_identities",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "issue_transitions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("organization_id", sa.UUID(), nullable=False),
        sa.Column("issue_id", sa.UUID(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("from_status", sa.String(length=100), nullable=True),
        sa.Column("to_status", sa.String(length=100), nullable=False),
        sa.Column("from_category", sa.String(length=20), nullable=True),
        sa.Column("to_category", sa.String(length=20), nullable=True),
        sa.Column("transitioned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.UUID(), nullable=True),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_transitions_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_transitions")),
        sa.UniqueConstraint(
            "issue_id", "external_id", name=op.f("uq_issue_transitions_issue_id_external_id")
        ),
    )
    op.create_index(op.f("ix_issue_transitions_issue_id"), "issue_transitions", ["issue_id"], unique=False)
    op.create_index(
        op.f("ix_issue_transitions_organization_id"), "issue_transitions", ["organization_id"], unique=False
    )
    op.create_table(
        "sprint_issues",
        sa.Column("sprint_id", sa.UUID(), nullable=False),
        sa.Column("issue_id", sa.UUID(), nullable=False),
        sa.Column("story_points", sa.Numeric(precision=10, scale=2, asdecimal=False), nullable=True),
        sa.Column("completed_in_sprint", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_sprint_issues_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sprint_id"], ["sprints.id"], name=op.f("fk_sprint_issues_sprint_id_sprints"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sprint_id", "issue_id", name=op.f("pk_sprint_issues")),
    )
    op.create_index(op.f("ix_sprint_issues_issue_id"), "sprint_issues", ["issue_id"], unique=False)
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.UUID(), nullable=False),
        sa.Column("developer_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=50), server_default="member", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["developer_id"],
            ["developers.id"],
            name=op.f("fk_team_members_developer_id_developers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_members_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "developer_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_developer_id"), "team_members", ["developer_id"], unique=False)
    op.create_table(
        "team_repositories",
        sa.Column("team_id", sa.UUID(), nullable=False),
        sa.Column("repository_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_team_repositories_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_repositories_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "repository_id", name=op.f("pk_team_repositories")),
    )
    op.create_index(
        op.f("ix_team_repositories_repository_id"), "team_repositories", ["repository_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_team_repositories_repository_id"), table_name="team_repositories")
    op.drop_table("team_repositories")
    op.drop_index(op.f("ix_team_members_developer_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_index(op.f("ix_sprint_issues_issue_id"), table_name="sprint_issues")
    op.drop_table("sprint_issues")
    op.drop_index(op.f("ix_issue_transitions_organization_id"), table_name="issue_transitions")
    op.drop_index(op.f("ix_issue_transitions_issue_id"), table_name="issue_transitions")
    op.drop_table("issue_transitions")
    op.drop_index(op.f("ix_developer_identities_organization_id"), table_name="developer_identities")
    op.drop_index(op.f("ix_developer_identities_developer_id"), table_name="developer_identities")
    op.drop_table("developer_identities")
    op.drop_index(op.f("ix_teams_organization_id"), table_name="teams")
    op.drop_table("teams")
    op.drop_index(op.f("ix_sprints_organization_id"), table_name="sprints")
    op.drop_table("sprints")
    op.drop_index(op.f("ix_repositories_organization_id"), table_name="repositories")
    op.drop_table("repositories")
    op.drop_index(op.f("ix_issues_organization_id"), table_name="issues")
    op.drop_table("issues")
    op.drop_index(op.f("ix_integrations_organization_id"), table_name="integrations")
    op.drop_table("integrations")
    op.drop_index(op.f("ix_incidents_organization_id"), table_name="incidents")
    op.drop_index("ix_incidents_org_created_at", table_name="incidents")
    op.drop_index(op.f("ix_incidents_deployment_id"), table_name="incidents")
    op.drop_table("incidents")
    op.drop_index(op.f("ix_developers_organization_id"), table_name="developers")
    op.drop_table("developers")
    op.drop_index(op.f("ix_api_keys_prefix"), table_name="api_keys")
    op.drop_index(op.f("ix_api_keys_organization_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("sync_cursors")
    op.drop_index("ix_pull_requests_repository_id_merge_commit_sha", table_name="pull_requests")
    op.drop_index("ix_pull_requests_org_merged_at", table_name="pull_requests")
    op.drop_table("pull_requests")
    op.drop_index("ix_pull_request_reviews_repository_id_pr_number", table_name="pull_request_reviews")
    op.drop_index(op.f("ix_pull_request_reviews_organization_id"), table_name="pull_request_reviews")
    op.drop_table("pull_request_reviews")
    op.drop_table("organizations")
    op.drop_index(op.f("ix_deployments_repository_id"), table_name="deployments")
    op.drop_index("ix_deployments_org_finished_at", table_name="deployments")
    op.drop_table("deployments")
    op.drop_index("ix_deployment_commits_commit_sha", table_name="deployment_commits")
    op.drop_table("deployment_commits")
    op.drop_index("ix_commits_repository_id_time", table_name="commits")
    op.drop_index("ix_commits_org_first_deployed_at", table_name="commits")
    op.drop_table("commits")
