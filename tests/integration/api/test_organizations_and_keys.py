"""Organization bootstrap, API keys, roles, revocation, expiry and organization scoping."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from doraflow.core.models import ApiKey, Developer, Repository
from tests.integration.api.conftest import SECRET, SERVICE_TOKEN, Api, bearer

pytestmark = pytest.mark.integration


async def test_bootstrap_creates_once_and_is_idempotent_on_slug(api: Api) -> None:
    first = await api.client.post(
        "/api/v1/organizations", json={"name": "Acme", "slug": "acme"}, headers=bearer(SERVICE_TOKEN)
    )
    assert first.status_code == 201
    body = first.json()
    assert body["created"] is True
    key = body["admin_key"]
    assert key["role"] == "admin"
    assert key["key"].startswith(key["prefix"] + "_")

    again = await api.client.post(
        "/api/v1/organizations", json={"name": "Acme Corp", "slug": "acme"}, headers=bearer(SERVICE_TOKEN)
    )
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["admin_key"] is None
    assert again.json()["organization"]["id"] == body["organization"]["id"]
    assert again.json()["organization"]["name"] == "Acme Corp"  # aligned with the resource

    me = await api.client.get("/api/v1/me", headers=bearer(key["key"]))
    assert me.status_code == 200
    assert me.json()["organization"]["slug"] == "acme"
    assert me.json()["role"] == "admin"


async def test_the_operator_can_reissue_a_lost_admin_key(api: Api) -> None:
    first = await api.client.post(
        "/api/v1/organizations", json={"name": "Acme", "slug": "acme-lost"}, headers=bearer(SERVICE_TOKEN)
    )
    org_id = first.json()["organization"]["id"]
    reissued = await api.client.post(
        f"/api/v1/organizations/{org_id}/admin-keys", json={}, headers=bearer(SERVICE_TOKEN)
    )
    assert reissued.status_code == 201
    assert reissued.json()["role"] == "admin"
    assert reissued.json()["key"] != first.json()["admin_key"]["key"]
    me = await api.client.get("/api/v1/me", headers=bearer(reissued.json()["key"]))
    assert me.json()["organization"]["slug"] == "acme-lost"
    with_admin_key = await api.client.post(
        f"/api/v1/organizations/{org_id}/admin-keys", json={}, headers=bearer(reissued.json()["key"])
    )
    assert with_admin_key.status_code == 403
    unknown = await api.client.post(
        "/api/v1/organizations/00000000-0000-0000-0000-000000000000/admin-keys",
        json={},
        headers=bearer(SERVICE_TOKEN),
    )
    assert unknown.status_code == 404


async def test_bootstrap_needs_the_service_token(api: Api) -> None:
    org = await api.new_org()
    payload = {"name": "Evil", "slug": "evil"}
    missing = await api.client.post("/api/v1/organizations", json=payload)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    with_key = await api.client.post("/api/v1/organizations", json=payload, headers=org.headers)
    assert with_key.status_code == 403
    forged = await api.client.post("/api/v1/organizations", json=payload, headers=bearer("dfs_" + "0" * 64))
    assert forged.status_code == 403
    invalid = await api.client.post(
        "/api/v1/organizations", json={"name": "X", "slug": "Not A Slug"}, headers=bearer(SERVICE_TOKEN)
    )
    assert invalid.status_code == 422
    assert [e["field"] for e in invalid.json()["errors"]] == ["slug"]


async def test_keys_are_stored_as_peppered_hashes_and_shown_once(api: Api) -> None:
    org = await api.new_org()
    created = await api.client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "member"}, headers=org.headers
    )
    assert created.status_code == 201
    secret = created.json()["key"]
    async with api.factory() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(created.json()["id"])))
    assert row is not None
    assert secret not in (row.key_hash, row.prefix)
    assert row.key_hash == hmac.new(SECRET.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert secret.startswith(row.prefix)

    shown = await api.client.get(f"/api/v1/api-keys/{row.id}", headers=org.headers)
    assert shown.status_code == 200
    assert "key" not in shown.json()
    listed = await api.client.get("/api/v1/api-keys", headers=org.headers)
    assert {k["prefix"] for k in listed.json()["items"]} >= {row.prefix}
    assert all("key" not in k for k in listed.json()["items"])


@pytest.mark.parametrize(
    ("role", "method", "path", "expected"),
    [
        ("viewer", "GET", "/api/v1/teams", 200),
        ("viewer", "POST", "/api/v1/teams", 403),
        ("viewer", "POST", "/api/v1/deployments", 403),
        ("viewer", "GET", "/api/v1/api-keys", 403),
        ("member", "POST", "/api/v1/teams", 201),
        ("member", "GET", "/api/v1/api-keys", 403),
        ("member", "POST", "/api/v1/api-keys", 403),
        ("admin", "GET", "/api/v1/api-keys", 200),
    ],
)
async def test_roles(api: Api, role: str, method: str, path: str, expected: int) -> None:
    org = await api.new_org()
    key = await api.key(org, role)
    body = {"name": "Team", "slug": f"t-{uuid.uuid4().hex[:6]}"} if path.endswith("/teams") else None
    if path.endswith("/api-keys") and method == "POST":
        body = {"name": "x"}
    if path.endswith("/deployments"):
        body = {"deployment_id": "d1", "service": "svc"}
    response = await api.client.request(method, path, json=body, headers=bearer(key))
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert role in response.json()["detail"]


async def test_only_admins_update_their_organization(api: Api) -> None:
    org = await api.new_org()
    member = await api.key(org, "member")
    path = f"/api/v1/organizations/{org.id}"
    assert (await api.client.patch(path, json={"name": "New"}, headers=bearer(member))).status_code == 403
    updated = await api.client.patch(
        path, json={"name": "New", "settings": {"theme": "dark"}}, headers=org.headers
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "New"
    got = await api.client.get(path, headers=bearer(member))
    assert got.json()["settings"] == {"theme": "dark"}
    listed = await api.client.get("/api/v1/organizations", headers=bearer(member))
    assert [o["id"] for o in listed.json()["items"]] == [str(org.id)]


async def test_revoked_keys_stop_working_at_once(api: Api) -> None:
    org = await api.new_org()
    key = await api.key(org, "viewer")
    assert (await api.client.get("/api/v1/teams", headers=bearer(key))).status_code == 200
    key_id = next(
        k["id"]
        for k in (await api.client.get("/api/v1/api-keys", headers=org.headers)).json()["items"]
        if key.startswith(k["prefix"])
    )
    revoked = await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=org.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    refused = await api.client.get("/api/v1/teams", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API key revoked"
    assert (await api.client.delete(f"/api/v1/api-keys/{key_id}", headers=org.headers)).status_code == 200
    visible = await api.client.get("/api/v1/api-keys", headers=org.headers)
    assert key_id not in {k["id"] for k in visible.json()["items"]}
    everything = await api.client.get("/api/v1/api-keys?include_revoked=true", headers=org.headers)
    assert key_id in {k["id"] for k in everything.json()["items"]}


async def test_the_last_admin_key_cannot_be_revoked(api: Api) -> None:
    org = await api.new_org()
    me = (await api.client.get("/api/v1/me", headers=org.headers)).json()
    refused = await api.client.delete(f"/api/v1/api-keys/{me['key_id']}", headers=org.headers)
    assert refused.status_code == 409
    second = await api.key(org, "admin")
    assert (
        await api.client.delete(f"/api/v1/api-keys/{me['key_id']}", headers=bearer(second))
    ).status_code == 200
    assert (await api.client.get("/api/v1/me", headers=org.headers)).status_code == 401


async def test_expired_keys_are_refused(api: Api) -> None:
    org = await api.new_org()
    past = await api.client.post(
        "/api/v1/api-keys",
        json={"name": "old", "expires_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
        headers=org.headers,
    )
    assert past.status_code == 422
    assert past.json()["errors"][0]["field"] == "expires_at"
    both = await api.client.post(
        "/api/v1/api-keys",
        json={"name": "x", "expires_in_days": 3, "expires_at": "2100-01-01T00:00:00Z"},
        headers=org.headers,
    )
    assert both.status_code == 422
    created = await api.client.post(
        "/api/v1/api-keys", json={"name": "soon", "expires_in_days": 1}, headers=org.headers
    )
    assert created.status_code == 201
    assert created.json()["expires_at"] is not None
    async with api.factory() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(created.json()["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    refused = await api.client.get("/api/v1/teams", headers=bearer(created.json()["key"]))
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API key expired"


@pytest.mark.parametrize(
    "token",
    ["", "dfk_nothex!_short", "x" * 5000, "dfk_00000000_" + "A" * 43],
)
async def test_bad_keys_get_401_problems(api: Api, token: str) -> None:
    response = await api.client.get("/api/v1/teams", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_another_organizations_objects_are_not_found(api: Api) -> None:
    a = await api.new_org()
    b = await api.new_org()
    team = (await api.client.post("/api/v1/teams", json={"name": "B", "slug": "b"}, headers=b.headers)).json()
    b_key = (await api.client.get("/api/v1/me", headers=b.headers)).json()["key_id"]
    repo_id, dev_id = uuid.uuid4(), uuid.uuid4()
    async with api.factory() as session:
        session.add(
            Repository(id=repo_id, organization_id=b.id, name="b/repo", provider="github", provider_id="1")
        )
        session.add(Developer(id=dev_id, organization_id=b.id, email="b@b.example"))
        await session.commit()
    a_member = await api.key(a, "member")
    for method, path, body in [
        ("GET", f"/api/v1/organizations/{b.id}", None),
        ("PATCH", f"/api/v1/organizations/{b.id}", {"name": "pwned"}),
        ("GET", f"/api/v1/teams/{team['id']}", None),
        ("PATCH", f"/api/v1/teams/{team['id']}", {"name": "pwned"}),
        ("DELETE", f"/api/v1/teams/{team['id']}", None),
        ("GET", f"/api/v1/repositories/{repo_id}", None),
        ("PATCH", f"/api/v1/repositories/{repo_id}", {"service": "pwned"}),
        ("GET", f"/api/v1/developers/{dev_id}", None),
        ("GET", f"/api/v1/api-keys/{b_key}", None),
        ("DELETE", f"/api/v1/api-keys/{b_key}", None),
        ("GET", f"/api/v1/analytics/dora?scope=team&id={team['id']}", None),
        ("GET", f"/api/v1/analytics/dora?scope=repository&id={repo_id}", None),
        ("GET", f"/api/v1/analytics/dora?scope=organization&id={b.id}", None),
        ("GET", f"/api/v1/analytics/deployments?scope=repository&id={repo_id}", None),
    ]:
        headers = a.headers if "api-keys" in path or "organizations" in path else bearer(a_member)
        response = await api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # A's own team cannot take in B's developer or repository either.
    own = (await api.client.post("/api/v1/teams", json={"name": "A", "slug": "a"}, headers=a.headers)).json()
    assert (
        await api.client.put(f"/api/v1/teams/{own['id']}/members/{dev_id}", headers=a.headers)
    ).status_code == 404
    assert (
        await api.client.put(f"/api/v1/teams/{own['id']}/repositories/{repo_id}", headers=a.headers)
    ).status_code == 404
    # … and B's data is untouched.
    assert (await api.client.get(f"/api/v1/teams/{team['id']}", headers=b.headers)).json()["name"] == "B"
    assert (await api.client.get("/api/v1/me", headers=b.headers)).status_code == 200
