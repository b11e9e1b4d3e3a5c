"""Developer identity resolution: which `developers` row a person seen in an event is.

The same person appears as `jane@acme.com` in git, `jdoe` on GitHub, `jane.doe` on GitLab and an
account id in Jira. Resolution, per organization, in this order:

1. **email** — a known email identity (or a `developers.email`) decides;
2. **provider username** — a known `(provider, username)` identity decides (GitHub pull requests
   carry a login but no email);
3. **aliases** — the organization's settings `{"aliases": {alias: canonical email}}` map an email or
   username (case-insensitive) to the developer who owns the canonical email;
4. otherwise a **new developer**, keyed by the email, or by the *synthetic email*
   `{username}@users.noreply.{provider}` when the source gave no email (`commits.author_id` is NOT
   NULL, so an unknown author still needs a row). With neither email nor username the name is used
   (`{name-slug}@users.noreply.{provider}`), and with nothing at all `unknown@users.noreply.{provider}`.

Every identity of the person that is not yet known (its email, its provider username) is then
recorded against the chosen developer, so the next event resolves at step 1 or 2. Known identities
are never moved to another developer implicitly: re-processing an event always resolves it the
same way, which is what makes a replay change nothing. When a synthetic developer later shows a
real email (a GitHub login first seen on a pull request, then on a commit with its email), the
developer's email is promoted to the real one.

Values are compared lower-cased and stripped; this module is pure, the SQL lives in `storage`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from doraflow.core.events import PersonRef

SYNTHETIC_MARKER = "@users.noreply."
EMAIL_KIND = "email"
# Providers whose usernames have a column of their own on `developers` (the seed's columns).
USERNAME_COLUMNS = {
    "github": "github_username",
    "gitlab": "gitlab_username",
    "bitbucket": "bitbucket_username",
}


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


def _looks_like_email(value: str) -> bool:
    return "@" in value and not value.startswith("@") and not value.endswith("@")


@dataclass(frozen=True, slots=True)
class PersonKey:
    """A person as one event saw them, normalised; the unit of resolution."""

    organization: str
    provider: str
    email: str | None
    username: str | None
    name: str | None

    @classmethod
    def of(cls, organization: str, provider: str, person: PersonRef) -> PersonKey:
        email = _clean(person.email)
        if email is not None and (not _looks_like_email(email) or SYNTHETIC_MARKER in email):
            email = None  # "none", "(no email)", or a provider's noreply address carry no identity
        name = person.name.strip() if person.name and person.name.strip() else None
        return cls(organization, _clean(provider) or "unknown", email, _clean(person.username), name)

    def identities(self) -> list[tuple[str, str]]:
        """The identities this person proves: `(kind, value)`, kind `email` or the provider."""
        found: list[tuple[str, str]] = []
        if self.email:
            found.append((EMAIL_KIND, self.email))
        if self.username:
            found.append((self.provider, self.username))
        return found


_SLUG = re.compile(r"[^a-z0-9._-]+")


def synthetic_email(key: PersonKey) -> str:
    """`{username}@users.noreply.{provider}` (see module docstring for the fallbacks)."""
    local = key.username or (_SLUG.sub("-", key.name.lower()).strip("-") if key.name else "") or "unknown"
    return f"{local}{SYNTHETIC_MARKER}{key.provider}"[:255]


def is_synthetic(email: str) -> bool:
    return SYNTHETIC_MARKER in email


@dataclass(slots=True)
class NewDeveloper:
    organization: str
    email: str
    name: str | None
    usernames: dict[str, str] = field(default_factory=dict)  # provider → username

    def ref(self) -> str:
        return f"new:{self.organization}:{self.email}"


@dataclass(slots=True)
class Resolution:
    """The outcome for one batch: each person's developer (an existing id, or a `NewDeveloper`
    reference to be created), the identities to record, and synthetic developers to promote."""

    person_developer: dict[PersonKey, uuid.UUID | str] = field(default_factory=dict)
    new_developers: dict[str, NewDeveloper] = field(default_factory=dict)
    new_identities: dict[tuple[str, str, str], uuid.UUID | str] = field(default_factory=dict)
    promotions: dict[uuid.UUID, str] = field(default_factory=dict)  # existing synthetic dev → real email
    usernames: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)  # existing dev → usernames


def resolve(
    persons: Iterable[PersonKey],
    *,
    known: Mapping[tuple[str, str, str], uuid.UUID],
    developer_emails: Mapping[uuid.UUID, str],
    aliases: Mapping[str, Mapping[str, str]],
) -> Resolution:
    """Resolve every person (see module docstring).

    `known` maps `(organization, kind, value)` to a developer id — identities from
    `developer_identities` plus every `developers.email` as an `email` identity; `developer_emails`
    gives the current email of those developers (to spot synthetic ones); `aliases` is per
    organization `{alias: canonical email}`, lower-cased. Persons are visited with an email first,
    in sorted order, so the outcome does not depend on the order of events within a batch.
    """
    result = Resolution()
    assigned: dict[tuple[str, str, str], uuid.UUID | str] = dict(known)
    ordered = sorted(
        set(persons),
        key=lambda p: (
            p.email is None,
            p.organization,
            p.email or "",
            p.provider,
            p.username or "",
            p.name or "",
        ),
    )
    for person in ordered:
        org = person.organization
        developer: uuid.UUID | str | None = None
        if person.email:
            developer = assigned.get((org, EMAIL_KIND, person.email))
        if developer is None and person.username:
            developer = assigned.get((org, person.provider, person.username))
        if developer is None:
            org_aliases = aliases.get(org, {})
            canonical = None
            for candidate in (person.email, person.username):
                if candidate and candidate in org_aliases:
                    canonical = org_aliases[candidate]
                    break
            if canonical is not None:
                developer = assigned.get((org, EMAIL_KIND, canonical))
                if developer is None:
                    developer = _new(result, org, canonical, person)
                    assigned[(org, EMAIL_KIND, canonical)] = developer
                    result.new_identities[(org, EMAIL_KIND, canonical)] = developer
        if developer is None:
            email = person.email or synthetic_email(person)
            developer = assigned.get((org, EMAIL_KIND, email)) or _new(result, org, email, person)
            assigned[(org, EMAIL_KIND, email)] = developer
        result.person_developer[person] = developer
        for kind, value in person.identities():
            if (org, kind, value) not in assigned:
                assigned[(org, kind, value)] = developer
                result.new_identities[(org, kind, value)] = developer
                if kind in USERNAME_COLUMNS and isinstance(developer, uuid.UUID):
                    # A new account of a known developer: fill the seed's per-provider column.
                    result.usernames.setdefault(developer, {}).setdefault(kind, value)
        _remember_details(result, developer, person, developer_emails)
    return result


def _new(result: Resolution, org: str, email: str, person: PersonKey) -> str:
    developer = NewDeveloper(org, email, person.name)
    existing = result.new_developers.setdefault(developer.ref(), developer)
    return existing.ref()


def _remember_details(
    result: Resolution,
    developer: uuid.UUID | str,
    person: PersonKey,
    developer_emails: Mapping[uuid.UUID, str],
) -> None:
    """Fill the seed's per-provider username columns and promote synthetic emails."""
    if isinstance(developer, str):
        new = result.new_developers[developer]
        if person.username and person.provider in USERNAME_COLUMNS:
            new.usernames.setdefault(person.provider, person.username)
        if new.name is None and person.name:
            new.name = person.name
        if is_synthetic(new.email) and person.email:
            # Promote within the batch: the new row is created with the real email.
            replacement = NewDeveloper(new.organization, person.email, new.name, new.usernames)
            result.new_developers[developer] = replacement
        return
    current = result.promotions.get(developer) or developer_emails.get(developer)
    if current is not None and is_synthetic(current) and person.email and developer not in result.promotions:
        result.promotions[developer] = person.email
