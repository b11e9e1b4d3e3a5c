"""Declared team members, read the way the processor reads the same people (the API cannot import
it, so these tests hold the two sides together; repository globs share `core.globs` with the
collectors, tested in tests/unit/core/test_globs.py)."""

from __future__ import annotations

import pytest

from doraflow.api.services.declared_teams import GIT_HOSTS, MemberRef
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
