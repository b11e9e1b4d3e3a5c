"""DORA metric definitions on hand-computed fixtures.

Times are offsets from T0 = Monday 2024-03-04 00:00 UTC: "day 1 12:00" is ``at(1, 12)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from doraflow.metrics import (
    Change,
    DeploymentRules,
    Incident,
    PullRequest,
    Tier,
    Window,
    change_failure_rate,
    deployment_frequency,
    dora_metrics,
    failed_deployment_recovery_time,
    lead_time_for_changes,
    production_deployments,
    rework_rate,
    time_to_restore_service,
)
from tests.unit.metrics.builders import DAY, HOUR, T0, at, deploy, window

WEEK_WINDOW = window(7)

# --------------------------------------------------------------------------------------------
# Deployment frequency
# --------------------------------------------------------------------------------------------


def test_deployment_frequency_two_weeks() -> None:
    # week 1 (days 0-6): deployments on days 0, 1, 2 (twice), 3, 4 -> 5 deployment days, 6 deployments
    # week 2 (days 7-13): days 7 and 9 -> 2 deployment days, 2 deployments
    days = [0, 1, 2, 2.5, 3, 4, 7, 9]
    rows = [deploy(f"d{index}", at(day, 10), f"r{index}") for index, day in enumerate(days)]
    result = deployment_frequency(production_deployments(rows), window(14))
    # 8 deployments / 14 days = 0.571428... per day
    assert result.value == pytest.approx(8 / 14)
    assert result.sample_size == 8
    assert result.details["deployment_days"] == 7
    # weekly buckets counted back from day 13: [7..13] has 2 days, [0..6] has 5 -> median (2 + 5) / 2
    assert result.details["median_deployment_days_per_week"] == 3.5
    # 14 days is shorter than a 30-day bucket: 7 deployment days / 14 days * 30 = 15
    assert result.details["median_deployment_days_per_month"] == 15
    assert result.details["deployments_per_week"] == pytest.approx(4.0)
    # 3.5 days a week: not daily (5), at least weekly -> high
    assert result.tier is Tier.HIGH
    assert result.benchmark == 2023


def test_deployment_frequency_monthly_deployer_over_90_days() -> None:
    # deployments on days 5, 40 and 75 of a 90-day window (days 0..89)
    rows = [deploy(f"d{day}", at(day, 12), f"r{day}") for day in (5, 40, 75)]
    deployments = production_deployments(rows)
    result = deployment_frequency(deployments, window(90))
    assert result.value == pytest.approx(3 / 90)
    # 30-day buckets back from day 89: [60..89] has day 75, [30..59] day 40, [0..29] day 5 -> 1, 1, 1
    assert result.details["median_deployment_days_per_month"] == 1
    # 12 weekly buckets cover days 6..89 (days 0-5 left over); 2 of 12 hold a deployment -> median 0
    assert result.details["weeks_measured"] == 12
    assert result.details["median_deployment_days_per_week"] == 0
    # monthly but not weekly: medium in 2023 ("between once per week and once per month"),
    # high in 2021 ("between once per week and once per month" is 2021's high band)
    assert result.tier is Tier.MEDIUM
    assert deployment_frequency(deployments, window(90), benchmark=2021).tier is Tier.HIGH


def test_deployment_frequency_daily_deployer_is_elite() -> None:
    # every working day (Mon-Fri) of two weeks, several times a day
    rows = [
        deploy(f"d{week}-{weekday}-{hour}", at(7 * week + weekday, hour), f"r{week}-{weekday}-{hour}")
        for week in (0, 1)
        for weekday in range(5)
        for hour in (9, 14)
    ]
    result = deployment_frequency(production_deployments(rows), window(14))
    assert result.details["median_deployment_days_per_week"] == 5
    assert result.tier is Tier.ELITE


def test_multi_region_rollout_counts_once_for_deployment_frequency() -> None:
    rows = [
        deploy("eu", at(0, 10), "r1", environment="prod-eu"),
        deploy("us", at(0, 11), "r1", environment="prod-us"),
        deploy("ap", at(0, 12), "r1", environment="prod-ap"),
    ]
    result = deployment_frequency(production_deployments(rows), WEEK_WINDOW)
    assert result.sample_size == 1
    assert result.value == pytest.approx(1 / 7)


def test_deployment_days_follow_the_requested_time_zone() -> None:
    # 23:30 UTC on day 0 and 00:30 UTC on day 1 are two UTC days but one day at UTC-02:00
    rows = [deploy("late", at(0, 23, 30), "r1"), deploy("early", at(1, 0, 30), "r2")]
    deployments = production_deployments(rows)
    assert deployment_frequency(deployments, WEEK_WINDOW).details["deployment_days"] == 2
    minus_two = timezone(timedelta(hours=-2))
    assert deployment_frequency(deployments, WEEK_WINDOW, day_zone=minus_two).details["deployment_days"] == 1


# --------------------------------------------------------------------------------------------
# Lead time for changes
# --------------------------------------------------------------------------------------------

# Fixture: a first-ever deployment of trunk commits, then a squash-merged pull request.
#   c1 trunk commit, authored day 0 08:00 ----\
#   c2 trunk commit, authored day 0 09:00 -----> D1 (first ever) day 0 10:00: lead 2 h and 1 h
#   PR-1 branch commits b1 (day 0 06:00) and b2 (day 0 11:00), opened day 0 11:30, first
#   review day 0 14:00, squash-merged day 1 09:00 as s1 -> D2 day 1 12:00 ships only s1.
#   b1 lead = day 1 12:00 - day 0 06:00 = 30 h; b2 lead = 25 h; s1 itself is not double counted.
SQUASH_DEPLOYMENTS = production_deployments(
    [deploy("D1", at(0, 10), "c2", ("c1", "c2")), deploy("D2", at(1, 12), "s1", ("s1",))]
)
SQUASH_CHANGES = [
    Change("c1", at(0, 8)),
    Change("c2", at(0, 9)),
    Change("b1", at(0, 6), pull_request_id="PR-1"),
    Change("b2", at(0, 11), pull_request_id="PR-1"),
    Change("s1", at(1, 9), pull_request_id="PR-1"),
]
SQUASH_PR = PullRequest(
    "PR-1",
    opened_at=at(0, 11, 30),
    first_review_at=at(0, 14),
    merged_at=at(1, 9),
    merge_commit_sha="s1",
)


def test_lead_time_with_first_ever_deployment_trunk_commits_and_squash_merge() -> None:
    result = lead_time_for_changes(SQUASH_CHANGES, SQUASH_DEPLOYMENTS, WEEK_WINDOW, pull_requests=[SQUASH_PR])
    # lead times: c1 2 h, c2 1 h, b1 30 h, b2 25 h -> sorted 3600, 7200, 90000, 108000
    assert result.sample_size == 4
    # even count: median = (7200 + 90000) / 2 = 48600 s = 13.5 h
    assert result.value == 48600
    assert result.median == 48600
    # p75: position 0.75 * 3 = 2.25 -> 90000 + 0.25 * 18000 = 94500
    assert result.p75 == pytest.approx(94500)
    # p90: position 2.7 -> 90000 + 0.7 * 18000 = 102600
    assert result.p90 == pytest.approx(102600)
    assert result.details["squash_commits_represented_by_pr_commits"] == 1
    # 13.5 h: elite in 2023 (< 1 day); high in 2021 (not < 1 hour, within a week)
    assert result.tier is Tier.ELITE
    result_2021 = lead_time_for_changes(
        SQUASH_CHANGES, SQUASH_DEPLOYMENTS, WEEK_WINDOW, pull_requests=[SQUASH_PR], benchmark=2021
    )
    assert result_2021.tier is Tier.HIGH


def test_pull_request_cycle_time_breakdown() -> None:
    result = lead_time_for_changes(SQUASH_CHANGES, SQUASH_DEPLOYMENTS, WEEK_WINDOW, pull_requests=[SQUASH_PR])
    breakdown = result.details["cycle_time_breakdown"]
    assert isinstance(breakdown, dict)
    assert breakdown["pull_requests"] == 1

    def stage_median(stage: str) -> object:
        stage_details = breakdown[stage]
        assert isinstance(stage_details, dict)
        return stage_details["median"]

    # coding: first commit b1 day 0 06:00 -> opened 11:30 = 5.5 h
    assert stage_median("coding") == 5.5 * HOUR
    # pickup: opened 11:30 -> first review 14:00 = 2.5 h
    assert stage_median("pickup") == 2.5 * HOUR
    # review: first review day 0 14:00 -> merged day 1 09:00 = 19 h
    assert stage_median("review") == 19 * HOUR
    # deploy: merged day 1 09:00 -> D2 day 1 12:00 = 3 h
    assert stage_median("deploy") == 3 * HOUR
    # total: first commit day 0 06:00 -> D2 day 1 12:00 = 30 h
    assert stage_median("total") == 30 * HOUR


def test_lead_time_odd_count_median_for_trunk_based_commits_without_pull_requests() -> None:
    deployments = production_deployments([deploy("D", at(1, 12), "t3", ("t1", "t2", "t3"))])
    changes = [Change("t1", at(1, 11)), Change("t2", at(1, 9)), Change("t3", at(1, 10))]
    result = lead_time_for_changes(changes, deployments, WEEK_WINDOW)
    # leads 1 h, 3 h, 2 h -> median 2 h
    assert result.value == 2 * HOUR
    assert result.sample_size == 3


def test_deployment_that_finished_before_the_pr_merged_did_not_ship_it() -> None:
    # D1 (day 0 10:00) shipped x1 only. PR-2: p1 authored 08:00, opened 08:30, merged 11:00 with
    # merge commit m2; D2 (day 0 15:00) ships m2 and p1. A "next deployment after the commit"
    # heuristic would give p1 a 2 h lead time from D1; the commit lists say D2: 15:00 - 08:00 = 7 h.
    deployments = production_deployments(
        [deploy("D1", at(0, 10), "x1", ("x1",)), deploy("D2", at(0, 15), "m2", ("p1", "m2"))]
    )
    changes = [
        Change("x1", at(0, 7)),
        Change("p1", at(0, 8), pull_request_id="PR-2"),
        Change("m2", at(0, 11), pull_request_id="PR-2", is_merge_commit=True),
    ]
    pr = PullRequest("PR-2", opened_at=at(0, 8, 30), merged_at=at(0, 11), merge_commit_sha="m2")
    result = lead_time_for_changes(changes, deployments, WEEK_WINDOW, pull_requests=[pr])
    # x1: 10:00 - 07:00 = 3 h; p1: 7 h; merge commit m2 is not a change -> median (3 + 7) / 2 = 5 h
    assert result.value == 5 * HOUR
    assert result.details["merge_commits_not_counted"] == 1
    breakdown = result.details["cycle_time_breakdown"]
    assert isinstance(breakdown, dict)
    # deploy stage: merged 11:00 -> D2 15:00 = 4 h; no review before merge
    assert breakdown["deploy"] == {"median": 4 * HOUR, "p75": 4 * HOUR, "p90": 4 * HOUR, "mean": 4 * HOUR,
                                   "sample_size": 1}  # fmt: skip
    assert breakdown["merged_without_review"] == 1


def test_deploy_stage_with_inconsistent_clocks_is_excluded_not_negative() -> None:
    # the deployment lists merge commit m3 but claims to have finished a minute before the merge
    deployments = production_deployments([deploy("D", at(0, 11, 59), "m3", ("m3", "p3"))])
    pr = PullRequest("PR-3", opened_at=at(0, 9), merged_at=at(0, 12), merge_commit_sha="m3")
    result = lead_time_for_changes(
        [Change("p3", at(0, 8), pull_request_id="PR-3")], deployments, WEEK_WINDOW, pull_requests=[pr]
    )
    breakdown = result.details["cycle_time_breakdown"]
    assert isinstance(breakdown, dict)
    assert breakdown["deployed_before_merge_time_excluded"] == 1
    deploy_stage = breakdown["deploy"]
    assert isinstance(deploy_stage, dict)
    assert deploy_stage["sample_size"] == 0
    # p3's own lead time is still real: 11:59 - 08:00 = 3 h 59 min
    assert result.value == 3 * HOUR + 59 * 60


def test_merge_commit_only_deployments_still_ship_the_pr_commits() -> None:
    # the deployment reports only its head revision (the merge commit), not the branch commits
    deployments = production_deployments([deploy("D", at(0, 14), "m4")])
    changes = [
        Change("p4", at(0, 9), pull_request_id="PR-4"),
        Change("m4", at(0, 12), pull_request_id="PR-4", is_merge_commit=True),
    ]
    pr = PullRequest("PR-4", opened_at=at(0, 10), merged_at=at(0, 12), merge_commit_sha="m4")
    result = lead_time_for_changes(changes, deployments, WEEK_WINDOW, pull_requests=[pr])
    assert result.value == 5 * HOUR  # 14:00 - 09:00


def test_only_changes_first_deployed_in_the_window_count() -> None:
    deployments = production_deployments(
        [deploy("before", at(-1, 12), "a", ("a",)), deploy("inside", at(1, 12), "b", ("a", "b"))]
    )
    changes = [Change("a", at(-1, 10)), Change("b", at(0, 12)), Change("never", at(0, 1))]
    result = lead_time_for_changes(changes, deployments, WEEK_WINDOW)
    # a first shipped before the window (re-shipped inside it: not a new lead time); b: 24 h
    assert (result.sample_size, result.value) == (1, 24 * HOUR)
    assert result.details["changes_not_deployed"] == 1


def test_lead_time_is_the_same_for_offsets_and_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    # 12:00+02:00 is 10:00Z; authored 09:00Z -> 1 h either way
    local = production_deployments([deploy("D", datetime(2024, 3, 4, 12, 0, tzinfo=plus_two), "c", ("c",))])
    utc = production_deployments([deploy("D", at(0, 10), "c", ("c",))])
    local_change = Change("c", datetime(2024, 3, 4, 11, 0, tzinfo=plus_two))
    utc_change = Change("c", at(0, 9))
    local_window = Window(
        datetime(2024, 3, 4, 2, 0, tzinfo=plus_two), datetime(2024, 3, 11, 2, 0, tzinfo=plus_two)
    )
    assert lead_time_for_changes([local_change], local, local_window).value == HOUR
    assert lead_time_for_changes([utc_change], utc, WEEK_WINDOW).value == HOUR
    assert local_window == WEEK_WINDOW


# --------------------------------------------------------------------------------------------
# Change failure rate, recovery times, rework rate
# --------------------------------------------------------------------------------------------

# Fixture, service api, window days 0-6:
#   A1 day 0 10:00 r1 - incidents i1 (11:00-13:00) and i2 (12:00-14:30) both attributed to it
#   A2 day 1 10:00 r2
#   A3 day 2 10:00 r3 - rolled back by A4
#   A4 day 2 11:00 r2 - rollback (r2 was already in production)
#   A5 day 3 10:00 r4 - followed by hotfix A6
#   A6 day 3 13:00 r5 - hotfix
#   i3 (billing, day 4 09:00-09:30) has no billing deployment: unattributed, not linked to api
STABILITY_DEPLOYMENTS = production_deployments(
    [
        deploy("A1", at(0, 10), "r1"),
        deploy("A2", at(1, 10), "r2"),
        deploy("A3", at(2, 10), "r3"),
        deploy("A4", at(2, 11), "r2"),
        deploy("A5", at(3, 10), "r4"),
        deploy("A6", at(3, 13), "r5", hotfix=True),
    ]
)
STABILITY_INCIDENTS = [
    Incident("i1", created_at=at(0, 11), resolved_at=at(0, 13), service="api"),
    Incident("i2", created_at=at(0, 12), resolved_at=at(0, 14, 30), service="api"),
    Incident("i3", created_at=at(4, 9), resolved_at=at(4, 9, 30), service="billing"),
]


def test_change_failure_rate_counts_deployments_not_incidents() -> None:
    result = change_failure_rate(STABILITY_DEPLOYMENTS, STABILITY_INCIDENTS, WEEK_WINDOW)
    # failed: A1 (two incidents, counted once), A3 (rolled back), A5 (hotfix followed) -> 3 of 6
    assert result.value == 0.5
    assert result.sample_size == 6
    assert result.details["failed_deployments"] == 3
    assert result.details["failed_by_reason"] == {"followed_by_hotfix": 1, "incident": 1, "rolled_back": 1}
    assert result.details["incidents_in_window"] == 3
    assert result.details["incidents_attributed"] == 2
    assert result.details["incidents_unattributed"] == 1
    # 50% > 15% (2023) and > 30% (2021): low in both
    assert result.tier is Tier.LOW
    assert change_failure_rate(
        STABILITY_DEPLOYMENTS, STABILITY_INCIDENTS, WEEK_WINDOW, benchmark=2021
    ).tier is (Tier.LOW)


def test_two_incidents_on_one_deployment_fail_it_once() -> None:
    deployments = production_deployments([deploy("D1", at(0, 10), "a"), deploy("D2", at(1, 10), "b")])
    incidents = [
        Incident("x", created_at=at(0, 11), service="api"),
        Incident("y", created_at=at(0, 12), service="api"),
    ]
    result = change_failure_rate(deployments, incidents, WEEK_WINDOW)
    # 1 failed deployment of 2 = 50%, not 2 incidents / 2 deployments = 100%
    assert result.value == 0.5


def test_change_failure_rate_cannot_exceed_one() -> None:
    deployments = production_deployments([deploy("D1", at(0, 10), "a")])
    incidents = [Incident(f"i{n}", created_at=at(0, 11 + n), service="api") for n in range(5)]
    assert change_failure_rate(deployments, incidents, WEEK_WINDOW).value == 1.0


def test_multi_region_rollout_with_an_incident_is_one_failed_deployment() -> None:
    deployments = production_deployments(
        [
            deploy("eu", at(0, 10), "r1", environment="prod-eu"),
            deploy("us", at(0, 11), "r1", environment="prod-us"),
            deploy("next", at(1, 10), "r2"),
        ]
    )
    incidents = [Incident("i", created_at=at(0, 12), service="api", deployment_id="us")]
    result = change_failure_rate(deployments, incidents, WEEK_WINDOW)
    assert (result.value, result.sample_size) == (0.5, 2)


def test_rules_change_what_counts_as_failed() -> None:
    no_hotfix_rule = DeploymentRules(hotfix_marks_previous_failed=False)
    result = change_failure_rate(
        STABILITY_DEPLOYMENTS, STABILITY_INCIDENTS, WEEK_WINDOW, rules=no_hotfix_rule
    )
    assert result.value == pytest.approx(2 / 6)


def test_failed_deployment_recovery_time() -> None:
    result = failed_deployment_recovery_time(STABILITY_DEPLOYMENTS, STABILITY_INCIDENTS, WEEK_WINDOW)
    # A1: both incidents resolved, the last at 14:30 -> 4.5 h; A3: rollback A4 one hour later;
    # A5: hotfix A6 three hours later -> 3600, 10800, 16200 -> median 10800 (3 h)
    assert result.value == 3 * HOUR
    assert result.sample_size == 3
    # p75: position 1.5 -> 10800 + 0.5 * 5400 = 13500; p90: position 1.8 -> 10800 + 0.8 * 5400 = 15120
    assert result.p75 == pytest.approx(13500)
    assert result.p90 == pytest.approx(15120)
    assert result.details["recovered_by_deployment"] == 2
    assert result.details["recovered_by_incident_resolution"] == 1
    # 3 h: not < 1 h, < 1 day -> high (2023); the 2021 report has no such metric
    assert result.tier is Tier.HIGH
    result_2021 = failed_deployment_recovery_time(
        STABILITY_DEPLOYMENTS, STABILITY_INCIDENTS, WEEK_WINDOW, benchmark=2021
    )
    assert result_2021.tier is None
    assert "tier_note" in result_2021.details


def test_recovery_is_the_earlier_of_rollback_and_incident_resolution() -> None:
    deployments = production_deployments(
        [deploy("D1", at(0, 9), "a"), deploy("D2", at(0, 10), "b"), deploy("D3", at(0, 12), "a")]
    )
    # incident on D2 resolved 10:30 (feature flag), rollback D3 only at 12:00 -> recovered 10:30
    incidents = [Incident("i", created_at=at(0, 10, 10), resolved_at=at(0, 10, 30), service="api")]
    result = failed_deployment_recovery_time(deployments, incidents, WEEK_WINDOW)
    assert result.value == 30 * 60


def test_unrecovered_failed_deployment_is_reported_not_zero() -> None:
    deployments = production_deployments([deploy("D1", at(0, 10), "a")])
    incidents = [Incident("open", created_at=at(0, 11), service="api")]
    result = failed_deployment_recovery_time(deployments, incidents, WEEK_WINDOW)
    assert result.value is None
    assert result.reason == "none of the 1 failed deployments in the window has recovered"
    assert result.details["not_recovered"] == 1


def test_time_to_restore_service() -> None:
    result = time_to_restore_service(STABILITY_INCIDENTS, WEEK_WINDOW, benchmark=2021)
    # i1 2 h, i2 2.5 h, i3 0.5 h (attributed or not, every incident counts) -> median 2 h
    assert result.value == 2 * HOUR
    assert result.sample_size == 3
    # 2 h: not < 1 h, < 1 day -> high (2021)
    assert result.tier is Tier.HIGH
    # the 2023 report benchmarks failed deployment recovery time instead
    assert time_to_restore_service(STABILITY_INCIDENTS, WEEK_WINDOW).tier is None


def test_time_to_restore_selects_incidents_by_resolution() -> None:
    incidents = [
        Incident("long", created_at=at(-10), resolved_at=at(1)),  # 11 days, resolved in window
        Incident("open", created_at=at(2)),  # still open
        Incident("later", created_at=at(6), resolved_at=at(8)),  # resolved after the window
    ]
    result = time_to_restore_service(incidents, WEEK_WINDOW)
    assert (result.value, result.sample_size) == (11 * DAY, 1)
    assert result.details["open_at_window_end"] == 2


def test_rework_rate() -> None:
    result = rework_rate(STABILITY_DEPLOYMENTS, STABILITY_INCIDENTS, WEEK_WINDOW)
    # A4 (rollback) and A6 (hotfix) of 6 deployments
    assert result.value == pytest.approx(2 / 6)
    assert result.details["rework_by_reason"] == {"hotfix": 1, "rollback": 1}
    assert result.tier is None
    # a deployment named as the fix of an incident is rework too
    fixed_by_a2 = [*STABILITY_INCIDENTS, Incident("i4", created_at=at(1, 8), resolved_by_deployment_id="A2")]
    assert rework_rate(STABILITY_DEPLOYMENTS, fixed_by_a2, WEEK_WINDOW).value == pytest.approx(3 / 6)


# --------------------------------------------------------------------------------------------
# Empty windows, time zones, everything together
# --------------------------------------------------------------------------------------------


def test_empty_window_gives_none_with_a_reason_for_every_metric() -> None:
    empty = window(7, start_days=100)
    results = dora_metrics(STABILITY_DEPLOYMENTS, SQUASH_CHANGES, STABILITY_INCIDENTS, empty)
    assert set(results) == {
        "deployment_frequency",
        "lead_time_for_changes",
        "change_failure_rate",
        "failed_deployment_recovery_time",
        "time_to_restore_service",
        "rework_rate",
    }
    for result in results.values():
        assert result.value is None
        assert result.reason
        assert result.tier is None
        assert result.to_dict()["value"] is None


def test_all_metrics_are_identical_for_plus_two_hours_input() -> None:
    plus_two = timezone(timedelta(hours=2))

    def shifted(moment: datetime) -> datetime:
        return moment.astimezone(plus_two)

    local_deployments = production_deployments(
        [
            deploy("A1", shifted(at(0, 10)), "r1"),
            deploy("A2", shifted(at(1, 10)), "r2"),
            deploy("A3", shifted(at(2, 10)), "r3"),
            deploy("A4", shifted(at(2, 11)), "r2"),
            deploy("A5", shifted(at(3, 10)), "r4"),
            deploy("A6", shifted(at(3, 13)), "r5", hotfix=True),
        ]
    )
    local_incidents = [
        Incident(
            incident.incident_id,
            created_at=shifted(incident.created_at),
            resolved_at=None if incident.resolved_at is None else shifted(incident.resolved_at),
            service=incident.service,
        )
        for incident in STABILITY_INCIDENTS
    ]
    local_window = Window(shifted(T0), shifted(at(7)))
    local = dora_metrics(local_deployments, [], local_incidents, local_window)
    utc = dora_metrics(STABILITY_DEPLOYMENTS, [], STABILITY_INCIDENTS, WEEK_WINDOW)
    assert {name: result.to_dict() for name, result in local.items()} == {
        name: result.to_dict() for name, result in utc.items()
    }
    # and the shared numbers are the hand-computed ones above
    assert local["change_failure_rate"].value == 0.5
    assert local["failed_deployment_recovery_time"].value == 3 * HOUR
