"""Query parameters shared by list endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from doraflow.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from doraflow.api.schemas.common import SafeStr

Cursor = Annotated[SafeStr | None, Query(max_length=2048, description="`next_cursor` of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Search = Annotated[SafeStr | None, Query(max_length=200, description="case-insensitive substring")]

__all__ = ["DEFAULT_LIMIT", "Cursor", "Limit", "Search"]
