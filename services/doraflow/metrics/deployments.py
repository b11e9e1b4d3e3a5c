"""Which deployments count, and what happened after each one.

A DORA *deployment* is a successful deployment to production. Sources report one row per
environment and run, so this module turns those rows into the deployments the metrics count:

* Only ``is_production`` and ``succeeded`` rows count. A CI run that failed before reaching
  production is not a deployment (and not a failed deployment either: nothing reached users).
* One revision rolled out to several production environments of one service (regions,
  clusters) is **one** deployment, at the time it **first** reached production (the earliest
  ``finished_at``). Otherwise a 5-region rollout would count as five deployments and inflate
  deployment frequency five-fold. An Integration can declare an environment a separate service
  (``DeploymentRules.separate_services``); its deployments are then counted on their own.
* Rollouts of one revision may interleave with the next revision (a slow region still finishing
  revision A after revision B reached another region). A row of revision ``r`` to environment
  ``e`` joins the latest deployment of ``r`` unless ``e`` is already running a revision that
  reached production *after* ``r`` did -- in that case ``e`` goes *back*, which is a rollback
  and a new deployment.
* A deployment is a **rollback** when it ships an earlier revision than the one it replaces:
  its revision was first shipped to the service (as a revision, or as a commit of a
  deployment) no later than the running revision was (or the source flagged it
  ``is_rollback``). The deployment it replaced was rolled back. Rolling forward again to a
  revision newer than the running one is not a rollback.
* **Hotfixes** are flagged by the Integration's rules (branch, label, pipeline). By default a
  hotfix marks the production deployment it follows as failed; ``hotfix_window`` limits that to
  hotfixes within a time of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from doraflow.metrics.records import Deployment, Incident

__all__ = [
    "DeploymentOutcome",
    "DeploymentRules",
    "FailureReason",
    "ProductionDeployment",
    "ReworkReason",
    "classify_deployments",
    "production_deployments",
]


@dataclass(frozen=True, slots=True)
class DeploymentRules:
    """The configurable parts of "what is a deployment and when did it fail".

    ``separate_services`` maps ``(service, environment)`` to the service name the Integration
    declared for that environment; those rows are never merged with the service's other
    environments, and incidents must name the declared service to be attributed to them.
    """

    separate_services: Mapping[tuple[str, str], str] = field(default_factory=dict)
    detect_rollbacks: bool = True
    rollback_marks_previous_failed: bool = True
    hotfix_marks_previous_failed: bool = True
    hotfix_window: timedelta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "separate_services", MappingProxyType(dict(self.separate_services)))
        if self.hotfix_window is not None and self.hotfix_window <= timedelta(0):
            raise ValueError("hotfix_window must be positive")


@dataclass(frozen=True, slots=True)
class ProductionDeployment:
    """A deployment as DORA counts it: one revision of one service reaching production.

    ``deployment_id`` is the id of the source row that reached production first;
    ``source_deployment_ids`` are all rows merged into it (explicit incident links may name any
    of them). ``shipped_shas`` holds the revision and every commit the rows reported.
    """

    deployment_id: str
    service: str
    revision: str
    deployed_at: datetime
    environments: tuple[str, ...]
    source_deployment_ids: tuple[str, ...]
    shipped_shas: frozenset[str]
    is_hotfix: bool = False
    is_rollback: bool = False


class _Rollout:
    """Mutable accumulator for one production deployment while rows are merged into it."""

    __slots__ = ("deployed_at", "environments", "first_id", "hotfix", "ids", "revision", "rollback", "shas")

    def __init__(self, row: Deployment, rollback: bool) -> None:
        self.first_id = row.deployment_id
        self.revision = row.revision
        self.deployed_at = row.finished_at
        self.environments: list[str] = [row.environment]
        self.ids: list[str] = [row.deployment_id]
        self.shas: set[str] = {row.revision, *row.commit_shas}
        self.hotfix = row.is_hotfix
        self.rollback = rollback or row.is_rollback

    def add(self, row: Deployment) -> None:
        if row.environment not in self.environments:
            self.environments.append(row.environment)
        self.ids.append(row.deployment_id)
        self.shas.update(row.commit_shas)
        self.hotfix = self.hotfix or row.is_hotfix
        self.rollback = self.rollback or row.is_rollback

    def freeze(self, service: str) -> ProductionDeployment:
        return ProductionDeployment(
            deployment_id=self.first_id,
            service=service,
            revision=self.revision,
            deployed_at=self.deployed_at,
            environments=tuple(self.environments),
            source_deployment_ids=tuple(self.ids),
            shipped_shas=frozenset(self.shas),
            is_hotfix=self.hotfix,
            is_rollback=self.rollback,
        )


def production_deployments(
    deployments: Iterable[Deployment], rules: DeploymentRules | None = None
) -> tuple[ProductionDeployment, ...]:
    """Successful production rows collapsed into DORA deployments, sorted by ``deployed_at``.

    Pass every row that may matter, including rows before the metric window (a commit's *first*
    deployment may predate the window, and rollback detection needs earlier revisions) and
    after it (whether the last deployment in the window failed is decided by what followed).
    Runs in O(n log n): one sort, then one pass per service with dictionaries.
    """
    rules = rules or DeploymentRules()
    rows_by_service: dict[str, list[Deployment]] = defaultdict(list)
    for row in deployments:
        if row.is_production and row.succeeded:
            service = rules.separate_services.get((row.service, row.environment), row.service)
            rows_by_service[service].append(row)

    result: list[ProductionDeployment] = []
    for service, rows in rows_by_service.items():
        rows.sort(key=lambda row: (row.finished_at, row.deployment_id))
        rollouts: list[_Rollout] = []
        latest_rollout_of_revision: dict[str, int] = {}
        rollout_running_in_environment: dict[str, int] = {}
        first_rollout_shipping: dict[str, int] = {}
        for row in rows:
            index = latest_rollout_of_revision.get(row.revision)
            running = rollout_running_in_environment.get(row.environment)
            if index is not None and (running is None or running <= index):
                rollouts[index].add(row)
            else:
                replaced = running if running is not None else len(rollouts) - 1
                goes_back = (
                    rules.detect_rollbacks
                    and replaced >= 0
                    and _is_earlier(row.revision, rollouts[replaced].revision, first_rollout_shipping)
                )
                rollouts.append(_Rollout(row, rollback=goes_back))
                index = len(rollouts) - 1
                latest_rollout_of_revision[row.revision] = index
            rollout_running_in_environment[row.environment] = index
            first_rollout_shipping.setdefault(row.revision, index)
            for sha in row.commit_shas:
                first_rollout_shipping.setdefault(sha, index)
        result.extend(rollout.freeze(service) for rollout in rollouts)

    result.sort(key=lambda deployment: (deployment.deployed_at, deployment.service, deployment.deployment_id))
    return tuple(result)


def _is_earlier(revision: str, running_revision: str, first_rollout_shipping: Mapping[str, int]) -> bool:
    """True when ``revision`` is older than the revision it replaces, judged by shipping order.

    Without the commit graph, "earlier" means: first shipped to this service no later than the
    running revision was (a commit shipped together with the running head is part of its
    history). Re-deploying a revision that is *newer* than the running one -- rolling forward
    again after a rollback -- is therefore not a rollback.
    """
    if revision == running_revision or revision not in first_rollout_shipping:
        return False
    return first_rollout_shipping[revision] <= first_rollout_shipping[running_revision]


class FailureReason(StrEnum):
    """Why a production deployment counts as failed (a deployment may have several)."""

    INCIDENT = "incident"
    ROLLED_BACK = "rolled_back"
    FOLLOWED_BY_HOTFIX = "followed_by_hotfix"


class ReworkReason(StrEnum):
    """Why a production deployment is unplanned rework (DORA 2024 rework rate)."""

    HOTFIX = "hotfix"
    ROLLBACK = "rollback"
    RESOLVES_INCIDENT = "resolves_incident"


@dataclass(frozen=True, slots=True)
class DeploymentOutcome:
    """What happened after one production deployment.

    ``recovered_at`` is when service was restored after a failed deployment: the earliest of the
    next deployment that restored it (the rollback or hotfix) and the resolution of its
    incidents (the last of them, since service is restored only when all are resolved). It is
    ``None`` while the deployment has not recovered.
    """

    deployment: ProductionDeployment
    failure_reasons: tuple[FailureReason, ...]
    incident_ids: tuple[str, ...]
    recovered_at: datetime | None
    restored_by_deployment_id: str | None
    rework_reasons: tuple[ReworkReason, ...]

    @property
    def failed(self) -> bool:
        return bool(self.failure_reasons)

    @property
    def is_rework(self) -> bool:
        return bool(self.rework_reasons)


def classify_deployments(
    deployments: Sequence[ProductionDeployment],
    incidents_by_deployment: Mapping[str, Sequence[Incident]],
    all_incidents: Iterable[Incident] = (),
    rules: DeploymentRules | None = None,
) -> dict[str, DeploymentOutcome]:
    """Failure, recovery and rework status of each deployment, keyed by ``deployment_id``.

    ``incidents_by_deployment`` holds the incidents *attributed* to each deployment (see
    :func:`doraflow.metrics.incidents.attribute_incidents`); ``all_incidents`` is scanned for
    ``resolved_by_deployment_id`` to find deployments that fixed an incident. A deployment is
    judged against the *next* production deployment of the same service: if that one is a
    rollback, this one was rolled back; if it is a hotfix (within ``hotfix_window`` when set),
    this one needed a hotfix.
    """
    rules = rules or DeploymentRules()
    by_service: dict[str, list[ProductionDeployment]] = defaultdict(list)
    for deployment in deployments:
        by_service[deployment.service].append(deployment)

    resolving: set[str] = {
        incident.resolved_by_deployment_id
        for incident in all_incidents
        if incident.resolved_by_deployment_id is not None
    }

    outcomes: dict[str, DeploymentOutcome] = {}
    for service_deployments in by_service.values():
        service_deployments.sort(key=lambda deployment: (deployment.deployed_at, deployment.deployment_id))
        for position, deployment in enumerate(service_deployments):
            following = service_deployments[position + 1] if position + 1 < len(service_deployments) else None
            outcomes[deployment.deployment_id] = _outcome(
                deployment,
                following,
                incidents_by_deployment.get(deployment.deployment_id, ()),
                resolving,
                rules,
            )
    return outcomes


def _outcome(
    deployment: ProductionDeployment,
    following: ProductionDeployment | None,
    incidents: Sequence[Incident],
    resolving: set[str],
    rules: DeploymentRules,
) -> DeploymentOutcome:
    reasons: list[FailureReason] = []
    recovery_candidates: list[datetime] = []
    restored_by: str | None = None

    if incidents:
        reasons.append(FailureReason.INCIDENT)
        resolutions = [incident.resolved_at for incident in incidents]
        if all(resolved is not None for resolved in resolutions):
            recovery_candidates.append(max(resolved for resolved in resolutions if resolved is not None))
    if following is not None:
        restoring = False
        if rules.rollback_marks_previous_failed and following.is_rollback:
            reasons.append(FailureReason.ROLLED_BACK)
            restoring = True
        within_window = (
            rules.hotfix_window is None
            or following.deployed_at - deployment.deployed_at <= rules.hotfix_window
        )
        if rules.hotfix_marks_previous_failed and following.is_hotfix and within_window:
            reasons.append(FailureReason.FOLLOWED_BY_HOTFIX)
            restoring = True
        if restoring:
            recovery_candidates.append(following.deployed_at)
            restored_by = following.deployment_id

    recovered_at = min(recovery_candidates) if recovery_candidates else None
    if following is not None and restored_by is not None and recovered_at != following.deployed_at:
        restored_by = None  # its incidents were resolved before the next deployment restored anything

    rework: list[ReworkReason] = []
    if deployment.is_hotfix:
        rework.append(ReworkReason.HOTFIX)
    if deployment.is_rollback:
        rework.append(ReworkReason.ROLLBACK)
    if any(source_id in resolving for source_id in deployment.source_deployment_ids):
        rework.append(ReworkReason.RESOLVES_INCIDENT)

    return DeploymentOutcome(
        deployment=deployment,
        failure_reasons=tuple(reasons),
        incident_ids=tuple(incident.incident_id for incident in incidents),
        recovered_at=recovered_at,
        restored_by_deployment_id=restored_by,
        rework_reasons=tuple(rework),
    )
