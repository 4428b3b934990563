"""The cluster panel (a dock's content): is the cluster running, how big and how busy, and its controls.

A thin view over :class:`workbench.clusters.ClusterModel`, which follows ``clusterEvents`` and tells this
panel of each change. Start, stop and scale run as named tasks (the window's task list shows them; a
refusal becomes a notice). On the user's own server the panel also deploys a cluster on SSH hosts or
SLURM (:class:`~workbench.qt.qt_deploy_dialog.QtDeployDialog`) and goes back to this computer's cluster.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.clusters import ClusterModel, ClusterState, ClusterView, ClusterWorker
from workbench.deploy import DEPLOYED, use_scheduler
from workbench.qt.qt_deploy_dialog import QtDeployDialog
from workbench.tasks import Task, Tasks
from workbench.workspace import Mode, Workspace

__all__ = ["QtClusterPanel"]

_STATE_COLOURS = {
    ClusterState.RUNNING: "#2e7d32",
    ClusterState.STOPPED: "#616161",
    ClusterState.UNREACHABLE: "#c62828",
    ClusterState.UNKNOWN: "#9e9e9e",
}
MAX_WORKERS = 1024


class QtClusterPanel(QWidget):
    """The cluster of ``workspace``'s server; its long actions go through ``tasks``."""

    sig_dashboard_opened = Signal(str)

    def __init__(self, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("cluster_panel")
        self.workspace = workspace
        self.tasks = tasks
        self.model = ClusterModel(workspace)
        self._busy: Task | None = None
        self._dialog: QtDeployDialog | None = None
        self._build()
        disconnect, model = self.model.changed.connect(self._on_model_changed), self.model

        def let_go() -> None:  # not a method of self: by then its Python side is going
            disconnect()
            model.close()

        self.destroyed.connect(let_go)
        self._sync(self.model.view)
        self.model.watch()

    def _build(self) -> None:
        self.state_label = QLabel()
        self.state_label.setWordWrap(True)
        self.location_label = QLabel()
        self.location_label.setWordWrap(True)
        self.location_label.setStyleSheet("color: #616161")
        figures = QGridLayout()
        self.figures: dict[str, QLabel] = {}
        for row, (key, caption) in enumerate(
            [
                ("workers", "Workers"),
                ("gpus", "GPUs"),
                ("busy", "Busy"),
                ("queued", "Queued"),
                ("rate", "Images/s"),
            ]
        ):
            value = QLabel("–")
            value.setObjectName(f"figure_{key}")
            figures.addWidget(QLabel(caption), row // 3 * 2, row % 3)
            figures.addWidget(value, row // 3 * 2 + 1, row % 3)
            value.setStyleSheet("font-size: 15px; font-weight: 600")
            self.figures[key] = value
        self.start_button = QPushButton("&Start")
        self.stop_button = QPushButton("S&top")
        self.start_button.clicked.connect(self._on_start_clicked)
        self.stop_button.clicked.connect(self._on_stop_clicked)
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(0, MAX_WORKERS)
        self.workers_spin.setAccessibleName("Workers to run")
        self.workers_spin.setPrefix("Workers: ")
        self.apply_button = QPushButton("&Apply")
        self.apply_button.clicked.connect(self._on_apply_clicked)
        self.dashboard_button = QPushButton("Open &dashboard")
        self.dashboard_button.clicked.connect(self._on_dashboard_clicked)
        self.deploy_button = QPushButton("Deplo&y on SSH hosts / SLURM…")
        self.deploy_button.clicked.connect(self._on_deploy_clicked)
        self.local_button = QPushButton("Use this &computer's cluster")
        self.local_button.clicked.connect(self._on_local_clicked)
        for button in (self.deploy_button, self.local_button):
            button.setVisible(self.workspace.mode is Mode.OFFLINE)

        controls = QHBoxLayout()
        controls.addWidget(self.start_button)
        controls.addWidget(self.stop_button)
        scale = QHBoxLayout()
        scale.addWidget(self.workers_spin, 1)
        scale.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state_label)
        layout.addWidget(self.location_label)
        layout.addLayout(figures)
        layout.addLayout(controls)
        layout.addLayout(scale)
        layout.addWidget(self.dashboard_button)
        layout.addWidget(self.deploy_button)
        layout.addWidget(self.local_button)
        layout.addStretch(1)

    # --- the model, shown ---

    def _on_model_changed(self, view: ClusterView) -> None:
        self._sync(view)

    def _sync(self, view: ClusterView) -> None:
        colour = _STATE_COLOURS[view.state]
        title, reason = _state_text(view)
        reason_html = f"<br>{html.escape(reason)}" if reason else ""
        self.state_label.setText(f'<b style="color:{colour}">● {title}</b>{reason_html}')
        where = view.address if view.address and view.location != "this server" else view.location
        if where == DEPLOYED:
            where = "the cluster deployed with spheroseg cluster deploy"
        stopped_here = view.state is ClusterState.STOPPED and view.launched_here
        hint = " (the next job starts it)" if stopped_here else ""
        self.location_label.setText(f"On {where}{hint}" if where else "")
        running = view.state is ClusterState.RUNNING
        known = view.state in (ClusterState.RUNNING, ClusterState.STOPPED)
        self.figures["workers"].setText(str(view.workers) if known else "–")
        self.figures["workers"].setToolTip("\n".join(_worker_line(worker) for worker in view.worker_list))
        self.figures["gpus"].setText(str(view.gpus) if running else "–")
        self.figures["busy"].setText(f"{view.busy_workers} of {view.workers}" if running else "–")
        self.figures["queued"].setText(str(view.waiting) if running else "–")
        self.figures["rate"].setText(f"{view.images_per_second:.1f}" if running else "–")
        if not self.workers_spin.hasFocus() and running:
            self.workers_spin.setValue(view.workers)
        refusal = self.model.control_refusal
        idle = self._busy is None
        self.start_button.setEnabled(idle and refusal is None and view.state is ClusterState.STOPPED)
        self.stop_button.setEnabled(idle and refusal is None and running)
        can_scale = idle and refusal is None and running
        self.workers_spin.setEnabled(can_scale)
        self.apply_button.setEnabled(can_scale)
        scale_tip = refusal or ("" if running else "Start the cluster first, then choose how many workers.")
        for widget in (self.start_button, self.stop_button, self.workers_spin, self.apply_button):
            widget.setToolTip(refusal or "")
        self.workers_spin.setToolTip(scale_tip)
        self.apply_button.setToolTip(scale_tip)
        self.dashboard_button.setEnabled(view.dashboard is not None)
        self.dashboard_button.setToolTip(view.dashboard or "The cluster serves no dashboard now.")
        self.deploy_button.setEnabled(idle)
        elsewhere = view.state is not ClusterState.UNKNOWN and not view.launched_here
        self.local_button.setVisible(self.workspace.mode is Mode.OFFLINE and elsewhere)
        self.local_button.setEnabled(idle)

    # --- actions ---

    def _on_start_clicked(self) -> None:
        self._run("Starting the cluster", lambda _task: self.model.start())

    def _on_stop_clicked(self) -> None:
        self._run("Stopping the cluster", lambda _task: self.model.stop())

    def _on_apply_clicked(self) -> None:
        workers = self.workers_spin.value()
        self._run(f"Scaling the cluster to {workers} workers", lambda _task: self.model.scale(workers))

    def _on_local_clicked(self) -> None:
        async def back_home(task: Task) -> None:
            task.report(None, "Restarting the offline server on this computer's cluster")
            await use_scheduler(self.workspace, None)

        self._run("Going back to this computer's cluster", back_home)

    def _on_dashboard_clicked(self) -> None:
        link = self.model.view.dashboard
        if link:
            QDesktopServices.openUrl(QUrl(link))
            self.sig_dashboard_opened.emit(link)

    def _on_deploy_clicked(self) -> None:
        if self._dialog is None:
            self._dialog = QtDeployDialog(self.workspace, self.tasks, self)
        self._dialog.open()

    def _run(self, name: str, work: Callable[[Task], Awaitable[object]]) -> None:
        """Start ``work`` as the named task, with the controls off until it ends."""
        task = self.tasks.start(name, work)
        self._busy = task
        self._sync(self.model.view)
        disconnect = self.tasks.changed.connect(lambda changed: finished(changed))

        def finished(changed: Task) -> None:
            if changed is task and changed not in self.tasks.running:
                disconnect()
                self._busy = None
                self._sync(self.model.view)


def _worker_line(worker: ClusterWorker) -> str:
    devices = ", ".join(worker.devices) or "cpu"
    rate = f", {worker.images_per_second:.1f} images/s" if worker.images_per_second else ""
    return f"{worker.name}: {worker.status} on {devices}, {worker.processing} tasks{rate}"


def _state_text(view: ClusterView) -> tuple[str, str]:
    """The state in a word or two, and the reason when there is one."""
    if view.state is ClusterState.RUNNING:
        return "Running", ""
    if view.state is ClusterState.STOPPED:
        return "Stopped", ""
    if view.state is ClusterState.UNREACHABLE:
        return "Unreachable", view.problem or ""
    return ("Not known yet", view.problem) if view.problem else ("Reading the cluster's status…", "")
