"""A rendered service booted as a real process, and what it printed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .polling import wait_until
from .project import answers_of, project_python, tool_env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """``python -m <package>`` of a rendered project, on a free loopback port.

    stdout and stderr are collected line by line while it runs; ``stop()``
    sends a signal to the process this object started and waits for it.
    """

    def __init__(self, project: Path, env: Mapping[str, str] | None = None) -> None:
        self.project = project
        self.package = answers_of(project)["package_name"]
        self.port = free_port()
        self.data_dir = project / "data"
        self.database_name = f"app-{uuid.uuid4().hex[:12]}.db"
        self.env = {
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            # A database file of its own, so no earlier test's jobs (schemathesis submits
            # hundreds of up to 60 s) run ahead of this one's; pass DATABASE_URL to share.
            "DATABASE_URL": f"sqlite+aiosqlite:///{self.data_dir / self.database_name}",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            "JOB_POLL_INTERVAL_SECONDS": "0.2",
            **(env or {}),
        }
        self.process: subprocess.Popen[str] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> Service:
        self.process = subprocess.Popen(
            [project_python(self.project), "-m", self.package],
            cwd=self.project,
            env=tool_env(self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for stream, sink in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            reader = threading.Thread(target=self._collect, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        if wait:
            self.wait_healthy(timeout)
        return self

    @staticmethod
    def _collect(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_healthy(self, timeout: float = 60.0) -> None:
        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                self._join_readers()
                raise AssertionError(f"service exited {self.process.returncode}\n{self.output()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(
            healthy, message="the service to answer /healthz", timeout=timeout, context=self.output
        )

    def send_signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill_group(self) -> None:
        """SIGKILL the process and the workers it spawned (its own session)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._join_readers()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError(
                f"service did not stop within {timeout}s\n{self.output()}"
            ) from None
        self._join_readers()
        return code

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)
        assert self.process is not None
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def output(self) -> str:
        return (
            "--- stdout ---\n"
            + "\n".join(self.stdout)
            + "\n--- stderr ---\n"
            + "\n".join(self.stderr)
        )

    def log_lines(self) -> list[dict[str, Any]]:
        """stdout parsed as JSON lines; fails on any line that is not a JSON object."""
        lines = []
        for line in list(self.stdout):
            parsed = json.loads(line)
            assert isinstance(parsed, dict), line
            lines.append(parsed)
        return lines

    def logs_where(self, **match: Any) -> Iterator[dict[str, Any]]:
        for line in self.log_lines():
            if all(line.get(key) == value for key, value in match.items()):
                yield line

    def wait_for_log(self, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first log line matching ``match``, once the reader thread has it.

        A response can reach the client before the line written after it (the
        access line) reaches this process: read right away, it may be missing.
        """
        found: dict[str, Any] = wait_until(
            lambda: next(self.logs_where(**match), None),
            message=f"a log line with {match}",
            timeout=timeout,
            interval=0.05,
            context=self.output,
        )
        return found

    def __enter__(self) -> Service:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(AssertionError):
                self.stop(timeout=30)
