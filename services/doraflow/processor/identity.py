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
are never moved between *real* developers implicitly (that is what aliases are for), so
re-processing an event always resolves it the same way and a replay changes nothing.

A *synthetic* developer, though, is only a placeholder for someone whose email was not known yet:
when an event shows its username together with an email (a GitHub login first seen on a pull
request, then on a commit with its author email), it is **merged** into the developer of that email
— its identities and every reference to it move over and the placeholder row is deleted. So the
final set of developers and who authored what do not depend on which topic delivered first; and as
a developer created for an email is keyed by that email (`natural_id("developer", org, email)`),
neither do the ids.

Values are compared lower-cased and stripped; this module is pure, the SQL lives in `storage`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Set
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
    reference to be created), the identities to record, and the synthetic developers to merge."""

    person_developer: dict[PersonKey, uuid.UUID | str] = field(default_factory=dict)
    new_developers: dict[str, NewDeveloper] = field(default_factory=dict)
    new_identities: dict[tuple[str, str, str], uuid.UUID | str] = field(default_factory=dict)
    # existing synthetic developer → the developer it turned out to be (existing id or new ref)
    merges: dict[uuid.UUID, uuid.UUID | str] = field(default_factory=dict)
    usernames: dict[uuid.UUID, dict[str, str]] = field(default_factory=dict)  # existing dev → usernames
    names: dict[uuid.UUID, str] = field(default_factory=dict)  # existing dev without a name → a name


class _Resolver:
    def __init__(
        self,
        known: Mapping[tuple[str, str, str], uuid.UUID],
        developer_emails: Mapping[uuid.UUID, str],
        aliases: Mapping[str, Mapping[str, str]],
        unnamed: Set[uuid.UUID],
    ) -> None:
        self.result = Resolution()
        self.assigned: dict[tuple[str, str, str], uuid.UUID | str] = dict(known)
        self.emails = developer_emails
        self.aliases = aliases
        self.unnamed = unnamed

    def synthetic(self, developer: uuid.UUID | str) -> bool:
        if isinstance(developer, str):
            return is_synthetic(self.result.new_developers[developer].email)
        email = self.emails.get(developer)
        return email is not None and is_synthetic(email)

    def new(self, org: str, email: str, person: PersonKey) -> str:
        developer = NewDeveloper(org, email, person.name)
        return self.result.new_developers.setdefault(developer.ref(), developer).ref()

    def by_email(self, org: str, email: str, person: PersonKey) -> uuid.UUID | str:
        """The developer owning `email`, created (as a new row) when nobody does yet."""
        key = (org, EMAIL_KIND, email)
        developer = self.assigned.get(key)
        if developer is None:
            developer = self.assigned[key] = self.new(org, email, person)
            if not is_synthetic(email):
                self.result.new_identities[key] = developer
        return developer

    def merge(self, synthetic: uuid.UUID | str, into: uuid.UUID | str) -> None:
        """`synthetic` (a developer known only by a username) is `into`: everything pointing at
        it in this batch now points at `into`, and an existing row is merged in the database."""
        for key, developer in self.assigned.items():
            if developer == synthetic:
                self.assigned[key] = into
        for key, developer in self.result.new_identities.items():
            if developer == synthetic:
                self.result.new_identities[key] = into
        for person, developer in self.result.person_developer.items():
            if developer == synthetic:
                self.result.person_developer[person] = into
        if isinstance(synthetic, uuid.UUID):
            self.result.merges[synthetic] = into
        else:  # a synthetic developer created earlier in this very batch: simply not created
            self.result.new_developers.pop(synthetic, None)

    def resolve(self, person: PersonKey) -> None:
        org = person.organization
        email_key = (org, EMAIL_KIND, person.email) if person.email else None
        user_key = (org, person.provider, person.username) if person.username else None
        by_email = self.assigned.get(email_key) if email_key else None
        by_user = self.assigned.get(user_key) if user_key else None
        developer = by_email
        if developer is None and by_user is not None and not (person.email and self.synthetic(by_user)):
            developer = by_user
        if developer is None:
            org_aliases = self.aliases.get(org, {})
            canonical = next(
                (org_aliases[c] for c in (person.email, person.username) if c and c in org_aliases), None
            )
            if canonical is not None:
                developer = self.by_email(org, canonical, person)
        if developer is None:
            developer = self.by_email(org, person.email or synthetic_email(person), person)
        if (
            by_user is not None
            and by_user != developer
            and self.synthetic(by_user)
            and not self.synthetic(developer)
        ):
            self.merge(by_user, developer)
        self.result.person_developer[person] = developer
        for key in (email_key, user_key):
            if key is not None and key not in self.assigned:
                self.assigned[key] = developer
                self.result.new_identities[key] = developer
                if key[1] in USERNAME_COLUMNS and isinstance(developer, uuid.UUID):
                    # A new account of a known developer: fill the seed's per-provider column.
                    self.result.usernames.setdefault(developer, {}).setdefault(key[1], key[2])
        if isinstance(developer, str):
            new = self.result.new_developers[developer]
            if person.username and person.provider in USERNAME_COLUMNS:
                new.usernames.setdefault(person.provider, person.username)
            if new.name is None and person.name:
                new.name = person.name
        elif person.name and developer in self.unnamed:
            # A developer first seen without a name (a Jira account, a login) gets the first one
            # that shows up, so the name does not depend on which source delivered first.
            self.result.names.setdefault(developer, person.name)


def resolve(
    persons: Iterable[PersonKey],
    *,
    known: Mapping[tuple[str, str, str], uuid.UUID],
    developer_emails: Mapping[uuid.UUID, str],
    aliases: Mapping[str, Mapping[str, str]],
    unnamed: Set[uuid.UUID] = frozenset(),
) -> Resolution:
    """Resolve every person (see module docstring).

    `known` maps `(organization, kind, value)` to a developer id — identities from
    `developer_identities` plus every `developers.email` as an `email` identity; `developer_emails`
    gives the current email of those developers (to spot synthetic ones) and `unnamed` those without
    a name yet; `aliases` is per organization `{alias: canonical email}`, lower-cased. Persons are
    visited with an email first, in sorted order, so the outcome does not depend on the order of
    events within a batch.
    """
    resolver = _Resolver(known, developer_emails, aliases, unnamed)
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
        resolver.resolve(person)
    return resolver.result
