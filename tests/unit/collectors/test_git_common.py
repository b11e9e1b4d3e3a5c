"""What the GitHub, GitLab and Bitbucket clients share (collectors.git.common), with hand-computed
cases: the scope glob dialect, the hotfix rule, pairing deployments with the previous successful one
of their environment in both directions, the error hints, and the time-window cursor."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doraflow.collectors.base import ScopeRef
from doraflow.collectors.git.common import (
    USER_FIXABLE_HTTP_ERRORS,
    DeploymentPairer,
    DeploySighting,
    Paired,
    ProviderAccess,
    Shipped,
    TimeWindow,
    WindowPass,
    backfill_horizon,
    dump_newest_successes,
    excluded,
    expand_scope,
    glob_match,
    headline,
    is_glob,
    is_hotfix,
    iso,
    literal_prefix,
    load_newest_successes,
    parse_time,
    parse_time_or_none,
    resolve_again,
    shipped_without_listing,
    stream_window,
    unresolved_scope,
    user_error,
)
from doraflow.core.events import EventData
from doraflow.core.http import AuthenticationError, ForbiddenError, NotFoundError, RateLimitExceededError
from doraflow.core.resources import DeploymentRules, Integration, Scope

# ---- scope globs and excludes -------------------------------------------------------------------


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


def test_excludes() -> None:
    assert excluded("acme/archive-2019", ["acme/archive-*"])
    assert excluded("acme/sub/old", ["acme/web", "acme/**"])
    assert not excluded("acme/archive-2019", ["archive-*"])  # no owner: `*` does not cross the `/`
    assert not excluded("acme/api", [])


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


# ---- error hints ----------------------------------------------------------------------------------

ACCESS = ProviderAccess(
    provider="Forge",
    repository_format="owner/name",
    required_access="the read scope",
    visibility="members only",
)
INTEGRATION = Integration.model_validate(
    {
        "metadata": {"name": "forge", "namespace": "team-a"},
        "spec": {
            "organizationRef": {"name": "acme"},
            "provider": "gitlab",
            "credentialsSecretRef": {"name": "forge-token", "key": "pat"},
            "backfillDays": 30,
        },
    }
)


def test_401_names_the_secret_to_update() -> None:
    error = user_error(
        AuthenticationError("GET /user: HTTP 401", status=401), ACCESS, INTEGRATION, "acme/api"
    )
    assert (
        str(error) == "Forge rejected the credentials (401: wrong, expired or revoked): GET /user: HTTP 401"
    )
    assert error.scope == "acme/api"
    assert "Secret team-a/forge-token (key pat" in error.hint
    assert "spec.credentialsSecretRef" in error.hint
    assert "revoked" in error.hint
    assert "What it needs: the read scope." in error.hint


def test_403_says_which_permission() -> None:
    error = user_error(ForbiddenError("HTTP 403", status=403), ACCESS, INTEGRATION, "acme/api")
    assert str(error) == "Forge refused access: HTTP 403"
    assert error.hint.startswith("The Forge credentials lack a permission: the read scope.")
    assert "spec.scope.repositories" in error.hint


def test_404_is_an_unknown_repository_or_a_wrong_base_url() -> None:
    error = user_error(NotFoundError("HTTP 404", status=404), ACCESS, INTEGRATION, "acme/api")
    assert str(error) == "Forge repository acme/api does not exist or is not visible to these credentials"
    assert error.hint == (
        "Check 'acme/api' in spec.scope.repositories (owner/name) and that the credentials can see it: "
        "members only."
    )
    unscoped = user_error(NotFoundError("GET /projects: HTTP 404", status=404), ACCESS, INTEGRATION, None)
    assert unscoped.scope is None
    assert "spec.baseUrl" in unscoped.hint


def test_rate_limits_are_not_the_users_to_fix() -> None:
    assert not isinstance(RateLimitExceededError("wait 3600s"), USER_FIXABLE_HTTP_ERRORS)


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


# ---- times, horizon and the time-window cursor ----------------------------------------------------


def test_times() -> None:
    assert parse_time("2026-03-01T12:00:00Z") == day(1)
    assert parse_time("2026-03-01T14:00:00+02:00") == day(1)
    assert parse_time("2026-03-01T12:00:00") == day(1)  # no offset: UTC
    assert parse_time_or_none(None) is None
    assert parse_time_or_none("yesterday") is None
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("")
    assert iso(day(1)) == "2026-03-01T12:00:00Z"
    assert iso(day(1) + timedelta(microseconds=1)) == "2026-03-01T12:00:00.000001Z"
    assert backfill_horizon(INTEGRATION, day(31)) == day(1)


def test_a_first_sync_owes_the_back_fill_from_the_horizon() -> None:
    window = TimeWindow.load(None, day(1))
    assert window == TimeWindow(since=None, owed_after=day(1), owed_before=None)
    assert TimeWindow.load(window.dump(), day(9)) == window
    new_pass = WindowPass(day(5), None, backfill=False)
    assert new_pass.below(day(5))  # what is at `since` was seen
    backfill = WindowPass(day(1), day(5), backfill=True)
    assert backfill.contains(day(1))
    assert backfill.contains(day(5))  # where an interrupted back-fill stopped is read again
    assert not backfill.contains(day(6))


async def test_stream_window_saves_the_back_fill_page_by_page() -> None:
    items: list[dict[str, Any]] = [
        {"id": n, "updated": f"2026-03-{n:02d}T12:00:00Z"} for n in (9, 7, 5, 3, 1)
    ]

    async def pages(window: WindowPass) -> AsyncIterator[list[Any]]:
        inside = [item for item in items if window.contains(parse_time(item["updated"]))]
        for start in range(0, len(inside), 2):
            yield inside[start : start + 2]

    async def events(item: Any) -> list[EventData]:
        seen.append(item["id"])
        return []

    seen: list[int] = []
    cursors = [
        cursor
        async for _, cursor in stream_window(
            None,
            horizon=day(2),
            now=day(10),
            pages=pages,
            updated_at=lambda item: parse_time_or_none(item.get("updated")),
            events=events,
        )
    ]
    assert seen == [9, 7, 5, 3]  # 1 is older than the horizon
    owed = "2026-03-02T12:00:00Z"
    assert cursors == [
        {"since": "2026-03-09T12:00:00Z", "owed": {"after": owed, "before": "2026-03-07T12:00:00Z"}},
        {"since": "2026-03-09T12:00:00Z", "owed": {"after": owed, "before": "2026-03-03T12:00:00Z"}},
        {"since": "2026-03-09T12:00:00Z", "owed": None},  # the back-fill is complete
    ]
