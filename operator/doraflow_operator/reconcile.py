"""Level-based reconciliation: given a resource, make the world match it and report how it went.

Each `reconcile_*` is idempotent and returns the complete status to write, so create, update, resume
and the drift timer all call the same function. The outside world (Kubernetes, Kafka, the API
service) comes in through small protocols, which is what lets the unit tests run without a cluster.
A spec that cannot work yields `Ready=False` with a reason saying what to fix — never an exception
that would make the operator crash-loop; `retry_after` asks for another pass when waiting may help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from doraflow.core.bus import EventBus, TopicSpec
from doraflow.core.events import organization_topics
from doraflow.core.resources import Integration, Organization
from doraflow.core.settings import Settings
from doraflow_operator.conditions import Verdict, merge_conditions
from doraflow_operator.manifests import (
    collector_access,
    collector_config_map,
    collector_deployment,
    collector_name,
    owner_reference,
)

ADMIN_KEY_SECRET_KEY = "apiKey"  # noqa: S105 - the name of a Secret key, not a secret


class Cluster(Protocol):
    """The Kubernetes operations reconciliation needs (doraflow_operator.kube implements them)."""

    async def get_organization(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_secret(self, manifest: Mapping[str, Any]) -> None: ...

    async def get_integration(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Registration:
    organization_id: str
    admin_key: str | None  # only when the API created the organization (or issued a new key)


@dataclass(frozen=True, slots=True)
class TeamSync:
    """What the API made of the declared teams: `ambiguous` members (`team/member`) it could not
    place, `waiting` repository names or globs (`team/pattern`) no collected repository matches
    yet (linked when one is collected), `removed` slugs no longer declared."""

    teams: int
    changed: bool
    ambiguous: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class OrganizationRegistry(Protocol):
    """The API service, reached over HTTP with the operator's service token."""

    async def register(self, slug: str, name: str) -> Registration: ...

    async def issue_admin_key(self, organization_id: str, name: str) -> str: ...

    async def sync_teams(
        self, organization_id: str, managed_by: str, teams: Sequence[Mapping[str, Any]]
    ) -> TeamSync: ...


@dataclass
class Outcome:
    status: dict[str, Any]
    retry_after: float | None = None
    log: list[str] = field(default_factory=list)


def _generation(body: Mapping[str, Any]) -> int | None:
    generation = body.get("metadata", {}).get("generation")
    return int(generation) if generation is not None else None


def _resource_document(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {"name": metadata.get("name"), "namespace": metadata.get("namespace", "default")},
        "spec": dict(body.get("spec") or {}),
    }


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"spec.{'.'.join(str(p) for p in err['loc'][1:])}: {err['msg']}" for err in exc.errors()[:5]
    )


def _status(
    body: Mapping[str, Any], verdicts: Sequence[Verdict], now: datetime, **fields: Any
) -> dict[str, Any]:
    current = body.get("status") or {}
    generation = _generation(body)
    return {
        **fields,
        "conditions": merge_conditions(
            current.get("conditions") or [], verdicts, generation=generation, now=now
        ),
        "observedGeneration": generation,
    }


def admin_key_secret_name(organization: Organization) -> str:
    return f"{organization.metadata.name}-doraflow-admin-key"


def topic_specs(organization: Organization, prefix: str) -> list[TopicSpec]:
    kafka = organization.spec.kafka
    return [
        TopicSpec(
            name=name,
            partitions=kafka.partitions,
            replication_factor=kafka.replication_factor,
            retention_ms=kafka.retention_ms,
        )
        for name in organization_topics(prefix, organization.slug)
    ]


async def reconcile_organization(
    body: Mapping[str, Any],
    *,
    cluster: Cluster,
    registry: OrganizationRegistry,
    bus: EventBus,
    settings: Settings,
    now: datetime,
) -> Outcome:
    try:
        organization = Organization.model_validate(_resource_document(body))
    except ValidationError as exc:
        return Outcome(_status(body, [Verdict("Ready", "False", "InvalidSpec", _describe(exc))], now))

    specs = topic_specs(organization, settings.kafka_topic_prefix)
    try:
        await bus.ensure_topics(specs)
    except Exception as exc:  # any broker failure: report it and try again later
        verdict = Verdict("Ready", "False", "KafkaUnavailable", f"cannot create the topics: {exc}")
        return Outcome(_status(body, [verdict], now), retry_after=30)

    try:
        registration = await registry.register(organization.slug, organization.spec.display_name)
    except Exception as exc:
        verdict = Verdict(
            "Ready", "False", "ApiUnavailable", f"cannot register with the API at {settings.api_url}: {exc}"
        )
        return Outcome(_status(body, [verdict], now, topics=[spec.name for spec in specs]), retry_after=30)

    outcome = Outcome({})
    secret_name = admin_key_secret_name(organization)
    namespace = organization.metadata.namespace
    if await cluster.get_secret(namespace, secret_name) is None:
        key = registration.admin_key or await registry.issue_admin_key(
            registration.organization_id, "kubernetes-admin"
        )
        await cluster.create_secret(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": secret_name,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": "doraflow-operator"},
                    "ownerReferences": [owner_reference(body)],
                },
                "stringData": {ADMIN_KEY_SECRET_KEY: key},
            }
        )
        outcome.log.append(f"stored the first admin API key in Secret {secret_name}")
    verdict = Verdict(
        "Ready",
        "True",
        "Registered",
        f"organization {organization.slug} registered; {len(specs)} topics; "
        f"admin key in Secret {secret_name}",
    )
    teams_verdict, outcome.retry_after = await _sync_teams(
        organization, registration, registry, outcome, settings
    )
    outcome.status = _status(
        body,
        [verdict, teams_verdict],
        now,
        organizationId=registration.organization_id,
        topics=[spec.name for spec in specs],
    )
    return outcome


def _listed(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


async def _sync_teams(
    organization: Organization,
    registration: Registration,
    registry: OrganizationRegistry,
    outcome: Outcome,
    settings: Settings,
) -> tuple[Verdict, float | None]:
    """Hand `spec.teams` to the API (on every reconcile: the API answers "unchanged" cheaply, and
    the drift timer is what re-links what changed behind our back) and judge the answer as the
    `TeamsSynced` condition. A failure does not make the organization un-Ready — it is registered
    and collecting — but asks for another pass."""
    teams = [team.model_dump(mode="json", by_alias=True) for team in organization.spec.teams]
    managed_by = f"Organization {organization.metadata.namespace}/{organization.metadata.name}"
    try:
        synced = await registry.sync_teams(registration.organization_id, managed_by, teams)
    except Exception as exc:
        message = f"cannot sync spec.teams with the API at {settings.api_url}: {exc}"
        return Verdict("TeamsSynced", "False", "TeamSyncFailed", message), 30
    if synced.changed:
        outcome.log.append(
            f"synced {synced.teams} teams"
            + (f"; removed {_listed(synced.removed)}" if synced.removed else "")
        )
    if synced.ambiguous:
        message = (
            f"members that name different people on different providers: {_listed(synced.ambiguous)}; "
            "write them as provider:username (e.g. github:jdoe)"
        )
        return Verdict("TeamsSynced", "False", "AmbiguousMembers", message), None
    message = f"{synced.teams} teams synced"
    if synced.waiting:
        message += f"; not collected yet (linked when they are): {_listed(synced.waiting)}"
    return Verdict("TeamsSynced", "True", "Synced", message), None


async def delete_organization_topics(
    body: Mapping[str, Any], *, bus: EventBus, settings: Settings
) -> list[str]:
    """With `deletionPolicy: Delete`, the organization's topics go with it; otherwise they stay."""
    organization = Organization.model_validate(_resource_document(body))
    if organization.spec.deletion_policy != "Delete":
        return []
    names = [spec.name for spec in topic_specs(organization, settings.kafka_topic_prefix)]
    await bus.delete_topics(names)
    return names


async def reconcile_integration(
    body: Mapping[str, Any], *, cluster: Cluster, bus: EventBus, settings: Settings, now: datetime
) -> Outcome:
    try:
        integration = Integration.model_validate(_resource_document(body))
    except ValidationError as exc:
        return Outcome(_status(body, [Verdict("Ready", "False", "InvalidSpec", _describe(exc))], now))
    spec = integration.spec
    namespace = integration.metadata.namespace

    organization_body = await cluster.get_organization(namespace, spec.organization_ref.name)
    if organization_body is None:
        message = (
            f"Organization {spec.organization_ref.name!r} not found in namespace {namespace!r}: "
            "create it (see examples/organization.yaml) or fix spec.organizationRef"
        )
        verdict = Verdict("Ready", "False", "OrganizationNotFound", message)
        return Outcome(_status(body, [verdict], now, message=message), retry_after=30)

    if spec.credentials_secret_ref is not None:
        ref = spec.credentials_secret_ref
        secret = await cluster.get_secret(namespace, ref.name)
        problem: tuple[str, str] | None = None
        if secret is None:
            problem = (
                "SecretNotFound",
                f"Secret {ref.name!r} not found in namespace {namespace!r}: create it with "
                f"`kubectl create secret generic {ref.name} --from-literal={ref.key}=<token>`",
            )
        elif ref.key not in (secret.get("data") or {}) and ref.key not in (secret.get("stringData") or {}):
            problem = (
                "SecretKeyMissing",
                f"Secret {ref.name!r} has no key {ref.key!r}: add it or fix the key",
            )
        if problem:
            verdict = Verdict("Ready", "False", problem[0], problem[1])
            return Outcome(_status(body, [verdict], now, message=problem[1]), retry_after=30)

    organization = Organization.model_validate(_resource_document(organization_body))
    try:
        await bus.ensure_topics(topic_specs(organization, settings.kafka_topic_prefix))
    except Exception as exc:
        message = f"cannot ensure the organization's topics: {exc}"
        verdict = Verdict("Ready", "False", "KafkaUnavailable", message)
        return Outcome(_status(body, [verdict], now, message=message), retry_after=30)

    owner = owner_reference(body)
    for manifest in collector_access(integration, owner):
        await cluster.apply(manifest)
    await cluster.apply(collector_config_map(integration, organization, owner))
    await cluster.apply(collector_deployment(integration, organization, owner, settings))

    name = collector_name(integration)
    deployment = await cluster.get_deployment(namespace, name) or {}
    available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
    if spec.suspend:
        verdict = Verdict("Ready", "False", "Suspended", "spec.suspend is true: the collector is scaled to 0")
        retry = None
    elif available >= 1:
        verdict = Verdict("Ready", "True", "CollectorAvailable", f"collector Deployment {name} is available")
        retry = None
    else:
        verdict = Verdict(
            "Ready",
            "False",
            "CollectorUnavailable",
            f"waiting for collector Deployment {name} to become available",
        )
        retry = None  # not an error: the Deployment's own events bring us back (handlers.py)
    return Outcome(_status(body, [verdict], now, message=verdict.message, collector=name), retry_after=retry)
