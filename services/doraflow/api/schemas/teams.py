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
