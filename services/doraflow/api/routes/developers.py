"""`/api/v1/developers` — profiles, identities, merging."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter

from doraflow.api.deps import Context, Member, Session, Viewer
from doraflow.api.problems import problem_responses
from doraflow.api.routes.params import DEFAULT_LIMIT, Cursor, Limit, Search
from doraflow.api.schemas.common import Page
from doraflow.api.schemas.developers import DeveloperDetail, DeveloperMerge, DeveloperOut, DeveloperUpdate
from doraflow.api.services import developers as service

router = APIRouter(prefix="/developers", tags=["developers"], responses=problem_responses(401, 403, 422, 429))
DeveloperSort = Literal["email", "-email", "created_at", "-created_at"]


@router.get("", response_model=Page[DeveloperOut])
async def list_developers(
    principal: Viewer,
    session: Session,
    q: Search = None,
    team_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    sort: DeveloperSort = "email",
) -> Page[DeveloperOut]:
    rows, next_cursor = await service.list_developers(
        session, principal.organization_id, q=q, team_id=team_id, sort=sort, cursor=cursor, limit=limit
    )
    return Page(items=[DeveloperOut.model_validate(row) for row in rows], next_cursor=next_cursor)


@router.get("/{developer_id}", response_model=DeveloperDetail, responses=problem_responses(404))
async def get_developer(developer_id: uuid.UUID, principal: Viewer, session: Session) -> DeveloperDetail:
    return await service.get_developer(session, principal.organization_id, developer_id)


@router.patch("/{developer_id}", response_model=DeveloperDetail, responses=problem_responses(404))
async def update_developer(
    developer_id: uuid.UUID, body: DeveloperUpdate, principal: Member, session: Session, context: Context
) -> DeveloperDetail:
    return await service.update_developer(
        session, context.cache, principal.organization_id, developer_id, name=body.name
    )


@router.post("/{developer_id}/merge", response_model=DeveloperDetail, responses=problem_responses(404))
async def merge_developers(
    developer_id: uuid.UUID, body: DeveloperMerge, principal: Member, session: Session, context: Context
) -> DeveloperDetail:
    """Fold `developer_ids` into this developer (identities, teams, authored work)."""
    return await service.merge_developers(
        session, context.cache, principal.organization_id, developer_id, body.developer_ids
    )
