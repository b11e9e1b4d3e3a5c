"""PostgreSQL 16 for tests: the real server from the `pgserver` wheel, in a throwaway data dir.

`DORAFLOW_TEST_DATABASE_URL` (postgresql+asyncpg://…) points the suite at an existing server instead.
Tests get a fresh database each from `make_database`, so they never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.testenv.common import unavailable

MakeDatabase = Callable[[], Awaitable[str]]


def _asyncpg_url(uri: str) -> str:
    return make_url(uri).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _dsn(url: str) -> str:
    """The plain libpq form asyncpg.connect understands."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL (asyncpg dialect) of the server's maintenance database."""
    override = os.environ.get("DORAFLOW_TEST_DATABASE_URL")
    if override:
        yield override
        return
    try:
        import pgserver
    except ImportError as exc:
        unavailable(f"pgserver is not installed ({exc}); run `make install`")
    datadir = Path(tempfile.mkdtemp(prefix="doraflow-pg-"))
    try:
        server = pgserver.get_server(datadir, cleanup_mode="delete")
    except Exception as exc:  # pgserver raises plain exceptions with initdb/pg_ctl output
        shutil.rmtree(datadir, ignore_errors=True)
        unavailable(f"embedded PostgreSQL failed to start: {exc}")
    try:
        yield _asyncpg_url(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
async def make_database(postgres_url: str) -> AsyncIterator[MakeDatabase]:
    """Factory for empty databases on the test server; all are dropped at the end of the session."""
    created: list[str] = []
    admin_dsn = _dsn(postgres_url)

    async def create() -> str:
        name = f"test_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        created.append(name)
        return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)

    yield create

    connection = await asyncpg.connect(admin_dsn)
    try:
        for name in created:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def database_url(make_database: MakeDatabase) -> str:
    """A fresh, empty database for one test."""
    return await make_database()
