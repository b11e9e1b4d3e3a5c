"""Where the processor's storage time goes: the store step alone, statement by statement.

    python -m benchmarks.processor_store                       # 100k events, Kafka-like order
    DORAFLOW_BENCH_ORDER=workload python -m benchmarks.processor_store
    DORAFLOW_BENCH_EXPLAIN=12 python -m benchmarks.processor_store   # EXPLAIN ANALYZE batch 12

`benchmarks.processor_ingest` measures the whole loop against Kafka; this one takes Kafka and
parsing out, to say which statements the store step spends its time on. It validates the workload
of `benchmarks.processor_workload` into the processor's own plans, then stores them batch by batch
(`storage.store`, one transaction each, as the processor does) into a freshly migrated database,
and prints:

* events/s of the store step alone (this process's array building and encoding + PostgreSQL);
* the CPU time of the PostgreSQL backend and of this process per event — CPU, unlike wall time,
  hardly moves with whatever else the machine is doing, so two variants compare fairly;
* each statement's share of the wall time.

`DORAFLOW_BENCH_ORDER`: `topic` (default) stores topic-homogeneous batches, as a backlog read from
Kafka arrives (a consumer drains a partition's fetched records before the next one's): a
deployment then usually lands batches after the commits it shipped, which costs their update;
`workload` stores events in the order they were produced (commits, their pull request, then the
deployment), the live case. Statistics are refreshed every 5 batches, as the processor's
`StatisticsKeeper` does on its own clock.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from datetime import timedelta
from typing import Any

import asyncpg

from benchmarks._cpu import process_cpu_seconds
from benchmarks.processor_ingest import create_database, drop_database, servers
from benchmarks.processor_workload import workload
from doraflow.core.bus import Message
from doraflow.processor import storage
from doraflow.processor.consumer import WORK_MEM
from doraflow.processor.entities import Lookups
from doraflow.processor.service import tune_gc
from doraflow.processor.transform import Plan, PlanBuilder
from doraflow.processor.validation import Accepted, validate
from tests.testenv.postgres import _dsn

PREFIX = "bench"
ORDER_WINDOW = 20_000  # events sorted by topic within each window (the `topic` order)


class TimedConnection:
    """An asyncpg connection that times each statement (and can EXPLAIN ANALYZE it first, inside
    a rolled-back savepoint, so the data the real statement sees is unchanged)."""

    def __init__(self, connection: Any, totals: dict[str, float], *, explain: bool) -> None:
        self._connection = connection
        self._totals = totals
        self._explain = explain

    async def _run(self, method: str, sql: str, *args: Any) -> Any:
        label = " ".join(sql.split())[:100]
        if self._explain:
            savepoint = self._connection.transaction()
            await savepoint.start()
            plan = await self._connection.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, *args)
            await savepoint.rollback()
            print(f"--- {label}\n" + "\n".join(row[0] for row in plan), flush=True)
        started = time.perf_counter()
        try:
            return await getattr(self._connection, method)(sql, *args)
        finally:
            self._totals[label] += time.perf_counter() - started

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._run("fetch", sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchrow", sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, *args)

    async def execute(self, sql: str, *args: Any) -> Any:
        return await self._run("execute", sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def plans(total: int, batch_size: int, order: str) -> list[Plan]:
    produced = workload(total, organization="bench", prefix=PREFIX)
    if order == "topic":
        produced = [
            message
            for start in range(0, total, ORDER_WINDOW)
            for message in sorted(produced[start : start + ORDER_WINDOW], key=lambda m: m.topic)
        ]
    batches: list[Plan] = []
    for start in range(0, total, batch_size):
        builder = PlanBuilder()
        for offset, published in enumerate(produced[start : start + batch_size], start):
            outcome = validate(Message(published.topic, 0, offset, published.key, published.value, 0), PREFIX)
            assert isinstance(outcome, Accepted), outcome
            builder.add(outcome)
        batches.append(builder.plan)
    return batches


async def run(admin_url: str, total: int, batch_size: int, order: str, explain: int) -> None:
    batches = plans(total, batch_size, order)
    tune_gc(batch_size)  # as the processor does (the plans of every batch are held here at once)
    url = await create_database(admin_url)
    totals: dict[str, float] = collections.defaultdict(float)
    try:
        connection = await asyncpg.connect(_dsn(url))
        try:
            await connection.execute(  # as the processor
                f"SET plan_cache_mode = force_custom_plan; SET work_mem = '{WORK_MEM}'"
            )
            pid = await connection.fetchval("SELECT pg_backend_pid()")
            lookups = Lookups()
            backend_started, python_started = process_cpu_seconds(pid), time.process_time()
            started = time.perf_counter()
            for index, plan in enumerate(batches):
                timed = TimedConnection(connection, totals, explain=index == explain)
                async with connection.transaction():
                    await storage.store(timed, plan, lookups=lookups, attribution_window=timedelta(days=7))
                lookups.commit()
                if index % 5 == 2:
                    await connection.execute("ANALYZE")
            elapsed = time.perf_counter() - started
            backend = process_cpu_seconds(pid) - backend_started
            python = time.process_time() - python_started
        finally:
            await connection.close()
    finally:
        await drop_database(admin_url, url)
    report(total, elapsed, backend, python, totals)


def report(total: int, elapsed: float, backend: float, python: float, totals: dict[str, float]) -> None:
    print(f"store step:        {total} events in {elapsed:.2f}s = {total / elapsed:,.0f} events/s")
    print(f"PostgreSQL CPU:    {backend / total * 1e6:.0f} µs/event")
    print(f"this process CPU:  {python / total * 1e6:.0f} µs/event (arrays, encoding, results)")
    print("statements (share of the store step's wall time):")
    for label, seconds in sorted(totals.items(), key=lambda item: -item[1])[:15]:
        print(f"  {seconds / elapsed:6.1%}  {seconds:6.2f}s  {label}")


def main() -> int:
    total = int(os.environ.get("DORAFLOW_BENCH_EVENTS", "100000"))
    batch_size = int(os.environ.get("DORAFLOW_PROCESSOR_BATCH_SIZE", "10000"))
    order = os.environ.get("DORAFLOW_BENCH_ORDER", "topic")
    if order not in {"topic", "workload"}:
        raise SystemExit("DORAFLOW_BENCH_ORDER is topic or workload")
    explain = int(os.environ.get("DORAFLOW_BENCH_EXPLAIN", "-1"))
    with servers(kafka=False) as (_, database):
        asyncio.run(run(database, total, batch_size, order, explain))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
