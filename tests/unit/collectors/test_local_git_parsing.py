"""The local git provider's pure parts: the `git log -z --numstat` parser, locations, redaction."""

from __future__ import annotations

from pathlib import Path

from doraflow.collectors.git.local import (
    CommitStreamParser,
    Walk,
    _auth_env,
    _clone_url,
    parse_location,
    redact,
    to_commit,
)
from doraflow.core.events import RepositoryRef

SHA1, SHA2, SHA3 = "a" * 40, "b" * 40, "c" * 40
REPO = RepositoryRef(provider="git", id="/r", name="r")


def header(sha: str, parents: str, message: bytes) -> list[bytes]:
    return [
        b"\x1e" + sha.encode(),
        parents.encode(),
        b"Ada Lovelace",
        b"ada@example.com",
        b"2024-03-01T10:00:00+05:30",
        b"2024-03-01T12:00:00-08:00",
        message,
    ]


def stream() -> list[bytes]:
    # Exactly the token layout git prints (see the module docstring), including a rename, a binary
    # file, a merge without numstat and a message containing the record separator mid-text.
    return [
        *header(SHA1, f"{SHA2} {SHA3}", b"Merge branch 'x'\n"),
        *header(SHA2, SHA3, b"second\n\nbody \x1e kept\n"),
        b"\n1\t0\t",
        b"old.txt",
        b"new.txt",
        b"-\t-\tlogo.png",
        b"10\t2\tsrc/\tweird name.py",
        *header(SHA3, "", b"root\n"),
        b"\n3\t0\tREADME",
        b"",
    ]


def test_parser_handles_renames_binaries_merges_and_chunk_boundaries() -> None:
    tokens = stream()
    for split in range(len(tokens) + 1):  # every chunk boundary gives the same commits
        parser = CommitStreamParser()
        parsed = parser.feed(tokens[:split]) + parser.feed(tokens[split:]) + parser.finish()
        assert [(p.header[0], p.files, p.additions, p.deletions) for p in parsed] == [
            (SHA1.encode(), 0, 0, 0),
            (SHA2.encode(), 3, 11, 2),
            (SHA3.encode(), 1, 3, 0),
        ]


def test_commit_conversion_keeps_offsets_as_utc_and_zeroes_merges() -> None:
    parser = CommitStreamParser()
    merge, second, root = [to_commit(p, REPO) for p in parser.feed(stream()) + parser.finish()]
    assert merge.parents == [SHA2, SHA3]
    assert (merge.additions, merge.deletions, merge.files_changed) == (0, 0, 0)
    assert second.authored_at.isoformat() == "2024-03-01T04:30:00+00:00"
    assert second.committed_at is not None
    assert second.committed_at.isoformat() == "2024-03-01T20:00:00+00:00"
    assert second.message == "second\n\nbody \x1e kept"
    assert root.parents == []
    assert second.author.email == "ada@example.com"


def test_locations() -> None:
    github = parse_location("https://user:s3cret@github.com/acme/api.git")
    assert (github.name, github.id, github.public_url) == (
        "acme/api",
        "https://github.com/acme/api.git",
        "https://github.com/acme/api.git",
    )
    assert github.url == "https://user:s3cret@github.com/acme/api.git"
    assert parse_location("git@gitlab.com:group/sub/api.git").name == "group/sub/api"
    assert parse_location("file:///srv/repos/api.git").name == "api"
    local = parse_location("/srv/checkouts/web/")
    assert (local.name, local.id, local.path) == ("web", "/srv/checkouts/web", Path("/srv/checkouts/web"))


def test_credentials_never_leave_through_urls_or_argv() -> None:
    assert (
        redact("fatal: unable to access 'https://x:tok@h/r.git/'")
        == "fatal: unable to access 'https://h/r.git/'"
    )
    env = _auth_env("https://github.com/acme/api.git", "tok")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Basic eC1hY2Nlc3MtdG9rZW46dG9r"  # x-access-token:tok
    assert _auth_env("file:///srv/api.git", "tok") == {}
    assert _auth_env("https://github.com/acme/api.git", None) == {}
    from_url = _auth_env("https://bot:pw@git.example.com:8443/a/b.git", None)
    assert from_url["GIT_CONFIG_KEY_0"] == "http.https://git.example.com:8443/.extraHeader"
    assert from_url["GIT_CONFIG_VALUE_0"] == "Authorization: Basic Ym90OnB3"  # bot:pw
    # The URL git is given (and writes into the mirror's config) carries no credentials.
    assert (
        _clone_url(parse_location("https://bot:pw@git.example.com/a/b.git"))
        == "https://git.example.com/a/b.git"
    )
    assert _clone_url(parse_location("git@github.com:a/b.git")) == "git@github.com:a/b.git"


def test_walk_cursor_round_trip_and_garbage() -> None:
    walk = Walk(
        include=[SHA1],
        exclude=[SHA2],
        since="2024-01-01 00:00:00 +0000",
        tips={"refs/heads/main": SHA1},
        done=7,
    )
    assert Walk.from_json(walk.to_json()) == walk
    assert Walk.from_json({"include": 3}) is None
    assert Walk.from_json(None) is None
