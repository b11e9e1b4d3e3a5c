"""A repository's branches, tags, releases and contributors: read-only lists of what the processor
stores from the collectors' ref and contributor events.

Each list has one fixed order, the one a reader of the repository expects (the default branch
first, the newest tag and release first, the biggest contributor first), and that order is a
keyset the cursor can resume from. Those orders are expressions rather than plain columns —
"default first" is a rank, a tag or draft release without a time still needs a place — so each
sort expression is selected under a label and `paginate` reads the position from the row.
Nullable times are given a value (`NULLS_LAST_AT`) so that tuple comparison stays total:
a NULL in a row-value comparison would make rows vanish from the next page.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, DateTime, Select, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.pagination import SortKey, paginate
from doraflow.api.problems import not_found
from doraflow.api.schemas.refs import BranchOut, ContributorOut, ReleaseOut, TagOut
from doraflow.core.models import Branch, Developer, Release, Repository, RepositoryContributor, Tag

# Where a tag without a time sorts among the newest-first: after every dated one.
NULLS_LAST_AT = datetime(1970, 1, 1, tzinfo=UTC)


def _sort_key(name: str, *columns: ColumnElement[Any], descending: bool = False) -> SortKey:
    """A `SortKey` over labelled expressions. `paginate` only orders by, compares, and reads
    `.key`/`.type` of its columns, which a label has as a mapped attribute does; the cursor's
    `name` ties it to this list's order."""
    return SortKey(name, cast(tuple[Any, ...], columns), descending)


async def _require_repository(
    session: AsyncSession, organization_id: uuid.UUID, repository_id: uuid.UUID
) -> None:
    """Another organization's repository is reported exactly like a missing one (DESIGN.md §8)."""
    found = await session.scalar(
        select(Repository.id).where(
            Repository.id == repository_id, Repository.organization_id == organization_id
        )
    )
    if found is None:
        raise not_found("repository", repository_id)


async def _page(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    sort: SortKey,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    return await paginate(session, statement, sort, cursor=cursor, limit=limit, entities=False)


async def list_branches(
    session: AsyncSession,
    organization_id: uuid.UUID,
    repository_id: uuid.UUID,
    *,
    include_deleted: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[BranchOut], str | None]:
    """The default branch first, then by name."""
    await _require_repository(session, organization_id, repository_id)
    rank = case((Branch.is_default, 0), else_=1).label("rank")
    name = Branch.name.label("name")
    branch_id = Branch.id.label("id")
    statement = select(Branch, rank, name, branch_id).where(
        Branch.organization_id == organization_id, Branch.repository_id == repository_id
    )
    if not include_deleted:
        statement = statement.where(Branch.deleted_at.is_(None))
    rows, next_cursor = await _page(
        session, statement, _sort_key("default,name", rank, name, branch_id), cursor=cursor, limit=limit
    )
    return [BranchOut.model_validate(row.Branch) for row in rows], next_cursor


async def list_tags(
    session: AsyncSession,
    organization_id: uuid.UUID,
    repository_id: uuid.UUID,
    *,
    include_deleted: bool,
    cursor: str | None,
    limit: int,
) -> tuple[list[TagOut], str | None]:
    """Newest `tagged_at` first (tags without a time last), then by name descending."""
    await _require_repository(session, organization_id, repository_id)
    tagged_at = func.coalesce(Tag.tagged_at, literal(NULLS_LAST_AT, DateTime(timezone=True))).label(
        "position_at"
    )
    name = Tag.name.label("name")
    tag_id = Tag.id.label("id")
    statement = select(Tag, tagged_at, name, tag_id).where(
        Tag.organization_id == organization_id, Tag.repository_id == repository_id
    )
    if not include_deleted:
        statement = statement.where(Tag.deleted_at.is_(None))
    rows, next_cursor = await _page(
        session,
        statement,
        _sort_key("-tagged_at", tagged_at, name, tag_id, descending=True),
        cursor=cursor,
        limit=limit,
    )
    return [TagOut.model_validate(row.Tag) for row in rows], next_cursor


async def list_releases(
    session: AsyncSession,
    organization_id: uuid.UUID,
    repository_id: uuid.UUID,
    *,
    prerelease: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReleaseOut], str | None]:
    """Newest first, by when published — or created, for a draft that is not published yet."""
    await _require_repository(session, organization_id, repository_id)
    released_at = func.coalesce(Release.published_at, Release.created_at).label("position_at")
    release_id = Release.id.label("id")
    statement = select(Release, released_at, release_id).where(
        Release.organization_id == organization_id, Release.repository_id == repository_id
    )
    if prerelease is not None:
        statement = statement.where(Release.prerelease.is_(prerelease))
    rows, next_cursor = await _page(
        session,
        statement,
        _sort_key("-released_at", released_at, release_id, descending=True),
        cursor=cursor,
        limit=limit,
    )
    return [ReleaseOut.model_validate(row.Release) for row in rows], next_cursor


async def list_contributors(
    session: AsyncSession,
    organization_id: uuid.UUID,
    repository_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[ContributorOut], str | None]:
    """Most contributions first (unknown counts last), then by email. Ascending on the negated
    count, so that the email tie-break reads A→Z within one direction of keyset."""
    await _require_repository(session, organization_id, repository_id)
    rank = (-func.coalesce(RepositoryContributor.contributions, -1)).label("rank")
    email = Developer.email.label("email")
    developer_id = Developer.id.label("developer_id")
    statement = (
        select(rank, email, developer_id, Developer.name, RepositoryContributor.contributions)
        .join(Developer, Developer.id == RepositoryContributor.developer_id)
        .where(
            RepositoryContributor.repository_id == repository_id,
            Developer.organization_id == organization_id,
        )
    )
    rows, next_cursor = await _page(
        session, statement, _sort_key("-contributions", rank, email, developer_id), cursor=cursor, limit=limit
    )
    return [
        ContributorOut(
            developer_id=row.developer_id, email=row.email, name=row.name, contributions=row.contributions
        )
        for row in rows
    ], next_cursor
