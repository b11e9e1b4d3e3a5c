"""Teams declared by an `Organization` resource (`spec.teams`), synced declaratively.

The operator sends the complete list on every reconcile; this module makes the database match it
and changes nothing when it already does (so a resync every few seconds costs a few reads):

* a declared team is found by slug (created when missing, adopted when it was made through the
  API) and marked `managed_by` the resource; its name follows the declaration;
* its members are exactly the declared people, each resolved the way the processor resolves
  identities (`doraflow.processor.identity`): an email, a provider username, or an alias from the
  organization's settings. Someone not seen yet becomes a developer right away — for an email the
  very row the processor would create for it (`natural_id("developer", org, email)`), for a
  username the processor's *placeholder* (synthetic email `{username}@users.noreply.{provider}`
  and the username identity) — so the team counts them from the start and, once an event shows
  the username with an email, the processor merges the placeholder into the real developer,
  moving the membership along;
* its repositories are exactly those whose full name matches a declared name or glob (the
  collectors' `spec.scope` dialect, translated by `core.globs`); the patterns are remembered
  (`team_repository_patterns`), and a repository collected later is linked as it appears (trigger
  of migration 0006);
* declared teams the resource no longer lists are deleted; teams made through the API are not.

Membership and repositories decide a team's numbers, so the team's cache entries — its JSON and
its metrics — are dropped for every team that changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from doraflow.api.problems import field_problem, not_found
from doraflow.api.schemas.teams import DeclaredTeam
from doraflow.core.cache import Cache, keys
from doraflow.core.globs import glob_postgres_regex
from doraflow.core.models import (
    Developer,
    DeveloperIdentity,
    Organization,
    Repository,
    Team,
    TeamMember,
    TeamRepository,
    TeamRepositoryPattern,
    natural_id,
)
from doraflow.core.resources import Provider

# The processor's conventions (doraflow.processor.identity), which the API cannot import: identity
# kinds, the per-provider username columns, and the placeholder's synthetic email. The tests check
# that both sides agree.
EMAIL_KIND = "email"
SYNTHETIC_MARKER = "@users.noreply."
GIT_HOSTS = ("github", "gitlab", "bitbucket")
USERNAME_COLUMNS = {
    "github": Developer.github_username,
    "gitlab": Developer.gitlab_username,
    "bitbucket": Developer.bitbucket_username,
}
# The developer's own columns that name it, for rows without recorded identities.
ROW_COLUMNS: dict[str, QueryableAttribute[Any]] = {EMAIL_KIND: Developer.email, **USERNAME_COLUMNS}
PROVIDERS = frozenset(provider.value for provider in Provider)


# -- members -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberRef:
    """A declared member, normalised as the processor normalises what events say (stripped,
    lower-cased). `provider=None` with a username: a bare username, on any git host."""

    email: str | None = None
    provider: str | None = None
    username: str | None = None

    @classmethod
    def parse(cls, declared: str) -> MemberRef:
        value = declared.strip().lower()
        if "@" in value and not value.startswith("@") and not value.endswith("@"):
            if SYNTHETIC_MARKER in value:  # a placeholder's own address names its username
                username, _, provider = value.partition(SYNTHETIC_MARKER)
                if username and provider in PROVIDERS:
                    return cls(provider=provider, username=username)
            return cls(email=value)
        provider, separator, username = value.partition(":")
        if separator and provider in PROVIDERS and username.strip():
            return cls(provider=provider, username=username.strip())
        return cls(username=value)

    def kinds(self) -> tuple[str, ...]:
        """The identity kinds that may name this member."""
        if self.email is not None:
            return (EMAIL_KIND,)
        return (self.provider,) if self.provider else GIT_HOSTS

    @property
    def value(self) -> str:
        value = self.email or self.username
        assert value is not None
        return value

    def placeholder_email(self) -> str:
        """The synthetic email the processor gives someone it knows only by a username
        (`processor.identity.synthetic_email`); a bare username is kept under GitHub's."""
        return f"{self.username}{SYNTHETIC_MARKER}{self.provider or GIT_HOSTS[0]}"[:255]


@dataclass(slots=True)
class Members:
    """Declared members resolved to developers; `ambiguous` bare usernames name several."""

    ids: dict[MemberRef, uuid.UUID] = field(default_factory=dict)
    ambiguous: set[MemberRef] = field(default_factory=set)
    created: int = 0


async def _lookup(session: AsyncSession, organization_id: uuid.UUID, refs: Iterable[MemberRef]) -> Members:
    """Which developer each member is: a recorded identity first, then the developer's own email
    or username column (rows the processor did not record identities for, e.g. seeded ones)."""
    refs = set(refs)
    wanted = {(kind, ref.value) for ref in refs for kind in ref.kinds()}
    found: dict[tuple[str, str], set[uuid.UUID]] = {}
    if wanted:
        rows = await session.execute(
            select(DeveloperIdentity.kind, DeveloperIdentity.value, DeveloperIdentity.developer_id).where(
                DeveloperIdentity.organization_id == organization_id,
                tuple_(DeveloperIdentity.kind, DeveloperIdentity.value).in_(sorted(wanted)),
            )
        )
        for kind, value, developer_id in rows:
            found.setdefault((kind, value), set()).add(developer_id)
        by_identity = set(found)
        for kind, column in ROW_COLUMNS.items():
            values = sorted(value for wanted_kind, value in wanted if wanted_kind == kind)
            if not values:
                continue
            lowered = func.lower(column)
            owners = await session.execute(
                select(lowered, Developer.id).where(
                    Developer.organization_id == organization_id, lowered.in_(values)
                )
            )
            for value, developer_id in owners:
                if (kind, value) not in by_identity:
                    found.setdefault((kind, value), set()).add(developer_id)
    members = Members()
    for ref in refs:
        candidates = set().union(*(found.get((kind, ref.value), set()) for kind in ref.kinds()))
        if len(candidates) == 1:
            members.ids[ref] = candidates.pop()
        elif candidates:
            members.ambiguous.add(ref)
    return members


async def _create(session: AsyncSession, organization_id: uuid.UUID, refs: Sequence[MemberRef]) -> int:
    """Developers for members not seen yet, as the processor would create them; returns how many
    rows were created. A row or identity someone else (a processor replica) created meanwhile
    wins: conflicts do nothing, and the caller looks the members up again."""
    created = 0
    for ref in refs:
        email = ref.email or ref.placeholder_email()
        developer_id = natural_id("developer", organization_id, email)
        usernames = {}
        if ref.provider in USERNAME_COLUMNS:
            usernames[USERNAME_COLUMNS[ref.provider].key] = ref.username
        inserted = await session.scalar(
            insert(Developer)
            .values(id=developer_id, organization_id=organization_id, email=email, **usernames)
            .on_conflict_do_nothing()
            .returning(Developer.id)
        )
        created += inserted is not None
        existing = await session.scalar(
            select(Developer.id).where(Developer.organization_id == organization_id, Developer.email == email)
        )
        for kind in ref.kinds():
            await session.execute(
                insert(DeveloperIdentity)
                .values(
                    id=natural_id("developer_identity", organization_id, kind, ref.value),
                    organization_id=organization_id,
                    developer_id=existing,
                    kind=kind,
                    value=ref.value,
                )
                .on_conflict_do_nothing()
            )
    return created


def aliases_of(settings: Mapping[str, Any]) -> dict[str, str]:
    """The organization's `{"aliases": {alias: canonical email}}`, lower-cased as the processor
    reads them (`processor.entities.OrganizationInfo.aliases`)."""
    raw = settings.get("aliases")
    if not isinstance(raw, dict):
        return {}
    return {str(k).strip().lower(): str(v).strip().lower() for k, v in raw.items() if v}


async def resolve_members(
    session: AsyncSession,
    organization_id: uuid.UUID,
    refs: Iterable[MemberRef],
    aliases: Mapping[str, str],
) -> Members:
    """Each member's developer, in the processor's order: a known identity, then an alias of the
    organization (the canonical email stands in), then a new developer — so a member declared by
    an alias is never split off into a placeholder the processor would not have made."""
    refs = set(refs)
    members = await _lookup(session, organization_id, refs)
    missing = [ref for ref in refs if ref not in members.ids and ref not in members.ambiguous]
    if not missing:
        return members
    stand_ins = {ref: MemberRef(email=aliases[ref.value]) for ref in missing if ref.value in aliases}
    to_create = sorted(
        {stand_ins.get(ref, ref) for ref in missing},
        key=lambda ref: (ref.email or "", ref.provider or "", ref.username or ""),
    )
    created = await _create(session, organization_id, to_create)
    members = await _lookup(session, organization_id, refs | set(stand_ins.values()))
    for ref, stand_in in stand_ins.items():
        if stand_in in members.ids:
            members.ids[ref] = members.ids[stand_in]
    members.created = created
    return members


# -- the sync -----------------------------------------------------------------------------------


@dataclass(slots=True)
class SyncedTeam:
    id: uuid.UUID
    slug: str
    name: str
    created: bool = False
    changed: bool = False
    member_count: int = 0
    repository_count: int = 0
    ambiguous_members: list[str] = field(default_factory=list)
    waiting_repositories: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TeamSync:
    teams: list[SyncedTeam]
    removed: list[str]
    created_developers: int

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.created_developers or any(team.changed for team in self.teams))


async def _set_members(session: AsyncSession, team_id: uuid.UUID, wanted: set[uuid.UUID]) -> bool:
    """Membership is exactly `wanted`; a kept member keeps its role."""
    current = set(await session.scalars(select(TeamMember.developer_id).where(TeamMember.team_id == team_id)))
    if current - wanted:
        await session.execute(
            delete(TeamMember).where(
                TeamMember.team_id == team_id, TeamMember.developer_id.in_(current - wanted)
            )
        )
    for developer_id in sorted(wanted - current):
        await session.execute(
            insert(TeamMember)
            .values(team_id=team_id, developer_id=developer_id, role="member")
            .on_conflict_do_nothing()
        )
    return current != wanted


async def _set_repositories(
    session: AsyncSession, organization_id: uuid.UUID, team: SyncedTeam, patterns: Sequence[str]
) -> bool:
    """The remembered patterns are exactly `patterns`; the linked repositories exactly those
    whose name matches one of them. Returns whether anything changed."""
    regexes = {pattern: glob_postgres_regex(pattern) for pattern in dict.fromkeys(patterns)}
    rows = await session.execute(
        select(TeamRepositoryPattern.pattern, TeamRepositoryPattern.name_regex).where(
            TeamRepositoryPattern.team_id == team.id
        )
    )
    stored: dict[str, str] = dict(rows.all())
    changed = stored != regexes
    if set(stored) - set(regexes):
        await session.execute(
            delete(TeamRepositoryPattern).where(
                TeamRepositoryPattern.team_id == team.id,
                TeamRepositoryPattern.pattern.in_(set(stored) - set(regexes)),
            )
        )
    for pattern, regex in regexes.items():
        if stored.get(pattern) != regex:
            statement = insert(TeamRepositoryPattern).values(
                team_id=team.id, pattern=pattern, organization_id=organization_id, name_regex=regex
            )
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[TeamRepositoryPattern.team_id, TeamRepositoryPattern.pattern],
                    set_={"name_regex": statement.excluded.name_regex},
                )
            )
    wanted: set[uuid.UUID] = set()
    team.waiting_repositories = []
    for pattern, regex in regexes.items():
        matched = set(
            await session.scalars(
                select(Repository.id).where(
                    Repository.organization_id == organization_id,
                    Repository.name.regexp_match(regex, flags="i"),
                )
            )
        )
        if not matched:
            team.waiting_repositories.append(pattern)
        wanted |= matched
    current = set(
        await session.scalars(select(TeamRepository.repository_id).where(TeamRepository.team_id == team.id))
    )
    if current - wanted:
        await session.execute(
            delete(TeamRepository).where(
                TeamRepository.team_id == team.id, TeamRepository.repository_id.in_(current - wanted)
            )
        )
    for repository_id in sorted(wanted - current):
        await session.execute(
            insert(TeamRepository)
            .values(team_id=team.id, repository_id=repository_id)
            .on_conflict_do_nothing()
        )
    team.repository_count = len(wanted)
    return changed or current != wanted


async def sync_declared_teams(
    session: AsyncSession,
    cache: Cache,
    organization_id: uuid.UUID,
    *,
    managed_by: str,
    declared: Sequence[DeclaredTeam],
) -> TeamSync:
    """Make the organization's declared teams exactly `declared` (see the module docstring), in
    one transaction. Concurrent syncs of one organization take turns on its row (`FOR NO KEY
    UPDATE`, which does not block the processor inserting rows that reference it)."""
    slugs = [team.slug for team in declared]
    duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
    if duplicates:
        raise field_problem(
            "teams", f"slugs must be unique; repeated: {', '.join(duplicates)}", location="body"
        )
    settings = await session.scalar(
        select(Organization.settings)
        .where(Organization.id == organization_id)
        .with_for_update(key_share=True)
    )
    if settings is None:
        raise not_found("organization", organization_id)

    existing = {
        team.slug: team
        for team in await session.scalars(select(Team).where(Team.organization_id == organization_id))
    }
    refs = {team.slug: [MemberRef.parse(member) for member in team.members] for team in declared}
    members = await resolve_members(
        session, organization_id, [ref for team in refs.values() for ref in team], aliases_of(settings)
    )

    synced: list[SyncedTeam] = []
    for declaration in declared:
        row = existing.get(declaration.slug)
        created = row is None
        if row is None:
            row = Team(
                id=uuid.uuid4(),
                organization_id=organization_id,
                name=declaration.name,
                slug=declaration.slug,
                managed_by=managed_by,
            )
            session.add(row)
            await session.flush()
        team = SyncedTeam(row.id, row.slug, declaration.name, created=created, changed=created)
        if row.name != declaration.name or row.managed_by != managed_by:
            row.name, row.managed_by = declaration.name, managed_by
            team.changed = True
        wanted = {members.ids[ref] for ref in refs[declaration.slug] if ref in members.ids}
        team.ambiguous_members = sorted(
            {
                name
                for name, ref in zip(declaration.members, refs[declaration.slug], strict=True)
                if ref in members.ambiguous
            }
        )
        team.changed |= await _set_members(session, row.id, wanted)
        team.member_count = len(wanted)
        team.changed |= await _set_repositories(session, organization_id, team, declaration.repositories)
        synced.append(team)

    declared_slugs = {declaration.slug for declaration in declared}
    gone = {
        row.id: slug
        for slug, row in existing.items()
        if row.managed_by is not None and slug not in declared_slugs
    }
    if gone:
        await session.execute(delete(Team).where(Team.id.in_(gone)))
    await session.commit()

    touched = [team.id for team in synced if team.changed] + list(gone)
    if touched:
        exact, patterns = keys.invalidation(teams=touched)
        await cache.delete(*exact)
        for pattern in patterns:
            await cache.delete_pattern(pattern)
    return TeamSync(synced, sorted(gone.values()), members.created)
