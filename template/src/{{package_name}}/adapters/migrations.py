"""Apply Alembic migrations at start, safely when several processes start at once.

Every process runs the upgrade inside one transaction that first takes a
database-wide write lock, so the first process migrates and the others wait,
then find the schema at head and do nothing. SQLite: ``BEGIN IMMEDIATE`` takes
the database's write lock (its DDL is transactional). A server database takes
its own lock here (PostgreSQL: an advisory transaction lock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .database import SQLITE_BUSY_TIMEOUT_MS

# src/<package>/adapters/migrations.py -> the project root holds migrations/ and alembic.ini.
PROJECT_ROOT: Final = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR: Final = PROJECT_ROOT / "migrations"
# How long a starting process waits for a peer that is migrating (SQLite; requests
# keep the shorter busy timeout of adapters/database.py).
SQLITE_MIGRATION_WAIT_MS: Final = 120_000


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, sharing ``connection`` with env.py when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def _lock_for_migration(connection: AsyncConnection) -> None:
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_MIGRATION_WAIT_MS}")
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def _unlock_after_migration(connection: AsyncConnection) -> None:
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision, one process at a time."""
    async with engine.connect() as connection:
        await _lock_for_migration(connection)
        await connection.run_sync(_upgrade)
        await connection.commit()
        await _unlock_after_migration(connection)
