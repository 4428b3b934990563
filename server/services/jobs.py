"""Segmentation jobs: starting one on a project's images, and cancelling it.

A job is written to the database in one transaction and announced on the event bus; the dispatcher (one
per deployment, :mod:`server.jobs`) takes it from there. Both need the ``edit`` right in the project.
Method and parameters are checked here, not image by image on the workers, and only a method's tuning
options are accepted, never a worker's files or hardware (``cluster.methods.JOB_PARAMETERS`` says which).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from cluster import DEFAULT_METHOD, JOB_PARAMETERS, METHODS, SegmentationError, checked_parameters
from server.db import jobs
from server.db.images import image_ids_of_project, images_by_ids
from server.db.models import Job
from server.domain.errors import InvalidInputError
from server.domain.jobs import JobStatus
from server.domain.listing import ImageFilter
from server.domain.roles import Action
from server.events import Event, EventKind
from server.jobs.progress import progress_event
from server.services.events import announce
from server.services.limits import spend_expensive
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime

__all__ = ["JobRequest", "JobStarted", "cancel_job", "start_job"]


@dataclass(frozen=True)
class JobRequest:
    """The images to segment: ``image_ids`` (of one project), or the project's images ``where`` selects."""

    project_id: int | None
    image_ids: Sequence[int] | None
    where: ImageFilter
    method: str | None = None
    parameters: object = None


@dataclass(frozen=True)
class JobStarted:
    job: Job
    skipped_image_ids: list[int]
    """Images already in another unfinished job, left out of this one."""


async def start_job(
    runtime: Runtime, actor: Actor, request: JobRequest, lookup: RoleLookup | None = None
) -> JobStarted:
    """Create and announce the job; :class:`InvalidInputError` naming the wrong field (method,
    parameters, imageIds, input), :class:`RateLimitedError`, or :class:`PermissionDeniedError`."""
    method = request.method or DEFAULT_METHOD
    if method not in METHODS:
        raise InvalidInputError("method", f"{method!r} is not one of: {', '.join(sorted(METHODS))}")
    given: object = {} if request.parameters is None else request.parameters
    try:
        parameters = checked_parameters(method, given, allowed=JOB_PARAMETERS[method])
    except SegmentationError as error:
        raise InvalidInputError("parameters", str(error)) from error
    spend_expensive(runtime, actor, "jobs", "jobs")
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    limit = runtime.settings.max_images_per_job
    async with runtime.db.begin() as db:
        project_id, ids = await _images(db, request, limit)
        await require_project_action(actor, project_id, Action.EDIT, roles, "change it")
        if len(ids) > limit:
            raise InvalidInputError("input", f"at most {limit} images per job; filter more")
        job, skipped = await jobs.create_job(db, project_id, actor.user_id, method, parameters, ids)
    queued = tuple(sorted(set(ids) - set(skipped)))
    user = actor.username
    await announce(
        runtime,
        progress_event(job, EventKind.JOB_CREATED, actor=user),
        Event(EventKind.IMAGE_STATUS, project_id, job.id, queued, user, {"status": "queued"}),
    )
    return JobStarted(job, skipped)


async def _images(db: AsyncSession, request: JobRequest, limit: int) -> tuple[int, list[int]]:
    """The project and the ids of the images asked for (at most ``limit + 1`` from a filter)."""
    if request.image_ids is not None:
        rows = await images_by_ids(db, request.image_ids)
        projects = {row.project_id for row in rows.values()}
        if len(projects) != 1 or (request.project_id is not None and projects != {request.project_id}):
            raise InvalidInputError("imageIds", "give images of one project")
        return projects.pop(), sorted(rows)
    if request.project_id is not None:
        ids = await image_ids_of_project(db, request.project_id, request.where, limit + 1)
        return request.project_id, ids
    raise InvalidInputError("input", "give imageIds, or projectId (and a filter)")


async def cancel_job(runtime: Runtime, actor: Actor, job_id: int, lookup: RoleLookup | None = None) -> Job:
    """Stop the job: images not yet segmented go back to how they were, stored results stay;
    :class:`InvalidInputError` (field ``id``) for a job that has already finished."""
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    async with runtime.db() as db:  # apart from the change below, so it reads the job as it changes it
        found = (await jobs.jobs_by_ids(db, [job_id])).get(job_id)
    if found is None:
        raise InvalidInputError("id", f"there is no job {job_id}")
    await require_project_action(actor, found.project_id, Action.EDIT, roles, "change it")
    async with runtime.db.begin() as db:
        given_back = await jobs.cancel_job(db, job_id)
        job = (await jobs.jobs_by_ids(db, [job_id]))[job_id]
    if job.status != JobStatus.CANCELLED.value:
        raise InvalidInputError("id", f"job {job_id} has already finished ({job.status})")
    user = actor.username
    await announce(
        runtime,
        progress_event(job, EventKind.JOB_CANCELLED, actor=user),
        progress_event(job, EventKind.JOB_FINISHED, actor=user),
        Event(EventKind.IMAGE_STATUS, job.project_id, job.id, tuple(given_back), user),
    )
    if runtime.dispatcher is not None:
        await runtime.dispatcher.cancel(job_id)
    return job
