"""What every route depends on: the app's context, a database session, and the caller.

Routes declare the least role they need (`Viewer`, `Member`, `Admin`); the dependency resolves
the bearer key once per request and refuses missing, unknown, revoked and expired keys with 401,
and a role that is too low with 403 (within the caller's own organization, so it reveals nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.api.auth import (
    AuthenticationError,
    Authenticator,
    KeyHasher,
    Principal,
    Role,
    service_token_matches,
)
from doraflow.api.cache import DegradableCache
from doraflow.api.problems import Problem
from doraflow.api.services.analytics import AnalyticsService
from doraflow.api.services.ingest import IngestService
from doraflow.core.bus import EventBus
from doraflow.core.settings import Settings


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    session_factory: async_sessionmaker[AsyncSession]
    cache: DegradableCache
    bus: EventBus
    hasher: KeyHasher
    authenticator: Authenticator
    analytics: AnalyticsService
    ingest: IngestService


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.doraflow
    return context


Context = Annotated[ApiContext, Depends(get_context)]


async def get_session(context: Context) -> AsyncIterator[AsyncSession]:
    """A session per request; services commit explicitly, anything uncommitted is rolled back."""
    async with context.session_factory() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer dfk_…` — an API key of your organization",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="doraflow"'}


async def get_principal(context: Context, credentials: Credentials) -> Principal:
    if credentials is None:
        raise Problem(401, "send an API key: Authorization: Bearer <key>", headers=_CHALLENGE)
    try:
        return await context.authenticator.authenticate(credentials.credentials)
    except AuthenticationError as exc:
        raise Problem(401, str(exc), headers=_CHALLENGE) from None


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.role.includes(role):
            raise Problem(403, f"this needs the {role.value} role; the key has {principal.role.value}")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Member = Annotated[Principal, Depends(require(Role.MEMBER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


async def require_service_token(context: Context, credentials: Credentials) -> None:
    """What the operator does for `Organization` resources — registering the organization,
    re-issuing its admin key, syncing its declared teams — only the service token (see
    `doraflow.api.auth`) may do."""
    if context.settings.api_secret_key is None:
        raise Problem(403, "organization bootstrap over HTTP is disabled: DORAFLOW_API_SECRET_KEY is not set")
    if credentials is None:
        raise Problem(401, "send the service token: Authorization: Bearer dfs_…", headers=_CHALLENGE)
    if not service_token_matches(context.settings, credentials.credentials):
        raise Problem(403, "this needs the service token (the operator's), not an API key")


ServiceToken = Annotated[None, Depends(require_service_token)]
