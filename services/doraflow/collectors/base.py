"""The contract between provider clients and the collector runtime.

A provider client (GitHub, GitLab, Bitbucket, local git, Jira, Linear, Asana) only knows how to turn
its API into `EventData` payloads (doraflow.core.events). Everything else — schedules, cursors,
bounded concurrency across repositories, publishing to the bus, webhooks, status reporting — is the
runtime's job and written once for all of them.

Cursor discipline: a client yields `Batch`es; the runtime publishes a batch's events, flushes the bus,
and only then saves the batch's cursor. A crash between the two re-publishes a batch (events carry
stable ids, the processor upserts), never skips one.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from doraflow.core.events import EventData
from doraflow.core.resources import Integration


class Resource(StrEnum):
    """What a collector collects; each has its own schedule (IntegrationSpec.schedules)."""

    COMMITS = "commits"
    PULL_REQUESTS = "pull_requests"  # with their reviews
    BRANCHES_AND_TAGS = "branches_and_tags"
    DEPLOYMENTS = "deployments"
    CONTRIBUTORS = "contributors"
    ISSUES = "issues"  # with their transitions
    SPRINTS = "sprints"
    BOARDS = "boards"


@dataclass(frozen=True, slots=True)
class ScopeRef:
    """One repository or project to collect, as the provider names it."""

    name: str  # "acme/api", a Jira project key, a local path
    id: str  # the provider's stable id
    attributes: Mapping[str, Any] = field(default_factory=dict)  # default branch, url, …


@dataclass(frozen=True, slots=True)
class Batch:
    events: list[EventData]
    cursor: dict[str, Any] | None = None  # saved after `events` are published; None = unchanged


class CollectorError(Exception):
    """A problem a user must fix (bad credentials, unknown repository, revoked token). The runtime
    reports it once, with `hint`, and keeps collecting the other scopes."""

    def __init__(self, message: str, *, hint: str, scope: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.scope = scope


class SourceClient(abc.ABC):
    """One provider. Instances are created per Integration with its credentials."""

    provider: ClassVar[str]
    resources: ClassVar[tuple[Resource, ...]]

    def __init__(self, integration: Integration, credentials: str | None) -> None:
        self.integration = integration
        self.credentials = credentials

    @abc.abstractmethod
    async def list_scopes(self) -> list[ScopeRef]:
        """Repositories/projects in the Integration's scope (globs expanded, excludes removed)."""

    @abc.abstractmethod
    def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        """Stream `resource` of `scope` since `cursor` (None: first sync, back-fill the horizon,
        newest first), page by page; never load a whole history into memory."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook: clients without connections skip it
        """Release connections."""
