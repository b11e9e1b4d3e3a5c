"""Report a collector's sync status into its Integration resource (cluster mode).

The collector's own ServiceAccount may only `get` its Integration and `patch` its status (the operator
creates that Role). Conditions are shared with the operator — it owns `Ready`, we own `Synced` — so each
side reads the current list and replaces only its own entry; status is written only when it changes.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes_asyncio import client, config

from doraflow.core.resources import API_GROUP, API_VERSION

logger = logging.getLogger(__name__)

OWN_CONDITIONS = {"Synced"}


def merge_status(current: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """`reported` with the conditions we do not own kept from `current`."""
    theirs = [c for c in current.get("conditions") or [] if c.get("type") not in OWN_CONDITIONS]
    ours = [c for c in reported.get("conditions") or [] if c.get("type") in OWN_CONDITIONS]
    return {**reported, "conditions": sorted(theirs + ours, key=lambda c: str(c.get("type")))}


class KubernetesStatusReporter:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._custom: Any = client.CustomObjectsApi(api_client)
        self._last: dict[str, Any] | None = None

    @classmethod
    async def in_cluster(cls) -> KubernetesStatusReporter:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config()
        return cls(client.ApiClient())

    async def report(self, integration: str, status: dict[str, Any]) -> None:
        if status == self._last:
            return
        namespace, _, name = integration.rpartition("/")
        try:
            current = await self._custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace or "default", "integrations", name
            )
            merged = merge_status(current.get("status") or {}, status)
            await self._custom.patch_namespaced_custom_object_status(
                API_GROUP,
                API_VERSION,
                namespace or "default",
                "integrations",
                name,
                {"status": merged},
                _content_type="application/merge-patch+json",
            )
        except client.ApiException as exc:
            # Status is informative; a failure to write it must never stop collection.
            logger.warning("cannot update the Integration's status", extra={"status_code": exc.status})
            return
        self._last = status
