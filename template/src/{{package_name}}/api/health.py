"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Final, Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from ..domain.ports import ReadinessCheck
from ..observability.logs import get_logger
from ..observability.metrics import CONTENT_TYPE, render_metrics
from .dependencies import ApiStateDep
from .schemas import Health, Readiness

_log = get_logger("readiness")
# Under the probes' 3 s timeout (the chart's, the image's HEALTHCHECK), above the database
# check's own 2 s: past it a check counts as failing, and /readyz does not wait for it.
CHECK_DEADLINE_SECONDS: Final = 2.5


async def healthz(state: ApiStateDep) -> Health | JSONResponse:
    """Liveness: 200 while the process runs, unless a liveness check says only a restart helps."""
    failing: dict[str, Literal["ok", "failing"]] = {
        check.name: "failing" for check in state.liveness if check.restart_reason()
    }
    if failing:
        body = Readiness(status="unavailable", checks=failing)  # the reasons are logged once
        return JSONResponse(body.model_dump(), status_code=503)
    return Health()


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is not "never retrieved"


async def _check(check: ReadinessCheck) -> Literal["ok", "failing"]:
    task = asyncio.ensure_future(check.check())
    try:
        done, _late = await asyncio.wait({task}, timeout=CHECK_DEADLINE_SECONDS)
    finally:
        if not task.done():  # past the deadline (or this request cancelled): do not wait
            task.cancel()
            task.add_done_callback(_consume)
    if not done:
        _log.warning("readiness check timed out", check=check.name)
        return "failing"
    error = asyncio.CancelledError() if task.cancelled() else task.exception()
    if error is not None:  # any failure means "not ready"
        _log.warning("readiness check failed", check=check.name, error=type(error).__name__)
        return "failing"
    return "ok"


async def readyz(state: ApiStateDep) -> JSONResponse:
    """Readiness: 200 when every dependency answers; 503 naming what fails, or once shutdown began.

    The checks run at once, so together they take as long as the slowest, which
    each bounds itself and CHECK_DEADLINE_SECONDS bounds in any case.
    """
    results = await asyncio.gather(*(_check(check) for check in state.readiness))
    checks = {check.name: result for check, result in zip(state.readiness, results, strict=True)}
    if state.lifecycle.shutting_down:
        status = "shutting_down"
    elif all(result == "ok" for result in checks.values()):
        status = "ok"
    else:
        status = "unavailable"
    body = Readiness(status=status, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if status == "ok" else 503)


def metrics() -> Response:
    """Prometheus exposition (a plain def: reading the sample files blocks)."""
    return Response(render_metrics(), media_type=CONTENT_TYPE)


def add_operations_routes(app: FastAPI) -> None:
    """Register /healthz, /readyz and /metrics on ``app`` (see api/__init__.py for why)."""
    tags: list[str | Enum] = ["operations"]
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        tags=tags,
        response_model=Health,
        responses={503: {"model": Readiness}},
    )
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        tags=tags,
        response_model=Readiness,
        responses={503: {"model": Readiness}},
    )
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
