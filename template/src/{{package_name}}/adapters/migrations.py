"""Apply Alembic migrations at start, safely when several processes start at once.

Every process runs the upgrade inside one transaction that first takes a
database-wide lock (engine.py: SQLite's write lock through ``BEGIN IMMEDIATE``,
PostgreSQL's advisory transaction lock), so the first process migrates and the
others wait, then find the schema at head and do nothing. Both backends'
DDL is transactional: a migration that fails leaves the schema as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import lock_for_migration, unlock_after_migration

# src/<package>/adapters/migrations.py -> the project root holds migrations/ and alembic.ini.
PROJECT_ROOT: Final = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR: Final = PROJECT_ROOT / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, sharing ``connection`` with env.py when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision, one process at a time."""
    async with engine.connect() as connection:
        await lock_for_migration(connection)
        await connection.run_sync(_upgrade)
        await connection.commit()
        await unlock_after_migration(connection)
