"""Exports expire: a periodic sweep deletes the zips older than ``export_expiry_seconds``.

An export is a zip in ``exports/<random>/<name>.zip`` behind a signed URL that ends at the same age
(``exportProject`` signs it for no longer), so nobody can fetch an export the sweep deletes. Without it every
export stayed forever, and any viewer may make 30 a minute. Each sweep lists the store's ``exports/``
folder (the stored time is the blob's modification time, local or S3) and deletes what is older; what
stays is counted for ``/metrics``. Every replica sweeps; deletions are idempotent, so they need no
coordination. A sweep that fails (the store unreachable) is logged and tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from server.exceptions import StorageError
from server.storage.base import BlobInfo, BlobStore

__all__ = ["ExportSweeper", "SweepReport", "expired"]

logger = logging.getLogger(__name__)

EXPORTS = "exports/"


def expired(blobs: list[BlobInfo], now: dt.datetime, max_age: dt.timedelta) -> list[BlobInfo]:
    """The blobs stored longer than ``max_age`` ago."""
    return [blob for blob in blobs if now - blob.modified > max_age]


@dataclass(frozen=True)
class SweepReport:
    deleted: int
    kept: int
    kept_bytes: int


class ExportSweeper:
    """Deletes expired exports every ``interval`` seconds while started; keeps the count of those left."""

    def __init__(
        self,
        store: BlobStore,
        max_age: dt.timedelta,
        interval: float,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.max_age = max_age
        self.interval = interval
        self.clock = clock
        self.stored = 0
        """Exports in the store at the last sweep, plus those made since (for ``/metrics``)."""
        self.stored_bytes = 0
        self.sweeps = 0
        self._runner: asyncio.Task[None] | None = None

    def added(self, size: int) -> None:
        """An export was stored (counted now, not only at the next sweep)."""
        self.stored += 1
        self.stored_bytes += size

    async def sweep(self) -> SweepReport:
        blobs = await self.store.listing(EXPORTS)
        old = expired(blobs, self.clock(), self.max_age)
        for blob in old:
            await self.store.delete(blob.key)
        gone = {blob.key for blob in old}
        kept = [blob for blob in blobs if blob.key not in gone]
        self.stored, self.stored_bytes = len(kept), sum(blob.size for blob in kept)
        self.sweeps += 1
        if old:
            logger.info("deleted %d expired exports; %d stay", len(old), len(kept))
        return SweepReport(len(old), len(kept), self.stored_bytes)

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="spheroseg-export-sweep")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except StorageError as error:  # the store may be back next time; the exports wait till then
                logger.warning("could not sweep expired exports: %s", error)
            await asyncio.sleep(self.interval)
