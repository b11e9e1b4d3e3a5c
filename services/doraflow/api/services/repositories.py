"""Repositories: listed and mapped to services here; created by the collectors' events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.pagination import paginate, parse_sort
from doraflow.api.problems import not_found
from doraflow.api.schemas.repositories import RepositoryOut
from doraflow.api.services.teams import escape_like
from doraflow.core.models import Repository, TeamRepository

SORTS = {"name": Repository.name, "created_at": Repository.created_at}


async def _teams_of(
    session: AsyncSession, repository_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    teams: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if repository_ids:
        rows = await session.execute(
            select(TeamRepository.repository_id, TeamRepository.team_id).where(
                TeamRepository.repository_id.in_(repository_ids)
            )
        )
        for repository_id, team_id in rows:
            teams[repository_id].append(team_id)
    return teams


def _out(row: Repository, team_ids: list[uuid.UUID]) -> RepositoryOut:
    out = RepositoryOut.model_validate(row)
    out.team_ids = sorted(team_ids)
    return out


async def list_repositories(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    q: str | None,
    provider: str | None,
    service: str | None,
    team_id: uuid.UUID | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[RepositoryOut], str | None]:
    statement = select(Repository).where(Repository.organization_id == organization_id)
    if q:
        statement = statement.where(Repository.name.ilike(f"%{escape_like(q)}%", escape="\\"))
    if provider:
        statement = statement.where(Repository.provider == provider)
    if service:
        statement = statement.where(Repository.service == service)
    if team_id is not None:
        statement = statement.where(
            Repository.id.in_(select(TeamRepository.repository_id).where(TeamRepository.team_id == team_id))
        )
    rows, next_cursor = await paginate(
        session, statement, parse_sort(sort, SORTS, Repository.id), cursor=cursor, limit=limit
    )
    teams = await _teams_of(session, [row.id for row in rows])
    return [_out(row, teams.get(row.id, [])) for row in rows], next_cursor


async def get_repository(
    session: AsyncSession, organization_id: uuid.UUID, repository_id: uuid.UUID
) -> RepositoryOut:
    row = await _repository(session, organization_id, repository_id)
    teams = await _teams_of(session, [row.id])
    return _out(row, teams.get(row.id, []))


async def _repository(
    session: AsyncSession, organization_id: uuid.UUID, repository_id: uuid.UUID
) -> Repository:
    row = await session.scalar(
        select(Repository).where(
            Repository.id == repository_id, Repository.organization_id == organization_id
        )
    )
    if row is None:
        raise not_found("repository", repository_id)
    return row


async def update_repository(
    session: AsyncSession,
    organization_id: uuid.UUID,
    repository_id: uuid.UUID,
    changes: dict[str, object],
) -> RepositoryOut:
    """Only the fields present in `changes` are written (so `{"service": null}` clears it)."""
    row = await _repository(session, organization_id, repository_id)
    for field in ("service", "default_branch"):
        if field in changes:
            setattr(row, field, changes[field])
    await session.commit()
    return await get_repository(session, organization_id, repository_id)


async def repository_ids_by_name(
    session: AsyncSession, organization_id: uuid.UUID, name: str
) -> Sequence[Repository]:
    return list(
        await session.scalars(
            select(Repository).where(Repository.organization_id == organization_id, Repository.name == name)
        )
    )
