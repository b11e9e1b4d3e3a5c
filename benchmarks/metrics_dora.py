"""DORA report latency on the issue's dataset: 1M commits, 100k PRs, 20k deployments, 2k incidents.

`python -m benchmarks.metrics_dora` generates the dataset (`benchmarks.datasets`) into a freshly
migrated database on the test PostgreSQL (a pgserver in a temporary directory, or the server of
`DORAFLOW_TEST_DATABASE_URL`), then times `doraflow.metrics.dora_report` -- all six DORA metrics
with tiers -- for a 90-day window ending at the dataset's end: the organization scope and every
team scope, each at least `--runs` times, and prints p50/p95 against the 100 ms target.

"Uncached" means what the API sees without its Redis cache: every run opens a new session and
computes everything from the tables; PostgreSQL's buffer cache is warm, as it is in production.
The runs are done with the lead-time query on a second connection (the default) and, for
comparison, on the session's connection only (`parallel=False`).

`--database-url URL` reuses a database a previous run kept (`--keep`), skipping the minute the
dataset takes to build. The machine's load average is printed before and after: the numbers are
only comparable at a similar load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks.datasets import DatasetSpec, provision, server_url
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.settings import Settings
from doraflow.metrics import MetricScope, Window, dora_report, leadtime
from doraflow.metrics.loaders import Database, resolve_scope

TARGET_MS = 100.0


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def summary(samples: Sequence[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  "
        f"min {ordered[0]:6.1f} ms  max {ordered[-1]:6.1f} ms  (n={len(ordered)})"
    )


async def time_reports(
    sessions: async_sessionmaker[AsyncSession],
    organization_id: uuid.UUID,
    scopes: Sequence[MetricScope],
    window: Window,
    runs: int,
    *,
    parallel: bool,
) -> list[float]:
    """Milliseconds per `dora_report`, cycling through ``scopes`` until ``runs`` per scope."""
    samples: list[float] = []
    for _ in range(runs):
        for scope in scopes:
            async with sessions() as session:
                started = time.perf_counter()
                report = await dora_report(
                    session, organization_id=organization_id, scope=scope, window=window, parallel=parallel
                )
                samples.append((time.perf_counter() - started) * 1000)
            assert report.metrics["lead_time_for_changes"].value is not None
    return samples


async def explain(
    sessions: async_sessionmaker[AsyncSession], organization_id: uuid.UUID, window: Window
) -> None:
    """The plans of the two large queries (lead time, deployed pull requests), with timings."""
    async with sessions() as session:
        db = await Database.of(session)
        scope = await resolve_scope(db, organization_id, MetricScope.organization())
        for label, template, column in (
            ("lead time", leadtime._LEAD_TIME_SQL, "c.first_deployed_at"),
            ("deployed pull requests", leadtime._PULL_REQUEST_TIMES_SQL, "p.first_deployed_at"),
        ):
            query = leadtime._query(template, column, 1)
            rows = await db.fetch(
                "EXPLAIN (ANALYZE, BUFFERS) " + query, *leadtime._arguments(scope, [window], [0])
            )
            print(f"plan, {label}:")
            for (line,) in rows:
                if "Filter:" not in line and "Index Cond:" not in line:
                    print(f"    {line}")


async def benchmark(url: str, spec: DatasetSpec, runs: int, *, show_plans: bool = False) -> None:
    engine = create_engine(Settings(), url=url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            db = await Database.of(session)
            organization_id = (await db.fetch("SELECT id FROM organizations WHERE slug = $1", spec.slug))[0][
                0
            ]
            teams = [
                row[0]
                for row in await db.fetch(
                    "SELECT id FROM teams WHERE organization_id = $1 ORDER BY slug", organization_id
                )
            ]
            counts = {
                table: (await db.fetch(f"SELECT count(*) FROM {table}"))[0][0]  # noqa: S608 - fixed names
                for table in ("commits", "pull_requests", "deployments", "incidents")
            }
        print("dataset: " + ", ".join(f"{count:,} {table}" for table, count in counts.items()), flush=True)
        window = Window(spec.end - timedelta(days=90), spec.end)
        organization = [MetricScope.organization()]
        team_scopes = [MetricScope.team(team) for team in teams]

        async with sessions() as session:
            report = await dora_report(
                session, organization_id=organization_id, scope=organization[0], window=window
            )
        for name, result in report.metrics.items():
            tier = result.tier.value if result.tier else "-"
            print(f"  {name:34s} value {result.value!s:22.22s} tier {tier:6s} sample {result.sample_size:,}")

        await time_reports(
            sessions, organization_id, organization + team_scopes, window, 2, parallel=True
        )  # warm-up
        if show_plans:
            await explain(sessions, organization_id, window)
        print(f"load average before: {load_average()}", flush=True)
        results: dict[str, list[float]] = {}
        for parallel in (True, False):
            mode = "parallel" if parallel else "single connection"
            results[f"organization, {mode}"] = await time_reports(
                sessions, organization_id, organization, window, runs, parallel=parallel
            )
            results[f"team ({len(teams)} teams), {mode}"] = await time_reports(
                sessions, organization_id, team_scopes, window, max(runs // len(teams), 4), parallel=parallel
            )
        print(f"load average after:  {load_average()}")
        print(f"dora_report, 90-day window, all six metrics with tiers (target p50 <= {TARGET_MS:.0f} ms):")
        for label, samples in results.items():
            print(f"  {label:38s} {summary(samples)}")
    finally:
        await engine.dispose()


async def drop_database(server: str, url: str) -> None:
    connection = await asyncpg.connect(make_url(server).set(drivername="postgresql").render_as_string(False))
    try:
        name = make_url(url).database
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def run(arguments: argparse.Namespace) -> None:
    spec = DatasetSpec()
    if arguments.database_url:
        await benchmark(arguments.database_url, spec, arguments.runs, show_plans=arguments.explain)
        return
    async with server_url() as server:
        started = time.perf_counter()
        provisioned = await provision(server, [spec])
        print(
            f"dataset ready in {time.perf_counter() - started:.0f} s ("
            + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in provisioned.timings.items())
            + ")",
            flush=True,
        )
        try:
            await benchmark(provisioned.url, spec, arguments.runs, show_plans=arguments.explain)
        finally:
            if arguments.keep:
                print(f"kept: {provisioned.url} (a pgserver started here stops with this process)")
            else:
                await drop_database(server, provisioned.url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=25, help="runs per mode for the organization scope")
    parser.add_argument("--database-url", help="an existing database holding the dataset (skip generation)")
    parser.add_argument("--explain", action="store_true", help="print the plans of the large queries")
    parser.add_argument("--keep", action="store_true", help="print the database URL instead of forgetting it")
    # `python -m benchmarks` calls main() with no arguments (its own argv names benchmarks).
    arguments = parser.parse_args(argv if argv is not None else [])
    asyncio.run(run(arguments))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
