"""The glob dialect of `spec.scope` and declared team repositories (core.globs), with hand-computed
cases, and its PostgreSQL form: the same translation, anchored, meaning the same (the integration
test tests/integration/api/test_declared_teams.py runs these patterns in PostgreSQL itself)."""

from __future__ import annotations

import fnmatch
import re

import pytest

from doraflow.core.globs import glob_match, glob_postgres_regex, is_glob, literal_prefix


@pytest.mark.parametrize(
    ("name", "pattern", "matches"),
    [
        ("acme/api", "acme/api", True),
        ("acme/api", "acme/*", True),
        ("acme/sub/api", "acme/*", False),  # `*` stays within one segment: not the subgroup's projects
        ("acme/sub/api", "acme/**", True),  # `**` crosses segments
        ("acme/api", "acme/**", True),
        ("acme/a/b/api", "acme/**/api", True),
        ("acme/api", "*/api", True),
        ("acme/api-gateway", "acme/api-*", True),
        ("acme/web", "acme/api-*", False),
        ("ACME/Api", "acme/a*", True),  # case-insensitive, like the providers' paths
        ("acme/api", "acme/a?i", True),
        ("acme/a/i", "acme/a?i", False),  # `?` is one character, never `/`
        ("acme/api-1", "acme/api-[0-9]", True),
        ("acme/api-x", "acme/api-[0-9]", False),
        ("acme/api-x", "acme/api-[!0-9]", True),
        ("acme/api-1", "acme/api-[!0-9]", False),
        ("acme/a/b", "acme/a[!x]b", False),  # a negated class does not match `/` either
        ("acme/[api", "acme/[api", True),  # a `[` never closed is a literal
        ("acme/a.i", "acme/a.i", True),
        ("acme/abi", "acme/a.i", False),  # regex characters are literal
        ("archive/acme/api", "acme/*", False),  # the whole name must match
    ],
)
def test_glob_dialect(name: str, pattern: str, matches: bool) -> None:
    assert glob_match(name, pattern) is matches


def test_literal_prefix_is_what_to_list() -> None:
    assert literal_prefix("acme/sub/*") == "acme/sub"
    assert literal_prefix("acme/api-*") == "acme"
    assert literal_prefix("*/api") == ""
    assert literal_prefix("acme/api") == "acme/api"
    assert is_glob("acme/[ab]pi")
    assert not is_glob("acme/api")


# Every ASCII character that is not glob syntax, as a literal: each must be escaped so that both
# Python's `re` and PostgreSQL read it as itself.
PUNCTUATION = "".join(chr(c) for c in range(0x20, 0x7F) if not chr(c).isalnum() and chr(c) not in "*?[")
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
    f"acme/{PUNCTUATION}é",
    "acme/[!-x]pi",  # `-` first in a class is itself, not a range from `/`
    "acme/[a-]pi",
    "acme/[+--]pi",  # a range between punctuation: + , -
    "acme/[b-a]pi",  # a reversed range matches nothing
    "acme/[!b-a]pi",
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
    f"acme/{PUNCTUATION}é",
    f"acme/{PUNCTUATION}",
    "acme/-pi",
    "acme/,pi",
    "acme/.pi",
]


def test_every_punctuation_character_is_a_literal() -> None:
    pattern = f"acme/{PUNCTUATION}"
    assert glob_match(pattern, pattern)
    assert not glob_match(pattern.replace(".", "x"), pattern)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_postgres_form_selects_what_the_python_form_selects(pattern: str) -> None:
    regex = re.compile(glob_postgres_regex(pattern), re.IGNORECASE)
    for name in NAMES:
        assert (regex.search(name) is not None) == glob_match(name, pattern), (pattern, name)


def test_the_postgres_form_matches_whole_names() -> None:
    regex = re.compile(glob_postgres_regex("acme/api"), re.IGNORECASE)
    assert regex.search("acme/api")
    assert not regex.search("archive/acme/api")
    assert not regex.search("acme/api-old")


@pytest.mark.parametrize(
    "pattern",
    ["[!-x]", "[a-]", "[-a]", "[-]", "[b-a]", "[!b-a]", "[a-cx-z]", "[!a-c]", "[+--]", "[]a]", "[!]a]"],
)
def test_classes_read_as_fnmatch_reads_them(pattern: str) -> None:
    # within one path segment (no `/`): a negated class here also refuses `/`, fnmatch's does not
    for char in "abcxyz-+,.]!^\\":
        assert glob_match(char, pattern) == fnmatch.fnmatchcase(char, pattern), (pattern, char)
