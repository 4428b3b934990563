"""Export jobs in the database: a :class:`~server.db.models.Job` row of kind ``export``, without tasks.

Each change is a compare-and-set on the job's status, so a job that was cancelled, or ended elsewhere,
is never moved again: the caller gets ``None`` back and stops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Job, utcnow
from server.domain.jobs import JobKind, JobStatus

__all__ = ["abandoned_exports", "beat", "create_export_job", "end_export", "export_progress"]

EXPORT_METHOD = "export"
"""What ``Job.method`` says of an export job (it runs no segmentation method)."""

_UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


async def create_export_job(
    db: AsyncSession, project_id: int, user_id: int | None, formats: Sequence[str], total: int
) -> Job:
    job = Job(
        project_id=project_id,
        created_by=user_id,
        kind=JobKind.EXPORT.value,
        method=EXPORT_METHOD,
        parameters={"formats": list(formats)},
        status=JobStatus.QUEUED.value,
        total=total,
        created_at=utcnow(),
        heartbeat_at=utcnow(),
    )
    db.add(job)
    await db.flush()
    return job


async def export_progress(db: AsyncSession, job_id: int, done: int, last_image_id: int | None) -> Job | None:
    """``done`` images gathered (the job is ``running``); ``None`` if the job has ended meanwhile."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": JobStatus.RUNNING.value,
        "done": done,
        "last_image_id": last_image_id,
        "started_at": func.coalesce(Job.started_at, now),
        "heartbeat_at": now,
    }
    return await _change(db, job_id, values)


async def beat(db: AsyncSession, job_id: int) -> None:
    """The server running this export is alive now."""
    await db.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(_UNFINISHED))
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def abandoned_exports(db: AsyncSession, silent_since: dt.datetime) -> list[int]:
    """Unfinished export jobs whose server has not been heard of since ``silent_since``."""
    found = await db.scalars(
        select(Job.id).where(
            Job.kind == JobKind.EXPORT.value,
            Job.status.in_(_UNFINISHED),
            func.coalesce(Job.heartbeat_at, Job.created_at) < silent_since,
        )
    )
    return list(found)


async def end_export(
    db: AsyncSession,
    job_id: int,
    status: JobStatus,
    *,
    problem: str | None = None,
    result_key: str | None = None,
    expires_at: dt.datetime | None = None,
    parameters: dict[str, Any] | None = None,
) -> Job | None:
    """End the job ``done`` (with its zip's key and expiry, and ``parameters`` telling what it holds) or
    ``failed`` (with ``problem``); ``None`` if it had ended already (cancelled)."""
    values: dict[str, Any] = {
        "status": status.value,
        "problem": problem,
        "result_key": result_key,
        "result_expires_at": expires_at,
        "finished_at": utcnow(),
    }
    if parameters is not None:
        values["parameters"] = parameters
    return await _change(db, job_id, values)


async def _change(db: AsyncSession, job_id: int, values: dict[str, Any]) -> Job | None:
    changed = await db.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(_UNFINISHED))
        .values(**values)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    if changed.first() is None:
        return None
    return await db.get(Job, job_id, populate_existing=True)
