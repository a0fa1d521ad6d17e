"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Literal

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from ..domain.ports import ReadinessCheck
from ..observability.logs import get_logger
from ..observability.metrics import CONTENT_TYPE, render_metrics
from .dependencies import ApiStateDep
from .schemas import Health, Readiness

_log = get_logger("readiness")


async def healthz() -> Health:
    """Liveness: 200 while the process runs."""
    return Health()


async def _check(check: ReadinessCheck) -> Literal["ok", "failing"]:
    try:
        await check.check()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        _log.warning("readiness check failed", check=check.name, error=type(error).__name__)
        return "failing"
    return "ok"


async def readyz(state: ApiStateDep) -> JSONResponse:
    """Readiness: 200 when every dependency answers; 503 naming what fails, or once shutdown began.

    The checks run at once, so together they take as long as the slowest, which
    each bounds itself.
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
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=tags)
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        tags=tags,
        response_model=Readiness,
        responses={503: {"model": Readiness}},
    )
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
