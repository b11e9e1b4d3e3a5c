"""ORM models: the seed's schema (seed/system-design.md) plus what the metrics need (DESIGN.md §5).

Decisions on top of the seed, each for a metric or for multi-tenancy:
- Entities are scoped by `organization_id`; the seed's global uniques (repository by provider id,
  developer by email) become unique *per organization*, because two organizations may track the same
  public repository and the same person may work for both.
- `commits`, `pull_requests` and `deployments` are the seed's time-series tables (Timescale hypertables
  when the extension exists). Their primary keys include `time`, which Timescale requires of every
  unique index; `time` is a value that never changes for a row (authored time, opened time, start time),
  so the natural key stays a natural key. Nothing references them with a foreign key (Timescale
  restriction); links use plain ids.
- Rows created from events get deterministic ids (UUIDv5 of the natural key, see `natural_id`) so a
  replayed event lands on the same row without a lookup.
- Enrichment is stored, not recomputed per request: a commit's first production deployment and a pull
  request's, which is what makes lead time on a million commits a single indexed range scan.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMESPACE_DORAFLOW = uuid.UUID("5b1d5c1e-7f1e-4c43-9a57-2f0a7c3d9e10")

# Named constraints make Alembic migrations and downgrades deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_NAMESPACE_BYTES = NAMESPACE_DORAFLOW.bytes
# RFC 4122 version 5: the version nibble and the variant bits of a name's SHA-1
_VERSION_5_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5_BITS = (0x5000 << 64) | (0x8000 << 48)


@functools.lru_cache(maxsize=4096, typed=True)
def _text(part: object) -> str:
    """`str()` of a key part. The same organization and repository ids recur in every row of a
    batch, and `UUID.__str__` is Python code."""
    return str(part)


def natural_id(kind: str, *parts: object) -> uuid.UUID:
    """A stable UUID for an entity from its natural key, e.g. `natural_id("deployment", org, src, id)`.

    Exactly `uuid.uuid5(NAMESPACE_DORAFLOW, "\\x1f".join([kind, *map(str, parts)]))` (a unit test
    compares them), computed in half the time: the processor makes one per review, transition,
    deployment and incident it stores.
    """
    name = "\x1f".join([kind, *(part if type(part) is str else _text(part) for part in parts)])
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _VERSION_5_MASK) | _VERSION_5_BITS)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _org_fk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB}


# --- entities (seed "PostgreSQL Schema") -------------------------------------------------------


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Team(Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("organization_id", "slug"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created_at()
    # The resource declaring this team (e.g. "Organization team-a/acme"); NULL for teams made
    # through the API. Declared teams are synced from their resource and removed with it (0006).
    managed_by: Mapped[str | None] = mapped_column(String(255))


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("organization_id", "provider", "provider_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(50))
    provider_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
    default_branch: Mapped[str | None] = mapped_column(String(100))
    # The DORA "service" this repository deploys; several repositories may share one.
    service: Mapped[str | None] = mapped_column(String(255))
    integration: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created_at()


class Developer(Base):
    __tablename__ = "developers"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    email: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    github_username: Mapped[str | None] = mapped_column(String(255))
    gitlab_username: Mapped[str | None] = mapped_column(String(255))
    bitbucket_username: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created_at()


class DeveloperIdentity(Base):
    """Every identity seen for a developer (emails, provider accounts, aliases), so identities from
    GitHub, GitLab, Jira and plain git resolve to one `developers` row."""

    __tablename__ = "developer_identities"
    __table_args__ = (UniqueConstraint("organization_id", "kind", "value"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    developer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("developers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(50))  # email | github | gitlab | bitbucket | jira | alias …
    value: Mapped[str] = mapped_column(String(255))  # lower-cased
    created_at: Mapped[datetime] = _created_at()


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    developer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("developers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(50), server_default="member")
    created_at: Mapped[datetime] = _created_at()


class TeamRepository(Base):
    __tablename__ = "team_repositories"

    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Integration(Base):
    """An `Integration` resource as registered by the operator or `doraflow up`."""

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("namespace", "name"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    namespace: Mapped[str] = mapped_column(String(253))
    name: Mapped[str] = mapped_column(String(253))
    provider: Mapped[str] = mapped_column(String(50))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created_at()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ApiKey(Base):
    """API keys are stored as a keyed hash; `prefix` (first characters) identifies a key in lists."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin | member | viewer
    created_at: Mapped[datetime] = _created_at()
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class SyncCursor(Base):
    """Where a collector stopped, per (integration, scope, resource), so a restart resumes."""

    __tablename__ = "sync_cursors"

    integration: Mapped[str] = mapped_column(String(255), primary_key=True)  # "namespace/name"
    scope: Mapped[str] = mapped_column(String(512), primary_key=True)  # repository or project
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)  # commits, pull_requests, …
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


# --- time series (seed "TimescaleDB Schema") ----------------------------------------------------


class Commit(Base):
    __tablename__ = "commits"
    __table_args__ = (
        Index("ix_commits_repository_id_time", "repository_id", "time"),
        # Migration 0003 (metrics query layer) and 0004 (the processor's links).
        Index(
            "ix_commits_repository_pull_request",
            "repository_id",
            "pull_request_number",
            postgresql_include=["time", "is_merge"],
            postgresql_where=text("pull_request_number IS NOT NULL"),
        ),
        Index("ix_commits_commit_sha", "commit_sha"),
        Index("ix_commits_author_id", "author_id"),
    )

    time: Mapped[datetime] = mapped_column(primary_key=True)  # authored time
    repository_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    commit_sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    author_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    committed_at: Mapped[datetime | None]
    lines_added: Mapped[int | None] = mapped_column(Integer)
    lines_deleted: Mapped[int | None] = mapped_column(Integer)
    files_changed: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    is_merge: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    pull_request_number: Mapped[int | None] = mapped_column(Integer)
    # The lead-time enrichment lives in `commit_deployments` (migration 0008).


class CommitDeployment(Base):
    """A commit's lead-time enrichment (migration 0008), apart from the wide `commits` row so that
    setting it when a deployment arrives is a narrow insert, not a non-HOT update of a commit and
    its seven indexes. A row exists exactly when the commit has a first production deployment or is
    represented by its pull request; any other commit has the defaults and no row."""

    __tablename__ = "commit_deployments"
    __table_args__ = (
        # Lead time for changes: one index-only range scan per repository (doraflow.metrics.leadtime).
        Index(
            "ix_commit_deployments_lead_time",
            "repository_id",
            "first_deployed_at",
            postgresql_include=["lead_seconds", "is_merge", "represented_by_pull_request"],
            postgresql_where=text("first_deployed_at IS NOT NULL"),
        ),
    )

    repository_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    time: Mapped[datetime] = mapped_column(primary_key=True)  # the commit's authored time
    commit_sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    is_merge: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The first production deployment that shipped this commit, or its pull request's if earlier.
    first_deployment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    first_deployed_at: Mapped[datetime | None]
    # The merge or squash commit of a pull request that stands for the PR's own commits in lead time
    # (docs/metrics.md, "How the database computes it"); set by the processor.
    represented_by_pull_request: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # first_deployed_at - time, in seconds, as lead time computes it (migration 0009): NULL without
    # a deployment, negative under clock skew.
    lead_seconds: Mapped[float | None] = mapped_column(
        Double,
        Computed("doraflow_epoch_seconds(first_deployed_at) - doraflow_epoch_seconds(time)", persisted=True),
    )


class PullRequest(Base):
    __tablename__ = "pull_requests"
    __table_args__ = (
        # Migration 0003 (metrics query layer) and 0004 (the processor's links).
        Index(
            "ix_pull_requests_lead_time",
            "repository_id",
            "first_deployed_at",
            postgresql_include=[
                "pr_number",
                "time",
                "merged_at",
                "first_commit_at",
                "first_review_at",
                "merge_commit_sha",
            ],
            postgresql_where=text("first_deployed_at IS NOT NULL"),
        ),
        Index(
            "ix_pull_requests_repository_merged_at",
            "repository_id",
            "merged_at",
            postgresql_where=text("merged_at IS NOT NULL"),
        ),
        Index(
            "ix_pull_requests_repository_first_review_at",
            "repository_id",
            "first_review_at",
            postgresql_where=text("first_review_at IS NOT NULL"),
        ),
        Index("ix_pull_requests_repository_id_pr_number", "repository_id", "pr_number"),
        Index("ix_pull_requests_merge_commit_sha", "merge_commit_sha"),
        Index("ix_pull_requests_author_id", "author_id"),
    )

    time: Mapped[datetime] = mapped_column(primary_key=True)  # opened
    repository_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    pr_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    author_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    title: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(String(20))  # open | closed | merged
    merged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    first_commit_at: Mapped[datetime | None]
    first_review_at: Mapped[datetime | None]  # first review by someone other than the author
    merge_commit_sha: Mapped[str | None] = mapped_column(String(64))
    head_branch: Mapped[str | None] = mapped_column(String(255))
    base_branch: Mapped[str | None] = mapped_column(String(255))
    lines_added: Mapped[int | None] = mapped_column(Integer)
    lines_deleted: Mapped[int | None] = mapped_column(Integer)
    files_changed: Mapped[int | None] = mapped_column(Integer)
    commits_count: Mapped[int | None] = mapped_column(Integer)
    review_comments: Mapped[int | None] = mapped_column(Integer)
    reviews_count: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None]
    first_deployment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    first_deployed_at: Mapped[datetime | None]


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("organization_id", "source", "external_id", "time"),
        Index("ix_deployments_org_finished_at", "organization_id", "finished_at"),
        # Migration 0003: the only rows the DORA definitions count; incidents name deployments.
        Index(
            "ix_deployments_production_finished_at",
            "organization_id",
            "finished_at",
            postgresql_where=text("is_production AND status = 'success'"),
        ),
        Index("ix_deployments_organization_external_id", "organization_id", "external_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)  # natural_id(...)
    time: Mapped[datetime] = mapped_column(primary_key=True)  # started
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    repository_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    source: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(50))
    is_production: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    status: Mapped[str | None] = mapped_column(String(20))  # success | failed | in_progress | …
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    deployed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    revision: Mapped[str | None] = mapped_column(String(64))
    is_hotfix: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_rollback: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    url: Mapped[str | None] = mapped_column(Text)


class DeploymentCommit(Base):
    """Which commits a deployment shipped (from the commit list the deployment event carries)."""

    __tablename__ = "deployment_commits"

    deployment_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    commit_sha: Mapped[str] = mapped_column(String(64), primary_key=True)
    repository_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    __table_args__ = (Index("ix_deployment_commits_commit_sha", "commit_sha"),)


class PullRequestReview(Base):
    __tablename__ = "pull_request_reviews"
    __table_args__ = (
        UniqueConstraint("repository_id", "external_id"),
        Index("ix_pull_request_reviews_repository_id_pr_number", "repository_id", "pr_number"),
        Index("ix_pull_request_reviews_reviewer_id", "reviewer_id"),  # migration 0004
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    repository_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    pr_number: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(255))
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    state: Mapped[str] = mapped_column(String(30))  # approved | changes_requested | commented | dismissed
    submitted_at: Mapped[datetime]
    comments_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))


# --- work items -----------------------------------------------------------------------------------


class WorkItem(Base):
    """Issues from Jira, Linear and Asana (table `issues`)."""

    __tablename__ = "issues"
    __table_args__ = (UniqueConstraint("organization_id", "source", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    source: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(100))
    project: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    issue_type: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(100))
    status_category: Mapped[str | None] = mapped_column(String(20))  # todo | in_progress | done
    priority: Mapped[str | None] = mapped_column(String(50))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    story_points: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))
    labels: Mapped[list[str]] = mapped_column(ARRAY(String(255)), server_default=text("'{}'"))
    components: Mapped[list[str]] = mapped_column(ARRAY(String(255)), server_default=text("'{}'"))
    linked_issues: Mapped[list[str]] = mapped_column(ARRAY(String(255)), server_default=text("'{}'"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]  # first move into an in-progress category
    resolved_at: Mapped[datetime | None]
    url: Mapped[str | None] = mapped_column(Text)


class IssueTransition(Base):
    __tablename__ = "issue_transitions"
    __table_args__ = (
        UniqueConstraint("issue_id", "external_id"),
        # Migration 0003: work items completed in a window.
        Index(
            "ix_issue_transitions_done",
            "organization_id",
            "transitioned_at",
            postgresql_where=text("to_category = 'done'"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    # No foreign key (migration 0007): the processor creates a placeholder issue first.
    issue_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    external_id: Mapped[str] = mapped_column(String(255))  # provider history id (+ item index)
    from_status: Mapped[str | None] = mapped_column(String(100))
    to_status: Mapped[str] = mapped_column(String(100))
    from_category: Mapped[str | None] = mapped_column(String(20))
    to_category: Mapped[str | None] = mapped_column(String(20))
    transitioned_at: Mapped[datetime]
    author_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Sprint(Base):
    __tablename__ = "sprints"
    __table_args__ = (UniqueConstraint("organization_id", "source", "external_id"),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    source: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(255))
    board: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str | None] = mapped_column(String(20))  # future | active | closed
    start_at: Mapped[datetime | None]
    end_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class SprintIssue(Base):
    """Membership of an issue in a sprint, for throughput and carry-over."""

    __tablename__ = "sprint_issues"

    # No foreign keys (migration 0007): written with its sprint, after the issues' placeholders.
    sprint_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    issue_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, index=True)
    story_points: Mapped[float | None] = mapped_column(Numeric(10, 2, asdecimal=False))
    completed_in_sprint: Mapped[bool | None] = mapped_column(Boolean)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("organization_id", "source", "external_id"),
        Index("ix_incidents_org_created_at", "organization_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    source: Mapped[str] = mapped_column(String(50))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str | None] = mapped_column(String(20))
    service: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    # Explicit references as the source gave them, then the attribution the processor settled on.
    deployment_ref: Mapped[str | None] = mapped_column(String(255))
    commit_sha_ref: Mapped[str | None] = mapped_column(String(64))
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    attribution: Mapped[str] = mapped_column(String(20), server_default="unattributed")
    url: Mapped[str | None] = mapped_column(Text)


# --- refs and contributors (migration 0005) ---------------------------------------------------------
#
# Branches and tags are pointers that move both ways (a force push, a tag moved back), so which
# version of a row is newest is decided by when it was observed (`observed_at`, the event's
# `collected_at`), not by the time of the commit it points at: an older observation never
# overwrites a newer one. A ref gone from its repository keeps its row with `deleted_at` set.


class Branch(Base):
    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)  # natural_id(...)
    organization_id: Mapped[uuid.UUID] = _org_fk()
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    head_sha: Mapped[str] = mapped_column(String(64))
    is_default: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    protected: Mapped[bool | None] = mapped_column(Boolean)
    updated_at: Mapped[datetime | None]  # the head commit's committer time
    deleted_at: Mapped[datetime | None]
    observed_at: Mapped[datetime]


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("repository_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)  # natural_id(...)
    organization_id: Mapped[uuid.UUID] = _org_fk()
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    commit_sha: Mapped[str] = mapped_column(String(64))  # annotated tags peeled to their commit
    annotated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    tagged_at: Mapped[datetime | None]  # tagger time, or the commit's committer time
    tagger_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("developers.id", ondelete="SET NULL"), index=True
    )
    message: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None]
    observed_at: Mapped[datetime]


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("repository_id", "external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)  # natural_id(...)
    organization_id: Mapped[uuid.UUID] = _org_fk()
    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    external_id: Mapped[str] = mapped_column(String(255))  # the provider's release id
    tag_name: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    draft: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    prerelease: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("developers.id", ondelete="SET NULL"), index=True
    )
    url: Mapped[str | None] = mapped_column(Text)
    observed_at: Mapped[datetime]


class RepositoryContributor(Base):
    """Who contributed to a repository, with the commits the provider counts for them."""

    __tablename__ = "repository_contributors"

    repository_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    developer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("developers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    contributions: Mapped[int | None] = mapped_column(Integer)
    observed_at: Mapped[datetime]


# --- declared teams (migration 0006) --------------------------------------------------------------


class TeamRepositoryPattern(Base):
    """A repository an `Organization` resource assigns to a team, by full name or glob
    (`acme/api`, `acme/payments-*`), remembered so that a repository collected later is linked
    to the team as it appears (a trigger on `repositories`, see migration 0006). `name_regex` is
    the pattern as an anchored PostgreSQL regular expression, matched case-insensitively."""

    __tablename__ = "team_repository_patterns"

    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    pattern: Mapped[str] = mapped_column(String(255), primary_key=True)
    organization_id: Mapped[uuid.UUID] = _org_fk()
    name_regex: Mapped[str] = mapped_column(Text)
