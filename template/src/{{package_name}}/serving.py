"""Run the service under uvicorn, the way ``python -m <package>`` does.

Order matters here: settings are validated before anything starts (a bad value
is one line on stderr and exit status 2), a dependency that cannot be used (the
database, a secrets store) is one line and exit status 3, and the metrics directory is
prepared before prometheus_client is first imported, which happens when uvicorn
imports the application.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Final, NoReturn

import uvicorn
from pydantic import ValidationError

from . import SERVICE_NAME
from .adapters.database import wait_until_reachable
from .config import Settings, describe_errors
from .http_protocol import BoundedHttpToolsProtocol
from .integrations.base import EXIT_DEPENDENCY_UNAVAILABLE, StartupError
from .observability.logs import configure_logging, get_logger

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
EXIT_BAD_SETTINGS: Final = 2


def prepare_metrics_directory(workers: int) -> Path | None:
    """Point prometheus_client at an empty sample directory when it needs one.

    One process keeps its samples in memory (cheaper per update, and the stock
    process and GC collectors work). Several workers share a directory, so that
    ``/metrics`` sums them whichever worker answers: a directory given in
    PROMETHEUS_MULTIPROC_DIR is emptied of the samples a previous run left, and
    kept; otherwise a fresh one is created and returned, for removal at exit.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    if workers == 1:
        return None
    created = Path(tempfile.mkdtemp(prefix=f"{SERVICE_NAME}-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    return created


def _exit_zero(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def main() -> int:
    """Validate settings, then serve until SIGTERM or SIGINT; 0 after a clean stop."""
    try:
        settings = Settings()
    except ValidationError as error:
        sys.stderr.write(describe_errors(error) + "\n")
        return EXIT_BAD_SETTINGS
    except StartupError as error:
        sys.stderr.write(f"{error}\n")
        return error.exit_status
    unreachable = asyncio.run(
        wait_until_reachable(
            settings.database_url.get_secret_value(), settings.database_connect_timeout_seconds
        )
    )
    if unreachable is not None:
        sys.stderr.write(f"{unreachable}\n")
        return EXIT_DEPENDENCY_UNAVAILABLE
    configure_logging(settings.log_level, settings.log_format)
    created_directory = prepare_metrics_directory(settings.workers)
    # uvicorn re-raises SIGTERM once its graceful shutdown is done, which would end
    # the process with status 143. It restores the handler it found before doing
    # so, so the handler set here turns that final signal into a clean exit (and a
    # signal that arrives before uvicorn listens into an immediate one).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_zero)
    get_logger("serving").info(
        "starting server", host=settings.host, port=settings.port, workers=settings.workers
    )
    try:
        uvicorn.run(
            f"{__package__}.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            timeout_graceful_shutdown=max(int(settings.shutdown_grace_seconds), 1),
            log_config=None,
            access_log=False,
            server_header=False,
            # Bounds on what one client may hold (docs/design.md, "Request limits").
            http=BoundedHttpToolsProtocol,
            h11_max_incomplete_event_size=settings.max_request_header_bytes,
            limit_concurrency=settings.limit_concurrency,
            timeout_keep_alive=settings.keep_alive_timeout_seconds,
        )
    finally:
        if created_directory is not None:
            shutil.rmtree(created_directory, ignore_errors=True)
    return 0
