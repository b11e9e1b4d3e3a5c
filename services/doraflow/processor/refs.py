"""Branches, tags, releases and contributors: staged per batch and upserted, like `storage` does for
the git facts (column arrays + `unnest`, one statement per table, natural ids).

Why a version's *observation* time decides, not the time of the commit it names: a branch or tag
is a pointer that moves both ways — a force push resets a branch to an older commit, a tag is
moved back — so ordering by the head commit's time would leave such a branch stuck on the newer,
abandoned commit forever. Each row keeps `observed_at`, the `collected_at` of the event that last
confirmed it, and an event is applied only when it was observed later than that (or at the same
time and says something different). Hence:

* a replay writes nothing: every replayed event was observed no later than the stored row, and the
  one observed at the same time is the one stored;
* an older event never regresses a newer row, in a batch (`RefsPlan.add` keeps the latest
  observation per key, the last one on a tie, as the SQL does across batches) or across batches;
* a newer observation of an unchanged ref moves `observed_at` forward: without that, an older
  event replayed after it would find the row still "older" than itself and win.

A `deleted` branch or tag keeps its row (pull requests and deployments still name it) and only
sets `deleted_at` to when the deletion was first observed; a newer event that shows the ref again
clears it. Releases follow the same rule; GitHub and GitLab also edit a release in place (a draft
published, a renamed release), which the observation order follows naturally.

Contributors resolve to developers with everyone else of the batch (`identity`), so a GitHub login
and the email on that person's commits end up as one developer. A listing names each identity
once; when several identities of one listing resolve to one developer, that developer's
contributions are their sum.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from doraflow.core.events import BranchData, ContributorData, EventData, PersonRef, ReleaseData, TagData
from doraflow.core.models import natural_id
from doraflow.processor.columns import append_row, empty_columns
from doraflow.processor.identity import PersonKey

if TYPE_CHECKING:
    from doraflow.processor.entities import OrganizationInfo
    from doraflow.processor.transform import RepoKey

Connection = Any  # asyncpg.Connection (untyped library)
PersonOf = Callable[[PersonRef | None], PersonKey | None]
T = TypeVar("T")
K = TypeVar("K")

# The payload types this module stores (`transform` dispatches them here).
REF_TYPES: tuple[type[EventData], ...] = (BranchData, TagData, ReleaseData, ContributorData)
_INT4_MAX = 2**31 - 1


def _storable(value: str | None) -> str | None:
    """Text PostgreSQL can hold (no NUL characters); lengths are bounded by the event schemas."""
    return value.replace("\x00", "") if value is not None and "\x00" in value else value


@dataclass(slots=True)
class StagedRef(Generic[T]):
    data: T
    organization: str
    repository: RepoKey
    observed_at: datetime
    person: PersonKey | None = None  # tagger, release author, contributor


@dataclass(slots=True)
class RefsPlan:
    """One batch's refs and contributors, the latest observation per natural key."""

    branches: dict[tuple[RepoKey, str], StagedRef[BranchData]] = field(default_factory=dict)
    tags: dict[tuple[RepoKey, str], StagedRef[TagData]] = field(default_factory=dict)
    releases: dict[tuple[RepoKey, str], StagedRef[ReleaseData]] = field(default_factory=dict)
    contributors: dict[tuple[RepoKey, PersonKey], StagedRef[ContributorData]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.branches or self.tags or self.releases or self.contributors)

    def add(
        self,
        data: EventData,
        organization: str,
        repository: RepoKey,
        observed_at: datetime,
        person_of: PersonOf,
    ) -> None:
        """Stage one event; `person_of` turns a PersonRef into the batch's PersonKey (and puts the
        person into the plan for resolution, as commit authors are)."""

        def staged(person: PersonKey | None = None) -> StagedRef[Any]:
            return StagedRef(data, organization, repository, observed_at, person)

        if isinstance(data, BranchData):
            _keep(self.branches, (repository, data.name), staged())
        elif isinstance(data, TagData):
            _keep(self.tags, (repository, data.name), staged(person_of(data.tagger)))
        elif isinstance(data, ReleaseData):
            _keep(self.releases, (repository, data.release_id), staged(person_of(data.author)))
        elif isinstance(data, ContributorData):
            person = person_of(data.person)
            assert person is not None  # only an absent PersonRef has no key
            _keep(self.contributors, (repository, person), staged(person))
        else:
            raise TypeError(f"not a ref or contributor: {type(data).__name__}")


def _keep(table: dict[K, StagedRef[T]], key: K, staged: StagedRef[T]) -> None:
    """The latest observation per key; on a tie the later event (as the SQL does across batches)."""
    current = table.get(key)
    if current is None or staged.observed_at >= current.observed_at:
        table[key] = staged


# Applied when observed later than the stored version, or at the same time and different. A
# deletion keeps the ref's facts and sets `deleted_at` once (when the deletion was first observed).
UPSERT_BRANCHES = """
INSERT INTO branches AS b (id, organization_id, repository_id, name, head_sha, is_default, protected,
                           updated_at, deleted_at, observed_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bool[], $7::bool[],
                     $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
ON CONFLICT (repository_id, name) DO UPDATE SET
    head_sha = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.head_sha ELSE b.head_sha END,
    is_default = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.is_default ELSE b.is_default END,
    protected = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.protected ELSE b.protected END,
    updated_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.updated_at ELSE b.updated_at END,
    deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL
                      ELSE COALESCE(b.deleted_at, EXCLUDED.deleted_at) END,
    observed_at = EXCLUDED.observed_at
WHERE EXCLUDED.observed_at > b.observed_at
   OR (EXCLUDED.observed_at = b.observed_at
       AND CASE WHEN EXCLUDED.deleted_at IS NULL
                THEN (b.head_sha, b.is_default, b.protected, b.updated_at, b.deleted_at)
                     IS DISTINCT FROM
                     (EXCLUDED.head_sha, EXCLUDED.is_default, EXCLUDED.protected, EXCLUDED.updated_at,
                      NULL::timestamptz)
                ELSE b.deleted_at IS NULL END)
"""
UPSERT_TAGS = """
INSERT INTO tags AS t (id, organization_id, repository_id, name, commit_sha, annotated, tagged_at,
                       tagger_id, message, deleted_at, observed_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bool[],
                     $7::timestamptz[], $8::uuid[], $9::text[], $10::timestamptz[], $11::timestamptz[])
ON CONFLICT (repository_id, name) DO UPDATE SET
    commit_sha = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.commit_sha ELSE t.commit_sha END,
    annotated = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.annotated ELSE t.annotated END,
    tagged_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.tagged_at ELSE t.tagged_at END,
    tagger_id = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.tagger_id ELSE t.tagger_id END,
    message = CASE WHEN EXCLUDED.deleted_at IS NULL THEN EXCLUDED.message ELSE t.message END,
    deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL
                      ELSE COALESCE(t.deleted_at, EXCLUDED.deleted_at) END,
    observed_at = EXCLUDED.observed_at
WHERE EXCLUDED.observed_at > t.observed_at
   OR (EXCLUDED.observed_at = t.observed_at
       AND CASE WHEN EXCLUDED.deleted_at IS NULL
                THEN (t.commit_sha, t.annotated, t.tagged_at, t.tagger_id, t.message, t.deleted_at)
                     IS DISTINCT FROM
                     (EXCLUDED.commit_sha, EXCLUDED.annotated, EXCLUDED.tagged_at, EXCLUDED.tagger_id,
                      EXCLUDED.message, NULL::timestamptz)
                ELSE t.deleted_at IS NULL END)
"""
UPSERT_RELEASES = """
INSERT INTO releases AS r (id, organization_id, repository_id, external_id, tag_name, name, created_at,
                           published_at, draft, prerelease, author_id, url, observed_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::bool[], $10::bool[], $11::uuid[], $12::text[],
                     $13::timestamptz[])
ON CONFLICT (repository_id, external_id) DO UPDATE SET
    tag_name = EXCLUDED.tag_name, name = EXCLUDED.name, created_at = EXCLUDED.created_at,
    published_at = EXCLUDED.published_at, draft = EXCLUDED.draft, prerelease = EXCLUDED.prerelease,
    author_id = EXCLUDED.author_id, url = EXCLUDED.url, observed_at = EXCLUDED.observed_at
WHERE EXCLUDED.observed_at > r.observed_at
   OR (EXCLUDED.observed_at = r.observed_at
       AND (r.tag_name, r.name, r.created_at, r.published_at, r.draft, r.prerelease, r.author_id, r.url)
           IS DISTINCT FROM
           (EXCLUDED.tag_name, EXCLUDED.name, EXCLUDED.created_at, EXCLUDED.published_at, EXCLUDED.draft,
            EXCLUDED.prerelease, EXCLUDED.author_id, EXCLUDED.url))
"""
UPSERT_CONTRIBUTORS = """
INSERT INTO repository_contributors AS c (repository_id, developer_id, contributions, observed_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::timestamptz[])
ON CONFLICT (repository_id, developer_id) DO UPDATE SET
    contributions = EXCLUDED.contributions, observed_at = EXCLUDED.observed_at
WHERE EXCLUDED.observed_at > c.observed_at
   OR (EXCLUDED.observed_at = c.observed_at AND c.contributions IS DISTINCT FROM EXCLUDED.contributions)
"""

# A provisional developer merged into the one it turned out to be (`entities`): its contributor
# rows move over before it is deleted (which would cascade to them). Where the surviving developer
# has a row for the repository already, the newer observation wins (on a tie, the larger count).
MERGE_CONTRIBUTORS = """
INSERT INTO repository_contributors AS c (repository_id, developer_id, contributions, observed_at)
SELECT DISTINCT ON (rc.repository_id, m.into_id) rc.repository_id, m.into_id, rc.contributions,
       rc.observed_at
FROM unnest($1::uuid[], $2::uuid[]) AS m(from_id, into_id)
JOIN repository_contributors rc ON rc.developer_id = m.from_id
ORDER BY rc.repository_id, m.into_id, rc.observed_at DESC
ON CONFLICT (repository_id, developer_id) DO UPDATE SET
    contributions = CASE WHEN EXCLUDED.observed_at > c.observed_at THEN EXCLUDED.contributions
                         WHEN EXCLUDED.observed_at < c.observed_at THEN c.contributions
                         ELSE GREATEST(c.contributions, EXCLUDED.contributions) END,
    observed_at = GREATEST(c.observed_at, EXCLUDED.observed_at)
"""


async def store(
    conn: Connection,
    plan: RefsPlan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> None:
    """Upsert the batch's branches, tags, releases and contributors (inside the caller's
    transaction, after organizations, repositories and developers are resolved)."""
    if plan.branches:
        await conn.execute(UPSERT_BRANCHES, *_branch_columns(plan, orgs, repos))
    if plan.tags:
        await conn.execute(UPSERT_TAGS, *_tag_columns(plan, orgs, repos, people))
    if plan.releases:
        await conn.execute(UPSERT_RELEASES, *_release_columns(plan, orgs, repos, people))
    if plan.contributors:
        cols = empty_columns(4)
        for (repo_id, developer_id), (contributions, observed_at) in sorted(
            _contributions(plan, repos, people).items()
        ):
            append_row(cols, (repo_id, developer_id, contributions, observed_at))
        await conn.execute(UPSERT_CONTRIBUTORS, *cols)


def _branch_columns(
    plan: RefsPlan, orgs: dict[str, OrganizationInfo], repos: dict[RepoKey, uuid.UUID]
) -> list[list[Any]]:
    cols = empty_columns(10)
    for staged in plan.branches.values():
        b = staged.data
        repo_id = repos[staged.repository]
        row = (
            natural_id("branch", repo_id, b.name),
            orgs[staged.organization].id,
            repo_id,
            _storable(b.name),
            b.head_sha,
            b.is_default,
            b.protected,
            b.updated_at,
            staged.observed_at if b.deleted else None,
            staged.observed_at,
        )
        append_row(cols, row)
    return cols


def _tag_columns(
    plan: RefsPlan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> list[list[Any]]:
    cols = empty_columns(11)
    for staged in plan.tags.values():
        t = staged.data
        repo_id = repos[staged.repository]
        row = (
            natural_id("tag", repo_id, t.name),
            orgs[staged.organization].id,
            repo_id,
            _storable(t.name),
            t.sha,
            t.annotated,
            t.tagged_at,
            people[staged.person] if staged.person is not None else None,
            _storable(t.message),
            staged.observed_at if t.deleted else None,
            staged.observed_at,
        )
        append_row(cols, row)
    return cols


def _release_columns(
    plan: RefsPlan,
    orgs: dict[str, OrganizationInfo],
    repos: dict[RepoKey, uuid.UUID],
    people: dict[PersonKey, uuid.UUID],
) -> list[list[Any]]:
    cols = empty_columns(13)
    for staged in plan.releases.values():
        r = staged.data
        repo_id = repos[staged.repository]
        row = (
            natural_id("release", repo_id, r.release_id),
            orgs[staged.organization].id,
            repo_id,
            r.release_id,
            _storable(r.tag_name),
            _storable(r.name),
            r.created_at,
            r.published_at,
            r.draft,
            r.prerelease,
            people[staged.person] if staged.person is not None else None,
            _storable(r.url),
            staged.observed_at,
        )
        append_row(cols, row)
    return cols


def _contributions(
    plan: RefsPlan, repos: dict[RepoKey, uuid.UUID], people: dict[PersonKey, uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[int | None, datetime]]:
    """One row per (repository, developer): identities that resolved to the same developer are
    summed when observed together (one listing), else the latest observation counts."""
    rows: dict[tuple[uuid.UUID, uuid.UUID], tuple[int | None, datetime]] = {}
    for (repository, person), staged in plan.contributors.items():
        key = (repos[repository], people[person])
        count = staged.data.contributions
        current = rows.get(key)
        if current is None or staged.observed_at > current[1]:
            rows[key] = (count, staged.observed_at)
        elif staged.observed_at == current[1] and count is not None:
            rows[key] = (min(_INT4_MAX, (current[0] or 0) + count), current[1])
    return {key: (None if c is None else min(c, _INT4_MAX), at) for key, (c, at) in rows.items()}
