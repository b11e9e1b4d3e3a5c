"""Organizations, the bootstrap call the operator makes, and `/me`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from doraflow.api.schemas.api_keys import ApiKeyCreated
from doraflow.api.schemas.common import ApiModel, JsonObject, Name, RequestModel, Slug


class OrganizationOut(ApiModel):
    id: uuid.UUID
    name: str
    slug: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class OrganizationCreate(RequestModel):
    """Register an organization (idempotent on `slug`); needs the service token."""

    name: Name
    slug: Slug
    settings: JsonObject = Field(default_factory=dict, description="free-form display settings")


class OrganizationUpdate(RequestModel):
    name: Name | None = None
    settings: JsonObject | None = None


class OrganizationRegistered(ApiModel):
    """`created` tells the operator whether `admin_key` is present: it is returned exactly once,
    when the organization is created, and never again."""

    organization: OrganizationOut
    created: bool
    admin_key: ApiKeyCreated | None = None


class WhoAmI(ApiModel):
    organization: OrganizationOut
    key_id: uuid.UUID
    key_name: str
    key_prefix: str
    role: str
    expires_at: datetime | None


class AdminKeyCreate(RequestModel):
    """A replacement admin key for the operator (service token)."""

    name: Name = "kubernetes-admin"
