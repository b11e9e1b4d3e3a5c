"""API keys: the secret is in `ApiKeyCreated` only, once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from doraflow.api.schemas.common import ApiModel, Name, RequestModel, Timestamp

RoleName = Literal["admin", "member", "viewer"]


class ApiKeyOut(ApiModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    role: RoleName
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the secret API key; shown only in this response — store it now")


class ApiKeyCreate(RequestModel):
    name: Name
    role: RoleName = "viewer"
    expires_at: Timestamp | None = Field(default=None, description="absolute expiry (UTC if no offset)")
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="or relative expiry")

    @model_validator(mode="after")
    def _one_expiry(self) -> ApiKeyCreate:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        return self
