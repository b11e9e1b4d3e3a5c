"""How the GitHub client reacts to GraphQL's in-band errors, with scripted responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from doraflow.collectors.base import CollectorError, Resource, ScopeRef
from doraflow.collectors.git.github import GitHubClient, GitHubQueryError
from doraflow.core.resources import Integration

INTEGRATION = Integration.model_validate(
    {
        "metadata": {"name": "gh", "namespace": "ns"},
        "spec": {
            "organizationRef": {"name": "acme"},
            "provider": "github",
            "credentialsSecretRef": {"name": "gh-token"},
            "scope": {"repositories": ["acme/api"]},
        },
    }
)
SCOPE = ScopeRef(name="acme/api", id="1", attributes={"default_branch": "main"})
EMPTY_PRS = {"data": {"repository": {"pullRequests": {"pageInfo": {"hasNextPage": False}, "nodes": []}}}}


class Script:
    def __init__(self, respond: Callable[[dict[str, Any]], httpx.Response]) -> None:
        self.respond = respond
        self.bodies: list[dict[str, Any]] = []
        self.urls: list[str] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.urls.append(str(request.url))
        return self.respond(body)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self) -> GitHubClient:
        options = {"transport": httpx.MockTransport(self), "sleep": self.sleep, "backoff_base": 0.0}
        return GitHubClient(INTEGRATION, "ghp_x", http_options=options)


async def collect(github: GitHubClient, resource: Resource = Resource.PULL_REQUESTS) -> None:
    try:
        async for _ in github.collect(SCOPE, resource, None):
            pass
    finally:
        await github.aclose()


async def test_graphql_goes_to_api_github_com_slash_graphql() -> None:
    script = Script(lambda body: httpx.Response(200, json=EMPTY_PRS))
    await collect(script.client())
    assert script.urls == ["https://api.github.com/graphql"]
    assert script.bodies[0]["operationName"] == "PullRequests"
    assert script.bodies[0]["variables"]["pageSize"] == 100


async def test_forbidden_is_a_collector_error_about_permissions() -> None:
    script = Script(
        lambda body: httpx.Response(
            200,
            json={
                "data": {"repository": None},
                "errors": [
                    {"type": "FORBIDDEN", "message": "Resource protected by organization SAML enforcement."}
                ],
            },
        )
    )
    with pytest.raises(CollectorError) as error:
        await collect(script.client())
    assert "SAML" in str(error.value)
    assert "authorize the token" in error.value.hint


async def test_a_query_github_cannot_finish_is_retried_with_smaller_pages() -> None:
    def respond(body: dict[str, Any]) -> httpx.Response:
        if body["variables"]["pageSize"] > 25:
            return httpx.Response(502, json={"message": "Server Error"})
        return httpx.Response(200, json=EMPTY_PRS)

    script = Script(respond)
    await collect(script.client())
    sizes = [body["variables"]["pageSize"] for body in script.bodies]
    assert sorted(set(sizes), reverse=True) == [100, 50, 25]
    assert sizes[-1] == 25


async def test_unknown_errors_are_retried_then_reported_as_transient() -> None:
    script = Script(lambda body: httpx.Response(200, json={"errors": [{"message": "Something went wrong"}]}))
    with pytest.raises(GitHubQueryError):
        await collect(script.client())
    assert len(script.bodies) > 5  # retried at every page size down to the minimum


async def test_graphql_rate_limit_waits_for_the_reset_header() -> None:
    calls = {"n": 0}

    def respond(body: dict[str, Any]) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(
                200,
                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"},  # seconds from now
                json={
                    "errors": [{"type": "RATE_LIMIT", "code": "graphql_rate_limit", "message": "exceeded"}]
                },
            )
        return httpx.Response(200, json=EMPTY_PRS)

    script = Script(respond)
    await collect(script.client())
    assert calls["n"] == 2
    assert any(25 <= s <= 32 for s in script.sleeps)
