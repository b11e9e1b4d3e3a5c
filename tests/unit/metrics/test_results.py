"""MetricResult: a missing value always carries a reason; to_dict is plain JSON."""

from __future__ import annotations

import json
import math

import pytest

from doraflow.metrics import MetricResult, Tier


def test_a_result_without_value_must_give_a_reason() -> None:
    with pytest.raises(ValueError, match="must say why"):
        MetricResult(name="lead_time_for_changes", value=None, unit="seconds", tier=None, sample_size=0)


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        MetricResult(name="x", value=math.nan, unit="ratio", tier=None, sample_size=1)


def test_to_dict_is_json_serialisable_and_details_are_read_only() -> None:
    result = MetricResult(
        name="change_failure_rate",
        value=0.25,
        unit="ratio",
        tier=Tier.LOW,
        sample_size=4,
        benchmark=2023,
        details={"failed_by_reason": {"incident": 1}, "ids": ["a", "b"]},
    )
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["tier"] == "low"
    assert as_dict["details"] == {"failed_by_reason": {"incident": 1}, "ids": ["a", "b"]}
    with pytest.raises(TypeError):
        result.details["new"] = 1  # type: ignore[index]


def test_unavailable_result_has_null_value_and_reason() -> None:
    result = MetricResult.unavailable("deployment_frequency", "deployments_per_day", "no deployments")
    assert result.to_dict()["value"] is None
    assert result.reason == "no deployments"
    assert result.tier is None
