"""`/api/v1/teams` with members and repositories."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Response, status

from doraflow.api.deps import Context, Member, Session, Viewer
from doraflow.api.problems import problem_responses
from doraflow.api.routes.params import DEFAULT_LIMIT, Cursor, Limit, Search
from doraflow.api.schemas.common import Page
from doraflow.api.schemas.teams import TeamCreate, TeamDetail, TeamMemberAdd, TeamOut, TeamUpdate
from doraflow.api.services import teams as service

router = APIRouter(prefix="/teams", tags=["teams"], responses=problem_responses(401, 403, 422, 429))
TeamSort = Literal["name", "-name", "slug", "-slug", "created_at", "-created_at"]


@router.get("", response_model=Page[TeamOut])
async def list_teams(
    principal: Viewer,
    session: Session,
    q: Search = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    sort: TeamSort = "name",
) -> Page[TeamOut]:
    items, next_cursor = await service.list_teams(
        session, principal.organization_id, q=q, sort=sort, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "", response_model=TeamDetail, status_code=status.HTTP_201_CREATED, responses=problem_responses(404, 409)
)
async def create_team(body: TeamCreate, principal: Member, session: Session, context: Context) -> TeamDetail:
    return await service.create_team(
        session,
        context.cache,
        principal.organization_id,
        name=body.name,
        slug=body.slug,
        member_ids=body.member_ids,
        repository_ids=body.repository_ids,
    )


@router.get("/{team_id}", response_model=TeamDetail, responses=problem_responses(404))
async def get_team(team_id: uuid.UUID, principal: Viewer, session: Session, context: Context) -> TeamDetail:
    return await service.get_team(session, context.cache, principal.organization_id, team_id)


@router.patch("/{team_id}", response_model=TeamDetail, responses=problem_responses(404, 409))
async def update_team(
    team_id: uuid.UUID, body: TeamUpdate, principal: Member, session: Session, context: Context
) -> TeamDetail:
    return await service.update_team(
        session, context.cache, principal.organization_id, team_id, name=body.name, slug=body.slug
    )


@router.delete("/{team_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
async def delete_team(team_id: uuid.UUID, principal: Member, session: Session, context: Context) -> Response:
    await service.delete_team(session, context.cache, principal.organization_id, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{team_id}/members/{developer_id}", response_model=TeamDetail, responses=problem_responses(404))
async def add_member(
    team_id: uuid.UUID,
    developer_id: uuid.UUID,
    principal: Member,
    session: Session,
    context: Context,
    body: TeamMemberAdd | None = None,
) -> TeamDetail:
    role = body.role if body is not None else "member"
    return await service.add_member(
        session, context.cache, principal.organization_id, team_id, developer_id, role
    )


@router.delete(
    "/{team_id}/members/{developer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def remove_member(
    team_id: uuid.UUID, developer_id: uuid.UUID, principal: Member, session: Session, context: Context
) -> Response:
    await service.remove_member(session, context.cache, principal.organization_id, team_id, developer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/{team_id}/repositories/{repository_id}", response_model=TeamDetail, responses=problem_responses(404)
)
async def add_repository(
    team_id: uuid.UUID, repository_id: uuid.UUID, principal: Member, session: Session, context: Context
) -> TeamDetail:
    return await service.add_repository(
        session, context.cache, principal.organization_id, team_id, repository_id
    )


@router.delete(
    "/{team_id}/repositories/{repository_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def remove_repository(
    team_id: uuid.UUID, repository_id: uuid.UUID, principal: Member, session: Session, context: Context
) -> Response:
    await service.remove_repository(session, context.cache, principal.organization_id, team_id, repository_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
