"""The cluster segmentation runs on, as the desktop's cluster panel shows and controls it.

:class:`ClusterModel` keeps the server's ``clusterStatus`` current: it reads it once, then follows the
``clusterEvents`` subscription on the workspace's one WebSocket. A worker joining, leaving or dying, and
the cluster starting or stopping, change the figures at once (the event carries the worker count) and
the status is read again for the rest. How busy the cluster is (busy workers, queued tasks, images per
second) has no event of its own, so while the cluster runs the status is also read every
``poll_seconds``. After a lost connection (:class:`~workbench.api.Resumed`) or an event that says some
were missed, the status is read again, so nothing stays stale.

Start, stop and scale are the server's ``startCluster``, ``stopCluster`` and ``scaleCluster``: only for
administrators (the server checks; :attr:`ClusterModel.control_refusal` says why the panel greys them
out) and only on a cluster the server started itself (not a scheduler named in its settings).

The model is Qt-free and observed through :class:`~workbench.tasks.Listeners`; its watch is an asyncio
task it holds (:meth:`ClusterModel.watch`) and cancels (:meth:`ClusterModel.close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workbench.api import ApiError, Resumed, ServerUnreachableError
from workbench.tasks import Listeners
from workbench.workspace import Workspace

__all__ = ["ClusterModel", "ClusterState", "ClusterView", "ClusterWorker"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 3.0
"""How often a running cluster's load (busy, queued, images/s) is read: it has no event."""


class ClusterState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"
    """Not read yet, or the server did not answer."""


@dataclass(frozen=True)
class ClusterWorker:
    name: str
    address: str
    status: str
    threads: int
    devices: tuple[str, ...]
    processing: int
    images_per_second: float | None


@dataclass(frozen=True)
class ClusterView:
    """The cluster as the signed-in user may see it (address, dashboard and workers: administrators)."""

    state: ClusterState = ClusterState.UNKNOWN
    location: str = ""
    """"this server" for the server's own cluster, else the scheduler it was told to use."""
    workers: int = 0
    gpus: int = 0
    busy_workers: int = 0
    processing: int = 0
    waiting: int = 0
    """Tasks queued for a worker."""
    images_per_second: float = 0.0
    problem: str | None = None
    """Why the cluster is unreachable, or why the server did not answer."""
    address: str | None = None
    dashboard: str | None = None
    launched_here: bool = False
    """The server started this cluster, so it may start, stop and scale it."""
    worker_list: tuple[ClusterWorker, ...] = field(default=())

    @classmethod
    def of(cls, status: Mapping[str, Any]) -> ClusterView:
        """From ``clusterStatus`` as ``ClusterStatus`` (administrators) or ``ClusterSummary`` reads it."""
        return cls(
            state=ClusterState(str(status["state"]).lower()),
            location=status["location"],
            workers=status["workerCount"],
            gpus=status["gpuCount"],
            busy_workers=status["busyWorkers"],
            processing=status["processing"],
            waiting=status["waiting"],
            images_per_second=float(status["imagesPerSecond"]),
            problem=status["problem"],
            address=status.get("address"),
            dashboard=status.get("dashboard"),
            launched_here=bool(status.get("launchedHere")),
            worker_list=tuple(
                ClusterWorker(
                    w["name"],
                    w["address"],
                    w["status"],
                    w["threads"],
                    tuple(w["devices"]),
                    w["processing"],
                    w["imagesPerSecond"],
                )
                for w in status.get("workers") or ()
            ),
        )


class ClusterModel:
    """The cluster of ``workspace``'s server, kept current while :meth:`watch` runs."""

    def __init__(self, workspace: Workspace, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.workspace = workspace
        self.poll_seconds = poll_seconds
        self.view = ClusterView()
        self.changed: Listeners[ClusterView] = Listeners()
        self._stale = asyncio.Event()
        self._watching: asyncio.Task[None] | None = None

    @property
    def control_refusal(self) -> str | None:
        """Why start, stop and scale are not offered (``None``: they are)."""
        if not self.workspace.is_admin:
            return "Only a lab administrator may start, stop or scale the cluster."
        if self.view.state is ClusterState.UNKNOWN:
            return "The cluster's status is not known yet."
        if not self.view.launched_here:
            return (
                f"The server uses the cluster at {self.view.address or self.view.location}, which it did "
                "not start: scale it where it runs."
            )
        return None

    def watch(self) -> None:
        """Follow the cluster until :meth:`close` (the task is held here, so it is never lost)."""
        if self._watching is None or self._watching.done():
            self._watching = asyncio.ensure_future(self._follow())

    def close(self) -> None:
        """Stop following (a view going away calls it; the task ends on the loop's next turn)."""
        if self._watching is not None:
            self._watching.cancel()
            self._watching = None

    async def refresh(self) -> ClusterView:
        """Read the status now; a server that does not answer leaves the figures and says why."""
        try:
            query = "ClusterStatus" if self.workspace.is_admin else "ClusterSummary"
            answer = await self.workspace.client.call(query)
        except ServerUnreachableError as lost:
            self._set(dataclasses.replace(self.view, state=ClusterState.UNKNOWN, problem=str(lost)))
        else:
            self._set(ClusterView.of(answer["clusterStatus"]))
        return self.view

    async def start(self, workers: int | None = None) -> bool:
        """Start the server's own cluster; ``False`` when it ran already. :class:`ApiError` when refused."""
        answer = _accepted(
            (await self.workspace.client.call("StartCluster", workers=workers))["startCluster"]
        )
        await self.refresh()
        return bool(answer["started"])

    async def stop(self) -> bool:
        """Stop the server's own cluster; ``False`` when it was not running."""
        answer = _accepted((await self.workspace.client.call("StopCluster"))["stopCluster"])
        await self.refresh()
        return bool(answer["stopped"])

    async def scale(self, workers: int) -> int:
        """Ask for ``workers`` workers (they join over the next seconds, each one an event)."""
        answer = _accepted(
            (await self.workspace.client.call("ScaleCluster", workers=workers))["scaleCluster"]
        )
        self._stale.set()
        return int(answer["workers"])

    async def _follow(self) -> None:
        self._stale.set()  # the first reading
        reader = asyncio.ensure_future(self._keep_read())
        try:
            async for item in self.workspace.live.subscribe("ClusterEvents"):
                if not isinstance(item, Resumed):
                    self._apply(item["clusterEvents"])
                self._stale.set()
        except ApiError as refused:  # the session ended: the window's banner says so
            logger.info("cluster events ended: %s", refused)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _keep_read(self) -> None:
        while True:
            running = self.view.state is ClusterState.RUNNING
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), self.poll_seconds if running else None)
            self._stale.clear()
            try:
                await self.refresh()
            except ApiError as refused:
                logger.warning("reading the cluster's status failed: %s", refused)
                self._set(dataclasses.replace(self.view, problem=str(refused)))

    def _apply(self, event: Mapping[str, Any]) -> None:
        """What an event says for sure, shown before the status is read again."""
        kind = event["kind"]
        state = self.view.state
        if kind == "cluster_stopped":
            state = ClusterState.STOPPED
        elif kind in ("cluster_started", "worker_joined"):
            state = ClusterState.RUNNING
        self._set(dataclasses.replace(self.view, state=state, workers=int(event["workers"])))

    def _set(self, view: ClusterView) -> None:
        if view != self.view:
            self.view = view
            self.changed.emit(view)


def _accepted(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    if answer["__typename"] == "InputError":
        raise ApiError(answer["message"], "BAD_USER_INPUT", answer)
    return answer
