"""Teams with their members (developers) and repositories."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from doraflow.api.schemas.common import ApiModel, Name, RequestModel, Slug


class TeamMemberOut(ApiModel):
    developer_id: uuid.UUID
    name: str | None
    email: str
    role: str


class TeamRepositoryOut(ApiModel):
    repository_id: uuid.UUID
    name: str
    provider: str


class TeamOut(ApiModel):
    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime
    member_count: int = 0
    repository_count: int = 0
    managed_by: str | None = Field(
        default=None,
        description="the resource declaring this team (its members and repositories are synced from "
        "it; changes made here are undone at the next sync); null for teams made through the API",
    )


class TeamDetail(TeamOut):
    members: list[TeamMemberOut]
    repositories: list[TeamRepositoryOut]


class TeamCreate(RequestModel):
    name: Name
    slug: Slug
    member_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    repository_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


class TeamUpdate(RequestModel):
    name: Name | None = None
    slug: Slug | None = None


class TeamMemberAdd(RequestModel):
    role: Literal["member", "lead"] = "member"


# -- declared teams (the operator syncing an Organization resource's `spec.teams`) ---------------


class DeclaredTeam(RequestModel):
    """One entry of `spec.teams`. `members` are emails, `provider:username` (`github:jdoe`,
    `gitlab:jane.doe`, `jira:<account id>`) or bare usernames (any of GitHub, GitLab, Bitbucket);
    `repositories` are full names or globs (`acme/api`, `acme/payments-*`, `acme/**`)."""

    slug: Slug
    name: Name
    members: list[Name] = Field(default_factory=list, max_length=1000)
    repositories: list[Name] = Field(default_factory=list, max_length=1000)


class TeamsSync(RequestModel):
    """The complete set of teams a resource declares: teams it declared before and no longer
    lists are removed; teams made through the API are left alone."""

    managed_by: Name = Field(description='who declares them, e.g. "Organization team-a/acme"')
    teams: list[DeclaredTeam] = Field(max_length=500)


class SyncedTeamOut(ApiModel):
    id: uuid.UUID
    slug: str
    name: str
    created: bool
    changed: bool
    member_count: int
    repository_count: int
    ambiguous_members: list[str] = Field(
        description="bare usernames that name different developers on different providers: "
        "write them as provider:username"
    )
    waiting_repositories: list[str] = Field(
        description="names and globs no collected repository matches yet; linked when one appears"
    )


class TeamsSynced(ApiModel):
    teams: list[SyncedTeamOut]
    removed: list[str] = Field(description="slugs of declared teams removed because no longer declared")
    created_developers: int = Field(description="members not seen yet, created as placeholders")
    changed: bool = Field(description="false when the declaration was already in place")
