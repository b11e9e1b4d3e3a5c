"""`/api/v1/repositories` — list, read, and map to a service; a repository's branches, tags,
releases and contributors (read-only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from doraflow.api.deps import Context, Member, Session, Viewer
from doraflow.api.problems import problem_responses
from doraflow.api.routes.params import DEFAULT_LIMIT, Cursor, Limit, Search
from doraflow.api.schemas.common import Page, SafeStr
from doraflow.api.schemas.refs import BranchOut, ContributorOut, ReleaseOut, TagOut
from doraflow.api.schemas.repositories import RepositoryOut, RepositoryUpdate
from doraflow.api.services import refs as refs_service
from doraflow.api.services import repositories as service
from doraflow.core.cache import keys

router = APIRouter(
    prefix="/repositories", tags=["repositories"], responses=problem_responses(401, 403, 422, 429)
)
RepositorySort = Literal["name", "-name", "created_at", "-created_at"]
IncludeDeleted = Annotated[
    bool, Query(description="also list refs seen gone from the repository (`deleted_at` set)")
]


@router.get("", response_model=Page[RepositoryOut])
async def list_repositories(
    principal: Viewer,
    session: Session,
    q: Search = None,
    provider: Annotated[SafeStr | None, Query(max_length=50)] = None,
    service_name: Annotated[SafeStr | None, Query(alias="service", max_length=255)] = None,
    team_id: uuid.UUID | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
    sort: RepositorySort = "name",
) -> Page[RepositoryOut]:
    items, next_cursor = await service.list_repositories(
        session,
        principal.organization_id,
        q=q,
        provider=provider,
        service=service_name,
        team_id=team_id,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{repository_id}", response_model=RepositoryOut, responses=problem_responses(404))
async def get_repository(repository_id: uuid.UUID, principal: Viewer, session: Session) -> RepositoryOut:
    return await service.get_repository(session, principal.organization_id, repository_id)


@router.patch("/{repository_id}", response_model=RepositoryOut, responses=problem_responses(404))
async def update_repository(
    repository_id: uuid.UUID, body: RepositoryUpdate, principal: Member, session: Session, context: Context
) -> RepositoryOut:
    """Changing the service mapping changes which incidents count against the repository, so
    its cached metrics are dropped."""
    out = await service.update_repository(
        session, principal.organization_id, repository_id, body.model_dump(exclude_unset=True)
    )
    _, patterns = keys.invalidation(
        organizations=[principal.organization_id], repositories=[repository_id], teams=out.team_ids
    )
    for pattern in patterns:
        await context.cache.delete_pattern(pattern)
    return out


@router.get("/{repository_id}/branches", response_model=Page[BranchOut], responses=problem_responses(404))
async def list_branches(
    repository_id: uuid.UUID,
    principal: Viewer,
    session: Session,
    include_deleted: IncludeDeleted = False,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[BranchOut]:
    """The default branch first, then by name."""
    items, next_cursor = await refs_service.list_branches(
        session,
        principal.organization_id,
        repository_id,
        include_deleted=include_deleted,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{repository_id}/tags", response_model=Page[TagOut], responses=problem_responses(404))
async def list_tags(
    repository_id: uuid.UUID,
    principal: Viewer,
    session: Session,
    include_deleted: IncludeDeleted = False,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[TagOut]:
    """Newest `tagged_at` first; tags without a time last."""
    items, next_cursor = await refs_service.list_tags(
        session,
        principal.organization_id,
        repository_id,
        include_deleted=include_deleted,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{repository_id}/releases", response_model=Page[ReleaseOut], responses=problem_responses(404))
async def list_releases(
    repository_id: uuid.UUID,
    principal: Viewer,
    session: Session,
    prerelease: Annotated[
        bool | None, Query(description="only pre-releases (true) or only full releases (false)")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ReleaseOut]:
    """Newest first, by publication time (creation time for unpublished drafts)."""
    items, next_cursor = await refs_service.list_releases(
        session, principal.organization_id, repository_id, prerelease=prerelease, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{repository_id}/contributors", response_model=Page[ContributorOut], responses=problem_responses(404)
)
async def list_contributors(
    repository_id: uuid.UUID,
    principal: Viewer,
    session: Session,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[ContributorOut]:
    """Most contributions first, then by email."""
    items, next_cursor = await refs_service.list_contributors(
        session, principal.organization_id, repository_id, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)
