"""Long work as named, cancellable tasks with progress, and the notices the user is shown.

Qt-free models that the window observes, as napari's ``components`` are: plain objects that tell their
listeners when they change, so the views stay thin and these are tested without a window. Every piece of
long work (an import, a job followed live, an export) runs as a :class:`Task` on the one asyncio loop; the
task list holds a reference to each (a task nobody holds can vanish mid-run, and nobody could cancel it),
shows its progress and lets the user cancel it. A task that fails becomes a :class:`Notice` that says what
happened and what to do, and the window stays usable.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from workbench.api import ApiError, ForbiddenError, NotSignedInError, RateLimitedError, ServerUnreachableError
from workbench.offline import OfflineServerError

__all__ = ["Level", "Listeners", "Notice", "Notices", "Task", "TaskState", "Tasks", "notice_of"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Listeners(Generic[T]):
    """Callbacks told of each change; a failing listener is logged and does not stop the others."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[T], None]] = []

    def connect(self, callback: Callable[[T], None]) -> Callable[[], None]:
        """Call ``callback`` on each change; returns the function that disconnects it."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def emit(self, value: T) -> None:
        for callback in list(self._callbacks):
            try:
                callback(value)
            except Exception:
                logger.exception("a listener of %r failed", value)


class Level(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    """Something the user should read: what happened (``title``), and what to do about it (``advice``)."""

    level: Level
    title: str
    advice: str = ""
    details: str = ""
    """Longer text for a "details" fold: a server's last log lines, a traceback."""
    id: int = field(default_factory=itertools.count(1).__next__)


class Notices:
    """The notification area's contents, newest last."""

    def __init__(self, keep: int = 50) -> None:
        self.keep = keep
        self.items: list[Notice] = []
        self.changed: Listeners[list[Notice]] = Listeners()

    def add(self, notice: Notice) -> Notice:
        self.items = [*self.items, notice][-self.keep :]
        self.changed.emit(self.items)
        return notice

    def dismiss(self, notice: Notice) -> None:
        self.items = [item for item in self.items if item.id != notice.id]
        self.changed.emit(self.items)


REFUSED_CODES = frozenset({"FORBIDDEN", "HTTP_403", "HTTP_404"})
"""Codes of a refusal for something gone or not the user's, however the error was raised."""


def notice_of(error: BaseException, doing: str) -> Notice:
    """What the user reads when ``doing`` (a task's name: "Importing 12 files") failed with ``error``."""
    title = f"{doing} failed: {error}"
    if isinstance(error, ServerUnreachableError):
        return Notice(Level.ERROR, title, "Check the connection; the work goes on once the server answers.")
    if isinstance(error, NotSignedInError):
        return Notice(Level.ERROR, title, "Sign in again: the session ended.")
    if isinstance(error, ForbiddenError) or (isinstance(error, ApiError) and error.code in REFUSED_CODES):
        # the server answers "gone" and "not yours" alike (it never tells which projects exist)
        return Notice(
            Level.ERROR,
            title,
            "It may have been deleted or taken from you meanwhile (the projects list shows what you can open "
            "now), or it needs a role you do not have: ask the project's owner or a lab admin.",
        )
    if isinstance(error, RateLimitedError):
        return Notice(Level.WARNING, title, f"Try again in {error.retry_after:.0f} s.")
    if isinstance(error, OfflineServerError):
        return Notice(
            Level.ERROR,
            title,
            "Restart the offline server; its last log lines are below.",
            "\n".join(error.log_tail),
        )
    if isinstance(error, ApiError):
        return Notice(Level.ERROR, title, "Correct what the message names and try again.")
    return Notice(
        Level.ERROR, title, "This is a fault in the workbench; the log holds the details.", repr(error)
    )


class TaskState(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Task:
    """One piece of long work: a name the user reads, progress, and a way to stop it."""

    def __init__(self, name: str, on_change: Callable[[Task], None]) -> None:
        self.name = name
        self.fraction: float | None = None
        """Done so far, 0 to 1; ``None`` while it cannot be known (the view shows a busy bar)."""
        self.detail = ""
        self.state = TaskState.RUNNING
        self.error: BaseException | None = None
        self._on_change = on_change
        self._future: asyncio.Task[object] | None = None

    def report(self, fraction: float | None = None, detail: str | None = None) -> None:
        """Called by the work as it goes: ``fraction`` done (clamped to 0..1) and a line of ``detail``."""
        self.fraction = None if fraction is None else min(1.0, max(0.0, fraction))
        if detail is not None:
            self.detail = detail
        self._on_change(self)

    def cancel(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.cancel()

    async def wait(self) -> None:
        """Until the task ended, whichever way (its outcome is in ``state`` and ``error``)."""
        if self._future is not None:
            await asyncio.wait([self._future])


class Tasks:
    """Every running task, held so none is lost or left uncancellable; failures go to ``notices``."""

    def __init__(self, notices: Notices) -> None:
        self.notices = notices
        self.running: list[Task] = []
        self.changed: Listeners[Task] = Listeners()

    def start(self, name: str, work: Callable[[Task], Awaitable[object]]) -> Task:
        """Run ``work(task)`` on the loop as a task named ``name``; it reports through ``task``."""
        task = Task(name, self.changed.emit)
        self.running.append(task)
        task._future = asyncio.ensure_future(self._run(task, work))
        task._future.add_done_callback(lambda _: self._forget_unstarted(task))
        self.changed.emit(task)
        return task

    def _forget_unstarted(self, task: Task) -> None:
        """A task cancelled before its work began never reached :meth:`_run`'s handlers: without this it
        would be listed as running for ever (and counted when the window asks before closing)."""
        if task in self.running:
            task.state = TaskState.CANCELLED
            self.running.remove(task)
            self.changed.emit(task)

    def cancel_all(self) -> None:
        for task in list(self.running):
            task.cancel()

    async def _run(self, task: Task, work: Callable[[Task], Awaitable[object]]) -> object:
        try:
            result = await work(task)
        except asyncio.CancelledError:
            task.state = TaskState.CANCELLED
            return None
        except Exception as error:
            logger.exception("task %r failed", task.name)
            task.state, task.error = TaskState.FAILED, error
            self.notices.add(notice_of(error, task.name))
            return None
        else:
            task.state = TaskState.DONE
            if task.fraction is not None:
                task.fraction = 1.0
            return result
        finally:
            self.running.remove(task)
            self.changed.emit(task)
