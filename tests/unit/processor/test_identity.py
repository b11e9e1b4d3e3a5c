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


def test_a_synthetic_developer_is_promoted_when_its_real_email_shows_up() -> None:
    person = key(email="octo@acme.com", username="octocat")
    result = run(
        [person],
        {("acme", "github", "octocat"): BOB},
        emails={BOB: "octocat@users.noreply.github"},
    )
    assert result.person_developer[person] == BOB
    assert result.promotions == {BOB: "octo@acme.com"}


def test_a_new_account_of_a_known_developer_fills_its_provider_column() -> None:
    person = key(email="jane@acme.com", username="jdoe")
    result = run([person], {("acme", "email", "jane@acme.com"): JANE}, emails={JANE: "jane@acme.com"})
    assert result.usernames == {JANE: {"github": "jdoe"}}
    assert not result.promotions
