"""A repository's branches, tags, releases and contributors, as the processor stores them from the
collectors' `git.branch`, `git.tag`, `git.release` and `git.contributor` events (read-only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from doraflow.api.schemas.common import ApiModel


class BranchOut(ApiModel):
    id: uuid.UUID
    name: str
    head_sha: str
    is_default: bool
    protected: bool | None = Field(description="null when the provider does not say")
    updated_at: datetime | None = Field(description="the head commit's committer time")
    deleted_at: datetime | None = Field(description="when the branch was seen gone from its repository")


class TagOut(ApiModel):
    id: uuid.UUID
    name: str
    commit_sha: str = Field(description="the commit it points at (annotated tags peeled)")
    annotated: bool
    tagged_at: datetime | None = Field(description="tagger time, or the commit's committer time")
    tagger_id: uuid.UUID | None = Field(description="a developer (`/developers/{id}`)")
    message: str | None
    deleted_at: datetime | None = Field(description="when the tag was seen gone from its repository")


class ReleaseOut(ApiModel):
    id: uuid.UUID
    external_id: str = Field(description="the provider's release id")
    tag_name: str
    name: str | None
    created_at: datetime
    published_at: datetime | None = Field(description="null while a draft")
    draft: bool
    prerelease: bool
    author_id: uuid.UUID | None = Field(description="a developer (`/developers/{id}`)")
    url: str | None


class ContributorOut(ApiModel):
    """A contributor is a developer of the organization: the same `email` and `name` the
    developers endpoints show (their other fields are one `GET /developers/{id}` away)."""

    developer_id: uuid.UUID
    email: str
    name: str | None
    contributions: int | None = Field(description="commits the provider counts for them; null if unknown")
