"""The `Organization` and `Integration` custom resources (DESIGN.md §7) — the one source of truth.

Collectors read their configuration from these models, `doraflow up --config FILE` validates its YAML
with them, and the CRDs in `crds/` are generated from them, so a spec that `kubectl apply` accepts is
exactly a spec the collectors understand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from doraflow.core.events import ORG_SLUG_PATTERN

API_GROUP = "doraflow.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d)$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, description="e.g. 15m, 1h, 1d")]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> timedelta:
    if not re.fullmatch(DURATION_PATTERN, value):
        raise ValueError(f"invalid duration {value!r}: use a number and s, m, h or d (e.g. 30m)")
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])


class Spec(BaseModel):
    """camelCase on the wire (Kubernetes convention), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    BITBUCKET = "bitbucket"
    GIT = "git"
    JIRA = "jira"
    LINEAR = "linear"
    ASANA = "asana"

    @property
    def kind(self) -> Literal["git", "work"]:
        return "work" if self in (Provider.JIRA, Provider.LINEAR, Provider.ASANA) else "git"


class LocalObjectReference(Spec):
    name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)


class SecretKeyReference(Spec):
    name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253, description="Secret in the same namespace")
    key: str = Field(default="token", min_length=1, max_length=253)


class Scope(Spec):
    repositories: list[str] = Field(
        default_factory=list,
        description="owner/name or globs (acme/*); for provider git, local paths or clone URLs; "
        "empty means every repository the credentials can see",
    )
    projects: list[str] = Field(default_factory=list, description="work-tracker projects (keys or globs)")
    exclude: list[str] = Field(default_factory=list, description="globs removed from the scope")


class Schedules(Spec):
    """How often each resource is collected (the seed's defaults)."""

    commits: Duration = "1h"
    pull_requests: Duration = "30m"
    branches_and_tags: Duration = "4h"
    deployments: Duration = "30m"
    contributors: Duration = "1d"
    issues: Duration = "15m"
    sprints: Duration = "1h"
    boards: Duration = "4h"


class DeploymentRules(Spec):
    """How deployments are recognised, in order of preference: provider deployments to environments
    matching `environmentPattern`, CI runs whose name matches `deploymentPattern`, then tags matching
    `tagPattern`."""

    environment_pattern: str = Field(default=r"(?i)^prod(uction)?$")
    deployment_pattern: str = Field(default=r"(?i)deploy")
    tag_pattern: str = Field(default=r"^v?\d+(\.\d+)*$", description="release tags, not pre-releases")
    hotfix_pattern: str = Field(
        default=r"(?i)\b(hotfix|revert)\b",
        description="commit messages or deployment names that mark a deployment as a fix (rework)",
    )
    separate_services: bool = Field(
        default=False, description="count each production environment as its own service"
    )

    @field_validator("environment_pattern", "deployment_pattern", "tag_pattern", "hotfix_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class IncidentRules(Spec):
    """Which work items are incidents, and how an incident names its service or deployment."""

    issue_types: list[str] = Field(default_factory=lambda: ["Incident"])
    labels: list[str] = Field(default_factory=list)
    priorities: list[str] = Field(default_factory=list)
    filter: str | None = Field(default=None, description="JQL (Jira) or a provider filter")
    service_field: str | None = Field(default=None, description="custom field holding the service")
    service_label_prefix: str | None = Field(default="service:", description="label prefix naming it")
    use_components: bool = Field(default=True, description="a component names the service")
    attribution_window: Duration = "7d"


class WebhookSpec(Spec):
    secret_ref: SecretKeyReference


class IntegrationSpec(Spec):
    """Integration: what Doraflow collects from one provider for one organization, and how often."""

    organization_ref: LocalObjectReference
    provider: Provider
    base_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="self-hosted server (GitHub Enterprise, GitLab, Jira)",
    )
    credentials_secret_ref: SecretKeyReference | None = None
    scope: Scope = Field(default_factory=Scope)
    schedules: Schedules = Field(default_factory=Schedules)
    backfill_days: int = Field(default=365, ge=1, le=3650)
    max_concurrency: int = Field(default=4, ge=1, le=32, description="repositories collected at once")
    deployments: DeploymentRules = Field(default_factory=DeploymentRules)
    incidents: IncidentRules = Field(default_factory=IncidentRules)
    story_points_field: str | None = Field(default=None, description="override Jira's discovered field")
    webhook: WebhookSpec | None = None
    suspend: bool = False

    @model_validator(mode="after")
    def _credentials_where_needed(self) -> IntegrationSpec:
        if self.provider is not Provider.GIT and self.credentials_secret_ref is None:
            raise ValueError(f"credentialsSecretRef is required for provider {self.provider.value}")
        return self


class KafkaTopicSettings(Spec):
    partitions: int = Field(default=10, ge=1, le=1000)
    replication_factor: int = Field(default=3, ge=1, le=10)
    retention_ms: int = Field(default=604_800_000, ge=60_000)


class TeamSpec(Spec):
    slug: str = Field(pattern=ORG_SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=255)
    members: list[str] = Field(default_factory=list, description="emails or provider usernames")
    repositories: list[str] = Field(default_factory=list, description="repository full names or globs")


class OrganizationSpec(Spec):
    """Organization: a tenant of Doraflow with its teams and the Kafka topics its events flow through."""

    display_name: str = Field(min_length=1, max_length=255)
    slug: str | None = Field(default=None, pattern=ORG_SLUG_PATTERN, description="defaults to the name")
    kafka: KafkaTopicSettings = Field(default_factory=KafkaTopicSettings)
    teams: list[TeamSpec] = Field(default_factory=list)
    deletion_policy: Literal["Keep", "Delete"] = Field(
        default="Keep", description="what happens to the Kafka topics when the Organization is deleted"
    )


class Status(Spec):
    """Status is written by the operator and the collectors; tolerate fields from newer versions."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Condition(Status):
    """A status condition as the Kubernetes API conventions define it."""

    type: str = Field(min_length=1, max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    observed_generation: int | None = Field(default=None, ge=0)


class OrganizationStatus(Status):
    organization_id: str | None = None
    topics: list[str] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = Field(default=None, ge=0)


class IntegrationStatus(Status):
    conditions: list[Condition] = Field(default_factory=list)
    last_sync_time: str | None = Field(
        default=None, json_schema_extra={"format": "date-time"}, description="latest sync of any resource"
    )
    resources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per resource: lastSyncTime, events, lastError"
    )
    rate_limit_remaining: int | None = None
    message: str | None = None
    collector: str | None = Field(default=None, description="the collector Deployment")
    observed_generation: int | None = Field(default=None, ge=0)


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)
    namespace: str = Field(default="default", pattern=K8S_NAME_PATTERN, max_length=63)


class Organization(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["doraflow.dev/v1alpha1"] = Field(default="doraflow.dev/v1alpha1", alias="apiVersion")
    kind: Literal["Organization"] = "Organization"
    metadata: ObjectMeta
    spec: OrganizationSpec
    status: OrganizationStatus | None = None

    @property
    def slug(self) -> str:
        return self.spec.slug or self.metadata.name


class Integration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    api_version: Literal["doraflow.dev/v1alpha1"] = Field(default="doraflow.dev/v1alpha1", alias="apiVersion")
    kind: Literal["Integration"] = "Integration"
    metadata: ObjectMeta
    spec: IntegrationSpec
    status: IntegrationStatus | None = None

    @property
    def key(self) -> str:
        """`namespace/name`, how events, cursors and logs name the integration."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


Resource = Organization | Integration


class ResourceError(ValueError):
    """A resource file that cannot work, with the document and field that is wrong."""


def parse_resource(document: dict[str, Any], where: str = "document") -> Resource:
    kind = document.get("kind")
    model: type[Organization] | type[Integration]
    if kind == "Organization":
        model = Organization
    elif kind == "Integration":
        model = Integration
    else:
        raise ResourceError(f"{where}: kind must be Organization or Integration, not {kind!r}")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ResourceError(f"{where} ({kind}): {problems}") from None


def load_resources(path: Path) -> list[Resource]:
    """Every Organization/Integration in a (multi-document) YAML file, validated like the CRDs."""
    try:
        documents: Iterable[Any] = list(yaml.safe_load_all(path.read_text()))
    except OSError as exc:
        raise ResourceError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ResourceError(f"{path}: not valid YAML: {exc}") from None
    resources: list[Resource] = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ResourceError(f"{path} document {index + 1}: expected a mapping")
        resources.append(parse_resource(document, f"{path} document {index + 1}"))
    return resources
