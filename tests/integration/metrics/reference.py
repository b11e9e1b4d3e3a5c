"""The reference path: the pure definitions over *everything* loaded from the database as records.

No stored enrichment is read here: deployments come with their full commit lists, every commit
and pull request of the scope is a record, incidents carry their raw references. What the query
layer computes (SQL percentiles, bounded history, stored flags) must equal this.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from doraflow.metrics import (
    DeploymentRules,
    Incident,
    MetricResult,
    MetricScope,
    Window,
    dora_metrics,
    lead_time_for_changes,
    lead_time_result,
    production_deployments,
)
from doraflow.metrics.dora import cycle_time_breakdown
from doraflow.metrics.leadtime import deployed_pull_request_times, lead_time_samples
from doraflow.metrics.loaders import (
    Database,
    load_changes,
    load_deployment_rows,
    load_pull_requests,
    resolve_scope,
)
from doraflow.metrics.report import ResolvedScope

EVER = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


async def reference_lead_time(
    db: Database, scope: ResolvedScope, window: Window, benchmark: int = 2023
) -> MetricResult:
    """`lead_time_for_changes` over every change and pull request of the scope and every
    production deployment of the organization (a change's lead time ends at its first production
    deployment, whichever repository deployed it)."""
    organization = await resolve_scope(db, scope.organization_id, MetricScope.organization())
    rows, _ = await load_deployment_rows(db, organization, *EVER, shipped_shas=None)
    changes = await load_changes(db, scope)
    pull_requests = await load_pull_requests(db, scope)
    return lead_time_for_changes(
        changes, production_deployments(rows), window, pull_requests=pull_requests, benchmark=benchmark
    )


async def sql_lead_time(
    db: Database, scope: ResolvedScope, window: Window, benchmark: int = 2023
) -> MetricResult:
    """The query layer's lead time: SQL percentiles plus the pure breakdown and result."""
    (sample,) = await lead_time_samples(db, scope, [window])
    (pull_requests,) = await deployed_pull_request_times(db, scope, [window])
    return lead_time_result(
        sample.distribution, sample.counts, cycle_time_breakdown(pull_requests), benchmark=benchmark
    )


async def all_incidents(db: Database, organization_id: uuid.UUID) -> list[Incident]:
    """Every incident of the organization, explicit deployment references resolved to row ids."""
    refs = {
        row[1]: str(row[0])
        for row in await db.fetch(
            "SELECT id, external_id FROM deployments WHERE organization_id = $1", organization_id
        )
    }
    rows = await db.fetch(
        "SELECT id, created_at, service, resolved_at, deployment_ref, commit_sha_ref, severity"
        " FROM incidents WHERE organization_id = $1",
        organization_id,
    )
    return [
        Incident(
            incident_id=str(row[0]),
            created_at=row[1],
            service=row[2],
            resolved_at=row[3],
            deployment_id=None if row[4] is None else refs.get(row[4], row[4]),
            commit_sha=row[5],
            severity=row[6],
        )
        for row in rows
    ]


async def reference_dora(
    db: Database,
    scope: ResolvedScope,
    window: Window,
    *,
    benchmark: int = 2023,
    rules: DeploymentRules | None = None,
) -> dict[str, MetricResult]:
    """`dora_metrics` over all of the scope's deployment rows (full history and commit lists)
    and its incidents (those of the scope's services; the reference datasets link none across
    teams), with lead time as :func:`reference_lead_time`."""
    rows, _ = await load_deployment_rows(db, scope, *EVER, shipped_shas=None)
    incidents = await all_incidents(db, scope.organization_id)
    if scope.services is not None:
        services = set(scope.services) | {row.service for row in rows}
        incidents = [incident for incident in incidents if incident.service in services]
    results = dora_metrics(
        production_deployments(rows, rules), [], incidents, window, benchmark=benchmark, rules=rules
    )
    results["lead_time_for_changes"] = await reference_lead_time(db, scope, window, benchmark)
    return results
