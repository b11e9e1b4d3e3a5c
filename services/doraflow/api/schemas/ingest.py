"""What a CI/CD system or an incident tool sends to report a deployment or an incident.

Designed for one `curl` from a pipeline: only the id, the service (or repository) and — for
deployments — the status are needed; times default to now. Times must carry an offset (`Z` is
fine): a naive time is ambiguous and would silently shift lead times.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from doraflow.api.schemas.common import RequestModel, SafeStr, within_supported_years
from doraflow.core.events import SHA_PATTERN

ExternalId = Annotated[SafeStr, Field(min_length=1, max_length=255, pattern=r"^[^/\s]+$")]
Source = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
ShaStr = Annotated[str, Field(pattern=SHA_PATTERN)]
Short = Annotated[SafeStr, Field(min_length=1, max_length=255)]
When = Annotated[
    AwareDatetime,
    AfterValidator(within_supported_years),
    Field(description="with an offset, e.g. 2025-03-01T12:00:00Z"),
]


class RepositoryIn(RequestModel):
    provider: Annotated[SafeStr, Field(min_length=1, max_length=50)]
    id: Short = Field(description="the provider's id of the repository")
    name: Short = Field(description="full name, e.g. acme/api")
    url: Annotated[SafeStr, Field(max_length=2048)] | None = None


class PersonIn(RequestModel):
    email: Short | None = None
    name: Short | None = None
    username: Short | None = None


class DeploymentIn(RequestModel):
    deployment_id: ExternalId = Field(description="your id of this deployment: reporting it again updates it")
    source: Source = Field(default="api", description="the reporting system, e.g. argocd, jenkins")
    service: Short | None = Field(
        default=None, description="the service deployed; defaults to the repository"
    )
    repository: Short | RepositoryIn | None = Field(
        default=None, description="a repository Doraflow knows by full name (`acme/api`), or a full reference"
    )
    environment: Annotated[SafeStr, Field(min_length=1, max_length=50)] = "production"
    is_production: bool | None = Field(
        default=None, description="defaults to environment being prod/production"
    )
    status: Literal["success", "failed", "in_progress", "cancelled"] = "success"
    started_at: When | None = Field(default=None, description="defaults to the first report's time")
    finished_at: When | None = Field(default=None, description="defaults to now for success/failed")
    revision: ShaStr | None = Field(default=None, description="the commit deployed")
    commit_shas: list[ShaStr] = Field(
        default_factory=list, max_length=10_000, description="the commits it shipped"
    )
    deployed_by: PersonIn | None = None
    is_hotfix: bool = False
    is_rollback: bool = False
    url: Annotated[SafeStr, Field(max_length=2048)] | None = None

    @model_validator(mode="after")
    def _names_something(self) -> DeploymentIn:
        if self.service is None and self.repository is None:
            raise ValueError("give service or repository: a deployment must belong to something")
        return self


class IncidentIn(RequestModel):
    incident_id: ExternalId = Field(description="your id of this incident: reporting it again updates it")
    source: Source = Field(default="api", description="the reporting system, e.g. pagerduty, opsgenie")
    title: Annotated[SafeStr, Field(max_length=1000)] | None = None
    severity: Annotated[SafeStr, Field(max_length=20)] | None = None
    service: Short | None = None
    created_at: When | None = Field(default=None, description="when impact began; defaults to now")
    resolved_at: When | None = None
    deployment_id: ExternalId | None = Field(
        default=None, description="the deployment that caused it (your id)"
    )
    commit_sha: ShaStr | None = None
    url: Annotated[SafeStr, Field(max_length=2048)] | None = None


class IncidentResolve(RequestModel):
    source: Source = "api"
    resolved_at: When | None = Field(default=None, description="defaults to now")


class Accepted(BaseModel):
    """The event was published; the processor stores it shortly (at-least-once, idempotent)."""

    model_config = ConfigDict(populate_by_name=True)

    event_id: str
    schema_: str = Field(alias="schema")
    status: Literal["accepted"] = "accepted"
