"""The worked example of docs/metrics.md, number for number.

One service, api, and the week Monday 2024-03-04 00:00 UTC to Monday 2024-03-11 00:00 UTC:

  A1 Mon 10:00  revision c2, ships c1 (authored Mon 08:00) and c2 (Mon 09:00) - first ever
  A2 Tue 10:00  revision s1, the squash commit of PR-1 (branch commits b1 Mon 06:00 and
                b2 Mon 11:00; opened Mon 11:30, first review Mon 14:00, merged Tue 09:00)
  A3 Wed 10:00  revision c3 (authored Wed 08:00)
  A4 Wed 11:00  revision s1 again: production goes back -> rollback of A3
  A5 Thu 10:00  revision c4, ships c3 and c4 (c4 authored Thu 07:00)
  A6 Thu 13:00  revision c5 (authored Thu 12:00), flagged hotfix -> A5 failed
  i1 api  Mon 11:00-13:00, i2 api Mon 12:00-14:30: both on A1 (latest api deployment before)
  i3 billing Fri 09:00-09:30: billing has no deployments -> unattributed
"""

from __future__ import annotations

import pytest

from doraflow.metrics import Change, Incident, PullRequest, Tier, dora_metrics, production_deployments
from tests.unit.metrics.builders import HOUR, at, deploy, window

DEPLOYMENTS = production_deployments(
    [
        deploy("A1", at(0, 10), "c2", ("c1", "c2")),
        deploy("A2", at(1, 10), "s1", ("s1",)),
        deploy("A3", at(2, 10), "c3", ("c3",)),
        deploy("A4", at(2, 11), "s1", ("s1",)),
        deploy("A5", at(3, 10), "c4", ("c3", "c4")),
        deploy("A6", at(3, 13), "c5", ("c5",), hotfix=True),
    ]
)
CHANGES = [
    Change("c1", at(0, 8)),
    Change("c2", at(0, 9)),
    Change("b1", at(0, 6), pull_request_id="PR-1"),
    Change("b2", at(0, 11), pull_request_id="PR-1"),
    Change("s1", at(1, 9), pull_request_id="PR-1"),
    Change("c3", at(2, 8)),
    Change("c4", at(3, 7)),
    Change("c5", at(3, 12)),
]
PULL_REQUESTS = [
    PullRequest(
        "PR-1", opened_at=at(0, 11, 30), first_review_at=at(0, 14), merged_at=at(1, 9), merge_commit_sha="s1"
    )
]
INCIDENTS = [
    Incident("i1", created_at=at(0, 11), resolved_at=at(0, 13), service="api"),
    Incident("i2", created_at=at(0, 12), resolved_at=at(0, 14, 30), service="api"),
    Incident("i3", created_at=at(4, 9), resolved_at=at(4, 9, 30), service="billing"),
]


def test_worked_example_2023() -> None:
    results = dora_metrics(DEPLOYMENTS, CHANGES, INCIDENTS, window(7), pull_requests=PULL_REQUESTS)

    frequency = results["deployment_frequency"]
    # 6 deployments / 7 days; deployment days Mon-Thu = 4 in the one weekly bucket -> high
    assert frequency.value == pytest.approx(6 / 7)
    assert frequency.details["median_deployment_days_per_week"] == 4
    assert frequency.tier is Tier.HIGH

    lead = results["lead_time_for_changes"]
    # c1 2 h, c2 1 h, b1 28 h, b2 23 h, c3 2 h (first shipped by A3, not A5), c4 3 h, c5 1 h;
    # s1 is represented by b1 and b2. Sorted 1, 1, 2, 2, 3, 23, 28 h: median 2 h,
    # p75 position 4.5 -> 3 + 0.5 * 20 = 13 h, p90 position 5.4 -> 23 + 0.4 * 5 = 25 h
    assert lead.sample_size == 7
    assert lead.value == 2 * HOUR
    assert lead.p75 == pytest.approx(13 * HOUR)
    assert lead.p90 == pytest.approx(25 * HOUR)
    assert lead.tier is Tier.ELITE
    breakdown = lead.details["cycle_time_breakdown"]
    assert isinstance(breakdown, dict)
    medians = {}
    for stage in ("coding", "pickup", "review", "deploy"):
        stage_details = breakdown[stage]
        assert isinstance(stage_details, dict)
        medians[stage] = stage_details["median"]
    assert medians == {"coding": 5.5 * HOUR, "pickup": 2.5 * HOUR, "review": 19 * HOUR, "deploy": 1 * HOUR}

    failure_rate = results["change_failure_rate"]
    # A1 (incidents i1, i2: counted once), A3 (rolled back), A5 (hotfix followed): 3 of 6
    assert failure_rate.value == 0.5
    assert failure_rate.tier is Tier.LOW
    assert failure_rate.details["incidents_unattributed"] == 1

    recovery = results["failed_deployment_recovery_time"]
    # A1 until i2 resolved Mon 14:30 = 4.5 h; A3 until A4 = 1 h; A5 until A6 = 3 h -> median 3 h
    assert recovery.value == 3 * HOUR
    assert recovery.tier is Tier.HIGH

    restore = results["time_to_restore_service"]
    # i1 2 h, i2 2.5 h, i3 0.5 h -> median 2 h; no 2023 benchmark for this metric
    assert restore.value == 2 * HOUR
    assert restore.tier is None

    rework = results["rework_rate"]
    # A4 (rollback) and A6 (hotfix) of 6
    assert rework.value == pytest.approx(2 / 6)


def test_worked_example_2021() -> None:
    results = dora_metrics(
        DEPLOYMENTS, CHANGES, INCIDENTS, window(7), pull_requests=PULL_REQUESTS, benchmark=2021
    )
    assert results["deployment_frequency"].tier is Tier.HIGH  # monthly-or-better, not daily
    assert results["lead_time_for_changes"].tier is Tier.HIGH  # 2 h: not < 1 h, within a week
    assert results["change_failure_rate"].tier is Tier.LOW  # 50% > 30%
    assert results["failed_deployment_recovery_time"].tier is None  # not in the 2021 report
    assert results["time_to_restore_service"].tier is Tier.HIGH  # 2 h < 1 day
