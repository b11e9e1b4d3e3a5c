"""Where each (integration, scope, resource) stopped collecting, so a restart resumes there.

The runtime saves a batch's cursor only after the batch's events are flushed to the bus, so a
stored cursor never points past an event that was not delivered. Cursors are opaque JSON to the
runtime; each provider decides what it needs (a timestamp, a page token, commit SHAs).
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doraflow.core.database import transaction
from doraflow.core.models import SyncCursor


class CursorStore(Protocol):
    async def load(self, integration: str, scope: str, resource: str) -> dict[str, Any] | None: ...

    async def save(self, integration: str, scope: str, resource: str, cursor: dict[str, Any]) -> None: ...


def _json_copy(cursor: dict[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: what a database round trip would return, so a cursor that is not
    JSON (a datetime, a set) fails in unit tests instead of in production."""
    copied = orjson.loads(orjson.dumps(cursor))
    if not isinstance(copied, dict):  # pragma: no cover - dumps of a dict is a dict
        raise TypeError("a cursor must be a JSON object")
    return copied


class MemoryCursorStore:
    """In-process cursors, for tests and one-shot runs; `saves` records every save in order."""

    def __init__(self) -> None:
        self._cursors: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.saves: list[tuple[str, str, str, dict[str, Any]]] = []

    async def load(self, integration: str, scope: str, resource: str) -> dict[str, Any] | None:
        found = self._cursors.get((integration, scope, resource))
        return _json_copy(found) if found is not None else None

    async def save(self, integration: str, scope: str, resource: str, cursor: dict[str, Any]) -> None:
        stored = _json_copy(cursor)
        self._cursors[(integration, scope, resource)] = stored
        self.saves.append((integration, scope, resource, stored))


class DatabaseCursorStore:
    """Cursors in the `sync_cursors` table: one row per (integration, scope, resource), upserted."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def load(self, integration: str, scope: str, resource: str) -> dict[str, Any] | None:
        async with self._sessions() as session:
            result = await session.execute(
                select(SyncCursor.cursor).where(
                    SyncCursor.integration == integration,
                    SyncCursor.scope == scope,
                    SyncCursor.resource == resource,
                )
            )
            return result.scalar_one_or_none()

    async def save(self, integration: str, scope: str, resource: str, cursor: dict[str, Any]) -> None:
        statement = insert(SyncCursor).values(
            integration=integration, scope=scope, resource=resource, cursor=cursor
        )
        statement = statement.on_conflict_do_update(
            index_elements=[SyncCursor.integration, SyncCursor.scope, SyncCursor.resource],
            set_={"cursor": statement.excluded.cursor, "updated_at": func.now()},
        )
        async with transaction(self._sessions) as session:
            await session.execute(statement)
