"""Request observability as one pure ASGI middleware.

Per HTTP request it binds ``request_id`` to the log context, echoes it in
``X-Request-ID``, writes one access line, and records the request's metrics by
route template. It is the outermost application middleware, so it also turns an
unhandled exception into the problem+json 500 that still carries the request id.
One layer instead of three: each ASGI layer costs a wrapper per message.
The hooks (observability/hooks.py) let tracing open the request's span here too.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any, Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..problems import PROBLEM_JSON, problem
from .hooks import ObservabilityHooks
from .logs import AccessLog, bind_context, get_logger, reset_context
from .metrics import HttpMetrics

REQUEST_ID_HEADER: Final = b"x-request-id"
UNMATCHED_ROUTE: Final = "unmatched"
# Matched whole (fullmatch: "$" would also let a trailing newline through into the logs).
_SANE_REQUEST_ID: Final = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_SERVER_ERROR_BODY: Final = orjson.dumps(
    problem(500, "The server could not complete the request; it has been logged.")
)


class _RequestIds:
    """New request ids: a random per-process prefix and a counter, 32 hex digits.

    Unique without a system call per request (they correlate; they guard
    nothing). A forked child draws its own prefix.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def new(self) -> bytes:
        return f"{self._prefix}{next(self._counter):016x}".encode()


_request_ids = _RequestIds()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The caller's request id if it is sane, else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value
            break
    return _request_ids.new()


class RequestObservabilityMiddleware:
    """Request id, access log, metrics and last-resort 500 for every HTTP request."""

    def __init__(self, app: ASGIApp, hooks: ObservabilityHooks | None = None) -> None:
        self.app = app
        self._hooks = hooks or ObservabilityHooks()
        self._log = get_logger("access")
        self._access = AccessLog()
        self._metrics = HttpMetrics()
        self._endpoint_templates: dict[Any, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        request_id = request_id_from(scope["headers"])
        span = self._hooks.request_span(scope)
        context = bind_context(
            request_id=request_id.decode(), **(span.log_context if span is not None else {})
        )
        status_code = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code, response_started
            if message["type"] == "http.response.start":
                status_code = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            self._log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if response_started:
                raise  # too late for a 500; the server aborts the connection
            await self._send_server_error(send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            route = self._route_template(scope)
            if span is not None:
                span.finish(route, status_code)
            self._metrics.observe(scope["method"], route, status_code, seconds)
            self._access.write(
                scope["method"], scope["path"], route, status_code, round(seconds * 1000, 3)
            )
            reset_context(context)

    @staticmethod
    async def _send_server_error(send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(_SERVER_ERROR_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _SERVER_ERROR_BODY})

    def _route_template(self, scope: Scope) -> str:
        """The matched route's path template, never the raw path (label cardinality)."""
        route = scope.get("route")
        template = getattr(route, "path_format", None)
        if template is None and "endpoint" in scope:
            # FastAPI leaves plain Starlette routes (/docs, /openapi.json) out of
            # scope["route"]; find them by endpoint instead.
            template = self._templates_by_endpoint(scope).get(scope["endpoint"])
        return template if isinstance(template, str) else UNMATCHED_ROUTE

    def _templates_by_endpoint(self, scope: Scope) -> dict[Any, str]:
        if self._endpoint_templates is None:
            app = scope.get("app")
            self._endpoint_templates = {
                route.endpoint: route.path_format
                for route in getattr(app, "routes", ())
                if hasattr(route, "endpoint")
                and isinstance(getattr(route, "path_format", None), str)
            }
        return self._endpoint_templates
