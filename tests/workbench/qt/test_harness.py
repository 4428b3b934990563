"""The window's harness itself: a widget shown under Xvfb while a coroutine runs on the Qt loop."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import Run, screenshot
from workbench.workspace import Mode, Workspace


def test_the_offline_workspace_signs_in_and_answers_while_a_window_is_shown(
    qtbot: QtBot, run: Run, workspace: Workspace
) -> None:
    label = QLabel("waiting")
    qtbot.add_widget(label)
    label.show()
    me = run(workspace.client.call("Me"))["me"]
    label.setText(f"signed in as {me['username']}")
    assert workspace.mode is Mode.OFFLINE and me["username"] == workspace.user.username
    assert screenshot(label, "harness").stat().st_size > 0
