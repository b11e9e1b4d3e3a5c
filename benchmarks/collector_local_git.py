"""Local git collector: throughput and memory on a generated repository of 100k commits.

    python -m benchmarks.collector_local_git
    DORAFLOW_BENCH_COMMITS=20000 python -m benchmarks.collector_local_git
    DORAFLOW_BENCH_REPO_DIR=/tmp/big python -m benchmarks.collector_local_git   # keep and reuse the repo

The repository is written in one pass by `git fast-import` (not one `git commit` per commit): each
commit rewrites one of 100 small files (so every commit has real `--numstat` lines), every 1000th
is tagged as a release, dates spread over the last 300 days (inside the default horizon).

The collection is the real thing — `CollectorRuntime` + `LocalGitClient`, envelopes built and
serialised for every commit — publishing to a bus that counts and discards, so the numbers are the
collector's and not a broker's (the Kafka path is measured by benchmarks.collector_github). Memory:
the Python process's peak RSS during the collection (the kernel's high-water mark, reset just
before), its RSS after the first 10% of the commits against the end (flat means the streaming
works), and the `git log` subprocess's RSS, sampled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.git.local import LocalGitClient
from doraflow.collectors.runtime import CollectorRuntime, SyncProgress
from doraflow.core.bus import MemoryBus
from doraflow.core.resources import Integration

FILES = 100
TAG_EVERY = 1000


class CountingBus(MemoryBus):
    """Accepts every topic, counts messages and bytes, keeps nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.messages = 0
        self.bytes = 0
        self.checked = 0

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        self.messages += 1
        self.bytes += len(value)
        if self.messages % 997 == 0 and topic.endswith(".git.commits"):
            # Spot-check that the events are real: numstat made it through (+3/-3 or a new file).
            data = orjson.loads(value)["data"]
            assert data["files_changed"] == 1, data
            assert data["additions"] == 3, data
            self.checked += 1


def generate(path: Path, commits: int) -> None:
    """A linear history of `commits` commits and a lightweight release tag every 1000th."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    start = int((datetime.now(UTC) - timedelta(days=300)).timestamp())
    step = max(1, 300 * 86400 // max(commits, 1))
    process = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=path, stdin=subprocess.PIPE)
    assert process.stdin is not None
    chunk: list[bytes] = []
    for n in range(1, commits + 1):
        when = start + n * step
        who = f"Dev {n % 37} <dev{n % 37}@example.com> {when} +0200"
        message = f"Change {n}\n\nTouches file {n % FILES}.\n".encode()
        content = "".join(f"line {n}.{i}\n" for i in range(3)).encode()
        chunk.append(
            b"commit refs/heads/main\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n%s"
            b"M 644 inline src/file_%d.txt\ndata %d\n%s\n"
            % (n, who.encode(), who.encode(), len(message), message, n % FILES, len(content), content)
        )
        if n % TAG_EVERY == 0:
            chunk.append(b"reset refs/tags/v1.%d.0\nfrom :%d\n\n" % (n // TAG_EVERY, n))
        if len(chunk) >= 1000:
            process.stdin.write(b"".join(chunk))
            chunk = []
    process.stdin.write(b"".join(chunk) + b"done\n")
    process.stdin.close()
    if process.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], cwd=path, check=True)


def rss_kib(pid: int | str = "self", field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so the peak covers the collection only."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def children() -> list[int]:
    pids: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids.extend(int(p) for p in (task / "children").read_text().split())
    return pids


async def sample_children(peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for pid in children():
            peak[0] = max(peak[0], rss_kib(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


@contextlib.contextmanager
def repository(commits: int) -> Iterator[Path]:
    keep = os.environ.get("DORAFLOW_BENCH_REPO_DIR")
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="doraflow-bench-git-"))
    path = base / f"repo-{commits}.git"
    try:
        if not (path / "HEAD").exists():
            started = time.perf_counter()
            generate(path, commits)
            print(f"generated {commits} commits with git fast-import in {time.perf_counter() - started:.1f}s")
        yield path
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


async def collect(path: Path, commits: int) -> None:
    integration = Integration.model_validate(
        {
            "metadata": {"name": "bench", "namespace": "bench"},
            "spec": {
                "organizationRef": {"name": "bench"},
                "provider": "git",
                "scope": {"repositories": [str(path)]},
                "backfillDays": 365,
            },
        }
    )
    bus = CountingBus()
    await bus.start()
    rss_at_tenth: list[int] = []

    def progress(update: SyncProgress) -> None:
        if not rss_at_tenth and update.events >= commits // 10:
            rss_at_tenth.append(rss_kib())

    runtime = CollectorRuntime(
        integration,
        LocalGitClient(integration, None),
        bus,
        MemoryCursorStore(),
        organization="bench",
        topic_prefix="bench",
        progress=progress,
    )
    await runtime.ensure_topics()
    exact_peak = reset_peak_rss()
    git_peak = [0]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_children(git_peak, stop))
    started = time.perf_counter()
    (commits_round,) = await runtime.sync_once("commits")
    commit_seconds = time.perf_counter() - started
    rss_end = rss_kib()
    started = time.perf_counter()
    (deploy_round,) = await runtime.sync_once("deployments")
    deploy_seconds = time.perf_counter() - started
    stop.set()
    await sampler
    peak = rss_kib(field="VmHWM")
    started = time.perf_counter()
    again = await runtime.sync_once()
    again_seconds = time.perf_counter() - started

    assert commits_round.events == commits, commits_round
    assert sum(r.events for r in again) == 0
    assert bus.checked > 0
    print(
        f"commits: {commits_round.events} in {commit_seconds:.1f}s = "
        f"{commits_round.events / commit_seconds:,.0f} commits/s "
        f"({bus.bytes / max(bus.messages, 1):,.0f} bytes per event)"
    )
    print(
        f"deployments: {deploy_round.events} release tags in {deploy_seconds:.1f}s "
        f"(each with the commits it shipped)"
    )
    print(f"second sync (nothing new): {again_seconds:.2f}s")
    print(
        f"collector RSS: {rss_at_tenth[0] / 1024 if rss_at_tenth else 0:.0f} MiB after 10% of the commits, "
        f"{rss_end / 1024:.0f} MiB at the end; peak {peak / 1024:.0f} MiB"
        + ("" if exact_peak else " (process-lifetime peak: clear_refs unavailable)")
    )
    print(f"git log subprocess RSS (sampled): peak {git_peak[0] / 1024:.0f} MiB")


def main(argv: Sequence[str] | None = None) -> int:
    commits = int(os.environ.get("DORAFLOW_BENCH_COMMITS", "100000"))
    with repository(commits) as path:
        asyncio.run(collect(path, commits))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
