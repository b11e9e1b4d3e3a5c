"""Failures: the processor killed with SIGKILL mid-batch and restarted, and a database outage while
it runs — neither loses nor duplicates anything; SIGTERM stops it gracefully."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.processor_workload import workload
from doraflow.core.bus import EventBus, MemoryBus, create_bus
from doraflow.core.cache import MemoryCache
from doraflow.processor import instruments
from doraflow.processor.consumer import Processor
from tests.integration.processor.conftest import dump, fresh, query
from tests.integration.processor.test_pipeline import config, create_topics, publish, unique_prefix
from tests.testenv.common import free_port
from tests.testenv.postgres import _dsn
from tests.unit.processor import factories as f

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
MakeDatabase = Callable[[], Awaitable[str]]


async def reference_dump(
    make_database: MakeDatabase, events: Sequence[bytes]
) -> dict[str, list[tuple[object, ...]]]:
    """What the events give when stored in one go, in order (the expected end state)."""
    ingest, engine = await fresh(make_database)
    try:
        await ingest(*[events[i : i + 500] for i in range(0, len(events), 500)])
        return await dump(engine)
    finally:
        await engine.dispose()


class ProcessorProcess:
    """`python -m doraflow.processor` as a child process, its output in a log file."""

    def __init__(self, log: Path, env: dict[str, str], port: int | None = None) -> None:
        argv = [sys.executable, "-m", "doraflow.processor"]
        argv += ["--host", "127.0.0.1", "--port", str(port)] if port else ["--no-http"]
        self.log_path = log
        self._log: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=ROOT
        )

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def wait(self, seconds: float) -> int:
        try:
            return self.process.wait(seconds)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no chance to finish anything
        self.wait(30)


async def eventually(check: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


async def test_sigkill_mid_batch_then_restart_loses_and_duplicates_nothing(
    kafka_bootstrap: str,
    migrated_url: str,
    engine: AsyncEngine,
    make_database: MakeDatabase,
    tmp_path: Path,
) -> None:
    prefix = unique_prefix()
    events = [m.value for m in workload(8000, organization=f.ORG, prefix=prefix)]
    expected = await reference_dump(make_database, events)
    bus = create_bus(kafka_bootstrap, linger_ms=2)
    await bus.start()
    try:
        await create_topics(bus, prefix)
        await publish(bus, prefix, events)
    finally:
        await bus.stop()
    env = {
        "DORAFLOW_DATABASE_URL": migrated_url,
        "DORAFLOW_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DORAFLOW_KAFKA_TOPIC_PREFIX": prefix,
        "DORAFLOW_PROCESSOR_BATCH_SIZE": "250",
        "DORAFLOW_PROCESSOR_LINGER_MS": "20",
        "DORAFLOW_LOG_FORMAT": "console",
    }
    total_commits = len(expected["commits"])

    async def commits() -> int:
        ((count,),) = await query(engine, "SELECT count(*) FROM commits")
        assert isinstance(count, int)
        return count

    first = ProcessorProcess(tmp_path / "processor.log", env)
    try:
        await eventually(lambda: commits(), 120, "the first batches")
    finally:
        first.kill()
    stored_at_kill = await commits()
    assert 0 < stored_at_kill < total_commits, "killed too late to be mid-stream"

    port = free_port()
    second = ProcessorProcess(tmp_path / "processor.log", env, port=port)
    try:

        async def caught_up() -> bool:
            return await dump(engine) == expected

        await eventually(caught_up, 240, "the restarted processor to catch up")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ready = await client.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": True, "bus": True}
            assert "doraflow_processor_events_total" in (await client.get("/metrics")).text
    except BaseException:
        second.process.kill()
        print(second.tail())
        raise
    second.process.send_signal(signal.SIGTERM)
    assert second.wait(60) == 0, second.tail()
    assert "processor stopped" in second.tail()


async def test_a_database_outage_pauses_and_resumes_without_loss(
    postgres_url: str,
    migrated_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    make_database: MakeDatabase,
) -> None:
    events = [m.value for m in workload(1200, organization=f.ORG, prefix=f.PREFIX)]
    expected = await reference_dump(make_database, events)
    bus: EventBus = MemoryBus()
    await create_topics(bus, f.PREFIX)
    processor = Processor(config(f.PREFIX, retry_max_seconds=0.5), bus, MemoryCache(), sessions)
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    name = make_url(migrated_url).database
    admin = await asyncpg.connect(_dsn(postgres_url))
    try:
        await publish(bus, f.PREFIX, events[:600])
        await eventually(lambda: processor.events == 600, 60, "the first half")

        retries = instruments.DATABASE_RETRIES._value.get()
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        await publish(bus, f.PREFIX, events[600:])
        await eventually(lambda: instruments.DATABASE_RETRIES._value.get() >= retries + 2, 30, "retries")
        assert processor.events == 600  # nothing acknowledged while the database is away
        assert not task.done()

        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await eventually(lambda: processor.events == len(events), 60, "the second half")
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        stop.set()
        await task
    assert await dump(engine) == expected
