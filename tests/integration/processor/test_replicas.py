"""Replicas storing at the same time: the two sides of a link stored concurrently, by different
processes, must still meet (each side is computed from what is committed when it runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import asyncpg
import pytest

from doraflow.core.events import EventData
from doraflow.processor import storage
from doraflow.processor.entities import Lookups
from doraflow.processor.transform import build_plan
from doraflow.processor.validation import Accepted, validate
from tests.integration.processor.conftest import dump, fresh, lead_time_mismatches
from tests.integration.processor.test_storage import git_history
from tests.testenv.postgres import _dsn
from tests.unit.processor import factories as f

pytestmark = pytest.mark.integration

MakeDatabase = Callable[[], Awaitable[str]]


class Replica:
    """A processor's connection and entity memory."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.lookups = Lookups()

    async def store(self, events: Sequence[EventData], organization: str = f.ORG) -> None:
        """One batch, stored in the transaction the caller has opened and will commit."""
        accepted = []
        for offset, event in enumerate(events):
            outcome = validate(f.message(event, offset=offset, organization=organization), f.PREFIX)
            assert isinstance(outcome, Accepted), outcome
            accepted.append(outcome)
        await storage.store(
            self.connection, build_plan(accepted), lookups=self.lookups, attribution_window=timedelta(days=7)
        )

    async def store_committed(self, events: Sequence[EventData], organization: str = f.ORG) -> None:
        async with self.connection.transaction():
            await self.store(events, organization)
        self.lookups.commit()


# The organization, repository and people of `git_history`: once a replica knows them it writes
# no shared entity row, so nothing but the organization lock can make one replica wait for another.
PRELUDE: list[EventData] = [
    f.commit(99),
    f.commit(98, author=f.person(0)),
    f.review(97, "r-0"),
]


@pytest.mark.parametrize("first", ["deployments", "commits"])
async def test_concurrent_replicas_still_link_deployments_and_commits(
    make_database: MakeDatabase, first: str
) -> None:
    history = git_history()
    facts = history["commits"] + history["prs"]
    shipping = history["deployments"] + history["incidents"]
    one, other = (shipping, facts) if first == "deployments" else (facts, shipping)
    reference_ingest, reference = await fresh(make_database)
    concurrent_ingest, concurrent = await fresh(make_database)
    replica_a = Replica(await asyncpg.connect(_dsn(concurrent_ingest.url)))
    replica_b = Replica(await asyncpg.connect(_dsn(concurrent_ingest.url)))
    try:
        await reference_ingest(PRELUDE, facts, shipping)
        await replica_a.store_committed(PRELUDE)
        await replica_b.store_committed(PRELUDE)

        batch_a = replica_a.connection.transaction()
        await batch_a.start()
        await replica_a.store(one)
        batch_b = replica_b.connection.transaction()
        await batch_b.start()
        second = asyncio.create_task(replica_b.store(other))
        await asyncio.sleep(0.5)
        # replica B waits for A's batch: it must see A's rows to compute its side of the links
        assert not second.done()
        await batch_a.commit()
        await asyncio.wait_for(second, timeout=30)
        await batch_b.commit()

        assert await dump(concurrent) == await dump(reference)
        assert await lead_time_mismatches(concurrent_ingest.url) == []
    finally:
        await replica_a.connection.close()
        await replica_b.connection.close()
        await reference.dispose()
        await concurrent.dispose()


async def test_replicas_of_different_organizations_do_not_wait_for_each_other(
    make_database: MakeDatabase,
) -> None:
    ingest, engine = await fresh(make_database)
    replica_a = Replica(await asyncpg.connect(_dsn(ingest.url)))
    replica_b = Replica(await asyncpg.connect(_dsn(ingest.url)))
    try:
        await replica_a.store_committed([f.commit(1)], organization="acme")
        await replica_b.store_committed([f.commit(1)], organization="globex")
        async with replica_a.connection.transaction():
            await replica_a.store([f.commit(2)], organization="acme")
            async with replica_b.connection.transaction():
                await asyncio.wait_for(replica_b.store([f.commit(3)], organization="globex"), timeout=10)
    finally:
        await replica_a.connection.close()
        await replica_b.connection.close()
        await engine.dispose()
