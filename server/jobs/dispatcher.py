"""The dispatcher: moves queued tasks onto the Dask cluster and their results into the database.

One per deployment dispatches (see :mod:`server.jobs.leadership`); the others wait to take over. When it
starts leading it puts tasks left ``running`` by its predecessor (a crashed or restarted server) back in
the queue, so nothing is lost. Then, in a loop:

- it claims queued tasks, oldest job first, in *waves* of ``dispatch_wave_size`` of one job, keeping at
  most ``dispatch_max_in_flight`` images on the cluster, and submits each wave through
  :func:`cluster.client.submit_images` (which batches, retries and survives dying workers);
- each result is stored in its own transaction, only if its task is still running (see
  :func:`server.db.jobs.change_task`): a duplicate, or one for a cancelled job, changes nothing;
- an image that cannot be segmented fails alone with its reason; a cluster that cannot be reached puts
  the wave's tasks back in the queue and is tried again after a pause;
- after each commit it publishes the events (task finished or failed, job progress, job finished);
- images deleted (``deleteImages``, ``deleteProject``, on any replica: events) are taken off the cluster
  (:meth:`cluster.client.SegmentationJob.cancel_images`); a result that still arrives for a task that is
  gone is dropped and counted (``spheroseg_results_dropped{reason="deleted"}``), as is one for a task no
  longer running (``reason="stale"``: cancelled, or stored already). Ids are never reused (migration
  0005), so such a result can never be taken for a newer task's or image's.

It wakes up when a job is created or cancelled (events) and otherwise polls every ``dispatch_poll_seconds``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cluster import (
    ImageOutcome,
    NoCapableWorkerError,
    ReadSettings,
    SegmentationJob,
    SegmentationRequest,
    SegmenterSpec,
    submit_images,
)
from server.db import jobs
from server.db.jobs import ClaimedTask
from server.db.models import Job, Task
from server.domain.errors import VersionConflictError
from server.domain.jobs import JobStatus, TaskStatus
from server.events import Event, EventBus, EventKind, Subscription
from server.exceptions import EventBusError
from server.jobs.cluster import ClusterHandle
from server.jobs.leadership import open_leadership
from server.jobs.progress import progress_event
from server.settings import Settings
from server.storage import BlobStore, image_key

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

RETRY_PAUSE = 5.0
"""Seconds before a wave whose cluster could not be reached is tried again."""

WATCHED = (EventKind.JOB_CREATED, EventKind.JOB_CANCELLED, EventKind.IMAGE_STATUS, EventKind.PROJECT_DELETED)


@dataclass(eq=False)
class _Wave:
    """Images of one job on the cluster together; ``deleted`` holds indices of those deleted meanwhile."""

    tasks: list[ClaimedTask]
    cluster_job: SegmentationJob | None = None
    deleted: set[int] = field(default_factory=set)

    async def forget(self, gone: Callable[[ClaimedTask], bool]) -> None:
        """Take the images ``gone`` says were deleted off the cluster."""
        self.deleted |= {index for index, task in enumerate(self.tasks) if gone(task)}
        await self.sync()

    async def sync(self) -> None:
        """Cancel the deleted images on the cluster, once the wave is there (again: no harm)."""
        if self.deleted and self.cluster_job is not None:
            await self.cluster_job.cancel_images(sorted(self.deleted))


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        store: BlobStore,
        bus: EventBus,
        cluster: ClusterHandle,
    ) -> None:
        self.settings = settings
        self.db: async_sessionmaker[AsyncSession] = async_sessionmaker(engine, expire_on_commit=False)
        self.store = store
        self.bus = bus
        self.cluster = cluster
        self.leadership = open_leadership(engine)
        self.leading = False
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._waves: dict[int, set[asyncio.Task[None]]] = defaultdict(set)
        self._cluster_jobs: dict[int, set[SegmentationJob]] = defaultdict(set)
        self._on_cluster: set[_Wave] = set()
        self._in_flight = 0
        self._paused_until = 0.0
        self.finished: collections.Counter[str] = collections.Counter()
        """Tasks this dispatcher ended, by outcome (done, failed), for /metrics."""
        self.dropped: collections.Counter[str] = collections.Counter()
        """Results that changed nothing, by reason: ``deleted`` (the task is gone with its image or
        project) or ``stale`` (the task was cancelled, or its result stored already), for /metrics."""

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="spheroseg-dispatcher")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop dispatching; running waves are abandoned (their tasks are requeued by the next leader)."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self._abandon_waves()
        await self.leadership.release()
        self.leading = False

    async def cancel(self, job_id: int) -> None:
        """Stop the cluster work of a job just cancelled in the database (its results would be ignored)."""
        for cluster_job in list(self._cluster_jobs.get(job_id, ())):
            with contextlib.suppress(Exception):
                await cluster_job.cancel()
        for wave in list(self._waves.get(job_id, ())):
            wave.cancel()

    async def forget_images(self, image_ids: Sequence[int] = (), project_id: int | None = None) -> None:
        """Take images just deleted (or all of a deleted project's) off the cluster."""
        gone = set(image_ids)
        for wave in list(self._on_cluster):
            await wave.forget(lambda task: task.image_id in gone or task.project_id == project_id)

    # -- the loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        poll = self.settings.dispatch_poll_seconds
        while True:
            try:
                if await self.leadership.acquire():
                    await self._lead()
                await asyncio.sleep(poll)
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any one failure; the next round starts afresh
                log.exception("dispatcher failed; retrying in %.0f s", RETRY_PAUSE)
                await self._abandon_waves()
                await asyncio.sleep(RETRY_PAUSE)

    async def _lead(self) -> None:
        self.leading = True
        async with self.db.begin() as db:
            requeued = await jobs.requeue_running(db)
        if requeued:
            log.info("put %d task(s) left running by the previous dispatcher back in the queue", requeued)
        subscription = self.bus.subscribe(kinds=WATCHED)
        watcher = asyncio.create_task(self._watch(subscription))
        try:
            while await self.leadership.holds():
                await self._fill()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.dispatch_poll_seconds)
        finally:
            watcher.cancel()
            subscription.close()
            self.leading = False
        log.warning("no longer leading: abandoning %d image(s) in flight", self._in_flight)
        await self._abandon_waves()

    async def _watch(self, subscription: Subscription) -> None:
        async for event in subscription:
            if event.kind is EventKind.JOB_CANCELLED and event.job_id is not None:
                await self.cancel(event.job_id)
            elif event.kind is EventKind.IMAGE_STATUS:
                if event.data.get("deleted"):
                    await self.forget_images(event.image_ids)
                continue  # nothing new to dispatch
            elif event.kind is EventKind.PROJECT_DELETED:
                await self.forget_images(project_id=event.project_id)
            self.wake()

    async def _fill(self) -> None:
        """Claim and submit waves until the in-flight limit is reached or nothing waits."""
        limit, wave_size = self.settings.dispatch_max_in_flight, self.settings.dispatch_wave_size
        while time.monotonic() >= self._paused_until and limit - self._in_flight > 0:
            async with self.db.begin() as db:
                claimed = await jobs.claim_tasks(db, min(wave_size, limit - self._in_flight))
                # each claim just settled its job in this session: read from it, not from the database again
                touched = [await db.get(Job, job_id) for job_id in sorted({task.job_id for task in claimed})]
            if not claimed:
                return
            await self._publish([progress_event(job) for job in touched if job is not None])
            for job_id, wave in _by_job(claimed).items():
                self._in_flight += len(wave)
                task = asyncio.create_task(self._run_wave(job_id, wave), name=f"job-{job_id}-wave")
                self._waves[job_id].add(task)
                task.add_done_callback(self._waves[job_id].discard)

    # -- one wave ---------------------------------------------------------------------------------------

    async def _run_wave(self, job_id: int, wave: list[ClaimedTask]) -> None:
        pending = {task.task_id: task for task in wave}
        on_cluster = _Wave(wave)
        self._on_cluster.add(on_cluster)
        try:
            client = await self.cluster.client()
            references = [await self._reference(task) for task in wave]
            first = wave[0]
            request = SegmentationRequest(
                segmenter=SegmenterSpec.of(first.method, **first.parameters),
                settings=ReadSettings(
                    max_pixels=self.settings.max_pixels, max_decoded_bytes=self.settings.max_decoded_bytes
                ),
            )
            cluster_job = await submit_images(client, references, request, names=[t.image_name for t in wave])
            self._cluster_jobs[job_id].add(cluster_job)
            on_cluster.cluster_job = cluster_job
            await on_cluster.sync()  # images deleted while the wave was being submitted
            try:
                async with cluster_job:
                    async for result in cluster_job:
                        task = wave[result.index]
                        pending.pop(task.task_id, None)
                        await self._record(task, result.outcome)
            finally:
                self._cluster_jobs[job_id].discard(cluster_job)
        except asyncio.CancelledError:
            # a cancelled job (its tasks are cancelled already) or a stop (the next leader requeues them)
            pending.clear()
            raise
        except NoCapableWorkerError as error:
            for task in list(pending.values()):
                pending.pop(task.task_id)
                await self._record(task, ImageOutcome(task.image_name, None, str(error)))
        except Exception as error:  # cluster unreachable, scheduler gone: the images are not at fault
            log.warning("wave of job %d failed (%s); its images go back in the queue", job_id, error)
            self._paused_until = time.monotonic() + RETRY_PAUSE
            await self._report(job_id, f"{error}; the images wait in the queue and are tried again")
        finally:
            self._on_cluster.discard(on_cluster)
            self._in_flight -= len(wave)
            if pending:
                await self._requeue(list(pending.values()))
            self.wake()

    async def _reference(self, task: ClaimedTask) -> str:
        """Where a worker reads the image (the store says how: a path, an ``s3://`` key or a URL)."""
        return await self.store.worker_reference(image_key(task.content_hash), self.settings.presign_seconds)

    async def _record(self, task: ClaimedTask, outcome: ImageOutcome) -> None:
        for attempt in range(3):
            try:
                async with self.db.begin() as db:
                    if outcome.segmentation is not None:
                        stored = await jobs.store_result(db, task, outcome.segmentation) is not None
                    else:
                        reason = outcome.error or "no segmentation and no reason given"
                        stored = await jobs.change_task(
                            db, task.task_id, TaskStatus.RUNNING, TaskStatus.FAILED, error=reason
                        )
                    job = await db.get(Job, task.job_id)
                break
            except VersionConflictError:  # a person saved this image at this instant: store on top of it
                if attempt == 2:
                    raise
        if not stored or job is None:  # cancelled, deleted or already stored: nothing changed
            self.dropped["deleted" if await self._is_gone(task) else "stale"] += 1
            return
        self.finished["done" if outcome.segmentation is not None else "failed"] += 1
        kind = EventKind.TASK_FINISHED if outcome.segmentation is not None else EventKind.TASK_FAILED
        data = {"imageName": task.image_name, "error": outcome.error} if outcome.error else {}
        events = [Event(kind, task.project_id, job_id=task.job_id, image_ids=(task.image_id,), data=data)]
        events.append(progress_event(job, last_image_name=task.image_name))
        if job.status in (JobStatus.DONE.value, JobStatus.CANCELLED.value):
            events.append(progress_event(job, EventKind.JOB_FINISHED, last_image_name=task.image_name))
        await self._publish(events)

    async def _is_gone(self, task: ClaimedTask) -> bool:
        async with self.db() as db:
            return await db.scalar(select(Task.id).where(Task.id == task.task_id)) is None

    async def _report(self, job_id: int, problem: str) -> None:
        """Tell the job's watchers why it is not moving (kept on the job until a task ends)."""
        with contextlib.suppress(Exception):  # the database may be what is failing; the log has it
            async with self.db.begin() as db:
                await jobs.report_problem(db, job_id, problem)
                job = await db.get(Job, job_id, populate_existing=True)
            if job is not None:
                await self._publish([progress_event(job)])

    async def _requeue(self, tasks: Sequence[ClaimedTask]) -> None:
        with contextlib.suppress(Exception):  # if even this fails, the next leader requeues them
            async with self.db.begin() as db:
                for task in tasks:
                    await jobs.change_task(db, task.task_id, TaskStatus.RUNNING, TaskStatus.QUEUED)

    async def _abandon_waves(self) -> None:
        waves = [wave for group in self._waves.values() for wave in group]
        for wave in waves:
            wave.cancel()
        await asyncio.gather(*waves, return_exceptions=True)
        self._waves.clear()

    async def _publish(self, events: Sequence[Event]) -> None:
        for event in events:
            try:
                await self.bus.publish(event)
            except EventBusError as error:  # the database holds the truth; watchers refetch it
                log.warning("event not published: %s", error)


def _by_job(tasks: Sequence[ClaimedTask]) -> dict[int, list[ClaimedTask]]:
    grouped: dict[int, list[ClaimedTask]] = defaultdict(list)
    for task in tasks:
        grouped[task.job_id].append(task)
    return grouped
