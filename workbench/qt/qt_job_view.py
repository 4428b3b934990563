"""One job's live progress, embeddable in a dock or a dialog: a bar, "37 of 120 · 2.4 images/s · about
21 s left · last: well_B3.tif", the problem when the cluster cannot be reached, Cancel; at the end the
failed images with their reasons and "Retry failed", which starts a job on exactly those images.
While the live connection is down the view says the progress is unknown (the last count greyed, no time
left), until the channel is back and the job is read again.

The view follows the job as a task of the window's task list ("Segmenting 120 images"), so the task list
shows the same line and cancels the job too; closing the view leaves the task running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from workbench.api import ApiError, ChannelClosedError, ChannelState, ServerUnreachableError, StateChange
from workbench.jobs import (
    JobDetail,
    JobState,
    cancel_job,
    follow_job,
    job_detail,
    lost_line,
    progress_line,
    retry_failed,
)
from workbench.tasks import Task, Tasks
from workbench.workspace import Workspace

__all__ = ["NOT_FOLLOWED", "QtJobView", "task_name"]

NOT_FOLLOWED = "no longer followed here: the server restarted; the job goes on and the gallery shows it"


def task_name(kind: str, total: int) -> str:
    noun = "image" if total == 1 else "images"
    return f"{'Exporting' if kind == 'EXPORT' else 'Segmenting'} {total} {noun}"


class QtJobView(QWidget):
    """Follows job ``job_id`` from its creation; ``sig_progressed`` carries each :class:`JobState`."""

    sig_progressed = Signal(object)
    sig_ended = Signal(object)
    """The job's :class:`~workbench.jobs.JobDetail` at its end, failures included."""
    sig_retried = Signal(int)
    """A new job was started on the failed images (its id); the view follows it from then on."""

    def __init__(self, workspace: Workspace, tasks: Tasks, job_id: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace, self._tasks = workspace, tasks
        self.job_id = job_id
        self.state: JobState | None = None
        self.detail: JobDetail | None = None
        self.task: Task | None = None

        self.title = QLabel(f"Job {job_id}")
        self.title.setStyleSheet("font-weight: bold")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the first count arrives
        self.line = QLabel("Waiting for the server…")
        self.line.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b3261e")
        self.problem.hide()
        self.cancel_button = QPushButton("&Cancel job")
        self.failures = QTreeWidget()
        self.failures.setHeaderLabels(["Failed image", "Reason"])
        self.failures.setRootIsDecorated(False)
        self.failures.setWordWrap(True)
        self.failures.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.failures.header().sectionResized.connect(lambda *_: self._fit_reasons())
        self.failures.hide()
        self.retry_button = QPushButton("&Retry failed")
        self.retry_button.hide()

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.retry_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.bar)
        layout.addWidget(self.line)
        layout.addWidget(self.problem)
        layout.addWidget(self.failures, 3)
        layout.addStretch(1)  # the lines stay together at the top while there is no failure to list
        layout.addLayout(buttons)

        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.retry_button.clicked.connect(self._on_retry_clicked)
        self._follow(job_id)

    def _follow(self, job_id: int) -> None:
        self.job_id, self.state, self.detail = job_id, None, None
        self.failures.clear()
        self.failures.hide()
        self.retry_button.hide()
        self.cancel_button.setEnabled(True)
        self.bar.setRange(0, 0)
        self.task = self._tasks.start(f"Following job {job_id}", self._work)

    async def _work(self, task: Task) -> JobState:
        unfollow = self._workspace.live.add_state_listener(lambda change: self._on_live_changed(task, change))
        try:
            return await self._followed(task)
        finally:
            unfollow()

    async def _followed(self, task: Task) -> JobState:
        first = await job_detail(self._workspace.client, self.job_id)
        task.name = task_name(first.kind, first.state.total)
        self.title.setText(f"{task.name} · job {self.job_id} ({first.method})")
        self._on_job_state(task, first.state)
        try:
            final = await follow_job(
                self._workspace.client,
                self._workspace.live,
                self.job_id,
                lambda state: self._on_job_state(task, state),
            )
        except ChannelClosedError:  # the workspace closed under it (a restarted offline server)
            if isValid(self):
                known = self.state or first.state
                self.line.setText(f"{known.done + known.failed} of {known.total} done · {NOT_FOLLOWED}")
                self.cancel_button.setEnabled(False)
            return self.state or first.state
        except asyncio.CancelledError:  # the task list's Cancel: stop the job itself, not only the view
            with contextlib.suppress(ApiError, ServerUnreachableError):
                await asyncio.shield(cancel_job(self._workspace.client, self.job_id))
            if isValid(self):
                self.line.setText(f"{self.line.text()} · cancelled")
                self.cancel_button.setEnabled(False)
            raise
        if isValid(self):  # a view closed meanwhile leaves the task to end on its own
            self._ended(await job_detail(self._workspace.client, self.job_id))
        return final

    def _on_job_state(self, task: Task, state: JobState) -> None:
        self.state = state
        line = progress_line(state)
        task.report(state.percentage / 100, line)
        if not isValid(self):  # the view was closed; the task list still shows the job
            return
        self.bar.setEnabled(True)
        self.bar.setRange(0, max(1, state.total))
        self.bar.setValue(state.done + state.failed + state.cancelled)
        self.bar.setFormat(f"{state.percentage:.0f} %")
        own = progress_line(dataclasses.replace(state, problem=None))  # the problem has its own label
        self.line.setText(own[:1].upper() + own[1:])
        self.problem.setVisible(bool(state.problem))
        self.problem.setText(f"Not moving: {state.problem}" if state.problem else "")
        self.sig_progressed.emit(state)

    def _on_live_changed(self, task: Task, change: StateChange) -> None:
        """While the live connection is down nothing is known of the job: the last count and time left
        would read as current, so the line says so instead. Once connected again the subscription
        reads the job (``Resumed``) and :meth:`_on_job_state` shows it."""
        if change.state not in (ChannelState.RECONNECTING, ChannelState.SIGNED_OUT):
            return
        if self.state is not None and self.state.ended:
            return
        line = lost_line(self.state)
        task.report(task.fraction, line)
        if not isValid(self):
            return
        self.bar.setEnabled(False)  # the count is the last one known, greyed out
        self.bar.setFormat("progress unknown")
        self.line.setText(line[:1].upper() + line[1:])
        self.problem.hide()

    def _fit_reasons(self) -> None:
        """Make each failure's row as tall as its reason wrapped to the column's width: a tree view wraps
        text only within the height a row is given, and by itself gives every row one line."""
        width = max(self.failures.columnWidth(1) - 8, 40)  # less the cell's margins
        area = QRect(0, 0, width, 10_000)
        metrics = self.failures.fontMetrics()
        rows = (self.failures.topLevelItem(row) for row in range(self.failures.topLevelItemCount()))
        for item in filter(None, rows):
            height = metrics.boundingRect(area, Qt.TextFlag.TextWordWrap, item.text(1)).height()
            item.setSizeHint(1, QSize(width, height + 4))
        self.failures.doItemsLayout()

    def _ended(self, detail: JobDetail) -> None:
        self.detail = detail
        self.cancel_button.setEnabled(False)
        for failure in detail.failures:
            reason = failure.reason.removeprefix(f"{failure.image_name}: ")  # the name is in its own column
            item = QTreeWidgetItem([failure.image_name, reason])
            item.setToolTip(1, reason)
            self.failures.addTopLevelItem(item)
        self.failures.setVisible(bool(detail.failures))
        self._fit_reasons()
        self.retry_button.setVisible(bool(detail.failures) and detail.kind == "SEGMENT")
        self.sig_ended.emit(detail)

    def _on_cancel_clicked(self) -> None:
        """Cancel the job on the server; the view goes on until the job says it ended."""
        self.cancel_button.setEnabled(False)
        self.line.setText(f"{self.line.text()} · cancelling…")
        job_id = self.job_id
        self._tasks.start(f"Cancelling job {job_id}", lambda task: cancel_job(self._workspace.client, job_id))

    def _on_retry_clicked(self) -> None:
        detail = self.detail
        if detail is None or not detail.failures:
            return
        self.retry_button.setEnabled(False)

        async def retry(task: Task) -> None:
            try:
                job_id = await retry_failed(self._workspace.client, detail)
            finally:
                self.retry_button.setEnabled(True)
            self._follow(job_id)
            self.sig_retried.emit(job_id)

        count = len(detail.failures)
        self._tasks.start(f"Retrying {count} failed image{'s' if count != 1 else ''}", retry)
