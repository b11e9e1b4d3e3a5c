"""The one HTTP client every collector uses: retries, rate limits, conditional requests.

Providers differ in how they say "slow down" — GitHub's `x-ratelimit-*` and secondary-limit 403s,
GitLab's `RateLimit-*`, Jira/Asana/Bitbucket 429 + `Retry-After`, Linear's complexity budget — but the
right reaction is the same: wait as long as the server asks (capped), then retry; back off
exponentially on 5xx and network errors; never hammer. Writing this once is what keeps a collector
from getting an integration's token banned.

Some providers say it with the wrong status (Linear answers HTTP 400 with a `RATELIMITED` or
`AUTHENTICATION_ERROR` code in the body). They pass a `classify` hook that reads the response and
returns the `Verdict` it really means, so those waits and typed errors still happen here, not in a
provider's own retry loop. A failure keeps what the server said (`HttpError.response`: status,
headers, parsed body) for providers whose error bodies carry data (Asana's 412 holds a fresh sync
token).

Credentials live in the client's default headers and are never logged.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import Counter, Gauge

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "doraflow_http_client_requests_total", "Requests to provider APIs", ["host", "status"]
)
RATE_LIMIT_REMAINING = Gauge(
    "doraflow_http_client_rate_limit_remaining", "Last rate-limit budget a provider reported", ["host"]
)
RATE_LIMIT_WAITS = Counter(
    "doraflow_http_client_rate_limit_waits_total", "Times a provider asked us to wait", ["host"]
)

# Header names providers use for the remaining budget and its reset, most specific first.
_REMAINING_HEADERS = (
    "x-ratelimit-remaining",  # GitHub, Bitbucket, Jira
    "ratelimit-remaining",  # GitLab (IETF draft)
    "x-ratelimit-requests-remaining",  # Linear
    "x-ratelimit-complexity-remaining",  # Linear GraphQL complexity
)
_RESET_HEADERS = ("x-ratelimit-reset", "ratelimit-reset", "x-ratelimit-requests-reset")
_COMPLEXITY_RESET_HEADER = "x-ratelimit-complexity-reset"  # Linear: when the complexity budget refills
_COMPLEXITY_COST_HEADER = "x-complexity"  # Linear: what the query just made cost


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """The response a request failed with, as the server sent it (`status` before any `Verdict`)."""

    status: int
    headers: httpx.Headers
    body: Any  # the parsed JSON body; None when the body is not JSON

    @classmethod
    def of(cls, response: httpx.Response) -> ErrorResponse:
        return cls(response.status_code, response.headers, _json_or_none(response))


class HttpError(Exception):
    """A request that failed for good. `status` is what the failure means (None for network errors);
    `response` is what the server sent, for providers that read their own error details."""

    def __init__(
        self, message: str, *, status: int | None = None, url: str = "", response: ErrorResponse | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.response = response


class AuthenticationError(HttpError):
    """401: the credentials are wrong, expired or revoked."""


class ForbiddenError(HttpError):
    """403 that is not a rate limit: the credentials lack a permission or scope."""


class NotFoundError(HttpError):
    """404: the resource does not exist or is invisible to these credentials."""


class RateLimitExceededError(HttpError):
    """The server asked us to wait longer than we are willing to block."""


@dataclass
class RateLimitState:
    """The budget the server last reported; collectors publish it as `rateLimitRemaining`.

    Linear has a second budget, query complexity (points per hour), next to its request count: the
    remaining points are `extra["complexity_remaining"]`, with their own reset and the cost of the
    last query, so the client can pause before a query the budget cannot cover."""

    remaining: int | None = None
    reset_at: float | None = None  # unix time
    extra: dict[str, int] = field(default_factory=dict)  # e.g. Linear's complexity budget
    complexity_reset_at: float | None = None  # unix time
    complexity_cost: int | None = None  # what the last query cost


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a response means when its status does not say it, from a provider's `classify` hook.

    `status` is the status the client then reacts to: 429 waits `retry_after` seconds (None: until
    the exhausted budget resets) and retries; 401, 403 and 404 raise their typed errors; anything
    else is handled as that status would be."""

    status: int
    retry_after: float | None = None

    @classmethod
    def rate_limited(cls, seconds: float | None = None) -> Verdict:
        return cls(429, seconds)


Classify = Callable[[httpx.Response], Verdict | None]
Sleep = Callable[[float], Awaitable[None]]


class HttpClient:
    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        max_wait: float = 900.0,
        low_budget: int = 5,
        low_complexity: int = 1000,
        max_concurrency: int = 8,
        etag_cache_size: int = 2048,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
        classify: Classify | None = None,
    ) -> None:
        """`low_budget`/`low_complexity`: pause for the reset once the request count or the
        complexity points left are down to this (complexity: or below twice the last query's cost).
        `classify`: the provider's reading of responses whose status does not say what they mean."""
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers={"User-Agent": "doraflow-collector", **(headers or {})},
            timeout=timeout,
            transport=transport,
            follow_redirects=True,
        )
        self.host = httpx.URL(base_url).host or base_url
        self.rate_limit = RateLimitState()
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._max_wait = max_wait
        self._low_budget = low_budget
        self._low_complexity = low_complexity
        self._classify = classify
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._etags: OrderedDict[str, tuple[str, httpx.Response]] = OrderedDict()
        self._etag_cache_size = etag_cache_size
        self.requests_made = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        conditional: bool = False,
    ) -> httpx.Response:
        """Send with retries. `conditional=True` revalidates with the last ETag, so an unchanged
        resource costs a 304 (which GitHub does not count against the budget) and returns the cached
        response."""
        cache_key = f"{url}?{sorted((params or {}).items())}"
        request_headers = dict(headers or {})
        cached = self._etags.get(cache_key) if conditional and method == "GET" else None
        if cached:
            request_headers["If-None-Match"] = cached[0]
        attempt = 0
        while True:
            await self._respect_low_budget()
            try:
                async with self._semaphore:
                    response = await self._client.request(
                        method, url, params=params, json=json, headers=request_headers
                    )
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self._max_retries:
                    raise HttpError(f"{method} {url}: {exc!r}", url=url) from exc
                await self._backoff(attempt, f"network error: {exc!r}")
                continue
            self.requests_made += 1
            HTTP_REQUESTS.labels(self.host, str(response.status_code)).inc()
            self._record_budget(response)

            if response.status_code == 304 and cached:
                return cached[1]
            verdict = self._classify(response) if self._classify is not None else None
            status = verdict.status if verdict is not None else response.status_code
            wait = self._rate_limit_wait(response, verdict)
            if wait is not None:
                RATE_LIMIT_WAITS.labels(self.host).inc()
                if wait > self._max_wait:
                    raise RateLimitExceededError(
                        f"{self.host} asks to wait {wait:.0f}s (limit {self._max_wait:.0f}s)",
                        status=status,
                        url=url,
                        response=ErrorResponse.of(response),
                    )
                logger.warning("rate limited, waiting", extra={"host": self.host, "seconds": round(wait, 1)})
                await self._sleep(wait)
                # The wait the server asked for is served: forget the exhausted budget, or the
                # low-budget pause would wait for the reset a second time.
                self._forget_low_budgets()
                continue
            if status >= 500 or status == 408:
                attempt += 1
                if attempt > self._max_retries:
                    raise HttpError(
                        f"{method} {url}: HTTP {status} after {attempt} attempts",
                        status=status,
                        url=url,
                        response=ErrorResponse.of(response),
                    )
                await self._backoff(attempt, f"HTTP {status}")
                continue
            self._raise_for_status(method, url, response, status)
            if conditional and method == "GET" and (etag := response.headers.get("etag")):
                self._remember(cache_key, etag, response)
            return response

    async def get_json(self, url: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return (await self.request("GET", url, params=params, **kwargs)).json()

    async def paginate_links(
        self, url: str, *, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Follow RFC 8288 `Link: <…>; rel="next"` headers (GitHub REST, GitLab)."""
        next_url: str | None = url
        next_params = params
        while next_url:
            response = await self.request("GET", next_url, params=next_params)
            yield response
            next_link = response.links.get("next")
            next_url = next_link.get("url") if next_link else None
            next_params = None  # the next link carries its own query string

    def _record_budget(self, response: httpx.Response) -> None:
        headers = response.headers
        found_requests_budget = False
        for name in _REMAINING_HEADERS:
            value = _int_header(headers, name)
            if value is None:
                continue
            if name == "x-ratelimit-complexity-remaining":
                self.rate_limit.extra["complexity_remaining"] = value
            elif not found_requests_budget:
                found_requests_budget = True
                self.rate_limit.remaining = value
                RATE_LIMIT_REMAINING.labels(self.host).set(value)
        for name in _RESET_HEADERS:
            reset = _int_header(headers, name)
            if reset is not None:
                self.rate_limit.reset_at = _reset_to_unix(reset)
                break
        if (reset := _int_header(headers, _COMPLEXITY_RESET_HEADER)) is not None:
            self.rate_limit.complexity_reset_at = _reset_to_unix(reset)
        if (cost := _int_header(headers, _COMPLEXITY_COST_HEADER)) is not None:
            self.rate_limit.complexity_cost = cost

    def _rate_limit_wait(self, response: httpx.Response, verdict: Verdict | None = None) -> float | None:
        """Seconds the server wants us to wait, or None when this is not a rate-limit response."""
        if verdict is not None:
            if verdict.status != 429:
                return None
            if verdict.retry_after is not None:
                return verdict.retry_after
            return self._seconds_until_reset(default=30.0)
        status = response.status_code
        if status not in (403, 429, 503):
            return None
        retry_after = _retry_after_seconds(response.headers.get("retry-after"))
        if retry_after is not None:
            return retry_after
        if status == 403:
            # GitHub's primary limit: 403 with remaining 0; its secondary limit: 403 whose message says
            # so (and usually a Retry-After, handled above) — wait a minute as GitHub documents.
            if _int_header(response.headers, "x-ratelimit-remaining") == 0:
                return self._seconds_until_reset(default=60.0)
            if "secondary rate limit" in response.text.lower():
                return 60.0
            return None
        if status == 429:
            return self._seconds_until_reset(default=30.0)
        return None  # 503 without Retry-After: a 5xx, retried with back-off

    def _seconds_until_reset(self, default: float) -> float:
        """Until the exhausted budget refills: the one reported at zero (requests or complexity),
        else the request budget's reset, else `default`."""
        state = self.rate_limit
        complexity = state.extra.get("complexity_remaining")
        exhausted = [
            reset
            for remaining, reset in (
                (state.remaining, state.reset_at),
                (complexity, state.complexity_reset_at),
            )
            if remaining is not None and remaining <= 0 and reset is not None
        ]
        reset_at = max(exhausted) if exhausted else state.reset_at
        if reset_at is None:
            return default
        return max(1.0, reset_at - time.time() + 1.0)

    def _low_budget_resets(self) -> list[float]:
        """Resets of the budgets that are (nearly) used up: the request count at `low_budget`, or
        complexity points that would not cover `low_complexity` or twice the last query's cost."""
        state = self.rate_limit
        resets: list[float] = []
        if state.remaining is not None and state.remaining <= self._low_budget and state.reset_at is not None:
            resets.append(state.reset_at)
        complexity = state.extra.get("complexity_remaining")
        reserve = max(self._low_complexity, 2 * (state.complexity_cost or 0))
        if complexity is not None and complexity < reserve and state.complexity_reset_at is not None:
            resets.append(state.complexity_reset_at)
        return resets

    def _forget_low_budgets(self) -> None:
        """After waiting for a reset: the next response reports the refilled budgets."""
        self.rate_limit.remaining = None
        self.rate_limit.extra.pop("complexity_remaining", None)

    async def _respect_low_budget(self) -> None:
        """Pause before a budget is exhausted instead of burning the last requests into 403s (or
        Linear queries into RATELIMITED errors)."""
        resets = self._low_budget_resets()
        if not resets:
            return
        wait = max(resets) - time.time() + 1.0
        if wait <= 0:
            return
        if wait > self._max_wait:
            raise RateLimitExceededError(f"{self.host} budget exhausted until reset in {wait:.0f}s")
        logger.warning("rate-limit budget low, pausing", extra={"host": self.host, "seconds": round(wait)})
        RATE_LIMIT_WAITS.labels(self.host).inc()
        await self._sleep(wait)
        self._forget_low_budgets()

    async def _backoff(self, attempt: int, reason: str) -> None:
        delay = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        delay *= 0.5 + random.random() / 2  # noqa: S311 - jitter, not cryptography
        logger.info("retrying", extra={"host": self.host, "attempt": attempt, "reason": reason})
        await self._sleep(delay)

    def _raise_for_status(self, method: str, url: str, response: httpx.Response, status: int) -> None:
        """Raise the typed error for `status` (the response's own, or what `classify` says it means)."""
        if status < 400:
            return
        detail = _error_detail(response)
        message = f"{method} {url}: HTTP {status}{': ' + detail if detail else ''}"
        error = {401: AuthenticationError, 403: ForbiddenError, 404: NotFoundError}.get(status, HttpError)
        raise error(message, status=status, url=url, response=ErrorResponse.of(response))

    def _remember(self, key: str, etag: str, response: httpx.Response) -> None:
        self._etags[key] = (etag, response)
        self._etags.move_to_end(key)
        while len(self._etags) > self._etag_cache_size:
            self._etags.popitem(last=False)


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _reset_to_unix(value: int) -> float:
    """Reset headers are epoch seconds (GitHub), epoch milliseconds (Linear) or seconds from now."""
    now = time.time()
    if value > 10**11:
        return value / 1000.0
    if value > 10**9:
        return float(value)
    return now + value


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # not JSON (or not text): the caller has the status and headers
        return None


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "errorMessages", "errors"):
            if key in body:
                return str(body[key])[:300]
    return ""
