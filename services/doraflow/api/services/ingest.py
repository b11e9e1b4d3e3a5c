"""Push ingestion: deployments and incidents reported by systems we do not collect from.

They travel the same road as collected data — an event on the organization's topic, stored by the
processor — so one set of rules (validation, identity resolution, attribution) applies to all
data. Reporting the same id again is an update, never a duplicate: the processor upserts on
(organization, source, id), and because a deployment row's start time is part of its identity, a
repeated report keeps the start time of the first one (remembered in the cache for a week and
looked up in the database after that).
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doraflow.api.auth import Principal
from doraflow.api.problems import Problem, field_problem, not_found
from doraflow.api.schemas.ingest import DeploymentIn, IncidentIn, IncidentResolve, PersonIn, RepositoryIn
from doraflow.core import models as m
from doraflow.core.bus import EventBus
from doraflow.core.cache import Cache, keys
from doraflow.core.events import (
    DeploymentData,
    Envelope,
    EventData,
    IncidentData,
    PersonRef,
    RepositoryRef,
    make_event,
    message_key,
)
from doraflow.core.resources import DeploymentRules

logger = logging.getLogger(__name__)

MEMORY_TTL = int(timedelta(days=7).total_seconds())
_PRODUCTION = re.compile(DeploymentRules().environment_pattern)


def _person(person: PersonIn | None) -> PersonRef | None:
    return (
        None if person is None else PersonRef(email=person.email, name=person.name, username=person.username)
    )


class IngestService:
    def __init__(self, bus: EventBus, cache: Cache, topic_prefix: str) -> None:
        self._bus = bus
        self._cache = cache
        self._prefix = topic_prefix

    # -- deployments -----------------------------------------------------------------------------

    async def deployment(self, session: AsyncSession, principal: Principal, body: DeploymentIn) -> Envelope:
        now = datetime.now(UTC)
        repository = await self._repository(session, principal, body.repository)
        finished_at = body.finished_at
        if finished_at is None and body.status in ("success", "failed"):
            finished_at = now
        memory = self._deployment_key(principal, body.source, body.deployment_id)
        first_started = await self._first_start(session, principal, body, memory)
        started_at = first_started or body.started_at or finished_at or now
        if finished_at is not None and finished_at < started_at:
            if body.finished_at is not None:
                raise field_problem("finished_at", "must not be before started_at", location="body")
            finished_at = started_at
        is_production = body.is_production
        if is_production is None:
            is_production = bool(_PRODUCTION.search(body.environment))
        data = DeploymentData(
            repository=repository,
            deployment_id=body.deployment_id,
            service=body.service,
            environment=body.environment,
            is_production=is_production,
            status=body.status,
            started_at=started_at,
            finished_at=finished_at,
            revision=body.revision,
            commit_shas=list(dict.fromkeys(body.commit_shas)),
            deployed_by=_person(body.deployed_by),
            is_hotfix=body.is_hotfix,
            is_rollback=body.is_rollback,
            url=body.url,
        )
        envelope = await self._publish(principal, body.source, data)
        if first_started is None:
            await self._cache.set(memory, started_at.isoformat().encode(), MEMORY_TTL)
        return envelope

    async def _first_start(
        self, session: AsyncSession, principal: Principal, body: DeploymentIn, memory: str
    ) -> datetime | None:
        remembered = await self._cache.get(memory)
        if remembered is not None:
            return datetime.fromisoformat(remembered.decode())
        stored: datetime | None = await session.scalar(
            select(m.Deployment.time)
            .where(
                m.Deployment.organization_id == principal.organization_id,
                m.Deployment.source == body.source,
                m.Deployment.external_id == body.deployment_id,
            )
            .order_by(m.Deployment.time)
            .limit(1)
        )
        return stored

    async def _repository(
        self, session: AsyncSession, principal: Principal, given: str | RepositoryIn | None
    ) -> RepositoryRef | None:
        if given is None:
            return None
        if isinstance(given, RepositoryIn):
            return RepositoryRef(provider=given.provider, id=given.id, name=given.name, url=given.url)
        rows = list(
            await session.scalars(
                select(m.Repository)
                .where(m.Repository.organization_id == principal.organization_id, m.Repository.name == given)
                .limit(2)
            )
        )
        if not rows:
            raise field_problem(
                "repository",
                f"no repository named {given!r} is known; give a full reference {{provider, id, name}}",
                location="body",
            )
        if len(rows) > 1:
            raise field_problem(
                "repository",
                f"{given!r} names repositories of several providers; give {{provider, id, name}}",
                location="body",
            )
        row = rows[0]
        return RepositoryRef(
            provider=row.provider,
            id=row.provider_id,
            name=row.name,
            url=row.url,
            default_branch=row.default_branch,
            service=row.service,
        )

    # -- incidents -------------------------------------------------------------------------------

    async def incident(self, session: AsyncSession, principal: Principal, body: IncidentIn) -> Envelope:
        now = datetime.now(UTC)
        created_at = body.created_at or now
        if created_at > now + timedelta(minutes=5):
            raise field_problem("created_at", "must not be in the future", location="body")
        if body.resolved_at is not None and body.resolved_at < created_at:
            raise field_problem("resolved_at", "must not be before created_at", location="body")
        data = IncidentData(
            external_id=body.incident_id,
            title=body.title,
            severity=body.severity,
            service=body.service,
            created_at=created_at,
            resolved_at=body.resolved_at,
            deployment_ref=body.deployment_id,
            commit_sha=body.commit_sha,
            url=body.url,
        )
        return await self._publish_incident(principal, body.source, data)

    async def resolve(
        self, session: AsyncSession, principal: Principal, incident_id: str, body: IncidentResolve
    ) -> Envelope:
        known = await self._known_incident(session, principal, body.source, incident_id)
        if known is None:
            raise not_found("incident", incident_id)
        resolved_at = body.resolved_at or datetime.now(UTC)
        if resolved_at < known.created_at:
            raise field_problem(
                "resolved_at", "must not be before the incident's created_at", location="body"
            )
        data = known.model_copy(update={"resolved_at": resolved_at})
        return await self._publish_incident(
            principal, body.source, IncidentData.model_validate(data.model_dump())
        )

    async def _publish_incident(self, principal: Principal, source: str, data: IncidentData) -> Envelope:
        envelope = await self._publish(principal, source, data)
        await self._cache.set(
            self._incident_key(principal, source, data.external_id),
            orjson.dumps(data.model_dump(mode="json")),
            MEMORY_TTL,
        )
        return envelope

    async def _known_incident(
        self, session: AsyncSession, principal: Principal, source: str, incident_id: str
    ) -> IncidentData | None:
        remembered = await self._cache.get(self._incident_key(principal, source, incident_id))
        if remembered is not None:
            return IncidentData.model_validate_json(remembered)
        row = await session.scalar(
            select(m.Incident).where(
                m.Incident.organization_id == principal.organization_id,
                m.Incident.source == source,
                m.Incident.external_id == incident_id,
            )
        )
        if row is None:
            return None
        return IncidentData(
            external_id=row.external_id,
            title=row.title,
            severity=row.severity,
            service=row.service,
            created_at=row.created_at,
            resolved_at=row.resolved_at,
            deployment_ref=row.deployment_ref,
            commit_sha=row.commit_sha_ref,
            url=row.url,
        )

    # -- common ----------------------------------------------------------------------------------

    async def _publish(self, principal: Principal, source: str, data: EventData) -> Envelope:
        envelope = make_event(
            data,
            organization=principal.organization_slug,
            integration=f"api/{principal.prefix}",
            source=source,
        )
        try:
            await self._bus.publish(
                envelope.topic(self._prefix), message_key(envelope, data), envelope.to_bytes()
            )
            await self._bus.flush()
        except Exception as exc:
            logger.warning(
                "publishing an ingested event failed",
                exc_info=True,
                extra={"organization": principal.organization_slug, "schema": envelope.schema_},
            )
            raise Problem(
                503,
                f"the event bus did not accept the event ({type(exc).__name__}); retry later",
                headers={"Retry-After": "5"},
            ) from None
        return envelope

    @staticmethod
    def _deployment_key(principal: Principal, source: str, deployment_id: str) -> str:
        return keys.ingest_marker("deployment", principal.organization_id, source, deployment_id)

    @staticmethod
    def _incident_key(principal: Principal, source: str, incident_id: str) -> str:
        return keys.ingest_marker("incident", principal.organization_id, source, incident_id)
