"""Jobs over GraphQL: ``segmentImages``, ``cancelJob`` and ``job``.

A job segments images (kind ``SEGMENT``) or exports them (kind ``EXPORT``, started by ``exportProject``;
its zip's signed link is ``downloadUrl``). Starting and cancelling a segmentation job is
:mod:`server.services.jobs`, exports :mod:`server.services.exports`; live progress is in
:mod:`server.api.live`; the cluster the jobs run on is in :mod:`server.api.cluster`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from server.api.absolute import absolute_url
from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.images import ImageFilterInput
from server.api.permissions import CanEditProject, CanViewProject
from server.api.results import InputError, RateLimited, input_error, rate_limited_result
from server.db.models import Job
from server.domain.errors import InvalidInputError
from server.domain.jobs import JobCounts, JobKind, JobStatus
from server.exceptions import RateLimitedError
from server.jobs.progress import images_per_second
from server.services import exports
from server.services import jobs as service

__all__ = ["JobMutation", "JobQuery", "JobStatusEnum", "JobType"]

JobStatusEnum = strawberry.enum(
    JobStatus,
    name="JobStatus",
    description="QUEUED until its first image runs; RUNNING until every image has ended; then DONE (some "
    "images may have failed: `failed` counts them), CANCELLED, or FAILED (only an export job fails as a "
    "whole; `problem` says why).",
)
JobKindEnum = strawberry.enum(JobKind, name="JobKind", description="What a job does.")


@strawberry.type(name="TaskFailure", description="An image of a job that could not be segmented, and why.")
class TaskFailureType:
    image_id: int = strawberry.field(description="The image that failed.")
    image_name: str = strawberry.field(description="Its file name.")
    reason: str = strawberry.field(description="Why it failed, as the segmenter or the server said.")


@strawberry.type(
    name="Job",
    description="A background job of a project: a segmentation of images on the cluster, or an export. "
    "Its counters change as it runs; follow them with the `jobProgress` subscription.",
)
class JobType:
    id: int = strawberry.field(description="The job's id (as `job`, `cancelJob` and `jobProgress` take it).")
    project_id: int = strawberry.field(description="The project whose images it works on.")
    kind: JobKind = strawberry.field(description="SEGMENT (images on the cluster) or EXPORT (a zip).")
    method: str = strawberry.field(
        description="The segmentation method (e.g. classical, resunet); `export` for an export job."
    )
    parameters: JSON = strawberry.field(
        description="The method's options by name; for an export, `formats` lists the file formats."
    )
    status: JobStatus = strawberry.field(description="Where the job stands.")
    total: int = strawberry.field(description="Images in the job.")
    done: int = strawberry.field(description="Images segmented and stored.")
    failed: int = strawberry.field(description="Images that could not be segmented (see `failures`).")
    cancelled: int = strawberry.field(description="Images left unsegmented because the job was cancelled.")
    last_image_id: int | None = strawberry.field(
        description="The image that ended last (null: none yet), e.g. to show its thumbnail."
    )
    images_per_second: float = strawberry.field(
        description="Images ended (stored or failed) per second since the first one started; 0 before."
    )
    problem: str | None = strawberry.field(
        description="Why the job is not moving (e.g. the cluster cannot be reached), or why a FAILED export "
        "failed; null when all is well."
    )
    created_at: dt.datetime = strawberry.field(description="When it was started (queued).")
    started_at: dt.datetime | None = strawberry.field(
        description="When its first image began running (null: still queued)."
    )
    finished_at: dt.datetime | None = strawberry.field(
        description="When it ended: done, cancelled or failed (null: not yet)."
    )
    created_by_id: strawberry.Private[int | None]
    row: strawberry.Private[Job]

    @classmethod
    def of(cls, job: Job) -> JobType:
        return cls(
            id=job.id,
            project_id=job.project_id,
            kind=JobKind(job.kind),
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
            row=job,
        )

    @strawberry.field(
        description="An export job's zip, once DONE: a signed link that works without credentials until "
        "downloadExpiresAt (null for a segmentation job, an unfinished or failed export, or an expired one)."
    )
    async def download_url(self, info: Info) -> str | None:
        found = await exports.export_download(info.context.services, self.row)
        return absolute_url(info.context, found.url) if found is not None else None

    @strawberry.field(description="When downloadUrl stops working (the zip is deleted then).")
    def download_expires_at(self) -> dt.datetime | None:
        return exports.export_expiry(self.row)

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
    project_id: int | None = strawberry.field(
        default=None,
        description="The project whose images matching `filter` to segment (without `imageIds`).",
    )
    image_ids: list[int] | None = strawberry.field(
        default=None,
        description="The images to segment (all in one project); takes precedence over `filter`.",
    )
    filter: ImageFilterInput | None = strawberry.field(
        default=None, description="Which of the project's images (omitted: all of them)."
    )
    method: str | None = strawberry.field(default=None, description="classical or resunet (default: best).")
    parameters: JSON | None = strawberry.field(
        default=None,
        description='Tuning options of the method, e.g. {"threshold": 0.6} for resunet; an unknown or '
        "disallowed name, a wrong type or a value out of range is an InputError naming it.",
    )


@strawberry.type(description="The job was created; images already in another unfinished job were left out.")
class JobStarted:
    job: JobType = strawberry.field(description="The new job, queued.")
    skipped_image_ids: list[int] = strawberry.field(
        description="Images left out because another unfinished job has them already."
    )


JobStartResult = Annotated[
    JobStarted | InputError | RateLimited,
    strawberry.union(
        "JobStartResult",
        description="The started job, which input was wrong (e.g. an unknown method or parameter), or too "
        "many jobs started lately.",
    ),
]
JobCancelResult = Annotated[
    JobType | InputError,
    strawberry.union(
        "JobCancelResult", description="The job as it is after cancelling, or why it could not be cancelled."
    ),
]


@strawberry.type
class JobQuery:
    @strawberry.field(
        permission_classes=[CanViewProject],
        description="One job; an error when it does not exist or is not in a project you are a member of.",
    )
    async def job(
        self, info: Info, id: Annotated[int, strawberry.argument(description="The job's id.")]
    ) -> JobType:
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
    async def segment_images(
        self,
        info: Info,
        input: Annotated[
            SegmentImagesInput, strawberry.argument(description="Which images, and with which method.")
        ],
    ) -> JobStartResult:
        context = info.context
        where = (input.filter or ImageFilterInput()).to_domain()
        request = service.JobRequest(input.project_id, input.image_ids, where, input.method, input.parameters)
        try:
            started = await service.start_job(
                context.services, context.require_actor(), request, context.loaders
            )
        except RateLimitedError as error:
            return rate_limited_result(error)
        except InvalidInputError as error:
            return input_error(error)
        return JobStarted(job=JobType.of(started.job), skipped_image_ids=started.skipped_image_ids)

    @strawberry.mutation(
        permission_classes=[CanEditProject],
        description="Stop a job: images not yet segmented go back to how they were; stored results stay.",
    )
    async def cancel_job(
        self, info: Info, id: Annotated[int, strawberry.argument(description="The job to cancel.")]
    ) -> JobCancelResult:
        context = info.context
        try:
            job = await service.cancel_job(context.services, context.require_actor(), id, context.loaders)
        except InvalidInputError as error:
            return input_error(error)
        return JobType.of(job)
