"""Prometheus instruments of the processor (served on `/metrics`).

Module-level because a Prometheus registry refuses a second instrument of the same name: one set per
process, whatever the number of processor loops in it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("doraflow_processor_events", "Events stored, by schema", ["schema"])
DEAD_LETTERS = Counter("doraflow_processor_dead_letters", "Messages sent to a DLQ, by reason", ["reason"])
BATCH_SIZE = Histogram(
    "doraflow_processor_batch_size",
    "Messages per batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
)
BATCH_SECONDS = Histogram(
    "doraflow_processor_batch_seconds",
    "Time from a batch's last message read to its offsets committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DATABASE_RETRIES = Counter("doraflow_processor_database_retries", "Batches retried after a database error")
BUS_RETRIES = Counter("doraflow_processor_bus_retries", "Batches retried after a DLQ publish or commit error")
EVENT_LAG = Gauge(
    "doraflow_processor_event_lag_seconds",
    "Age of the oldest message of the last committed batch when it was committed (consumer lag in time)",
)
LAST_COMMIT = Gauge("doraflow_processor_last_commit_timestamp_seconds", "When offsets were last committed")
ROLLUP_SECONDS = Histogram(
    "doraflow_processor_rollup_refresh_seconds",
    "Duration of a rollup (materialized view) refresh",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
CACHE_INVALIDATIONS = Counter("doraflow_processor_cache_keys_invalidated", "Cache keys deleted")
