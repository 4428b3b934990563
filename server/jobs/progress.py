"""What a job looks like to the people watching it: the progress snapshot events and the API share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from server.db.models import Job
from server.domain.jobs import JobCounts
from server.events import Event, EventKind

__all__ = ["JobSnapshot", "progress_event"]


@dataclass(frozen=True)
class JobSnapshot:
    job_id: int
    project_id: int
    status: str
    total: int
    done: int
    failed: int
    cancelled: int
    last_image_id: int | None
    images_per_second: float
    last_image_name: str | None = None
    """Sent with the dispatcher's events (the name is at hand there); read from the database otherwise."""
    problem: str | None = None

    @property
    def counts(self) -> JobCounts:
        return JobCounts(self.total, self.done, self.failed, self.cancelled)

    @property
    def percentage(self) -> float:
        return self.counts.percentage

    @classmethod
    def of(cls, job: Job, now: dt.datetime | None = None, last_image_name: str | None = None) -> JobSnapshot:
        return cls(
            job.id,
            job.project_id,
            job.status,
            job.total,
            job.done,
            job.failed,
            job.cancelled,
            job.last_image_id,
            images_per_second(job, now),
            last_image_name,
            job.problem,
        )

    def data(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "lastImageId": self.last_image_id,
            "lastImageName": self.last_image_name,
            "imagesPerSecond": self.images_per_second,
            "problem": self.problem,
        }

    @classmethod
    def from_event(cls, event: Event) -> JobSnapshot:
        data = event.data
        return cls(
            event.job_id or 0,
            event.project_id,
            str(data["status"]),
            int(data["total"]),
            int(data["done"]),
            int(data["failed"]),
            int(data.get("cancelled", 0)),
            data.get("lastImageId"),
            float(data.get("imagesPerSecond", 0.0)),
            data.get("lastImageName"),
            data.get("problem"),
        )


def images_per_second(job: Job, now: dt.datetime | None = None) -> float:
    """Images finished (stored or failed) per second since the job's first image started."""
    if job.started_at is None:
        return 0.0
    end = job.finished_at or now or dt.datetime.now(dt.UTC)
    started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=dt.UTC)
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    seconds = (end - started).total_seconds()
    return (job.done + job.failed) / seconds if seconds > 0 else 0.0


def progress_event(
    job: Job,
    kind: EventKind = EventKind.JOB_PROGRESS,
    actor: str | None = None,
    last_image_name: str | None = None,
) -> Event:
    snapshot = JobSnapshot.of(job, last_image_name=last_image_name)
    return Event(kind, job.project_id, job_id=job.id, actor=actor, data=snapshot.data())
