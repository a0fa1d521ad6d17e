"""Shutdown as the service sees it: begun on SIGTERM, before the server stops.

uvicorn stops accepting connections on SIGTERM but only tells the application at
the end, in the lifespan's shutdown. The worker must stop claiming and readiness
must turn 503 at once, so the lifespan chains a handler in front of uvicorn's.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Lifecycle:
    """Whether shutdown has begun, and who to tell when it does."""

    def __init__(self) -> None:
        self.shutting_down = False
        self._listeners: list[Callable[[], None]] = []

    def on_shutdown(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` once, when shutdown begins."""
        self._listeners.append(listener)

    def begin_shutdown(self) -> None:
        """Mark shutdown as begun and tell the listeners (only the first call counts)."""
        if self.shutting_down:
            return
        self.shutting_down = True
        for listener in self._listeners:
            listener()

    @contextmanager
    def shutdown_on_signals(self) -> Iterator[None]:
        """While open, SIGTERM and SIGINT begin shutdown, then reach the previous handler."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(self.begin_shutdown)
            prior = previous[signal.Signals(signum)]
            if callable(prior):
                prior(signum, frame)
            elif prior == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        for sig in SHUTDOWN_SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, prior in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, prior)
