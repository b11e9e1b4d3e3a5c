"""DORA performance tiers: the one table of thresholds, for the 2021 and the 2023 benchmarks.

The reports describe each cluster in words ("between one day and one week", "15%"), with gaps
and overlaps between neighbouring clusters. To turn words into numbers without inventing
thresholds the reports do not contain, every row below applies one rule:

* **A tier's threshold is the slow (worse) end of the band the report gives for that tier.**
  Tiers are checked from elite down; the first whose threshold the value meets wins; a value
  that meets none is ``low``.
* Consequently a value in a *gap* between two bands gets the tier below the gap (the better
  tier's band was not reached), and when the report prints the *same* band for two tiers the
  better tier wins and the worse one is only reached by values beyond that band.
* Words map to comparisons literally: "less than X" is ``< X``; the slow end of "between X and
  Y" includes Y (``<= Y``); a percentage given for a cluster is its upper bound (``<=``).
* Units: durations in seconds, one month = 30 days, six months = 180 days; change failure rate
  as a ratio (0.15 = 15%); deployment frequency in *deployment days* (days with at least one
  successful production deployment), per the Doraflow definition, where "daily" means every
  working day (5 per week) and "weekly"/"monthly" mean a median of at least one deployment day
  per 7-day/30-day bucket.

Metrics a report does not benchmark have no rows for it and get no tier: rework rate (DORA
2024 published no clusters for it), time to restore service under 2023 (that report replaced it
with failed deployment recovery time) and failed deployment recovery time under 2021.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

__all__ = [
    "BENCHMARKS",
    "DEFAULT_BENCHMARK",
    "REPORT_2021",
    "REPORT_2023",
    "TIER_TABLE",
    "Comparison",
    "Tier",
    "TierThreshold",
    "thresholds_for",
    "tier_for",
]


class Tier(StrEnum):
    """DORA performance cluster, best first."""

    ELITE = "elite"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


Comparison = Literal["<", "<=", ">="]

REPORT_2021: Final = (
    "DORA, Accelerate State of DevOps Report 2021 (Google Cloud), software delivery performance table"
)
REPORT_2023: Final = (
    "DORA, Accelerate State of DevOps Report 2023 (Google Cloud), chapter 1 'How do you compare?', "
    "software delivery performance levels"
)
BENCHMARKS: Final = (2021, 2023)
DEFAULT_BENCHMARK: Final = 2023

HOUR: Final = 3600.0
DAY: Final = 24 * HOUR
WEEK: Final = 7 * DAY
MONTH: Final = 30 * DAY
SIX_MONTHS: Final = 180 * DAY

# Measures compared against the thresholds.
MEDIAN_SECONDS: Final = "median_seconds"
RATIO: Final = "ratio"
DAYS_PER_WEEK: Final = "median_deployment_days_per_week"
DAYS_PER_MONTH: Final = "median_deployment_days_per_month"
DAYS_PER_SIX_MONTHS: Final = "deployment_days_per_six_months"


@dataclass(frozen=True, slots=True)
class TierThreshold:
    """One row of the tier table.

    ``report_band`` is the report's own wording for the tier, kept so the API and the docs can
    show what the number was derived from. A ``low`` row has no ``measure``: it is the fallback.
    """

    benchmark: int
    metric: str
    tier: Tier
    report_band: str
    measure: str | None
    comparison: Comparison | None
    bound: float | None
    source: str

    def is_met_by(self, number: float) -> bool:
        if self.comparison is None or self.bound is None:
            return True
        if self.comparison == "<":
            return number < self.bound
        if self.comparison == "<=":
            return number <= self.bound
        return number >= self.bound


def _row(
    benchmark: int,
    metric: str,
    tier: Tier,
    band: str,
    measure: str | None = None,
    comparison: Comparison | None = None,
    bound: float | None = None,
) -> TierThreshold:
    source = REPORT_2021 if benchmark == 2021 else REPORT_2023
    return TierThreshold(benchmark, metric, tier, band, measure, comparison, bound, source)


E, H, M, L = Tier.ELITE, Tier.HIGH, Tier.MEDIUM, Tier.LOW
DF = "deployment_frequency"
LT = "lead_time_for_changes"
CFR = "change_failure_rate"
FDRT = "failed_deployment_recovery_time"
TTRS = "time_to_restore_service"
SECS = MEDIAN_SECONDS

TIER_TABLE: Final[tuple[TierThreshold, ...]] = (
    # ---- DORA 2021: Accelerate State of DevOps Report 2021 ----
    _row(2021, DF, E, "On-demand (multiple deploys per day)", DAYS_PER_WEEK, ">=", 5),
    _row(2021, DF, H, "Between once per week and once per month", DAYS_PER_MONTH, ">=", 1),
    _row(2021, DF, M, "Between once per month and once every 6 months", DAYS_PER_SIX_MONTHS, ">=", 1),
    _row(2021, DF, L, "Fewer than once per six months"),
    _row(2021, LT, E, "Less than one hour", SECS, "<", HOUR),
    _row(2021, LT, H, "Between one day and one week", SECS, "<=", WEEK),
    _row(2021, LT, M, "Between one month and six months", SECS, "<=", SIX_MONTHS),
    _row(2021, LT, L, "More than six months"),
    _row(2021, TTRS, E, "Less than one hour", SECS, "<", HOUR),
    _row(2021, TTRS, H, "Less than one day", SECS, "<", DAY),
    _row(2021, TTRS, M, "Between one day and one week", SECS, "<=", WEEK),
    _row(2021, TTRS, L, "More than six months"),
    _row(2021, CFR, E, "0%-15%", RATIO, "<=", 0.15),
    _row(2021, CFR, H, "16%-30%", RATIO, "<=", 0.30),
    # The report gives medium the same band as high, so this row is never reached: 2021 change
    # failure rate cannot tell high from medium, and only rates above 30% are low.
    _row(2021, CFR, M, "16%-30%", RATIO, "<=", 0.30),
    _row(2021, CFR, L, "16%-30%"),
    # ---- DORA 2023: Accelerate State of DevOps Report 2023 ----
    _row(2023, DF, E, "On demand (multiple deploys per day)", DAYS_PER_WEEK, ">=", 5),
    _row(2023, DF, H, "Between once per day and once per week", DAYS_PER_WEEK, ">=", 1),
    _row(2023, DF, M, "Between once per week and once per month", DAYS_PER_MONTH, ">=", 1),
    _row(2023, DF, L, "Between once per week and once per month"),
    _row(2023, LT, E, "Less than one day", SECS, "<", DAY),
    _row(2023, LT, H, "Between one day and one week", SECS, "<=", WEEK),
    _row(2023, LT, M, "Between one week and one month", SECS, "<=", MONTH),
    _row(2023, LT, L, "Between one week and one month"),
    _row(2023, CFR, E, "5%", RATIO, "<=", 0.05),
    _row(2023, CFR, H, "10%", RATIO, "<=", 0.10),
    _row(2023, CFR, M, "15%", RATIO, "<=", 0.15),
    _row(2023, CFR, L, "64%"),
    _row(2023, FDRT, E, "Less than one hour", SECS, "<", HOUR),
    _row(2023, FDRT, H, "Less than one day", SECS, "<", DAY),
    _row(2023, FDRT, M, "Between one day and one week", SECS, "<=", WEEK),
    _row(2023, FDRT, L, "Between one month and six months"),
)

_TIER_ORDER: Final = {E: 0, H: 1, M: 2, L: 3}


def thresholds_for(metric: str, benchmark: int = DEFAULT_BENCHMARK) -> tuple[TierThreshold, ...]:
    """The rows for one metric under one benchmark, elite first (empty if not benchmarked)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(
            f"unknown DORA benchmark {benchmark!r}; supported: {', '.join(map(str, BENCHMARKS))}"
        )
    rows = [row for row in TIER_TABLE if row.metric == metric and row.benchmark == benchmark]
    return tuple(sorted(rows, key=lambda row: _TIER_ORDER[row.tier]))


def tier_for(
    metric: str,
    value: float | Mapping[str, float | None] | None,
    benchmark: int = DEFAULT_BENCHMARK,
) -> Tier | None:
    """The DORA tier of ``value`` for ``metric`` under the 2021 or 2023 benchmark.

    ``value`` is the metric's headline number (median seconds for durations, ratio for change
    failure rate) or, for deployment frequency, a mapping of the measures its rows use
    (``median_deployment_days_per_week``, ``median_deployment_days_per_month``,
    ``deployment_days_per_six_months``). Returns ``None`` when the value is missing, when a
    measure the decision needs is missing/``None``, or when the benchmark has no table for the
    metric; never guesses.
    """
    rows = thresholds_for(metric, benchmark)
    if not rows or value is None:
        return None
    if not isinstance(value, Mapping):
        measures = {row.measure for row in rows if row.measure is not None}
        if len(measures) != 1:
            raise ValueError(
                f"{metric} tiers compare several measures ({', '.join(sorted(measures))}); pass a mapping"
            )
        value = {measures.pop(): float(value)}
    for row in rows:
        if row.measure is None:
            return row.tier
        number = value.get(row.measure)
        if number is None:
            return None
        if row.is_met_by(number):
            return row.tier
    return Tier.LOW
