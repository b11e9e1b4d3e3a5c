"""Organizations: bootstrap (operator / `doraflow up`), read and update by their own admins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.auth import KeyHasher, Role
from doraflow.api.problems import not_found
from doraflow.api.services.api_keys import IssuedKey, new_key_row
from doraflow.core.models import Organization

BOOTSTRAP_KEY_NAME = "bootstrap admin"


@dataclass(frozen=True, slots=True)
class Registration:
    organization: Organization
    created: bool
    admin_key: IssuedKey | None


async def bootstrap_organization(
    session: AsyncSession,
    hasher: KeyHasher,
    *,
    name: str,
    slug: str,
    settings: dict[str, Any] | None = None,
) -> Registration:
    """Create the organization `slug` with a first admin key, or return the existing one.

    Idempotent on `slug` because the operator calls it on every reconcile: an existing
    organization gets its `name` (and `settings`, when given) aligned and no key — the first key
    was handed out at creation and is never shown again. Concurrent first calls are settled by the
    unique slug: the loser sees the winner's row. `doraflow up` calls this in-process.
    """
    existing = await session.scalar(select(Organization).where(Organization.slug == slug))
    if existing is not None:
        return await _align(session, existing, name, settings)
    organization = Organization(
        id=uuid.uuid4(), name=name, slug=slug, settings=settings or {}, created_at=datetime.now(UTC)
    )
    organization.updated_at = organization.created_at
    issued = new_key_row(hasher, organization.id, BOOTSTRAP_KEY_NAME, Role.ADMIN, None)
    session.add(organization)
    await session.flush()
    session.add(issued.row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        winner = await session.scalar(select(Organization).where(Organization.slug == slug))
        if winner is None:
            raise
        return await _align(session, winner, name, settings)
    return Registration(organization, True, issued)


async def _align(
    session: AsyncSession, organization: Organization, name: str, settings: dict[str, Any] | None
) -> Registration:
    changed = False
    if organization.name != name:
        organization.name = name
        changed = True
    if settings is not None and settings and organization.settings != settings:
        organization.settings = settings
        changed = True
    if changed:
        await session.commit()
        await session.refresh(organization)
    return Registration(organization, False, None)


async def issue_admin_key(
    session: AsyncSession, hasher: KeyHasher, organization_id: uuid.UUID, name: str
) -> IssuedKey:
    """A new admin key for an existing organization, for the operator when the Secret holding the
    first one was lost (keys are shown once, so the old one cannot be recovered)."""
    await get_organization(session, organization_id)
    issued = new_key_row(hasher, organization_id, name, Role.ADMIN, None)
    session.add(issued.row)
    await session.commit()
    return issued


async def get_organization(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    row = await session.get(Organization, organization_id)
    if row is None:
        raise not_found("organization", organization_id)
    return row


def own_organization(principal_org: uuid.UUID, requested: uuid.UUID) -> None:
    """Another organization's id is answered like an unknown one."""
    if requested != principal_org:
        raise not_found("organization", requested)


async def update_organization(
    session: AsyncSession, organization_id: uuid.UUID, *, name: str | None, settings: dict[str, Any] | None
) -> Organization:
    row = await get_organization(session, organization_id)
    if name is not None:
        row.name = name
    if settings is not None:
        row.settings = settings
    await session.commit()
    await session.refresh(row)
    return row
