"""Sustained ingestion from Kafka into PostgreSQL, compared with a raw COPY of the same rows.

    python -m benchmarks.processor_ingest            # 200k events
    DORAFLOW_BENCH_EVENTS=50000 python -m benchmarks.processor_ingest

Starts a Kafka broker and a PostgreSQL with the test environment's own code (tests/testenv), or
reuses servers named by `DORAFLOW_TEST_KAFKA_BOOTSTRAP` / `DORAFLOW_TEST_DATABASE_URL`. Publishes
the workload of `benchmarks.processor_workload` to one organization's topics (10 partitions each),
then runs the real processor loop (validation, identity resolution, upserts, enrichment, offset
commits) from offset 0 and measures:

* **sustained events/s**: events committed between the first and the last batch ÷ that time;
* **COPY rate**: the same final rows (every table the processor wrote) copied with binary `COPY`
  into an empty, identically indexed database, expressed as events/s (events ÷ COPY time) — the
  ceiling for writing those rows;
* their ratio. Targets (issue 4): ≥ 20,000 events/s and ≥ 25% of COPY.

`DORAFLOW_BENCH_PROFILE=1` prints a cProfile summary of the processor's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks import _cpu
from benchmarks.processor_workload import workload
from doraflow.core.bus import TopicSpec, create_bus
from doraflow.core.cache import MemoryCache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.events import organization_topics
from doraflow.core.settings import Settings
from doraflow.processor.config import ProcessorConfig
from doraflow.processor.consumer import Processor
from doraflow.processor.service import tune_gc
from tests.integration.processor.conftest import TABLES, prepare_database
from tests.testenv.kafka import BOOTSTRAP_ENV, kafka_home, start_broker
from tests.testenv.postgres import _asyncpg_url, _dsn

ORGANIZATION = "bench"
TARGET_EVENTS_PER_SECOND = 20_000
TARGET_COPY_RATIO = 0.25


@dataclass(frozen=True, slots=True)
class Result:
    events: int
    ingest_seconds: float
    sustained_events_per_second: float
    overall_events_per_second: float
    rows: int
    copy_seconds: float

    @property
    def copy_events_per_second(self) -> float:
        return self.events / self.copy_seconds

    @property
    def ratio(self) -> float:
        return self.sustained_events_per_second / self.copy_events_per_second


@contextlib.contextmanager
def servers(*, kafka: bool = True) -> Iterator[tuple[str, str]]:
    """(Kafka bootstrap, PostgreSQL URL), started here unless the environment names them; without
    `kafka`, the bootstrap is empty and no broker is started."""
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get(BOOTSTRAP_ENV, "")
        if kafka and not bootstrap:
            home = kafka_home()
            if home is None:
                raise RuntimeError("Kafka is not provisioned: run `scripts/testenv kafka` first")
            work = Path(tempfile.mkdtemp(prefix="doraflow-bench-kafka-"))
            stack.callback(shutil.rmtree, work, ignore_errors=True)
            broker, bootstrap = start_broker(home, work)
            stack.callback(broker.stop, 30)
        database = os.environ.get("DORAFLOW_TEST_DATABASE_URL")
        if not database:
            # The same server the `postgres_url` fixture starts (pgserver in a throwaway data dir).
            import pgserver

            datadir = Path(tempfile.mkdtemp(prefix="doraflow-bench-pg-"))
            stack.callback(shutil.rmtree, datadir, ignore_errors=True)
            server = pgserver.get_server(datadir, cleanup_mode="delete")
            stack.callback(server.cleanup)
            database = _asyncpg_url(server.get_uri())
        yield bootstrap, database


async def create_database(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    await prepare_database(url)
    return url


async def drop_database(admin_url: str, url: str) -> None:
    connection = await asyncpg.connect(_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await connection.close()


async def publish(bootstrap: str, prefix: str, total: int) -> None:
    started = time.monotonic()
    messages = workload(total, organization=ORGANIZATION, prefix=prefix)
    generated = time.monotonic()
    bus = create_bus(bootstrap, linger_ms=20, max_batch_size=512 * 1024, max_in_flight=50_000)
    await bus.start()
    try:
        await bus.ensure_topics(
            [
                TopicSpec(name, partitions=10, replication_factor=1)
                for name in organization_topics(prefix, ORGANIZATION)
            ]
        )
        for message in messages:
            await bus.publish(message.topic, message.key, message.value)
        await bus.flush()
    finally:
        await bus.stop()
    print(
        f"workload: {total} events generated in {generated - started:.1f}s, "
        f"published in {time.monotonic() - generated:.1f}s",
        flush=True,
    )


async def ingest(bootstrap: str, prefix: str, url: str, total: int) -> tuple[float, float, float]:
    """Run the processor from offset 0 until `total` events are committed; return
    (seconds, sustained events/s, overall events/s)."""
    settings = Settings()
    engine = create_engine(settings, url=url)
    bus = create_bus(bootstrap)
    await bus.start()
    config = ProcessorConfig(
        topic_prefix=prefix,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        batch_size=settings.processor_batch_size,
        linger_ms=settings.processor_linger_ms,
        rollup_refresh_seconds=3600,  # measured separately: a refresh rescans the tables
    )
    processor = Processor(config, bus, MemoryCache(), create_session_factory(engine))
    tune_gc(config.batch_size)  # as `serve_processor` does in the real process
    stop = asyncio.Event()
    profiler = cProfile.Profile() if os.environ.get("DORAFLOW_BENCH_PROFILE") else None
    started = time.monotonic()
    cpu_started = time.process_time()
    if profiler:
        profiler.enable()
    task = asyncio.create_task(processor.run(stop))
    first_at: float | None = None
    first_events = 0
    first_sample = _cpu.sample()
    # (seconds, events) of each full batch after the first, to show the steady state apart from
    # the slow batches of a cold start (no statistics yet; the backlog's deployments come first)
    batch_rates: list[tuple[float, int]] = []
    seen_at, seen_events = time.monotonic(), 0
    try:
        while processor.events < total:
            if task.done():
                task.result()
                raise RuntimeError("processor stopped early")
            if first_at is None and processor.events:
                first_at, first_events = time.monotonic(), processor.events
                first_sample = _cpu.sample()
            if processor.events != seen_events:
                now = time.monotonic()
                if seen_events and processor.events - seen_events >= config.batch_size:
                    batch_rates.append((now - seen_at, processor.events - seen_events))
                seen_at, seen_events = now, processor.events
            await asyncio.sleep(0.01)
        finished = time.monotonic()
        cpu = time.process_time() - cpu_started
        sustained_cpu = _cpu.sample() - first_sample
    finally:
        stop.set()
        await task
        if profiler:
            profiler.disable()
        await bus.stop()
        await engine.dispose()
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(
            os.environ.get("DORAFLOW_BENCH_PROFILE_SORT", "tottime")
        ).print_stats(40)
        print(out.getvalue())
    assert first_at is not None
    print(
        f"processor process: {cpu:.1f}s CPU in {finished - started:.1f}s "
        f"({cpu / (finished - started):.0%} of one core; the rest is waiting for PostgreSQL and Kafka)",
        flush=True,
    )
    print(_cpu.report(sustained_cpu, total - first_events), flush=True)
    if batch_rates:
        rates = sorted(events / seconds for seconds, events in batch_rates)
        print(
            f"full batches:      {len(rates)}, median {statistics.median(rates):,.0f} events/s "
            f"(slowest {rates[0]:,.0f}, fastest {rates[-1]:,.0f})",
            flush=True,
        )
    sustained = (total - first_events) / (finished - first_at)
    return finished - started, sustained, total / (finished - started)


async def copy_rows(source_url: str, target_url: str) -> tuple[int, float]:
    """COPY every row the processor wrote into an empty database with the same schema."""
    source = await asyncpg.connect(_dsn(source_url))
    try:
        data: dict[str, tuple[list[str], list[Any]]] = {}
        for table in TABLES:
            # generated columns (commit_deployments.lead_seconds) are computed by the COPY too
            columns = [
                row[0]
                for row in await source.fetch(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
                    table,
                )
            ]
            records = await source.fetch(f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608 - catalog names
            data[table] = (columns, [tuple(record) for record in records])
    finally:
        await source.close()
    target = await asyncpg.connect(_dsn(target_url))
    try:
        started = time.monotonic()
        async with target.transaction():
            for table, (columns, rows) in data.items():
                if rows:
                    await target.copy_records_to_table(table, records=rows, columns=columns)
        elapsed = time.monotonic() - started
    finally:
        await target.close()
    return sum(len(rows) for _, rows in data.values()), elapsed


async def run(bootstrap: str, admin_url: str, total: int) -> Result:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    ingest_url = await create_database(admin_url)
    copy_url = await create_database(admin_url)
    try:
        await publish(bootstrap, prefix, total)
        seconds, sustained, overall = await ingest(bootstrap, prefix, ingest_url, total)
        rows, copy_seconds = await copy_rows(ingest_url, copy_url)
    finally:
        await drop_database(admin_url, ingest_url)
        await drop_database(admin_url, copy_url)
    return Result(total, seconds, sustained, overall, rows, copy_seconds)


def main() -> int:
    total = int(os.environ.get("DORAFLOW_BENCH_EVENTS", "200000"))
    with servers() as (bootstrap, database):
        result = asyncio.run(run(bootstrap, database, total))
    print(f"events:            {result.events}")
    overall, sustained = result.overall_events_per_second, result.sustained_events_per_second
    print(f"ingest:            {result.ingest_seconds:.1f}s total, {overall:,.0f} events/s overall")
    print(f"sustained:         {sustained:,.0f} events/s (target ≥ {TARGET_EVENTS_PER_SECOND:,})")
    print(
        f"raw COPY:          {result.rows} rows in {result.copy_seconds:.2f}s = "
        f"{result.copy_events_per_second:,.0f} events/s"
    )
    print(f"ratio:             {result.ratio:.1%} of COPY (target ≥ {TARGET_COPY_RATIO:.0%})")
    ok = result.sustained_events_per_second >= TARGET_EVENTS_PER_SECOND and result.ratio >= TARGET_COPY_RATIO
    print("result:            " + ("meets the targets" if ok else "BELOW TARGET"), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
