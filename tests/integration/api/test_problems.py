"""Every error is `application/problem+json`, and validation errors name the field."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.api.conftest import Api

pytestmark = pytest.mark.integration


async def test_validation_errors_name_the_field(api: Api) -> None:
    org = await api.new_org()
    cases = [
        ({"name": "", "slug": "ok"}, "name"),
        ({"name": "Ok", "slug": "Not Valid"}, "slug"),
        ({"slug": "ok"}, "name"),
        ({"name": "Ok", "slug": "ok", "colour": "red"}, "colour"),
        ({"name": "Nul\u0000byte", "slug": "ok"}, "name"),
        ({"name": "Ok", "slug": "ok", "member_ids": ["not-a-uuid"]}, "member_ids.0"),
    ]
    for body, field in cases:
        response = await api.client.post("/api/v1/teams", json=body, headers=org.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "https://doraflow.dev/problems/validation-error"
        assert problem["status"] == 422
        assert problem["errors"][0]["field"] == field, (body, problem)
        assert problem["errors"][0]["location"] == "body"
        assert f"'{field}'" in problem["detail"]


async def test_malformed_bodies(api: Api) -> None:
    org = await api.new_org()
    headers = {**org.headers, "content-type": "application/json"}
    broken = await api.client.post("/api/v1/teams", content=b'{"name": ', headers=headers)
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "body"
    assert "not valid JSON" in broken.json()["detail"]
    missing = await api.client.post("/api/v1/teams", headers=org.headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "body"
    wrong_type = await api.client.post("/api/v1/teams", json=["a", "list"], headers=org.headers)
    assert wrong_type.status_code == 422
    lone_surrogate = await api.client.post(
        "/api/v1/teams", content=b'{"name": "\\ud800", "slug": "s"}', headers=headers
    )
    assert lone_surrogate.status_code == 422
    assert lone_surrogate.json()["errors"][0]["field"] == "name"
    settings = await api.client.patch(
        f"/api/v1/organizations/{org.id}", json={"settings": {"a": "\u0000"}}, headers=org.headers
    )
    assert settings.status_code == 422
    assert settings.json()["errors"][0]["field"] == "settings"


async def test_oversized_bodies_are_refused(api: Api) -> None:
    org = await api.new_org()
    huge = b'{"deployment_id": "d", "service": "s", "url": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = await api.client.post(
        "/api/v1/deployments", content=huge, headers={**org.headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    streamed = await api.client.post(
        "/api/v1/deployments", content=chunks(), headers={**org.headers, "content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"


async def test_routing_errors_are_problems_too(api: Api) -> None:
    org = await api.new_org()
    missing = await api.client.get("/api/v1/nothing-here", headers=org.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "no route for GET /api/v1/nothing-here"
    wrong_method = await api.client.put("/api/v1/teams", headers=org.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    bad_id = await api.client.get("/api/v1/teams/123", headers=org.headers)
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0] == {
        "field": "team_id",
        "location": "path",
        "message": bad_id.json()["errors"][0]["message"],
        "type": "uuid_parsing",
    }
    query = await api.client.get("/api/v1/teams", params={"sort": "colour"}, headers=org.headers)
    assert query.status_code == 422
    assert query.json()["errors"][0]["field"] == "sort"
