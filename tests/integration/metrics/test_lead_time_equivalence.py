"""Lead time in SQL equals the Python definition, case by hand-made case.

Each test builds a small dataset, checks the numbers worked out by hand, and asserts that the
query layer's SQL path (`doraflow.metrics.leadtime`: stored enrichment, `percentile_cont`) and the
pure definition over records loaded from the database (`reference.reference_lead_time`) agree
exactly: value, median, p75, p90, sample size, tier, the exclusion counts and the cycle-time
breakdown. Durations are compared with `==` -- the two paths compute the same floats.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.metrics import MetricResult, MetricScope, Window, dora_report
from doraflow.metrics.loaders import Database, resolve_scope
from tests.integration.metrics.conftest import Seed, at, week
from tests.integration.metrics.reference import reference_lead_time, sql_lead_time

pytestmark = pytest.mark.integration

HOUR = 3600.0
SAME = (
    "value",
    "median",
    "p75",
    "p90",
    "sample_size",
    "tier",
    "unit",
    "benchmark",
)
SAME_DETAILS = (
    "changes_deployed_in_window",
    "negative_lead_times_excluded",
    "squash_commits_represented_by_pr_commits",
    "cycle_time_breakdown",
)


async def both_paths(
    sessions: async_sessionmaker[AsyncSession],
    seed: Seed,
    window: Window,
    scope: MetricScope | None = None,
) -> MetricResult:
    """Run both paths, assert they agree, and return the result (also via `dora_report`)."""
    scope = scope or MetricScope.organization()
    async with sessions() as session:
        db = await Database.of(session)
        resolved = await resolve_scope(db, seed.organization_id, scope)
        sql = await sql_lead_time(db, resolved, window)
        reference = await reference_lead_time(db, resolved, window)
    for name in SAME:
        assert getattr(sql, name) == getattr(reference, name), name
    assert (sql.reason is None) == (reference.reason is None)
    for name in SAME_DETAILS:
        assert sql.details.get(name, 0) == reference.details.get(name, 0), name
    # The mean is summed in a different order (PostgreSQL's float8 avg vs math.fsum): equal to
    # the last few bits, which is all the mean is for (it is not what the tier reads).
    if reference.details.get("mean") is None:
        assert sql.details.get("mean") is None
    else:
        assert sql.details.get("mean") == pytest.approx(reference.details.get("mean"), rel=1e-12)
    async with sessions() as session:
        report = await dora_report(session, organization_id=seed.organization_id, scope=scope, window=window)
    served = report.metrics["lead_time_for_changes"]
    assert served.to_dict() == sql.to_dict()
    return sql


async def test_squash_merge_credits_the_branch_commits_and_not_the_squash_commit(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "b1", at(0, 6), pull_request=1)
    seed.commit(api, "b2", at(0, 11), pull_request=1)
    seed.commit(api, "s1", at(1, 9), pull_request=1)  # the squash commit
    seed.pull_request(api, 1, at(0, 11, 30), merged=at(1, 9), merge_sha="s1", first_review=at(0, 14))
    seed.deployment(api, "s1", at(1, 10), ["s1"], service="api")
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    # b1: Tue 10:00 - Mon 06:00 = 28 h; b2: 23 h. s1 is represented by them.
    assert result.sample_size == 2
    assert result.median == 25.5 * HOUR
    assert result.p75 == 23 * HOUR + 0.75 * 5 * HOUR
    assert result.p90 == 23 * HOUR + 0.9 * 5 * HOUR
    assert result.details["squash_commits_represented_by_pr_commits"] == 1
    breakdown = result.details["cycle_time_breakdown"]
    assert isinstance(breakdown, dict)
    assert breakdown["pull_requests"] == 1
    assert breakdown["coding"] == {"median": 5.5 * HOUR, "p75": 5.5 * HOUR, "p90": 5.5 * HOUR,
                                   "mean": 5.5 * HOUR, "sample_size": 1}  # fmt: skip
    assert isinstance(breakdown["deploy"], dict)
    assert breakdown["deploy"]["median"] == HOUR


async def test_squash_merge_without_branch_commits_counts_the_squash_commit(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # What the GitHub collector stores: the default branch only, no PR numbers on commits.
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "s2", at(1, 9))
    seed.pull_request(api, 2, at(0, 11), merged=at(1, 9), merge_sha="s2", first_commit=at(0, 8))
    seed.deployment(api, "s2", at(1, 12), service="api")
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    assert (result.sample_size, result.value) == (1, 3 * HOUR)
    assert result.details.get("squash_commits_represented_by_pr_commits", 0) == 0


async def test_merge_commits_are_not_changes_but_link_their_pull_request(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "m1", at(0, 8), pull_request=3)
    seed.commit(api, "m2", at(0, 9), pull_request=3)
    seed.commit(api, "mc", at(0, 12), pull_request=3, merge=True)
    seed.pull_request(api, 3, at(0, 9, 30), merged=at(0, 12), merge_sha="mc", first_review=at(0, 10))
    # The deployment reports only its head, the merge commit: the PR's commits still shipped.
    seed.deployment(api, "mc", at(0, 14), service="api")
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    assert result.sample_size == 2  # m1 6 h, m2 5 h
    assert result.median == 5.5 * HOUR
    assert result.details["merge_commits_not_counted"] == 1


async def test_trunk_commits_first_ever_deployment_and_multi_region_rollout(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    web = seed.repository("web")
    seed.commit(web, "t1", at(2, 7))
    seed.commit(web, "t2", at(2, 8))
    seed.commit(web, "t3", at(2, 9))
    # First-ever deployment of web, rolled out to three regions: the commits reached production
    # with the first region (10:00), not the last.
    for minutes, region in ((0, "eu"), (5, "us"), (9, "ap")):
        seed.deployment(web, "t3", at(2, 10, minutes), ["t1", "t2", "t3"], service="web", environment=region)
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    assert (result.sample_size, result.median, result.p90) == (3, 2 * HOUR, 2 * HOUR + 0.8 * HOUR)


async def test_rollback_does_not_move_first_deployments_and_a_commit_deployed_before_the_window_is_out(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "a0", at(-2, 9))
    seed.deployment(api, "a0", at(-2, 10), service="api")  # before the window
    seed.commit(api, "a1", at(0, 9))
    seed.deployment(api, "a1", at(0, 10), service="api")
    seed.commit(api, "a2", at(1, 8))
    seed.deployment(api, "a2", at(1, 10), service="api")
    seed.deployment(api, "a1", at(1, 11), service="api", rollback=True)  # back to a1
    seed.commit(api, "a3", at(2, 9))
    seed.deployment(api, "a3", at(2, 12), ["a2", "a3"], service="api")  # forward again
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    # a1 1 h (Mon), a2 2 h (Tue, not re-counted on Wed), a3 3 h.
    assert (result.sample_size, result.median) == (3, 2 * HOUR)


async def test_clock_skew_is_excluded_and_counted_and_even_counts_take_the_mean_of_the_middle(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api = seed.repository("api")
    for sha, hour in (("k1", 9), ("k2", 8), ("k3", 6), ("k4", 2)):
        seed.commit(api, sha, at(0, hour))
    seed.commit(api, "late", at(0, 11))  # authored after the deployment: clock skew
    seed.deployment(api, "k1", at(0, 10), ["k1", "k2", "k3", "k4", "late"], service="api")
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    assert result.sample_size == 4  # 1, 2, 4, 8 h
    assert result.median == 3 * HOUR
    assert result.details["negative_lead_times_excluded"] == 1


async def test_empty_window_is_null_with_a_reason(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "c1", at(0, 9))
    seed.deployment(api, "c1", at(0, 10), service="api")
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week(14))
    assert result.value is None
    assert result.sample_size == 0
    assert result.reason == "no changes reached production in the window"


async def test_time_zones_do_not_shift_anything_and_microseconds_survive(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    plus_two = timezone(timedelta(hours=2))
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "z1", at(0, 8, 0, 0.000001).astimezone(plus_two))
    seed.commit(api, "z2", at(0, 7, 30, 0.5).astimezone(timezone(timedelta(hours=-7))))
    seed.deployment(api, "z1", at(0, 10, 0, 0.123457).astimezone(plus_two), ["z2"], service="api")
    await seed.load(database_url)

    minus_five = timezone(timedelta(hours=-5))
    window = Window(at().astimezone(minus_five), at(7).astimezone(minus_five))
    result = await both_paths(sessions, seed, window)
    assert result.sample_size == 2
    # The same instants in UTC give the same result.
    assert (await both_paths(sessions, seed, week())).to_dict() == result.to_dict()


async def test_a_deployment_that_finished_before_the_merge_did_not_ship_the_pull_request(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api = seed.repository("api")
    seed.commit(api, "x1", at(0, 9))
    seed.deployment(api, "x1", at(0, 10), service="api")  # before PR 7 merged
    seed.commit(api, "p1", at(0, 8), pull_request=7)
    seed.commit(api, "sq", at(0, 15), pull_request=7)
    seed.pull_request(api, 7, at(0, 9), merged=at(0, 15), merge_sha="sq", first_review=at(0, 12))
    seed.deployment(api, "sq", at(0, 17), ["x1", "sq"], service="api")
    await seed.load(database_url)

    result = await both_paths(sessions, seed, week())
    # x1 1 h; p1 shipped by the second deployment: 9 h.
    assert (result.sample_size, result.median) == (2, 5 * HOUR)


async def test_team_and_repository_scopes_see_only_their_changes(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = Seed()
    api, web = seed.repository("api"), seed.repository("web")
    seed.team("Platform", api)
    seed.commit(api, "a1", at(0, 9))
    seed.commit(web, "w1", at(0, 6))
    seed.deployment(api, "a1", at(0, 10), service="api")
    seed.deployment(web, "w1", at(0, 10), service="web")
    await seed.load(database_url)

    assert (await both_paths(sessions, seed, week())).sample_size == 2
    result = await both_paths(sessions, seed, week(), MetricScope.repository(web))
    assert (result.sample_size, result.value) == (1, 4 * HOUR)
