"""API keys and the bootstrap service token (DESIGN.md §8).

Keys look like `dfk_1a2b3c4d_<43 random characters>`: the first 12 characters (`dfk_1a2b3c4d`) are
the visible *prefix* that identifies a key in lists and logs; the whole key is shown exactly once,
at creation. At rest only `HMAC-SHA256(pepper, key)` is stored, so a database dump does not hand
out working keys, and a lookup is a single indexed equality on the hash (no per-row comparisons,
hence nothing to time).

The pepper is `DORAFLOW_API_SECRET_KEY`. Without it (a laptop running `doraflow up`) a fixed,
public pepper is used and a warning is logged: keys carry 256 bits of randomness, so even an
unpeppered hash cannot be brute-forced; the pepper only adds defence in depth against someone
holding a dump. Changing the secret invalidates every stored key (they must be re-issued).

The *service token* authorises what no organization's key can do — registering an organization
(the Kubernetes operator reconciling an `Organization` resource). It is derived from the same
secret, so the operator needs no extra Secret:
`"dfs_" + hex(HMAC-SHA256(secret, "doraflow/bootstrap-token/v1"))`.
Without a secret there is no service token and bootstrap over HTTP is disabled (`doraflow up`
bootstraps in-process instead).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core.models import ApiKey, Organization
from doraflow.core.security import derive_service_token
from doraflow.core.settings import Settings

logger = logging.getLogger(__name__)

KEY_SCHEME = "dfk"
FALLBACK_PEPPER = b"doraflow/unpeppered-api-keys/v1"
MAX_TOKEN_LENGTH = 256
_KEY_SHAPE = re.compile(r"^dfk_[0-9a-f]{8}_[A-Za-z0-9_-]{20,100}$")


class Role(StrEnum):
    """admin: everything in its organization, including keys; member: read and write data (teams,
    mappings, ingest); viewer: read only."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2}[self]

    def includes(self, other: Role) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one API key of one organization. Every query is scoped by
    `organization_id`."""

    key_id: uuid.UUID
    organization_id: uuid.UUID
    organization_slug: str
    role: Role
    prefix: str
    name: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: `secret` is returned to the caller once and never stored."""

    secret: str
    prefix: str


def generate_key() -> NewKey:
    public = secrets.token_hex(4)
    secret = f"{KEY_SCHEME}_{public}_{secrets.token_urlsafe(32)}"
    return NewKey(secret=secret, prefix=f"{KEY_SCHEME}_{public}")


class KeyHasher:
    def __init__(self, pepper: bytes) -> None:
        self._pepper = pepper

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyHasher:
        if settings.api_secret_key is None:
            logger.warning(
                "DORAFLOW_API_SECRET_KEY is not set: API key hashes use the public fallback pepper "
                "and organization bootstrap over HTTP is disabled"
            )
            return cls(FALLBACK_PEPPER)
        return cls(settings.api_secret_key.get_secret_value().encode())

    def hash(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def service_token_matches(settings: Settings, presented: str) -> bool:
    if settings.api_secret_key is None:
        return False
    expected = derive_service_token(settings.api_secret_key.get_secret_value())
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogatepass"))


class AuthenticationError(Exception):
    """Why a presented key was refused (the message is safe to show to the caller)."""


class Authenticator:
    """Resolves a bearer key to a `Principal`.

    Resolved keys are remembered in-process for `ttl_seconds` so a hot endpoint costs no database
    round trip per request. Revoking a key through this process forgets it at once; other replicas
    honour a revocation within `ttl_seconds`. `last_used_at` is written at most once per
    `touch_interval` per key, not on every request.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        hasher: KeyHasher,
        *,
        ttl_seconds: float = 10.0,
        touch_interval: float = 60.0,
        max_entries: int = 10_000,
    ) -> None:
        self._factory = session_factory
        self._hasher = hasher
        self._ttl = ttl_seconds
        self._touch_interval = touch_interval
        self._max_entries = max_entries
        self._known: dict[str, tuple[Principal, float]] = {}
        self._touched: dict[uuid.UUID, float] = {}

    @property
    def hasher(self) -> KeyHasher:
        return self._hasher

    def forget(self, key_id: uuid.UUID) -> None:
        for digest in [d for d, (p, _) in self._known.items() if p.key_id == key_id]:
            del self._known[digest]

    async def authenticate(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH or not _KEY_SHAPE.match(token):
            raise AuthenticationError("malformed API key")
        digest = self._hasher.hash(token)
        now = time.monotonic()
        cached = self._known.get(digest)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            principal = await self._load(digest)
            if len(self._known) >= self._max_entries:
                self._known.clear()
            self._known[digest] = (principal, now + self._ttl)
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            raise AuthenticationError("API key expired")
        if now - self._touched.get(principal.key_id, -1e18) >= self._touch_interval:
            self._touched[principal.key_id] = now
            await self._touch(principal.key_id)
        return principal

    async def _load(self, digest: str) -> Principal:
        async with self._factory() as session:
            row = (
                await session.execute(
                    select(ApiKey, Organization.slug)
                    .join(Organization, Organization.id == ApiKey.organization_id)
                    .where(ApiKey.key_hash == digest)
                )
            ).first()
        if row is None:
            raise AuthenticationError("unknown API key")
        key, slug = row
        if key.revoked_at is not None:
            raise AuthenticationError("API key revoked")
        return Principal(
            key_id=key.id,
            organization_id=key.organization_id,
            organization_slug=slug,
            role=Role(key.role),
            prefix=key.prefix,
            name=key.name,
            expires_at=key.expires_at,
        )

    async def _touch(self, key_id: uuid.UUID) -> None:
        """Best effort: failing to record usage must not fail the request."""
        try:
            async with self._factory() as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(UTC))
                )
                await session.commit()
        except Exception:
            logger.warning("could not record API key usage", exc_info=True)


def expiry_from(days: int | None, at: datetime | None) -> datetime | None:
    if at is not None:
        return at
    if days is not None:
        return datetime.now(UTC) + timedelta(days=days)
    return None
