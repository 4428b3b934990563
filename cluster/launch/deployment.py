"""A running cluster as the rest of the code sees it: where its scheduler is, and how to scale or stop it.

Every launcher returns a :class:`Deployment`. When we started the cluster it holds the Dask cluster object
(``cluster``), which scales by starting and gracefully retiring workers; for an existing scheduler there is
none, and the deployment can only retire workers (scale down), never start them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cluster.exceptions import ClusterSpecError
from cluster.launch.spec import ClusterSpec, TlsFiles

if TYPE_CHECKING:
    from distributed import Client
    from distributed.security import Security

__all__ = ["Deployment", "Launcher", "close_client", "connect", "retire_gracefully", "rpc", "security_for"]

log = logging.getLogger(__name__)

Launcher = Callable[[ClusterSpec], Awaitable["Deployment"]]
"""A backend's start function: a spec in, a running cluster out."""


def security_for(tls: TlsFiles | None) -> Security | None:
    """Dask's TLS settings for a client of the scheduler; ``None`` for plain TCP."""
    if tls is None:
        return None
    from distributed.security import Security

    return Security(  # type: ignore[no-untyped-call]
        tls_ca_file=tls.ca_file,
        tls_client_cert=tls.cert,
        tls_client_key=tls.key,
        require_encryption=True,
    )


async def connect(address: str, security: Security | None = None, timeout: float = 10.0) -> Client:
    """An asynchronous client of the scheduler at ``address``."""
    from distributed import Client

    client: Client = await Client(  # type: ignore[no-untyped-call]
        address, security=security, asynchronous=True, timeout=timeout
    )
    return client


def rpc(client: Client) -> Any:
    """The scheduler's RPC handle of ``client`` (its handlers are called by name: ``identity()``, …)."""
    return client.scheduler


async def close_client(client: Client) -> None:
    await client.close()  # type: ignore[no-untyped-call]


@dataclass
class Deployment:
    """A running cluster: its scheduler's address and, when we launched it, the Dask cluster object."""

    spec: ClusterSpec
    scheduler_address: str
    dashboard_link: str | None = None
    cluster: Any = None
    """The Dask ``SpecCluster`` we launched (``None`` for an existing scheduler); partly typed upstream."""
    security: Security | None = None
    max_workers: int | None = None
    """The most workers this backend can run (a local GPU cluster: one per GPU); ``None``: no limit."""
    replace_retired: bool = False
    """Workers retire at the end of a lifetime (SLURM wall time): keep the count by adapting to it."""

    @classmethod
    def started(
        cls, spec: ClusterSpec, cluster: Any, max_workers: int | None = None, replace_retired: bool = False
    ) -> Deployment:
        """The deployment of ``cluster``, just started for ``spec``; adapting if the spec gives a range.

        Without a range, each backend brings up its fixed count in its own way (the local one waits for
        its workers, SLURM adapts to the count so that retired workers are replaced).
        """
        deployment = cls(
            spec=spec,
            scheduler_address=cluster.scheduler_address,
            dashboard_link=cluster.dashboard_link,
            cluster=cluster,
            max_workers=max_workers,
            replace_retired=replace_retired,
        )
        if spec.minimum is not None and spec.maximum is not None:
            deployment.adapt(spec.minimum, spec.maximum)
        return deployment

    async def scale(self, n: int, grace: float = 120.0) -> int:
        """Ask for ``n`` workers and return the number asked for (capped at :attr:`max_workers`).

        Scaling down drains the workers it picks first (they take no new tasks and finish what they run,
        for up to ``grace`` seconds), then retires them; anything still running moves to another worker.
        """
        if n < 0:
            raise ClusterSpecError(f"cannot scale to {n} workers")
        if self.max_workers is not None and n > self.max_workers:
            log.warning("asked for %d workers but only %d fit", n, self.max_workers)
            n = self.max_workers
        if self.cluster is not None and self.replace_retired:
            self.cluster.adapt(minimum=n, maximum=n)
            return n
        client = await connect(self.scheduler_address, self.security)
        try:
            running = len((await rpc(client).identity())["workers"])
            if n < running:
                names = await retire_gracefully(client, running - n, grace)
                if self.cluster is not None:
                    await self.cluster.scale_down(names)
            elif n > running and self.cluster is None:
                raise ClusterSpecError(
                    f"the scheduler at {self.scheduler_address} has {running} workers; workers of an "
                    "existing scheduler are started by whoever runs it, so this can only scale down"
                )
        finally:
            await close_client(client)
        if self.cluster is not None:
            await _maybe_await(self.cluster.scale(n))
        return n

    def adapt(self, minimum: int, maximum: int) -> None:
        """Let the cluster scale itself between ``minimum`` and ``maximum`` workers."""
        if self.cluster is None:
            raise ClusterSpecError("an existing scheduler's workers are not ours to start: cannot adapt")
        if self.max_workers is not None:
            maximum = min(maximum, self.max_workers)
        self.cluster.adapt(minimum=minimum, maximum=maximum)

    async def close(self) -> None:
        if self.cluster is not None:
            await _maybe_await(self.cluster.close())


async def retire_gracefully(client: Client, count: int, grace: float = 120.0) -> list[Any]:
    """Retire ``count`` workers (the idlest) without losing work; return their names.

    They first stop taking tasks and hand over their results while finishing the tasks they are running
    (up to ``grace`` seconds); then they are removed and closed, nanny included, so nothing restarts them.
    Tasks that were queued on them but not started move to the other workers.
    """
    scheduler = rpc(client)
    names: list[Any] = await scheduler.workers_to_close(n=count, attribute="name")
    if not names:
        return []
    wanted = {str(name) for name in names}
    workers = (await scheduler.identity())["workers"]
    addresses = [address for address, info in workers.items() if str(info.get("name")) in wanted]
    await scheduler.retire_workers(names=names, close_workers=False, remove=False)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        executing = await client.run(executing_count, workers=addresses, on_error="return")
        if not any(isinstance(n, int) and n > 0 for n in executing.values()):
            break
        await asyncio.sleep(0.05)
    await scheduler.retire_workers(names=names, close_workers=True, remove=True)
    return names


def executing_count(dask_worker: Any) -> int:
    """Tasks a worker is running right now (through ``Client.run``)."""
    return len(dask_worker.state.executing)


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value
