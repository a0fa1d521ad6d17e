"""Waiting for something a process does in its own time, bounded in time and in tries.

Every test that waits (a service to be healthy, a job to finish, a span or a log line
to arrive, a Prometheus rule to evaluate) goes through ``wait_until``, so a wait
cannot spin forever and a timeout always says what it was waiting for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
# With interval=0, the count bound assumes at least this long per call.
_FASTEST = 0.001


def wait_until(
    predicate: Callable[[], T],
    *,
    message: str,
    timeout: float = 30.0,
    interval: float = 0.1,
    context: Callable[[], object] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    At most ``timeout`` seconds and ``timeout / interval + 1`` calls; then an
    AssertionError naming ``message``, the last value, and ``context()`` (a
    service's output, say) when given. An exception the predicate raises (an
    assertion about the process still running) propagates at once.
    ``interval=0`` is for a predicate that waits by itself (a Kafka consumer's
    poll): no sleep between calls, at most one call per millisecond of ``timeout``.
    """
    assert timeout > 0, timeout
    assert interval >= 0, interval
    deadline = time.monotonic() + timeout
    last: T | None = None
    for _ in range(math.ceil(timeout / max(interval, _FASTEST)) + 1):
        last = predicate()
        if last:
            return last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if interval:
            time.sleep(min(interval, remaining))
    detail = f"\n{context()}" if context is not None else ""
    raise AssertionError(
        f"timed out after {timeout}s waiting for {message}; last: {last!r}{detail}"
    )


def holds_for(check: Callable[[], object], *, seconds: float, interval: float = 0.5) -> int:
    """Call ``check`` (which asserts) every ``interval`` for ``seconds``; returns the calls.

    For what must stay true for a while (ready through several token lifetimes),
    not for what must become true (that is ``wait_until``).
    """
    assert seconds > 0, seconds
    assert interval > 0, interval
    deadline = time.monotonic() + seconds
    calls = 0
    for _ in range(math.ceil(seconds / interval) + 1):
        check()
        calls += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(interval, remaining))
    return calls
