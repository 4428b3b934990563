"""Segmentation jobs over GraphQL: ``segmentImages``, ``cancelJob``, ``job``, and the cluster for admins.

Jobs are written to the database in one transaction and announced on the event bus; the dispatcher (one
per deployment, :mod:`server.jobs`) takes it from there. Live progress is in :mod:`server.api.live`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from cluster.exceptions import SegmentationError
from cluster.methods import DEFAULT_METHOD, JOB_PARAMETERS, METHODS, checked_parameters
from server.api.announce import announce
from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.images import ImageFilterInput
from server.api.permissions import CanEditProject, CanViewProject, IsAdmin
from server.api.results import InputError, RateLimited, rate_limited
from server.db import jobs
from server.db.images import image_ids_of_project, images_by_ids
from server.db.models import Job
from server.domain.jobs import JobCounts, JobStatus
from server.events import Event, EventKind
from server.exceptions import ClusterUnavailableError
from server.jobs.progress import images_per_second, progress_event

__all__ = ["ClusterMutation", "ClusterQuery", "JobMutation", "JobQuery", "JobStatusEnum", "JobType"]

JobStatusEnum = strawberry.enum(JobStatus, name="JobStatus")


@strawberry.type(name="TaskFailure", description="An image of a job that could not be segmented, and why.")
class TaskFailureType:
    image_id: int
    image_name: str
    reason: str


@strawberry.type(name="Job")
class JobType:
    id: int
    project_id: int
    method: str
    parameters: JSON
    status: JobStatus
    total: int
    done: int = strawberry.field(description="Images segmented and stored.")
    failed: int
    cancelled: int
    last_image_id: int | None
    images_per_second: float
    problem: str | None = strawberry.field(
        description="Why the job is not moving (e.g. the cluster cannot be reached); null when all is well."
    )
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_by_id: strawberry.Private[int | None]

    @classmethod
    def of(cls, job: Job) -> JobType:
        return cls(
            id=job.id,
            project_id=job.project_id,
            method=job.method,
            parameters=job.parameters,  # type: ignore[arg-type]
            status=JobStatus(job.status),
            total=job.total,
            done=job.done,
            failed=job.failed,
            cancelled=job.cancelled,
            last_image_id=job.last_image_id,
            images_per_second=images_per_second(job),
            problem=job.problem,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            created_by_id=job.created_by,
        )

    @strawberry.field(description="Share of the images that have ended (stored, failed or cancelled), 0-100.")
    def percentage(self) -> float:
        return JobCounts(self.total, self.done, self.failed, self.cancelled).percentage

    @strawberry.field(description="Who started the job.")
    async def created_by(self, info: Info) -> str:
        if self.created_by_id is None:
            return ""
        user = await info.context.loaders.user.load(self.created_by_id)
        return user.username if user is not None else ""

    @strawberry.field(
        directives=[ListSize(assumed_size=50)],
        extensions=[CountedList()],
        description="The images that failed, and why.",
    )
    async def failures(self, info: Info) -> list[TaskFailureType]:
        found = await info.context.loaders.job_failures.load(self.id)
        return [TaskFailureType(image_id=i, image_name=name, reason=reason) for i, name, reason in found]


@strawberry.input(description="The images to segment: `imageIds`, or a project's images matching `filter`.")
class SegmentImagesInput:
    project_id: int | None = None
    image_ids: list[int] | None = None
    filter: ImageFilterInput | None = None
    method: str | None = strawberry.field(default=None, description="classical or resunet (default: best).")
    parameters: JSON | None = strawberry.field(
        default=None,
        description='Tuning options of the method, e.g. {"threshold": 0.6} for resunet; an unknown or '
        "disallowed name, a wrong type or a value out of range is an InputError naming it.",
    )


@strawberry.type(description="The job was created; images already in another unfinished job were left out.")
class JobStarted:
    job: JobType
    skipped_image_ids: list[int]


SegmentImagesResult = Annotated[
    JobStarted | InputError | RateLimited, strawberry.union("SegmentImagesResult")
]
CancelJobResult = Annotated[JobType | InputError, strawberry.union("CancelJobResult")]


@strawberry.type
class JobQuery:
    @strawberry.field(permission_classes=[CanViewProject])
    async def job(self, info: Info, id: int) -> JobType:
        job = await info.context.loaders.job.load(id)
        assert job is not None  # the permission refused a missing job
        return JobType.of(job)


@strawberry.type
class JobMutation:
    @strawberry.mutation(
        permission_classes=[CanEditProject],
        directives=[Cost(weight=50)],
        description="Segment images on the cluster; watch it with the jobProgress subscription.",
    )
    async def segment_images(self, info: Info, input: SegmentImagesInput) -> SegmentImagesResult:
        context, settings = info.context, info.context.services.settings
        user = context.require_user()
        method = input.method or DEFAULT_METHOD
        if method not in METHODS:
            return InputError(
                field="method", message=f"{method!r} is not one of: {', '.join(sorted(METHODS))}"
            )
        given: object = {} if input.parameters is None else input.parameters
        try:
            # Checked here, not image by image on the workers; and only the tuning options, never a
            # worker's files or hardware (JOB_PARAMETERS says which).
            parameters = checked_parameters(method, given, allowed=JOB_PARAMETERS[method])
        except SegmentationError as error:
            return InputError(field="parameters", message=str(error))
        wait = context.services.expensive.hit(f"jobs:{user.id}")
        if wait:
            return rate_limited("jobs", wait)
        async with context.services.db.begin() as db:
            if input.image_ids is not None:
                rows = await images_by_ids(db, input.image_ids)
                projects = {row.project_id for row in rows.values()}
                if len(projects) != 1 or (input.project_id is not None and projects != {input.project_id}):
                    return InputError(field="imageIds", message="give images of one project")
                project_id, ids = projects.pop(), sorted(rows)
            elif input.project_id is not None:
                where = (input.filter or ImageFilterInput()).to_domain()
                project_id = input.project_id
                ids = await image_ids_of_project(db, project_id, where, settings.max_images_per_job + 1)
            else:
                return InputError(field="input", message="give imageIds, or projectId (and a filter)")
            if len(ids) > settings.max_images_per_job:
                return InputError(
                    field="input",
                    message=f"at most {settings.max_images_per_job} images per job; filter more",
                )
            job, skipped = await jobs.create_job(db, project_id, user.id, method, parameters, ids)
        queued = tuple(sorted(set(ids) - set(skipped)))
        await announce(
            context,
            progress_event(job, EventKind.JOB_CREATED, actor=user.username),
            Event(EventKind.IMAGE_STATUS, project_id, job.id, queued, user.username, {"status": "queued"}),
        )
        return JobStarted(job=JobType.of(job), skipped_image_ids=skipped)

    @strawberry.mutation(
        permission_classes=[CanEditProject],
        description="Stop a job: images not yet segmented go back to how they were; stored results stay.",
    )
    async def cancel_job(self, info: Info, id: int) -> CancelJobResult:
        context = info.context
        user = context.require_user()
        async with context.services.db.begin() as db:
            given_back = await jobs.cancel_job(db, id)
            job = (await jobs.jobs_by_ids(db, [id]))[id]
        if job.status != JobStatus.CANCELLED.value:
            return InputError(field="id", message=f"job {id} has already finished ({job.status})")
        await announce(
            context,
            progress_event(job, EventKind.JOB_CANCELLED, actor=user.username),
            progress_event(job, EventKind.JOB_FINISHED, actor=user.username),
            Event(EventKind.IMAGE_STATUS, job.project_id, job.id, tuple(given_back), user.username),
        )
        dispatcher = context.services.dispatcher
        if dispatcher is not None:
            await dispatcher.cancel(id)
        return JobType.of(job)


@strawberry.type(name="ClusterWorker")
class ClusterWorkerType:
    name: str
    address: str
    status: str
    threads: int
    devices: list[str]
    processing: int
    images_per_second: float | None
    memory_bytes: float | None


@strawberry.type(name="ClusterStatus")
class ClusterStatusType:
    address: str
    dashboard: str | None
    launched_here: bool = strawberry.field(description="The server started this cluster (it may scale it).")
    dispatching: bool = strawberry.field(description="This server replica is the one dispatching jobs.")
    workers: list[ClusterWorkerType]
    processing: int
    waiting: int
    images_per_second: float


@strawberry.type(description="The cluster was asked for this many workers.")
class ClusterScaled:
    workers: int


ScaleClusterResult = Annotated[ClusterScaled | InputError, strawberry.union("ScaleClusterResult")]


@strawberry.type
class ClusterQuery:
    @strawberry.field(permission_classes=[IsAdmin], directives=[Cost(weight=20)])
    async def cluster_status(self, info: Info) -> ClusterStatusType:
        services = info.context.services
        status = await services.cluster.status()
        return ClusterStatusType(
            address=status.address,
            dashboard=status.dashboard,
            launched_here=services.cluster.launched_here,
            dispatching=services.dispatcher is not None and services.dispatcher.leading,
            workers=[
                ClusterWorkerType(
                    name=w.name,
                    address=w.address,
                    status=w.status,
                    threads=w.nthreads,
                    devices=w.devices,
                    processing=w.processing,
                    images_per_second=w.images_per_second,
                    memory_bytes=w.memory_bytes,
                )
                for w in status.workers
            ],
            processing=status.processing,
            waiting=status.waiting,
            images_per_second=status.images_per_second,
        )


@strawberry.type
class ClusterMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Run this many workers (only on a cluster this server started itself).",
    )
    async def scale_cluster(self, info: Info, workers: int) -> ScaleClusterResult:
        if not 0 <= workers <= 1024:
            return InputError(field="workers", message="must be between 0 and 1024")
        try:
            asked = await info.context.services.cluster.scale(workers)
        except ClusterUnavailableError as error:
            return InputError(field="workers", message=str(error))
        return ClusterScaled(workers=asked)
