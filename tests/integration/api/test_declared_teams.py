"""Teams declared by an `Organization` resource, synced by the operator with the service token:
creation by slug, members by email or username (placeholders the processor later merges),
repositories by name or glob (linked when collected later), removal of teams no longer declared,
idempotence, authentication and cache invalidation."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from doraflow.core.events import PersonRef
from doraflow.core.globs import glob_match, glob_postgres_regex
from doraflow.core.models import (
    Developer,
    DeveloperIdentity,
    Repository,
    TeamRepository,
    natural_id,
)
from doraflow.processor.entities import Lookups, OrganizationInfo, developers
from doraflow.processor.identity import PersonKey
from tests.integration.api.conftest import SERVICE_TOKEN, Api, Org, bearer
from tests.unit.core.test_globs import NAMES, PATTERNS

pytestmark = pytest.mark.integration

MANAGER = "Organization team-a/acme"


async def sync(api: Api, org: Org, teams: list[dict[str, Any]], status: int = 200) -> dict[str, Any]:
    response = await api.client.put(
        f"/api/v1/organizations/{org.id}/teams",
        json={"managed_by": MANAGER, "teams": teams},
        headers=bearer(SERVICE_TOKEN),
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_repository(api: Api, org: Org, name: str) -> uuid.UUID:
    """A repository as the processor stores it when its first event arrives."""
    repository_id = uuid.uuid4()
    async with api.factory() as session:
        session.add(
            Repository(
                id=repository_id, organization_id=org.id, name=name, provider="github", provider_id=name
            )
        )
        await session.commit()
    return repository_id


async def add_developer(api: Api, org: Org, email: str, **columns: Any) -> uuid.UUID:
    developer_id = uuid.uuid4()
    async with api.factory() as session:
        session.add(Developer(id=developer_id, organization_id=org.id, email=email, **columns))
        await session.commit()
    return developer_id


async def team_detail(api: Api, org: Org, slug: str) -> dict[str, Any]:
    teams = (await api.client.get("/api/v1/teams", params={"q": slug}, headers=org.headers)).json()["items"]
    (summary,) = [team for team in teams if team["slug"] == slug]
    response = await api.client.get(f"/api/v1/teams/{summary['id']}", headers=org.headers)
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def snapshot(api: Api, org: Org) -> tuple[Any, ...]:
    """Everything a sync may change, to compare before and after."""
    async with api.factory() as session:
        statements = [
            "SELECT id, slug, name, managed_by FROM teams WHERE organization_id = :org",
            "SELECT tm.team_id, tm.developer_id, tm.role FROM team_members tm"
            " JOIN teams t ON t.id = tm.team_id WHERE t.organization_id = :org",
            "SELECT tr.team_id, tr.repository_id FROM team_repositories tr"
            " JOIN teams t ON t.id = tr.team_id WHERE t.organization_id = :org",
            "SELECT team_id, pattern, name_regex FROM team_repository_patterns WHERE organization_id = :org",
            "SELECT id, email, name FROM developers WHERE organization_id = :org",
            "SELECT kind, value, developer_id FROM developer_identities WHERE organization_id = :org",
        ]
        state = []
        for statement in statements:
            rows = await session.execute(text(statement), {"org": org.id})
            state.append(sorted((tuple(row) for row in rows), key=str))
        return tuple(state)


async def linked(api: Api, team_id: str) -> set[uuid.UUID]:
    """The team's repositories in the database (the team's JSON may be cached for a while; the
    processor drops it when the new repository's data lands)."""
    async with api.factory() as session:
        rows = await session.scalars(
            select(TeamRepository.repository_id).where(TeamRepository.team_id == uuid.UUID(team_id))
        )
        return set(rows)


async def test_declared_teams_are_created_with_members_and_repositories(api: Api) -> None:
    org = await api.new_org()
    ana = await add_developer(api, org, "ana@acme.io", name="Ana")
    bo = await add_developer(api, org, "bo@acme.io", github_username="bo-gh")
    api_repo = await add_repository(api, org, "acme/api")
    payments = await add_repository(api, org, "acme/payments-core")
    await add_repository(api, org, "acme/web")

    body = await sync(
        api,
        org,
        [
            {
                "slug": "payments",
                "name": "Payments",
                "members": ["Ana@Acme.io", "github:bo-gh", "chen@acme.io", "dana"],
                "repositories": ["acme/payments-*", "ACME/API", "acme/ledger"],
            },
            {"slug": "platform", "name": "Platform", "members": ["ana@acme.io"], "repositories": []},
        ],
    )
    assert body["changed"] is True
    assert body["created_developers"] == 2  # chen (by email) and dana (a placeholder)
    by_slug = {team["slug"]: team for team in body["teams"]}
    assert by_slug["payments"]["created"] is True
    assert (by_slug["payments"]["member_count"], by_slug["payments"]["repository_count"]) == (4, 2)
    assert by_slug["payments"]["waiting_repositories"] == ["acme/ledger"]
    assert by_slug["payments"]["ambiguous_members"] == []

    detail = await team_detail(api, org, "payments")
    assert detail["managed_by"] == MANAGER
    assert detail["name"] == "Payments"
    members = {member["email"]: member["developer_id"] for member in detail["members"]}
    assert members["ana@acme.io"] == str(ana)
    assert members["bo@acme.io"] == str(bo)
    assert "chen@acme.io" in members
    assert "dana@users.noreply.github" in members  # the processor's placeholder for a login
    assert {repo["repository_id"] for repo in detail["repositories"]} == {str(api_repo), str(payments)}

    async with api.factory() as session:
        dana = uuid.UUID(members["dana@users.noreply.github"])
        rows = await session.execute(
            select(DeveloperIdentity.kind, DeveloperIdentity.value).where(
                DeveloperIdentity.developer_id == dana
            )
        )
        identities = {(kind, value) for kind, value in rows}
        assert identities == {("github", "dana"), ("gitlab", "dana"), ("bitbucket", "dana")}
        chen = await session.get(Developer, uuid.UUID(members["chen@acme.io"]))
        assert chen is not None
        assert chen.id == natural_id("developer", org.id, "chen@acme.io")  # the processor's id for it


async def test_syncing_twice_changes_nothing(api: Api) -> None:
    org = await api.new_org()
    await add_repository(api, org, "acme/api")
    teams = [
        {
            "slug": "core",
            "name": "Core",
            "members": ["ana@acme.io", "gitlab:jane.doe", "sam"],
            "repositories": ["acme/*", "acme/never-collected"],
        }
    ]
    first = await sync(api, org, teams)
    assert first["changed"] is True
    before = await snapshot(api, org)
    second = await sync(api, org, teams)
    assert second["changed"] is False
    assert second["created_developers"] == 0
    assert [team["changed"] for team in second["teams"]] == [False]
    assert await snapshot(api, org) == before


async def test_changes_follow_the_declaration_and_undeclared_teams_go(api: Api) -> None:
    org = await api.new_org()
    api_repo = await add_repository(api, org, "acme/api")
    web = await add_repository(api, org, "acme/web")
    await sync(
        api,
        org,
        [
            {
                "slug": "core",
                "name": "Core",
                "members": ["ana@acme.io", "bo@acme.io"],
                "repositories": ["acme/api"],
            },
            {"slug": "old", "name": "Old", "members": [], "repositories": []},
        ],
    )
    # A team made through the API, and one with a slug the resource will declare (adopted).
    made_by_hand = await api.client.post(
        "/api/v1/teams", json={"name": "Mine", "slug": "mine"}, headers=org.headers
    )
    adopted = await api.client.post(
        "/api/v1/teams", json={"name": "Web?", "slug": "web"}, headers=org.headers
    )
    assert made_by_hand.status_code == adopted.status_code == 201
    core = await team_detail(api, org, "core")
    lead = next(m for m in core["members"] if m["email"] == "ana@acme.io")
    await api.client.put(
        f"/api/v1/teams/{core['id']}/members/{lead['developer_id']}",
        json={"role": "lead"},
        headers=org.headers,
    )

    body = await sync(
        api,
        org,
        [
            {"slug": "core", "name": "Core team", "members": ["ana@acme.io"], "repositories": ["acme/web"]},
            {"slug": "web", "name": "Web", "members": [], "repositories": ["acme/w*"]},
        ],
    )
    assert body["removed"] == ["old"]
    core = await team_detail(api, org, "core")
    assert core["name"] == "Core team"
    assert [(m["email"], m["role"]) for m in core["members"]] == [("ana@acme.io", "lead")]  # role kept
    assert [r["repository_id"] for r in core["repositories"]] == [str(web)]
    web_team = await team_detail(api, org, "web")
    assert (web_team["id"], web_team["managed_by"]) == (adopted.json()["id"], MANAGER)
    assert [r["repository_id"] for r in web_team["repositories"]] == [str(web)]
    slugs = {
        team["slug"]: team
        for team in (await api.client.get("/api/v1/teams", headers=org.headers)).json()["items"]
    }
    assert set(slugs) == {"core", "web", "mine"}
    assert slugs["mine"]["managed_by"] is None
    assert str(api_repo) not in {r["repository_id"] for r in core["repositories"]}

    # Declaring no teams at all removes every declared one and only those.
    emptied = await sync(api, org, [])
    assert sorted(emptied["removed"]) == ["core", "web"]
    remaining = (await api.client.get("/api/v1/teams", headers=org.headers)).json()["items"]
    assert [team["slug"] for team in remaining] == ["mine"]


async def test_a_repository_collected_later_is_linked_when_it_appears(api: Api) -> None:
    org = await api.new_org()
    other = await api.new_org()
    body = await sync(
        api,
        org,
        [{"slug": "pay", "name": "Pay", "members": [], "repositories": ["acme/payments-*", "acme/ledger"]}],
    )
    assert body["teams"][0]["waiting_repositories"] == ["acme/payments-*", "acme/ledger"]
    # The processor inserts the repository when its first event arrives; another organization's
    # repository of the same name is not linked, nor one outside the glob's segment.
    ledger = await add_repository(api, org, "Acme/Ledger")
    card = await add_repository(api, org, "acme/payments-card")
    await add_repository(api, org, "acme/payments-card/sub")
    await add_repository(api, other, "acme/ledger")
    detail = await team_detail(api, org, "pay")
    assert {r["repository_id"] for r in detail["repositories"]} == {str(ledger), str(card)}

    # A rename into a declared name links too; the next sync finds everything in place.
    renamed = await add_repository(api, org, "acme/legacy-payments")
    async with api.factory() as session:
        repository = await session.get(Repository, renamed)
        assert repository is not None
        repository.name = "acme/payments-legacy"
        await session.commit()
    assert await linked(api, detail["id"]) == {ledger, card, renamed}
    again = await sync(
        api,
        org,
        [{"slug": "pay", "name": "Pay", "members": [], "repositories": ["acme/payments-*", "acme/ledger"]}],
    )
    assert again["changed"] is False
    assert again["teams"][0]["waiting_repositories"] == []


async def test_placeholders_are_merged_by_identity_resolution(api: Api, database_url: str) -> None:
    """A member known only by a login becomes the processor's placeholder; when the processor sees
    the login with an email, it merges the placeholder into that developer — membership moves
    along, and the next sync still finds everything in place."""
    org = await api.new_org()
    teams = [{"slug": "core", "name": "Core", "members": ["github:JDoe", "ana@acme.io"], "repositories": []}]
    await sync(api, org, teams)
    connection = await asyncpg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(False)
    )
    try:
        async with connection.transaction():
            people = await developers(
                connection,
                [
                    PersonKey.of(
                        org.slug, "github", PersonRef(email="jane@acme.io", username="jdoe", name="Jane")
                    )
                ],
                {org.slug: OrganizationInfo(org.id, {})},
                Lookups(),
            )
    finally:
        await connection.close()
    (jane,) = people.values()
    detail = await team_detail(api, org, "core")
    assert {m["developer_id"] for m in detail["members"]} >= {str(jane)}
    assert "jdoe@users.noreply.github" not in {m["email"] for m in detail["members"]}
    async with api.factory() as session:
        placeholders = await session.scalar(
            select(func.count()).where(Developer.organization_id == org.id, Developer.email.like("%noreply%"))
        )
        assert placeholders == 0
    again = await sync(api, org, teams)
    assert again["changed"] is False
    assert again["teams"][0]["member_count"] == 2


async def test_an_alias_of_the_organization_names_its_canonical_developer(api: Api) -> None:
    """The processor maps an alias (organization settings) to its canonical email before it would
    make a placeholder; a declared member does the same."""
    org = await api.new_org()
    patched = await api.client.patch(
        f"/api/v1/organizations/{org.id}",
        json={"settings": {"aliases": {"JD": "Jane@Acme.io"}}},
        headers=org.headers,
    )
    assert patched.status_code == 200, patched.text
    teams = [{"slug": "core", "name": "Core", "members": ["jd", "jane@acme.io"], "repositories": []}]
    body = await sync(api, org, teams)
    assert (body["created_developers"], body["teams"][0]["member_count"]) == (1, 1)
    detail = await team_detail(api, org, "core")
    assert [member["email"] for member in detail["members"]] == ["jane@acme.io"]
    assert (await sync(api, org, teams))["changed"] is False


async def test_a_bare_username_of_two_people_is_reported_not_guessed(api: Api) -> None:
    org = await api.new_org()
    await add_developer(api, org, "sam@acme.io", github_username="sam")
    await add_developer(api, org, "samantha@acme.io", gitlab_username="sam")
    body = await sync(
        api, org, [{"slug": "core", "name": "Core", "members": ["sam", "github:sam"], "repositories": []}]
    )
    team = body["teams"][0]
    assert team["ambiguous_members"] == ["sam"]
    assert team["member_count"] == 1  # github:sam is unambiguous
    assert body["created_developers"] == 0


async def test_sync_needs_the_service_token_and_a_sound_declaration(api: Api) -> None:
    org = await api.new_org()
    path = f"/api/v1/organizations/{org.id}/teams"
    payload = {"managed_by": MANAGER, "teams": []}
    assert (await api.client.put(path, json=payload)).status_code == 401
    refused = await api.client.put(path, json=payload, headers=org.headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    unknown = await api.client.put(
        f"/api/v1/organizations/{uuid.uuid4()}/teams", json=payload, headers=bearer(SERVICE_TOKEN)
    )
    assert unknown.status_code == 404
    twice = {"slug": "a", "name": "A"}
    duplicated = await api.client.put(
        path, json={"managed_by": MANAGER, "teams": [twice, twice]}, headers=bearer(SERVICE_TOKEN)
    )
    assert duplicated.status_code == 422
    assert duplicated.json()["errors"][0]["field"] == "teams"
    bad_slug = await api.client.put(
        path,
        json={"managed_by": MANAGER, "teams": [{"slug": "Not A Slug", "name": "x"}]},
        headers=bearer(SERVICE_TOKEN),
    )
    assert bad_slug.status_code == 422


async def test_a_change_drops_the_team_caches(api: Api) -> None:
    org = await api.new_org()
    await add_repository(api, org, "acme/api")
    teams = [{"slug": "core", "name": "Core", "members": ["ana@acme.io"], "repositories": ["acme/api"]}]
    await sync(api, org, teams)
    core = await team_detail(api, org, "core")  # cached as team:{id}
    flow = await api.client.get(
        "/api/v1/analytics/flow", params={"scope": "team", "id": core["id"]}, headers=org.headers
    )
    assert flow.status_code == 200
    redis = api.cache._client
    assert await redis.exists(f"team:{core['id']}")
    assert [key async for key in redis.scan_iter(match=f"metrics:flow:team:{core['id']}:*")]

    await sync(api, org, teams)  # nothing changed: the caches stay
    assert await redis.exists(f"team:{core['id']}")

    teams[0]["members"] = ["ana@acme.io", "bo@acme.io"]
    await sync(api, org, teams)
    assert not await redis.exists(f"team:{core['id']}")
    assert not [key async for key in redis.scan_iter(match=f"metrics:*:team:{core['id']}:*")]
    assert len((await team_detail(api, org, "core"))["members"]) == 2


async def test_repository_globs_match_in_postgresql_as_the_collectors_match_them(api: Api) -> None:
    async with api.factory() as session:
        for pattern in PATTERNS:
            for name in NAMES:
                matched = await session.scalar(
                    text("SELECT CAST(:name AS text) ~* CAST(:regex AS text)"),
                    {"name": name, "regex": glob_postgres_regex(pattern)},
                )
                assert matched == glob_match(name, pattern), (pattern, name)
