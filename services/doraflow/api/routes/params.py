"""Query parameters shared by endpoints: paging for lists, scope and window for analytics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from doraflow.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from doraflow.api.schemas.analytics import ScopeKind, WindowName
from doraflow.api.schemas.common import SafeStr, Timestamp
from doraflow.api.services.analytics import resolve_window
from doraflow.metrics import Window

Cursor = Annotated[SafeStr | None, Query(max_length=2048, description="`next_cursor` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Search = Annotated[SafeStr | None, Query(max_length=200, description="case-insensitive substring")]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """`cursor` and `limit` of a cursor-paginated list, as one dependency."""

    cursor: Cursor = None
    limit: Limit = DEFAULT_LIMIT


Paging = Annotated[PageRequest, Depends()]


class ScopeAndWindow:
    """What every analytics endpoint measures: a scope (`scope`, `id`) and a window — either
    `window` (the last N whole days) or `from`/`to`. Declared once so the endpoints cannot drift
    apart in names, defaults or documentation."""

    def __init__(
        self,
        scope: Annotated[ScopeKind, Query(description="what to measure")] = "organization",
        id: Annotated[
            uuid.UUID | None, Query(description="team or repository id (organization: optional)")
        ] = None,
        window: Annotated[WindowName | None, Query(description="the last N whole days (default 30d)")] = None,
        from_: Annotated[
            Timestamp | None, Query(alias="from", description="start (inclusive); UTC without offset")
        ] = None,
        to: Annotated[Timestamp | None, Query(description="end (exclusive); default now")] = None,
    ) -> None:
        self.kind: ScopeKind = scope
        self.scope_id = id
        self._window = window
        self._from = from_
        self._to = to

    def window(self, default: WindowName | None = None) -> Window:
        """The window asked for; `default` instead of 30 days when neither `window` nor
        `from`/`to` was given."""
        named = self._window
        if named is None and self._from is None and self._to is None:
            named = default
        return resolve_window(named, self._from, self._to)


AnalyticsQuery = Annotated[ScopeAndWindow, Depends()]

__all__ = [
    "DEFAULT_LIMIT",
    "AnalyticsQuery",
    "Cursor",
    "Limit",
    "PageRequest",
    "Paging",
    "ScopeAndWindow",
    "Search",
]
