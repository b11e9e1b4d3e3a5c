"""Repositories are created by the collectors; the API lists them and edits their mapping."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from doraflow.api.schemas.common import ApiModel, RequestModel, SafeStr


class RepositoryOut(ApiModel):
    id: uuid.UUID
    name: str
    provider: str
    provider_id: str
    url: str | None
    default_branch: str | None
    service: str | None = Field(description="the DORA service it deploys (defaults to the repository)")
    integration: str | None
    created_at: datetime
    team_ids: list[uuid.UUID] = Field(default_factory=list)


class RepositoryUpdate(RequestModel):
    """`service` maps the repository to the service its deployments belong to; `null` clears it."""

    service: Annotated[SafeStr, Field(min_length=1, max_length=255)] | None = None
    default_branch: Annotated[SafeStr, Field(min_length=1, max_length=100)] | None = None
