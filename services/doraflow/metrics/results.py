"""The one result shape every metric function returns.

A metric is never a bare number: it carries its unit, how many observations it rests on, the
DORA tier when one applies, and -- whenever the value is missing -- the reason. An empty window
is ``value=None`` with a reason, never ``0``, because 0 is a real (and very good, or very bad)
value for most of these metrics and must not be confused with "nothing to measure".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from doraflow.metrics.stats import Distribution
from doraflow.metrics.tiers import Tier

__all__ = ["JSONValue", "MetricResult"]

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None


def _plain(value: object) -> JSONValue:
    """Deep-copy into plain JSON types (read-only mappings and tuples are not serialisable)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"metric details must be finite numbers, got {value!r}")
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"metric details must be JSON values, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class MetricResult:
    """The value of one metric over one window, with everything needed to trust it.

    ``median``/``p75``/``p90`` are filled for metrics that summarise a distribution (durations,
    sizes); for those the ``value`` is the median. ``benchmark`` is the DORA benchmark year the
    ``tier`` was read from. ``details`` holds the intermediate counts (so a user can re-derive
    the number) and is read-only.
    """

    name: str
    value: float | None
    unit: str
    tier: Tier | None
    sample_size: int
    reason: str | None = None
    median: float | None = None
    p75: float | None = None
    p90: float | None = None
    benchmark: int | None = None
    details: Mapping[str, JSONValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is None and not self.reason:
            raise ValueError(f"{self.name}: a metric without a value must say why (reason)")
        for label, number in (
            ("value", self.value),
            ("median", self.median),
            ("p75", self.p75),
            ("p90", self.p90),
        ):
            if number is not None and not math.isfinite(number):
                raise ValueError(f"{self.name}: {label} must be finite, got {number!r}")
        if self.sample_size < 0:
            raise ValueError(f"{self.name}: sample_size cannot be negative")
        plain = _plain(self.details)
        assert isinstance(plain, dict)
        object.__setattr__(self, "details", MappingProxyType(plain))

    @classmethod
    def from_distribution(
        cls,
        name: str,
        unit: str,
        summary: Distribution | None,
        empty_reason: str,
        *,
        tier: Tier | None = None,
        benchmark: int | None = None,
        details: dict[str, JSONValue] | None = None,
    ) -> MetricResult:
        """A duration-like metric reported as its median with p75/p90 (and the mean in `details`),
        or unavailable with `empty_reason` when the sample is empty."""
        details = details if details is not None else {}
        if summary is None:
            return cls.unavailable(name, unit, empty_reason, benchmark=benchmark, details=details)
        details["mean"] = summary.mean
        return cls(
            name=name,
            value=summary.median,
            unit=unit,
            tier=tier,
            sample_size=summary.count,
            median=summary.median,
            p75=summary.p75,
            p90=summary.p90,
            benchmark=benchmark,
            details=details,
        )

    @classmethod
    def from_ratio(
        cls,
        name: str,
        unit: str,
        numerator: int,
        denominator: int,
        empty_reason: str,
        *,
        tier: Callable[[float], Tier | None] | None = None,
        benchmark: int | None = None,
        details: dict[str, JSONValue] | None = None,
    ) -> MetricResult:
        """A share of deployments (change failure rate, rework rate): `numerator / denominator` with
        the percentage in `details`, or unavailable with `empty_reason` when nothing was counted —
        never 0 for an empty window."""
        details = details if details is not None else {}
        if denominator == 0:
            return cls.unavailable(name, unit, empty_reason, benchmark=benchmark, details=details)
        rate = numerator / denominator
        details["percent"] = rate * 100
        return cls(
            name=name,
            value=rate,
            unit=unit,
            tier=tier(rate) if tier else None,
            sample_size=denominator,
            benchmark=benchmark,
            details=details,
        )

    @classmethod
    def unavailable(
        cls,
        name: str,
        unit: str,
        reason: str,
        *,
        sample_size: int = 0,
        benchmark: int | None = None,
        details: Mapping[str, JSONValue] | None = None,
    ) -> MetricResult:
        """A result with no value, for empty windows and undefined metrics."""
        return cls(
            name=name,
            value=None,
            unit=unit,
            tier=None,
            sample_size=sample_size,
            reason=reason,
            benchmark=benchmark,
            details=details or {},
        )

    def to_dict(self) -> dict[str, JSONValue]:
        """Plain JSON-serialisable dict (tier as its string, details deep-copied)."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "tier": None if self.tier is None else self.tier.value,
            "benchmark": self.benchmark,
            "sample_size": self.sample_size,
            "reason": self.reason,
            "median": self.median,
            "p75": self.p75,
            "p90": self.p90,
            "details": _plain(self.details),
        }
