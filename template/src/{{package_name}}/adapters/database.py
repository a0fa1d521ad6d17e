"""The database engine: one async engine per process, tuned per backend."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS: Final = 5_000
READINESS_TIMEOUT_SECONDS: Final = 2.0


def create_engine(database_url: str) -> AsyncEngine:
    """An async engine for ``database_url``; SQLite gets WAL and a busy timeout."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    _ensure_sqlite_directory(url)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _tune_sqlite_connection)
    return engine


def _ensure_sqlite_directory(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _tune_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # busy_timeout first: switching to WAL itself needs the lock another process may hold.
    # WAL lets readers run beside the one writer; NORMAL sync is durable in WAL mode
    # except for the last transactions on power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def display_url(url: URL) -> str:
    """A database URL with any password masked, for logs."""
    return url.render_as_string(hide_password=True)


async def ping(engine: AsyncEngine) -> None:
    """Round-trip ``SELECT 1``; raises if the database does not answer in time."""
    async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
