"""Prometheus metrics: the names dashboards and alerts depend on, and their exposition.

With several worker processes (``WORKERS > 1``) every process writes its samples
to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them, whichever
worker answers the scrape. serving.py prepares that directory before this module
is imported; prometheus_client picks its storage once, at import time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# Read once, as prometheus_client does: its storage is chosen at import time too.
SAMPLES_DIR: Final = (
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    else None
)


class _ProcessId:
    """This process's id, read once and again after a fork.

    In multiprocess mode prometheus_client asks for the pid on every update to
    notice forks; that is a system call per sample. uvicorn spawns its workers
    rather than forking them, and a fork is still caught by the hook below.
    """

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self.refresh)

    def refresh(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


if SAMPLES_DIR is not None:
    _values.ValueClass = _values.MultiProcessValue(process_identifier=_ProcessId())

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status_code"),
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ("method", "route"),
)
JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs accepted by the API, by kind.", ("kind",))
JOBS_FINISHED = Counter(
    "jobs_finished_total",
    "Jobs that reached a final status (succeeded or failed), by kind and status.",
    ("kind", "status"),
)
JOBS_RETRIED = Counter(
    "jobs_retried_total", "Failed job attempts put back in the queue, by kind.", ("kind",)
)
JOBS_RUNNING = Gauge(
    "jobs_running",
    "Jobs executing now, summed over live worker processes.",
    multiprocess_mode="livesum",
)
# Read from the shared database by every process, so the processes agree: take the max.
JOBS_QUEUED = Gauge(
    "jobs_queued", "Jobs waiting in the queue (due or backing off).", multiprocess_mode="livemax"
)
JOBS_QUEUE_OLDEST_AGE = Gauge(
    "jobs_queue_oldest_age_seconds",
    "How long the oldest due job has been waiting; 0 when none is due.",
    multiprocess_mode="livemax",
)
JOBS_PURGED = Counter("jobs_purged_total", "Finished jobs deleted after JOB_RETENTION_SECONDS.")
JOB_STORE_SIZE = Gauge(
    "job_store_size_bytes", "Size of the job store (database files).", multiprocess_mode="livemax"
)
JOB_STORE_DISK_FREE = Gauge(
    "job_store_disk_free_ratio",
    "Free fraction of the disk holding the job store (SQLite only; absent otherwise).",
    multiprocess_mode="livemin",
)

_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_DB_FILE: Final = re.compile(r"^(?P<kind>[a-z]+(?:_[a-z]+)?)_(?P<pid>\d+)\.db$")
_LIVE_GAUGE_FILE: Final = "gauge_live*_{pid}.db"


def declare_job_kinds(kinds: list[str]) -> None:
    """Create every job series at zero, so rate() sees the first event after a start."""
    for kind in kinds:
        JOBS_SUBMITTED.labels(kind)
        JOBS_RETRIED.labels(kind)
        for status in ("succeeded", "failed"):
            JOBS_FINISHED.labels(kind, status)


class HttpMetrics:
    """Records one request; label children are cached so the hot path is two updates."""

    def __init__(self) -> None:
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status_code: int, seconds: float) -> None:
        key = (method, route, status_code)
        children = self._children.get(key)
        if children is None:
            # Clients choose the method; keep the label set bounded.
            label = method if method in _KNOWN_METHODS else "OTHER"
            children = (
                HTTP_REQUESTS.labels(label, route, str(status_code)),
                HTTP_REQUEST_DURATION.labels(label, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def live_worker_pids(directory: Path) -> list[int]:
    """Worker processes that write samples and still run.

    uvicorn has no hook for a worker's death (gunicorn's ``child_exit``), so the
    live gauges of dead workers are dropped here, at scrape time. Their counters
    stay: the sums must not go backwards.
    """
    pids: set[int] = set()
    for path in directory.glob("*.db"):
        match = _DB_FILE.match(path.name)
        if match:
            pids.add(int(match["pid"]))
    alive = []
    for pid in sorted(pids):
        if _pid_alive(pid):
            alive.append(pid)
        else:
            for live_gauges in directory.glob(_LIVE_GAUGE_FILE.format(pid=pid)):
                live_gauges.unlink(missing_ok=True)
    return alive


def _fixed(pid: int) -> Callable[[], int]:
    return lambda: pid


def worker_process_metrics(pids: list[int]) -> Iterator[Metric]:
    """``process_*`` metrics of each worker in ``pids``, labelled with its ``pid``.

    prometheus_client's process collector only sees the process that answers
    the scrape; in multiprocess mode that would be a different worker each time.
    """
    merged: dict[str, Metric] = {}
    for pid in pids:
        for family in ProcessCollector(pid=_fixed(pid), registry=None).collect():
            target = merged.setdefault(
                family.name, Metric(family.name, family.documentation, family.type)
            )
            for sample in family.samples:
                target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
    yield from merged.values()


class AllWorkersCollector(Collector):
    """What ``/metrics`` shows with several workers: their summed samples and processes."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._samples = MultiProcessCollector(None, path=str(directory))

    def collect(self) -> Iterator[Metric]:
        pids = live_worker_pids(self._directory)  # first: dead workers' gauges must not count
        yield from self._samples.collect()
        yield from worker_process_metrics(pids)


@cache
def exposition_registry() -> CollectorRegistry:
    """The registry ``/metrics`` renders: this process's, or the sum of all workers'."""
    if SAMPLES_DIR is None:
        return REGISTRY
    registry = CollectorRegistry()
    registry.register(AllWorkersCollector(SAMPLES_DIR))
    PlatformCollector(registry=registry)
    return registry


def render_metrics() -> bytes:
    """Prometheus text exposition of every metric."""
    return generate_latest(exposition_registry())
