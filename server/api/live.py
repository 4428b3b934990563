"""GraphQL subscriptions (over graphql-transport-ws): ``jobProgress`` and ``projectEvents``.

Each subscription opens its event-bus subscription *before* reading the current state, so nothing that
happens in between is missed. ``jobProgress`` starts with the job as the database has it, then follows the
events; it never goes backwards (events of results stored concurrently can arrive out of order, and a
stale one is skipped), reads the database again when the bus says events were lost or when nothing came
for a while, and ends once the job has ended. A slow client only fills its own bounded queue (progress
coalesces to the latest), so it never holds up the others.

Both end with an error ("you no longer have access to project N") once their subscriber is removed from the
project or the project is deleted; :class:`~server.api.access.AccessWatch` tells, at no cost per event. Both
end with an ``UNAUTHENTICATED`` error once their session ends (logout, expiry, a disabled user);
:class:`~server.api.sessions.SessionWatch` tells, at no cost per event either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator

import strawberry
from strawberry.scalars import JSON

from server.api.access import ACCESS_KINDS, AccessWatch
from server.api.context import Info
from server.api.extensions import errors_masked
from server.api.jobs import JobStatusEnum
from server.api.permissions import CanViewProject
from server.api.sessions import SESSION_KINDS, SessionWatch
from server.db import jobs
from server.db.images import images_by_ids
from server.domain.jobs import JobStatus
from server.events import Event, EventKind
from server.exceptions import PermissionDeniedError
from server.jobs.progress import JobSnapshot
from server.services.runtime import Runtime

__all__ = ["Subscription"]

RESYNC_SECONDS = 10.0
"""Without events for this long, a progress subscription reads the job from the database again."""

_ENDED = tuple(status.value for status in JobStatus if status.ended)
_PROGRESS_KINDS = frozenset({EventKind.JOB_PROGRESS, EventKind.JOB_FINISHED, EventKind.JOB_CANCELLED})
_WATCH_KINDS = ACCESS_KINDS | SESSION_KINDS
"""Events that only tell whether the subscription may go on; never shown as progress."""


@strawberry.type(name="JobProgress")
class JobProgressType:
    job_id: int
    status: JobStatusEnum  # type: ignore[valid-type]
    total: int
    done: int
    failed: int
    cancelled: int
    percentage: float
    last_image_id: int | None
    last_image_name: str | None
    images_per_second: float
    problem: str | None = strawberry.field(description="Why the job is not moving; null when all is well.")


@strawberry.type(name="ProjectEvent")
class ProjectEventType:
    kind: str = strawberry.field(
        description="task_finished, task_failed, job_created, job_progress, job_finished, job_cancelled, "
        "image_status, segmentation_saved, review_changed or access_changed (members were removed; "
        "data.user_ids names them)."
    )
    project_id: int
    job_id: int | None
    image_ids: list[int]
    actor: str | None = strawberry.field(description="Who caused it (none for the dispatcher).")
    at: dt.datetime
    data: JSON
    missed: bool = strawberry.field(
        description="Events may have been lost before this one (a slow connection or a reconnect): refetch."
    )

    @classmethod
    def of(cls, event: Event, missed: bool) -> ProjectEventType:
        return cls(
            kind=event.kind.value,
            project_id=event.project_id,
            job_id=event.job_id,
            image_ids=list(event.image_ids),
            actor=event.actor,
            at=dt.datetime.fromtimestamp(event.at, dt.UTC),
            data=dict(event.data),  # type: ignore[arg-type]
            missed=missed,
        )


async def _snapshot(services: Runtime, job_id: int) -> JobSnapshot:
    async with services.db() as db:
        job = (await jobs.jobs_by_ids(db, [job_id])).get(job_id)
        if job is None:  # its project was deleted, and the event saying so is not here yet
            raise PermissionDeniedError(f"job {job_id} no longer exists (its project was deleted)")
        return JobSnapshot.of(job)


async def _progress(services: Runtime, snapshot: JobSnapshot) -> JobProgressType:
    name = snapshot.last_image_name
    if name is None and snapshot.last_image_id is not None:
        async with services.db() as db:
            image = (await images_by_ids(db, [snapshot.last_image_id])).get(snapshot.last_image_id)
        name = image.name if image is not None else None
    return JobProgressType(
        job_id=snapshot.job_id,
        status=JobStatus(snapshot.status),
        total=snapshot.total,
        done=snapshot.done,
        failed=snapshot.failed,
        cancelled=snapshot.cancelled,
        percentage=snapshot.percentage,
        last_image_id=snapshot.last_image_id,
        last_image_name=name,
        images_per_second=snapshot.images_per_second,
        problem=snapshot.problem,
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(permission_classes=[CanViewProject])
    async def job_progress(self, info: Info, job_id: int) -> AsyncGenerator[JobProgressType, None]:
        context, services = info.context, info.context.services
        with errors_masked(context.request_id):
            job = await context.loaders.job.load(job_id)
            assert job is not None  # the permission refused a missing job
            access, session = AccessWatch(context, job.project_id), SessionWatch(context)
            with_events = services.bus.subscribe(
                project_id=job.project_id,
                job_id=job_id,
                kinds=_PROGRESS_KINDS,
                also=ACCESS_KINDS,
                always=SESSION_KINDS,
            )
            dropped = 0
            try:
                await access.confirm()
                last = await _snapshot(services, job_id)
                yield await _progress(services, last)
                while last.status not in _ENDED:
                    event = await with_events.get(timeout=session.timeout(RESYNC_SECONDS))
                    if with_events.closed:
                        return  # the bus closed: the server is shutting down
                    lost = with_events.missed or with_events.dropped > dropped
                    with_events.missed, dropped = False, with_events.dropped
                    await session.check(event, lost=lost)
                    await access.check(event, lost=lost)
                    if event is not None and event.kind in _WATCH_KINDS and not lost:
                        continue  # an access change that left this subscriber in, another's session
                    # nothing for a while (a publish may have failed), or events lost: ask the database
                    if event is None or lost:
                        current = await _snapshot(services, job_id)
                    else:
                        current = JobSnapshot.from_event(event)
                    ended_now = current.status in _ENDED
                    if current.counts.finished < last.counts.finished or (current == last and not ended_now):
                        continue  # older than what the client has, or nothing new
                    last = current
                    yield await _progress(services, last)
            finally:
                with_events.close()

    @strawberry.subscription(permission_classes=[CanViewProject])
    async def project_events(self, info: Info, project_id: int) -> AsyncGenerator[ProjectEventType, None]:
        with errors_masked(info.context.request_id):
            access, session = AccessWatch(info.context, project_id), SessionWatch(info.context)
            with_events = info.context.services.bus.subscribe(project_id=project_id, always=SESSION_KINDS)
            dropped, unreported_loss = 0, False
            try:
                await access.confirm()
                while True:
                    event = await with_events.get(timeout=session.timeout())
                    if with_events.closed:
                        return  # the bus closed: the server is shutting down
                    # lost: the bus lost its listener, or this client read too slowly and lost its oldest
                    lost = with_events.missed or with_events.dropped > dropped
                    with_events.missed, dropped = False, with_events.dropped
                    await session.check(event, lost=lost)
                    await access.check(event, lost=lost)
                    unreported_loss = unreported_loss or lost
                    if event is None or event.kind in SESSION_KINDS:
                        continue  # only a time to look at the session, or another's session ended
                    yield ProjectEventType.of(event, unreported_loss)
                    unreported_loss = False
            finally:
                with_events.close()
