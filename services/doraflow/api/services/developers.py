"""Developer profiles and identity merging.

The processor resolves the identities it sees (emails, provider usernames) to one developer
automatically; merging is for what it cannot know — that `jdoe@home.example` and `jane@acme.com`
are the same person. A merge moves everything of the merged developers to the kept one: their
identities (so future events resolve to it), team memberships, the authorship of stored
commits, pull requests, reviews, deployments, work items, tags and releases, and the repository
contributor rows; then the merged rows are deleted. It moves what the processor's own merge of a
provisional developer moves (`processor.entities.MERGE_REFERENCES`), by the same rules, so a
developer looks the same whichever of the two merged it. It runs in one transaction: a failure
leaves nothing half-merged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.pagination import paginate, parse_sort
from doraflow.api.problems import field_problem, not_found
from doraflow.api.schemas.developers import DeveloperDetail, IdentityOut
from doraflow.api.services.teams import escape_like
from doraflow.core.cache import Cache, keys
from doraflow.core.models import (
    Commit,
    Deployment,
    Developer,
    DeveloperIdentity,
    IssueTransition,
    PullRequest,
    PullRequestReview,
    Release,
    RepositoryContributor,
    Tag,
    TeamMember,
    WorkItem,
)

SORTS = {"email": Developer.email, "created_at": Developer.created_at}
_USERNAMES = ("github_username", "gitlab_username", "bitbucket_username")


async def _developer(session: AsyncSession, organization_id: uuid.UUID, developer_id: uuid.UUID) -> Developer:
    row = await session.scalar(
        select(Developer).where(Developer.id == developer_id, Developer.organization_id == organization_id)
    )
    if row is None:
        raise not_found("developer", developer_id)
    return row


async def list_developers(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    q: str | None,
    team_id: uuid.UUID | None,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Developer], str | None]:
    statement = select(Developer).where(Developer.organization_id == organization_id)
    if q:
        pattern = f"%{escape_like(q)}%"
        statement = statement.where(
            Developer.email.ilike(pattern, escape="\\") | Developer.name.ilike(pattern, escape="\\")
        )
    if team_id is not None:
        statement = statement.where(
            Developer.id.in_(select(TeamMember.developer_id).where(TeamMember.team_id == team_id))
        )
    return await paginate(
        session, statement, parse_sort(sort, SORTS, Developer.id), cursor=cursor, limit=limit
    )


async def get_developer(
    session: AsyncSession, organization_id: uuid.UUID, developer_id: uuid.UUID
) -> DeveloperDetail:
    row = await _developer(session, organization_id, developer_id)
    identities = (
        await session.execute(
            select(DeveloperIdentity.kind, DeveloperIdentity.value)
            .where(DeveloperIdentity.developer_id == developer_id)
            .order_by(DeveloperIdentity.kind, DeveloperIdentity.value)
        )
    ).all()
    team_ids = list(
        await session.scalars(select(TeamMember.team_id).where(TeamMember.developer_id == developer_id))
    )
    detail = DeveloperDetail.model_validate(
        {
            **{c: getattr(row, c) for c in ("id", "email", "name", *_USERNAMES, "created_at")},
            "identities": [IdentityOut(kind=k, value=v) for k, v in identities],
            "team_ids": sorted(team_ids),
        }
    )
    # The row's own email and usernames are identities too, even if the processor did not
    # record them separately.
    known = {(i.kind, i.value) for i in detail.identities}
    implicit = [("email", row.email.lower())] + [
        (name.removesuffix("_username"), getattr(row, name).lower())
        for name in _USERNAMES
        if getattr(row, name)
    ]
    for kind, value in implicit:
        if (kind, value) not in known:
            detail.identities.append(IdentityOut(kind=kind, value=value))
    detail.identities.sort(key=lambda i: (i.kind, i.value))
    return detail


async def update_developer(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    developer_id: uuid.UUID,
    *,
    name: str | None,
) -> DeveloperDetail:
    row = await _developer(session, organization_id, developer_id)
    if name is not None:
        row.name = name
    await session.commit()
    await _forget_teams_of(session, cache, [developer_id])
    return await get_developer(session, organization_id, developer_id)


async def merge_developers(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    target_id: uuid.UUID,
    source_ids: Sequence[uuid.UUID],
) -> DeveloperDetail:
    sources = list(dict.fromkeys(source_ids))
    if target_id in sources:
        raise field_problem(
            "developer_ids", "must not contain the developer being merged into", location="body"
        )
    target = await _developer(session, organization_id, target_id)
    merged = list(
        await session.scalars(
            select(Developer)
            .where(Developer.id.in_(sources), Developer.organization_id == organization_id)
            .with_for_update()
        )
    )
    missing = set(sources) - {row.id for row in merged}
    if missing:
        raise not_found("developer", ", ".join(sorted(map(str, missing))))
    teams = await _teams_of(session, [target_id, *sources])

    # Identities: the merged developers' rows move; their own email/usernames become identities.
    await session.execute(
        update(DeveloperIdentity)
        .where(
            DeveloperIdentity.developer_id.in_(sources), DeveloperIdentity.organization_id == organization_id
        )
        .values(developer_id=target_id)
    )
    implicit = [("email", row.email.lower()) for row in merged] + [
        (name.removesuffix("_username"), getattr(row, name).lower())
        for row in merged
        for name in _USERNAMES
        if getattr(row, name)
    ]
    for kind, value in implicit:
        await session.execute(
            insert(DeveloperIdentity)
            .values(
                id=uuid.uuid4(),
                organization_id=organization_id,
                developer_id=target_id,
                kind=kind,
                value=value,
            )
            .on_conflict_do_update(
                index_elements=[
                    DeveloperIdentity.organization_id,
                    DeveloperIdentity.kind,
                    DeveloperIdentity.value,
                ],
                set_={"developer_id": target_id},
            )
        )
    for name in _USERNAMES:
        if getattr(target, name) is None:
            setattr(target, name, next((getattr(row, name) for row in merged if getattr(row, name)), None))
    if target.name is None:
        target.name = next((row.name for row in merged if row.name), None)

    # Team memberships: join the merged developers' teams (keeping an existing role).
    memberships = await session.execute(
        select(TeamMember.team_id, TeamMember.role).where(TeamMember.developer_id.in_(sources))
    )
    for team_id, role in memberships:
        await session.execute(
            insert(TeamMember)
            .values(team_id=team_id, developer_id=target_id, role=role)
            .on_conflict_do_nothing()
        )

    # Authored work follows the person.
    for column in (
        Commit.author_id,
        PullRequest.author_id,
        PullRequestReview.reviewer_id,
        Deployment.deployed_by,
        WorkItem.assignee_id,
        IssueTransition.author_id,
        Tag.tagger_id,
        Release.author_id,
    ):
        table = column.class_
        await session.execute(
            update(table)
            .where(column.in_(sources), table.organization_id == organization_id)
            .values({column.key: target_id})
        )
    await _merge_contributors(session, target_id, sources)
    await session.flush()
    await session.execute(delete(Developer).where(Developer.id.in_(sources)))
    await session.commit()
    for team_id in teams:
        await cache.delete(keys.team(team_id))
    return await get_developer(session, organization_id, target_id)


async def _merge_contributors(
    session: AsyncSession, target_id: uuid.UUID, sources: Sequence[uuid.UUID]
) -> None:
    """Move the merged developers' `repository_contributors` rows to the kept developer before
    the merged rows are deleted (which would cascade to them).

    One row per repository survives, by the rule the processor's merge of a provisional developer
    states (`MERGE_CONTRIBUTORS` in `processor.refs`): the newest observation wins; on a tie, the
    larger count. Counts are not added here: rows observed apart may count the same commits twice,
    and the next listing of the repository resolves every identity to the kept developer and sums
    those it names together.
    """
    newest_per_repository = (
        select(
            RepositoryContributor.repository_id,
            literal(target_id).label("developer_id"),
            RepositoryContributor.contributions,
            RepositoryContributor.observed_at,
        )
        .where(RepositoryContributor.developer_id.in_(sources))
        .ext(distinct_on(RepositoryContributor.repository_id))
        .order_by(
            RepositoryContributor.repository_id,
            RepositoryContributor.observed_at.desc(),
            RepositoryContributor.contributions.desc().nulls_last(),
        )
    )
    moved = insert(RepositoryContributor).from_select(
        ["repository_id", "developer_id", "contributions", "observed_at"], newest_per_repository
    )
    await session.execute(
        moved.on_conflict_do_update(
            index_elements=[RepositoryContributor.repository_id, RepositoryContributor.developer_id],
            set_={
                "contributions": case(
                    (
                        moved.excluded.observed_at > RepositoryContributor.observed_at,
                        moved.excluded.contributions,
                    ),
                    else_=func.greatest(RepositoryContributor.contributions, moved.excluded.contributions),
                ),
                "observed_at": moved.excluded.observed_at,
            },
            where=moved.excluded.observed_at >= RepositoryContributor.observed_at,
        )
    )


async def _teams_of(session: AsyncSession, developer_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    return set(
        await session.scalars(select(TeamMember.team_id).where(TeamMember.developer_id.in_(developer_ids)))
    )


async def _forget_teams_of(session: AsyncSession, cache: Cache, developer_ids: Sequence[uuid.UUID]) -> None:
    for team_id in await _teams_of(session, developer_ids):
        await cache.delete(keys.team(team_id))
