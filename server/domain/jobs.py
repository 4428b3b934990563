"""The one state machine of segmentation jobs: job, task (one per image) and image status move together.

A task is ``queued`` until the dispatcher hands it to the cluster (``running``), then ends ``done`` (its
segmentation stored), ``failed`` (with the reason) or ``cancelled``. A ``running`` task goes back to
``queued`` only when the dispatcher that ran it is gone (server restart, another replica taking over).
Every change of a task is a :class:`TaskChange` made here, which also says what the image's
``segmentation_status`` becomes and how the job's counters move; the database layer applies all three in
one transaction, and only if the task is still in the state the change starts from (compare and set), so
a result arriving twice, late, or for a cancelled job changes nothing.

A job is ``queued`` until one of its tasks runs, ``running`` until every task has ended, then ``done``
(some images may have failed: ``failed`` counts them) or ``cancelled``.

A job of kind ``export`` (:class:`JobKind`) has no tasks: it writes a zip of the selected images'
current segmentations in the server (``server.services.exports``). It is ``queued``, ``running`` while
``done`` counts the images gathered, then ``done`` (the zip is stored), ``failed`` (``problem`` says why)
or ``cancelled``. Only an export job fails as a whole; a segmentation job counts its failed images.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from server.domain.errors import JobStateError
from server.domain.review import SegmentationStatus

__all__ = [
    "MAX_IMAGES_PER_JOB",
    "JobCounts",
    "JobKind",
    "JobStatus",
    "TaskChange",
    "TaskStatus",
    "job_status",
    "task_change",
]

MAX_IMAGES_PER_JOB = 100_000


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED})


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"
    """An export job that could not finish (never a segmentation job: see the module docstring)."""

    @property
    def ended(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.FAILED)


class JobKind(enum.StrEnum):
    SEGMENT = "segment"
    """Segment images on the cluster, a task per image."""
    EXPORT = "export"
    """Write a zip of images' current segmentations (no tasks, no cluster)."""


_ALLOWED: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUEUED}
    ),
    TaskStatus.DONE: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


@dataclass(frozen=True)
class TaskChange:
    """A task going from ``before`` to ``after``, and what that means for its image and its job."""

    before: TaskStatus
    after: TaskStatus
    image_status: SegmentationStatus
    done: int = 0
    failed: int = 0
    cancelled: int = 0


def task_change(before: TaskStatus, after: TaskStatus, image_has_segmentation: bool) -> TaskChange:
    """The change of one task; :class:`JobStateError` when the state machine has no such step.

    A cancelled task gives its image back the status it had before the job: ``done`` when the image
    has a segmentation (an earlier one, kept), else ``none``.
    """
    if after not in _ALLOWED[before]:
        raise JobStateError(f"a {before.value} task cannot become {after.value}")
    image_status = {
        TaskStatus.QUEUED: SegmentationStatus.QUEUED,
        TaskStatus.RUNNING: SegmentationStatus.RUNNING,
        TaskStatus.DONE: SegmentationStatus.DONE,
        TaskStatus.FAILED: SegmentationStatus.FAILED,
        TaskStatus.CANCELLED: SegmentationStatus.DONE if image_has_segmentation else SegmentationStatus.NONE,
    }[after]
    return TaskChange(
        before,
        after,
        image_status,
        done=int(after is TaskStatus.DONE),
        failed=int(after is TaskStatus.FAILED),
        cancelled=int(after is TaskStatus.CANCELLED),
    )


@dataclass(frozen=True)
class JobCounts:
    total: int
    done: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def finished(self) -> int:
        """Tasks that ended, whichever way."""
        return self.done + self.failed + self.cancelled

    @property
    def percentage(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


def job_status(counts: JobCounts, started: bool, cancelled: bool) -> JobStatus:
    """A job's status from its counters: the only place it is decided."""
    if cancelled:
        return JobStatus.CANCELLED
    if counts.finished >= counts.total:
        return JobStatus.DONE
    return JobStatus.RUNNING if started else JobStatus.QUEUED
