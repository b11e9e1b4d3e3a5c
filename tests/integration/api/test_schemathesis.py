"""Property-based fuzzing of our own OpenAPI schema (schemathesis): whatever the input — valid,
invalid, absurd — the API answers without a 5xx.

Bounded to keep the suite fast: a fixed number of examples per operation (a few hundred requests
in all), derandomised so a failure reproduces. Runs with a valid admin key (so requests get past
authentication into validation and the services) against a real, seeded PostgreSQL. The app runs
in schemathesis' ASGI client, which has its own event loop, hence the pool-less engine and the
in-process cache.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from doraflow.api import create_app
from doraflow.api.auth import KeyHasher
from doraflow.api.ratelimit import RateLimits
from doraflow.api.services.organizations import bootstrap_organization
from doraflow.core import migrate
from doraflow.core.bus import MemoryBus, TopicSpec
from doraflow.core.cache import MemoryCache
from doraflow.core.events import organization_topics
from doraflow.core.settings import Settings
from tests.integration.api.dataset import seed_dataset

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def fuzz_target(database_url: str) -> Iterator[tuple[Any, str]]:
    settings_ = Settings(api_secret_key="fuzz-secret", cache_ttl_seconds=60)
    engine = create_async_engine(database_url, poolclass=NullPool)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    bus = MemoryBus()

    async def prepare() -> str:
        await migrate.upgrade(engine)
        async with factory() as session:
            registration = await bootstrap_organization(
                session, KeyHasher.from_settings(settings_), name="Fuzz", slug="fuzz"
            )
        assert registration.admin_key is not None
        await seed_dataset(factory, registration.organization.id, days=20, prs_per_repo_per_week=2)
        await bus.ensure_topics([TopicSpec(t, partitions=1) for t in organization_topics("doraflow", "fuzz")])
        return registration.admin_key.secret

    key = asyncio.run(prepare())
    app = create_app(
        settings_, factory, MemoryCache(), bus, rate_limits=RateLimits(per_ip=1_000_000, per_key=1_000_000)
    )
    yield app, key
    asyncio.run(engine.dispose())


def test_no_input_causes_a_server_error(fuzz_target: tuple[Any, str]) -> None:
    """Each operation gets positive (schema-valid) and negative (schema-violating) examples.

    Driven through schemathesis' strategies and Hypothesis directly rather than its pytest plugin
    (`schemathesis.pytest.from_fixture`), which does not work with pytest 9 yet.
    """
    app, key = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    calls = 0

    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # our own schema is valid
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_OPERATION // 2,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                # Keep the admin key usable: revoking it would end the run early (it is refused
                # anyway, as the last admin key, with 409).
                if case.method == "DELETE" and "key_id" in (case.path_parameters or {}):
                    case.path_parameters = {"key_id": str(uuid.uuid4())}
                response = case.call(headers=headers)
                calls += 1
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r} "
                        f"-> {response.status_code} {response.text[:300]}"
                    )

            try:
                run()
            except Unsatisfiable:  # e.g. no way to violate the schema of a parameterless GET
                continue
    assert calls >= 200
    assert failures == []
