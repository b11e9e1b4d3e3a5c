"""Alembic environment: async engine from the one settings class, or a connection handed in.

`doraflow migrate` (doraflow.core.migrate) passes an open connection through `config.attributes`;
plain `alembic upgrade head` in a checkout builds one from `DORAFLOW_DATABASE_URL`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from doraflow.core.database import create_engine
from doraflow.core.models import Base
from doraflow.core.settings import Settings

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(Settings())
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported: the schema depends on extensions")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


main()
