"""The shared HTTP client's retry and rate-limit behaviour, driven by scripted responses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from doraflow.core.http import (
    AuthenticationError,
    Classify,
    HttpClient,
    HttpError,
    NotFoundError,
    RateLimitExceededError,
    Verdict,
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

    def classified(self, classify: Classify, **options: Any) -> HttpClient:
        return HttpClient(
            "https://api.example.test",
            transport=httpx.MockTransport(self),
            sleep=self.sleep,
            classify=classify,
            **options,
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


# ---- what a response means when its status does not say it (Linear's 400s) ----------------------


def graphql_error(code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"errors": [{"message": "no", "extensions": {"code": code}}]}
    return httpx.Response(400, json=body, headers=headers)


def by_code(response: httpx.Response) -> Verdict | None:
    if response.status_code != 400:
        return None
    code = response.json()["errors"][0]["extensions"]["code"]
    return {"RATELIMITED": Verdict.rate_limited(), "AUTHENTICATION_ERROR": Verdict(401)}.get(code)


def in_ms(seconds: float) -> str:
    return str(int((time.time() + seconds) * 1000))


async def test_a_classified_rate_limit_waits_for_the_exhausted_budget_then_retries() -> None:
    headers = {"X-RateLimit-Requests-Remaining": "0", "X-RateLimit-Requests-Reset": in_ms(20)}
    script = Script(graphql_error("RATELIMITED", headers), httpx.Response(200, json={"data": {}}))
    async with script.classified(by_code) as client:
        assert await client.get_json("/graphql") == {"data": {}}
    [waited] = script.sleeps
    assert 18 <= waited <= 22
    assert len(script.requests) == 2


async def test_a_classified_rate_limit_with_its_own_wait() -> None:
    script = Script(httpx.Response(400, json={}), httpx.Response(200, json={}))
    async with script.classified(lambda r: Verdict(429, 7.0) if r.status_code == 400 else None) as client:
        await client.get_json("/x")
    assert script.sleeps == [7.0]


async def test_an_exhausted_complexity_budget_is_the_one_waited_for() -> None:
    headers = {
        "X-RateLimit-Requests-Remaining": "4000",
        "X-RateLimit-Requests-Reset": in_ms(3000),
        "X-RateLimit-Complexity-Remaining": "0",
        "X-RateLimit-Complexity-Reset": in_ms(40),
    }
    script = Script(graphql_error("RATELIMITED", headers), httpx.Response(200, json={}))
    async with script.classified(by_code) as client:
        await client.get_json("/graphql")
    [waited] = script.sleeps
    assert 38 <= waited <= 42


async def test_a_classified_error_is_typed_and_keeps_what_the_server_sent() -> None:
    script = Script(graphql_error("AUTHENTICATION_ERROR"))
    async with script.classified(by_code) as client:
        with pytest.raises(AuthenticationError) as raised:
            await client.get_json("/graphql")
    assert raised.value.status == 401
    assert raised.value.response is not None
    assert raised.value.response.status == 400
    assert raised.value.response.body["errors"][0]["extensions"]["code"] == "AUTHENTICATION_ERROR"
    assert len(script.requests) == 1


async def test_other_400s_stay_400s() -> None:
    script = Script(graphql_error("GRAPHQL_VALIDATION_FAILED"))
    async with script.classified(by_code) as client:
        with pytest.raises(HttpError) as raised:
            await client.get_json("/graphql")
    assert raised.value.status == 400
    assert not isinstance(raised.value, AuthenticationError)


async def test_errors_carry_status_headers_and_the_parsed_body() -> None:
    script = Script(
        httpx.Response(
            412, json={"errors": [{"message": "sync token"}], "sync": "abc"}, headers={"X-Id": "1"}
        ),
        httpx.Response(404, text="<html>not here</html>"),
    )
    async with script.client() as client:
        with pytest.raises(HttpError) as precondition:
            await client.get_json("/events")
        with pytest.raises(NotFoundError) as missing:
            await client.get_json("/gone")
    assert precondition.value.status == 412
    assert precondition.value.response is not None
    assert precondition.value.response.body["sync"] == "abc"
    assert precondition.value.response.headers["x-id"] == "1"
    assert missing.value.response is not None
    assert missing.value.response.body is None  # not JSON
    assert missing.value.response.status == 404


def complexity(remaining: int, cost: int, reset_in: float) -> httpx.Response:
    headers = {
        "X-RateLimit-Requests-Remaining": "4990",
        "X-RateLimit-Complexity-Remaining": str(remaining),
        "X-RateLimit-Complexity-Reset": in_ms(reset_in),
        "X-Complexity": str(cost),
    }
    return httpx.Response(200, json={}, headers=headers)


@pytest.mark.parametrize(
    ("remaining", "cost", "pauses"),
    [
        (250_000, 10, False),
        (900, 10, True),  # below the reserve
        (5_000, 3_000, True),  # would not cover twice the last query's cost
        (7_000, 3_000, False),
    ],
)
async def test_a_low_complexity_budget_pauses_until_its_reset(
    remaining: int, cost: int, pauses: bool
) -> None:
    script = Script(complexity(remaining, cost, 30), httpx.Response(200, json={}))
    async with script.client(low_complexity=1000) as client:
        await client.get_json("/graphql")
        await client.get_json("/graphql")
        if pauses:
            assert "complexity_remaining" not in client.rate_limit.extra  # the next response tells
    assert len(script.sleeps) == (1 if pauses else 0)
    assert all(28 <= s <= 32 for s in script.sleeps)


async def test_a_complexity_pause_longer_than_allowed_raises_before_sending() -> None:
    script = Script(complexity(10, 10, 3600))
    async with script.client(max_wait=600) as client:
        await client.get_json("/graphql")
        with pytest.raises(RateLimitExceededError, match="budget exhausted"):
            await client.get_json("/graphql")
    assert len(script.requests) == 1
