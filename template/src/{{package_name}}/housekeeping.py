"""Housekeeping: finished jobs deleted after their retention, the store's size measured.

A busy service would otherwise fill its volume in days: every job stays in the
table once finished. Each process purges in small batches once a minute (several
replicas purging at once only share the work), and publishes the store's size
and free disk for the ``JobStoreDiskFilling`` alert.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from .domain.ports import JobRepository, StorageMeter
from .observability.logs import get_logger
from .observability.metrics import JOB_STORE_DISK_FREE, JOB_STORE_SIZE, JOBS_PURGED

PURGE_BATCH: Final = 500


@dataclass(frozen=True, slots=True)
class HousekeepingOptions:
    """How long finished jobs are kept, and how often housekeeping runs."""

    retention_seconds: float = 3 * 86_400
    interval_seconds: float = 60.0
    max_batches: int = 20


class Housekeeper:
    """Purges finished jobs past their retention and measures the store, until stopped."""

    def __init__(
        self, repository: JobRepository, meter: StorageMeter, options: HousekeepingOptions
    ) -> None:
        self._repository = repository
        self._meter = meter
        self._options = options
        self._stop = asyncio.Event()
        self._log = get_logger("housekeeping")

    def stop(self) -> None:
        """End ``run`` after the round in progress."""
        self._stop.set()

    async def run(self) -> None:
        """A round now, then one every ``interval_seconds`` until ``stop()``."""
        while not self._stop.is_set():
            try:
                await self.purge()
                await self.measure()
            except Exception:  # noqa: BLE001 - housekeeping retries at the next round
                self._log.exception("housekeeping failed; retrying at the next round")
            try:
                async with asyncio.timeout(self._options.interval_seconds):
                    await self._stop.wait()
            except TimeoutError:
                pass

    async def purge(self) -> int:
        """Delete finished jobs older than the retention, a batch at a time; how many."""
        before = datetime.now(UTC) - timedelta(seconds=self._options.retention_seconds)
        purged = 0
        for _ in range(self._options.max_batches):
            deleted = await self._repository.purge_finished(before, PURGE_BATCH)
            purged += deleted
            if deleted < PURGE_BATCH or self._stop.is_set():
                break
        if purged:
            JOBS_PURGED.inc(purged)
            self._log.info("finished jobs purged", purged=purged, older_than=before.isoformat())
        return purged

    async def measure(self) -> None:
        """Publish the store's size and its disk's free fraction."""
        usage = await self._meter.usage()
        if usage.size_bytes is not None:
            JOB_STORE_SIZE.set(usage.size_bytes)
        if usage.free_ratio is not None:
            JOB_STORE_DISK_FREE.set(usage.free_ratio)
