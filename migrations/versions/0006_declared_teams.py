"""Teams declared by `Organization` resources: who manages a team, and the repositories a team is
given by name or glob before they are collected.

* `teams.managed_by` names the resource that declares a team (NULL: made through the API). A sync
  from the resource removes the declared teams it no longer lists and never touches the others.
* `team_repository_patterns` remembers each declared repository name or glob of a team with its
  anchored regular expression. The trigger `repositories_link_declared_teams` links a repository
  to every team whose pattern matches its name when the repository is inserted or renamed — the
  processor creates repositories as their first events arrive, so a team declared before its
  repositories were collected gets them the moment they appear, with no process having to poll.
  A team deleted while a repository is being inserted must not fail the processor's batch: a
  foreign-key violation there (the team went between the pattern read and the link insert) is
  ignored, the team being gone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LINK_FUNCTION = """
CREATE FUNCTION link_declared_team_repositories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO team_repositories (team_id, repository_id)
    SELECT DISTINCT p.team_id, NEW.id
    FROM team_repository_patterns p
    WHERE p.organization_id = NEW.organization_id AND NEW.name ~* p.name_regex
    ON CONFLICT DO NOTHING;
    RETURN NULL;
EXCEPTION WHEN foreign_key_violation THEN
    RETURN NULL;
END
$$
"""
LINK_TRIGGER = """
CREATE TRIGGER repositories_link_declared_teams
AFTER INSERT OR UPDATE OF name ON repositories
FOR EACH ROW EXECUTE FUNCTION link_declared_team_repositories()
"""


def upgrade() -> None:
    op.add_column("teams", sa.Column("managed_by", sa.String(255), nullable=True))
    op.create_table(
        "team_repository_patterns",
        sa.Column(
            "team_id",
            UUID(as_uuid=True),
            sa.ForeignKey("teams.id", ondelete="CASCADE", name="fk_team_repository_patterns_team_id_teams"),
            nullable=False,
        ),
        sa.Column("pattern", sa.String(255), nullable=False),
        sa.Column(
            "organization_id",
            UUID(as_uuid=True),
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_team_repository_patterns_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("name_regex", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "pattern", name="pk_team_repository_patterns"),
    )
    op.create_index(
        "ix_team_repository_patterns_organization_id", "team_repository_patterns", ["organization_id"]
    )
    op.execute(LINK_FUNCTION)
    op.execute(LINK_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS repositories_link_declared_teams ON repositories")
    op.execute("DROP FUNCTION IF EXISTS link_declared_team_repositories()")
    op.drop_index("ix_team_repository_patterns_organization_id", table_name="team_repository_patterns")
    op.drop_table("team_repository_patterns")
    op.drop_column("teams", "managed_by")
