"""Entities every event refers to — organizations, repositories, developers — resolved to ids.

Nearly every event of a batch names one of a few organizations, a few dozen repositories and a few
hundred people, and these mappings almost never change; looking them up in PostgreSQL for every
batch would cost several round trips per batch on the critical path. `Lookups` remembers them in
this process:

* only what a *committed* transaction established (entries learned inside a batch stay pending
  until the caller reports the commit, and are dropped on a rollback), so the memory never holds
  an id the database does not;
* for a bounded time (organizations 30 s, so settings such as `aliases` are picked up quickly;
  repositories and identities 10 min), so rows changed behind the processor's back are seen again.

A repository is upserted only when its `RepositoryRef` differs from what was last stored (a rename,
a new default branch); identities are looked up only for people not remembered.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from doraflow.core.models import natural_id
from doraflow.processor.identity import (
    EMAIL_KIND,
    USERNAME_COLUMNS,
    PersonKey,
    Resolution,
    resolve,
    synthetic_email,
)
from doraflow.processor.refs import MERGE_CONTRIBUTORS
from doraflow.processor.transform import Plan, RepoKey, text

logger = logging.getLogger(__name__)

Connection = Any  # asyncpg.Connection (untyped library)
K = TypeVar("K")
V = TypeVar("V")


class _Memory(Generic[K, V]):
    """A TTL map with a pending layer: `stage` inside a transaction, `commit` or `discard` after."""

    def __init__(self, ttl_seconds: float, max_entries: int = 200_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[K, tuple[V, float]] = {}
        self._pending: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    def stage(self, key: K, value: V) -> None:
        self._pending[key] = value

    def commit(self) -> None:
        if not self._pending:
            return
        if len(self._entries) + len(self._pending) > self._max:
            self._entries.clear()  # crude, and rare: a process that sees 200k identities
        expires = time.monotonic() + self._ttl
        for key, value in self._pending.items():
            self._entries[key] = (value, expires)
        self._pending.clear()

    def discard(self) -> None:
        self._pending.clear()


@dataclass(frozen=True, slots=True)
class OrganizationInfo:
    id: uuid.UUID
    settings: dict[str, Any]

    @property
    def aliases(self) -> dict[str, str]:
        raw = self.settings.get("aliases")
        if not isinstance(raw, dict):
            return {}
        return {str(k).strip().lower(): str(v).strip().lower() for k, v in raw.items() if v}


RepoSignature = tuple[str, str | None, str | None, str | None, str]


@dataclass(slots=True)
class Lookups:
    organizations: _Memory[str, OrganizationInfo] = field(default_factory=lambda: _Memory(30.0))
    repositories: _Memory[RepoKey, tuple[uuid.UUID, RepoSignature]] = field(
        default_factory=lambda: _Memory(600.0)
    )
    # (org slug, kind, value) → developer; kind `email` also covers `developers.email`.
    identities: _Memory[tuple[str, str, str], uuid.UUID] = field(default_factory=lambda: _Memory(600.0))
    # developer → (email, has a name)
    developers: _Memory[uuid.UUID, tuple[str, bool]] = field(default_factory=lambda: _Memory(600.0))

    def _all(self) -> tuple[_Memory[Any, Any], ...]:
        return (self.organizations, self.repositories, self.identities, self.developers)

    def commit(self) -> None:
        """The batch's transaction committed: what it established may be remembered."""
        for memory in self._all():
            memory.commit()

    def discard(self) -> None:
        """The batch's transaction rolled back: forget what it established."""
        for memory in self._all():
            memory.discard()


# --- organizations ------------------------------------------------------------------------------

SELECT_ORGANIZATIONS = "SELECT id, slug, settings FROM organizations WHERE slug = ANY($1::text[])"
INSERT_ORGANIZATIONS = """
INSERT INTO organizations (id, name, slug)
SELECT id, slug, slug FROM unnest($1::uuid[], $2::text[]) AS v(id, slug)
ON CONFLICT (slug) DO NOTHING
"""


async def organizations(
    conn: Connection, slugs: Iterable[str], lookups: Lookups
) -> dict[str, OrganizationInfo]:
    """Organizations by slug, creating the missing ones (the embedded mode has no operator to
    register them; in a cluster the API normally has, and this finds them)."""
    found: dict[str, OrganizationInfo] = {}
    wanted: list[str] = []
    for slug in sorted(set(slugs)):
        info = lookups.organizations.get(slug)
        if info is None:
            wanted.append(slug)
        else:
            found[slug] = info
    if not wanted:
        return found
    rows = await conn.fetch(SELECT_ORGANIZATIONS, wanted)
    found.update({row["slug"]: _org(row) for row in rows})
    missing = [slug for slug in wanted if slug not in found]
    if missing:
        await conn.execute(INSERT_ORGANIZATIONS, [natural_id("organization", s) for s in missing], missing)
        rows = await conn.fetch(SELECT_ORGANIZATIONS, missing)
        found.update({row["slug"]: _org(row) for row in rows})
        logger.info("registering organizations on first sight", extra={"organizations": missing})
    for slug in wanted:
        lookups.organizations.stage(slug, found[slug])
    return found


def _org(row: Any) -> OrganizationInfo:
    settings = row["settings"]
    if isinstance(settings, str | bytes):
        settings = orjson.loads(settings)
    return OrganizationInfo(row["id"], settings if isinstance(settings, dict) else {})


# --- repositories -------------------------------------------------------------------------------

UPSERT_REPOSITORIES = """
INSERT INTO repositories AS r (id, organization_id, name, provider, provider_id, url, default_branch,
                               service, integration)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[])
ON CONFLICT (organization_id, provider, provider_id) DO UPDATE SET
    name = EXCLUDED.name,
    url = COALESCE(EXCLUDED.url, r.url),
    default_branch = COALESCE(EXCLUDED.default_branch, r.default_branch),
    service = COALESCE(EXCLUDED.service, r.service),
    integration = COALESCE(EXCLUDED.integration, r.integration)
WHERE (r.name, r.url, r.default_branch, r.service, r.integration) IS DISTINCT FROM
      (EXCLUDED.name, COALESCE(EXCLUDED.url, r.url), COALESCE(EXCLUDED.default_branch, r.default_branch),
       COALESCE(EXCLUDED.service, r.service), COALESCE(EXCLUDED.integration, r.integration))
"""
SELECT_REPOSITORIES = """
SELECT r.id, r.organization_id, r.provider, r.provider_id
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v(organization_id, provider, provider_id)
JOIN repositories r USING (organization_id, provider, provider_id)
"""


async def repositories(
    conn: Connection, plan: Plan, orgs: dict[str, OrganizationInfo], lookups: Lookups
) -> dict[RepoKey, uuid.UUID]:
    """Ids of the repositories the batch's git events name, upserting those whose `RepositoryRef`
    is new or changed. Sorted by key so concurrent replicas lock shared rows in the same order."""
    ids: dict[RepoKey, uuid.UUID] = {}
    changed: list[tuple[RepoKey, RepoSignature]] = []
    for key in sorted(plan.repositories):
        stage = plan.repositories[key]
        ref = stage.ref
        signature = (ref.name, ref.url, ref.default_branch, ref.service, stage.integration[:255])
        remembered = lookups.repositories.get(key)
        if remembered is not None and remembered[1] == signature:
            ids[key] = remembered[0]
        else:
            changed.append((key, signature))
    if not changed:
        return ids
    org_ids = [orgs[org].id for (org, _, _), _ in changed]
    providers = [provider for (_, provider, _), _ in changed]
    provider_ids = [provider_id for (_, _, provider_id), _ in changed]
    await conn.execute(
        UPSERT_REPOSITORIES,
        [natural_id("repository", o, p, i) for o, p, i in zip(org_ids, providers, provider_ids, strict=True)],
        org_ids,
        [signature[0] for _, signature in changed],
        providers,
        provider_ids,
        *[[signature[column] for _, signature in changed] for column in range(1, 5)],
    )
    rows = await conn.fetch(SELECT_REPOSITORIES, org_ids, providers, provider_ids)
    by_id = {(row["organization_id"], row["provider"], row["provider_id"]): row["id"] for row in rows}
    for org_id, (key, signature) in zip(org_ids, changed, strict=True):
        repository_id = by_id[(org_id, key[1], key[2])]
        ids[key] = repository_id
        lookups.repositories.stage(key, (repository_id, signature))
    return ids


# --- developers ---------------------------------------------------------------------------------

SELECT_IDENTITIES = """
SELECT i.organization_id, i.kind, i.value, i.developer_id, d.email, d.name IS NOT NULL AS named
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS v(organization_id, kind, value)
JOIN developer_identities i USING (organization_id, kind, value)
JOIN developers d ON d.id = i.developer_id
UNION ALL
SELECT d.organization_id, 'email', d.email, d.id, d.email, d.name IS NOT NULL
FROM unnest($4::uuid[], $5::text[]) AS v(organization_id, email)
JOIN developers d USING (organization_id, email)
"""
INSERT_DEVELOPERS = """
INSERT INTO developers (id, organization_id, email, name, github_username, gitlab_username,
                        bitbucket_username)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
ON CONFLICT (organization_id, email) DO NOTHING
"""
SELECT_DEVELOPERS = """
SELECT d.id, d.organization_id, d.email
FROM unnest($1::uuid[], $2::text[]) AS v(organization_id, email)
JOIN developers d USING (organization_id, email)
"""
INSERT_IDENTITIES = """
INSERT INTO developer_identities (id, organization_id, developer_id, kind, value)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[])
ON CONFLICT (organization_id, kind, value) DO NOTHING
"""
# Merging a synthetic developer into the real one: identities, username columns, every reference
# (which pull requests then need their review stats recomputed: self-reviews may have become
# visible), team memberships; then the placeholder row goes.
MERGE_IDENTITIES = """
UPDATE developer_identities i SET developer_id = m.into_id
FROM unnest($1::uuid[], $2::uuid[]) AS m(from_id, into_id)
WHERE i.developer_id = m.from_id
RETURNING i.organization_id, i.kind, i.value, i.developer_id
"""
MERGE_USERNAMES = """
UPDATE developers d SET
    github_username = COALESCE(d.github_username, s.github_username),
    gitlab_username = COALESCE(d.gitlab_username, s.gitlab_username),
    bitbucket_username = COALESCE(d.bitbucket_username, s.bitbucket_username),
    name = COALESCE(d.name, s.name)
FROM unnest($1::uuid[], $2::uuid[]) AS m(from_id, into_id)
JOIN developers s ON s.id = m.from_id
WHERE d.id = m.into_id
"""
_REPOINT = (
    "UPDATE {table} t SET {column} = m.into_id "
    "FROM unnest($1::uuid[], $2::uuid[]) AS m(from_id, into_id) WHERE t.{column} = m.from_id"
)
MERGE_REFERENCES = (
    *(
        _REPOINT.format(table=table, column=column)
        for table, column in (
            ("commits", "author_id"),
            ("deployments", "deployed_by"),
            ("issues", "assignee_id"),
            ("issue_transitions", "author_id"),
            ("tags", "tagger_id"),
            ("releases", "author_id"),
        )
    ),
    "INSERT INTO team_members (team_id, developer_id, role) "
    "SELECT tm.team_id, m.into_id, tm.role FROM unnest($1::uuid[], $2::uuid[]) AS m(from_id, into_id) "
    "JOIN team_members tm ON tm.developer_id = m.from_id ON CONFLICT DO NOTHING",
    MERGE_CONTRIBUTORS,
)
MERGE_PULL_REQUEST_REFERENCES = tuple(
    _REPOINT.format(table=table, column=column) + " RETURNING t.repository_id, t.pr_number"
    for table, column in (("pull_requests", "author_id"), ("pull_request_reviews", "reviewer_id"))
)
DELETE_MERGED = "DELETE FROM developers d USING unnest($1::uuid[]) AS m(id) WHERE d.id = m.id"
FILL_NAMES = """
UPDATE developers d SET name = v.name
FROM unnest($1::uuid[], $2::text[]) AS v(id, name)
WHERE d.id = v.id AND d.name IS NULL
"""
FILL_USERNAMES = """
UPDATE developers d SET
    github_username = COALESCE(d.github_username, v.github),
    gitlab_username = COALESCE(d.gitlab_username, v.gitlab),
    bitbucket_username = COALESCE(d.bitbucket_username, v.bitbucket)
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS v(id, github, gitlab, bitbucket)
WHERE d.id = v.id
  AND ((d.github_username IS NULL AND v.github IS NOT NULL)
       OR (d.gitlab_username IS NULL AND v.gitlab IS NOT NULL)
       OR (d.bitbucket_username IS NULL AND v.bitbucket IS NOT NULL))
"""


def _wanted_identities(
    persons: list[PersonKey], orgs: dict[str, OrganizationInfo], lookups: Lookups
) -> set[tuple[str, str, str]]:
    """Every (org, kind, value) resolution may consult for the persons that the memory cannot
    settle alone: their identities, their (possibly synthetic) email as a `developers.email`, and
    the canonical emails of aliases they match. A person is settled by the memory when the first
    identity the rules look at (email if any, else username) is remembered."""
    wanted: set[tuple[str, str, str]] = set()
    aliases = {org: info.aliases for org, info in orgs.items()}
    for person in persons:
        identities = [(person.organization, kind, value) for kind, value in person.identities()]
        if identities and lookups.identities.get(identities[0]) is not None:
            wanted.update(identities)  # settled; the rest only for recording new identities
            continue
        wanted.update(identities)
        wanted.add((person.organization, EMAIL_KIND, person.email or synthetic_email(person)))
        org_aliases = aliases.get(person.organization, {})
        for candidate in (person.email, person.username):
            if candidate and candidate in org_aliases:
                wanted.add((person.organization, EMAIL_KIND, org_aliases[candidate]))
    return wanted


class People(dict[PersonKey, uuid.UUID]):
    """Each person's developer id, plus the pull requests a developer merge touched."""

    def __init__(
        self, ids: dict[PersonKey, uuid.UUID], merged_pull_requests: list[tuple[uuid.UUID, int]]
    ) -> None:
        super().__init__(ids)
        self.merged_pull_requests = merged_pull_requests


async def developers(
    conn: Connection, persons: Iterable[PersonKey], orgs: dict[str, OrganizationInfo], lookups: Lookups
) -> People:
    """Resolve every person of the batch to a developer id (rules in `identity`), creating
    developers and recording identities as needed. People remembered from earlier batches cost
    nothing; otherwise at most one look-up and a few inserts per batch."""
    persons = list(persons)
    if not persons:
        return People({}, [])
    known: dict[tuple[str, str, str], uuid.UUID] = {}
    developer_emails: dict[uuid.UUID, str] = {}
    unnamed: set[uuid.UUID] = set()
    missing: list[tuple[str, str, str]] = []
    for key in sorted(_wanted_identities(persons, orgs, lookups)):
        developer = lookups.identities.get(key)
        if developer is None:
            missing.append(key)
        else:
            known[key] = developer
            details = lookups.developers.get(developer)
            if details is not None:
                developer_emails[developer] = details[0]
                if not details[1]:
                    unnamed.add(developer)
    if missing:
        id_org = {info.id: slug for slug, info in orgs.items()}
        emails = [(org, value) for org, kind, value in missing if kind == EMAIL_KIND]
        rows = await conn.fetch(
            SELECT_IDENTITIES,
            [orgs[o].id for o, _, _ in missing],
            [k for _, k, _ in missing],
            [v for _, _, v in missing],
            [orgs[o].id for o, _ in emails],
            [e for _, e in emails],
        )
        for row in rows:
            key = (id_org[row["organization_id"]], row["kind"], row["value"])
            known.setdefault(key, row["developer_id"])
            developer_emails[row["developer_id"]] = row["email"]
            if not row["named"]:
                unnamed.add(row["developer_id"])
            lookups.identities.stage(key, known[key])
            lookups.developers.stage(row["developer_id"], (row["email"], row["named"]))
    resolution = resolve(
        persons,
        known=known,
        developer_emails=developer_emails,
        aliases={org: info.aliases for org, info in orgs.items()},
        unnamed=unnamed,
    )
    created = await _create_developers(conn, resolution, orgs, lookups)
    merged = await _merge(conn, resolution, orgs, created, lookups)
    await _record_identities(conn, resolution, orgs, created, lookups)
    await _update_existing(conn, resolution, lookups)

    def final(ref: uuid.UUID | str) -> uuid.UUID:
        return ref if isinstance(ref, uuid.UUID) else created[ref]

    return People({person: final(ref) for person, ref in resolution.person_developer.items()}, merged)


async def _create_developers(
    conn: Connection, resolution: Resolution, orgs: dict[str, OrganizationInfo], lookups: Lookups
) -> dict[str, uuid.UUID]:
    if not resolution.new_developers:
        return {}
    refs = sorted(resolution.new_developers)
    new = [resolution.new_developers[ref] for ref in refs]
    org_ids = [orgs[d.organization].id for d in new]
    await conn.execute(
        INSERT_DEVELOPERS,
        [natural_id("developer", org_id, d.email) for org_id, d in zip(org_ids, new, strict=True)],
        org_ids,
        [d.email for d in new],
        [text(d.name, 255) for d in new],
        *[[d.usernames.get(provider) for d in new] for provider in USERNAME_COLUMNS],
    )
    # Read back rather than trust our ids: a concurrent replica may have created the row first.
    rows = await conn.fetch(SELECT_DEVELOPERS, org_ids, [d.email for d in new])
    by_email = {(row["organization_id"], row["email"]): row["id"] for row in rows}
    created: dict[str, uuid.UUID] = {}
    for ref, org_id, developer in zip(refs, org_ids, new, strict=True):
        developer_id = by_email[(org_id, developer.email)]
        created[ref] = developer_id
        lookups.identities.stage((developer.organization, EMAIL_KIND, developer.email), developer_id)
        lookups.developers.stage(developer_id, (developer.email, developer.name is not None))
    return created


async def _record_identities(
    conn: Connection,
    resolution: Resolution,
    orgs: dict[str, OrganizationInfo],
    created: dict[str, uuid.UUID],
    lookups: Lookups,
) -> None:
    if not resolution.new_identities:
        return
    keys = sorted(resolution.new_identities)
    org_ids = [orgs[o].id for o, _, _ in keys]
    developer_ids = [
        ref if isinstance(ref, uuid.UUID) else created[ref]
        for ref in (resolution.new_identities[key] for key in keys)
    ]
    await conn.execute(
        INSERT_IDENTITIES,
        [natural_id("developer_identity", o, k, v) for o, (_, k, v) in zip(org_ids, keys, strict=True)],
        org_ids,
        developer_ids,
        [k for _, k, _ in keys],
        [v[:255] for _, _, v in keys],
    )
    for key, developer_id in zip(keys, developer_ids, strict=True):
        lookups.identities.stage(key, developer_id)


async def _merge(
    conn: Connection,
    resolution: Resolution,
    orgs: dict[str, OrganizationInfo],
    created: dict[str, uuid.UUID],
    lookups: Lookups,
) -> list[tuple[uuid.UUID, int]]:
    """Merge synthetic developers into the developers they turned out to be; return the pull
    requests whose author or reviewers changed."""
    if not resolution.merges:
        return []
    sources = sorted(resolution.merges)
    targets = [
        ref if isinstance(ref, uuid.UUID) else created[ref] for ref in (resolution.merges[s] for s in sources)
    ]
    id_org = {info.id: slug for slug, info in orgs.items()}
    for row in await conn.fetch(MERGE_IDENTITIES, sources, targets):
        organization = id_org.get(row["organization_id"])
        if organization is not None:
            lookups.identities.stage((organization, row["kind"], row["value"]), row["developer_id"])
    await conn.execute(MERGE_USERNAMES, sources, targets)
    for statement in MERGE_REFERENCES:
        await conn.execute(statement, sources, targets)
    touched: set[tuple[uuid.UUID, int]] = set()
    for statement in MERGE_PULL_REQUEST_REFERENCES:
        touched.update(
            (row["repository_id"], row["pr_number"]) for row in await conn.fetch(statement, sources, targets)
        )
    await conn.execute(DELETE_MERGED, sources)
    logger.info("merged %d provisional developers into known ones", len(sources))
    return sorted(touched)


async def _update_existing(conn: Connection, resolution: Resolution, lookups: Lookups) -> None:
    if resolution.names:
        ids = sorted(resolution.names)
        await conn.execute(FILL_NAMES, ids, [text(resolution.names[i], 255) for i in ids])
        for developer_id in ids:
            details = lookups.developers.get(developer_id)
            if details is not None:
                lookups.developers.stage(developer_id, (details[0], True))
    if resolution.usernames:
        ids = sorted(resolution.usernames)
        await conn.execute(
            FILL_USERNAMES,
            ids,
            *[[resolution.usernames[i].get(provider) for i in ids] for provider in USERNAME_COLUMNS],
        )
