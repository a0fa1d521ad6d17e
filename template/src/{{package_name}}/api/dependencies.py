"""What routes get from the lifespan: the typed state, and ``Annotated`` aliases for it.

Routes see ports and use cases only (the job service, readiness checks, the
lifecycle), never an adapter; ``main.py`` builds the state. Tests swap any of
them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ..domain.job_service import JobService
from ..domain.ports import LivenessCheck, ReadinessCheck
from ..lifecycle import Lifecycle


@dataclass(frozen=True, slots=True)
class ApiState:
    """Created in the lifespan (main.py), read by routes through the aliases below."""

    jobs: JobService
    readiness: Sequence[ReadinessCheck]
    lifecycle: Lifecycle
    liveness: Sequence[LivenessCheck] = ()


# ``async def``, though neither awaits: FastAPI runs a plain ``def`` dependency in its
# thread pool, two thread hand-offs per request (bench/jobs.py measured them).
async def get_state(request: Request) -> ApiState:
    """The state the lifespan put in the application state."""
    state: ApiState = request.state.api
    return state


ApiStateDep = Annotated[ApiState, Depends(get_state)]


async def get_job_service(state: ApiStateDep) -> JobService:
    """The job use cases."""
    return state.jobs


JobServiceDep = Annotated[JobService, Depends(get_job_service)]
