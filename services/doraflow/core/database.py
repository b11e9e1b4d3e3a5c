"""The one async engine and session factory (asyncpg), plus the embedded PostgreSQL.

In the embedded mode (no `DORAFLOW_DATABASE_URL`) a real PostgreSQL 16 from the `pgserver` wheel
runs under `$DORAFLOW_HOME/postgres`, reached over its Unix socket; everything above this module is
identical in both modes.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from doraflow.core.settings import Settings

logger = logging.getLogger(__name__)


def embedded_database_url(home: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under `home` and return its asyncpg URL.

    pgserver keeps one server per data directory and reuses it within the process, so calling this
    twice is cheap; the server stops when this process exits and the data stays.
    """
    datadir = home / "postgres"
    datadir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # imported lazily: cluster deployments never need it

        server = pgserver.get_server(str(datadir), cleanup_mode="stop")  # stopped when we exit
        return asyncpg_url(server.get_uri())


def asyncpg_url(uri: str) -> str:
    """Turn a libpq URI (`postgresql://user@/db?host=/sock`) into the SQLAlchemy asyncpg form."""
    url = make_url(uri)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_database_url(settings.home)


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    return create_async_engine(
        url or database_url(settings),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        # Timestamps are always UTC in the database; the session TZ only affects casts to text.
        connect_args={"server_settings": {"timezone": "UTC", "application_name": "doraflow"}},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: services return ORM objects after commit to build responses.
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any exception."""
    async with factory() as session, session.begin():
        yield session
