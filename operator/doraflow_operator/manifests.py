"""Manifests the operator owns: per Integration, a ConfigMap with its spec and a collector Deployment.

Pure functions of (resource, settings) so they are unit-tested without a cluster and applied with
server-side apply (idempotent: applying the same manifest twice changes nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from doraflow.core.resources import API_GROUP, Integration, Organization
from doraflow.core.settings import Settings

MANAGED_BY = "doraflow-operator"
CONFIG_MOUNT = "/etc/doraflow"
CREDENTIALS_MOUNT = "/var/run/secrets/doraflow"
CACHE_MOUNT = "/var/cache/doraflow"
COLLECTOR_PORTS = {"git": 8000, "work": 8001}
RUN_AS_USER = 10001


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """Make the resource the controller of what we create, so deleting it garbage-collects them."""
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": body["metadata"]["name"],
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def collector_name(integration: Integration) -> str:
    """`doraflow-collector-<name>`, shortened with a hash when over the 63-character label limit."""
    name = f"doraflow-collector-{integration.metadata.name}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(integration.metadata.name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def labels(integration: Integration) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "doraflow",
        "app.kubernetes.io/component": f"{integration.spec.provider.kind}-collector",
        "app.kubernetes.io/instance": collector_name(integration),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "doraflow.dev/integration": integration.metadata.name,
        "doraflow.dev/provider": integration.spec.provider.value,
    }


def _document(resource: Integration | Organization) -> dict[str, Any]:
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": resource.metadata.name, "namespace": resource.metadata.namespace},
        "spec": resource.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def collector_config(integration: Integration, organization: Organization) -> str:
    """What the collector reads with `--config`: its Integration and the Organization it belongs to
    (for the slug and topic settings), in the same schema as the CRDs."""
    return yaml.safe_dump_all([_document(organization), _document(integration)], sort_keys=True)


def config_hash(integration: Integration, organization: Organization) -> str:
    """Changes whenever either spec does; stamped on the pod template so a change rolls the pods."""
    return hashlib.sha256(collector_config(integration, organization).encode()).hexdigest()[:16]


def collector_config_map(
    integration: Integration, organization: Organization, owner: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(integration, owner),
        "data": {"integration.yaml": collector_config(integration, organization)},
    }


def _metadata(integration: Integration, owner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": collector_name(integration),
        "namespace": integration.metadata.namespace,
        "labels": labels(integration),
        "ownerReferences": [dict(owner)],
    }


def collector_access(integration: Integration, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The collector's own ServiceAccount, allowed exactly to read its Integration and patch its status."""
    name = collector_name(integration)
    metadata = _metadata(integration, owner)
    only_this = [integration.metadata.name]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": [
                {
                    "apiGroups": [API_GROUP],
                    "resources": ["integrations"],
                    "resourceNames": only_this,
                    "verbs": ["get"],
                },
                {
                    "apiGroups": [API_GROUP],
                    "resources": ["integrations/status"],
                    "resourceNames": only_this,
                    "verbs": ["get", "patch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": name, "namespace": integration.metadata.namespace}
            ],
        },
    ]


def collector_deployment(
    integration: Integration, organization: Organization, owner: Mapping[str, Any], settings: Settings
) -> dict[str, Any]:
    spec = integration.spec
    kind = spec.provider.kind
    port = COLLECTOR_PORTS[kind]
    name = collector_name(integration)
    env: list[dict[str, Any]] = [
        {"name": "DORAFLOW_LOG_FORMAT", "value": "json"},
        {"name": "DORAFLOW_HOME", "value": CACHE_MOUNT},
        {"name": "DORAFLOW_KAFKA_TOPIC_PREFIX", "value": settings.kafka_topic_prefix},
    ]
    if settings.kafka_bootstrap_servers:
        env.append({"name": "DORAFLOW_KAFKA_BOOTSTRAP_SERVERS", "value": settings.kafka_bootstrap_servers})
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": name}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {"sizeLimit": "2Gi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir, not a shared /tmp
        {"name": "cache", "mountPath": CACHE_MOUNT},
    ]
    if spec.credentials_secret_ref is not None:
        secret = spec.credentials_secret_ref
        volumes.append(
            {
                "name": "credentials",
                "secret": {
                    "secretName": secret.name,
                    "items": [{"key": secret.key, "path": "credentials"}],
                    "defaultMode": 0o400,
                },
            }
        )
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True})
        env.append({"name": "DORAFLOW_CREDENTIALS_FILE", "value": f"{CREDENTIALS_MOUNT}/credentials"})
    if spec.webhook is not None:
        env.append(
            {
                "name": "DORAFLOW_WEBHOOK_SECRET",
                "valueFrom": {
                    "secretKeyRef": {"name": spec.webhook.secret_ref.name, "key": spec.webhook.secret_ref.key}
                },
            }
        )
    container: dict[str, Any] = {
        "name": "collector",
        "image": settings.collector_image,
        "imagePullPolicy": settings.collector_image_pull_policy,
        "args": [
            "collect",
            kind,
            "--integration",
            integration.key,
            "--config",
            f"{CONFIG_MOUNT}/integration.yaml",
            "--port",
            str(port),
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "resources": settings.collector_resources,
        "volumeMounts": mounts,
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 20},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 10},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if settings.collector_env_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.collector_env_secret, "optional": True}}]
    selector = {
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(integration, owner),
        "spec": {
            "replicas": 0 if spec.suspend else 1,
            # One collector per Integration: two would publish everything twice and fight over cursors.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels(integration),
                    "annotations": {"doraflow.dev/config-hash": config_hash(integration, organization)},
                },
                "spec": {
                    "serviceAccountName": name,
                    "automountServiceAccountToken": True,  # it patches its Integration's status
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
