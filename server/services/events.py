"""Events: telling the bus what a service changed, and following it for a subscriber.

:func:`announce` publishes after a service's transaction has committed. :func:`job_progress`,
:func:`project_events`, :func:`project_list_events` and :func:`cluster_events` are what the GraphQL
subscriptions stream: each checks
its subscriber once, opens its bus subscription *before* reading the current state (so nothing that
happens in between is missed), and ends with an error once the subscriber's session ends or they lose the
project (:mod:`server.services.watches`). A slow client only fills its own bounded queue (progress
coalesces to the latest), so it never holds up the others.

``job_progress`` starts with the job as the database has it, then follows the events; it never goes
backwards (events of results stored concurrently can arrive out of order, and a stale one is skipped),
reads the database again when the bus says events were lost or when nothing came for a while, and ends
once the job has ended. ``project_events`` yields each event with whether events may have been lost
before it. ``project_list_events`` yields what changes the subscriber's list of projects (one made, renamed,
deleted, shared with them or taken from them; images imported, segmented or reviewed in one they see): the
projects they see are read once, then kept by the events that name them. ``cluster_events`` follows the
workers of the cluster this replica uses (any logged-in user).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator

from server.db import jobs
from server.db.images import images_by_ids
from server.db.projects import projects_of_user
from server.domain.jobs import JobStatus
from server.domain.roles import Action
from server.events import CLUSTER_KINDS, Event, EventKind, Subscription
from server.exceptions import EventBusError, PermissionDeniedError
from server.jobs.progress import JobSnapshot
from server.services.permissions import RoleLookup, require_project_action
from server.services.runtime import Runtime
from server.services.watches import ACCESS_KINDS, SESSION_KINDS, AccessWatch, SessionWatch, Subscriber

__all__ = [
    "RESYNC_SECONDS",
    "announce",
    "cluster_events",
    "job_progress",
    "project_events",
    "project_list_events",
]

log = logging.getLogger(__name__)

RESYNC_SECONDS = 10.0
"""Without events for this long, a progress subscription reads the job from the database again."""

_ENDED = tuple(status.value for status in JobStatus if status.ended)
_PROGRESS_KINDS = frozenset({EventKind.JOB_PROGRESS, EventKind.JOB_FINISHED, EventKind.JOB_CANCELLED})
_LIST_KINDS = frozenset(
    {
        EventKind.PROJECT_CREATED,
        EventKind.PROJECT_UPDATED,
        EventKind.PROJECT_DELETED,
        EventKind.ACCESS_GRANTED,
        EventKind.ACCESS_CHANGED,
        EventKind.IMAGE_STATUS,
        EventKind.JOB_PROGRESS,
        EventKind.JOB_FINISHED,
        EventKind.JOB_CANCELLED,
        EventKind.SEGMENTATION_SAVED,
        EventKind.REVIEW_CHANGED,
    }
)
"""What changes a projects list: its rows (made, renamed, deleted, shared, taken away) and their counts
(images imported, deleted or queued; segmented by a job or drawn by hand; reviewed)."""
_GAINED = frozenset({EventKind.PROJECT_CREATED, EventKind.ACCESS_GRANTED})
_WATCH_KINDS = ACCESS_KINDS | SESSION_KINDS
"""Events that only tell whether the subscription may go on; never shown as progress."""


async def announce(runtime: Runtime, *events: Event) -> None:
    """Publish ``events``; a bus that cannot take them is logged, not raised: the change is committed
    already, and watchers re-read the database when they learn they missed something."""
    for event in events:
        try:
            await runtime.bus.publish(event)
        except EventBusError as error:
            log.warning("event %s not published: %s", event.kind.value, error)


class _Losses:
    """Whether events were lost since the last look: the bus lost its listener, or the client read too
    slowly and lost its oldest."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription
        self._dropped = 0

    def since_last(self) -> bool:
        subscription = self._subscription
        lost = subscription.missed or subscription.dropped > self._dropped
        subscription.missed, self._dropped = False, subscription.dropped
        return lost


async def job_progress(
    runtime: Runtime, subscriber: Subscriber, job_id: int, lookup: RoleLookup
) -> AsyncGenerator[JobSnapshot, None]:
    """The job's progress, now and at every change, until it ends (the last image's name filled in)."""
    project_id = await _project_of_job(runtime, job_id)
    if project_id is not None:
        await require_project_action(subscriber.actor, project_id, Action.VIEW, lookup, "see it")
    else:
        raise PermissionDeniedError("not found, or you may not see it")
    access, session = AccessWatch(runtime, subscriber, project_id), SessionWatch(runtime, subscriber)
    with_events = runtime.bus.subscribe(
        project_id=project_id, job_id=job_id, kinds=_PROGRESS_KINDS, also=ACCESS_KINDS, always=SESSION_KINDS
    )
    losses = _Losses(with_events)
    try:
        await access.confirm()
        last = await _snapshot(runtime, job_id)
        yield await _named(runtime, last)
        while last.status not in _ENDED:
            event = await with_events.get(timeout=session.timeout(RESYNC_SECONDS))
            if with_events.closed:
                return  # the bus closed: the server is shutting down
            lost = losses.since_last()
            await session.check(event, lost=lost)
            await access.check(event, lost=lost)
            if event is not None and event.kind in _WATCH_KINDS and not lost:
                continue  # an access change that left this subscriber in, another's session
            # nothing for a while (a publish may have failed), or events lost: ask the database
            current = (
                await _snapshot(runtime, job_id) if event is None or lost else JobSnapshot.from_event(event)
            )
            ended_now = current.status in _ENDED
            if current.counts.finished < last.counts.finished or (current == last and not ended_now):
                continue  # older than what the client has, or nothing new
            last = current
            yield await _named(runtime, last)
    finally:
        with_events.close()


async def project_events(
    runtime: Runtime, subscriber: Subscriber, project_id: int, lookup: RoleLookup
) -> AsyncGenerator[tuple[Event, bool], None]:
    """Every event of the project, with whether events may have been lost before it (refetch then)."""
    await require_project_action(subscriber.actor, project_id, Action.VIEW, lookup, "see it")
    access, session = AccessWatch(runtime, subscriber, project_id), SessionWatch(runtime, subscriber)
    with_events = runtime.bus.subscribe(project_id=project_id, always=SESSION_KINDS)
    async with contextlib.aclosing(_watched(with_events, session, access)) as stream:
        async for item in stream:
            yield item


async def project_list_events(
    runtime: Runtime, subscriber: Subscriber
) -> AsyncGenerator[tuple[Event, bool], None]:
    """The events that change the list of projects ``subscriber`` sees, each with whether events may have
    been lost before it (then the list is read again: refetch it)."""
    with_events = runtime.bus.subscribe(kinds=_LIST_KINDS, always=SESSION_KINDS)
    seen = _SeenProjects(runtime, subscriber)
    await seen.read()  # after subscribing, so that a project shared meanwhile is not missed
    unreported_loss = False
    async with contextlib.aclosing(_watched(with_events, SessionWatch(runtime, subscriber))) as stream:
        async for event, lost in stream:
            if lost:
                await seen.read()
            unreported_loss = unreported_loss or lost
            if seen.follow(event):
                yield event, unreported_loss
                unreported_loss = False


class _SeenProjects:
    """The ids of the projects a subscriber sees (an administrator: every one), kept by the events."""

    def __init__(self, runtime: Runtime, subscriber: Subscriber) -> None:
        self._runtime = runtime
        self._subscriber = subscriber
        self._ids: set[int] = set()

    async def read(self) -> None:
        actor = self._subscriber.actor
        async with self._runtime.db() as db:
            self._ids = {p.id for p in await projects_of_user(db, actor.user_id, actor.is_admin)}

    def follow(self, event: Event) -> bool:
        """Whether ``event`` changes the subscriber's list (their projects are updated by it)."""
        actor = self._subscriber.actor  # kept current by the session watch: an administrator made or not
        named = actor.user_id in event.data.get("user_ids", ())
        if event.kind in _GAINED and named:
            self._ids.add(event.project_id)
            return True
        if event.kind is EventKind.PROJECT_DELETED or (event.kind is EventKind.ACCESS_CHANGED and named):
            had = event.project_id in self._ids
            self._ids.discard(event.project_id)
            return had or named or actor.is_admin
        return actor.is_admin or event.project_id in self._ids


async def cluster_events(
    runtime: Runtime, subscriber: Subscriber
) -> AsyncGenerator[tuple[Event, bool], None]:
    """The cluster starting and stopping, and its workers joining, leaving and dying, as this replica
    sees them, with whether events may have been lost before each; any logged-in subscriber."""
    with_events = runtime.bus.subscribe(kinds=CLUSTER_KINDS, always=SESSION_KINDS)
    async with contextlib.aclosing(_watched(with_events, SessionWatch(runtime, subscriber))) as stream:
        async for item in stream:
            yield item


async def _watched(
    with_events: Subscription, session: SessionWatch, access: AccessWatch | None = None
) -> AsyncGenerator[tuple[Event, bool], None]:
    """The events of ``with_events`` while the subscriber's session (and access, when watched) holds,
    each with whether events may have been lost before it; the bus subscription is closed at the end."""
    losses, unreported_loss = _Losses(with_events), False
    try:
        if access is not None:
            await access.confirm()
        while True:
            event = await with_events.get(timeout=session.timeout())
            if with_events.closed:
                return  # the bus closed: the server is shutting down
            lost = losses.since_last()
            await session.check(event, lost=lost)
            if access is not None:
                await access.check(event, lost=lost)
            unreported_loss = unreported_loss or lost
            if event is None or event.kind in SESSION_KINDS:
                continue  # only a time to look at the session, or another's session ended
            yield event, unreported_loss
            unreported_loss = False
    finally:
        with_events.close()


async def _project_of_job(runtime: Runtime, job_id: int) -> int | None:
    async with runtime.db() as db:
        job = (await jobs.jobs_by_ids(db, [job_id])).get(job_id)
    return job.project_id if job is not None else None


async def _snapshot(runtime: Runtime, job_id: int) -> JobSnapshot:
    async with runtime.db() as db:
        job = (await jobs.jobs_by_ids(db, [job_id])).get(job_id)
        if job is None:  # its project was deleted, and the event saying so is not here yet
            raise PermissionDeniedError(f"job {job_id} no longer exists (its project was deleted)")
        return JobSnapshot.of(job)


async def _named(runtime: Runtime, snapshot: JobSnapshot) -> JobSnapshot:
    """``snapshot`` with its last image's name, read from the database when the event did not carry it."""
    if snapshot.last_image_name is not None or snapshot.last_image_id is None:
        return snapshot
    async with runtime.db() as db:
        image = (await images_by_ids(db, [snapshot.last_image_id])).get(snapshot.last_image_id)
    return dataclasses.replace(snapshot, last_image_name=image.name if image is not None else None)
