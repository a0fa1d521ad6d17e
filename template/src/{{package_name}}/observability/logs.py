"""Structured logs: one JSON object per line on stdout, or coloured lines for humans.

structlog's own loggers and the stdlib's (uvicorn, SQLAlchemy, Alembic) share one
processor chain, so every line has the same keys: ``timestamp``, ``level``,
``event``, ``logger`` and whatever context is bound (``request_id``, ``job_id``).

The chain is short on purpose: the access log writes a line per request, and each
processor is a function call on that path.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any, Final

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED: Final = "[REDACTED]"
SENSITIVE_KEYS: Final = frozenset(
    {
        "authorization",
        "cookie",
        "password",
        "proxy-authorization",
        "secret",
        "secret_id",
        "set-cookie",
        "token",
    }
)
_URL_PASSWORD: Final = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
_LEVEL_NAMES: Final = {"warn": "warning", "exception": "error", "msg": "info", "log": "info"}
# Loggers whose records go through the shared handler, with the level they keep.
_QUIET_LOGGERS: Final = {
    "uvicorn.access": logging.WARNING,  # the access line comes from our middleware
    "sqlalchemy.engine": logging.WARNING,
    "alembic": logging.WARNING,
}

_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("log_context", default=MappingProxyType({}))


def bind_context(**values: Any) -> Token[Mapping[str, Any]]:
    """Add ``values`` to every line logged in this context (task) until reset.

    One ContextVar holding a small dict: structlog's own merge_contextvars scans
    every context variable of the task, which costs several µs per line inside a
    request, where FastAPI and its libraries hold many.
    """
    current = _CONTEXT.get()
    return _CONTEXT.set({**current, **values} if current else values)


def reset_context(token: Token[Mapping[str, Any]]) -> None:
    """Undo the ``bind_context`` that returned ``token``."""
    _CONTEXT.reset(token)


class _UtcClock:
    """ISO 8601 UTC timestamps with microseconds; the seconds part is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        current = time.time()
        second = int(current)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((current - second) * 1_000_000):06d}Z"


_clock = _UtcClock()


def add_standard_keys(_logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """``timestamp``, ``level``, ``logger`` and the bound context, in one step."""
    name = event_dict.pop("logger_name", None)  # see get_logger()
    if name is not None:
        event_dict["logger"] = name
    event_dict["level"] = _LEVEL_NAMES.get(method, method)
    event_dict["timestamp"] = _clock.now()
    for key, value in _CONTEXT.get().items():
        event_dict.setdefault(key, value)
    return event_dict


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask values of secret-looking keys and passwords inside URLs."""
    if not SENSITIVE_KEYS.isdisjoint(event_dict):
        for key in event_dict.keys() & SENSITIVE_KEYS:
            event_dict[key] = REDACTED
    for key, value in event_dict.items():
        if type(value) is str and "@" in value and "://" in value:
            event_dict[key] = _URL_PASSWORD.sub(r"\g<head>" + REDACTED + "@", value)
    return event_dict


# Locals stay out of tracebacks: they may hold credentials.
_render_exception = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


def render_exception(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Structured traceback under ``exception``, for lines that carry one."""
    if "exc_info" in event_dict:
        return _render_exception(logger, method, event_dict)
    return event_dict


def _json_bytes(event_dict: Any, **_kwargs: Any) -> bytes:
    return orjson.dumps(event_dict, default=repr)


def _json_text(event_dict: Any, **_kwargs: Any) -> str:
    return orjson.dumps(event_dict, default=repr).decode()


def _write_line(line: bytes) -> None:
    buffer = sys.stdout.buffer
    buffer.write(line + b"\n")
    buffer.flush()


class StdoutLogger:
    """structlog's output: one line per call to whatever ``sys.stdout`` is now.

    Looking ``sys.stdout`` up on every write (instead of binding it once, as
    structlog's WriteLogger does) keeps cached loggers valid when the stream is
    swapped, as test capture does. Each line is flushed: logs must not sit in a
    buffer when the process dies.
    """

    def msg(self, message: str | bytes) -> None:
        stream = sys.stdout
        if isinstance(message, bytes):
            _write_line(message)
        else:
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class StdoutHandler(logging.Handler):
    """The stdlib side of the same stream: formats records through structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def _stdout_logger(*_args: Any) -> StdoutLogger:
    return StdoutLogger()


class _Active:
    """What configure_logging last set up, for AccessLog."""

    level = logging.INFO
    json = True


def configure_logging(level: str, log_format: str) -> None:
    """Route structlog and stdlib logging to stdout in one format. Idempotent."""
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    _Active.level = numeric_level
    _Active.json = log_format != "console"
    shared: list[Processor] = [add_standard_keys, redact_secrets]
    if log_format == "console":
        native: list[Processor] = [structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())]
        foreign = native
    else:
        native = [render_exception, structlog.processors.JSONRenderer(serializer=_json_bytes)]
        foreign = [render_exception, structlog.processors.JSONRenderer(serializer=_json_text)]

    structlog.configure(
        processors=[*shared, *native],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_stdout_logger,
        cache_logger_on_first_use=True,
    )

    handler = StdoutHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *foreign],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, numeric_level))


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger whose lines carry ``logger=name``.

    The name travels as ``logger_name`` because structlog.get_logger() reserves
    the keyword ``logger``; add_standard_keys renames it.
    """
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger


class AccessLog:
    """The one line per HTTP request: ``event="request"``, ``logger="access"``.

    In JSON mode the line is built and written directly rather than through
    structlog's bound logger and processor chain: same keys, same redaction,
    about 4 µs less per request. Console mode, for people, uses structlog.
    """

    def __init__(self) -> None:
        self._json = _Active.json
        self._info = _Active.level <= logging.INFO
        self._error = _Active.level <= logging.ERROR
        self._fallback = get_logger("access")

    def write(
        self, method: str, path: str, route: str, status_code: int, duration_ms: float
    ) -> None:
        """Log one finished request; 5xx at ``error``, the rest at ``info``."""
        level = "error" if status_code >= 500 else "info"
        if not (self._error if level == "error" else self._info):
            return
        if not self._json:
            getattr(self._fallback, level)(
                "request",
                method=method,
                path=path,
                route=route,
                status_code=status_code,
                duration_ms=duration_ms,
            )
            return
        line: EventDict = {
            "event": "request",
            "method": method,
            "path": path,
            "route": route,
            "status_code": status_code,
            "duration_ms": duration_ms,
            "logger": "access",
        }
        add_standard_keys(None, level, line)
        redact_secrets(None, level, line)
        _write_line(orjson.dumps(line, default=repr))
