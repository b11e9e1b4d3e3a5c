"""`/api/v1/organizations` and `/api/v1/me`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from doraflow.api.deps import Admin, Context, ServiceToken, Session, Viewer
from doraflow.api.problems import problem_responses
from doraflow.api.schemas.api_keys import ApiKeyCreated, ApiKeyOut
from doraflow.api.schemas.common import Page
from doraflow.api.schemas.organizations import (
    AdminKeyCreate,
    OrganizationCreate,
    OrganizationOut,
    OrganizationRegistered,
    OrganizationUpdate,
    WhoAmI,
)
from doraflow.api.schemas.teams import SyncedTeamOut, TeamsSync, TeamsSynced
from doraflow.api.services import declared_teams
from doraflow.api.services import organizations as service
from doraflow.core.cache import keys

router = APIRouter(tags=["organizations"], responses=problem_responses(401, 403, 422, 429))


@router.post(
    "/organizations",
    response_model=OrganizationRegistered,
    status_code=status.HTTP_201_CREATED,
    summary="Register an organization (service token; idempotent on slug)",
    responses={200: {"model": OrganizationRegistered, "description": "already registered; no key"}},
)
async def register_organization(
    body: OrganizationCreate, _: ServiceToken, context: Context, session: Session, response: Response
) -> OrganizationRegistered:
    """What the operator calls for each `Organization` resource. The first admin key is in the
    201 answer only; later calls answer 200 without a key."""
    result = await service.bootstrap_organization(
        session, context.hasher, name=body.name, slug=body.slug, settings=body.settings or None
    )
    await context.cache.delete(keys.organization(result.organization.id))
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return OrganizationRegistered(
        organization=OrganizationOut.model_validate(result.organization),
        created=result.created,
        admin_key=(
            ApiKeyCreated.model_validate(
                {
                    **ApiKeyOut.model_validate(result.admin_key.row).model_dump(),
                    "key": result.admin_key.secret,
                }
            )
            if result.admin_key
            else None
        ),
    )


@router.post(
    "/organizations/{organization_id}/admin-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Issue a new admin key (service token)",
    responses=problem_responses(404),
)
async def issue_admin_key(
    organization_id: uuid.UUID, body: AdminKeyCreate, _: ServiceToken, context: Context, session: Session
) -> ApiKeyCreated:
    """For the operator, when the Secret with an organization's first admin key was deleted."""
    issued = await service.issue_admin_key(session, context.hasher, organization_id, body.name)
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(issued.row).model_dump(), "key": issued.secret}
    )


@router.put(
    "/organizations/{organization_id}/teams",
    response_model=TeamsSynced,
    summary="Sync the teams an Organization resource declares (service token; idempotent)",
    responses=problem_responses(404),
)
async def sync_declared_teams(
    organization_id: uuid.UUID, body: TeamsSync, _: ServiceToken, context: Context, session: Session
) -> TeamsSynced:
    """What the operator calls on every reconcile with the resource's complete `spec.teams`:
    declared teams are created or updated by slug with exactly the declared members and
    repositories; declared teams no longer listed are removed; teams made through the API stay.
    Syncing the same declaration again changes nothing (`changed: false`)."""
    result = await declared_teams.sync_declared_teams(
        session, context.cache, organization_id, managed_by=body.managed_by, declared=body.teams
    )
    return TeamsSynced(
        teams=[SyncedTeamOut.model_validate(team, from_attributes=True) for team in result.teams],
        removed=result.removed,
        created_developers=result.created_developers,
        changed=result.changed,
    )


@router.get(
    "/organizations", response_model=Page[OrganizationOut], summary="Organizations visible to the key"
)
async def list_organizations(principal: Viewer, session: Session, context: Context) -> Page[OrganizationOut]:
    """A key belongs to one organization, so this lists exactly that one."""
    return Page(items=[await _organization(context, session, principal.organization_id)])


@router.get(
    "/organizations/{organization_id}", response_model=OrganizationOut, responses=problem_responses(404)
)
async def get_organization(
    organization_id: uuid.UUID, principal: Viewer, session: Session, context: Context
) -> OrganizationOut:
    service.own_organization(principal.organization_id, organization_id)
    return await _organization(context, session, organization_id)


@router.patch(
    "/organizations/{organization_id}", response_model=OrganizationOut, responses=problem_responses(404)
)
async def update_organization(
    organization_id: uuid.UUID, body: OrganizationUpdate, principal: Admin, session: Session, context: Context
) -> OrganizationOut:
    service.own_organization(principal.organization_id, organization_id)
    row = await service.update_organization(session, organization_id, name=body.name, settings=body.settings)
    await context.cache.delete(keys.organization(organization_id))
    return OrganizationOut.model_validate(row)


@router.get("/me", response_model=WhoAmI, summary="The calling key and its organization")
async def who_am_i(principal: Viewer, session: Session, context: Context) -> WhoAmI:
    return WhoAmI(
        organization=await _organization(context, session, principal.organization_id),
        key_id=principal.key_id,
        key_name=principal.name,
        key_prefix=principal.prefix,
        role=principal.role.value,
        expires_at=principal.expires_at,
    )


async def _organization(context: Context, session: Session, organization_id: uuid.UUID) -> OrganizationOut:
    """Read through the seed's `org:{id}` cache entry."""
    key = keys.organization(organization_id)
    cached = await context.cache.get(key)
    if cached is not None:
        return OrganizationOut.model_validate_json(cached)
    out = OrganizationOut.model_validate(await service.get_organization(session, organization_id))
    await context.cache.set(key, out.model_dump_json().encode(), context.settings.cache_ttl_seconds)
    return out
