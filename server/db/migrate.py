"""Bring a database to the newest schema with the Alembic migrations shipped in this package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["current_revision", "downgrade", "head_revision", "upgrade"]


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "server.db:migrations")
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        command.upgrade(_config(connection), revision)

    await _migrate(engine, run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take a database back to ``revision`` (an older schema), with the migrations' own downgrades."""

    def run(connection: Connection) -> None:
        command.downgrade(_config(connection), revision)

    await _migrate(engine, run)


async def _migrate(engine: AsyncEngine, run: Callable[[Connection], None]) -> None:
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A migration that rebuilds a table drops the old one, which with foreign keys on would delete
            # the rows referring to it (ON DELETE CASCADE). SQLite ignores this pragma inside a transaction,
            # so it is set before the migrations' transaction begins, and set back after it.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        try:
            async with connection.begin():
                await connection.run_sync(run)
        finally:
            if sqlite:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> Any:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        revision: str | None = await connection.run_sync(read)
    return revision


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
