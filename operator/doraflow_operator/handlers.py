"""kopf handlers: thin. Each one gathers its inputs and calls a reconcile function (reconcile.py).

Level-based: create, update, resume and a drift timer run the same idempotent reconcile, and a change
to a collector Deployment we own (someone deleted or scaled it) re-reconciles its Integration at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from doraflow.core.bus import create_bus
from doraflow.core.resources import API_GROUP, API_VERSION
from doraflow.core.settings import get_settings
from doraflow_operator.conditions import status_changed
from doraflow_operator.kube import KubernetesCluster, load_api_client
from doraflow_operator.manifests import MANAGED_BY
from doraflow_operator.reconcile import (
    Outcome,
    delete_organization_topics,
    reconcile_integration,
    reconcile_organization,
)
from doraflow_operator.registry import ApiRegistry

RESYNC_SECONDS = get_settings().operator_resync_seconds


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    config = get_settings()
    # Progress and diff-base in annotations under our own prefix; status stays ours and the collector's.
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=API_GROUP)
    settings.posting.level = logging.WARNING
    settings.networking.error_backoffs = [1, 5, 15, 30, 60]
    memo.settings = config
    memo.bus = create_bus(config.kafka_bootstrap_servers)
    await memo.bus.start()
    memo.cluster = KubernetesCluster(await load_api_client())
    memo.registry = ApiRegistry(config)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    await memo.bus.stop()
    await memo.registry.aclose()


def _finish(outcome: Outcome, body: Mapping[str, Any], patch: kopf.Patch, logger: kopf.Logger) -> None:
    for line in outcome.log:
        logger.info(line)
    if status_changed(body.get("status"), outcome.status):
        patch.setdefault("status", {}).update(outcome.status)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(outcome.status.get("message") or "retrying", delay=outcome.retry_after)


@kopf.on.resume(API_GROUP, API_VERSION, "organizations")
@kopf.on.create(API_GROUP, API_VERSION, "organizations")
@kopf.on.update(API_GROUP, API_VERSION, "organizations", field="spec")
@kopf.timer(API_GROUP, API_VERSION, "organizations", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def organization(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    outcome = await reconcile_organization(
        body,
        cluster=memo.cluster,
        registry=memo.registry,
        bus=memo.bus,
        settings=memo.settings,
        now=datetime.now(UTC),
    )
    _finish(outcome, body, patch, logger)


@kopf.on.delete(API_GROUP, API_VERSION, "organizations", field="spec.deletionPolicy", value="Delete")
async def organization_deleted(body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    """Only organizations with `deletionPolicy: Delete` get a finalizer: only they need cleanup."""
    deleted = await delete_organization_topics(body, bus=memo.bus, settings=memo.settings)
    logger.info(f"deleted {len(deleted)} topics")


@kopf.on.resume(API_GROUP, API_VERSION, "integrations")
@kopf.on.create(API_GROUP, API_VERSION, "integrations")
@kopf.on.update(API_GROUP, API_VERSION, "integrations", field="spec")
@kopf.timer(API_GROUP, API_VERSION, "integrations", interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def integration(body: kopf.Body, patch: kopf.Patch, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    outcome = await reconcile_integration(
        body, cluster=memo.cluster, bus=memo.bus, settings=memo.settings, now=datetime.now(UTC)
    )
    _finish(outcome, body, patch, logger)


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
async def collector_deployment_changed(
    event: kopf.RawEvent, body: kopf.Body, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    """A collector Deployment changed (became available, was scaled, or was deleted): bring its
    Integration's status up to date and, for a deletion, recreate it now rather than at the next tick."""
    owners = [ref for ref in body.metadata.get("ownerReferences", []) if ref.get("kind") == "Integration"]
    if not owners:
        return
    namespace = body.metadata.namespace or "default"
    integration_body = await memo.cluster.get_integration(namespace, owners[0]["name"])
    if integration_body is None or integration_body["metadata"].get("deletionTimestamp"):
        return  # the owner is going away; the garbage collector handles the rest
    outcome = await reconcile_integration(
        integration_body, cluster=memo.cluster, bus=memo.bus, settings=memo.settings, now=datetime.now(UTC)
    )
    if status_changed(integration_body.get("status"), outcome.status):
        await memo.cluster.patch_status("integrations", namespace, owners[0]["name"], outcome.status)
    if event.get("type") == "DELETED":
        logger.info(f"collector Deployment {body.metadata.name} was deleted; recreated it")
