"""Issuing, listing and revoking API keys (admin actions)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.auth import KeyHasher, Role, generate_key
from doraflow.api.pagination import paginate, parse_sort
from doraflow.api.problems import Problem, field_problem, not_found
from doraflow.core.models import ApiKey

SORTS = {"created_at": ApiKey.created_at, "name": ApiKey.name}


@dataclass(frozen=True, slots=True)
class IssuedKey:
    row: ApiKey
    secret: str


def new_key_row(
    hasher: KeyHasher, organization_id: uuid.UUID, name: str, role: Role, expires_at: datetime | None
) -> IssuedKey:
    key = generate_key()
    row = ApiKey(
        id=uuid.uuid4(),
        organization_id=organization_id,
        name=name,
        prefix=key.prefix,
        key_hash=hasher.hash(key.secret),
        role=role.value,
        created_at=datetime.now(UTC),
        expires_at=expires_at,
    )
    return IssuedKey(row, key.secret)


async def create_key(
    session: AsyncSession,
    hasher: KeyHasher,
    organization_id: uuid.UUID,
    *,
    name: str,
    role: Role,
    expires_at: datetime | None,
) -> IssuedKey:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise field_problem("expires_at", "must be in the future", location="body")
    issued = new_key_row(hasher, organization_id, name, role, expires_at)
    session.add(issued.row)
    await session.commit()
    return issued


async def list_keys(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    include_revoked: bool,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[ApiKey], str | None]:
    statement = select(ApiKey).where(ApiKey.organization_id == organization_id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return await paginate(session, statement, parse_sort(sort, SORTS, ApiKey.id), cursor=cursor, limit=limit)


async def get_key(session: AsyncSession, organization_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    row = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == organization_id)
    )
    if row is None:
        raise not_found("API key", key_id)
    return row


async def revoke_key(session: AsyncSession, organization_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Revoking is idempotent. The last usable admin key cannot be revoked: that would lock the
    organization out of its own key management."""
    row = await get_key(session, organization_id, key_id)
    if row.revoked_at is not None:
        return row
    now = datetime.now(UTC)
    if row.role == Role.ADMIN.value:
        # Lock the organization's admin keys so two concurrent revocations cannot both pass.
        admins = await session.execute(
            select(ApiKey.id, ApiKey.expires_at)
            .where(
                ApiKey.organization_id == organization_id,
                ApiKey.role == Role.ADMIN.value,
                ApiKey.revoked_at.is_(None),
            )
            .with_for_update()
        )
        usable = [i for i, expires in admins if i != key_id and (expires is None or expires > now)]
        if not usable:
            raise Problem(409, "this is the organization's last active admin key; create another first")
    row.revoked_at = now
    await session.commit()
    return row
