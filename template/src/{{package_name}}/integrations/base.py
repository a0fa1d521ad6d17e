"""The one seam for optional integrations (secrets, tracing): what the core asks of them.

An integration may add settings sources above the environment, run something for
the application's life (a token keeper, the tracing SDK), add readiness and
liveness checks and provide the observability hooks. Every method has a
do-nothing default, so an integration overrides only what it uses.
``integrations/__init__.py`` lists the ones this service was rendered with;
``main.py`` and ``config.py`` call them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ..domain.ports import LivenessCheck, ReadinessCheck
from ..observability.hooks import ObservabilityHooks

# serving.main exits with this when a dependency cannot be used at start (2 is a bad setting).
EXIT_DEPENDENCY_UNAVAILABLE: Final = 3


class StartupError(Exception):
    """A dependency cannot be used at start; ``str()`` is the one line to print."""

    exit_status: int = EXIT_DEPENDENCY_UNAVAILABLE


class Integration:
    """An optional part of the service, plugged in through these five methods."""

    name = "integration"

    def settings_sources(
        self, settings_cls: type[BaseSettings]
    ) -> Sequence[PydanticBaseSettingsSource]:
        """Sources that take precedence over the environment (highest first)."""
        return ()

    def observability_hooks(self) -> ObservabilityHooks | None:
        """The hooks the request middleware, job store and worker call, if this provides them."""
        return None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Sequence[ReadinessCheck]]:
        """Runs for the application's life, around the core; yields its readiness checks.

        Entered before the database engine is created and left after the worker
        stopped, in the reverse order of ``installed()``.
        """
        yield ()

    def liveness_checks(self) -> Sequence[LivenessCheck]:
        """What /healthz asks once ``running()`` has been entered: one failing means only
        a restart of the process can help (never just a dependency being down)."""
        return ()
