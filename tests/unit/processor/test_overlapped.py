"""`storage.overlapped`: Python work runs while a statement is in flight, and failures of either
side surface without leaving the statement running."""

from __future__ import annotations

import asyncio

import pytest

from doraflow.processor.storage import overlapped


async def test_the_build_runs_while_the_statement_waits() -> None:
    events: list[str] = []
    released = asyncio.Event()

    async def statement() -> str:
        events.append("sent")
        await released.wait()  # the database working
        events.append("answered")
        return "rows"

    def build() -> str:
        events.append("built")
        released.set()
        return "columns"

    assert await overlapped(statement(), build) == ("rows", "columns")
    assert events == ["sent", "built", "answered"]


async def test_a_failing_build_cancels_the_statement() -> None:
    cancelled = asyncio.Event()

    async def statement() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def build() -> None:
        raise KeyError("an unknown repository")

    with pytest.raises(KeyError):
        await overlapped(statement(), build)
    assert cancelled.is_set()


async def test_a_failing_statement_fails_after_the_build() -> None:
    async def statement() -> None:
        raise ValueError("22P02: invalid input")

    with pytest.raises(ValueError, match="22P02"):
        await overlapped(statement(), lambda: "columns")
