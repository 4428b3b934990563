"""The Dask cluster: a summary for everyone logged in, the details and the controls for administrators.

Asking never starts anything (a status panel may ask as often as it likes): a local cluster that is not
running is reported as stopped. Members see how big and how busy the cluster is and where it runs;
administrators also see each worker, the scheduler's address and dashboard, and start, stop and scale
the cluster the server started itself. Workers joining, leaving and dying arrive as events
(:func:`server.services.events.cluster_events`), so nobody needs to poll.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from server.domain.errors import InvalidInputError
from server.exceptions import ClusterUnavailableError
from server.jobs import ClusterStatus
from server.services.permissions import Actor, require_admin
from server.services.runtime import Runtime

__all__ = [
    "MAX_WORKERS",
    "ClusterState",
    "ClusterSummary",
    "ClusterView",
    "cluster_view",
    "scale_cluster",
    "start_cluster",
    "stop_cluster",
]

MAX_WORKERS = 1024
GPU_RESOURCE = "GPU"


class ClusterState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    """The server's own cluster is not running (a job, or an administrator, starts it)."""
    UNREACHABLE = "unreachable"
    """The scheduler named in the settings does not answer."""


@dataclass(frozen=True)
class ClusterSummary:
    """What anyone logged in may know of the cluster."""

    state: ClusterState
    location: str
    """"this server" for the server's own cluster, else the scheduler's address."""
    workers: int = 0
    gpus: int = 0
    busy_workers: int = 0
    """Workers running a task now."""
    processing: int = 0
    """Tasks running now."""
    waiting: int = 0
    """Tasks queued for a worker."""
    images_per_second: float = 0.0
    problem: str | None = None
    """Why it is unreachable."""

    @classmethod
    def of(cls, status: ClusterStatus, location: str) -> ClusterSummary:
        return cls(
            ClusterState.RUNNING,
            location,
            workers=len(status.workers),
            gpus=int(sum(w.resources.get(GPU_RESOURCE, 0) for w in status.workers)),
            busy_workers=sum(1 for w in status.workers if w.processing),
            processing=status.processing,
            waiting=status.waiting,
            images_per_second=status.images_per_second,
        )


@dataclass(frozen=True)
class ClusterView:
    summary: ClusterSummary
    details: ClusterStatus | None
    """Every worker, the scheduler's address and dashboard: for administrators only (``None`` for others,
    and while the cluster is not running)."""
    launched_here: bool
    """The server started this cluster (it may start, stop and scale it)."""
    dispatching: bool
    """This server replica is the one dispatching jobs."""


async def cluster_view(runtime: Runtime, actor: Actor) -> ClusterView:
    """The cluster as ``actor`` may see it; starts nothing."""
    handle = runtime.cluster
    try:
        status = await handle.status()
    except ClusterUnavailableError as error:
        summary = ClusterSummary(ClusterState.UNREACHABLE, handle.location, problem=str(error))
        status = None
    else:
        stopped = ClusterSummary(ClusterState.STOPPED, handle.location)
        summary = stopped if status is None else ClusterSummary.of(status, handle.location)
    dispatcher = runtime.dispatcher
    return ClusterView(
        summary=summary,
        details=status if actor.is_admin else None,
        launched_here=handle.launched_here,
        dispatching=dispatcher is not None and dispatcher.leading,
    )


async def start_cluster(runtime: Runtime, actor: Actor, workers: int | None) -> bool:
    """Start the server's own cluster with ``workers`` workers (``None``: its configured count); ``False``
    when it was running (then it is scaled to ``workers`` if given). :class:`InvalidInputError` (field
    ``workers``) out of range, for a cluster this server did not start, or one that cannot start."""
    require_admin(actor)
    if workers is not None:
        _check_count(workers)
    try:
        return await runtime.cluster.start(workers)
    except ClusterUnavailableError as error:
        raise InvalidInputError("workers", str(error)) from error


async def stop_cluster(runtime: Runtime, actor: Actor) -> bool:
    """Stop the server's own cluster; ``False`` when it was not running. A job still waiting starts it
    again when its next images are sent. :class:`InvalidInputError` for a cluster this server did not
    start."""
    require_admin(actor)
    try:
        return await runtime.cluster.stop()
    except ClusterUnavailableError as error:
        raise InvalidInputError("cluster", str(error)) from error


async def scale_cluster(runtime: Runtime, actor: Actor, workers: int) -> int:
    """Ask for ``workers`` workers and return how many were asked for; :class:`InvalidInputError` (field
    ``workers``) out of range, for a cluster this server did not start, or one that is not running."""
    require_admin(actor)
    _check_count(workers)
    try:
        return await runtime.cluster.scale(workers)
    except ClusterUnavailableError as error:
        raise InvalidInputError("workers", str(error)) from error


def _check_count(workers: int) -> None:
    if not 0 <= workers <= MAX_WORKERS:
        raise InvalidInputError("workers", f"must be between 0 and {MAX_WORKERS}")
