"""Jobs and tasks in the database: create, claim, finish, fail, cancel, requeue, read.

Every task change goes through :func:`change_task`, which applies the domain's :class:`TaskChange` to the
task, its image and its job in the caller's transaction, and only if the task is still in the state the
change starts from. ``False`` back means someone else got there first (a cancel, a duplicate result, a
replica that took over): the caller then changes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cluster import Segmentation
from server.db.models import Image, Job, Task, utcnow
from server.db.segmentations import save_segmentation
from server.domain.jobs import JobCounts, JobStatus, TaskStatus, job_status, task_change
from server.domain.review import SegmentationStatus
from server.domain.versions import Provenance, SaveOrigin, SegmentationSave

__all__ = [
    "ClaimedTask",
    "cancel_job",
    "cancel_tasks_of_images",
    "change_task",
    "claim_tasks",
    "create_job",
    "failed_tasks_of",
    "jobs_by_ids",
    "jobs_of_projects",
    "report_problem",
    "requeue_running",
    "store_result",
]

BUSY = (SegmentationStatus.QUEUED.value, SegmentationStatus.RUNNING.value)


@dataclass(frozen=True)
class ClaimedTask:
    """A task handed to the dispatcher, with what a worker needs to find and segment its image."""

    task_id: int
    job_id: int
    project_id: int
    image_id: int
    image_name: str
    content_hash: str
    method: str
    parameters: dict[str, Any]


async def create_job(
    db: AsyncSession,
    project_id: int,
    user_id: int | None,
    method: str,
    parameters: dict[str, Any],
    image_ids: Sequence[int],
) -> tuple[Job, list[int]]:
    """A job with one queued task per image of the project; images already queued or running in another
    job are left out (their ids come back second) so that no image is segmented twice at once."""
    rows = list(
        await db.execute(
            select(Image.id, Image.segmentation_status).where(
                Image.id.in_(image_ids), Image.project_id == project_id
            )
        )
    )
    eligible = sorted(image_id for image_id, status in rows if status not in BUSY)
    busy = sorted(image_id for image_id, status in rows if status in BUSY)
    now = utcnow()
    job = Job(
        project_id=project_id,
        created_by=user_id,
        method=method,
        parameters=parameters,
        status=job_status(JobCounts(len(eligible)), started=False, cancelled=False).value,
        total=len(eligible),
        created_at=now,
        finished_at=now if not eligible else None,
    )
    db.add(job)
    await db.flush()
    for start in range(0, len(eligible), 5000):
        chunk = eligible[start : start + 5000]
        await db.execute(
            insert(Task),
            [
                {"job_id": job.id, "image_id": i, "status": TaskStatus.QUEUED.value, "attempts": 0}
                for i in chunk
            ],
        )
        await db.execute(
            update(Image)
            .where(Image.id.in_(chunk))
            .values(segmentation_status=SegmentationStatus.QUEUED.value, updated_at=now)
        )
    return job, busy


async def claim_tasks(db: AsyncSession, limit: int) -> list[ClaimedTask]:
    """Up to ``limit`` queued tasks, oldest job first, now ``running``."""
    found = list(
        await db.execute(
            select(Task.id, Task.job_id, Job.project_id, Image.id, Image.name, Image.content_hash)
            .join(Job, Job.id == Task.job_id)
            .join(Image, Image.id == Task.image_id)
            .where(Task.status == TaskStatus.QUEUED.value)
            .order_by(Task.job_id, Task.id)
            .limit(limit)
        )
    )
    jobs = await jobs_by_ids(db, sorted({row[1] for row in found}))
    claimed = []
    for task_id, job_id, project_id, image_id, name, content_hash in found:
        if await change_task(db, task_id, TaskStatus.QUEUED, TaskStatus.RUNNING):
            job = jobs[job_id]
            claimed.append(
                ClaimedTask(
                    task_id,
                    job_id,
                    project_id,
                    image_id,
                    name,
                    content_hash,
                    job.method,
                    dict(job.parameters),
                )
            )
    return claimed


async def change_task(
    db: AsyncSession,
    task_id: int,
    before: TaskStatus,
    after: TaskStatus,
    *,
    error: str | None = None,
    result_version: int | None = None,
) -> bool:
    """Move a task from ``before`` to ``after`` with its image and job; ``False`` if it was not ``before``.

    For ``done`` the caller has stored the segmentation (the image's status is set by that save too).
    """
    change = task_change(before, after, image_has_segmentation=False)  # refuses a step it does not know
    now = utcnow()
    values: dict[str, Any] = {"status": after.value}
    if after is TaskStatus.RUNNING:
        values.update(started_at=now, attempts=Task.attempts + 1)
    elif after is TaskStatus.QUEUED:
        values.update(started_at=None)
    else:
        values.update(finished_at=now, error=error, result_version=result_version)
    moved = await db.execute(
        update(Task)
        .where(Task.id == task_id, Task.status == before.value)
        .values(**values)
        .returning(Task.image_id, Task.job_id)
        .execution_options(synchronize_session=False)
    )
    found = moved.first()
    if found is None:
        return False
    image_id, job_id = found
    if after is TaskStatus.CANCELLED:  # the image goes back to its earlier segmentation, if it has one
        current_version = await db.scalar(select(Image.current_version).where(Image.id == image_id))
        change = task_change(before, after, image_has_segmentation=bool(current_version))
    await db.execute(
        update(Image)
        .where(Image.id == image_id)
        .values(segmentation_status=change.image_status.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    job_values: dict[str, Any] = {
        "done": Job.done + change.done,
        "failed": Job.failed + change.failed,
        "cancelled": Job.cancelled + change.cancelled,
    }
    if after is TaskStatus.RUNNING:
        job_values["started_at"] = func.coalesce(Job.started_at, now)
    if after.finished:
        job_values.update(last_image_id=image_id, problem=None)
    await db.execute(
        update(Job).where(Job.id == job_id).values(**job_values).execution_options(synchronize_session=False)
    )
    await _settle_job(db, job_id)
    return True


async def store_result(db: AsyncSession, task: ClaimedTask, result: Segmentation) -> int | None:
    """Store a finished task's segmentation as its image's next version and end the task ``done``.

    ``None``, storing nothing, when the task is no longer running (cancelled, its image deleted, or its
    result already stored). The result is based on the version current now (a job replaces whatever is
    there, and history keeps it); a person saving the same image at the same instant makes the save raise
    :class:`VersionConflictError`: the caller's transaction then rolls back and the result can be retried.
    """
    image = await db.get(Image, task.image_id, populate_existing=True)
    if image is None:
        return None
    base = image.current_version
    if not await change_task(db, task.task_id, TaskStatus.RUNNING, TaskStatus.DONE, result_version=base + 1):
        return None
    provenance = Provenance(result.model_name or task.method, result.model_version, task.parameters)
    save = SegmentationSave(image.id, base, result.spheroids, SaveOrigin.JOB, None, provenance)
    return (await save_segmentation(db, save)).version


async def _settle_job(db: AsyncSession, job_id: int) -> None:
    job = await db.get(Job, job_id, populate_existing=True)
    if job is None:
        return
    status = job_status(
        JobCounts(job.total, job.done, job.failed, job.cancelled),
        started=job.started_at is not None,
        cancelled=job.status == JobStatus.CANCELLED.value,
    )
    if status.value != job.status:
        job.status = status.value
        if status in (JobStatus.DONE, JobStatus.CANCELLED):
            job.finished_at = utcnow()
        await db.flush()


async def cancel_job(db: AsyncSession, job_id: int) -> list[int]:
    """Cancel a job: its waiting and running tasks end ``cancelled``; returns the images given back."""
    job = await db.get(Job, job_id, populate_existing=True)
    if job is None or job.status in (JobStatus.DONE.value, JobStatus.CANCELLED.value):
        return []
    job.status = JobStatus.CANCELLED.value
    await db.flush()
    return [image_id for image_id, _ in await _cancel_tasks(db, Task.job_id == job_id)]


async def cancel_tasks_of_images(db: AsyncSession, image_ids: Sequence[int]) -> list[int]:
    """Cancel the unfinished tasks of images about to be deleted, so their jobs can still finish; returns
    the jobs that changed."""
    return sorted({job_id for _, job_id in await _cancel_tasks(db, Task.image_id.in_(image_ids))})


async def _cancel_tasks(db: AsyncSession, which: ColumnElement[bool]) -> list[tuple[int, int]]:
    """Cancel the unfinished tasks ``which`` selects; (image id, job id) of each one cancelled."""
    cancelled = []
    for task_id, status, image_id, job_id in list(
        await db.execute(select(Task.id, Task.status, Task.image_id, Task.job_id).where(which))
    ):
        if not TaskStatus(status).finished and await change_task(
            db, task_id, TaskStatus(status), TaskStatus.CANCELLED
        ):
            cancelled.append((image_id, job_id))
    return cancelled


async def requeue_running(db: AsyncSession) -> int:
    """Put every ``running`` task back in the queue (the dispatcher that ran them is gone)."""
    ids = list(await db.scalars(select(Task.id).where(Task.status == TaskStatus.RUNNING.value)))
    return sum([await change_task(db, task_id, TaskStatus.RUNNING, TaskStatus.QUEUED) for task_id in ids])


async def report_problem(db: AsyncSession, job_id: int, problem: str) -> None:
    """Say why a job is not moving; the next task that ends clears it."""
    await db.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(problem=problem)
        .execution_options(synchronize_session=False)
    )


async def jobs_by_ids(db: AsyncSession, ids: Sequence[int]) -> dict[int, Job]:
    return {job.id: job for job in await db.scalars(select(Job).where(Job.id.in_(ids)))}


async def jobs_of_projects(db: AsyncSession, project_ids: Sequence[int]) -> dict[int, list[Job]]:
    """Each project's jobs, newest first."""
    found: dict[int, list[Job]] = {pid: [] for pid in project_ids}
    rows = await db.scalars(select(Job).where(Job.project_id.in_(project_ids)).order_by(Job.id.desc()))
    for job in rows:
        found[job.project_id].append(job)
    return found


async def failed_tasks_of(db: AsyncSession, job_ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]:
    """Each job's failed images: (image id, image name, reason)."""
    found: dict[int, list[tuple[int, str, str]]] = {job_id: [] for job_id in job_ids}
    rows = await db.execute(
        select(Task.job_id, Image.id, Image.name, Task.error)
        .join(Image, Image.id == Task.image_id)
        .where(Task.job_id.in_(job_ids), Task.status == TaskStatus.FAILED.value)
        .order_by(Task.job_id, Task.id)
    )
    for job_id, image_id, name, error in rows:
        found[job_id].append((image_id, name, error or ""))
    return found
