"""Keyset (cursor) pagination for every list endpoint.

Why keyset and not offsets: lists of developers or pull requests change while a client pages
through them, and `OFFSET n` both skips and repeats rows then and gets slower with every page.
A cursor is the position of the last row returned — its sort value and id — so each page is one
indexed range scan. Cursors are opaque (base64 of JSON) and carry the sort they were made for, so
a cursor reused with another `sort` is rejected instead of returning a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from doraflow.api.problems import field_problem

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class SortKey:
    """Order by `columns` (the sort column, then unique tie-breakers), all ascending or all
    descending. `name` is what the client asked for (`-created_at`)."""

    name: str
    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False


def parse_sort(value: str, columns: dict[str, InstrumentedAttribute[Any]], *tiebreak: Any) -> SortKey:
    """`name` or `-name` (descending), `name` one of `columns`; `tiebreak` makes the order total."""
    descending = value.startswith("-")
    name = value[1:] if descending else value
    if name not in columns:
        allowed = ", ".join(f"{n}, -{n}" for n in columns)
        raise field_problem("sort", f"unknown sort {value!r}; use one of: {allowed}")
    return SortKey(value, (columns[name], *tiebreak), descending)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def encode_cursor(sort: SortKey, values: Sequence[Any]) -> str:
    raw = orjson.dumps([sort.name, *(_encode_value(v) for v in values)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_as(column: InstrumentedAttribute[Any], value: Any) -> Any:
    python_type = column.type.python_type
    if value is None:
        raise ValueError("null position")
    if python_type is datetime:
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed
    if python_type is uuid.UUID:
        return uuid.UUID(str(value))
    if python_type is int:
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**31:
            raise ValueError("not an integer")
        return value
    if python_type is str:
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError("not a string")
        return value
    raise ValueError("unsupported cursor column")


def decode_cursor(cursor: str, sort: SortKey) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(decoded, list) or len(decoded) != len(sort.columns) + 1:
            raise ValueError("wrong shape")
        name, *values = decoded
        if name != sort.name:
            raise field_problem("cursor", f"this cursor belongs to sort={name!r}, not sort={sort.name!r}")
        return [_decode_as(column, value) for column, value in zip(sort.columns, values, strict=True)]
    except (ValueError, TypeError, binascii.Error, UnicodeError, orjson.JSONDecodeError):
        raise field_problem("cursor", "not a cursor returned by this endpoint") from None


async def paginate(
    session: AsyncSession,
    statement: Select[*tuple[Any, ...]],
    sort: SortKey,
    *,
    cursor: str | None,
    limit: int,
    entities: bool = True,
) -> tuple[list[Any], str | None]:
    """Run `statement` for one page and return its rows and the next cursor. `entities`: the
    statement selects one ORM entity (rows are objects), else rows are named tuples whose
    attribute names are the sort columns' keys."""
    if cursor:
        values = decode_cursor(cursor, sort)
        key = tuple_(*sort.columns)
        position = tuple_(*(literal(v, c.type) for v, c in zip(values, sort.columns, strict=True)))
        statement = statement.where(key < position if sort.descending else key > position)
    order = [column.desc() if sort.descending else column.asc() for column in sort.columns]
    result = await session.execute(statement.order_by(*order).limit(limit + 1))
    rows = list(result.scalars().all() if entities else result.all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(sort, [getattr(last, column.key) for column in sort.columns])
