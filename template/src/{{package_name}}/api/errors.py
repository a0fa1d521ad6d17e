"""Every error the API returns is problem+json; no handler ever includes a traceback.

Unhandled exceptions become a 500 in observability/middleware.py, which is
outside these handlers so that the 500 still carries the request id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..domain.jobs import FieldError, InvalidJobError, JobNotFoundError, StorageUnavailableError
from ..observability.logs import get_logger
from ..problems import PROBLEM_JSON, problem

# Seconds a client should wait before retrying when the job store is unavailable.
RETRY_AFTER_SECONDS = 1
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
            {"field": error.field, "message": error.message, "type": error.type} for error in errors
        ]
    return JSONResponse(
        problem(status, detail, **extensions),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def _invalid(errors: list[FieldError]) -> JSONResponse:
    count = len(errors)
    detail = f"The request has {count} invalid field{'s' if count != 1 else ''}."
    return problem_response(422, detail, errors=errors)


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

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
        return problem_response(
            503,
            "The job store is unavailable for now; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
