"""`doraflow up` registering the file's organizations against a real PostgreSQL: every start makes
the organization's teams exactly its `spec.teams`, as the operator's sync does on every reconcile —
declared teams gone from the file are removed, a team made through the API stays, and a
declaration the API refuses stops start-up with its explanation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import select

from doraflow.core import migrate
from doraflow.core.bus import MemoryBus
from doraflow.core.cache import create_cache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.models import Team
from doraflow.core.resources import Organization, ResourceError
from doraflow.core.settings import Settings
from doraflow.embedded import Embedded, Plan, Sessions

pytestmark = pytest.mark.integration

CORE = {"slug": "core", "name": "Core", "members": ["ana@acme.io"], "repositories": ["acme/*"]}
WEB = {"slug": "web", "name": "Web", "members": ["github:bo"]}


def acme(*teams: Mapping[str, object]) -> Organization:
    return Organization.model_validate(
        {
            "apiVersion": "doraflow.dev/v1alpha1",
            "kind": "Organization",
            "metadata": {"name": "acme"},
            "spec": {"displayName": "Acme", "teams": list(teams)},
        }
    )


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(Settings(), url=database_url)
    await migrate.upgrade(engine)
    yield create_session_factory(engine)
    await engine.dispose()


async def test_every_start_syncs_the_files_teams(sessions: Sessions, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_secret_key="test-secret")
    bus, cache = MemoryBus(), create_cache(None)
    await bus.start()
    said: list[str] = []

    async def start(organization: Organization) -> None:
        embedded = Embedded(settings, Plan([organization], []), "127.0.0.1", 0, said.append)
        await embedded._register(bus, cache, sessions)

    async def teams() -> dict[str, str | None]:
        async with sessions() as session:
            return dict((await session.execute(select(Team.slug, Team.managed_by))).all())

    await start(acme(CORE, WEB))
    assert await teams() == {"core": "Organization default/acme", "web": "Organization default/acme"}
    assert "doraflow: acme: 2 teams from spec.teams — repositories linked once collected: acme/*" in said

    async with sessions() as session:
        [organization_id] = {team.organization_id for team in await session.scalars(select(Team))}
        session.add(Team(organization_id=organization_id, name="Ad hoc", slug="adhoc"))
        await session.commit()
    await start(acme(CORE))
    assert await teams() == {"core": "Organization default/acme", "adhoc": None}
    assert said[-1].startswith("doraflow: acme: 1 team from spec.teams — removed web")

    with pytest.raises(ResourceError, match=r"^Organization default/acme: spec\.teams: .*repeated: core"):
        await start(acme(CORE, CORE))
    await bus.stop()
