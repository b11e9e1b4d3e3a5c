"""Developer profiles and their merged identities."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from doraflow.api.schemas.common import ApiModel, Name, RequestModel


class IdentityOut(ApiModel):
    kind: str = Field(description="email, github, gitlab, bitbucket, jira, alias …")
    value: str


class DeveloperOut(ApiModel):
    id: uuid.UUID
    email: str
    name: str | None
    github_username: str | None
    gitlab_username: str | None
    bitbucket_username: str | None
    created_at: datetime


class DeveloperDetail(DeveloperOut):
    identities: list[IdentityOut]
    team_ids: list[uuid.UUID]


class DeveloperUpdate(RequestModel):
    name: Name | None = None


class DeveloperMerge(RequestModel):
    """Fold these developers into the one in the path: their identities, team memberships and
    authored work move over, and they are deleted."""

    developer_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
