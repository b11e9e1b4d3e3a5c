"""Process, port and readiness helpers shared by every test server fixture."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NoReturn

import pytest


def cache_dir() -> Path:
    """Where `scripts/testenv` keeps what is slow to obtain (jars, binaries)."""
    return Path(os.environ.get("DORAFLOW_CACHE", Path.home() / ".cache" / "doraflow"))


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it, so parallel runs don't collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class ProcessExitedError(RuntimeError):
    """A server process died while we waited for it: no point in waiting any longer."""


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `predicate` until it is true; fail with `what` in the message after `timeout` seconds,
    or at once when the predicate reports that the process it waits for has exited."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except ProcessExitedError:
            raise
        except Exception as exc:  # readiness probes fail in many ways until the server is up
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last_error!r})")


def unavailable(reason: str) -> NoReturn:
    """A component the test needs cannot be had: skip locally, fail loudly in CI.

    CI must never go green by skipping the integration tests that prove the real servers work.
    """
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"required test component unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


class ManagedProcess:
    """A server subprocess with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # its own process group, so stop() reaches its children too
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> bool:
        """True while running; raises `ProcessExitedError` (which stops `wait_until`) once it exited."""
        if not self.alive():
            raise ProcessExitedError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
        return True

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        self._log.close()
