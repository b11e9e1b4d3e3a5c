"""The operator's decisions, without a cluster: manifests, conditions and reconcile outcomes."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from doraflow.collectors.service import load_integration
from doraflow.core.bus import MemoryBus
from doraflow.core.resources import Integration, Organization
from doraflow.core.settings import Settings
from doraflow_operator.conditions import Verdict, merge_conditions, status_changed
from doraflow_operator.manifests import (
    collector_config_map,
    collector_deployment,
    collector_name,
    config_hash,
    owner_reference,
)
from doraflow_operator.reconcile import (
    Registration,
    delete_organization_topics,
    reconcile_integration,
    reconcile_organization,
)

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
SETTINGS = Settings(
    kafka_topic_prefix="doraflow",
    collector_image="doraflow:test",
    kafka_bootstrap_servers="kafka:9092",
    collector_env_secret="doraflow-runtime",
)

ORGANIZATION: dict[str, Any] = {
    "apiVersion": "doraflow.dev/v1alpha1",
    "kind": "Organization",
    "metadata": {"name": "acme", "namespace": "team-a", "uid": "org-uid", "generation": 1},
    "spec": {"displayName": "Acme", "kafka": {"partitions": 3, "replicationFactor": 1}},
}
INTEGRATION: dict[str, Any] = {
    "apiVersion": "doraflow.dev/v1alpha1",
    "kind": "Integration",
    "metadata": {"name": "acme-github", "namespace": "team-a", "uid": "int-uid", "generation": 2},
    "spec": {
        "organizationRef": {"name": "acme"},
        "provider": "github",
        "credentialsSecretRef": {"name": "github-token", "key": "token"},
        "scope": {"repositories": ["acme/*"]},
    },
}


ORG = Organization.model_validate(ORGANIZATION)


class FakeCluster:
    """In-memory stand-in for the Kubernetes API (our own protocol, not a third-party API)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.applied: list[dict[str, Any]] = []
        self.created_secrets: list[dict[str, Any]] = []

    def add(self, kind: str, body: Mapping[str, Any]) -> None:
        self.objects[(kind, body["metadata"]["namespace"], body["metadata"]["name"])] = dict(body)

    async def get_organization(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("Organization", namespace, name))

    async def get_integration(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("Integration", namespace, name))

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("Secret", namespace, name))

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("Deployment", namespace, name))

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.applied.append(dict(manifest))
        existing = self.objects.get(
            (manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"]), {}
        )
        merged = {**dict(manifest), "status": existing.get("status", {})}
        self.add(manifest["kind"], merged)
        return merged

    async def create_secret(self, manifest: Mapping[str, Any]) -> None:
        self.created_secrets.append(dict(manifest))
        self.add("Secret", {**manifest, "data": dict.fromkeys(manifest.get("stringData", {}), "")})

    async def patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        raise AssertionError("not used by reconcile")


class FakeRegistry:
    def __init__(self) -> None:
        self.registered: dict[str, str] = {}
        self.issued = 0

    async def register(self, slug: str, name: str, teams: Sequence[Mapping[str, Any]]) -> Registration:
        first = slug not in self.registered
        self.registered.setdefault(slug, f"id-{slug}")
        return Registration(self.registered[slug], "dfk_first_key" if first else None)

    async def issue_admin_key(self, organization_id: str, name: str) -> str:
        self.issued += 1
        return f"dfk_reissued_{self.issued}"


def integration(**spec: Any) -> Integration:
    body = copy.deepcopy(INTEGRATION)
    body["spec"].update(spec)
    return Integration.model_validate(body)


def test_deployment_is_owned_configured_and_restricted() -> None:
    manifest = collector_deployment(integration(), ORG, owner_reference(INTEGRATION), SETTINGS)
    assert manifest["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "doraflow.dev/v1alpha1",
            "kind": "Integration",
            "name": "acme-github",
            "uid": "int-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == [
        "collect",
        "git",
        "--integration",
        "team-a/acme-github",
        "--config",
        "/etc/doraflow/integration.yaml",
        "--port",
        "8000",
    ]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["DORAFLOW_CREDENTIALS_FILE"] == "/var/run/secrets/doraflow/credentials"
    assert env["DORAFLOW_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert container["envFrom"] == [{"secretRef": {"name": "doraflow-runtime", "optional": True}}]
    secret_volume = next(v for v in pod["volumes"] if v["name"] == "credentials")
    assert secret_volume["secret"]["secretName"] == "github-token"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert manifest["spec"]["strategy"] == {"type": "Recreate"}
    assert manifest["spec"]["replicas"] == 1


def test_work_providers_get_the_work_collector_and_suspend_scales_to_zero() -> None:
    manifest = collector_deployment(
        integration(provider="jira", suspend=True), ORG, owner_reference(INTEGRATION), SETTINGS
    )
    assert manifest["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["collect", "work"]
    assert manifest["spec"]["replicas"] == 0


def test_spec_change_changes_the_pod_template_hash() -> None:
    assert config_hash(integration(), ORG) == config_hash(integration(), ORG)
    assert config_hash(integration(), ORG) != config_hash(integration(backfillDays=30), ORG)


def test_long_names_stay_within_label_limits() -> None:
    body = copy.deepcopy(INTEGRATION)
    body["metadata"]["name"] = "a" * 60
    name = collector_name(Integration.model_validate(body))
    assert len(name) <= 63
    assert name != collector_name(integration())


def test_transition_time_moves_only_when_status_flips() -> None:
    first = merge_conditions([], [Verdict("Ready", "False", "SecretNotFound", "x")], generation=1, now=NOW)
    later = NOW + timedelta(minutes=5)
    same = merge_conditions(
        first, [Verdict("Ready", "False", "SecretNotFound", "y")], generation=2, now=later
    )
    flipped = merge_conditions(
        same, [Verdict("Ready", "True", "CollectorAvailable", "z")], generation=2, now=later
    )
    assert same[0]["lastTransitionTime"] == "2026-01-05T12:00:00Z"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "2026-01-05T12:05:00Z"
    assert not status_changed({"conditions": same}, {"conditions": same})


async def test_integration_without_organization_says_what_to_create() -> None:
    outcome = await reconcile_integration(
        INTEGRATION, cluster=FakeCluster(), bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    ready = outcome.status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "OrganizationNotFound")
    assert "Organization 'acme' not found in namespace 'team-a'" in ready["message"]
    assert outcome.retry_after is not None


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "SecretNotFound"),
        (
            {"metadata": {"name": "github-token", "namespace": "team-a"}, "data": {"other": ""}},
            "SecretKeyMissing",
        ),
    ],
)
async def test_integration_with_bad_secret(secret: dict[str, Any] | None, reason: str) -> None:
    cluster = FakeCluster()
    cluster.add("Organization", ORGANIZATION)
    if secret:
        cluster.add("Secret", secret)
    outcome = await reconcile_integration(
        INTEGRATION, cluster=cluster, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    assert outcome.status["conditions"][0]["reason"] == reason
    assert "github-token" in outcome.status["message"]
    assert cluster.applied == []


async def test_integration_happy_path_applies_collector_and_topics() -> None:
    cluster = FakeCluster()
    cluster.add("Organization", ORGANIZATION)
    cluster.add(
        "Secret", {"metadata": {"name": "github-token", "namespace": "team-a"}, "data": {"token": ""}}
    )
    bus = MemoryBus()
    outcome = await reconcile_integration(INTEGRATION, cluster=cluster, bus=bus, settings=SETTINGS, now=NOW)
    assert [m["kind"] for m in cluster.applied] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Deployment",
    ]
    role = cluster.applied[1]
    assert role["rules"][1] == {
        "apiGroups": ["doraflow.dev"],
        "resources": ["integrations/status"],
        "resourceNames": ["acme-github"],
        "verbs": ["get", "patch"],
    }
    assert "doraflow.acme.git.commits" in await bus.list_topics()
    assert outcome.status["conditions"][0]["reason"] == "CollectorUnavailable"
    assert outcome.status["observedGeneration"] == 2

    cluster.objects[("Deployment", "team-a", "doraflow-collector-acme-github")]["status"] = {
        "availableReplicas": 1
    }
    again = await reconcile_integration(INTEGRATION, cluster=cluster, bus=bus, settings=SETTINGS, now=NOW)
    assert again.status["conditions"][0]["status"] == "True"


async def test_organization_registers_creates_topics_and_stores_the_key_once() -> None:
    cluster, registry, bus = FakeCluster(), FakeRegistry(), MemoryBus()
    outcome = await reconcile_organization(
        ORGANIZATION, cluster=cluster, registry=registry, bus=bus, settings=SETTINGS, now=NOW
    )
    assert outcome.status["organizationId"] == "id-acme"
    assert "doraflow.acme.dlq" in outcome.status["topics"]
    assert len(await bus.list_topics()) == 11
    assert cluster.created_secrets[0]["stringData"] == {"apiKey": "dfk_first_key"}
    assert cluster.created_secrets[0]["metadata"]["ownerReferences"][0]["uid"] == "org-uid"

    body = {**ORGANIZATION, "status": outcome.status}
    second = await reconcile_organization(
        body, cluster=cluster, registry=registry, bus=bus, settings=SETTINGS, now=NOW + timedelta(hours=1)
    )
    assert len(cluster.created_secrets) == 1
    assert not status_changed(body["status"], second.status)


async def test_deleted_admin_key_secret_is_reissued() -> None:
    cluster, registry = FakeCluster(), FakeRegistry()
    await registry.register("acme", "Acme", [])  # registered before; the key was shown then
    await reconcile_organization(
        ORGANIZATION, cluster=cluster, registry=registry, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    assert cluster.created_secrets[0]["stringData"] == {"apiKey": "dfk_reissued_1"}


async def test_topics_are_deleted_only_with_the_delete_policy() -> None:
    bus = MemoryBus()
    await reconcile_organization(
        ORGANIZATION, cluster=FakeCluster(), registry=FakeRegistry(), bus=bus, settings=SETTINGS, now=NOW
    )
    assert await delete_organization_topics(ORGANIZATION, bus=bus, settings=SETTINGS) == []
    doomed = copy.deepcopy(ORGANIZATION)
    doomed["spec"]["deletionPolicy"] = "Delete"
    assert len(await delete_organization_topics(doomed, bus=bus, settings=SETTINGS)) == 11
    assert await bus.list_topics() == set()


def test_collector_config_is_exactly_what_the_collector_reads(tmp_path: Path) -> None:
    config_map = collector_config_map(integration(), ORG, owner_reference(INTEGRATION))
    path = tmp_path / "integration.yaml"
    path.write_text(config_map["data"]["integration.yaml"])
    found, organization = load_integration(path, "team-a/acme-github")
    assert found.spec == integration().spec
    assert organization is not None
    assert organization.slug == "acme"
    assert organization.spec.kafka.partitions == 3
