"""The offline server killed (SIGKILL) while it segments a plate: the window shows the crash panel with
the server's last log lines, Restart brings a new server up on the same data and address (the window
carries on as it was), the job the server had under way finishes by itself (its dispatcher puts the
interrupted images back in the queue) and the gallery shows every image segmented."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QProgressBar
from pytestqt.qtbot import QtBot

from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run
from tests.workbench.qt.whole_window import SIZE, dialog_of, press, scene, tiles
from tests.workbench.qt.windows import close, options_in, settings_in, until
from workbench.api import ChannelState
from workbench.jobs import JobState
from workbench.qt import qt_export
from workbench.qt.qt_main_window import QtMainWindow
from workbench.qt.qt_segment import QtSegment
from workbench.tasks import Level
from workbench.uploads import import_files

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WELLS = 12


@pytest.fixture
def window(qtbot: QtBot, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[QtMainWindow]:
    settings = tmp_path / "export.ini"
    monkeypatch.setattr(qt_export, "_settings", lambda: QSettings(str(settings), QSettings.Format.IniFormat))
    shown = QtMainWindow(options_in(tmp_path), settings_in(tmp_path))
    shown.resize(*SIZE)
    shown.show()
    qtbot.waitExposed(shown)
    yield shown
    close(shown, run)


def _plate(run: Run, window: QtMainWindow, folder: Path) -> int:
    """A project of ``WELLS`` images (the import itself is tested in test_workflow)."""
    assert window.workspace is not None
    client = window.workspace.client
    project_id: int = run(client.call("CreateProject", name="Plate 9"))["createProject"]["project"]["id"]
    paths = []
    for seed in range(WELLS):
        paths.append(folder / f"well_{seed + 1:02d}.png")
        paths[-1].write_bytes(disc_png(seed=seed, size=1024))
    run(import_files(client, project_id, paths), 120)
    return project_id


def _progress(window: QtMainWindow) -> str:
    bar = window.projects.table.cellWidget(max(0, window.projects.table.currentRow()), 2)
    return bar.text() if isinstance(bar, QProgressBar) else ""


def test_a_server_killed_mid_job_is_restarted_from_the_window_and_the_job_finishes(
    qtbot: QtBot, run: Run, window: QtMainWindow, tmp_path: Path
) -> None:
    qtbot.keyClick(window.start_screen.offline_button, Qt.Key.Key_Return)
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)
    project_id = _plate(run, window, tmp_path)
    run(window.projects.reload().wait(), 30)
    window.projects.select(project_id)
    qtbot.keyClick(window.projects.table, Qt.Key.Key_Return)
    run(until(lambda: window.gallery._position.text() == f"{WELLS} images", 30, "the plate in the gallery"))

    run(
        press(
            qtbot,
            window,
            Qt.Key.Key_S,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    )
    segmenting = run(dialog_of(window, QtSegment))
    run(segmenting.loading.wait(), 30)
    segmenting.choose_method("classical")
    qtbot.keyClick(segmenting, Qt.Key.Key_Return)
    run(until(lambda: segmenting.job_view is not None, 60, "the job"))
    view = segmenting.job_view
    assert view is not None
    states: list[JobState] = []
    view.sig_progressed.connect(states.append)
    run(until(lambda: states and states[-1].done > 0, 240, "the first image segmented"), 250)
    done_before = states[-1].done
    assert done_before < WELLS, "the job ended before the server could be killed: make the plate bigger"

    first = window.workspace
    assert first is not None and first.started is not None
    os.kill(first.started.pid, signal.SIGKILL)
    run(until(window.crash.isVisible, 30, "the crash panel"))
    assert "killed (signal 9)" in window.crash.title.text()
    assert "ran short of memory" in window.crash.advice.text()  # who kills a server, and what helps
    assert window.crash.log.toPlainText().strip()  # the server's last words
    assert not window.views_holder.isEnabled()  # nothing can be done against a dead server
    # the job view no longer shows the count and time left of before the kill as if they were current
    run(until(lambda: view.line.text().startswith("Connection lost"), 30, "the job view to say so"))
    assert " left" not in view.line.text() and not view.bar.isEnabled()
    run(scene(window, "killed-1-crash-panel"))
    run(scene(window, "killed-1b-crash-panel-with-job", segmenting))
    view_job = view.job_id

    # Restart by keyboard: the panel's button has the focus
    segmenting.close()
    window.activateWindow()
    run(until(window.isActiveWindow, 10, "the window to be active"))
    assert window.crash.restart.hasFocus()
    gallery, killed_pid = window.gallery, first.started.pid
    qtbot.keyClick(window.crash.restart, Qt.Key.Key_Return)
    run(until(lambda: first.started is not None and first.started.pid != killed_pid, 90, "the restart"), 100)
    assert not window.crash.isVisible() and window.views_holder.isEnabled()
    # back on its address: the same session and views carry on (nothing rebuilt, the plate still open),
    # the live connection comes back at once, and the job goes on to its end
    assert window.workspace is first and window.gallery is gallery
    assert window.current_project == (project_id, "Plate 9")
    run(until(lambda: first.live.state.state is ChannelState.CONNECTED, 30, "the live connection"))
    run(scene(window, "killed-2-restarted"))
    run(until(lambda: set(tiles(window).values()) == {"DONE"}, 300, "every image segmented"), 310)
    run(until(lambda: _progress(window) == f"{WELLS} of {WELLS} segmented", 30, "the project's progress"))
    # the task list does not show the job stuck where the server died: its row followed it to the end
    stuck = f"Segmenting {WELLS} images"
    run(until(lambda: stuck not in [row.name.text() for row in window.qt_tasks.rows()], 30, "no stuck row"))
    run(scene(window, "killed-3-job-finished"))

    job = run(first.client.call("JobNow", id=view_job))["job"]
    assert (job["status"], job["done"], job["failed"]) == ("DONE", WELLS, 0)  # the same job, none lost
    assert not [n for n in window.notices.items if n.level is Level.ERROR], window.notices.items
