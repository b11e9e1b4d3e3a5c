"""The `Cluster` protocol on the real Kubernetes API (kubernetes_asyncio).

Server-side apply with a fixed field manager makes `apply` idempotent and lets users add their own
labels or annotations to what we create without us fighting over them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from doraflow.core.resources import API_GROUP, API_VERSION

FIELD_MANAGER = "doraflow-operator"
APPLY = "application/apply-patch+yaml"


async def load_api_client() -> client.ApiClient:
    """In a pod: the service account; elsewhere: the kubeconfig (`KUBECONFIG` or ~/.kube/config)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config()
    return client.ApiClient()


def _absent(exc: ApiException) -> bool:
    return int(exc.status or 0) == 404


class KubernetesCluster:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client
        # Typed as Any: we send raw manifests (server-side apply), not the generated model classes.
        self._core: Any = client.CoreV1Api(api_client)
        self._apps: Any = client.AppsV1Api(api_client)
        self._custom: Any = client.CustomObjectsApi(api_client)
        self._rbac: Any = client.RbacAuthorizationV1Api(api_client)

    async def _get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self._custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if _absent(exc):
                return None
            raise
        return body

    async def get_organization(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_custom("organizations", namespace, name)

    async def get_integration(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_custom("integrations", namespace, name)

    async def patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        await self._custom.patch_namespaced_custom_object_status(
            API_GROUP,
            API_VERSION,
            namespace,
            plural,
            name,
            {"status": dict(status)},
            _content_type="application/merge-patch+json",  # the client would pick JSON Patch
        )

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            secret = await self._core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if _absent(exc):
                return None
            raise
        # Only the key names: the operator never needs (or holds) a credential's value.
        return {"data": dict.fromkeys(secret.data or {}, "")}

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        kind = manifest["kind"]
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"]["namespace"]
        options: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY}
        patchers = {
            "Deployment": self._apps.patch_namespaced_deployment,
            "ConfigMap": self._core.patch_namespaced_config_map,
            "ServiceAccount": self._core.patch_namespaced_service_account,
            "Role": self._rbac.patch_namespaced_role,
            "RoleBinding": self._rbac.patch_namespaced_role_binding,
        }
        if kind not in patchers:
            raise ValueError(f"apply does not handle {kind}")
        result = await patchers[kind](name, namespace, dict(manifest), **options)
        applied: dict[str, Any] = self._api.sanitize_for_serialization(result)
        return applied

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            deployment = await self._apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if _absent(exc):
                return None
            raise
        body: dict[str, Any] = self._api.sanitize_for_serialization(deployment)
        return body

    async def create_secret(self, manifest: Mapping[str, Any]) -> None:
        try:
            await self._core.create_namespaced_secret(manifest["metadata"]["namespace"], dict(manifest))
        except ApiException as exc:
            if int(exc.status or 0) != 409:  # already there: someone (a previous pass) created it
                raise
