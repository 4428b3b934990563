"""Long work as tasks: progress reported, a failure turned into a notice with advice, cancel."""

from __future__ import annotations

import asyncio

import pytest

from workbench.api import ApiError, ServerUnreachableError
from workbench.tasks import Level, Notices, Task, Tasks, TaskState, notice_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_task_reports_progress_and_leaves_the_list_when_done() -> None:
    tasks = Tasks(Notices())
    seen: list[tuple[str, float | None]] = []
    tasks.changed.connect(lambda task: seen.append((task.state.value, task.fraction)))

    async def work(task: Task) -> None:
        task.report(0.5, "1 of 2")
        await asyncio.sleep(0)

    task = tasks.start("Importing 2 files", work)
    assert tasks.running == [task]
    await task.wait()
    assert task.state is TaskState.DONE
    assert tasks.running == []
    assert ("running", 0.5) in seen and seen[-1] == ("done", 1.0)


async def test_a_failed_task_becomes_a_notice_that_says_what_to_do() -> None:
    notices = Notices()
    tasks = Tasks(notices)

    async def work(task: Task) -> None:
        raise ServerUnreachableError("no answer from http://lab:8000")

    await tasks.start("Segmenting 3 images", work).wait()
    (notice,) = notices.items
    assert notice.level is Level.ERROR
    assert notice.title == "Segmenting 3 images failed: no answer from http://lab:8000"
    assert "connection" in notice.advice


async def test_cancel_stops_the_work_quietly() -> None:
    notices = Notices()
    tasks = Tasks(notices)
    task = tasks.start("Exporting", lambda task: asyncio.sleep(60))
    await asyncio.sleep(0)
    task.cancel()
    await task.wait()
    assert task.state is TaskState.CANCELLED
    assert notices.items == [] and tasks.running == []


async def test_a_task_cancelled_before_it_began_leaves_the_list() -> None:
    """Opening an image and leaving at once cancels its reading before it ran a step: the Activity dock
    must not show it running for ever, nor the window count it as work in progress when it closes."""
    tasks = Tasks(Notices())
    seen: list[str] = []
    tasks.changed.connect(lambda task: seen.append(task.state.value))
    task = tasks.start("Reading the measurements of a.png", lambda task: asyncio.sleep(60))
    task.cancel()  # no await in between: its work never started
    await task.wait()
    assert task.state is TaskState.CANCELLED
    assert tasks.running == [] and seen[-1] == "cancelled"


@pytest.mark.parametrize("code", ["FORBIDDEN", "HTTP_403", "HTTP_404"])
def test_a_project_gone_or_not_ones_own_points_to_the_list_or_to_a_role(code: str) -> None:
    notice = notice_of(ApiError("project 7 does not exist", code), "Importing 4 files")
    # the projects list follows the server's events, so there is nothing to reload by hand
    assert "projects list shows" in notice.advice and "owner" in notice.advice and "F5" not in notice.advice
