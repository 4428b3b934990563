"""The Dask cluster the server's jobs run on: a scheduler named in settings, or a local one it starts.

The local cluster starts on first use (a server that never segments never pays for it) and lives until
the server stops; only a cluster the server launched itself can be scaled from the API, because scaling
someone else's scheduler would take workers from under other users.
"""

from __future__ import annotations

import asyncio
import logging

from distributed import Client

from cluster import (
    ClusterSpec,
    ClusterStatus,
    Deployment,
    close_client,
    cluster_status,
    connect_client,
    launch_cluster,
    resolve_target,
)
from server.exceptions import ClusterUnavailableError
from server.settings import Settings

__all__ = ["ClusterHandle", "ClusterStatus"]

log = logging.getLogger(__name__)


class ClusterHandle:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._deployment: Deployment | None = None
        self.address: str | None = None

    @property
    def launched_here(self) -> bool:
        return self._settings.scheduler is None

    @property
    def started(self) -> bool:
        return self._client is not None

    async def client(self) -> Client:
        """A client of the cluster, starting or connecting on first use."""
        async with self._lock:
            if self._client is not None:
                return self._client
            try:
                if self._settings.scheduler:
                    target = resolve_target(self._settings.scheduler, None)
                    self._client = await target.client(timeout=self._settings.cluster_connect_timeout)
                    self.address = target.address
                else:
                    spec = ClusterSpec(workers=self._settings.cluster_workers)
                    self._deployment = await launch_cluster(spec)
                    self.address = self._deployment.scheduler_address
                    self._client = await connect_client(self.address)
            except Exception as error:  # any launch or connection failure: say where it failed
                raise ClusterUnavailableError(
                    f"cannot reach the Dask cluster ({self._settings.scheduler or 'local'}): {error}"
                ) from error
            log.info("jobs run on the Dask cluster at %s", self.address)
            return self._client

    async def status(self) -> ClusterStatus:
        client = await self.client()
        assert self.address is not None
        return await cluster_status(client, self.address)

    async def scale(self, workers: int) -> int:
        """Ask the local cluster for ``workers`` workers; the number asked for comes back."""
        if not self.launched_here:
            raise ClusterUnavailableError(
                "this server uses a cluster it did not start; scale it where it runs"
            )
        await self.client()
        assert self._deployment is not None
        return await self._deployment.scale(workers)

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            deployment, self._deployment = self._deployment, None
        if client is not None:
            await close_client(client)
        if deployment is not None:
            await deployment.close()
