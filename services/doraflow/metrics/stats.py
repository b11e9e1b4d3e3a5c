"""Order statistics with one documented method.

Percentiles use **linear interpolation between closest ranks**, the method of PostgreSQL's
``percentile_cont`` (also numpy's default ``"linear"``, Hyndman & Fan type 7): for ``n`` sorted
values and fraction ``p`` the position is ``h = p * (n - 1)`` (0-based) and the result is
``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. The same method in SQL and in
Python means a rollup computed by the database and a number computed here agree.

The median is the true median: the middle value for an odd count, the mean of the two middle
values for an even count. That is exactly ``percentile_cont(0.5)``, and it is computed with the
same floating-point operations PostgreSQL uses (``a + 0.5 * (b - a)``), so a median computed by
the database and one computed here are bit-identical, not merely equal to the last few digits --
which is what lets the query layer prove its SQL path equivalent to these functions.

Empty input raises ``ValueError``: the metric functions must decide and explain what an empty
sample means (they return ``None`` with a reason), never receive a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Distribution", "describe", "median", "percentile", "percentile_of_sorted"]


def percentile_of_sorted(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear-interpolation percentile of values already sorted ascending.

    Separate from :func:`percentile` so callers that need several percentiles sort only once.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sample is undefined")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile fraction must be within [0, 1], got {fraction}")
    count = len(sorted_values)
    if count == 1:
        return float(sorted_values[0])
    if fraction == 0.5:
        return _median_of_sorted(sorted_values)
    position = fraction * (count - 1)
    lower_index = math.floor(position)
    upper_index = min(lower_index + 1, count - 1)
    weight = position - lower_index
    lower = float(sorted_values[lower_index])
    upper = float(sorted_values[upper_index])
    return lower + weight * (upper - lower)  # as PostgreSQL's float8_lerp: lo + pct * (hi - lo)


def _median_of_sorted(sorted_values: Sequence[float]) -> float:
    count = len(sorted_values)
    middle = count // 2
    if count % 2:
        return float(sorted_values[middle])
    lower, upper = float(sorted_values[middle - 1]), float(sorted_values[middle])
    return lower + 0.5 * (upper - lower)  # PostgreSQL's float8_lerp, operation for operation


def percentile(values: Iterable[float], fraction: float) -> float:
    """Linear-interpolation percentile (PostgreSQL ``percentile_cont``) of unsorted values."""
    return percentile_of_sorted(sorted(values), fraction)


def median(values: Iterable[float]) -> float:
    """True median: mean of the two middle values when the count is even."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of an empty sample is undefined")
    return _median_of_sorted(ordered)


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of one sample: the numbers a duration metric reports."""

    count: int
    median: float
    p75: float
    p90: float
    mean: float
    minimum: float
    maximum: float


def describe(values: Iterable[float]) -> Distribution | None:
    """Sort once and summarise; ``None`` for an empty sample (the caller gives the reason)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Distribution(
        count=len(ordered),
        median=_median_of_sorted(ordered),
        p75=percentile_of_sorted(ordered, 0.75),
        p90=percentile_of_sorted(ordered, 0.90),
        mean=math.fsum(ordered) / len(ordered),
        minimum=float(ordered[0]),
        maximum=float(ordered[-1]),
    )
