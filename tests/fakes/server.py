"""Run an ASGI app (a provider fake) on a free loopback port in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.testenv.common import free_port, port_open, wait_until


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Yield the base URL (`http://127.0.0.1:PORT`) while `app` serves; stop it afterwards.

    A thread with its own event loop keeps the fake independent of the test's loop, so a test can
    block on it (or kill the code under test) without deadlocking the server.
    """
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: port_open(port), 10, "fake provider server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
