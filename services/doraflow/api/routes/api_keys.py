"""`/api/v1/api-keys` — admin only."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from doraflow.api.auth import Role, expiry_from
from doraflow.api.deps import Admin, Context, Session
from doraflow.api.problems import problem_responses
from doraflow.api.routes.params import DEFAULT_LIMIT, Cursor, Limit
from doraflow.api.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from doraflow.api.schemas.common import Page
from doraflow.api.services import api_keys as service

router = APIRouter(prefix="/api-keys", tags=["api keys"], responses=problem_responses(401, 403, 422, 429))
KeySort = Literal["created_at", "-created_at", "name", "-name"]


@router.get("", response_model=Page[ApiKeyOut])
async def list_api_keys(
    principal: Admin,
    session: Session,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    sort: KeySort = "-created_at",
    include_revoked: Annotated[bool, Query(description="also list revoked keys")] = False,
) -> Page[ApiKeyOut]:
    rows, next_cursor = await service.list_keys(
        session,
        principal.organization_id,
        include_revoked=include_revoked,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[ApiKeyOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, principal: Admin, session: Session, context: Context
) -> ApiKeyCreated:
    """The answer holds the secret key; it is not stored and cannot be shown again."""
    issued = await service.create_key(
        session,
        context.hasher,
        principal.organization_id,
        name=body.name,
        role=Role(body.role),
        expires_at=expiry_from(body.expires_in_days, body.expires_at),
    )
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(issued.row).model_dump(), "key": issued.secret}
    )


@router.get("/{key_id}", response_model=ApiKeyOut, responses=problem_responses(404))
async def get_api_key(key_id: uuid.UUID, principal: Admin, session: Session) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await service.get_key(session, principal.organization_id, key_id))


@router.delete("/{key_id}", response_model=ApiKeyOut, responses=problem_responses(404, 409))
async def revoke_api_key(
    key_id: uuid.UUID, principal: Admin, session: Session, context: Context
) -> ApiKeyOut:
    """Revoke (idempotent). The key stops working at once on this replica, within seconds on others."""
    row = await service.revoke_key(session, principal.organization_id, key_id)
    context.authenticator.forget(row.id)
    return ApiKeyOut.model_validate(row)
