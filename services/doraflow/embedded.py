"""`doraflow up`: collectors, processor and API in one process, with embedded storage (DESIGN.md §1).

Like `cli`, this module wires the services together; nothing here defines how anything works.
Configuration decides the rest: without `DORAFLOW_DATABASE_URL` the database is the embedded
PostgreSQL under `$DORAFLOW_HOME`, without Kafka and Redis URLs the bus and cache are in-process.
Integrations come from a YAML file of the same `Organization`/`Integration` resources a cluster user
applies; without one, the git repository in the current directory is collected (tags are
deployments), so a newcomer sees numbers from their own repository within a minute. An
Organization's `spec.teams` become its teams exactly as the operator makes them (the API's
declared-teams sync, on every start), so one file describes the same organization in both modes.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.api import create_app
from doraflow.api.auth import KeyHasher
from doraflow.api.problems import Problem
from doraflow.api.schemas.teams import DeclaredTeam
from doraflow.api.services.declared_teams import TeamSync, sync_declared_teams
from doraflow.api.services.organizations import bootstrap_organization
from doraflow.collectors.cursors import DatabaseCursorStore
from doraflow.collectors.runtime import SyncProgress
from doraflow.collectors.service import run_collector
from doraflow.core import migrate
from doraflow.core.bus import EventBus, TopicSpec, create_bus
from doraflow.core.cache import Cache, create_cache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.events import organization_topics
from doraflow.core.models import Commit, Deployment
from doraflow.core.resources import (
    Integration,
    IntegrationSpec,
    ObjectMeta,
    Organization,
    OrganizationSpec,
    Provider,
    ResourceError,
    load_resources,
)
from doraflow.core.service import serve
from doraflow.core.settings import Settings
from doraflow.metrics import MetricResult, Window
from doraflow.metrics.queries import dora_report
from doraflow.metrics.report import MetricScope
from doraflow.processor.service import run_processor

DEFAULT_ORGANIZATION = "default"
Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Plan:
    organizations: list[Organization]
    integrations: list[Integration]


def default_plan(directory: Path) -> Plan:
    """Organization `default` collecting the git repository `directory` is in, tags as deployments."""
    top = subprocess.run(
        ["git", "-C", str(directory), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if top.returncode != 0:
        raise ResourceError(
            f"{directory} is not inside a git repository: run `doraflow up` in one, or pass "
            "--config FILE with Integration resources (see examples/doraflow-local.yaml)"
        )
    repository = Path(top.stdout.strip())
    organization = Organization(
        metadata=ObjectMeta(name=DEFAULT_ORGANIZATION), spec=OrganizationSpec(display_name="My team")
    )
    integration = Integration(
        metadata=ObjectMeta(name=_resource_name(repository.name)),
        spec=IntegrationSpec.model_validate(
            {
                "organizationRef": {"name": DEFAULT_ORGANIZATION},
                "provider": "git",
                "scope": {"repositories": [str(repository)]},
            }
        ),
    )
    return Plan([organization], [integration])


def _resource_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return name[:63].strip("-") or "repository"


def plan_from_file(path: Path) -> Plan:
    """The file's resources; an Integration whose Organization is not in the file gets one."""
    resources = load_resources(path)
    organizations = [r for r in resources if isinstance(r, Organization)]
    integrations = [r for r in resources if isinstance(r, Integration)]
    if not integrations:
        raise ResourceError(f"{path}: no Integration to collect")
    known = {(o.metadata.namespace, o.metadata.name) for o in organizations}
    for integration in integrations:
        ref = (integration.metadata.namespace, integration.spec.organization_ref.name)
        if ref not in known:
            known.add(ref)
            organizations.append(
                Organization(
                    metadata=ObjectMeta(name=ref[1], namespace=ref[0]),
                    spec=OrganizationSpec(display_name=ref[1]),
                )
            )
    return Plan(organizations, integrations)


def embedded_credentials(integration: Integration, environ: dict[str, str]) -> str | None:
    """Without Kubernetes Secrets, a `credentialsSecretRef` names an environment variable:
    `DORAFLOW_SECRET_<NAME>_<KEY>` (upper case, `-`/`.` as `_`), e.g. DORAFLOW_SECRET_GITHUB_TOKEN_TOKEN."""
    ref = integration.spec.credentials_secret_ref
    if ref is None:
        return None
    variable = re.sub(r"[^A-Z0-9]", "_", f"DORAFLOW_SECRET_{ref.name}_{ref.key}".upper())
    value = environ.get(variable)
    if not value:
        raise ResourceError(
            f"{integration.key}: set {variable} to the {integration.spec.provider.value} token"
        )
    return value


class ProgressBoard:
    """One line per repository and resource, rewritten in place on a terminal; plain lines otherwise
    (so logs and CI output stay readable)."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        self._last_draw = 0.0

    def __call__(self, progress: SyncProgress) -> None:
        label = f"{progress.scope} {progress.resource.value}"
        if progress.error:
            self._line(f"  ✗ {label}: {progress.error}")
        elif progress.done:
            self._line(f"  ✓ {label}: {progress.events:,} events")
        elif self.interactive and time.monotonic() - self._last_draw > 0.1:
            self._last_draw = time.monotonic()
            self.stream.write(f"\r  … {label}: {progress.events:,} events")
            self.stream.flush()

    def _line(self, text: str) -> None:
        prefix = "\r\033[K" if self.interactive else ""
        self.stream.write(f"{prefix}{text}\n")
        self.stream.flush()


@dataclass
class Embedded:
    settings: Settings
    plan: Plan
    host: str
    port: int
    say: Callable[[str], None]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self) -> None:
        started = time.monotonic()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        where = self.settings.home if self.settings.embedded_database else "the configured database"
        self.say(f"doraflow: starting PostgreSQL in {where} and applying migrations …")
        engine = create_engine(self.settings)
        await migrate.upgrade(engine)
        sessions = create_session_factory(engine)
        bus = create_bus(self.settings.kafka_bootstrap_servers)
        await bus.start()
        cache = create_cache(self.settings.redis_url.get_secret_value() if self.settings.redis_url else None)
        stop = asyncio.Event()
        try:
            organization_ids = await self._register(bus, cache, sessions)
            self.tasks.append(
                asyncio.create_task(
                    run_processor(self.settings, bus, cache, sessions, stop=stop), name="processor"
                )
            )
            progress = ProgressBoard()
            first_rounds = [
                asyncio.create_task(self._collect(integration, bus, sessions, stop, progress))
                for integration in self.plan.integrations
            ]
            self.tasks.extend(first_rounds)
            self.tasks.append(asyncio.create_task(self._summary(sessions, organization_ids, started, stop)))
            # Until SIGTERM/SIGINT; then collectors and processor finish their batch (stop is set below).
            await serve(create_app(self.settings, sessions, cache, bus), self.host, self.port)
        finally:
            stop.set()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await bus.stop()
            await cache.close()
            await engine.dispose()

    async def _register(self, bus: EventBus, cache: Cache, sessions: Sessions) -> dict[str, uuid.UUID]:
        """Create each organization (and print its first admin key once), its topics and its
        declared teams."""
        hasher = KeyHasher.from_settings(self.settings)
        ids: dict[str, uuid.UUID] = {}
        for organization in self.plan.organizations:
            kafka = organization.spec.kafka
            await bus.ensure_topics(
                [
                    TopicSpec(name, kafka.partitions, 1, kafka.retention_ms)
                    for name in organization_topics(self.settings.kafka_topic_prefix, organization.slug)
                ]
            )
            async with sessions() as session:
                registration = await bootstrap_organization(
                    session, hasher, name=organization.spec.display_name, slug=organization.slug
                )
            ids[organization.slug] = registration.organization.id
            key_file = self.settings.home / (
                "admin.key" if organization.slug == DEFAULT_ORGANIZATION else f"admin-{organization.slug}.key"
            )
            if registration.admin_key is not None:
                key_file.touch(mode=0o600, exist_ok=True)
                key_file.chmod(0o600)
                key_file.write_text(registration.admin_key.secret + "\n")
                self.say(
                    f"doraflow: organization {organization.slug!r} created; its admin API key (shown once, "
                    f"also in {key_file}):\n\n    {registration.admin_key.secret}\n"
                )
            elif key_file.exists():
                self.say(f"doraflow: organization {organization.slug!r}; admin API key in {key_file}")
            # Teams after the key: should the API refuse the declaration and stop start-up, a new
            # organization's key (printed only when it is created) has been shown all the same.
            async with sessions() as session:
                synced = await _sync_teams(session, cache, organization, registration.organization.id)
            if synced.teams or synced.removed:
                self.say(teams_line(organization.slug, synced))
        return ids

    async def _collect(
        self,
        integration: Integration,
        bus: EventBus,
        sessions: Sessions,
        stop: asyncio.Event,
        progress: Callable[[SyncProgress], None],
    ) -> None:
        organization = next(
            (o for o in self.plan.organizations if o.metadata.name == integration.spec.organization_ref.name),
            None,
        )
        await run_collector(
            self.settings,
            integration,
            embedded_credentials(integration, dict(os.environ)),
            bus,
            DatabaseCursorStore(sessions),
            port=None,
            stop=stop,
            progress=progress,
            organization=organization.slug if organization else None,
            topic_settings=organization.spec.kafka if organization else None,
        )

    async def _summary(
        self, sessions: Sessions, organization_ids: dict[str, uuid.UUID], started: float, stop: asyncio.Event
    ) -> None:
        """Once the first events are stored and the numbers settle, print one line per organization."""
        previous: tuple[int, int] | None = None
        while not stop.is_set():
            await asyncio.sleep(1.0)
            async with sessions() as session:
                counts = (
                    int(await session.scalar(select(func.count()).select_from(Commit)) or 0),
                    int(await session.scalar(select(func.count()).select_from(Deployment)) or 0),
                )
            if counts[0] and counts == previous:
                break
            previous = counts
        else:
            return
        now = datetime.now(UTC)
        for slug, organization_id in organization_ids.items():
            async with sessions() as session:
                report = await dora_report(
                    session,
                    organization_id=organization_id,
                    scope=MetricScope.organization(),
                    window=Window(now - timedelta(days=365), now),
                )
            self.say(summary_line(slug, counts, report.metrics, time.monotonic() - started))
        self.say(f"doraflow: dashboard and API at http://{self.host}:{self.port}/ (docs at /docs)")


def declared_teams(organization: Organization) -> list[DeclaredTeam]:
    """`spec.teams` as the body the operator sends to `PUT /organizations/{id}/teams`; what the API
    would refuse (e.g. more than 1,000 members) is named by its place in the file."""
    declared: list[DeclaredTeam] = []
    for index, team in enumerate(organization.spec.teams):
        try:
            declared.append(DeclaredTeam.model_validate(team.model_dump(mode="json", by_alias=True)))
        except ValidationError as exc:
            problems = "; ".join(
                f"spec.teams[{index}].{'.'.join(map(str, error['loc']))}: {error['msg']}"
                for error in exc.errors()
            )
            raise ResourceError(f"{_declarer(organization)}: {problems}") from exc
    return declared


def _declarer(organization: Organization) -> str:
    """The `managed_by` of its teams, the operator's own, so one file declares the same teams in
    both modes."""
    return f"Organization {organization.metadata.namespace}/{organization.metadata.name}"


async def _sync_teams(
    session: AsyncSession, cache: Cache, organization: Organization, organization_id: uuid.UUID
) -> TeamSync:
    """`spec.teams` through the API's declared-teams sync, as the operator's `PUT
    /organizations/{id}/teams` does it: the teams are exactly the declared ones, teams gone from
    the file are removed, teams made through the API stay. A declaration the API refuses (a
    repeated slug) stops start-up with the API's explanation."""
    try:
        return await sync_declared_teams(
            session,
            cache,
            organization_id,
            managed_by=_declarer(organization),
            declared=declared_teams(organization),
        )
    except Problem as problem:
        raise ResourceError(f"{_declarer(organization)}: spec.teams: {problem}") from problem


def teams_line(slug: str, synced: TeamSync) -> str:
    """What the operator's `TeamsSynced` condition says, as one line for the terminal."""
    count = len(synced.teams)
    parts = [f"doraflow: {slug}: {count} {'team' if count == 1 else 'teams'} from spec.teams"]
    if synced.removed:
        parts.append(f"removed {', '.join(synced.removed)}")
    ambiguous = sorted({name for team in synced.teams for name in team.ambiguous_members})
    if ambiguous:
        parts.append(
            f"members naming different people on different providers (write provider:username): "
            f"{', '.join(ambiguous)}"
        )
    waiting = sorted({pattern for team in synced.teams for pattern in team.waiting_repositories})
    if waiting:
        parts.append(f"repositories linked once collected: {', '.join(waiting)}")
    return " — ".join(parts)


def summary_line(
    slug: str, counts: tuple[int, int], metrics: Mapping[str, MetricResult], elapsed: float
) -> str:
    parts = [f"doraflow: {slug}: {counts[0]:,} commits, {counts[1]:,} deployments in {elapsed:.0f}s"]
    if not counts[1]:
        parts.append("no deployments yet: release tags (v1.2.3) count as deployments")
    for name, label in (
        ("deployment_frequency", "deploys"),
        ("lead_time_for_changes", "lead time"),
        ("change_failure_rate", "CFR"),
    ):
        result = metrics.get(name)
        if result is not None and result.value is not None:
            tier = f" ({result.tier})" if result.tier else ""
            parts.append(f"{label} {_human(result.value, result.unit)}{tier}")
    return " — ".join(parts)


def _human(value: float, unit: str) -> str:
    if unit == "seconds":
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "min")):
            if value >= size:
                return f"{value / size:.1f}{suffix}"
        return f"{value:.0f}s"
    if unit == "ratio":
        return f"{value:.0%}"
    if unit == "deployments_per_day":
        return f"{value * 7:.1f}/week"
    return f"{value:.2f} {unit}"


def with_local_secret(settings: Settings) -> Settings:
    """Without `DORAFLOW_API_SECRET_KEY`, keep a generated one in `$DORAFLOW_HOME` (mode 0600), so API
    keys are peppered on a laptop too and stay valid across restarts."""
    if settings.api_secret_key is not None:
        return settings
    path = settings.home / "api-secret.key"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return settings.model_copy(update={"api_secret_key": SecretStr(path.read_text().strip())})


async def run_up(settings: Settings, host: str, port: int, config: Path | None) -> None:
    settings = with_local_secret(settings)
    plan = plan_from_file(config) if config else default_plan(Path.cwd())
    for integration in plan.integrations:
        if integration.spec.provider is not Provider.GIT:
            embedded_credentials(integration, dict(os.environ))  # fail now, not after start-up
    for organization in plan.organizations:
        declared_teams(organization)  # likewise
    embedded = Embedded(settings, plan, host, port, say=lambda text: print(text, file=sys.stderr, flush=True))
    await embedded.run()
