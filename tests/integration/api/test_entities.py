"""Teams, repositories and developers: CRUD, cursor pagination, filtering, sorting, merging."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from doraflow.core.models import (
    Commit,
    Developer,
    DeveloperIdentity,
    PullRequest,
    Release,
    RepositoryContributor,
    Tag,
    natural_id,
)
from tests.integration.api.conftest import Api, bearer
from tests.integration.api.dataset import seed_dataset

pytestmark = pytest.mark.integration


async def collect(api: Api, path: str, headers: dict[str, str], **params: str | int) -> list[dict[str, Any]]:
    """Every item of a list endpoint, page by page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query: dict[str, str | int] = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert pages < 100


async def test_team_lifecycle_with_members_and_repositories(api: Api) -> None:
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=14)
    dev_a, dev_b = data.developer_ids[:2]
    repo = data.repository_ids["acme/web"]
    created = await api.client.post(
        "/api/v1/teams",
        json={
            "name": "Platform",
            "slug": "platform",
            "member_ids": [str(dev_a)],
            "repository_ids": [str(repo)],
        },
        headers=org.headers,
    )
    assert created.status_code == 201, created.text
    team = created.json()
    assert [m["developer_id"] for m in team["members"]] == [str(dev_a)]
    assert [r["name"] for r in team["repositories"]] == ["acme/web"]

    duplicate = await api.client.post(
        "/api/v1/teams", json={"name": "X", "slug": "platform"}, headers=org.headers
    )
    assert duplicate.status_code == 409

    path = f"/api/v1/teams/{team['id']}"
    added = await api.client.put(f"{path}/members/{dev_b}", json={"role": "lead"}, headers=org.headers)
    assert added.status_code == 200
    assert {m["developer_id"]: m["role"] for m in added.json()["members"]} == {
        str(dev_a): "member",
        str(dev_b): "lead",
    }
    # Idempotent: adding again changes nothing but the role.
    again = await api.client.put(f"{path}/members/{dev_b}", headers=org.headers)
    assert again.json()["member_count"] == 2
    assert (await api.client.delete(f"{path}/members/{dev_a}", headers=org.headers)).status_code == 204
    assert (await api.client.delete(f"{path}/members/{dev_a}", headers=org.headers)).status_code == 404
    assert (await api.client.delete(f"{path}/repositories/{repo}", headers=org.headers)).status_code == 204
    other = data.repository_ids["acme/search"]
    assert (await api.client.put(f"{path}/repositories/{other}", headers=org.headers)).status_code == 200

    renamed = await api.client.patch(path, json={"name": "Platform Eng"}, headers=org.headers)
    assert renamed.json()["name"] == "Platform Eng"
    fetched = (await api.client.get(path, headers=org.headers)).json()  # served from the team:{id} cache
    assert fetched["name"] == "Platform Eng"
    assert [m["developer_id"] for m in fetched["members"]] == [str(dev_b)]
    assert [r["name"] for r in fetched["repositories"]] == ["acme/search"]
    assert await api.cache.get(f"team:{team['id']}") is not None

    listed = await api.client.get("/api/v1/teams", params={"q": "eng"}, headers=org.headers)
    assert [(t["name"], t["member_count"], t["repository_count"]) for t in listed.json()["items"]] == [
        ("Platform Eng", 1, 1)
    ]
    assert (await api.client.delete(path, headers=org.headers)).status_code == 204
    assert (await api.client.get(path, headers=org.headers)).status_code == 404
    assert await api.cache.get(f"team:{team['id']}") is None


async def test_cursor_pagination_is_complete_stable_and_sortable(api: Api) -> None:
    org = await api.new_org()
    names = [f"Team {i:02d}" for i in range(11)]
    for i, name in enumerate(names):
        response = await api.client.post(
            "/api/v1/teams", json={"name": name, "slug": f"team-{i:02d}"}, headers=org.headers
        )
        assert response.status_code == 201
    ascending = await collect(api, "/api/v1/teams", org.headers, limit=4)
    assert [t["name"] for t in ascending] == names
    descending = await collect(api, "/api/v1/teams", org.headers, limit=3, sort="-name")
    assert [t["name"] for t in descending] == names[::-1]
    by_time = await collect(api, "/api/v1/teams", org.headers, limit=5, sort="-created_at")
    assert len({t["id"] for t in by_time}) == 11

    first = (await api.client.get("/api/v1/teams", params={"limit": 4}, headers=org.headers)).json()
    assert len(first["items"]) == 4
    assert first["next_cursor"]
    wrong_sort = await api.client.get(
        "/api/v1/teams", params={"cursor": first["next_cursor"], "sort": "-name"}, headers=org.headers
    )
    assert wrong_sort.status_code == 422
    assert wrong_sort.json()["errors"][0]["field"] == "cursor"
    garbage = await api.client.get("/api/v1/teams", params={"cursor": "not-a-cursor"}, headers=org.headers)
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["field"] == "cursor"
    too_big = await api.client.get("/api/v1/teams", params={"limit": 1000}, headers=org.headers)
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["field"] == "limit"


async def test_repositories_filter_and_service_mapping(api: Api) -> None:
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=7)
    every = await collect(api, "/api/v1/repositories", org.headers, limit=3)
    assert [r["name"] for r in every] == ["acme/checkout", "acme/payments", "acme/search", "acme/web"]
    of_team = await collect(api, "/api/v1/repositories", org.headers, team_id=str(data.team_ids["payments"]))
    assert [r["name"] for r in of_team] == ["acme/checkout", "acme/payments"]
    assert all(r["team_ids"] == [str(data.team_ids["payments"])] for r in of_team)
    searched = await collect(api, "/api/v1/repositories", org.headers, q="PAY")
    assert [r["name"] for r in searched] == ["acme/payments"]
    by_service = await collect(api, "/api/v1/repositories", org.headers, service="web")
    assert [r["name"] for r in by_service] == ["acme/web"]

    repo_id = data.repository_ids["acme/web"]
    viewer = await api.key(org, "viewer")
    assert (
        await api.client.patch(
            f"/api/v1/repositories/{repo_id}", json={"service": "x"}, headers=bearer(viewer)
        )
    ).status_code == 403
    mapped = await api.client.patch(
        f"/api/v1/repositories/{repo_id}", json={"service": "storefront"}, headers=org.headers
    )
    assert mapped.status_code == 200
    assert mapped.json()["service"] == "storefront"
    untouched = await api.client.patch(f"/api/v1/repositories/{repo_id}", json={}, headers=org.headers)
    assert untouched.json()["service"] == "storefront"
    cleared = await api.client.patch(
        f"/api/v1/repositories/{repo_id}", json={"service": None}, headers=org.headers
    )
    assert cleared.json()["service"] is None


async def test_developers_profiles_and_merge(api: Api) -> None:
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=30)
    keep, fold = data.developer_ids[0], data.developer_ids[6]  # members of different teams
    async with api.factory() as session:
        session.add(
            DeveloperIdentity(organization_id=org.id, developer_id=fold, kind="github", value="grace-work")
        )
        folded_commits = len(
            list(await session.scalars(select(Commit.commit_sha).where(Commit.author_id == fold)))
        )
        await session.commit()
    everyone = await collect(api, "/api/v1/developers", org.headers, limit=5)
    assert len(everyone) == 12
    assert [d["email"] for d in everyone] == sorted(d["email"] for d in everyone)
    found = await collect(api, "/api/v1/developers", org.headers, q="hopper")
    assert [d["name"] for d in found] == ["Grace Hopper"]
    team_members = await collect(api, "/api/v1/developers", org.headers, team_id=str(data.team_ids["web"]))
    assert len(team_members) == 6

    before = (await api.client.get(f"/api/v1/developers/{fold}", headers=org.headers)).json()
    merged = await api.client.post(
        f"/api/v1/developers/{keep}/merge", json={"developer_ids": [str(fold)]}, headers=org.headers
    )
    assert merged.status_code == 200, merged.text
    profile = merged.json()
    identities = {(i["kind"], i["value"]) for i in profile["identities"]}
    assert ("email", before["email"]) in identities
    assert ("github", "grace-work") in identities
    assert set(profile["team_ids"]) == {str(data.team_ids["payments"]), str(data.team_ids["web"])}
    assert (await api.client.get(f"/api/v1/developers/{fold}", headers=org.headers)).status_code == 404
    async with api.factory() as session:
        assert await session.get(Developer, fold) is None
        moved = list(await session.scalars(select(Commit.commit_sha).where(Commit.author_id == keep)))
        assert not list(
            await session.scalars(select(PullRequest.pr_number).where(PullRequest.author_id == fold))
        )
    assert len(moved) >= folded_commits

    into_itself = await api.client.post(
        f"/api/v1/developers/{keep}/merge", json={"developer_ids": [str(keep)]}, headers=org.headers
    )
    assert into_itself.status_code == 422
    assert into_itself.json()["errors"][0]["field"] == "developer_ids"
    unknown = await api.client.post(
        f"/api/v1/developers/{keep}/merge", json={"developer_ids": [str(uuid.uuid4())]}, headers=org.headers
    )
    assert unknown.status_code == 404
    renamed = await api.client.patch(
        f"/api/v1/developers/{keep}", json={"name": "Ada L."}, headers=org.headers
    )
    assert renamed.json()["name"] == "Ada L."


async def test_developer_merge_moves_tags_releases_and_contributors(api: Api) -> None:
    """Tags, releases and contributor rows (migration 0005) follow a merge like authored work: the
    tagger and release author become the kept developer instead of NULL, and contributor rows move
    instead of being deleted with the merged developer — one per repository, by the processor's
    merge rule (the newest observation wins; on a tie, the larger count)."""
    org = await api.new_org()
    data = await seed_dataset(api.factory, org.id, days=7)
    keep, fold, fold_too, bystander = data.developer_ids[:4]
    repo = data.repository_ids
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    later = earlier + timedelta(days=1)

    def tag(name: str, tagger: uuid.UUID) -> Tag:
        return Tag(
            id=natural_id("tag", repo["acme/web"], name),
            organization_id=org.id,
            repository_id=repo["acme/web"],
            name=name,
            commit_sha=name * 40,
            tagger_id=tagger,
            observed_at=earlier,
        )

    def contributor(
        name: str, developer: uuid.UUID, contributions: int, at: datetime
    ) -> RepositoryContributor:
        return RepositoryContributor(
            repository_id=repo[name], developer_id=developer, contributions=contributions, observed_at=at
        )

    async with api.factory() as session:
        session.add_all(
            [
                tag("a", fold),
                tag("b", bystander),
                Release(
                    id=natural_id("release", repo["acme/web"], "1"),
                    organization_id=org.id,
                    repository_id=repo["acme/web"],
                    external_id="1",
                    tag_name="a",
                    created_at=earlier,
                    author_id=fold_too,
                    observed_at=earlier,
                ),
                # acme/web: the merged developer's row is newer than the kept one's.
                contributor("acme/web", keep, 9, earlier),
                contributor("acme/web", fold, 5, later),
                # acme/payments: observed together; the larger count stays.
                contributor("acme/payments", keep, 6, earlier),
                contributor("acme/payments", fold, 4, earlier),
                # acme/checkout: only merged developers, in one listing; the larger count stays.
                contributor("acme/checkout", fold, 3, later),
                contributor("acme/checkout", fold_too, 8, later),
                # acme/search: the kept developer's row is newer and stays as it is, count included.
                contributor("acme/search", keep, 2, later),
                contributor("acme/search", fold_too, 7, earlier),
                contributor("acme/search", bystander, 1, earlier),
            ]
        )
        await session.commit()

    merged = await api.client.post(
        f"/api/v1/developers/{keep}/merge",
        json={"developer_ids": [str(fold), str(fold_too)]},
        headers=org.headers,
    )
    assert merged.status_code == 200, merged.text

    async with api.factory() as session:
        taggers = dict((await session.execute(select(Tag.name, Tag.tagger_id))).all())
        assert taggers == {"a": keep, "b": bystander}
        assert list(await session.scalars(select(Release.author_id))) == [keep]
        contributors = {
            (repository_id, developer_id): (contributions, observed_at)
            for repository_id, developer_id, contributions, observed_at in (
                await session.execute(
                    select(
                        RepositoryContributor.repository_id,
                        RepositoryContributor.developer_id,
                        RepositoryContributor.contributions,
                        RepositoryContributor.observed_at,
                    )
                )
            )
        }
    assert contributors == {
        (repo["acme/web"], keep): (5, later),
        (repo["acme/payments"], keep): (6, earlier),
        (repo["acme/checkout"], keep): (8, later),
        (repo["acme/search"], keep): (2, later),
        (repo["acme/search"], bystander): (1, earlier),
    }
