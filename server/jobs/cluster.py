"""The Dask cluster the server's jobs run on: a scheduler named in settings, or a local one it starts.

The local cluster starts when a job first needs it (a server that never segments never pays for it) or
when an administrator starts it, and lives until it is stopped or the server stops. Only a cluster the
server launched itself can be started, stopped and scaled from the API, because scaling someone else's
scheduler would take workers from under other users. Asking for the status never starts anything: a local
cluster not running is reported as stopped (a named scheduler is connected to, which starts nothing).

While the server holds a client, a :class:`cluster.WorkerWatch` follows the scheduler's own events and
the handle announces workers joining, leaving and dying, and the cluster starting and stopping, as
events about no project (``announce``; the composition root hands them to this replica's subscribers).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from distributed import Client

from cluster import (
    ClusterSpec,
    ClusterStatus,
    Deployment,
    WorkerChange,
    WorkerChangeKind,
    WorkerWatch,
    close_client,
    cluster_status,
    connect_client,
    launch_cluster,
    resolve_target,
)
from server.events import NO_PROJECT, Event, EventKind
from server.exceptions import ClusterUnavailableError
from server.settings import Settings

__all__ = ["ClusterHandle", "ClusterStatus"]

log = logging.getLogger(__name__)

_CHANGE_KINDS = {
    WorkerChangeKind.JOINED: EventKind.WORKER_JOINED,
    WorkerChangeKind.LEFT: EventKind.WORKER_LEFT,
    WorkerChangeKind.DIED: EventKind.WORKER_DIED,
}
NOT_OURS = "this server uses a cluster it did not start; start, stop and scale it where it runs"


class ClusterHandle:
    def __init__(self, settings: Settings, announce: Callable[[Event], None] | None = None) -> None:
        self._settings = settings
        self._announce = announce
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._deployment: Deployment | None = None
        self._watch = WorkerWatch(self._on_change)
        self.address: str | None = None

    @property
    def launched_here(self) -> bool:
        return self._settings.scheduler is None

    @property
    def started(self) -> bool:
        return self._client is not None

    @property
    def location(self) -> str:
        """Where the cluster is, for anyone: "this server" for its own, else the scheduler's address."""
        return "this server" if self.launched_here else str(self._settings.scheduler)

    async def client(self) -> Client:
        """A client of the cluster, starting or connecting on first use (a job needs it)."""
        async with self._lock:
            return await self._open(self._settings.cluster_workers)

    async def start(self, workers: int | None) -> bool:
        """Start the local cluster with ``workers`` workers (``None``: the settings' count); ``False``
        when it was running already (then it is scaled to ``workers`` if given)."""
        self._require_ours()
        async with self._lock:
            if self._client is None:
                await self._open(self._settings.cluster_workers if workers is None else workers)
                return True
        if workers is not None:
            await self.scale(workers)
        return False

    async def stop(self) -> bool:
        """Stop the local cluster (its workers finish nothing more); ``False`` when it was not running."""
        self._require_ours()
        was_running = await self.close()
        if was_running:
            self._tell(EventKind.CLUSTER_STOPPED, {"workers": 0})
        return was_running

    async def status(self) -> ClusterStatus | None:
        """What the cluster is doing; ``None`` for a local cluster that is not running (never starts it)."""
        if self.launched_here and self._client is None:
            return None
        client = await self.client()  # a named scheduler: connect to it, which starts nothing
        assert self.address is not None
        try:
            return await cluster_status(client, self.address)
        except OSError as error:  # the scheduler went away since (distributed's CommClosedError, timeouts)
            if not self.launched_here:
                await self.close()  # a client of a gone scheduler never recovers: connect afresh next time
            raise ClusterUnavailableError(
                f"the Dask scheduler at {self.address} stopped answering: start or deploy it again, or use "
                f"another ({error})"
            ) from error

    async def scale(self, workers: int) -> int:
        """Ask the running local cluster for ``workers`` workers; the number asked for comes back."""
        self._require_ours()
        if self._deployment is None:
            raise ClusterUnavailableError("the cluster is not running; start it first")
        return await self._deployment.scale(workers)

    async def close(self) -> bool:
        """Let go of the cluster (a local one stops); whether there was one."""
        async with self._lock:
            client, self._client = self._client, None
            deployment, self._deployment = self._deployment, None
            self._watch.stop()
        if client is not None:
            await close_client(client)
        if deployment is not None:
            await deployment.close()
        return client is not None

    async def _open(self, workers: int | None) -> Client:
        """Under the lock: the client, starting or connecting if there is none."""
        if self._client is not None:
            return self._client
        try:
            if self._settings.scheduler:
                target = resolve_target(self._settings.scheduler, None)
                client = await target.client(timeout=self._settings.cluster_connect_timeout)
                self.address = target.address
            else:
                self._deployment = await launch_cluster(ClusterSpec(workers=workers))
                self.address = self._deployment.scheduler_address
                client = await connect_client(self.address)
            await self._watch.start(client)
        except Exception as error:  # any launch or connection failure: say where it failed
            deployment, self._deployment = self._deployment, None
            if deployment is not None:
                await deployment.close()
            raise ClusterUnavailableError(
                f"cannot reach the Dask cluster ({self._settings.scheduler or 'local'}): {error}"
            ) from error
        self._client = client
        log.info("jobs run on the Dask cluster at %s", self.address)
        self._tell(EventKind.CLUSTER_STARTED, {"workers": len(self._watch.workers)})
        return client

    def _require_ours(self) -> None:
        if not self.launched_here:
            raise ClusterUnavailableError(NOT_OURS)

    def _on_change(self, change: WorkerChange) -> None:
        data = {"worker": change.address, "name": change.name, "workers": change.workers}
        self._tell(_CHANGE_KINDS[change.kind], data, at=change.at)

    def _tell(self, kind: EventKind, data: dict[str, Any], at: float | None = None) -> None:
        if self._announce is not None:
            self._announce(Event(kind, NO_PROJECT, data=data, at=time.time() if at is None else at))
