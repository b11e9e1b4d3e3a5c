"""Teams: CRUD plus membership (developers) and ownership (repositories).

Teams are cached under the seed's `team:{id}` key as their rendered JSON, because the dashboard
asks for the same team on every view; any change through this module deletes the entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.pagination import paginate, parse_sort
from doraflow.api.problems import Problem, not_found
from doraflow.api.schemas.teams import TeamDetail, TeamMemberOut, TeamOut, TeamRepositoryOut
from doraflow.core.cache import Cache, keys
from doraflow.core.models import Developer, Repository, Team, TeamMember, TeamRepository

SORTS = {"name": Team.name, "slug": Team.slug, "created_at": Team.created_at}


async def _team(session: AsyncSession, organization_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    row = await session.scalar(
        select(Team).where(Team.id == team_id, Team.organization_id == organization_id)
    )
    if row is None:
        raise not_found("team", team_id)
    return row


async def _require_owned(
    session: AsyncSession,
    model: type[Developer] | type[Repository],
    organization_id: uuid.UUID,
    ids: Iterable[uuid.UUID],
) -> None:
    """Linking another organization's developer or repository is refused like an unknown id."""
    wanted = set(ids)
    if not wanted:
        return
    found = set(
        await session.scalars(
            select(model.id).where(model.id.in_(wanted), model.organization_id == organization_id)
        )
    )
    missing = sorted(str(i) for i in wanted - found)
    if missing:
        raise not_found(model.__name__.lower(), ", ".join(missing))


async def list_teams(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    q: str | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[TeamOut], str | None]:
    statement = select(Team).where(Team.organization_id == organization_id)
    if q:
        pattern = f"%{escape_like(q)}%"
        statement = statement.where(
            Team.name.ilike(pattern, escape="\\") | Team.slug.ilike(pattern, escape="\\")
        )
    rows, next_cursor = await paginate(
        session, statement, parse_sort(sort, SORTS, Team.id), cursor=cursor, limit=limit
    )
    counts = await _counts(session, [row.id for row in rows])
    return [
        TeamOut(
            id=row.id,
            name=row.name,
            slug=row.slug,
            created_at=row.created_at,
            member_count=counts[row.id][0],
            repository_count=counts[row.id][1],
            managed_by=row.managed_by,
        )
        for row in rows
    ], next_cursor


async def _counts(session: AsyncSession, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    if not team_ids:
        return {}
    members: dict[uuid.UUID, int] = {}
    for team_id, count in await session.execute(
        select(TeamMember.team_id, func.count())
        .where(TeamMember.team_id.in_(team_ids))
        .group_by(TeamMember.team_id)
    ):
        members[team_id] = count
    repositories: dict[uuid.UUID, int] = {}
    for team_id, count in await session.execute(
        select(TeamRepository.team_id, func.count())
        .where(TeamRepository.team_id.in_(team_ids))
        .group_by(TeamRepository.team_id)
    ):
        repositories[team_id] = count
    return {team_id: (members.get(team_id, 0), repositories.get(team_id, 0)) for team_id in team_ids}


async def get_team(
    session: AsyncSession, cache: Cache, organization_id: uuid.UUID, team_id: uuid.UUID
) -> TeamDetail:
    cached = await cache.get(keys.team(team_id))
    if cached is not None:
        detail = TeamDetail.model_validate_json(cached)
        # The key is the team id alone (seed pattern): check the organization on every hit.
        owner = await session.scalar(select(Team.organization_id).where(Team.id == team_id))
        if owner == organization_id:
            return detail
        raise not_found("team", team_id)
    team = await _team(session, organization_id, team_id)
    members = (
        await session.execute(
            select(TeamMember.developer_id, Developer.name, Developer.email, TeamMember.role)
            .join(Developer, Developer.id == TeamMember.developer_id)
            .where(TeamMember.team_id == team_id)
            .order_by(Developer.name, Developer.email)
        )
    ).all()
    repositories = (
        await session.execute(
            select(TeamRepository.repository_id, Repository.name, Repository.provider)
            .join(Repository, Repository.id == TeamRepository.repository_id)
            .where(TeamRepository.team_id == team_id)
            .order_by(Repository.name)
        )
    ).all()
    detail = TeamDetail(
        id=team.id,
        name=team.name,
        slug=team.slug,
        created_at=team.created_at,
        member_count=len(members),
        repository_count=len(repositories),
        managed_by=team.managed_by,
        members=[TeamMemberOut(developer_id=m[0], name=m[1], email=m[2], role=m[3]) for m in members],
        repositories=[TeamRepositoryOut(repository_id=r[0], name=r[1], provider=r[2]) for r in repositories],
    )
    await cache.set(keys.team(team_id), detail.model_dump_json().encode(), 300)
    return detail


async def create_team(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    *,
    name: str,
    slug: str,
    member_ids: Sequence[uuid.UUID],
    repository_ids: Sequence[uuid.UUID],
) -> TeamDetail:
    await _require_owned(session, Developer, organization_id, member_ids)
    await _require_owned(session, Repository, organization_id, repository_ids)
    team = Team(
        id=uuid.uuid4(), organization_id=organization_id, name=name, slug=slug, created_at=datetime.now(UTC)
    )
    session.add(team)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, f"a team with slug {slug!r} already exists") from None
    for developer_id in dict.fromkeys(member_ids):
        session.add(TeamMember(team_id=team.id, developer_id=developer_id, role="member"))
    for repository_id in dict.fromkeys(repository_ids):
        session.add(TeamRepository(team_id=team.id, repository_id=repository_id))
    await session.commit()
    return await get_team(session, cache, organization_id, team.id)


async def update_team(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    team_id: uuid.UUID,
    *,
    name: str | None,
    slug: str | None,
) -> TeamDetail:
    team = await _team(session, organization_id, team_id)
    if name is not None:
        team.name = name
    if slug is not None:
        team.slug = slug
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Problem(409, f"a team with slug {slug!r} already exists") from None
    await cache.delete(keys.team(team_id))
    return await get_team(session, cache, organization_id, team_id)


async def delete_team(
    session: AsyncSession, cache: Cache, organization_id: uuid.UUID, team_id: uuid.UUID
) -> None:
    team = await _team(session, organization_id, team_id)
    await session.delete(team)
    await session.commit()
    await cache.delete(keys.team(team_id))


async def add_member(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    team_id: uuid.UUID,
    developer_id: uuid.UUID,
    role: str,
) -> TeamDetail:
    await _team(session, organization_id, team_id)
    await _require_owned(session, Developer, organization_id, [developer_id])
    await session.execute(
        insert(TeamMember)
        .values(team_id=team_id, developer_id=developer_id, role=role)
        .on_conflict_do_update(
            index_elements=[TeamMember.team_id, TeamMember.developer_id], set_={"role": role}
        )
    )
    await session.commit()
    await cache.delete(keys.team(team_id))
    return await get_team(session, cache, organization_id, team_id)


async def remove_member(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    team_id: uuid.UUID,
    developer_id: uuid.UUID,
) -> None:
    await _team(session, organization_id, team_id)
    result = await session.execute(
        delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.developer_id == developer_id)
    )
    await session.commit()
    await cache.delete(keys.team(team_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("team member", developer_id)


async def add_repository(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    team_id: uuid.UUID,
    repository_id: uuid.UUID,
) -> TeamDetail:
    await _team(session, organization_id, team_id)
    await _require_owned(session, Repository, organization_id, [repository_id])
    await session.execute(
        insert(TeamRepository).values(team_id=team_id, repository_id=repository_id).on_conflict_do_nothing()
    )
    await session.commit()
    await cache.delete(keys.team(team_id))
    return await get_team(session, cache, organization_id, team_id)


async def remove_repository(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    team_id: uuid.UUID,
    repository_id: uuid.UUID,
) -> None:
    await _team(session, organization_id, team_id)
    result = await session.execute(
        delete(TeamRepository).where(
            TeamRepository.team_id == team_id, TeamRepository.repository_id == repository_id
        )
    )
    await session.commit()
    await cache.delete(keys.team(team_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise not_found("team repository", repository_id)


async def team_repository_ids(
    session: AsyncSession, organization_id: uuid.UUID, team_id: uuid.UUID
) -> tuple[uuid.UUID, ...]:
    await _team(session, organization_id, team_id)
    return tuple(
        await session.scalars(select(TeamRepository.repository_id).where(TeamRepository.team_id == team_id))
    )


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
