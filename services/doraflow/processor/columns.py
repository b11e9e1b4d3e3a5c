"""Rows turned into column arrays: what `INSERT … SELECT * FROM unnest($1::…[], $2::…[], …)` takes.

Every upsert of the processor sends a batch as one array per column, so a table costs one round trip
per batch whatever its row count (see `storage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def empty_columns(count: int) -> list[list[Any]]:
    return [[] for _ in range(count)]


def append_row(columns: list[list[Any]], row: Sequence[Any]) -> None:
    """Add one row to the column arrays (as many values as there are columns)."""
    for column, value in zip(columns, row, strict=True):
        column.append(value)
