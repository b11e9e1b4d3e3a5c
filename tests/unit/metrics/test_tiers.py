"""The DORA tier table: boundaries under both benchmarks, checked value by value.

Durations are seconds: one hour 3600, one day 86400, one week 604800, one month (30 days)
2592000, six months (180 days) 15552000.
"""

from __future__ import annotations

import pytest

from doraflow.metrics import TIER_TABLE, Tier, thresholds_for, tier_for
from doraflow.metrics.tiers import REPORT_2021, REPORT_2023

ELITE, HIGH, MEDIUM, LOW = Tier.ELITE, Tier.HIGH, Tier.MEDIUM, Tier.LOW
HOUR, DAY, WEEK, MONTH, SIX_MONTHS = 3600, 86400, 604800, 2592000, 15552000


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (DAY - 1, ELITE),  # "less than one day"
        (DAY, HIGH),  # one day is no longer "less than one day"
        (WEEK, HIGH),  # slow end of "between one day and one week" is included
        (WEEK + 1, MEDIUM),
        (MONTH, MEDIUM),  # slow end of "between one week and one month"
        (MONTH + 1, LOW),  # beyond the band printed for both medium and low
    ],
)
def test_lead_time_2023(seconds: float, expected: Tier) -> None:
    assert tier_for("lead_time_for_changes", seconds, 2023) is expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (HOUR - 1, ELITE),  # "less than one hour"
        (HOUR, HIGH),  # gap 1 hour .. 1 day falls to high, the tier below the gap
        (WEEK, HIGH),
        (WEEK + 1, MEDIUM),  # gap 1 week .. 1 month falls to medium
        (SIX_MONTHS, MEDIUM),
        (SIX_MONTHS + 1, LOW),  # "more than six months"
    ],
)
def test_lead_time_2021(seconds: float, expected: Tier) -> None:
    assert tier_for("lead_time_for_changes", seconds, 2021) is expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (HOUR - 1, ELITE),
        (HOUR, HIGH),
        (DAY - 1, HIGH),  # "less than one day"
        (DAY, MEDIUM),  # "between one day and one week"
        (WEEK, MEDIUM),
        (WEEK + 1, LOW),  # gap 1 week .. 1 month (2023) / 6 months (2021) falls to low
    ],
)
def test_recovery_time_2023_and_time_to_restore_2021(seconds: float, expected: Tier) -> None:
    assert tier_for("failed_deployment_recovery_time", seconds, 2023) is expected
    assert tier_for("time_to_restore_service", seconds, 2021) is expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(0.0, ELITE), (0.05, ELITE), (0.0501, HIGH), (0.10, HIGH), (0.15, MEDIUM), (0.1501, LOW), (1.0, LOW)],
)
def test_change_failure_rate_2023(ratio: float, expected: Tier) -> None:
    assert tier_for("change_failure_rate", ratio, 2023) is expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    # 2021 prints 16%-30% for high, medium and low alike: medium is unreachable, above 30% is low
    [(0.15, ELITE), (0.155, HIGH), (0.30, HIGH), (0.3001, LOW)],
)
def test_change_failure_rate_2021(ratio: float, expected: Tier) -> None:
    assert tier_for("change_failure_rate", ratio, 2021) is expected


@pytest.mark.parametrize(
    ("measures", "tier_2023", "tier_2021"),
    [
        # deploying on 5 days of a typical week: daily, "on demand" in both reports
        ({"week": 5, "month": 21, "six": 120}, ELITE, ELITE),
        # 4.5 days a week: between daily and weekly -> high (2023); 2021 has no such band, and
        # the best tier whose slow end (once per month) is met is high
        ({"week": 4.5, "month": 18, "six": 100}, HIGH, HIGH),
        ({"week": 1, "month": 4, "six": 24}, HIGH, HIGH),
        # a median week without deployments, but every month has one
        ({"week": 0, "month": 1, "six": 6}, MEDIUM, HIGH),
        # less than monthly
        ({"week": 0, "month": 0.5, "six": 3}, LOW, MEDIUM),
        ({"week": 0, "month": 0, "six": 1}, LOW, MEDIUM),
        ({"week": 0, "month": 0, "six": 0.9}, LOW, LOW),
    ],
)
def test_deployment_frequency_uses_deployment_days(
    measures: dict[str, float], tier_2023: Tier, tier_2021: Tier
) -> None:
    value: dict[str, float | None] = {
        "median_deployment_days_per_week": measures["week"],
        "median_deployment_days_per_month": measures["month"],
        "deployment_days_per_six_months": measures["six"],
    }
    assert tier_for("deployment_frequency", value, 2023) is tier_2023
    assert tier_for("deployment_frequency", value, 2021) is tier_2021


def test_default_benchmark_is_2023() -> None:
    # 12 hours: elite in 2023 (< 1 day), high in 2021 (not < 1 hour)
    assert tier_for("lead_time_for_changes", 12 * HOUR) is ELITE
    assert tier_for("lead_time_for_changes", 12 * HOUR, 2021) is HIGH


def test_metrics_without_a_benchmark_get_no_tier() -> None:
    assert tier_for("rework_rate", 0.01, 2023) is None
    assert tier_for("rework_rate", 0.01, 2021) is None
    assert tier_for("time_to_restore_service", 60, 2023) is None
    assert tier_for("failed_deployment_recovery_time", 60, 2021) is None


def test_missing_values_and_measures_give_no_tier() -> None:
    assert tier_for("lead_time_for_changes", None) is None
    # elite is decidable from the weekly measure alone; lower tiers need the monthly one
    assert tier_for("deployment_frequency", {"median_deployment_days_per_week": 6}) is ELITE
    assert tier_for("deployment_frequency", {"median_deployment_days_per_week": 0}) is None


def test_misuse_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown DORA benchmark"):
        tier_for("lead_time_for_changes", 1.0, 2022)
    with pytest.raises(ValueError, match="pass a mapping"):
        tier_for("deployment_frequency", 3.0)


def test_table_has_four_tiers_per_benchmarked_metric_each_citing_its_report() -> None:
    expected = {
        2021: {
            "deployment_frequency",
            "lead_time_for_changes",
            "change_failure_rate",
            "time_to_restore_service",
        },
        2023: {
            "deployment_frequency",
            "lead_time_for_changes",
            "change_failure_rate",
            "failed_deployment_recovery_time",
        },
    }
    for benchmark, metrics in expected.items():
        assert {row.metric for row in TIER_TABLE if row.benchmark == benchmark} == metrics
        for metric in metrics:
            rows = thresholds_for(metric, benchmark)
            assert [row.tier for row in rows] == [ELITE, HIGH, MEDIUM, LOW]
            assert rows[-1].measure is None  # low is the fallback row
    for row in TIER_TABLE:
        assert row.source == (REPORT_2021 if row.benchmark == 2021 else REPORT_2023)
        assert row.report_band
