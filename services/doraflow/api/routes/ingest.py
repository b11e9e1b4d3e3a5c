"""Push ingestion for CI/CD systems and incident tools: `POST /api/v1/deployments`,
`POST /api/v1/incidents`, `POST /api/v1/incidents/{incident_id}/resolve` (202 + event id)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from doraflow.api.deps import Context, Member, Session
from doraflow.api.problems import problem_responses
from doraflow.api.schemas.ingest import Accepted, DeploymentIn, IncidentIn, IncidentResolve
from doraflow.core.events import Envelope

router = APIRouter(tags=["ingest"], responses=problem_responses(401, 403, 422, 429, 503))


def _accepted(envelope: Envelope) -> Accepted:
    return Accepted(event_id=envelope.event_id, schema_=envelope.schema_)


@router.post("/deployments", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED)
async def report_deployment(
    body: DeploymentIn, principal: Member, session: Session, context: Context
) -> Accepted:
    """Report a deployment, e.g. from a pipeline:

        curl -X POST $DORAFLOW/api/v1/deployments -H "Authorization: Bearer $KEY" \\
             -H 'Content-Type: application/json' \\
             -d '{"deployment_id": "'$BUILD_ID'", "service": "checkout", "revision": "'$GIT_SHA'"}'
    """
    return _accepted(await context.ingest.deployment(session, principal, body))


@router.post("/incidents", response_model=Accepted, status_code=status.HTTP_202_ACCEPTED)
async def report_incident(
    body: IncidentIn, principal: Member, session: Session, context: Context
) -> Accepted:
    return _accepted(await context.ingest.incident(session, principal, body))


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=Accepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404),
)
async def resolve_incident(
    incident_id: Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[^/\s\x00]+$")],
    principal: Member,
    session: Session,
    context: Context,
    body: IncidentResolve | None = None,
) -> Accepted:
    """Mark an incident you reported (by your id) as resolved; `resolved_at` defaults to now."""
    return _accepted(await context.ingest.resolve(session, principal, incident_id, body or IncidentResolve()))
