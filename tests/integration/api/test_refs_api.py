"""A repository's branches, tags, releases and contributors through the API: order, cursor
pagination across pages, filters, organization scoping, and field-naming errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from doraflow.core.models import (
    Branch,
    Developer,
    Release,
    Repository,
    RepositoryContributor,
    Tag,
    natural_id,
)
from tests.integration.api.conftest import Api, Org, bearer

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def collect(api: Api, path: str, headers: dict[str, str], **params: str | int) -> list[dict[str, Any]]:
    """Every item of a list, page by page; each page but the last is full."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        query: dict[str, str | int] = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["next_cursor"] is not None and "limit" in params:
            assert len(body["items"]) == int(params["limit"])
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


async def add_repository(api: Api, org: Org, name: str = "acme/api") -> uuid.UUID:
    async with api.factory() as session:
        repository = Repository(organization_id=org.id, name=name, provider="github", provider_id=name)
        session.add(repository)
        await session.commit()
        return repository.id


async def add_developer(api: Api, org: Org, email: str, name: str | None) -> uuid.UUID:
    async with api.factory() as session:
        developer = Developer(organization_id=org.id, email=email, name=name, github_username="secret-login")
        session.add(developer)
        await session.commit()
        return developer.id


async def add_rows(api: Api, *rows: object) -> None:
    async with api.factory() as session:
        session.add_all(rows)
        await session.commit()


def branch(org: Org, repository_id: uuid.UUID, name: str, **extra: Any) -> Branch:
    return Branch(
        id=natural_id("branch", repository_id, name),
        organization_id=org.id,
        repository_id=repository_id,
        name=name,
        head_sha="a" * 40,
        observed_at=T0,
        **extra,
    )


def tag(org: Org, repository_id: uuid.UUID, name: str, tagged_at: datetime | None, **extra: Any) -> Tag:
    return Tag(
        id=natural_id("tag", repository_id, name),
        organization_id=org.id,
        repository_id=repository_id,
        name=name,
        commit_sha="b" * 40,
        tagged_at=tagged_at,
        observed_at=T0,
        **extra,
    )


def release(org: Org, repository_id: uuid.UUID, tag_name: str, created_at: datetime, **extra: Any) -> Release:
    return Release(
        id=natural_id("release", repository_id, tag_name),
        organization_id=org.id,
        repository_id=repository_id,
        external_id=f"rel-{tag_name}",
        tag_name=tag_name,
        created_at=created_at,
        observed_at=T0,
        **extra,
    )


async def test_branches_default_first_then_by_name_across_pages(api: Api) -> None:
    org = await api.new_org()
    repository_id = await add_repository(api, org)
    names = [f"feature/{i:02d}" for i in range(7)]
    await add_rows(
        api,
        *(branch(org, repository_id, name) for name in reversed(names)),
        branch(org, repository_id, "main", is_default=True, protected=True),
        branch(org, repository_id, "gone", deleted_at=T0 + timedelta(days=1)),
    )
    path = f"/api/v1/repositories/{repository_id}/branches"

    listed = await collect(api, path, org.headers, limit=3)
    assert [b["name"] for b in listed] == ["main", *names]
    assert listed[0]["is_default"] is True
    assert listed[0]["protected"] is True
    assert listed[1]["is_default"] is False
    assert listed[1]["deleted_at"] is None
    assert set(listed[0]) == {"id", "name", "head_sha", "is_default", "protected", "updated_at", "deleted_at"}

    with_deleted = await collect(api, path, org.headers, limit=4, include_deleted="true")
    assert [b["name"] for b in with_deleted] == ["main", *names, "gone"]
    assert with_deleted[-1]["deleted_at"] is not None


async def test_tags_newest_first_undated_last_and_deleted_filter(api: Api) -> None:
    org = await api.new_org()
    repository_id = await add_repository(api, org)
    tagger = await add_developer(api, org, "tagger@acme.test", "Tagger")
    await add_rows(
        api,
        tag(org, repository_id, "v1.0.0", T0),
        tag(org, repository_id, "v1.1.0", T0 + timedelta(days=2), annotated=True, tagger_id=tagger),
        # Two tags of one commit share a time: the later name comes first.
        tag(org, repository_id, "v1.2.0", T0 + timedelta(days=5)),
        tag(org, repository_id, "v1.2.0-final", T0 + timedelta(days=5)),
        tag(org, repository_id, "undated", None),
        tag(org, repository_id, "v0.9.0", T0 - timedelta(days=3), deleted_at=T0),
    )
    path = f"/api/v1/repositories/{repository_id}/tags"

    # One per page, so that both the shared time and the undated tag sit on page boundaries.
    listed = await collect(api, path, org.headers, limit=1)
    assert [t["name"] for t in listed] == ["v1.2.0-final", "v1.2.0", "v1.1.0", "v1.0.0", "undated"]
    annotated = listed[2]
    assert annotated["annotated"] is True
    assert annotated["tagger_id"] == str(tagger)
    assert listed[-1]["tagged_at"] is None

    with_deleted = await collect(api, path, org.headers, limit=2, include_deleted="true")
    assert [t["name"] for t in with_deleted][-2:] == ["v0.9.0", "undated"]


async def test_releases_newest_published_first_with_prerelease_filter(api: Api) -> None:
    org = await api.new_org()
    repository_id = await add_repository(api, org)
    await add_rows(
        api,
        # Created long ago but published last: it is the newest release.
        release(org, repository_id, "v2.0.0", T0, published_at=T0 + timedelta(days=10)),
        release(org, repository_id, "v1.0.0", T0 + timedelta(days=1), published_at=T0 + timedelta(days=1)),
        release(
            org,
            repository_id,
            "v2.0.0-rc1",
            T0 + timedelta(days=3),
            published_at=T0 + timedelta(days=4),
            prerelease=True,
        ),
        # An unpublished draft counts by when it was created.
        release(org, repository_id, "v2.1.0", T0 + timedelta(days=7), draft=True),
    )
    path = f"/api/v1/repositories/{repository_id}/releases"

    listed = await collect(api, path, org.headers, limit=3)
    assert [r["tag_name"] for r in listed] == ["v2.0.0", "v2.1.0", "v2.0.0-rc1", "v1.0.0"]
    assert [(r["draft"], r["prerelease"]) for r in listed] == [
        (False, False),
        (True, False),
        (False, True),
        (False, False),
    ]
    assert listed[1]["published_at"] is None

    prereleases = await collect(api, path, org.headers, prerelease="true")
    assert [r["tag_name"] for r in prereleases] == ["v2.0.0-rc1"]
    full = await collect(api, path, org.headers, limit=1, prerelease="false")
    assert [r["tag_name"] for r in full] == ["v2.0.0", "v2.1.0", "v1.0.0"]


async def test_contributors_by_contributions_with_the_developer_fields_the_api_shows(api: Api) -> None:
    org = await api.new_org()
    repository_id = await add_repository(api, org)
    other_repository = await add_repository(api, org, "acme/web")
    counts = {"ann@acme.test": 40, "bob@acme.test": 7, "cat@acme.test": 40, "dan@acme.test": None}
    developers = {email: await add_developer(api, org, email, email[:3].title()) for email in counts}
    await add_rows(
        api,
        *(
            RepositoryContributor(
                repository_id=repository_id,
                developer_id=developers[email],
                contributions=count,
                observed_at=T0,
            )
            for email, count in counts.items()
        ),
        RepositoryContributor(
            repository_id=other_repository,
            developer_id=developers["bob@acme.test"],
            contributions=1000,
            observed_at=T0,
        ),
    )

    listed = await collect(api, f"/api/v1/repositories/{repository_id}/contributors", org.headers, limit=1)
    assert [(c["email"], c["contributions"]) for c in listed] == [
        ("ann@acme.test", 40),
        ("cat@acme.test", 40),
        ("bob@acme.test", 7),
        ("dan@acme.test", None),
    ]
    assert listed[0] == {
        "developer_id": str(developers["ann@acme.test"]),
        "email": "ann@acme.test",
        "name": "Ann",
        "contributions": 40,
    }
    # The same email and name as the developers endpoint shows for that id.
    shown = await api.client.get(f"/api/v1/developers/{developers['ann@acme.test']}", headers=org.headers)
    assert {k: shown.json()[k] for k in ("email", "name")} == {"email": "ann@acme.test", "name": "Ann"}


async def test_another_organizations_repository_is_not_found_and_any_role_may_read(api: Api) -> None:
    owner = await api.new_org()
    stranger = await api.new_org()
    repository_id = await add_repository(api, owner)
    await add_rows(api, branch(owner, repository_id, "main", is_default=True))
    viewer = bearer(await api.key(owner, "viewer"))
    for kind in ("branches", "tags", "releases", "contributors"):
        path = f"/api/v1/repositories/{repository_id}/{kind}"
        foreign = await api.client.get(path, headers=stranger.headers)
        assert foreign.status_code == 404, (kind, foreign.text)
        assert foreign.headers["content-type"].startswith("application/problem+json")
        missing = await api.client.get(f"/api/v1/repositories/{uuid.uuid4()}/{kind}", headers=owner.headers)
        assert missing.status_code == 404
        assert (await api.client.get(path, headers=viewer)).status_code == 200
        assert (await api.client.get(path)).status_code == 401
    branches = await api.client.get(f"/api/v1/repositories/{repository_id}/branches", headers=viewer)
    assert [b["name"] for b in branches.json()["items"]] == ["main"]


async def test_bad_cursor_and_limit_name_the_field(api: Api) -> None:
    org = await api.new_org()
    repository_id = await add_repository(api, org)
    await add_rows(api, *(tag(org, repository_id, f"v{i}", T0 + timedelta(days=i)) for i in range(3)))
    tags_path = f"/api/v1/repositories/{repository_id}/tags"
    first = (await api.client.get(tags_path, params={"limit": 1}, headers=org.headers)).json()
    assert first["next_cursor"]

    # A cursor of another list (another order) is refused, not misread.
    elsewhere = await api.client.get(
        f"/api/v1/repositories/{repository_id}/branches",
        params={"cursor": first["next_cursor"]},
        headers=org.headers,
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["errors"][0]["field"] == "cursor"
    for kind in ("branches", "tags", "releases", "contributors"):
        path = f"/api/v1/repositories/{repository_id}/{kind}"
        garbage = await api.client.get(path, params={"cursor": "not-a-cursor"}, headers=org.headers)
        assert garbage.status_code == 422, (kind, garbage.text)
        assert garbage.headers["content-type"].startswith("application/problem+json")
        assert garbage.json()["errors"][0]["field"] == "cursor"
        for limit in (0, 1000, "many"):
            bad_limit = await api.client.get(path, params={"limit": limit}, headers=org.headers)
            assert bad_limit.status_code == 422, (kind, limit)
            assert bad_limit.json()["errors"][0]["field"] == "limit"
    bad_flag = await api.client.get(
        f"/api/v1/repositories/{repository_id}/releases", params={"prerelease": "maybe"}, headers=org.headers
    )
    assert bad_flag.status_code == 422
    assert bad_flag.json()["errors"][0]["field"] == "prerelease"
