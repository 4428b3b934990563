"""The save status line in a real window against the real offline server, through each state a user meets:
all saved, saving, kept on this computer while the server is dead (SIGKILL) and sent once it is back, a
conflict whose Resolve… opens the choice by keyboard, and a refusal."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, screenshot
from tests.workbench.qt.windows import until
from workbench.api import Backoff, ChannelState, LiveChannel
from workbench.journal import Journals
from workbench.qt.qt_save_status import QtSaveStatus
from workbench.saving import Saver, upsert
from workbench.uploads import import_files
from workbench.workspace import Workspace


def square(x: float, size: float) -> list[list[float]]:
    return [[x, 20.0], [x + size, 20.0], [x + size, 20.0 + size], [x, 20.0 + size]]


async def _image(workspace: Workspace, folder: Path) -> tuple[int, int]:
    (folder / "well.png").write_bytes(disc_png(seed=3))
    created = await workspace.client.call("CreateProject", name="Plate 1")
    project_id = int(created["createProject"]["project"]["id"])
    (imported,) = await import_files(workspace.client, project_id, [folder / "well.png"])
    assert imported.image_id is not None
    return project_id, imported.image_id


async def _follow_events(channel: LiveChannel, project_id: int) -> None:
    """What the gallery does; through it the channel notices the server has gone."""
    async for _ in channel.subscribe("ProjectEvents", projectId=project_id):
        pass


async def _stored(workspace: Workspace, image_id: int) -> list[list[list[float]]]:
    segmentation = (await workspace.client.call("ImageSpheroids", imageId=image_id))["image"]["segmentation"]
    return sorted(s["exterior"] for s in segmentation["spheroids"])


def _bottom_bar(status: QtSaveStatus) -> QWidget:
    holder = QWidget()
    layout = QVBoxLayout(holder)
    canvas = QLabel("(the review canvas)")
    canvas.setAlignment(Qt.AlignmentFlag.AlignCenter)
    layout.addWidget(canvas, 1)
    layout.addWidget(status)
    holder.resize(860, 140)
    holder.show()
    return holder


def test_the_status_line_follows_saving_a_dead_server_a_conflict_and_a_refusal(
    qtbot: QtBot, run: Run, workspace: Workspace, tmp_path: Path
) -> None:
    project_id, image_id = run(_image(workspace, tmp_path))
    assert workspace.offline is not None and workspace.started is not None
    QApplication.setQuitOnLastWindowClosed(False)
    # the retry waits minutes: only the reconnection can send the kept edits within the test
    saver = workspace.saver  # the workspace's own, as the review page uses it
    assert saver is not None
    saver.idle, saver.backoff = 30.0, Backoff(initial=300, maximum=300)
    gallery = asyncio.ensure_future(_follow_events(workspace.live, project_id))
    status = QtSaveStatus(saver)
    holder = _bottom_bar(status)
    qtbot.add_widget(holder)
    assert status.text.text() == "All edits saved" and not status.resolve.isVisible()
    screenshot(status, "save-status-saved")

    saver.open_image(image_id, 0)
    drawn = saver.edit(image_id, upsert(square(20, 20)))
    assert status.text.text() == "Saving 1 edit…"
    screenshot(status, "save-status-saving")
    run(saver.flush())
    assert status.text.text() == "All edits saved"
    assert saver.last_saved is not None
    first = saver.last_saved.new_ids[drawn]

    # the server killed with unsaved edits: kept on this computer, sent once it is back
    run(until(lambda: workspace.live.state.state is ChannelState.CONNECTED, 60, "the live channel"))
    run(asyncio.sleep(0.5))
    os.kill(workspace.started.pid, signal.SIGKILL)
    run(workspace.offline.wait())
    saver.edit(image_id, upsert(square(20, 40), spheroid_id=first))
    saver.edit(image_id, upsert(square(100, 30)))
    run(saver.flush())
    assert status.text.text() == (
        "2 edits kept on this computer: the server cannot be reached; they are sent when it is back"
    )
    screenshot(status, "save-status-kept")
    run(workspace.offline.start())  # same data folder and port
    run(until(lambda: status.text.text() == "All edits saved", 60, "the kept edits to be sent"))
    assert run(_stored(workspace, image_id)) == sorted([square(20, 40), square(100, 30)])

    # a conflict: someone else reshaped the spheroid first
    other = Saver(workspace.client, Journals(tmp_path / "other", workspace.url))
    other.open_image(image_id, saver.last_saved.version)
    other.edit(image_id, upsert(square(20, 70), spheroid_id=first))
    run(other.flush())
    saver.edit(image_id, upsert(square(20, 10), spheroid_id=first))
    run(saver.flush())
    assert status.text.text() == "1 conflict —" and status.resolve.isVisible()
    screenshot(status, "save-status-conflict")
    status.resolve.setFocus()
    qtbot.keyClick(status.resolve, Qt.Key.Key_Space)
    dialog = status.dialog
    assert dialog is not None and dialog.isVisible() and dialog.conflict.spheroid_id == first
    qtbot.mouseClick(dialog.take_theirs, Qt.MouseButton.LeftButton)
    run(until(lambda: status.text.text() == "All edits saved", 60, "the conflict to be settled"))
    assert not status.resolve.isVisible()
    assert run(_stored(workspace, image_id)) == sorted([square(20, 70), square(100, 30)])

    # a refusal: rings outside the image
    saver.edit(image_id, upsert([[370.0, 10.0], [500.0, 10.0], [500.0, 50.0]], spheroid_id=first))
    run(saver.flush())
    assert status.text.text().startswith("Not saved:")
    assert "outside" in status.text.toolTip()
    screenshot(status, "save-status-refused")

    gallery.cancel()
    run(other.close())
