"""The shared HTTP client's retry and rate-limit behaviour, driven by scripted responses."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from doraflow.core.http import (
    AuthenticationError,
    HttpClient,
    HttpError,
    NotFoundError,
    RateLimitExceededError,
)

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """Returns the given responses in order and records what was requested and slept."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.responses.pop(0)
        if isinstance(response, Exception):
            raise response
        return response

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, **options: float) -> HttpClient:
        return HttpClient(
            "https://api.example.test",
            headers={"Authorization": "Bearer secret"},
            transport=httpx.MockTransport(self),
            sleep=self.sleep,
            **options,  # type: ignore[arg-type]
        )


async def test_retries_5xx_with_growing_backoff_then_succeeds() -> None:
    script = Script(httpx.Response(502), httpx.Response(503), httpx.Response(200, json={"ok": True}))
    async with script.client(backoff_base=1.0) as client:
        assert await client.get_json("/x") == {"ok": True}
    assert len(script.requests) == 3
    assert 0.5 <= script.sleeps[0] <= 1.0
    assert 1.0 <= script.sleeps[1] <= 2.0


async def test_gives_up_after_max_retries() -> None:
    script = Script(*[httpx.Response(500) for _ in range(3)])
    async with script.client(max_retries=2) as client:
        with pytest.raises(HttpError, match="HTTP 500 after 3 attempts"):
            await client.get_json("/x")


async def test_network_errors_are_retried() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json=[]))
    async with script.client() as client:
        assert await client.get_json("/x") == []


async def test_429_retry_after_is_obeyed() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={}))
    async with script.client() as client:
        await client.get_json("/x")
    assert script.sleeps == [7.0]


async def test_github_primary_limit_waits_until_reset() -> None:
    reset = int(time.time()) + 120
    exhausted = httpx.Response(
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        json={"message": "API rate limit exceeded"},
    )
    script = Script(exhausted, httpx.Response(200, json={}, headers={"x-ratelimit-remaining": "4999"}))
    async with script.client() as client:
        await client.get_json("/x")
        assert client.rate_limit.remaining == 4999
    assert 115 <= script.sleeps[0] <= 122


async def test_github_secondary_limit_waits_a_minute() -> None:
    secondary = httpx.Response(403, json={"message": "You have exceeded a secondary rate limit."})
    script = Script(secondary, httpx.Response(200, json={}))
    async with script.client() as client:
        await client.get_json("/x")
    assert script.sleeps == [60.0]


async def test_wait_longer_than_allowed_raises() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "3600"}))
    async with script.client(max_wait=600) as client:
        with pytest.raises(RateLimitExceededError, match="3600s"):
            await client.get_json("/x")


async def test_low_budget_pauses_before_the_next_request() -> None:
    reset = int(time.time()) + 30
    low = httpx.Response(200, json={}, headers={"RateLimit-Remaining": "2", "RateLimit-Reset": str(reset)})
    script = Script(low, httpx.Response(200, json={}))
    async with script.client() as client:
        await client.get_json("/a")
        await client.get_json("/b")
    assert len(script.sleeps) == 1
    assert 25 <= script.sleeps[0] <= 32


async def test_linear_complexity_budget_is_recorded() -> None:
    headers = {"X-RateLimit-Requests-Remaining": "1499", "X-RateLimit-Complexity-Remaining": "250000"}
    script = Script(httpx.Response(200, json={}, headers=headers))
    async with script.client() as client:
        await client.get_json("/graphql")
        assert client.rate_limit.remaining == 1499
        assert client.rate_limit.extra["complexity_remaining"] == 250000


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (404, NotFoundError)])
async def test_client_errors_are_typed_and_not_retried(status: int, error: type[HttpError]) -> None:
    script = Script(httpx.Response(status, json={"message": "Bad credentials"}))
    async with script.client() as client:
        with pytest.raises(error, match="Bad credentials"):
            await client.get_json("/x")
    assert len(script.requests) == 1


async def test_conditional_get_returns_cached_body_on_304() -> None:
    script = Script(httpx.Response(200, json={"v": 1}, headers={"ETag": '"abc"'}), httpx.Response(304))
    async with script.client() as client:
        first = await client.request("GET", "/repos", conditional=True)
        second = await client.request("GET", "/repos", conditional=True)
    assert second.json() == first.json() == {"v": 1}
    assert script.requests[1].headers["If-None-Match"] == '"abc"'


async def test_link_header_pagination_follows_next() -> None:
    page1 = httpx.Response(
        200, json=[1, 2], headers={"Link": '<https://api.example.test/x?page=2>; rel="next"'}
    )
    page2 = httpx.Response(200, json=[3])
    script = Script(page1, page2)
    async with script.client() as client:
        items = [
            item
            async for response in client.paginate_links("/x", params={"per_page": 2})
            for item in response.json()
        ]
    assert items == [1, 2, 3]
    assert script.requests[1].url.params["page"] == "2"


async def test_429_with_exhausted_budget_waits_once() -> None:
    reset = int(time.time()) + 300
    limited = httpx.Response(
        429, headers={"Retry-After": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}
    )
    script = Script(limited, httpx.Response(200, json={}))
    async with script.client() as client:
        await client.get_json("/x")
    assert script.sleeps == [5.0]
