"""Extension points the request middleware, the job store and the worker call.

The base class does nothing, and is what a service rendered without tracing
uses. An integration may provide its own (integrations/base.py: tracing does),
overriding these methods, so the call sites stay one line each and identical in
every variant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from ..domain.jobs import Job, JsonObject


class RequestSpan(Protocol):
    """What the middleware holds for one request while it runs."""

    log_context: Mapping[str, Any]

    def finish(self, route: str, status_code: int) -> None:
        """The request is answered: ``route`` is its template, or ``unmatched``."""


class ObservabilityHooks:
    """No-op hooks: every method is called once per request, job or engine."""

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """Called once for the service's database engine."""

    def request_span(self, scope: Scope) -> RequestSpan | None:
        """Called when an HTTP request arrives; None when there is nothing to track."""
        return None

    def job_trace_context(self) -> JsonObject | None:
        """What to store with a job submitted now, for its execution to continue."""
        return None

    @contextmanager
    def job_execution(self, job: Job) -> Iterator[None]:
        """Wraps one execution of ``job``."""
        yield
