"""Vault (hvac; OpenBao works too): settings from a KV v2 secret, a token kept alive.

- settings.py: the VAULT_* variables;
- client.py: hvac calls, failures turned into reasons safe to log;
- session.py: the one login per process, and the secret as a settings source;
- keeper.py: token renewal off the event loop, and the readiness check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ...domain.ports import ReadinessCheck
from ..base import Integration
from .keeper import start_keeper
from .session import VaultSettingsSource


class VaultIntegration(Integration):
    """The Vault secret above the environment; the token renewed while the app runs."""

    name = "vault"

    def settings_sources(
        self, settings_cls: type[BaseSettings]
    ) -> Sequence[PydanticBaseSettingsSource]:
        """The service's KV v2 secret (nothing when VAULT_ADDR is not set)."""
        return (VaultSettingsSource(settings_cls),)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Sequence[ReadinessCheck]]:
        """The token keeper for the session the settings came from; readiness asks it."""
        keeper = start_keeper()
        if keeper is None:
            yield ()
            return
        try:
            yield (keeper,)
        finally:
            await keeper.stop()
