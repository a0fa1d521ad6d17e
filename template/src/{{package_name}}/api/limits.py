"""Request body limits as one pure ASGI middleware: size (413) and time (408).

A ``Content-Length`` above the limit is refused before the application runs; a
body sent without one (chunked) is counted as it arrives and refused at the first
chunk past the limit. The body is never buffered here, and the whole of it must
arrive within the body timeout of the request's head, so a client that declares a
body and sends one byte frees its connection. Both answers close the connection:
the rest of the body is never read.

The refusals are HTTPExceptions raised from ``receive``: FastAPI passes those on
untouched, so the route's problem+json handler answers inside the request
middleware (request id, access line, metrics). A refusal that reaches this layer
(an application that reads the body outside FastAPI's handlers) is answered here.
"""

from __future__ import annotations

import asyncio
from typing import Final

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import problem_response

CONTENT_LENGTH: Final = b"content-length"
_CLOSE: Final = {"Connection": "close"}


class BodyTooLargeError(HTTPException):
    """The body is, or declares it will be, longer than the limit: 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"The request body is larger than {limit} bytes.", headers=dict(_CLOSE)
        )


class BodyTimeoutError(HTTPException):
    """The body did not arrive in time: 408."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            408, f"The request body did not arrive within {seconds:g} s.", headers=dict(_CLOSE)
        )


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length the client sent, or None (the server refuses a malformed one)."""
    for name, value in headers:
        if name == CONTENT_LENGTH:
            return int(value) if value.isdigit() else None
    return None


class RequestBodyLimitMiddleware:
    """Refuse a body larger than ``max_bytes`` (413) or slower than ``timeout_seconds`` (408)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self._max_bytes = max_bytes
        self._timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope["headers"])
        if declared is not None and declared > self._max_bytes:
            await self._refuse(BodyTooLargeError(self._max_bytes), scope, receive, send)
            return

        deadline = asyncio.get_running_loop().time() + self._timeout_seconds
        received = 0
        body_done = declared == 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body: a disconnect, however late, is no timeout
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self._timeout_seconds) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_bytes:
                    raise BodyTooLargeError(self._max_bytes)
                body_done = not message.get("more_body", False)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (BodyTooLargeError, BodyTimeoutError) as refusal:
            if response_started:
                raise
            await self._refuse(refusal, scope, receive, send)

    @staticmethod
    async def _refuse(refusal: HTTPException, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(refusal.status_code, refusal.detail, headers=refusal.headers)
        await response(scope, receive, send)
