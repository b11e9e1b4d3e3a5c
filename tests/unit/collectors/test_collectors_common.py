"""What every collector shares (collectors.common), with hand-computed cases: excludes and matching
a thing by any of its names in the scope glob dialect (the dialect itself is tested in
tests/unit/core/test_globs.py), the error hints, times and people, and the time-window cursor in
both of its families' settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doraflow.collectors.common import (
    CLOCK_SKEW,
    USER_FIXABLE_HTTP_ERRORS,
    ProviderAccess,
    TimeWindow,
    WindowPass,
    WindowRun,
    backfill_horizon,
    clip,
    excluded,
    in_scope,
    iso,
    matches_any,
    missing_literals,
    parse_time,
    parse_time_or_none,
    person,
    person_or_none,
    scope_not_found,
    stream_window,
    user_error,
)
from doraflow.collectors.work.common import UPDATED_WINDOW
from doraflow.core.events import EventData, PersonRef
from doraflow.core.http import AuthenticationError, ForbiddenError, NotFoundError, RateLimitExceededError
from doraflow.core.resources import Integration

# ---- scope globs and excludes -------------------------------------------------------------------


def test_excludes() -> None:
    assert excluded("acme/archive-2019", ["acme/archive-*"])
    assert excluded("acme/sub/old", ["acme/web", "acme/**"])
    assert not excluded("acme/archive-2019", ["archive-*"])  # no owner: `*` does not cross the `/`
    assert not excluded("acme/api", [])


def test_a_project_matches_by_key_or_name_in_the_same_dialect() -> None:
    assert matches_any(["ENG", "Engineering"], ["eng"])  # keys in either case
    assert matches_any(["ENG", "Engineering"], ["Eng*"])
    assert matches_any([None, "Mobile"], ["mob?le"])  # absent names are skipped
    assert not matches_any(["Eng / Platform"], ["Eng*"])  # `*` stays within a segment everywhere
    assert matches_any(["Eng / Platform"], ["Eng**"])
    assert not matches_any([], ["*"])
    assert in_scope(["ENG", "Engineering"], [], [])  # no entries: everything
    assert in_scope(["ENG", "Engineering"], ["ENG", "OPS"], [])
    assert not in_scope(["ENG", "Engineering"], ["E*"], ["engineering"])  # excluded by its name
    assert not in_scope(["OPS", "Operations"], ["E*"], [])


def test_missing_literals_are_the_entries_that_name_nothing() -> None:
    found: list[list[str | None]] = [["ENG", "Engineering"], ["OPS", None]]
    assert missing_literals(["eng", "Operations", "GONE", "M*", "OLD"], found, exclude=["old"]) == [
        "Operations",  # OPS's name is unknown, and a literal is compared with every name found
        "GONE",
    ]


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


PROJECTS = ProviderAccess(
    provider="Tracker",
    repository_format="keys such as ENG",
    required_access="read access to the projects",
    visibility="the user must be a member",
    kind="project",
    setting="spec.scope.projects",
)


def test_hints_speak_of_the_providers_scope_setting() -> None:
    forbidden = user_error(ForbiddenError("HTTP 403", status=403), PROJECTS, INTEGRATION, "ENG")
    assert forbidden.hint.endswith("Grant it, or remove the project from spec.scope.projects.")
    gone = scope_not_found(PROJECTS, "ENG")
    assert str(gone) == "Tracker project ENG does not exist or is not visible to these credentials"
    assert gone.hint == (
        "Check 'ENG' in spec.scope.projects (keys such as ENG) and that the credentials can see it: "
        "the user must be a member."
    )
    assert gone.scope == "ENG"
    unscoped = user_error(NotFoundError("HTTP 404", status=404), PROJECTS, INTEGRATION, None)
    assert "spec.baseUrl" in unscoped.hint
    assert "spec.scope.projects (keys such as ENG)" in unscoped.hint


# ---- times and people ------------------------------------------------------------------------------


def test_provider_time_formats() -> None:
    assert parse_time_or_none("2026-03-01T12:00:00.000+0000") == datetime(2026, 3, 1, 12, tzinfo=UTC)  # Jira
    assert parse_time_or_none("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)  # a bare date: midnight UTC
    assert parse_time_or_none(" 2026-03-01T12:00:00Z\n") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_time_or_none("   ") is None
    assert parse_time_or_none(1767225600) is None  # epoch numbers are not guessed at


def test_people_and_clipped_text() -> None:
    assert person(" Ada ", "ada@example.com", 42) == PersonRef(name="Ada", email="ada@example.com")
    assert person(name="x" * 300).name == "x" * 255
    assert person() == PersonRef()  # required fields (a commit's author) always get a reference
    assert person_or_none(" ", "", None) is None  # optional ones (an assignee) are absent instead
    assert person_or_none(username="ada") == PersonRef(username="ada")
    assert clip(" High ", 3) == "Hig"
    assert clip(3, 10) == "3"
    assert clip("  ", 10) is None
    assert clip(None, 10) is None


# ---- times and the time-window cursor (git settings) ---------------------------------------------


def day(n: int) -> datetime:
    return datetime(2026, 3, n, 12, tzinfo=UTC)


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


# ---- the time-window cursor: work settings and what both share ------------------------------------


def test_saved_cursors_of_either_family_load() -> None:
    work = {
        "since": "2026-03-07T12:00:00Z",
        "owed": {"from": "2026-03-01T12:00:00Z", "to": "2026-03-05T12:00:00Z"},
    }
    git = {
        "since": "2026-03-07T12:00:00Z",
        "owed": {"after": "2026-03-01T12:00:00Z", "before": "2026-03-05T12:00:00Z"},
    }
    assert TimeWindow.load(work, day(2)) == TimeWindow.load(git, day(2)) == TimeWindow(day(7), day(1), day(5))
    assert TimeWindow.load(work, day(2)).dump(("from", "to")) == work
    assert TimeWindow.load(work, day(2)).dump() == git
    open_ended = {"since": None, "owed": {"from": "2026-03-01T12:00:00Z", "to": None}}
    assert TimeWindow.load(open_ended, day(2)) == TimeWindow(None, day(1), None)


def test_a_run_that_sees_nothing_keeps_a_margin_for_clock_skew() -> None:
    run = WindowRun(TimeWindow.load(None, day(1)), day(10))
    [backfill] = run.passes()
    assert run.pass_done_cursor(backfill) == {"since": iso(day(10) - CLOCK_SKEW), "owed": None}


async def test_work_listings_read_the_boundary_again_and_save_from_and_to() -> None:
    items: list[dict[str, Any]] = [{"id": n, "updated": f"2026-03-{n:02d}T12:00:00Z"} for n in (9, 7, 5, 3)]
    passes: list[WindowPass] = []

    async def pages(window: WindowPass) -> AsyncIterator[list[Any]]:
        passes.append(window)
        yield [item for item in items if window.contains(parse_time(item["updated"]))]

    async def events(item: Any) -> list[EventData]:
        seen.append(item["id"])
        return []

    seen: list[int] = []
    cursor = {
        "since": "2026-03-07T12:00:00Z",
        "owed": {"from": "2026-03-02T12:00:00Z", "to": "2026-03-05T12:00:00Z"},
    }
    cursors = [
        saved
        async for _, saved in stream_window(
            cursor,
            horizon=day(1),
            now=day(10),
            pages=pages,
            updated_at=lambda item: parse_time_or_none(item.get("updated")),
            events=events,
            rules=UPDATED_WINDOW,
        )
    ]
    assert seen == [9, 7, 5, 3]  # 7 sits on `since`: read again; 5 is where the back-fill stopped
    assert passes[0].contains(day(7))
    assert not WindowPass(day(7), None, backfill=False).contains(day(7))  # git's: seen
    assert cursors == [
        None,  # the new-data pass saves once complete
        {
            "since": "2026-03-09T12:00:00Z",
            "owed": {"from": "2026-03-02T12:00:00Z", "to": "2026-03-05T12:00:00Z"},
        },
        {
            "since": "2026-03-09T12:00:00Z",
            "owed": {"from": "2026-03-02T12:00:00Z", "to": "2026-03-03T12:00:00Z"},
        },
        {"since": "2026-03-09T12:00:00Z", "owed": None},
    ]
