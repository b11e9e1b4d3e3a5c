"""Declared team members and repository patterns, read the way the processor and the collectors
read the same things (the API cannot import them, so these tests hold the two sides together)."""

from __future__ import annotations

import re

import pytest

from doraflow.api.services.declared_teams import GIT_HOSTS, MemberRef, glob_regex
from doraflow.collectors.common import glob_match
from doraflow.core.events import PersonRef
from doraflow.processor import identity


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("Ana@Acme.io", MemberRef(email="ana@acme.io")),
        ("  bo@acme.io ", MemberRef(email="bo@acme.io")),
        ("github:JDoe", MemberRef(provider="github", username="jdoe")),
        ("jira:5b10ac8d82e05b22cc7d4ef5", MemberRef(provider="jira", username="5b10ac8d82e05b22cc7d4ef5")),
        ("jdoe", MemberRef(username="jdoe")),
        ("jdoe@users.noreply.gitlab", MemberRef(provider="gitlab", username="jdoe")),
        ("@handle", MemberRef(username="@handle")),
        ("team:lead", MemberRef(username="team:lead")),  # not a provider: a username with a colon
    ],
)
def test_members_are_read_as_emails_or_provider_usernames(declared: str, expected: MemberRef) -> None:
    assert MemberRef.parse(declared) == expected


def test_a_bare_username_may_be_any_git_host_and_an_email_only_an_email() -> None:
    assert MemberRef.parse("jdoe").kinds() == GIT_HOSTS
    assert MemberRef.parse("gitlab:jdoe").kinds() == ("gitlab",)
    assert MemberRef.parse("ana@acme.io").kinds() == (identity.EMAIL_KIND,)


@pytest.mark.parametrize(("declared", "provider"), [("github:JDoe", "github"), ("jdoe", "github")])
def test_placeholders_are_the_processors_own(declared: str, provider: str) -> None:
    """The placeholder's email is what the processor would give the same login, so the processor
    recognises it as a placeholder (and merges it) and keys it the same way."""
    ref = MemberRef.parse(declared)
    person = identity.PersonKey.of("acme", provider, PersonRef(username="JDoe"))
    assert ref.placeholder_email() == identity.synthetic_email(person)
    assert identity.is_synthetic(ref.placeholder_email())
    assert set(ref.kinds()) >= {kind for kind, _ in person.identities()}
    assert ref.value == person.username


PATTERNS = [
    "acme/api",
    "acme/*",
    "acme/**",
    "acme/pay?ents",
    "acme/[ab]pi",
    "acme/[!a]pi",
    "acme/[a-c]pi",
    "ACME/Api",
    "a.b/c+d(e)",
    "x[y",
    "acme/*-svc",
]
NAMES = [
    "acme/api",
    "acme/bpi",
    "acme/xpi",
    "acme/payments",
    "acme/sub/api",
    "Acme/API",
    "a.b/c+d(e)",
    "axb/c+d(e)",
    "x[y",
    "acme/pay-svc",
    "acme/sub/pay-svc",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_repository_globs_mean_what_they_mean_in_spec_scope(pattern: str) -> None:
    regex = re.compile(glob_regex(pattern), re.IGNORECASE)
    for name in NAMES:
        assert (regex.search(name) is not None) == glob_match(name, pattern), (pattern, name)
