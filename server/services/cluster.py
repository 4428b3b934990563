"""The Dask cluster as an administrator sees it: its status, and how many workers it runs."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.errors import InvalidInputError
from server.exceptions import ClusterUnavailableError
from server.jobs import ClusterStatus
from server.services.permissions import Actor, require_admin
from server.services.runtime import Runtime

__all__ = ["MAX_WORKERS", "ClusterView", "cluster_view", "scale_cluster"]

MAX_WORKERS = 1024


@dataclass(frozen=True)
class ClusterView:
    status: ClusterStatus
    launched_here: bool
    """The server started this cluster (it may scale it)."""
    dispatching: bool
    """This server replica is the one dispatching jobs."""


async def cluster_view(runtime: Runtime, actor: Actor) -> ClusterView:
    require_admin(actor)
    dispatcher = runtime.dispatcher
    return ClusterView(
        status=await runtime.cluster.status(),
        launched_here=runtime.cluster.launched_here,
        dispatching=dispatcher is not None and dispatcher.leading,
    )


async def scale_cluster(runtime: Runtime, actor: Actor, workers: int) -> int:
    """Ask for ``workers`` workers and return how many were asked for; :class:`InvalidInputError` (field
    ``workers``) out of range or for a cluster this server did not start."""
    require_admin(actor)
    if not 0 <= workers <= MAX_WORKERS:
        raise InvalidInputError("workers", f"must be between 0 and {MAX_WORKERS}")
    try:
        return await runtime.cluster.scale(workers)
    except ClusterUnavailableError as error:
        raise InvalidInputError("workers", str(error)) from error
