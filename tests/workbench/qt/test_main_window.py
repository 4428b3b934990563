"""The window as a user meets it, on a real offline server process: the start screen, working offline,
a server that cannot start (its log, Retry), a failing task and an uncaught error (notices, and the
window goes on), the server killed (the crash panel, Restart), and the window's place remembered."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run, offline_environment
from tests.workbench.qt.windows import close, options_in, settings_in, shot, until
from workbench.api import ApiError
from workbench.qt.errors import install_error_hooks
from workbench.qt.qt_main_window import QtMainWindow
from workbench.tasks import Task
from workbench.workspace import Mode


@pytest.fixture
def window(qtbot: QtBot, run: Run, tmp_path: Path) -> Iterator[QtMainWindow]:
    shown = QtMainWindow(options_in(tmp_path), settings_in(tmp_path))  # closed here, not by qtbot:
    shown.show()  # its workspace closes first
    qtbot.waitExposed(shown)
    yield shown
    close(shown, run)


def _work_offline(qtbot: QtBot, run: Run, window: QtMainWindow) -> None:
    """By keyboard: the offline button has the focus, and Enter presses it."""
    assert window.start_screen.focusWidget() is window.start_screen.offline_button
    qtbot.keyClick(window.start_screen.offline_button, Qt.Key.Key_Return)
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)


def test_work_offline_opens_the_workspace_with_mode_and_user_in_the_status_bar(
    qtbot: QtBot, run: Run, window: QtMainWindow
) -> None:
    screen = window.start_screen
    assert window.stack.currentWidget() is screen and screen.offline_button.isDefault()
    run(shot(window, "start-screen"))

    qtbot.mouseClick(screen.offline_button, Qt.MouseButton.LeftButton)
    assert screen.offline_progress.isVisible() and not screen.offline_button.isEnabled()
    assert "Starting the offline server" in screen.offline_status.text()
    run(shot(window, "start-screen-connecting"))
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)

    assert window.stack.currentWidget() is window.workspace_page
    assert window.workspace is not None and window.workspace.mode is Mode.OFFLINE
    assert window.mode_label.text() == "Offline (this computer)"
    assert window.url_label.text() == window.workspace.url
    assert window.user_label.text().startswith(f"Signed in as {window.workspace.user.username}")
    assert window.import_action.isEnabled() and window.toolbar.isVisible()
    window.cluster_action.trigger()
    assert window.cluster_dock.isVisible()
    window.cluster_action.trigger()
    assert not window.cluster_dock.isVisible()
    run(until(lambda: not window.banner.isVisible(), 30, "the live connection"))
    run(shot(window, "workspace"))


def test_an_offline_server_that_cannot_start_shows_its_log_lines_and_retry_works(
    qtbot: QtBot, run: Run, window: QtMainWindow
) -> None:
    window.options.environment = offline_environment() | {"SPHEROSEG_DATABASE_URL": "nosuchdb://nowhere"}
    screen = window.start_screen
    qtbot.mouseClick(screen.offline_button, Qt.MouseButton.LeftButton)
    run(until(screen.retry_button.isVisible, 80, "the Retry button"), 90)

    assert "did not start" in screen.offline_status.text()
    assert "nosuchdb" in screen.offline_log.toPlainText()
    assert window.workspace is None and screen.offline_button.isEnabled()
    run(shot(window, "start-screen-offline-failed"))

    window.options.environment = offline_environment()  # the user fixed what the log named
    qtbot.mouseClick(screen.retry_button, Qt.MouseButton.LeftButton)
    run(until(lambda: window.workspace is not None, 80, "the offline workspace"), 90)
    assert window.stack.currentWidget() is window.workspace_page


def test_a_failing_task_shows_a_notice_that_can_be_dismissed(
    qtbot: QtBot, run: Run, window: QtMainWindow
) -> None:
    async def refused(task: Task) -> None:
        task.report(0.5, "file 2 of 4")
        raise ApiError("project 7 does not exist", "FORBIDDEN")

    window.tasks.start("Importing 4 files", refused)
    run(until(lambda: window.qt_notices.cards(), 10, "a notice"))

    card = window.qt_notices.cards()[0]
    assert "Importing 4 files failed: project 7 does not exist" in card.title.text()
    assert card.advice.text()  # says what to do
    assert window.activity_dock.isVisible() and window.qt_tasks.rows() == []
    run(shot(window.activity_dock, "notices"))
    qtbot.mouseClick(card.dismiss, Qt.MouseButton.LeftButton)
    assert window.notices.items == []


@pytest.mark.qt_no_exception_capture
def test_an_uncaught_error_in_a_slot_becomes_a_notice_and_the_window_still_responds(
    qtbot: QtBot, run: Run, window: QtMainWindow, loop: asyncio.AbstractEventLoop
) -> None:
    uninstall = install_error_hooks(window.notices, loop)
    try:
        faulty = QPushButton("faulty", window.start_screen)

        def fail() -> None:
            raise ZeroDivisionError("division by zero in a slot")

        faulty.clicked.connect(fail)
        faulty.show()
        qtbot.mouseClick(faulty, Qt.MouseButton.LeftButton)
        run(until(lambda: window.notices.items, 10, "a notice"))
    finally:
        uninstall()

    notice = window.notices.items[-1]
    assert "division by zero in a slot" in notice.title and "ZeroDivisionError" in notice.details
    card = window.qt_notices.cards()[0]
    qtbot.mouseClick(card.fold, Qt.MouseButton.LeftButton)
    assert card.details.isVisible() and "Traceback" in card.details.toPlainText()
    qtbot.keyClicks(window.start_screen.username, "ana")  # the window still answers
    assert window.start_screen.username.text() == "ana"
    run(shot(window, "uncaught-error-notice"))


def test_a_killed_offline_server_shows_its_log_and_restart_brings_the_workspace_back(
    qtbot: QtBot, run: Run, window: QtMainWindow
) -> None:
    _work_offline(qtbot, run, window)
    first = window.workspace
    assert first is not None and first.started is not None
    killed = first.started.pid
    os.kill(killed, 9)

    run(until(window.crash.isVisible, 30, "the crash panel"))
    assert "killed (signal 9)" in window.crash.title.text()
    assert "ran short of memory" in window.crash.advice.text()  # who kills a server, and what helps
    assert window.crash.log.toPlainText().strip()
    assert not window.views_holder.isEnabled() and not window.banner.isVisible()
    run(shot(window, "server-crashed"))

    qtbot.mouseClick(window.crash.restart, Qt.MouseButton.LeftButton)
    run(until(lambda: first.started is not None and first.started.pid != killed, 80, "the new server"), 90)
    assert window.workspace is first  # back on its address: the session and the views carry on
    assert not window.crash.isVisible() and window.views_holder.isEnabled()
    assert run(first.client.call("Me"))["me"]["username"] == first.user.username
    assert window.url_label.text() == first.url


def test_the_window_opens_where_it_was_left(qtbot: QtBot, run: Run, tmp_path: Path) -> None:
    first = QtMainWindow(options_in(tmp_path), settings_in(tmp_path))
    first.show()
    qtbot.waitExposed(first)
    assert first.size() == QSize(1200, 800)  # the first start's size
    first.resize(700, 520)  # within Xvfb's screen: a restored window is kept on the screen
    qtbot.wait(50)
    close(first, run)

    second = QtMainWindow(options_in(tmp_path), settings_in(tmp_path))
    assert second.size() == QSize(700, 520)
    close(second, run)


def test_closing_while_work_runs_asks_first_then_stops_the_offline_server(
    qtbot: QtBot, run: Run, window: QtMainWindow
) -> None:
    _work_offline(qtbot, run, window)
    workspace = window.workspace
    assert workspace is not None and workspace.offline is not None

    async def long_work(task: Task) -> None:
        await asyncio.sleep(3600)

    window.tasks.start("Segmenting 120 images", long_work)
    window.close()
    question = window.close_question
    run(until(question.isVisible, 10, "the question"))
    assert "Segmenting 120 images" in question.informativeText() and window.isVisible()
    run(shot(question, "quit-question"))
    qtbot.mouseClick(question.button(QMessageBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert window.isVisible() and window.workspace is workspace and window.tasks.running  # kept working

    window.close()
    run(until(window.close_question.isVisible, 10, "the question again"))
    quit_button = next(b for b in window.close_question.buttons() if b.text() == "&Quit")
    qtbot.mouseClick(quit_button, Qt.MouseButton.LeftButton)
    run(until(lambda: window._closed, 60, "the window to close"))
    assert not window.isVisible() and not window.tasks.running
    assert not workspace.offline.owned  # stopped: this workbench no longer holds a server process
