"""Shutdown as the service sees it: begun on SIGTERM, before the server stops.

uvicorn stops accepting connections on SIGTERM but only tells the application at
the end, in the lifespan's shutdown. The worker must stop claiming and readiness
must turn 503 at once, so the lifespan chains a handler in front of uvicorn's.
With SHUTDOWN_DELAY_SECONDS the handler passes the signal on to uvicorn only
after that delay: requests keep being served while readiness says 503, so load
balancers that poll readiness stop sending before the listener closes.
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

    def __init__(self, delay_seconds: float = 0.0) -> None:
        """``delay_seconds``: how long readiness is 503 before the server hears the signal."""
        self.shutting_down = False
        self.delay_seconds = delay_seconds
        self._signalled = False
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

        def forward(signum: int, frame: FrameType | None) -> None:
            prior = previous[signal.Signals(signum)]
            if callable(prior):
                prior(signum, frame)
            elif prior == signal.SIG_DFL:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        def handler(signum: int, frame: FrameType | None) -> None:
            first = not self._signalled
            self._signalled = True
            loop.call_soon_threadsafe(self.begin_shutdown)
            if first and self.delay_seconds > 0:
                # Readiness turns 503 now; the listener closes once load balancers
                # have had the delay to notice. A second signal forwards at once.
                loop.call_soon_threadsafe(
                    loop.call_later, self.delay_seconds, forward, signum, frame
                )
            else:
                forward(signum, frame)

        for sig in SHUTDOWN_SIGNALS:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, prior in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, prior)
