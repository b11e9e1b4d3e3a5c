"""What the GitHub, GitLab, Bitbucket and local git clients share (collectors.git.common), with
hand-computed cases: expanding a repository scope, the hotfix rule, and pairing deployments with the
previous successful one of their environment in both directions. What work trackers share too (scope
globs, error hints, times, the time-window cursor) is tested in test_collectors_common. Also: the
default-branch flag and the ref snapshot that tells deleted branches and tags."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from doraflow.collectors.base import ScopeRef
from doraflow.collectors.git.common import (
    MAX_TRACKED_REFS,
    DeploymentPairer,
    DeploySighting,
    Paired,
    RefSnapshot,
    Shipped,
    branch_data,
    dump_newest_successes,
    expand_scope,
    headline,
    is_hotfix,
    load_newest_successes,
    resolve_again,
    shipped_without_listing,
    unresolved_scope,
)
from doraflow.core.events import BranchData, RepositoryRef, TagData
from doraflow.core.resources import DeploymentRules, Scope
from tests.unit.collectors.test_collectors_common import ACCESS

# ---- repository scopes ----------------------------------------------------------------------------


def scopes(*names: str) -> list[ScopeRef]:
    return [ScopeRef(name=name, id=f"id:{name.lower()}") for name in names]


async def test_expand_scope_dedupes_by_id_in_order_found_and_drops_excludes() -> None:
    resolved = {"acme/*": scopes("acme/web", "acme/api", "acme/old"), "acme/API": scopes("acme/api")}
    listed: list[str] = []

    async def visible() -> AsyncIterator[ScopeRef]:
        listed.append("visible")
        for ref in scopes("acme/everything"):
            yield ref

    async def resolve(pattern: str) -> list[ScopeRef]:
        return resolved[pattern]

    scope = Scope(repositories=["acme/*", "acme/API"], exclude=["acme/o*"])
    found = await expand_scope(scope, visible=visible, resolve=resolve)
    assert [ref.name for ref in found] == ["acme/web", "acme/api"]
    assert listed == []  # named repositories: the visible ones are not listed
    found = await expand_scope(Scope(), visible=visible, resolve=resolve)
    assert [ref.name for ref in found] == ["acme/everything"]


async def test_an_unresolved_scope_is_looked_up_again_when_collected() -> None:
    missing = unresolved_scope("acme/new", "Forge repository acme/new not found")
    assert missing.id == "unresolved:acme/new"
    created = ScopeRef(name="acme/new", id="42")

    async def now_exists(pattern: str) -> list[ScopeRef]:
        return [created]

    async def still_missing(pattern: str) -> list[ScopeRef]:
        return [unresolved_scope(pattern, "gone")]

    assert await resolve_again(missing, now_exists, ACCESS) == created
    with pytest.raises(Exception, match="Forge repository acme/new not found") as error:
        await resolve_again(missing, still_missing, ACCESS)
    assert "spec.scope.repositories" in getattr(error.value, "hint", "")


# ---- hotfix rule ----------------------------------------------------------------------------------

HOTFIX = re.compile(DeploymentRules().hotfix_pattern)  # the default: (?i)\b(hotfix|revert)\b


@pytest.mark.parametrize(
    ("names", "messages", "hotfix"),
    [
        (["hotfix/session"], [], True),  # a fix branch as the ref
        (
            ["Deploy production"],
            ["Fix typo", "Merge branch 'hotfix/session' into 'main'\n\nFix expiry"],
            True,
        ),
        ([], ['Revert "Add login"\n\nThis reverts commit 0123abcd.'], True),
        (["v1.2.0"], ["Add login\n\n* revert debug logging\n* hotfix the test"], False),  # bodies: no
        (["Deploy production"], ["Feature B (#2)"], False),
        (["hotfixes-dashboard"], [], False),  # whole words only
        ([None, ""], [None, ""], False),
        (["HOTFIX 1.2.1"], [], True),
    ],
)
def test_hotfix_rule(names: Sequence[str | None], messages: Sequence[str | None], hotfix: bool) -> None:
    assert is_hotfix(HOTFIX, names, messages) is hotfix


def test_headline() -> None:
    assert headline("Subject\n\nBody") == "Subject"
    assert headline(None) == ""


# ---- shipped commits and deployment pairing -------------------------------------------------------


def sighting(lane: str, at: Any, sha: str, success: bool = True) -> DeploySighting[Any]:
    return DeploySighting(lane, at, sha, success)


def pairs(paired: list[Paired[Any]]) -> list[tuple[str, str | None]]:
    return [(p.sighting.sha, p.previous_sha) for p in paired]


def test_shipped_without_listing() -> None:
    first = Paired(sighting("production", "01", "a"), None)
    assert shipped_without_listing(first, "Initial") == Shipped(["a"], ["Initial"])  # first ever: itself
    assert shipped_without_listing(first) == Shipped(["a"], [])
    failed = Paired(sighting("production", "02", "b", success=False), None)
    assert shipped_without_listing(failed, "Fix") == Shipped([])
    redeploy = Paired(sighting("production", "03", "a"), "a")
    assert shipped_without_listing(redeploy) == Shipped([])
    assert shipped_without_listing(Paired(sighting("production", "04", "c"), "a")) is None  # compare a..c


# The history used below, in deployment order (zero-padded ids as GitHub orders them):
#   01 production a success   ← the first deployment ever: no predecessor
#   02 production b failed    ← ships nothing, is nobody's predecessor
#   03 production c success   ← previous success: a (the failure in between is skipped)
#   04 staging    x success   ← another environment: its own first deployment
#   05 production d success   ← previous success: c (not staging's x)
HISTORY = [
    ("production", "01", "a", True),
    ("production", "02", "b", False),
    ("production", "03", "c", True),
    ("staging", "04", "x", True),
    ("production", "05", "d", True),
]


def test_oldest_first_pairs_at_once() -> None:
    pairer = DeploymentPairer[str]("oldest_first")
    paired = [pairer.push(sighting(*row)) for row in HISTORY]
    assert all(len(each) == 1 for each in paired)
    assert pairs([each[0] for each in paired]) == [
        ("a", None),
        ("b", None),
        ("c", "a"),
        ("x", None),
        ("d", "c"),
    ]
    assert pairer.successes(keep=2) == {"production": [("03", "c"), ("05", "d")], "staging": [("04", "x")]}


def test_oldest_first_with_successes_from_earlier_runs() -> None:
    # 04 was still running when the last cursor was saved; 05 had succeeded meanwhile. Now 04 has
    # finished: its predecessor is 01, the newest success older than it, not the newest one (05).
    pairer = DeploymentPairer[str]("oldest_first", {"production": [("05", "e"), ("01", "a")]})
    assert pairs(pairer.push(sighting("production", "04", "c"))) == [("c", "a")]
    assert pairs(pairer.push(sighting("production", "06", "f"))) == [("f", "e")]
    pairer.record("production", "06", "f")  # recorded again: kept once
    assert pairer.successes() == {"production": [("01", "a"), ("04", "c"), ("05", "e"), ("06", "f")]}


def day(n: int) -> datetime:
    return datetime(2026, 3, n, 12, tzinfo=UTC)


def test_newest_first_holds_each_success_until_its_predecessor_shows_up() -> None:
    pairer = DeploymentPairer[datetime]("newest_first")
    newest_first = [sighting(lane, day(int(order)), sha, ok) for lane, order, sha, ok in reversed(HISTORY)]
    d, x, c, b, a = newest_first
    assert pairer.push(d) == []  # held: its predecessor comes later
    assert pairer.push(x) == []  # held in its own lane
    assert pairs(pairer.push(c)) == [("d", "c")]
    assert pairs(pairer.push(b)) == [("b", None)]  # a failure is emitted at once, paired with nothing
    assert pairs(pairer.push(a)) == [("c", "a")]
    assert pairer.held_newest() == day(4)  # x (staging) and a (production) are still held
    assert pairer.resolve_held() == []  # nothing older known
    assert sorted(pairs(pairer.drain())) == [("a", None), ("x", None)]  # first ever in their lanes
    assert not pairer.holding
    assert dump_newest_successes(pairer) == {
        "production": {"sha": "d", "at": "2026-03-05T12:00:00Z"},
        "staging": {"sha": "x", "at": "2026-03-04T12:00:00Z"},
    }


def test_newest_first_resolves_from_earlier_runs_and_older_pages() -> None:
    earlier = load_newest_successes({"production": {"sha": "a", "at": "2026-03-01T12:00:00Z"}})
    assert earlier == {"production": [(day(1), "a")]}
    pairer = DeploymentPairer[datetime]("newest_first", earlier)
    pairer.push(sighting("production", day(3), "c"))
    assert pairs(pairer.resolve_held()) == [("c", "a")]

    # The earlier run's newest success is newer than the held one (a re-read running deployment):
    # it cannot be the predecessor, so older deployments beyond the window are offered.
    pairer = DeploymentPairer[datetime]("newest_first", {"production": [(day(6), "f")]})
    pairer.push(sighting("production", day(4), "d"))
    assert pairer.resolve_held() == []
    assert pairer.offer_older(sighting("production", day(5), "e")) == []  # not older than the held one
    assert pairer.offer_older(sighting("production", day(2), "b", success=False)) == []  # failed
    assert pairs(pairer.offer_older(sighting("production", day(1), "a"))) == [("d", "a")]
    assert pairer.drain() == []


def test_newest_successes_dump_round_trips() -> None:
    raw = {"production": {"sha": "a", "at": "2026-03-01T12:00:00.5Z"}, "broken": {"sha": "z"}}
    pairer = DeploymentPairer[datetime]("newest_first", load_newest_successes(raw))
    assert dump_newest_successes(pairer) == {"production": {"sha": "a", "at": "2026-03-01T12:00:00.500000Z"}}


# ---- branches and tags ----------------------------------------------------------------------------

REPOSITORY = RepositoryRef(provider="bitbucket", id="{r}", name="acme/api", default_branch="main")
SHA_A, SHA_B = "a" * 40, "b" * 40


def test_branch_default_flag_wins_else_the_repository_default_branch() -> None:
    assert branch_data(REPOSITORY, "main", SHA_A).is_default
    assert not branch_data(REPOSITORY, "develop", SHA_A).is_default
    # the provider's own flag wins (a default branch renamed since the scope was listed)
    assert branch_data(REPOSITORY, "develop", SHA_A, default=True).is_default
    assert not branch_data(REPOSITORY, "main", SHA_A, default=False).is_default


def test_ref_snapshot_reports_what_the_next_listing_lost() -> None:
    first = RefSnapshot(None)
    first.saw([branch_data(REPOSITORY, "main", SHA_A), branch_data(REPOSITORY, "old", SHA_B)])
    first.saw([TagData(repository=REPOSITORY, name="v1", sha=SHA_A)])
    assert first.deleted(REPOSITORY) == []  # nothing to compare a first listing with
    cursor = first.dump()
    assert cursor == {"branches": {"main": SHA_A, "old": SHA_B}, "tags": {"v1": SHA_A}}

    second = RefSnapshot(cursor)
    second.saw([branch_data(REPOSITORY, "main", SHA_B)])
    assert second.deleted(REPOSITORY) == [
        BranchData(repository=REPOSITORY, name="old", head_sha=SHA_B, deleted=True),
        TagData(repository=REPOSITORY, name="v1", sha=SHA_A, deleted=True),
    ]
    assert second.dump() == {"branches": {"main": SHA_B}, "tags": {}}


def test_ref_snapshot_does_not_track_a_kind_beyond_the_limit() -> None:
    snapshot = RefSnapshot({"branches": "garbage", "tags": {"v1": SHA_A, "broken": 7}})
    snapshot.saw(branch_data(REPOSITORY, f"b{n}", SHA_A) for n in range(MAX_TRACKED_REFS + 1))
    assert snapshot.deleted(REPOSITORY) == [
        TagData(repository=REPOSITORY, name="v1", sha=SHA_A, deleted=True)
    ]
    assert snapshot.dump() == {"branches": None, "tags": {}}
