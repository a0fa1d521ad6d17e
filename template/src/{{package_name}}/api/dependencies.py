"""Typed access to the lifespan's resources: ``Annotated`` aliases for route signatures.

Tests swap any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..adapters.job_store import JobStore
from ..config import Settings
from ..domain.kinds import JobKinds
from ..resources import Resources
from ..worker import Worker


def get_resources(request: Request) -> Resources:
    """The resources the lifespan put in the application state."""
    resources: Resources = request.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


def get_settings(resources: ResourcesDep) -> Settings:
    """The validated settings."""
    return resources.settings


def get_job_store(resources: ResourcesDep) -> JobStore:
    """The job store."""
    return resources.store


def get_job_kinds(resources: ResourcesDep) -> JobKinds:
    """The registry of job kinds."""
    return resources.kinds


def get_worker(resources: ResourcesDep) -> Worker:
    """This process's job worker."""
    return resources.worker


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
JobKindsDep = Annotated[JobKinds, Depends(get_job_kinds)]
WorkerDep = Annotated[Worker, Depends(get_worker)]
