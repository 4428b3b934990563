"""The cluster over GraphQL: ``clusterStatus`` for everyone logged in (its details for administrators),
``startCluster``, ``stopCluster`` and ``scaleCluster`` for administrators. Live changes come from the
``clusterEvents`` subscription (:mod:`server.api.live`). The work is :mod:`server.services.cluster`.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from cluster import WorkerStatus
from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.permissions import IsAdmin, IsAuthenticated
from server.api.results import InputError, input_error
from server.domain.errors import InvalidInputError
from server.services import cluster as service

__all__ = ["ClusterMutation", "ClusterQuery", "ClusterStateEnum"]

ClusterStateEnum = strawberry.enum(
    service.ClusterState,
    name="ClusterState",
    description="RUNNING; STOPPED (the server's own cluster, until a job or an administrator starts it); "
    "UNREACHABLE (the scheduler named in the settings does not answer).",
)


@strawberry.type(name="ClusterWorker", description="One worker of the cluster (for administrators).")
class ClusterWorkerType:
    name: str = strawberry.field(description="The worker's name (gpu-N for a GPU worker).")
    address: str = strawberry.field(description="Its address as the scheduler knows it.")
    status: str = strawberry.field(description="running, paused, closing, …, as Dask says.")
    threads: int = strawberry.field(description="Threads it runs tasks on.")
    devices: list[str] = strawberry.field(description="The devices its segmenter runs on (cpu, cuda:0, …).")
    processing: int = strawberry.field(description="Tasks it is running or holds to run.")
    images_per_second: float | None = strawberry.field(description="Its recent rate; null: no images yet.")
    memory_bytes: float | None = strawberry.field(description="Memory its process uses.")

    @classmethod
    def of(cls, worker: WorkerStatus) -> ClusterWorkerType:
        return cls(
            name=worker.name,
            address=worker.address,
            status=worker.status,
            threads=worker.nthreads,
            devices=worker.devices,
            processing=worker.processing,
            images_per_second=worker.images_per_second,
            memory_bytes=worker.memory_bytes,
        )


@strawberry.type(
    name="ClusterStatus",
    description="The cluster segmentation jobs run on. Asking starts nothing. Every logged-in user sees the "
    "summary; address, dashboard, workers, launchedHere and dispatching are for administrators.",
)
class ClusterStatusType:
    view: strawberry.Private[service.ClusterView]

    @strawberry.field(description="Whether it runs.")
    def state(self) -> ClusterStateEnum:  # type: ignore[valid-type]
        return self.view.summary.state

    @strawberry.field(description='Where it runs: "this server", or the scheduler\'s address.')
    def location(self) -> str:
        return self.view.summary.location

    @strawberry.field(description="Workers in it now.")
    def worker_count(self) -> int:
        return self.view.summary.workers

    @strawberry.field(description="GPUs among its workers.")
    def gpu_count(self) -> int:
        return self.view.summary.gpus

    @strawberry.field(description="Workers running a task now.")
    def busy_workers(self) -> int:
        return self.view.summary.busy_workers

    @strawberry.field(description="Tasks running now.")
    def processing(self) -> int:
        return self.view.summary.processing

    @strawberry.field(description="Tasks queued for a worker.")
    def waiting(self) -> int:
        return self.view.summary.waiting

    @strawberry.field(description="Images segmented per second, all workers together, lately.")
    def images_per_second(self) -> float:
        return self.view.summary.images_per_second

    @strawberry.field(description="Why it is unreachable; null otherwise.")
    def problem(self) -> str | None:
        return self.view.summary.problem

    @strawberry.field(permission_classes=[IsAdmin], description="The scheduler's address; null: not running.")
    def address(self) -> str | None:
        return self.view.details.address if self.view.details else None

    @strawberry.field(permission_classes=[IsAdmin], description="The Dask dashboard; null: none.")
    def dashboard(self) -> str | None:
        return self.view.details.dashboard if self.view.details else None

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="The server started this cluster (it may start, stop, scale it).",
    )
    def launched_here(self) -> bool:
        return self.view.launched_here

    @strawberry.field(
        permission_classes=[IsAdmin], description="This server replica is the one dispatching jobs."
    )
    def dispatching(self) -> bool:
        return self.view.dispatching

    @strawberry.field(
        permission_classes=[IsAdmin],
        directives=[ListSize(assumed_size=20)],
        extensions=[CountedList()],
        description="Every worker, by name.",
    )
    def workers(self) -> list[ClusterWorkerType]:
        details = self.view.details
        return [ClusterWorkerType.of(w) for w in details.workers] if details else []


@strawberry.type(description="The cluster was asked for this many workers.")
class ClusterScaled:
    workers: int = strawberry.field(description="Workers asked for.")


@strawberry.type(description="The server's own cluster started, or was running already.")
class ClusterStarted:
    started: bool = strawberry.field(description="False: it was running already (and was scaled if asked).")


@strawberry.type(description="The server's own cluster stopped, or was not running.")
class ClusterStopped:
    stopped: bool = strawberry.field(description="False: it was not running.")


ClusterScaleResult = Annotated[
    ClusterScaled | InputError,
    strawberry.union("ClusterScaleResult", description="The cluster scaled, or why it could not be."),
]
ClusterStartResult = Annotated[
    ClusterStarted | InputError,
    strawberry.union("ClusterStartResult", description="The cluster started, or why it could not be."),
]
ClusterStopResult = Annotated[
    ClusterStopped | InputError,
    strawberry.union("ClusterStopResult", description="The cluster stopped, or why it could not be."),
]


@strawberry.type
class ClusterQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        directives=[Cost(weight=20)],
        description="The cluster jobs run on; asking starts nothing. Follow it with clusterEvents.",
    )
    async def cluster_status(self, info: Info) -> ClusterStatusType:
        view = await service.cluster_view(info.context.services, info.context.require_actor())
        return ClusterStatusType(view=view)


@strawberry.type
class ClusterMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Start the server's own cluster (not a scheduler named in its settings).",
    )
    async def start_cluster(
        self,
        info: Info,
        workers: Annotated[
            int | None, strawberry.argument(description="Workers to run; null: SPHEROSEG_CLUSTER_WORKERS.")
        ] = None,
    ) -> ClusterStartResult:
        try:
            started = await service.start_cluster(
                info.context.services, info.context.require_actor(), workers
            )
        except InvalidInputError as error:
            return input_error(error)
        return ClusterStarted(started=started)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Stop the server's own cluster; a job still waiting starts it again.",
    )
    async def stop_cluster(self, info: Info) -> ClusterStopResult:
        try:
            stopped = await service.stop_cluster(info.context.services, info.context.require_actor())
        except InvalidInputError as error:
            return input_error(error)
        return ClusterStopped(stopped=stopped)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Run this many workers (only on a running cluster this server started itself).",
    )
    async def scale_cluster(
        self, info: Info, workers: Annotated[int, strawberry.argument(description="Workers to run.")]
    ) -> ClusterScaleResult:
        try:
            asked = await service.scale_cluster(info.context.services, info.context.require_actor(), workers)
        except InvalidInputError as error:
            return input_error(error)
        return ClusterScaled(workers=asked)
