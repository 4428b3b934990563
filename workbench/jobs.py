"""Segmenting from the desktop, without Qt: start a job, follow it live, cancel it.

:func:`start_segmentation` asks for a job over the chosen images (ids, or a filter, or all) with a method
and its parameters; a refusal (an unknown method, a parameter out of range) is an
:class:`~workbench.api.ApiError` naming the field. :func:`follow_job` streams the job's progress from the
``jobProgress`` subscription to ``on_state`` until the job ends: counts, images per second, the time left,
the last image's name and the ``problem`` when the cluster cannot be reached. After a lost connection the
subscription resumes by itself (:class:`~workbench.api.Resumed`) and the job is read once, so a progress
bar never shows what was missed as still to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import ApiError, LabClient, LiveChannel, RateLimitedError, Resumed

__all__ = [
    "Failure",
    "JobDetail",
    "JobState",
    "cancel_job",
    "count_images",
    "follow_job",
    "job_detail",
    "lost_line",
    "progress_line",
    "retry_failed",
    "start_segmentation",
]

ENDED = frozenset({"DONE", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class JobState:
    job_id: int
    status: str
    total: int
    done: int
    failed: int
    cancelled: int
    percentage: float
    images_per_second: float
    problem: str | None = None
    last_image_name: str | None = None

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> JobState:
        return cls(
            job.get("jobId", job.get("id", 0)),
            job["status"],
            job["total"],
            job["done"],
            job["failed"],
            job["cancelled"],
            job["percentage"],
            job["imagesPerSecond"],
            job.get("problem"),
            job.get("lastImageName"),
        )

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def seconds_left(self) -> float | None:
        """At the present speed; ``None`` before the first image (or when nothing is moving)."""
        left = self.total - self.done - self.failed - self.cancelled
        if self.ended or left <= 0:
            return 0.0
        return left / self.images_per_second if self.images_per_second > 0 else None


async def start_segmentation(
    client: LabClient,
    project_id: int | None,
    *,
    method: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    image_ids: Sequence[int] | None = None,
    image_filter: Mapping[str, Any] | None = None,
) -> int:
    """Start segmenting the project's images (``image_ids``, else those matching ``image_filter``, else
    all); the job's id."""
    request: dict[str, Any] = {"projectId": project_id, "method": method, "parameters": parameters}
    if image_ids is not None:
        request["imageIds"] = list(image_ids)
    elif image_filter is not None:
        request["filter"] = dict(image_filter)
    answer = (await client.call("SegmentImages", input=request))["segmentImages"]
    if answer["__typename"] == "RateLimited":
        raise RateLimitedError(answer["message"], "RATE_LIMITED", answer)
    if answer["__typename"] != "JobStarted":
        raise ApiError(f"{answer['field']}: {answer['message']}", "BAD_USER_INPUT", answer)
    job_id: int = answer["job"]["id"]
    return job_id


async def follow_job(
    client: LabClient, channel: LiveChannel, job_id: int, on_state: Callable[[JobState], None]
) -> JobState:
    """Tell ``on_state`` every change of the job until it ends; its last state."""
    state: JobState | None = None
    async for event in channel.subscribe("JobProgress", jobId=job_id):
        if isinstance(event, Resumed):  # events were lost while the connection was down
            state = JobState.of((await client.call("JobNow", id=job_id))["job"])
        else:
            state = JobState.of(event["jobProgress"])
        on_state(state)
        if state.ended:
            return state
    if state is None or not state.ended:  # the server closed the subscription: read the end once
        state = JobState.of((await client.call("JobNow", id=job_id))["job"])
        on_state(state)
    return state


async def cancel_job(client: LabClient, job_id: int) -> None:
    answer = (await client.call("CancelJob", id=job_id))["cancelJob"]
    if answer["__typename"] == "InputError":
        raise ApiError(answer["message"], "BAD_USER_INPUT", answer)


@dataclass(frozen=True)
class Failure:
    image_id: int
    image_name: str
    reason: str


@dataclass(frozen=True)
class JobDetail:
    """A job as the job view needs it beyond its counters: what it runs, and its failures."""

    job_id: int
    project_id: int
    kind: str
    method: str
    parameters: Mapping[str, Any]
    state: JobState
    failures: tuple[Failure, ...]


async def job_detail(client: LabClient, job_id: int) -> JobDetail:
    job = (await client.call("JobDetail", id=job_id))["job"]
    failures = tuple(Failure(f["imageId"], f["imageName"], f["reason"]) for f in job["failures"])
    return JobDetail(
        job["id"],
        job["projectId"],
        job["kind"],
        job["method"],
        job["parameters"] or {},
        JobState.of(job),
        failures,
    )


async def retry_failed(client: LabClient, detail: JobDetail) -> int:
    """Start a job on exactly the images that failed in ``detail``, with its method and parameters."""
    if not detail.failures:
        raise ApiError("no image of this job failed", "BAD_USER_INPUT")
    return await start_segmentation(
        client,
        detail.project_id,
        method=detail.method,
        parameters=detail.parameters,
        image_ids=[failure.image_id for failure in detail.failures],
    )


async def count_images(client: LabClient, project_id: int, image_filter: Mapping[str, Any] | None) -> int:
    """How many of the project's images match ``image_filter`` (``None``: all of them)."""
    found = await client.call(
        "ImageCount", projectId=project_id, filter=None if image_filter is None else dict(image_filter)
    )
    count: int = found["project"]["images"]["totalCount"]
    return count


def progress_line(state: JobState) -> str:
    """The job in one line: "37 of 120 · 2.4 images/s · about 21 s left · last: well_B3.tif"."""
    if state.status == "QUEUED":
        parts = [f"queued: {state.total} images waiting for the cluster"]
    elif state.ended:  # "done: 2 of 3 images · 1 failed"
        parts = [f"{state.status.lower()}: {state.done} of {state.total} images"]
        parts += [
            f"{n} {what}" for n, what in ((state.failed, "failed"), (state.cancelled, "cancelled")) if n
        ]
    else:
        parts = [f"{state.done + state.failed} of {state.total}"]
        if state.failed:
            parts.append(f"{state.failed} failed")
        if state.images_per_second > 0:
            parts.append(f"{state.images_per_second:.1f} images/s")
        left = state.seconds_left
        parts.append("time left unknown" if left is None else f"about {_duration(left)} left")
    if state.last_image_name:
        parts.append(f"last: {state.last_image_name}")
    line = " · ".join(parts)
    return f"{line} — {state.problem}" if state.problem else line


def lost_line(state: JobState | None) -> str:
    """The job while the live connection is down: nothing is known until it is back, so no speed and
    no time left, only what was done when it was lost."""
    line = "connection lost — progress resumes when the server is back"
    if state is None or state.status == "QUEUED":
        return line
    return f"{line} ({state.done + state.failed} of {state.total} done when it was lost)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
