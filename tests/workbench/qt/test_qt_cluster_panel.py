"""The cluster panel in a real window, on a real offline server and its real local Dask cluster, and the
deploy form pointing that server at a real scheduler started here."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from pytestqt.qtbot import QtBot

from spheroseg_testing.dask_cluster import running_scheduler
from tests.workbench.cluster_support import until
from tests.workbench.qt.conftest import Run, offline_environment, shown
from tests.workbench.qt.windows import shot
from workbench.clusters import ClusterState
from workbench.qt.qt_cluster_panel import QtClusterPanel
from workbench.qt.qt_deploy_dialog import QtDeployDialog
from workbench.tasks import Tasks, TaskState
from workbench.workspace import Workspace, open_lab, open_offline

pytestmark = pytest.mark.timeout(300)

PASSWORD = "a long enough password"


class UrlCatcher(QObject):
    """Stands in for the browser: Qt hands it every http URL the desktop asks to open."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open_url(self, url: QUrl) -> None:
        self.opened.append(url.toString())


@pytest.fixture
def browser() -> Iterator[UrlCatcher]:
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("http", catcher, "open_url")
    yield catcher
    QDesktopServices.unsetUrlHandler("http")


async def _idle(tasks: Tasks) -> None:
    while tasks.running:
        await tasks.running[0].wait()


def _panel(qtbot: QtBot, workspace: Workspace, tasks: Tasks) -> QtClusterPanel:
    panel = QtClusterPanel(workspace, tasks)
    shown(qtbot, panel, 320, 360)
    return panel


def test_the_panel_follows_the_cluster_as_it_starts_scales_and_stops(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, browser: UrlCatcher
) -> None:
    panel = _panel(qtbot, workspace, tasks)
    model = panel.model

    async def scenario() -> None:
        await until(model, lambda view: view.state is ClusterState.STOPPED)
        assert "Stopped" in panel.state_label.text() and panel.figures["workers"].text() == "0"
        assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
        assert (
            not panel.apply_button.isEnabled() and "Start the cluster first" in panel.apply_button.toolTip()
        )
        assert not panel.dashboard_button.isEnabled()

        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        await until(model, lambda view: view.state is ClusterState.RUNNING and view.workers == 1)
        await _idle(tasks)
        assert "Running" in panel.state_label.text() and panel.figures["workers"].text() == "1"
        assert panel.figures["busy"].text() == "0 of 1" and panel.figures["queued"].text() == "0"
        assert panel.stop_button.isEnabled() and panel.apply_button.isEnabled()
        await shot(panel, "cluster-panel-running")

        qtbot.mouseClick(panel.dashboard_button, Qt.MouseButton.LeftButton)
        assert browser.opened == [model.view.dashboard] and browser.opened[0].startswith("http://127.0.0.1:")

        panel.workers_spin.setValue(2)
        qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
        await until(model, lambda view: view.workers == 2)
        assert panel.figures["workers"].text() == "2"
        await _idle(tasks)

        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        await until(model, lambda view: view.state is ClusterState.STOPPED)
        await _idle(tasks)
        assert "Stopped" in panel.state_label.text() and panel.figures["workers"].text() == "0"
        assert panel.start_button.isEnabled() and not panel.dashboard_button.isEnabled()
        assert tasks.notices.items == []  # nothing failed along the way
        await shot(panel, "cluster-panel-stopped")

    run(scenario(), timeout=180)


def test_a_member_sees_the_cluster_but_no_controls(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    subprocess.run(
        [sys.executable, "-m", "cluster.cli", "server", "create-user", "ben", "--password-stdin"],
        input=PASSWORD,
        text=True,
        check=True,
        capture_output=True,
        env={**offline_environment(), "SPHEROSEG_DATA_DIR": str(tmp_path / "data")},
    )
    member = run(open_lab(workspace.url, "ben", PASSWORD))

    async def scenario() -> None:
        panel = _panel(qtbot, member, tasks)
        await until(panel.model, lambda view: view.state is ClusterState.STOPPED)
        for control in (panel.start_button, panel.stop_button, panel.workers_spin, panel.apply_button):
            assert not control.isEnabled() and "administrator" in control.toolTip()
        assert not panel.deploy_button.isVisible()  # deploying is for the user's own server
        await shot(panel, "cluster-panel-member")

    try:
        run(scenario())
    finally:
        run(member.close())


@pytest.fixture
def own_workspace(run: Run, tmp_path: Path) -> Iterator[Workspace]:
    """An offline workspace whose deployed cluster is recorded in this test's folder."""
    environment = {**offline_environment(), "SPHEROSEG_CLUSTER_STATE": str(tmp_path / "cluster.json")}
    opened = run(open_offline(tmp_path / "data", cache_dir=tmp_path / "cache", environment=environment))
    yield opened
    run(opened.close())


def test_the_deploy_form_points_the_offline_server_at_a_real_scheduler(
    qtbot: QtBot, run: Run, own_workspace: Workspace, tasks: Tasks, tmp_path: Path
) -> None:
    panel = _panel(qtbot, own_workspace, tasks)

    async def fill_in() -> QtDeployDialog:
        await until(panel.model, lambda view: view.state is ClusterState.STOPPED)
        qtbot.mouseClick(panel.deploy_button, Qt.MouseButton.LeftButton)
        dialog = panel._dialog
        assert dialog is not None and dialog.isVisible()

        # SSH: the form writes spheroseg cluster deploy's own command line
        assert not dialog.deploy_button.isEnabled() and "scheduler's host" in dialog.problems.text()
        dialog.ssh_hosts.setText("head gpu1:4 gpu2:4")
        dialog.ssh_user.setText("ana")
        dialog.gpus.setChecked(True)
        command = dialog.command.toPlainText()
        assert command.startswith("spheroseg cluster deploy --backend ssh --gpus")
        assert "--ssh-host head --ssh-host gpu1:4 --ssh-host gpu2:4 --ssh-user ana" in command
        assert dialog.deploy_button.isEnabled()
        await shot(dialog, "cluster-deploy-ssh")
        dialog.backend.setCurrentIndex(1)
        dialog.partition.setText("gpu")
        slurm = "--backend slurm --gpus --host 0.0.0.0 --partition gpu --walltime 01:00:00"
        assert slurm in dialog.command.toPlainText()
        await shot(dialog, "cluster-deploy-slurm")

        # a deploy that fails says why, in the dialog and as a notice (nothing listens on port 1)
        dialog.backend.setCurrentIndex(0)
        dialog.ssh_hosts.setText("127.0.0.1 127.0.0.1")
        dialog.ssh_port.setValue(1)
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
        assert dialog.task is not None
        await dialog.task.wait()
        assert "Not deployed" in dialog.outcome.text() and "Connect call failed" in dialog.outcome.text()
        assert "did not start" in dialog.output.toPlainText()
        assert [notice.title for notice in tasks.notices.items if "Deploying" in notice.title]
        assert dialog.deploy_button.isEnabled()  # correct the form and try again
        tasks.notices.items.clear()
        return dialog

    async def deploy(dialog: QtDeployDialog, address: str) -> None:
        dialog.backend.setCurrentIndex(3)
        dialog.gpus.setChecked(False)
        dialog.scheduler.setText(address)
        qtbot.mouseClick(dialog.deploy_button, Qt.MouseButton.LeftButton)
        task = dialog.task
        assert task is not None and not dialog.deploy_button.isEnabled()
        await task.wait()
        assert task.state is TaskState.DONE, tasks.notices.items
        assert "Deployed" in dialog.outcome.text() and address in dialog.output.toPlainText()
        await shot(dialog, "cluster-deploy-done")
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
        assert not dialog.isVisible()

        remote = await until(
            panel.model, lambda view: view.state is ClusterState.RUNNING and not view.launched_here
        )
        assert remote.address == address
        assert panel.figures["workers"].text() == "1" and address in panel.location_label.text()
        assert not panel.apply_button.isEnabled() and address in panel.apply_button.toolTip()
        assert panel.local_button.isVisible()
        await shot(panel, "cluster-panel-deployed")

    async def after_it_went_away(address: str) -> None:
        gone = await until(panel.model, lambda view: view.state is ClusterState.UNREACHABLE)
        assert address in (gone.problem or "") and "Unreachable" in panel.state_label.text()
        assert address in panel.state_label.text() and panel.local_button.isVisible()
        await shot(panel, "cluster-panel-unreachable")

        qtbot.mouseClick(panel.local_button, Qt.MouseButton.LeftButton)
        await until(panel.model, lambda view: view.launched_here)
        await _idle(tasks)
        assert "Stopped" in panel.state_label.text() and not panel.local_button.isVisible()

    dialog = run(fill_in())
    # a scheduler already running (real processes): deployed, and the offline server pointed at it
    with running_scheduler(tmp_path / "dask") as scheduler:
        run(deploy(dialog, scheduler.address), timeout=180)
    # the scheduler stopped: the panel says so, and the user goes back to this computer's cluster
    run(after_it_went_away(scheduler.address), timeout=120)
