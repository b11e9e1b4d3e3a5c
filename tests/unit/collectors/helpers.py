"""Scripted stand-ins for the runtime's collaborators: a provider client whose batches and failures
are given per (scope, resource), and a bus and cursor store that write one shared journal so tests
can assert the order publish → flush → save."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from doraflow.collectors.base import Batch, Resource, ScopeRef, SourceClient
from doraflow.collectors.cursors import MemoryCursorStore
from doraflow.core.bus import MemoryBus
from doraflow.core.events import CommitData, PersonRef, RepositoryRef
from doraflow.core.resources import Integration

Script = list[Batch | BaseException]


def integration(provider: str = "github", **spec: Any) -> Integration:
    document: dict[str, Any] = {
        "metadata": {"name": "acme-github", "namespace": "doraflow"},
        "spec": {
            "organizationRef": {"name": "acme"},
            "provider": provider,
            **({"credentialsSecretRef": {"name": "token"}} if provider != "git" else {}),
            **spec,
        },
    }
    return Integration.model_validate(document)


def commit(repository: str, number: int) -> CommitData:
    return CommitData(
        repository=RepositoryRef(provider="github", id=repository, name=repository),
        sha=f"{number:040x}",
        author=PersonRef(email="dev@example.com"),
        authored_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def batch(repository: str, *numbers: int, cursor: dict[str, Any] | None = None) -> Batch:
    return Batch([commit(repository, n) for n in numbers], cursor=cursor)


class FakeClient(SourceClient):
    provider: ClassVar[str] = "github"
    resources: ClassVar[tuple[Resource, ...]] = (Resource.COMMITS, Resource.PULL_REQUESTS)

    def __init__(
        self,
        integration: Integration,
        scopes: Sequence[str] = ("acme/api",),
        scripts: dict[tuple[str, Resource], list[Script]] | None = None,
        list_error: BaseException | None = None,
    ) -> None:
        super().__init__(integration, None)
        self.scopes = [ScopeRef(name=name, id=f"id-{name}") for name in scopes]
        # Per (scope, resource): one script per call, consumed in order; the last one repeats.
        self.scripts = scripts or {}
        self.list_error = list_error
        self.calls: list[tuple[str, Resource, dict[str, Any] | None]] = []
        self.closed = False

    async def list_scopes(self) -> list[ScopeRef]:
        if self.list_error is not None:
            raise self.list_error
        return self.scopes

    async def collect(
        self, scope: ScopeRef, resource: Resource, cursor: dict[str, Any] | None
    ) -> AsyncIterator[Batch]:
        self.calls.append((scope.name, resource, cursor))
        scripts = self.scripts.get((scope.name, resource), [])
        script = (scripts.pop(0) if len(scripts) > 1 else scripts[0]) if scripts else []
        for item in script:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self.closed = True


class JournalBus(MemoryBus):
    """A MemoryBus that journals publishes and flushes, and can fail them on demand."""

    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.journal = journal
        self.fail_publish: BaseException | None = None
        self.fail_flush: BaseException | None = None

    async def publish(self, topic: str, key: str, value: bytes) -> None:
        if self.fail_publish is not None:
            raise self.fail_publish
        await super().publish(topic, key, value)
        self.journal.append(("publish", topic, key))

    async def flush(self) -> None:
        if self.fail_flush is not None:
            raise self.fail_flush
        self.journal.append(("flush",))


class JournalCursors(MemoryCursorStore):
    def __init__(self, journal: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.journal = journal

    async def save(self, integration: str, scope: str, resource: str, cursor: dict[str, Any]) -> None:
        await super().save(integration, scope, resource, cursor)
        self.journal.append(("save", scope, resource, cursor))


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
