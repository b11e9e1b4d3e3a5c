"""What every Doraflow process exposes (DESIGN.md §1): `/health`, `/ready`, `/metrics`, JSON logs
and a graceful SIGTERM (uvicorn drains requests, then the app's lifespan closes pools and flushes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]


def add_service_endpoints(
    app: FastAPI,
    service: str,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    registry: CollectorRegistry = REGISTRY,
    *,
    optional: frozenset[str] = frozenset(),
) -> None:
    """Liveness, readiness (each dependency reported by name) and Prometheus metrics.

    A check named in `optional` (the API's cache: it serves uncached without Redis) reports
    `degraded` but keeps the process ready, so Kubernetes does not pull pods that still serve."""
    checks = dict(readiness_checks or {})
    started = time.monotonic()

    @app.get("/health", tags=["service"], summary="Liveness")
    async def health() -> dict[str, object]:
        return {"status": "ok", "service": service, "uptime_seconds": round(time.monotonic() - started, 1)}

    @app.get("/ready", tags=["service"], summary="Readiness: every dependency reachable")
    async def ready() -> JSONResponse:
        results = await asyncio.gather(*(_safe(check) for check in checks.values()))
        status = dict(zip(checks, results, strict=True))
        required_ok = all(ok for name, ok in status.items() if name not in optional)
        label = "ready" if all(status.values()) else "degraded" if required_ok else "unavailable"
        return JSONResponse(
            {"status": label, "service": service, "checks": status},
            status_code=200 if required_ok else 503,
        )

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def _safe(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), timeout=2.0)
    except Exception:  # a readiness probe reports failure, it never raises
        logger.warning("readiness check failed", exc_info=True)
        return False


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: it would re-raise SIGTERM after shutting down, so a
    clean stop would look like a crash (exit status -15), and a process that must first finish its
    work (a processor batch, a collector cursor) would be killed before it had."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def stop_on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set `stop`; returns a function that restores the previous handling.
    A no-op outside the main thread (tests run services in threads)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not supported on this platform or loop
            pass

    def restore() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return restore


async def serve(app: FastAPI, host: str, port: int, *, stop: asyncio.Event | None = None) -> None:
    """Serve `app` until `stop` is set — or, without one, until SIGTERM/SIGINT. uvicorn then stops
    accepting, finishes in-flight requests and runs the lifespan shutdown; the process exits 0.
    The one way every Doraflow process serves HTTP."""
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
    server = _QuietServer(config)
    done = stop or asyncio.Event()
    restore = stop_on_signals(done) if stop is None else (lambda: None)
    serving = asyncio.create_task(_serve(server, host, port), name=f"http:{port}")
    stopping = asyncio.create_task(done.wait(), name=f"stop:{port}")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving
    finally:
        stopping.cancel()
        restore()


async def _serve(server: uvicorn.Server, host: str, port: int) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise OSError(f"cannot listen on {host}:{port}") from None
