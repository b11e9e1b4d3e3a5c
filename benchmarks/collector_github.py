"""GitHub collector: API calls and wall time for 10k pull requests with reviews and 100k commits,
GraphQL (the real client) versus a naive REST walk, and events/s published to Kafka.

    python -m benchmarks.collector_github
    DORAFLOW_BENCH_PRS=2000 DORAFLOW_BENCH_COMMITS=20000 python -m benchmarks.collector_github
    DORAFLOW_BENCH_REPOS=1 ...        # one repository holding everything (default 4)
    DORAFLOW_BENCH_NAIVE=0 ...        # skip the naive REST walk (it makes ~2 calls per pull request)
    DORAFLOW_BENCH_BUS=memory ...     # publish to the in-process MemoryBus instead of Kafka

The fake GitHub (tests/fakes/github.py) serves an organization generated with realistic proportions
(1-6 commits and 0-5 reviews per pull request, every 400th with 150 commits and every 500th with 60
reviews, which the client must page separately). Calls are counted on the server, so retries count.

* **GraphQL**: `GitHubClient` collects pull requests (with reviews, commits, merge info) and commits
  of every repository, 4 repositories at a time, and publishes each batch as envelopes to the bus,
  flushing after every batch before taking the next (the runtime's cursor discipline).
* **Naive REST**: list pull requests (100 a page), then per pull request one call for its reviews
  and one for its commits (needed for commit SHAs and the first commit date); commits from the
  commit listing, which has no additions/deletions — those would take one more call per commit
  (counted, not made).

Kafka: a broker started from the test environment's cache (tests/testenv/kafka.py), or the one named
by `DORAFLOW_TEST_KAFKA_BOOTSTRAP`; without either, the in-process MemoryBus, and the output says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from doraflow.collectors.base import Batch, Resource, ScopeRef
from doraflow.collectors.git.github import GitHubClient
from doraflow.core.bus import EventBus, MemoryBus, TopicSpec, create_bus
from doraflow.core.events import CodeReviewData, PullRequestData, make_event, message_key, organization_topics
from doraflow.core.http import HttpClient
from doraflow.core.resources import Integration
from tests.fakes.github import FakeGitHub, create_app, generate
from tests.fakes.server import serve_in_thread
from tests.testenv.kafka import BOOTSTRAP_ENV, kafka_home, start_broker

TOKEN = "ghp_bench"
ORGANIZATION = "bench"
PREFIX = "doraflowbench"
TARGET_CALLS_PER_1000_PRS = 15
TARGET_EVENTS_PER_SECOND = 2000
CONCURRENCY = 4


@dataclass
class Phase:
    calls: int = 0
    seconds: float = 0.0
    events: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def kafka() -> Iterator[str | None]:
    """A Kafka bootstrap address, or None (then the MemoryBus is used)."""
    if os.environ.get("DORAFLOW_BENCH_BUS") == "memory":
        yield None
        return
    bootstrap = os.environ.get(BOOTSTRAP_ENV)
    if bootstrap:
        yield bootstrap
        return
    home = kafka_home()
    if home is None:
        yield None
        return
    work = Path(tempfile.mkdtemp(prefix="doraflow-bench-kafka-"))
    broker, bootstrap = start_broker(home, work)
    try:
        yield bootstrap
    finally:
        broker.stop(30)
        shutil.rmtree(work, ignore_errors=True)


def integration(url: str) -> Integration:
    return Integration.model_validate(
        {
            "apiVersion": "doraflow.dev/v1alpha1",
            "kind": "Integration",
            "metadata": {"name": "github", "namespace": "bench"},
            "spec": {
                "organizationRef": {"name": ORGANIZATION},
                "provider": "github",
                "baseUrl": f"{url}/api/v3",
                "credentialsSecretRef": {"name": "github-token"},
                "scope": {"repositories": [f"{ORGANIZATION}/*"]},
                "maxConcurrency": CONCURRENCY,
            },
        }
    )


def calls_since(fake: FakeGitHub, before: dict[str, int]) -> dict[str, int]:
    return {key: n - before.get(key, 0) for key, n in fake.calls.items() if n - before.get(key, 0)}


async def graphql_run(fake: FakeGitHub, url: str, bus: EventBus) -> tuple[Phase, Phase, int, int]:
    """Collect pull requests, then commits, of every repository; publish each batch."""
    github = GitHubClient(integration(url), TOKEN)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    pull_requests = reviews = 0

    async def publish(batch: Batch) -> None:
        for data in batch.events:
            envelope = make_event(
                data, organization=ORGANIZATION, integration="bench/github", source="github"
            )
            await bus.publish(envelope.topic(PREFIX), message_key(envelope, data), envelope.to_bytes())
        await bus.flush()

    async def collect(scope: ScopeRef, resource: Resource) -> int:
        nonlocal pull_requests, reviews
        count = 0
        async with semaphore:
            async for batch in github.collect(scope, resource, None):
                await publish(batch)
                count += len(batch.events)
                pull_requests += sum(1 for e in batch.events if isinstance(e, PullRequestData))
                reviews += sum(1 for e in batch.events if isinstance(e, CodeReviewData))
        return count

    try:
        phases = []
        scopes = await github.list_scopes()
        for resource in (Resource.PULL_REQUESTS, Resource.COMMITS):
            before = dict(fake.calls)
            started = time.perf_counter()
            counts = await asyncio.gather(*(collect(scope, resource) for scope in scopes))
            seconds = time.perf_counter() - started
            breakdown = calls_since(fake, before)
            phases.append(Phase(sum(breakdown.values()), seconds, sum(counts), breakdown))
    finally:
        await github.aclose()
    return phases[0], phases[1], pull_requests, reviews


async def naive_rest_run(url: str, repositories: Sequence[str], fake: FakeGitHub) -> tuple[Phase, Phase]:
    """The walk a REST-only collector does: per pull request, its reviews and its commits."""
    http = HttpClient(
        f"{url}/api/v3",
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"},
        max_concurrency=8,
    )

    async def pages(path: str, params: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        async for response in http.paginate_links(path, params=params):
            items.extend(response.json())
        return items

    async def pull_details(full_name: str, number: int) -> int:
        reviews = await pages(f"/repos/{full_name}/pulls/{number}/reviews", {"per_page": 100})
        commits = await pages(f"/repos/{full_name}/pulls/{number}/commits", {"per_page": 100})
        return 1 + len(reviews) + len(commits)

    try:
        before = dict(fake.calls)
        started = time.perf_counter()
        items = 0
        for full_name in repositories:
            async for response in http.paginate_links(
                f"/repos/{full_name}/pulls",
                params={"state": "all", "sort": "updated", "direction": "desc", "per_page": 100},
            ):
                numbers = [pull["number"] for pull in response.json()]
                items += sum(await asyncio.gather(*(pull_details(full_name, n) for n in numbers)))
        pulls = Phase(0, time.perf_counter() - started, items, calls_since(fake, before))
        pulls.calls = sum(pulls.breakdown.values())

        before = dict(fake.calls)
        started = time.perf_counter()
        commits = 0
        for full_name in repositories:
            commits += len(await pages(f"/repos/{full_name}/commits", {"per_page": 100}))
        listing = Phase(0, time.perf_counter() - started, commits, calls_since(fake, before))
        listing.calls = sum(listing.breakdown.values())
    finally:
        await http.aclose()
    return pulls, listing


async def run(
    url: str, fake: FakeGitHub, repositories: list[str], bootstrap: str | None, naive: bool
) -> None:
    bus: EventBus = create_bus(bootstrap, linger_ms=5, max_in_flight=20_000) if bootstrap else MemoryBus()
    await bus.start()
    try:
        await bus.ensure_topics(
            [
                TopicSpec(name, partitions=10, replication_factor=1)
                for name in organization_topics(PREFIX, ORGANIZATION)
            ]
        )
        pr_phase, commit_phase, pull_requests, reviews = await graphql_run(fake, url, bus)
    finally:
        await bus.stop()
    bus_name = (
        f"Kafka at {bootstrap} (10 partitions, acks=all)" if bootstrap else "in-process MemoryBus (no Kafka)"
    )
    per_k = pr_phase.calls / (pull_requests / 1000)
    events = pr_phase.events + commit_phase.events
    seconds = pr_phase.seconds + commit_phase.seconds
    print(
        f"data:        {pull_requests:,} pull requests, {reviews:,} reviews, {commit_phase.events:,} commits"
    )
    print(
        f"             in {len(repositories)} repositories ({CONCURRENCY} at a time), fake GitHub on loopback"
    )
    print("GraphQL client (real GitHubClient, publishing every batch):")
    print(
        f"  pull requests+reviews: {pr_phase.calls:>7,} calls  {per_k:6.1f} calls/1,000 PRs "
        f"(target ≤ {TARGET_CALLS_PER_1000_PRS})  {pr_phase.seconds:6.1f}s  {pr_phase.breakdown}"
    )
    print(
        f"  commits:               {commit_phase.calls:>7,} calls  "
        f"{commit_phase.calls / (commit_phase.events / 1000):6.1f} calls/1,000 commits  "
        f"{commit_phase.seconds:6.1f}s"
    )
    print(
        f"  published:             {events:,} events in {seconds:.1f}s = {events / seconds:,.0f} events/s "
        f"end to end (collect + envelope + publish + flush per batch; target ≥ {TARGET_EVENTS_PER_SECOND:,}) "
        f"to {bus_name}"
    )
    if naive:
        pulls, listing = await naive_rest_run(url, repositories, fake)
        print("Naive REST walk (list, then per PR: reviews + commits):")
        print(
            f"  pull requests+reviews: {pulls.calls:>7,} calls  {pulls.calls / (pull_requests / 1000):6.1f} "
            f"calls/1,000 PRs  {pulls.seconds:6.1f}s"
        )
        print(f"                         {pulls.breakdown}")
        print(
            f"  commits (no stats):    {listing.calls:>7,} calls  {listing.seconds:6.1f}s  "
            f"(+{listing.events:,} calls, one per commit, for additions/deletions — not made)"
        )
        print(
            f"  ratio:                 REST needs {pulls.calls / pr_phase.calls:.0f}x the calls of GraphQL "
            f"for pull requests with reviews"
        )
    ok = per_k <= TARGET_CALLS_PER_1000_PRS and events / seconds >= TARGET_EVENTS_PER_SECOND
    print("result:      " + ("meets the targets" if ok else "BELOW TARGET"), flush=True)


def main() -> int:
    pulls = int(os.environ.get("DORAFLOW_BENCH_PRS", "10000"))
    commits = int(os.environ.get("DORAFLOW_BENCH_COMMITS", "100000"))
    repos = int(os.environ.get("DORAFLOW_BENCH_REPOS", "4"))
    naive = os.environ.get("DORAFLOW_BENCH_NAIVE", "1") != "0"
    fake = FakeGitHub(token=TOKEN, rate_limit=10**9)
    started = time.perf_counter()
    generated = generate(
        fake, org=ORGANIZATION, repos=repos, pulls=pulls, commits=commits, now=datetime.now(UTC)
    )
    print(f"generated the organization in {time.perf_counter() - started:.1f}s", flush=True)
    repositories = [repo.full_name for repo in generated]
    with kafka() as bootstrap, serve_in_thread(create_app(fake)) as url:
        asyncio.run(run(url, fake, repositories, bootstrap, naive))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
