"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools one, with the request head bounded.

uvicorn bounds a request's head (request line and headers) only on its h11
protocol, through ``h11_max_incomplete_event_size``. On httptools, the faster
parser it picks when installed, a client may send megabytes of headers, or one
byte of them a minute, and hold memory and a connection for as long as it likes.
This subclass adds both bounds, read from the uvicorn config serving.py builds:

- size: a head past ``h11_max_incomplete_event_size`` bytes, finished or not, is
  answered 431 and the connection closed;
- time: a head must be complete within ``timeout_keep_alive`` seconds of the
  connection going idle (opened, or its last response sent); otherwise the
  connection is closed, with a 408 if part of a head had arrived.

An unfinished head is measured by the bytes read while it lasts (to within one
read, when a body and the next head share one); a finished one by its parts.
Refusals here happen before any ASGI request exists, so they carry a new
request id and write one warning line, but no access line or request metrics.
"""

from __future__ import annotations

import asyncio
import os
from http import HTTPStatus
from typing import Any, Final

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from .observability.logs import get_logger
from .problems import PROBLEM_JSON, problem

DEFAULT_MAX_HEAD_BYTES: Final = 16_384
_log = get_logger("http")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools HTTP/1.1 with a size and a time bound on each request head."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._max_head_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._head_seconds = float(config.timeout_keep_alive)
        self._in_head = True
        self._head_started = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self._max_head_bytes:
            self._head_too_large()

    # Parser callbacks: once refused, the rest of what was read is dropped.
    def on_message_begin(self) -> None:
        self._head_started = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        self._stop_head_timer()
        parts = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if parts > self._max_head_bytes:
            self._head_too_large()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True
        self._head_started = False
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_head and not self.transport.is_closing():
            self._await_head()  # idle again: the next head has the same time

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self._head_seconds, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_large(self) -> None:
        self._refuse(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            f"The request line and headers exceed {self._max_head_bytes} bytes.",
        )

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if not self._head_started:
            self.transport.close()  # an idle connection: closed, as keep-alive does
            return
        self._refuse(
            HTTPStatus.REQUEST_TIMEOUT,
            f"The request line and headers did not arrive within {self._head_seconds:g} s.",
        )

    def _refuse(self, status: HTTPStatus, detail: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._stop_head_timer()
        request_id = os.urandom(16).hex()
        _log.warning(
            "request head refused", status_code=int(status), reason=detail, request_id=request_id
        )
        body = orjson.dumps(problem(int(status), detail))
        head = [
            f"HTTP/1.1 {int(status)} {status.phrase}\r\n".encode(),
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            f"content-type: {PROBLEM_JSON}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            f"x-request-id: {request_id}\r\n".encode(),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join([*head, body]))
        self.transport.close()
