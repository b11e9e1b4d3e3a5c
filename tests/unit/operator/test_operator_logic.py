"""The operator's decisions, without a cluster: manifests, conditions and reconcile outcomes."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from doraflow.collectors.service import load_integration
from doraflow.core.bus import MemoryBus
from doraflow.core.resources import Integration, Organization
from doraflow.core.security import derive_service_token
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
    TeamSync,
    delete_organization_topics,
    reconcile_integration,
    reconcile_organization,
)
from doraflow_operator.registry import ApiError, ApiRegistry

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
    """The API as the operator sees it; `answer` is what the next team sync returns (or raises)."""

    def __init__(self) -> None:
        self.registered: dict[str, str] = {}
        self.issued = 0
        self.synced: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.answer: TeamSync | Exception | None = None

    async def register(self, slug: str, name: str) -> Registration:
        first = slug not in self.registered
        self.registered.setdefault(slug, f"id-{slug}")
        return Registration(self.registered[slug], "dfk_first_key" if first else None)

    async def issue_admin_key(self, organization_id: str, name: str) -> str:
        self.issued += 1
        return f"dfk_reissued_{self.issued}"

    async def sync_teams(
        self, organization_id: str, managed_by: str, teams: Sequence[Mapping[str, Any]]
    ) -> TeamSync:
        self.synced.append((organization_id, managed_by, [dict(team) for team in teams]))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer or TeamSync(teams=len(teams), changed=len(self.synced) == 1)


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
    await registry.register("acme", "Acme")  # registered before; the key was shown then
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


TEAMS: list[dict[str, Any]] = [
    {"slug": "payments", "name": "Payments", "members": ["ana@acme.io"], "repositories": ["acme/payments-*"]},
    {"slug": "platform", "name": "Platform"},
]


def with_teams() -> dict[str, Any]:
    body = copy.deepcopy(ORGANIZATION)
    body["spec"]["teams"] = TEAMS
    return body


def teams_condition(status: Mapping[str, Any]) -> dict[str, Any]:
    (condition,) = [c for c in status["conditions"] if c["type"] == "TeamsSynced"]
    return dict(condition)


async def test_declared_teams_are_synced_on_every_reconcile() -> None:
    cluster, registry = FakeCluster(), FakeRegistry()
    body = with_teams()
    outcome = await reconcile_organization(
        body, cluster=cluster, registry=registry, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    organization_id, managed_by, teams = registry.synced[0]
    assert (organization_id, managed_by) == ("id-acme", "Organization team-a/acme")
    assert teams == [
        {
            "slug": "payments",
            "name": "Payments",
            "members": ["ana@acme.io"],
            "repositories": ["acme/payments-*"],
        },
        {"slug": "platform", "name": "Platform", "members": [], "repositories": []},
    ]
    condition = teams_condition(outcome.status)
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "True",
        "Synced",
        "2 teams synced",
    )
    assert "synced 2 teams" in outcome.log

    body["status"] = outcome.status
    again = await reconcile_organization(
        body, cluster=cluster, registry=registry, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    assert len(registry.synced) == 2  # the drift timer's pass syncs too; the API says "unchanged"
    assert not status_changed(body["status"], again.status)
    assert again.log == []


async def test_teams_that_cannot_be_placed_are_reported() -> None:
    registry = FakeRegistry()
    registry.answer = TeamSync(teams=2, changed=False, waiting=("payments/acme/payments-*",))
    waiting = await reconcile_organization(
        with_teams(), cluster=FakeCluster(), registry=registry, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    condition = teams_condition(waiting.status)
    assert condition["status"] == "True"
    assert "not collected yet (linked when they are): payments/acme/payments-*" in condition["message"]

    registry.answer = TeamSync(teams=2, changed=False, ambiguous=("payments/sam",))
    ambiguous = await reconcile_organization(
        with_teams(), cluster=FakeCluster(), registry=registry, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    condition = teams_condition(ambiguous.status)
    assert (condition["status"], condition["reason"]) == ("False", "AmbiguousMembers")
    assert "payments/sam" in condition["message"]
    assert "github:jdoe" in condition["message"]
    assert ambiguous.retry_after is None  # only a spec change helps


async def test_a_failed_team_sync_keeps_the_organization_ready_and_retries() -> None:
    cluster, registry = FakeCluster(), FakeRegistry()
    registry.answer = ApiError("422 from /api/v1/organizations/id-acme/teams: slugs must be unique")
    outcome = await reconcile_organization(
        with_teams(), cluster=cluster, registry=registry, bus=MemoryBus(), settings=SETTINGS, now=NOW
    )
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    assert cluster.created_secrets  # the admin key is stored all the same
    condition = teams_condition(outcome.status)
    assert (condition["status"], condition["reason"]) == ("False", "TeamSyncFailed")
    assert "slugs must be unique" in condition["message"]
    assert outcome.retry_after == 30


async def test_api_registry_syncs_teams_with_the_service_token() -> None:
    settings = Settings(api_url="http://api.test", api_secret_key="s3cret")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/teams"):
            return httpx.Response(
                200,
                json={
                    "teams": [
                        {
                            "slug": "payments",
                            "ambiguous_members": ["sam"],
                            "waiting_repositories": ["acme/x"],
                        },
                        {"slug": "platform", "ambiguous_members": [], "waiting_repositories": []},
                    ],
                    "removed": ["old"],
                    "created_developers": 1,
                    "changed": True,
                },
            )
        return httpx.Response(422, json={"title": "Unprocessable", "detail": "name: too long"})

    registry = ApiRegistry(settings, transport=httpx.MockTransport(answer))
    try:
        synced = await registry.sync_teams("org-1", "Organization team-a/acme", TEAMS)
        with pytest.raises(ApiError, match="422 from /api/v1/organizations: name: too long"):
            await registry.register("acme", "x" * 300)
    finally:
        await registry.aclose()
    assert synced == TeamSync(
        teams=2, changed=True, ambiguous=("payments/sam",), waiting=("payments/acme/x",), removed=("old",)
    )
    request = seen[0]
    assert (request.method, request.url.path) == ("PUT", "/api/v1/organizations/org-1/teams")
    assert request.headers["authorization"] == f"Bearer {derive_service_token('s3cret')}"
    assert json.loads(request.content) == {"managed_by": "Organization team-a/acme", "teams": TEAMS}
