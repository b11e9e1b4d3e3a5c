"""Webhook signature verification and the collector's HTTP endpoints, through the real ASGI app."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from doraflow.collectors.base import Resource
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.collectors.runtime import CollectorRuntime
from doraflow.collectors.scheduling import Due
from doraflow.collectors.service import create_app, default_port
from doraflow.collectors.webhooks import WEBHOOKS, hmac_sha256_verifier, token_verifier, webhooks_for
from doraflow.core.bus import MemoryBus
from tests.unit.collectors.helpers import FakeClient, integration

SECRET = "It's a Secret to Everybody"
MARKER = "payload-marker-8f2c"  # must never appear in a log line
PUSH = orjson.dumps(
    {"ref": "refs/heads/main", "repository": {"full_name": "acme/api"}, "head_commit": {"message": MARKER}}
)


def github_signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_example_from_the_documentation() -> None:
    # GitHub's documented test vector for X-Hub-Signature-256 (docs.github.com, "Validating webhook
    # deliveries"): secret "It's a Secret to Everybody", payload "Hello, World!".
    verify = WEBHOOKS["github"].verify
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify({"x-hub-signature-256": signature}, b"Hello, World!", SECRET) is None
    assert verify({"x-hub-signature-256": signature}, b"Hello, World?", SECRET) is not None


@pytest.mark.parametrize(
    ("headers", "secret", "reason"),
    [
        ({}, SECRET, "missing X-Hub-Signature-256 header"),
        ({"x-hub-signature-256": "sha1=abc"}, SECRET, "is not an sha256 signature"),
        ({"x-hub-signature-256": "sha256=" + "0" * 64}, SECRET, "does not match"),
        ({"x-hub-signature-256": github_signature(PUSH)}, None, "no webhook secret is configured"),
        ({"x-hub-signature-256": github_signature(PUSH, "other")}, SECRET, "does not match"),
    ],
)
def test_github_rejections(headers: dict[str, str], secret: str | None, reason: str) -> None:
    result = hmac_sha256_verifier("X-Hub-Signature-256")(headers, PUSH, secret)
    assert result is not None
    assert reason in result


def test_gitlab_token_is_compared_exactly() -> None:
    verify = token_verifier("X-Gitlab-Token")
    assert verify({"x-gitlab-token": SECRET}, b"{}", SECRET) is None
    assert verify({"x-gitlab-token": SECRET + " "}, b"{}", SECRET) is not None
    assert verify({}, b"{}", SECRET) == "missing X-Gitlab-Token header"
    assert verify({"x-gitlab-token": SECRET}, b"{}", None) is not None


def test_bitbucket_signature_is_required_only_with_a_secret() -> None:
    verify = WEBHOOKS["bitbucket"].verify
    assert verify({}, PUSH, None) is None  # hook without a secret: Bitbucket sends no signature
    assert verify({}, PUSH, SECRET) == "missing X-Hub-Signature header"
    assert verify({"x-hub-signature": github_signature(PUSH)}, PUSH, SECRET) is None


def test_sources_mounted_per_provider() -> None:
    assert set(webhooks_for("github")) == {"github"}
    assert set(webhooks_for("gitlab")) == {"gitlab"}
    assert set(webhooks_for("git")) == {"github", "gitlab", "bitbucket"}  # a mirror of any forge


@pytest.fixture
async def runtime() -> CollectorRuntime:
    client = FakeClient(integration(), scopes=("acme/api", "acme/web"))
    bus = MemoryBus()
    await bus.start()
    return CollectorRuntime(
        client.integration, client, bus, MemoryCursorStore(), organization="acme", topic_prefix="doraflow"
    )


@pytest.fixture
async def http(runtime: CollectorRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, webhook_secret=SECRET, webhook_debounce=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
        yield client


def drain(runtime: CollectorRuntime) -> None:
    """Consume the start-up round, so only what a request triggers is due."""
    runtime.scheduler.take_due()


async def test_missing_or_wrong_signature_is_401_and_logged_without_the_payload(
    http: httpx.AsyncClient, runtime: CollectorRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    drain(runtime)
    bad = github_signature(PUSH, "guess")
    for headers in ({}, {"X-Hub-Signature-256": bad}):
        response = await http.post(
            "/webhooks/github",
            content=PUSH,
            headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", **headers},
        )
        assert response.status_code == 401
        assert MARKER not in response.text
    rejected = [r for r in caplog.records if r.getMessage() == "webhook rejected"]
    assert [r.reason for r in rejected] == [  # type: ignore[attr-defined]
        "missing X-Hub-Signature-256 header",
        "X-Hub-Signature-256 does not match the payload",
    ]
    assert rejected[0].delivery == "d-1"  # type: ignore[attr-defined]
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert MARKER not in logged
    assert SECRET not in logged
    assert bad not in logged
    assert runtime.scheduler.take_due() == []  # nothing triggered


async def test_a_valid_push_triggers_a_sync_of_that_repository(
    http: httpx.AsyncClient, runtime: CollectorRuntime
) -> None:
    drain(runtime)
    response = await http.post(
        "/webhooks/github",
        content=PUSH,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": github_signature(PUSH)},
    )
    assert response.status_code == 202
    assert response.json()["syncs"] == [{"scope": "acme/api", "resource": "commits"}]
    assert runtime.scheduler.take_due() == [Due(Resource.COMMITS, frozenset({"acme/api"}))]


async def test_pull_request_events_and_pings(http: httpx.AsyncClient, runtime: CollectorRuntime) -> None:
    drain(runtime)
    body = orjson.dumps({"action": "opened", "repository": {"full_name": "acme/web"}})
    response = await http.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": github_signature(body)},
    )
    assert response.status_code == 202
    assert runtime.scheduler.take_due() == [Due(Resource.PULL_REQUESTS, frozenset({"acme/web"}))]
    ping = b'{"zen": "Keep it logically awesome."}'
    response = await http.post(
        "/webhooks/github",
        content=ping,
        headers={"X-GitHub-Event": "ping", "X-Hub-Signature-256": github_signature(ping)},
    )
    assert response.status_code == 200
    assert runtime.scheduler.take_due() == []


async def test_a_signed_but_malformed_payload_is_400(http: httpx.AsyncClient) -> None:
    body = b"not json"
    response = await http.post(
        "/webhooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": github_signature(body)},
    )
    assert response.status_code == 400


async def test_webhooks_of_other_providers_are_not_mounted(http: httpx.AsyncClient) -> None:
    response = await http.post("/webhooks/gitlab", content=b"{}", headers={"X-Gitlab-Token": SECRET})
    assert response.status_code == 404


async def test_gitlab_and_bitbucket_handlers() -> None:
    gitlab = WEBHOOKS["gitlab"].handle(
        {"x-gitlab-event": "Merge Request Hook"},
        orjson.dumps({"project": {"path_with_namespace": "group/sub/api"}}),
    )
    assert [(s.scope, s.resources) for s in gitlab.syncs] == [("group/sub/api", (Resource.PULL_REQUESTS,))]
    tag_push = orjson.dumps(
        {
            "repository": {"full_name": "acme/api"},
            "push": {"changes": [{"new": {"type": "tag", "name": "v1"}}]},
        }
    )
    bitbucket = WEBHOOKS["bitbucket"].handle({"x-event-key": "repo:push"}, tag_push)
    (sync,) = bitbucket.syncs
    assert sync.scope == "acme/api"
    assert Resource.DEPLOYMENTS in sync.resources
    assert Resource.COMMITS in sync.resources


async def test_post_sync_triggers_now(http: httpx.AsyncClient, runtime: CollectorRuntime) -> None:
    drain(runtime)
    response = await http.post("/sync")
    assert response.status_code == 202
    assert response.json()["triggered"] == ["commits", "pull_requests"]
    assert runtime.scheduler.take_due() == [Due(Resource.COMMITS), Due(Resource.PULL_REQUESTS)]
    response = await http.post("/sync", json={"resource": "pull_requests", "scope": "acme/web"})
    assert response.json() == {"triggered": ["pull_requests"], "scope": "acme/web"}
    assert runtime.scheduler.take_due() == [Due(Resource.PULL_REQUESTS, frozenset({"acme/web"}))]
    response = await http.post("/sync?resource=issues")
    assert response.status_code == 400
    assert "does not collect issues" in response.json()["detail"]


async def test_status_health_ready_and_metrics(http: httpx.AsyncClient, runtime: CollectorRuntime) -> None:
    assert (await http.get("/health")).status_code == 200
    assert (await http.get("/ready")).status_code == 503  # topics not ensured yet
    await runtime.sync_once(Resource.COMMITS)
    runtime.status.ready = True
    assert (await http.get("/ready")).status_code == 200
    status = (await http.get("/status")).json()
    assert status["integration"] == "doraflow/acme-github"
    assert set(status["scopes"]) == {"acme/api", "acme/web"}
    assert status["summary"]["resources"]["commits"]["lastSyncTime"]
    metrics = (await http.get("/metrics")).text
    assert "doraflow_collector_sync_duration_seconds" in metrics
    assert "doraflow_collector_webhooks_total" in metrics


def test_default_ports() -> None:
    assert default_port(integration("github")) == 8000
    assert default_port(integration("jira")) == 8001
