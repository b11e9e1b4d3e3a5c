"""The processor's tunables, gathered from `Settings` in one place.

Fields that `Settings` does not (yet) define fall back to the defaults here, so the processor runs
with today's settings class and picks up `DORAFLOW_PROCESSOR_*` fields as soon as they exist there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from doraflow.core.settings import Settings

GROUP_ID = "doraflow-processor"


def topic_pattern(prefix: str) -> str:
    """Every organization's input topics — never its DLQ — as a full-match regex. A pattern (not a
    topic list) is what lets a new organization's topics be consumed without a restart."""
    return rf"{re.escape(prefix)}\.[^.]+\.(git\..+|jira\..+|incidents)"


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    topic_prefix: str = "doraflow"
    group_id: str = GROUP_ID
    batch_size: int = 2000
    linger_ms: int = 200
    # How long one poll may wait for the first message: bounds how late a stop request is noticed.
    poll_timeout_ms: int = 500
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    # Plain-PostgreSQL rollups are refreshed at most this often (a refresh rescans whole tables).
    rollup_refresh_seconds: float = 60.0
    # Planner statistics of fast-growing tables are refreshed at most this often (`statistics`).
    statistics_seconds: float = 5.0
    # Cache invalidations are coalesced over this interval (each pattern is a SCAN of the keyspace).
    cache_invalidation_seconds: float = 1.0
    # Incident → deployment attribution window when the organization sets none (metrics default).
    attribution_window: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.retry_initial_seconds <= 0 or self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry delays must be positive and initial <= max")

    @property
    def pattern(self) -> str:
        return topic_pattern(self.topic_prefix)

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessorConfig:
        return cls(
            topic_prefix=settings.kafka_topic_prefix,
            batch_size=settings.processor_batch_size,
            linger_ms=settings.processor_linger_ms,
            retry_max_seconds=settings.processor_retry_max_seconds,
            rollup_refresh_seconds=settings.processor_rollup_refresh_seconds,
            cache_invalidation_seconds=settings.processor_cache_invalidation_seconds,
            statistics_seconds=settings.processor_statistics_seconds,
        )
