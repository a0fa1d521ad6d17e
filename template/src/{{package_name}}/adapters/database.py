"""The database engine: one async engine per process, tuned per backend."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS: Final = 5_000
# Two connections switching a new database to WAL at the same moment can deadlock on
# SQLite's lock upgrade, which returns "database is locked" at once instead of waiting.
WAL_SWITCH_ATTEMPTS: Final = 20
WAL_SWITCH_PAUSE_SECONDS: Final = 0.05
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
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # WAL is stored in the file: once one connection switched, the others only read it.
    # The retry covers the first start, when several processes race to switch; it runs
    # once per new connection, never on a request path.
    for attempt in range(1, WAL_SWITCH_ATTEMPTS + 1):
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_SWITCH_ATTEMPTS:
                raise
            time.sleep(WAL_SWITCH_PAUSE_SECONDS * attempt)


def display_url(url: URL) -> str:
    """A database URL with any password masked, for logs."""
    return url.render_as_string(hide_password=True)


async def ping(engine: AsyncEngine) -> None:
    """Round-trip ``SELECT 1``; raises if the database does not answer in time."""
    async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
