"""Order statistics: true medians and PostgreSQL-style (percentile_cont) percentiles."""

from __future__ import annotations

import pytest

from doraflow.metrics.stats import describe, median, percentile


def test_median_of_odd_count_is_the_middle_value() -> None:
    # sorted: 1, 2, 7 -> middle is 2
    assert median([7, 1, 2]) == 2


def test_median_of_even_count_is_the_mean_of_the_two_middle_values() -> None:
    # sorted: 1, 2, 3, 10 -> (2 + 3) / 2 = 2.5 (not 2, not 3)
    assert median([10, 1, 3, 2]) == 2.5


def test_percentiles_interpolate_linearly_like_percentile_cont() -> None:
    values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    # p90: position 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9) = 9.1 (PostgreSQL percentile_cont gives 9.1)
    assert percentile(values, 0.9) == pytest.approx(9.1)
    # p75 of 1..4: position 0.75 * 3 = 2.25 -> 3 + 0.25 * (4 - 3) = 3.25
    assert percentile([4, 3, 2, 1], 0.75) == pytest.approx(3.25)
    assert percentile([4, 3, 2, 1], 0.0) == 1
    assert percentile([4, 3, 2, 1], 1.0) == 4


def test_single_value_is_every_percentile() -> None:
    assert percentile([42], 0.9) == 42
    assert median([42]) == 42


def test_empty_samples_are_refused_not_zero() -> None:
    with pytest.raises(ValueError, match="empty"):
        median([])
    with pytest.raises(ValueError, match="empty"):
        percentile([], 0.5)
    assert describe([]) is None


def test_percentile_fraction_must_be_within_zero_and_one() -> None:
    with pytest.raises(ValueError, match="fraction"):
        percentile([1, 2], 1.5)


def test_describe_summarises_in_one_pass() -> None:
    summary = describe([40, 10, 30, 20])
    assert summary is not None
    # sorted 10, 20, 30, 40: median (20 + 30) / 2 = 25; p75 position 2.25 -> 30 + 0.25 * 10 = 32.5;
    # p90 position 2.7 -> 30 + 0.7 * 10 = 37; mean 100 / 4 = 25
    assert (summary.count, summary.median, summary.mean) == (4, 25, 25)
    assert summary.p75 == pytest.approx(32.5)
    assert summary.p90 == pytest.approx(37)
    assert (summary.minimum, summary.maximum) == (10, 40)
