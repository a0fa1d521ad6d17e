"""What the lifespan builds and the routes use: the application's typed state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from .adapters.job_store import JobStore
from .config import Settings
from .domain.kinds import JobKinds
from .lifecycle import Lifecycle
from .worker import Worker


@dataclass(frozen=True, slots=True)
class Resources:
    """Created in the lifespan, handed to routes through api/dependencies.py."""

    settings: Settings
    engine: AsyncEngine
    store: JobStore
    kinds: JobKinds
    worker: Worker
    lifecycle: Lifecycle
