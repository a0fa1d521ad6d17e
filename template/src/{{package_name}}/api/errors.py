"""Every error the API returns is problem+json; no handler ever includes a traceback.

Unhandled exceptions become a 500 in observability/middleware.py, which is
outside these handlers so that the 500 still carries the request id.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from ..domain.jobs import FieldError, InvalidJobError, JobNotFoundError, StorageUnavailableError
from ..observability.logs import get_logger
from ..problems import PROBLEM_JSON, problem

# Seconds a client should wait before retrying when the job store is unavailable.
RETRY_AFTER_SECONDS = 1
# A 422 names at most this many invalid fields, each string cut to this length: a
# request with huge field names or thousands of errors gets a small answer.
MAX_ECHOED_ERRORS = 20
MAX_ECHOED_CHARS = 200
_log = get_logger("errors")


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    errors: Iterable[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; ``errors`` lists invalid fields on a 422."""
    extensions = {}
    if errors is not None:
        extensions["errors"] = [
            {"field": _cut(error.field), "message": _cut(error.message), "type": _cut(error.type)}
            for error in itertools.islice(errors, MAX_ECHOED_ERRORS)
        ]
    return JSONResponse(
        problem(status, detail, **extensions),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ECHOED_CHARS else f"{text[: MAX_ECHOED_CHARS - 1]}…"


def _invalid(errors: list[FieldError]) -> JSONResponse:
    count = len(errors)
    detail = f"The request has {count} invalid field{'s' if count != 1 else ''}."
    if count > MAX_ECHOED_ERRORS:
        detail += f" The first {MAX_ECHOED_ERRORS} are listed."
    return problem_response(422, detail, errors=errors)


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette's 405 names the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _scope = route.matches(request.scope)
        if match is Match.PARTIAL:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return problem_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(
            [
                FieldError(
                    field=".".join(str(part) for part in error["loc"]),
                    message=error["msg"],
                    type=error["type"],
                )
                for error in exc.errors()
            ]
        )

    @app.exception_handler(InvalidJobError)
    async def invalid_job(_request: Request, exc: InvalidJobError) -> JSONResponse:
        return _invalid(exc.errors)

    @app.exception_handler(JobNotFoundError)
    async def job_not_found(_request: Request, exc: JobNotFoundError) -> JSONResponse:
        return problem_response(404, str(exc))

    @app.exception_handler(StorageUnavailableError)
    async def storage_unavailable(request: Request, exc: StorageUnavailableError) -> JSONResponse:
        _log.warning("job store unavailable", path=request.url.path, error=str(exc))
        reason = str(exc)
        detail = (
            f"{reason[0].upper()}{reason[1:]}; retry shortly."
            if reason.startswith("the job store cannot write")
            else "The job store is unavailable for now; retry shortly."
        )
        return problem_response(
            503,
            detail,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
