"""Incident → deployment attribution, the input of change failure rate and recovery time.

Order of evidence, strongest first:

1. **Explicit deployment link** -- the incident names a deployment (field or label). Any source
   row of a production deployment matches (a multi-region rollout is one deployment).
2. **Explicit commit link** -- the incident names a commit: the first production deployment
   that shipped it, restricted to the incident's service when the incident names one.
3. **Same service, recent deployment** -- the latest successful production deployment of the
   incident's service that reached production *strictly before* the incident started, if it is
   at most ``window`` (default 7 days) older than the incident start.
4. Otherwise **unattributed**, and counted as such.

An explicit link that does not resolve (it names a staging deployment, a failed run, or a
commit never shipped to production) leaves the incident unattributed rather than falling back
to a guess: the source said what caused it, and that cause was not a production deployment.
An incident is never attributed to a deployment of another service, and an incident without a
service and without explicit links stays unattributed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from doraflow.metrics.deployments import ProductionDeployment
from doraflow.metrics.records import Incident

__all__ = [
    "DEFAULT_ATTRIBUTION_WINDOW",
    "AttributionMethod",
    "IncidentAttribution",
    "attribute_incidents",
]

DEFAULT_ATTRIBUTION_WINDOW: Final = timedelta(days=7)


class AttributionMethod(StrEnum):
    EXPLICIT_DEPLOYMENT = "explicit_deployment"
    EXPLICIT_COMMIT = "explicit_commit"
    SERVICE_WINDOW = "service_window"
    UNATTRIBUTED = "unattributed"


@dataclass(frozen=True, slots=True)
class IncidentAttribution:
    """Which production deployment (``deployment_id`` of a :class:`ProductionDeployment`) caused
    an incident, how that was decided, and in words why."""

    incident: Incident
    deployment_id: str | None
    method: AttributionMethod
    explanation: str

    @property
    def attributed(self) -> bool:
        return self.deployment_id is not None


def attribute_incidents(
    incidents: Iterable[Incident],
    deployments: Sequence[ProductionDeployment],
    *,
    window: timedelta = DEFAULT_ATTRIBUTION_WINDOW,
) -> tuple[IncidentAttribution, ...]:
    """Attribute each incident to at most one production deployment (see module docstring).

    O((n + m) log n): deployments are indexed by source id, and per service sorted by time so
    the "latest before the incident" look-up is a bisection.
    """
    if window <= timedelta(0):
        raise ValueError("attribution window must be positive")
    incident_list = list(incidents)

    by_source_id: dict[str, ProductionDeployment] = {}
    by_service: dict[str, list[ProductionDeployment]] = defaultdict(list)
    for deployment in deployments:
        for source_id in deployment.source_deployment_ids:
            by_source_id[source_id] = deployment
        by_service[deployment.service].append(deployment)
    times_by_service: dict[str, list[datetime]] = {}
    for service, service_deployments in by_service.items():
        service_deployments.sort(key=lambda deployment: (deployment.deployed_at, deployment.deployment_id))
        times_by_service[service] = [deployment.deployed_at for deployment in service_deployments]

    wanted_shas = {incident.commit_sha for incident in incident_list if incident.commit_sha}
    shipping: dict[str, list[ProductionDeployment]] = defaultdict(list)
    if wanted_shas:
        for deployment in deployments:
            for sha in wanted_shas.intersection(deployment.shipped_shas):
                shipping[sha].append(deployment)

    def explicit_commit(incident: Incident, sha: str) -> IncidentAttribution:
        candidates = [
            deployment
            for deployment in shipping.get(sha, ())
            if incident.service is None or deployment.service == incident.service
        ]
        if not candidates:
            scope = f" of service {incident.service}" if incident.service else ""
            return IncidentAttribution(
                incident,
                None,
                AttributionMethod.UNATTRIBUTED,
                f"names commit {sha}, which no production deployment{scope} shipped",
            )
        first = min(candidates, key=lambda deployment: (deployment.deployed_at, deployment.deployment_id))
        return IncidentAttribution(
            incident,
            first.deployment_id,
            AttributionMethod.EXPLICIT_COMMIT,
            f"names commit {sha}, first shipped by deployment {first.deployment_id}",
        )

    def by_window(incident: Incident, service: str) -> IncidentAttribution:
        times = times_by_service.get(service, [])
        started = incident.impact_started_at
        position = bisect_left(times, started) - 1  # latest deployment strictly before the start
        if position < 0:
            return IncidentAttribution(
                incident,
                None,
                AttributionMethod.UNATTRIBUTED,
                f"no production deployment of {service} before the incident started",
            )
        candidate = by_service[service][position]
        if started - candidate.deployed_at > window:
            return IncidentAttribution(
                incident,
                None,
                AttributionMethod.UNATTRIBUTED,
                f"latest production deployment of {service} ({candidate.deployment_id}) is older than "
                f"the {window} attribution window",
            )
        return IncidentAttribution(
            incident,
            candidate.deployment_id,
            AttributionMethod.SERVICE_WINDOW,
            f"latest production deployment of {service} before the incident started",
        )

    attributions: list[IncidentAttribution] = []
    for incident in incident_list:
        if incident.deployment_id is not None:
            linked = by_source_id.get(incident.deployment_id)
            if linked is None:
                attributions.append(
                    IncidentAttribution(
                        incident,
                        None,
                        AttributionMethod.UNATTRIBUTED,
                        f"names deployment {incident.deployment_id}, which is not a successful "
                        "production deployment",
                    )
                )
            else:
                attributions.append(
                    IncidentAttribution(
                        incident,
                        linked.deployment_id,
                        AttributionMethod.EXPLICIT_DEPLOYMENT,
                        f"names deployment {incident.deployment_id}",
                    )
                )
        elif incident.commit_sha:
            attributions.append(explicit_commit(incident, incident.commit_sha))
        elif incident.service is not None:
            attributions.append(by_window(incident, incident.service))
        else:
            attributions.append(
                IncidentAttribution(
                    incident,
                    None,
                    AttributionMethod.UNATTRIBUTED,
                    "names no deployment, commit or service",
                )
            )
    return tuple(attributions)
