"""The collector process: the runtime plus its HTTP face (port 8000 git, 8001 work).

`/health`, `/ready` and `/metrics` as every service (core.service), `POST /sync` to collect now,
`GET /status` for what the collector knows about itself, and `POST /webhooks/{source}` for the
webhook sources that match the integration's provider (see `webhooks`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from doraflow.collectors import webhooks
from doraflow.collectors.credentials import load_webhook_secret
from doraflow.collectors.cursors import CursorStore
from doraflow.collectors.registry import create_client
from doraflow.collectors.runtime import CollectorRuntime, ProgressCallback
from doraflow.collectors.status import WEBHOOKS, StatusReporter
from doraflow.core.bus import EventBus
from doraflow.core.resources import (
    Integration,
    KafkaTopicSettings,
    Organization,
    ResourceError,
    load_resources,
)
from doraflow.core.service import add_service_endpoints, serve, stop_on_signals
from doraflow.core.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"git": 8000, "work": 8001}
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024  # GitHub caps deliveries at 25 MB


def default_port(integration: Integration) -> int:
    return DEFAULT_PORTS[integration.spec.provider.kind]


def load_integration(path: Path, key: str) -> tuple[Integration, Organization | None]:
    """The Integration `key` ("namespace/name", or "name" in `default`) from a YAML file of
    resources, with the Organization it references when the file holds it (for its slug and Kafka
    topic settings). `ResourceError` says what is missing."""
    namespace, _, name = key.rpartition("/")
    namespace = namespace or "default"
    resources = load_resources(path)
    integrations = [r for r in resources if isinstance(r, Integration)]
    found = next(
        (i for i in integrations if (i.metadata.namespace, i.metadata.name) == (namespace, name)), None
    )
    if found is None:
        known = ", ".join(i.key for i in integrations) or "none"
        raise ResourceError(f"{path}: no Integration {namespace}/{name} (found: {known})")
    organization = next(
        (
            r
            for r in resources
            if isinstance(r, Organization)
            and (r.metadata.namespace, r.metadata.name) == (namespace, found.spec.organization_ref.name)
        ),
        None,
    )
    return found, organization


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse(
        {"title": "Bad Request" if status == 400 else "Error", "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app(
    runtime: CollectorRuntime,
    *,
    webhook_secret: str | None = None,
    webhook_debounce: float = 5.0,
) -> FastAPI:
    kind = runtime.integration.spec.provider.kind
    app = FastAPI(title=f"Doraflow {kind} collector", version="0.1.0")

    async def runtime_ready() -> bool:
        return runtime.ready

    add_service_endpoints(app, f"doraflow-collector-{kind}", {"collector": runtime_ready})
    sources = webhooks.webhooks_for(runtime.integration.spec.provider.value)

    @app.post("/sync", status_code=202, summary="Collect now (all resources, or one)")
    async def sync(request: Request, resource: str | None = None, scope: str | None = None) -> JSONResponse:
        body = await request.body()
        if body:
            try:
                options = orjson.loads(body)
            except orjson.JSONDecodeError:
                return _problem(400, 'the body must be JSON: {"resource": ..., "scope": ...}')
            if isinstance(options, dict):
                resource = options.get("resource", resource)
                scope = options.get("scope", scope)
        try:
            triggered = runtime.sync_now(resource, scope)
        except ValueError as exc:
            return _problem(400, str(exc))
        return JSONResponse({"triggered": [r.value for r in triggered], "scope": scope}, status_code=202)

    @app.get("/status", summary="Per-resource sync state, problems and rate-limit budget")
    async def status() -> dict[str, Any]:
        return runtime.status.to_dict()

    @app.post("/webhooks/{source}", summary="Provider webhooks (verified, then a debounced sync)")
    async def webhook(source: str, request: Request) -> JSONResponse:
        hook = sources.get(source)
        if hook is None:
            return _problem(404, f"no webhook {source!r} for provider {runtime.integration.spec.provider}")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_WEBHOOK_BYTES:
            WEBHOOKS.labels(source, "too_large").inc()
            return _problem(413, "payload too large")
        body = await request.body()
        reason = hook.verify(request.headers, body, webhook_secret)
        if reason is not None:
            WEBHOOKS.labels(source, "rejected").inc()
            logger.warning(
                "webhook rejected",
                extra={
                    "integration": runtime.integration.key,
                    "source": source,
                    "reason": reason,
                    "client": request.client.host if request.client else None,
                    "delivery": _delivery_id(request),
                },
            )
            return JSONResponse({"detail": "invalid or missing webhook signature"}, status_code=401)
        try:
            outcome = hook.handle(request.headers, body)
        except ValueError as exc:
            WEBHOOKS.labels(source, "invalid").inc()
            return _problem(400, str(exc))
        triggered: list[dict[str, Any]] = []
        for request_ in outcome.syncs:
            for resource in request_.resources:
                if resource in runtime.resources:
                    runtime.sync_now(resource, request_.scope, delay=webhook_debounce)
                    triggered.append({"scope": request_.scope, "resource": resource.value})
        WEBHOOKS.labels(source, "accepted" if triggered else "ignored").inc()
        logger.info(
            "webhook received",
            extra={
                "integration": runtime.integration.key,
                "source": source,
                "delivery": _delivery_id(request),
                "syncs": len(triggered),
            },
        )
        body_out = {**(outcome.body or {}), "syncs": triggered}
        return JSONResponse(body_out, status_code=outcome.status_code, headers=dict(outcome.headers))

    return app


def _delivery_id(request: Request) -> str | None:
    for name in ("x-github-delivery", "x-gitlab-event-uuid", "x-request-uuid", "x-request-id"):
        if value := request.headers.get(name):
            return value[:100]
    return None


async def run_collector(
    settings: Settings,
    integration: Integration,
    credentials: str | None,
    bus: EventBus,
    cursor_store: CursorStore,
    *,
    host: str = "0.0.0.0",  # noqa: S104 - a collector in a Pod listens on the Pod's address
    port: int | None = None,
    stop: asyncio.Event | None = None,
    progress: ProgressCallback | None = None,
    organization: str | None = None,
    topic_settings: KafkaTopicSettings | None = None,
    status_reporter: StatusReporter | None = None,
    webhook_secret: str | None = None,
    webhook_debounce: float = 5.0,
) -> None:
    """Run one Integration's collector until `stop` is set (or SIGTERM/SIGINT when `stop` is None).

    The caller owns `bus` (started before, stopped after: `doraflow up` shares one bus between the
    collectors and the processor) and the cursor store. `port=None` serves no HTTP (embedded mode).
    `organization` is the Organization's slug (default: `spec.organizationRef.name`). The webhook
    secret defaults to `DORAFLOW_WEBHOOK_SECRET` / `DORAFLOW_WEBHOOK_SECRET_FILE`.
    """
    client = create_client(integration, credentials)
    runtime = CollectorRuntime(
        integration,
        client,
        bus,
        cursor_store,
        organization=organization or integration.spec.organization_ref.name,
        topic_prefix=settings.kafka_topic_prefix,
        progress=progress,
        status_reporter=status_reporter,
        topic_settings=topic_settings,
    )
    secret = webhook_secret if webhook_secret is not None else load_webhook_secret()
    done = stop if stop is not None else asyncio.Event()
    restore = stop_on_signals(done) if stop is None else (lambda: None)
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(runtime.run(done), name="collector-runtime")]
    if port is not None:
        app = create_app(runtime, webhook_secret=secret, webhook_debounce=webhook_debounce)
        tasks.append(asyncio.create_task(serve(app, host, port, stop=done), name="collector-http"))
    logger.info(
        "collector process starting",
        extra={"integration": integration.key, "provider": client.provider, "port": port},
    )
    stop_task = asyncio.create_task(done.wait())
    try:
        await asyncio.wait([stop_task, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        done.set()
        stop_task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        restore()
        await client.aclose()
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result
