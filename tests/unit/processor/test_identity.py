"""Identity resolution rules (pure): email, then provider username, then aliases, else a new
developer keyed by the email or a synthetic one."""

from __future__ import annotations

import uuid

from doraflow.core.events import PersonRef
from doraflow.processor.identity import (
    NewDeveloper,
    PersonKey,
    Resolution,
    is_synthetic,
    resolve,
    synthetic_email,
)

JANE = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)


def key(provider: str = "github", **person: str | None) -> PersonKey:
    return PersonKey.of("acme", provider, PersonRef(**person))


def run(
    persons: list[PersonKey],
    known: dict[tuple[str, str, str], uuid.UUID] | None = None,
    emails: dict[uuid.UUID, str] | None = None,
    aliases: dict[str, str] | None = None,
) -> Resolution:
    return resolve(persons, known=known or {}, developer_emails=emails or {}, aliases={"acme": aliases or {}})


def test_values_are_normalised_and_noreply_emails_carry_no_identity() -> None:
    person = key(email="  Jane@ACME.com ", username="JDoe", name=" Jane ")
    assert (person.email, person.username, person.name) == ("jane@acme.com", "jdoe", "Jane")
    assert key(email="123+jdoe@users.noreply.github.com").email is None
    assert key(email="(none)").email is None


def test_email_decides_first() -> None:
    known = {("acme", "email", "jane@acme.com"): JANE, ("acme", "github", "bob"): BOB}
    result = run([key(email="jane@acme.com", username="bob")], known)
    assert result.person_developer == {key(email="jane@acme.com", username="bob"): JANE}
    assert not result.new_developers
    # the username is already Bob's: identities are never moved implicitly
    assert ("acme", "github", "bob") not in result.new_identities


def test_provider_username_decides_when_the_email_is_unknown() -> None:
    person = key(email="jane@home.example", username="jdoe")
    result = run([person], {("acme", "github", "jdoe"): JANE})
    assert result.person_developer[person] == JANE
    assert result.new_identities == {("acme", "email", "jane@home.example"): JANE}


def test_usernames_are_per_provider() -> None:
    on_gitlab = key("gitlab", username="jdoe")
    result = run([on_gitlab], {("acme", "github", "jdoe"): JANE})
    assert result.person_developer[on_gitlab] != JANE


def test_aliases_map_unknown_identities_to_the_canonical_email() -> None:
    laptop = key(email="jane@laptop.local")
    handle = key("gitlab", username="jane-gl")
    aliases = {"jane@laptop.local": "jane@acme.com", "jane-gl": "jane@acme.com"}
    result = run([laptop, handle], {("acme", "email", "jane@acme.com"): JANE}, aliases=aliases)
    assert result.person_developer == {laptop: JANE, handle: JANE}
    assert result.new_identities == {
        ("acme", "email", "jane@laptop.local"): JANE,
        ("acme", "gitlab", "jane-gl"): JANE,
    }


def test_an_alias_to_an_unseen_developer_creates_it_under_the_canonical_email() -> None:
    result = run([key(email="j@laptop.local")], aliases={"j@laptop.local": "jane@acme.com"})
    (developer,) = result.new_developers.values()
    assert developer.email == "jane@acme.com"


def test_an_unknown_author_without_email_gets_a_synthetic_email() -> None:
    person = key(username="octocat", name="The Octocat")
    assert synthetic_email(person) == "octocat@users.noreply.github"
    assert synthetic_email(key("git", name="Jane Q. Public")) == "jane-q.-public@users.noreply.git"
    assert synthetic_email(key("git")) == "unknown@users.noreply.git"
    result = run([person])
    (developer,) = result.new_developers.values()
    assert isinstance(developer, NewDeveloper)
    assert developer.email == "octocat@users.noreply.github"
    assert is_synthetic(developer.email)
    assert developer.usernames == {"github": "octocat"}


def test_people_of_one_batch_resolve_together_whatever_their_order() -> None:
    with_email = key(email="jane@acme.com", username="jdoe", name="Jane")
    login_only = key(username="jdoe")
    for order in ([with_email, login_only], [login_only, with_email]):
        result = run(order)
        assert len(result.new_developers) == 1
        (developer,) = result.new_developers.values()
        assert developer.email == "jane@acme.com"  # not a synthetic one
        assert result.person_developer[with_email] == result.person_developer[login_only]


def test_a_synthetic_developer_is_merged_into_the_developer_of_its_real_email() -> None:
    person = key(email="octo@acme.com", username="octocat")
    synthetic = {BOB: "octocat@users.noreply.github"}
    # the email's developer exists: the placeholder is merged into it
    result = run(
        [person], {("acme", "github", "octocat"): BOB, ("acme", "email", "octo@acme.com"): JANE}, synthetic
    )
    assert result.person_developer[person] == JANE
    assert result.merges == {BOB: JANE}
    # it does not: a developer keyed by the real email is created and the placeholder merged into it
    result = run([person], {("acme", "github", "octocat"): BOB}, synthetic)
    (ref,) = result.new_developers
    assert result.new_developers[ref].email == "octo@acme.com"
    assert result.person_developer[person] == ref
    assert result.merges == {BOB: ref}
    assert result.new_identities == {("acme", "email", "octo@acme.com"): ref}


def test_a_real_developer_is_never_merged_implicitly() -> None:
    person = key(email="jane@acme.com", username="bob")
    result = run(
        [person],
        {("acme", "email", "jane@acme.com"): JANE, ("acme", "github", "bob"): BOB},
        {JANE: "jane@acme.com", BOB: "bob@acme.com"},
    )
    assert result.person_developer[person] == JANE
    assert not result.merges


def test_login_first_or_email_first_ends_with_the_same_developer() -> None:
    login = key(username="octocat")
    both = key(email="octo@acme.com", username="octocat")
    first = run([login])
    (placeholder,) = first.new_developers.values()
    assert placeholder.email == "octocat@users.noreply.github"
    # next batch: the placeholder exists in the database
    second = run([both], {("acme", "github", "octocat"): BOB}, {BOB: placeholder.email})
    (developer,) = second.new_developers.values()
    assert developer.email == "octo@acme.com"
    assert second.merges
    # the other order never creates a placeholder
    other = run([both])
    assert [d.email for d in other.new_developers.values()] == ["octo@acme.com"]


def test_a_new_account_of_a_known_developer_fills_its_provider_column() -> None:
    person = key(email="jane@acme.com", username="jdoe")
    result = run([person], {("acme", "email", "jane@acme.com"): JANE}, emails={JANE: "jane@acme.com"})
    assert result.usernames == {JANE: {"github": "jdoe"}}
    assert not result.merges
