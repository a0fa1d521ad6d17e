"""The machine's PostgreSQL server, as the template's tests use it.

Each test gets a database of its own (``temporary_database``), created and
dropped through ``psql`` as the server's superuser over 127.0.0.1; nothing else
on the server is touched. ``.ci/run`` starts the server when it is not running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"
PORT = int(os.environ.get("PGPORT", "5432"))
SUPERUSER = os.environ.get("PGUSER", "postgres")


def psql(sql: str, database: str = "postgres") -> str:
    """Run ``sql`` with psql as the superuser; its output, unaligned and without headers."""
    binary = shutil.which("psql")
    assert binary, "psql is not installed (Debian: postgresql-client)"
    result = subprocess.run(
        [binary, "-h", HOST, "-p", str(PORT), "-U", SUPERUSER, "-d", database, "-At", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"psql failed: {result.stderr}"
    return result.stdout.strip()


def url(database: str, user: str = SUPERUSER, password: str | None = None) -> str:
    """The service's DATABASE_URL for ``database``."""
    credentials = user if password is None else f"{user}:{password}"
    return f"postgresql+asyncpg://{credentials}@{HOST}:{PORT}/{database}"


@contextmanager
def temporary_database(owner: str | None = None) -> Iterator[str]:
    """A new, empty database (owned by ``owner``), dropped with its connections afterwards."""
    name = f"shipshape_{uuid.uuid4().hex[:12]}"
    psql(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    try:
        yield name
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def temporary_role(password: str) -> Iterator[str]:
    """A login role with ``password`` (the server may trust 127.0.0.1 regardless)."""
    name = f"shipshape_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
    try:
        yield name
    finally:
        psql(f'DROP ROLE IF EXISTS "{name}"')
