"""GraphQL subscriptions (over graphql-transport-ws): ``jobProgress``, ``projectEvents``, ``clusterEvents``.

They only translate: what each streams, and when it ends (the subscriber's session ended, they lost the
project), is :mod:`server.services.events`. An ended session is an ``UNAUTHENTICATED`` error, a lost
project "you no longer have access to project N".
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from server.api.context import Context, Info, refresh_session
from server.api.extensions import errors_masked
from server.api.jobs import JobStatusEnum
from server.api.permissions import CanViewProject, IsAuthenticated
from server.domain.jobs import JobStatus
from server.events import Event
from server.jobs.progress import JobSnapshot
from server.services import events
from server.services.permissions import Actor
from server.services.watches import Subscriber

__all__ = ["Subscription"]


@strawberry.type(
    name="JobProgress",
    description="A job's counters at one moment, as the `jobProgress` subscription sends them.",
)
class JobProgressType:
    job_id: int = strawberry.field(description="The job.")
    status: JobStatusEnum = strawberry.field(  # type: ignore[valid-type]
        description="Where the job stands; the subscription ends after DONE, CANCELLED or FAILED."
    )
    total: int = strawberry.field(description="Images in the job.")
    done: int = strawberry.field(description="Images segmented and stored (for an export: gathered).")
    failed: int = strawberry.field(description="Images that could not be segmented (see Job.failures).")
    cancelled: int = strawberry.field(description="Images left unsegmented by a cancel.")
    percentage: float = strawberry.field(
        description="Share of the images that have ended (stored, failed or cancelled), 0-100."
    )
    last_image_id: int | None = strawberry.field(description="The image that ended last (null: none yet).")
    last_image_name: str | None = strawberry.field(
        description="That image's file name (null: none yet, or not known at this moment)."
    )
    images_per_second: float = strawberry.field(
        description="Images ended per second since the first one started; 0 before."
    )
    problem: str | None = strawberry.field(description="Why the job is not moving; null when all is well.")


@strawberry.type(
    name="ProjectEvent",
    description="Something that happened in a project, as `projectEvents` and `projectListEvents` send "
    "it: refetch what it names (e.g. `project.images(ids: imageIds)`) rather than rebuilding state from "
    "the events.",
)
class ProjectEventType:
    kind: str = strawberry.field(
        description="task_finished, task_failed, job_created, job_progress, job_finished, job_cancelled, "
        "image_status, segmentation_saved, review_changed, project_created (data.user_ids names its "
        "owner), project_updated, project_deleted, access_granted (members were added or their role "
        "changed) or access_changed (members were removed); data.user_ids names those members."
    )
    project_id: int = strawberry.field(description="The project it happened in.")
    job_id: int | None = strawberry.field(description="The job it concerns (null: none).")
    image_ids: list[int] = strawberry.field(description="The images it concerns (may be empty).")
    actor: str | None = strawberry.field(description="Who caused it (none for the dispatcher).")
    at: dt.datetime = strawberry.field(description="When it happened (UTC).")
    data: JSON = strawberry.field(
        description="Details by kind, e.g. a job's counters for job_progress (as JobProgress names them), "
        "user_ids for access_changed, deleted for an image_status of deleted images, added for one of "
        "images just imported."
    )
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


@strawberry.type(
    name="ClusterEvent",
    description="The cluster started or stopped, or a worker joined, left or died (killed, crashed, lost).",
)
class ClusterEventType:
    kind: str = strawberry.field(
        description="cluster_started, cluster_stopped, worker_joined, worker_left (retired on purpose) or "
        "worker_died (gone without being asked; a local worker is then restarted: worker_joined follows)."
    )
    worker: str | None = strawberry.field(description="The worker's address; null for the whole cluster.")
    name: str | None = strawberry.field(description="The worker's name; null for the whole cluster.")
    workers: int = strawberry.field(description="Workers in the cluster after it.")
    at: dt.datetime = strawberry.field(description="When it happened.")
    missed: bool = strawberry.field(
        description="Events may have been lost before this one: query clusterStatus again."
    )

    @classmethod
    def of(cls, event: Event, missed: bool) -> ClusterEventType:
        data = event.data
        worker, name, workers = data.get("worker"), data.get("name"), data.get("workers")
        return cls(
            kind=event.kind.value,
            worker=worker if isinstance(worker, str) else None,
            name=name if isinstance(name, str) else None,
            workers=workers if isinstance(workers, int) else 0,
            at=dt.datetime.fromtimestamp(event.at, dt.UTC),
            missed=missed,
        )


def _subscriber(context: Context) -> Subscriber:
    """Who subscribes; their session is read again through the request context's one lookup."""

    async def recheck() -> tuple[Actor, dt.datetime | None] | None:
        if not await refresh_session(context):
            return None
        return context.require_actor(), context.session_expires_at

    return Subscriber(context.require_actor(), context.session_id, context.session_expires_at, recheck)


def _progress(snapshot: JobSnapshot) -> JobProgressType:
    return JobProgressType(
        job_id=snapshot.job_id,
        status=JobStatus(snapshot.status),
        total=snapshot.total,
        done=snapshot.done,
        failed=snapshot.failed,
        cancelled=snapshot.cancelled,
        percentage=snapshot.percentage,
        last_image_id=snapshot.last_image_id,
        last_image_name=snapshot.last_image_name,
        images_per_second=snapshot.images_per_second,
        problem=snapshot.problem,
    )


@strawberry.type(
    description="Live streams over WebSocket (graphql-transport-ws). Each ends with an UNAUTHENTICATED error "
    "when the subscriber's session ends, and with an error when they lose access to the project."
)
class Subscription:
    @strawberry.subscription(
        permission_classes=[CanViewProject],
        description="A job's progress now and at every change, until it ends.",
    )
    async def job_progress(
        self, info: Info, job_id: Annotated[int, strawberry.argument(description="The job to follow.")]
    ) -> AsyncGenerator[JobProgressType, None]:
        context = info.context
        with errors_masked(context.request_id):
            stream = events.job_progress(context.services, _subscriber(context), job_id, context.loaders)
            async with contextlib.aclosing(stream):  # closed with the subscription: its bus queue goes
                async for snapshot in stream:
                    yield _progress(snapshot)

    @strawberry.subscription(
        permission_classes=[CanViewProject],
        description="Everything that happens in a project (see ProjectEvent.kind).",
    )
    async def project_events(
        self,
        info: Info,
        project_id: Annotated[int, strawberry.argument(description="The project to follow.")],
    ) -> AsyncGenerator[ProjectEventType, None]:
        context = info.context
        with errors_masked(context.request_id):
            stream = events.project_events(
                context.services, _subscriber(context), project_id, context.loaders
            )
            async with contextlib.aclosing(stream):
                async for event, missed in stream:
                    yield ProjectEventType.of(event, missed)

    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="What changes the list of projects you see (`projects`): a project made, renamed, "
        "deleted, shared with you or taken from you (project_created, project_updated, project_deleted, "
        "access_granted, access_changed), and images imported, segmented or reviewed in one of them "
        "(image_status, job_progress, job_finished, job_cancelled, segmentation_saved, review_changed). "
        "Query `projects` again on these; they come in bursts while a job runs.",
    )
    async def project_list_events(self, info: Info) -> AsyncGenerator[ProjectEventType, None]:
        context = info.context
        with errors_masked(context.request_id):
            stream = events.project_list_events(context.services, _subscriber(context))
            async with contextlib.aclosing(stream):
                async for event, missed in stream:
                    yield ProjectEventType.of(event, missed)

    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="The cluster starting and stopping, and its workers joining, leaving and dying, as the "
        "server replica answering sees them; query clusterStatus once, then follow this.",
    )
    async def cluster_events(self, info: Info) -> AsyncGenerator[ClusterEventType, None]:
        context = info.context
        with errors_masked(context.request_id):
            stream = events.cluster_events(context.services, _subscriber(context))
            async with contextlib.aclosing(stream):
                async for event, missed in stream:
                    yield ClusterEventType.of(event, missed)
