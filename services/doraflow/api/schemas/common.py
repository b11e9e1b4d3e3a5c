"""Building blocks shared by the request and response models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")

SLUG_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


def _storable(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as UTF-8; both would
    otherwise surface as a database error (a 500) instead of a validation error naming the field."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def within_supported_years(value: datetime) -> datetime:
    """Timestamps far from now are typos, and near datetime's limits arithmetic overflows."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not (1970 <= value.year <= 2200):
        raise ValueError("must be between the years 1970 and 2200")
    return value.astimezone(UTC)


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON goes into JSONB, which refuses `\\u0000` too; and it must stay small."""

    def walk(item: Any, depth: int) -> None:
        if depth > 20:
            raise ValueError("is nested too deeply (at most 20 levels)")
        if isinstance(item, str):
            _storable(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _storable(key)
                walk(child, depth + 1)
        elif isinstance(item, list):
            for child in item:
                walk(child, depth + 1)

    walk(value, 0)
    if len(orjson.dumps(value)) > 65_536:
        raise ValueError("must be at most 64 KiB of JSON")
    return value


SafeStr = Annotated[str, AfterValidator(_storable)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_storable)]
Slug = Annotated[str, Field(min_length=1, max_length=63, pattern=SLUG_PATTERN)]
# A timestamp; a value without an offset is read as UTC (query strings are typed by people).
Timestamp = Annotated[datetime, AfterValidator(within_supported_years)]


class ApiModel(BaseModel):
    """Responses are built from ORM rows (`from_attributes`)."""

    model_config = ConfigDict(from_attributes=True)


class RequestModel(BaseModel):
    """Unknown fields are errors: a typo in a field name must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass `next_cursor` back as `cursor` for the next page; `null` at the end."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="opaque; absent on the last page")
