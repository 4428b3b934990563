"""Segmenting many images on a Dask cluster: the one client API behind ``spheroseg segment``, the server's
job dispatcher and the workbench.

::

    async with await submit_images(client, ["s3://lab/a.tif", "/shared/b.png"], request) as job:
        async for result in job:               # ImageResult, as each image completes
            store(result.index, result.outcome)

What it guarantees:

- **One result per image**, in completion order, each exactly once, whatever happens to workers: a task
  that reruns after a worker died is delivered once, and results are deduplicated by image index.
- **Batching.** Images per task come from the capable workers' devices (:mod:`cluster.batching`); the job
  keeps ``tasks_per_worker`` tasks per capable worker submitted and submits the rest as they finish, so a
  dying worker takes little work with it and cancelling is cheap.
- **Transient errors** (a task that raised) are retried ``retries`` times; per-image problems (an unreadable
  file) are that image's outcome and never retried.
- **Worker deaths.** The scheduler reruns the tasks of a worker that died. When a task has been on workers
  that died ``worker_deaths`` times (Dask's KilledWorker), its images are run again one at a time, alone
  on the cluster, because every task a dying worker held is suspected, not only the culprit; an image that
  kills its workers again fails with "worker died 3 times on this image; likely out of memory".
- **Work no worker can run** (GPU tasks, no GPU worker) raises :class:`NoCapableWorkerError` within
  ``no_worker_timeout`` seconds instead of waiting forever; a cluster whose workers all went away gets
  ``empty_cluster_timeout`` to bring some back.
- **Cancellation**: :meth:`SegmentationJob.cancel`, leaving the ``async with`` block, or cancelling the
  task that iterates, releases every outstanding task. :meth:`SegmentationJob.cancel_images` gives up some
  images only (deleted meanwhile): they are never submitted, a task holding only such images is released,
  and no result is delivered for them; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from distributed import Client, Future, KilledWorker, as_completed
from distributed.client import FutureCancelledError

from cluster.batching import BatchPolicy, chunks
from cluster.capacity import (
    capable_devices,
    capable_workers,
    describe_no_worker,
    ensure_plugin,
    in_flight_limit,
)
from cluster.exceptions import NoCapableWorkerError
from cluster.launch.gpus import GPU_RESOURCE
from cluster.pipeline import ImageOutcome
from cluster.sources import display_name
from cluster.worker import ReadSettings, SegmenterSpec, segment_batch

__all__ = [
    "ImageResult",
    "JobProgress",
    "ProgressCallback",
    "SegmentationJob",
    "SegmentationRequest",
    "as_reference",
    "segment_references",
    "submit_images",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[["JobProgress"], None]


@dataclass(frozen=True)
class SegmentationRequest:
    """How to segment a job's images."""

    segmenter: SegmenterSpec = field(default_factory=SegmenterSpec)
    settings: ReadSettings = field(default_factory=ReadSettings)
    gpu: bool = False
    """Run only on workers that offer the ``GPU`` resource."""
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    batch_size: int | None = None
    """Images per task; ``None`` lets :attr:`policy` choose from the workers' devices."""
    retries: int = 2
    """Re-runs of a task that raised an exception (not a worker death: see the module docstring)."""
    no_worker_timeout: float = 5.0
    """Seconds a job waits for a worker able to run its tasks (e.g. a GPU worker) when it has seen none,
    before it fails with NoCapableWorkerError."""
    empty_cluster_timeout: float = 120.0
    """Seconds a job waits when the capable workers it had are gone (restarting, jobs still queued)."""
    tasks_per_worker: int | None = None
    """Tasks kept submitted per capable worker; the job submits the rest as these finish. Default: 4, or 2
    for GPU tasks, which the scheduler hands to workers at once (it holds other tasks back itself), so
    fewer are lost with a GPU worker that dies."""
    gather_timeout: float = 5.0
    """Seconds to fetch a finished task's result before waiting for it to be computed again."""
    poll_interval: float = 0.5


@dataclass(frozen=True)
class ImageResult:
    """The outcome of one image of a job; ``index`` is its position in the submitted list."""

    index: int
    reference: str
    outcome: ImageOutcome


@dataclass(frozen=True)
class JobProgress:
    """How far a job is: results handed out so far (``done``, of which ``failed``) of ``total``."""

    total: int
    done: int
    failed: int
    elapsed: float

    @property
    def images_per_second(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


def as_reference(source: str | Path) -> str:
    """A reference a worker can open: URLs and ``s3://`` keys as they are, local paths made absolute."""
    text = str(source)
    if "://" in text:
        return text
    return str(Path(text).resolve())


def killed_reason(deaths: int) -> str:
    return (
        f"worker died {deaths} times on this image; likely out of memory "
        "(or the segmenter crashed the process)"
    )


@dataclass
class _Task:
    future: Future[Any]
    indices: list[int]
    isolated: bool


class SegmentationJob:
    """Images submitted to a cluster; iterate it for results as they complete."""

    def __init__(
        self,
        client: Client,
        sources: Sequence[str | Path],
        request: SegmentationRequest,
        progress: ProgressCallback | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        self.client = client
        self.request = request
        self.references = [as_reference(source) for source in sources]
        self.names = list(names) if names is not None else [display_name(str(s)) for s in sources]
        self.progress_callback = progress
        self.batch_size = 1
        self.cancelled = False
        self._id = uuid.uuid4().hex[:12]
        self._counter = 0
        self._window = 1
        self._pending: deque[list[int]] = deque()
        self._isolation: deque[int] = deque()
        self._outstanding: dict[str, _Task] = {}
        self._delivered: set[int] = set()
        self._cancelled: set[int] = set()
        self._done = 0
        self._failed = 0
        self._started = time.monotonic()
        self._queue: asyncio.Queue[ImageResult | BaseException | None] = asyncio.Queue()
        self._completed: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def total(self) -> int:
        return len(self.references)

    @property
    def _per_worker(self) -> int:
        return self.request.tasks_per_worker or (2 if self.request.gpu else 4)

    @property
    def progress(self) -> JobProgress:
        elapsed = time.monotonic() - self._started
        return JobProgress(self.total, self._done, self._failed, elapsed)

    async def start(self) -> SegmentationJob:
        """Load the segmenter on the workers, choose the batch size and start submitting."""
        self._started = time.monotonic()
        await ensure_plugin(self.client, self.request.segmenter)
        devices = await capable_devices(self.client, self.request.segmenter, self.request.gpu)
        self.batch_size = self.request.batch_size or self.request.policy.batch_size(self.total, devices)
        self._window = in_flight_limit(len(devices), self._per_worker)
        self._pending.extend(chunks(range(self.total), self.batch_size))
        self._completed = as_completed([], loop=self.client.loop)  # type: ignore[no-untyped-call]
        self._fill()
        if self.total == 0:
            self._queue.put_nowait(None)
        else:
            self._tasks = [asyncio.ensure_future(self._collect()), asyncio.ensure_future(self._watch())]
        return self

    def __aiter__(self) -> AsyncIterator[ImageResult]:
        return self._results()

    async def __aenter__(self) -> SegmentationJob:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._release()

    async def cancel(self) -> None:
        """Stop the job: outstanding tasks are cancelled and iteration ends after what was delivered."""
        self.cancelled = True
        await self._release()
        self._queue.put_nowait(None)

    async def cancel_images(self, indices: Sequence[int]) -> None:
        """Give up the images at ``indices``: once this returns, no result of theirs is yielded, even one
        that had already arrived. A task that also holds other images runs on (its results for these are
        dropped), since Dask cannot take one image out of a running task."""
        self._cancelled.update(indices)
        dropped = set(indices) - self._delivered
        self._delivered |= dropped  # so a result still arriving for one is not delivered (see _emit)
        self._pending = deque(
            kept for chunk in self._pending if (kept := [i for i in chunk if i not in dropped])
        )
        self._isolation = deque(i for i in self._isolation if i not in dropped)
        given_up = {
            key: task for key, task in self._outstanding.items() if set(task.indices) <= self._delivered
        }
        for key in given_up:
            del self._outstanding[key]
        futures = [task.future for task in given_up.values()]
        if futures and self.client.status == "running":
            with contextlib.suppress(Exception):
                await self.client.cancel(futures)  # type: ignore[no-untyped-call]
        self._fill()

    async def _results(self) -> AsyncIterator[ImageResult]:
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if item.index in self._cancelled:
                    continue  # arrived before the images were given up, not yet taken by the caller
                self._done += 1
                self._failed += not item.outcome.ok
                if self.progress_callback is not None:
                    self.progress_callback(self.progress)
                yield item
        finally:
            await self._release()

    def _fill(self) -> None:
        """Submit batches up to the in-flight limit, and the next image held for a run on its own."""
        isolated = sum(task.isolated for task in self._outstanding.values())
        while self._pending and len(self._outstanding) - isolated < self._window:
            self._submit(self._pending.popleft(), isolated=False)
        if self._isolation and not isolated:
            self._submit([self._isolation.popleft()], isolated=True)

    def _submit(self, indices: list[int], isolated: bool) -> None:
        self._counter += 1
        entries = [(i, self.references[i], self.names[i]) for i in indices]
        future = self.client.submit(
            segment_batch,
            entries,
            self.request.segmenter,
            self.request.settings,
            key=f"spheroseg-segment-{self._id}-{self._counter}",
            resources={GPU_RESOURCE: 1} if self.request.gpu else None,
            retries=self.request.retries,
            pure=False,
        )
        self._track(_Task(future, indices, isolated))

    def _track(self, task: _Task) -> None:
        self._outstanding[str(task.future.key)] = task
        self._completed.add(task.future)

    async def _collect(self) -> None:
        """Fetch each finished task's results while the next task is already submitted in its place."""
        settling: set[asyncio.Task[None]] = set()
        try:
            while self._outstanding or self._pending or self._isolation or settling:
                async for future in self._completed:
                    task = self._outstanding.pop(str(future.key), None)
                    if task is not None:
                        fetch = asyncio.ensure_future(self._settle(task))
                        settling.add(fetch)
                        fetch.add_done_callback(settling.discard)
                    self._fill()
                if settling:  # they may hand images back (isolation) or re-track a lost result
                    await asyncio.gather(*settling)
                    self._fill()
        except Exception as exc:  # the job, not one image, is broken: the iterator raises it
            log.exception("collecting results failed")
            self._queue.put_nowait(exc)
            return
        finally:
            for fetch in settling:
                fetch.cancel()
        self._queue.put_nowait(None)

    async def _settle(self, task: _Task) -> None:
        try:
            pairs = await asyncio.wait_for(_gather(task.future), self.request.gather_timeout)
        except TimeoutError:
            # Its result was lost with a worker before we fetched it, and is being computed again.
            self._track(task)
            return
        except FutureCancelledError:
            return
        except KilledWorker as error:
            self._killed(task, error)
            return
        except Exception as error:  # the task raised on every try: each of its images fails with why
            tries = self.request.retries + 1
            self._fail(task, f"could not be segmented after {tries} tries: {type(error).__name__}: {error}")
            return
        for index, outcome in pairs:
            self._emit(index, outcome)

    def _killed(self, task: _Task, error: KilledWorker) -> None:
        if task.isolated:
            self._fail(task, killed_reason(error.allowed_failures + 1))
            return
        # Every task a dying worker held is suspected, not only the culprit: run each image alone.
        pending = [i for i in task.indices if i not in self._delivered]
        log.warning("workers died running images %s; running each on its own", pending)
        self._isolation.extend(pending)

    def _fail(self, task: _Task, reason: str) -> None:
        for index in task.indices:
            self._emit(index, ImageOutcome(self.names[index], None, f"{self.names[index]}: {reason}"))

    def _emit(self, index: int, outcome: ImageOutcome) -> None:
        if index in self._delivered:  # a rerun's second answer: exactly one result per image
            return
        self._delivered.add(index)
        self._queue.put_nowait(ImageResult(index, self.references[index], outcome))

    async def _watch(self) -> None:
        """Follow the capable workers (the in-flight limit grows and shrinks with them), and fail the job
        when none can run its tasks: at once if there never was one (GPU tasks, no GPU worker), after
        ``empty_cluster_timeout`` if they went away (restarting, or SLURM jobs still queued)."""
        seen_capable = False
        without_since: float | None = None
        while self._outstanding or self._pending or self._isolation:
            await asyncio.sleep(self.request.poll_interval)
            try:
                capable, _ = await capable_workers(self.client, self.request.gpu)
            except (OSError, TimeoutError) as exc:  # the scheduler is gone: the job cannot go on
                self._queue.put_nowait(exc)
                return
            self._window = in_flight_limit(capable, self._per_worker)
            self._fill()
            if capable:
                seen_capable, without_since = True, None
                continue
            without_since = without_since or time.monotonic()
            limit = self.request.empty_cluster_timeout if seen_capable else self.request.no_worker_timeout
            if time.monotonic() - without_since >= limit:
                waiting = len(self._outstanding) + len(self._pending) + len(self._isolation)
                message = await describe_no_worker(self.client, self.request.gpu, waiting)
                self._queue.put_nowait(NoCapableWorkerError(message))
                return

    async def _release(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._pending.clear()
        self._isolation.clear()
        futures = [task.future for task in self._outstanding.values()]
        self._outstanding.clear()
        if futures and self.client.status == "running":
            with contextlib.suppress(Exception):
                await self.client.cancel(futures)  # type: ignore[no-untyped-call]


async def _gather(future: Future[Any]) -> list[tuple[int, ImageOutcome]]:
    pairs: list[tuple[int, ImageOutcome]] = await future
    return pairs


async def submit_images(
    client: Client,
    sources: Sequence[str | Path],
    request: SegmentationRequest | None = None,
    progress: ProgressCallback | None = None,
    names: Sequence[str] | None = None,
) -> SegmentationJob:
    """Submit ``sources`` (paths, ``s3://`` keys, URLs) and return the running job.

    ``names`` are the image names results carry (default: the references as given, URLs without
    their query strings).
    """
    job = SegmentationJob(client, sources, request or SegmentationRequest(), progress, names)
    return await job.start()


async def segment_references(
    client: Client,
    sources: Sequence[str | Path],
    request: SegmentationRequest | None = None,
    progress: ProgressCallback | None = None,
    names: Sequence[str] | None = None,
) -> list[ImageResult]:
    """Segment ``sources`` and return every result, ordered by index."""
    async with await submit_images(client, sources, request, progress, names) as job:
        results = [result async for result in job]
    return sorted(results, key=lambda result: result.index)
