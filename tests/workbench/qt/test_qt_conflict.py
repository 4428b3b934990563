"""The conflict dialog in a real window against the real offline server: both shapes side by side at one
scale, who saved since, and each of the three choices, made by mouse or keyboard, stored as chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget
from pytestqt.qtbot import QtBot

from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, screenshot, shown
from tests.workbench.qt.windows import until
from workbench.journal import Journals
from workbench.qt.qt_conflict import QtConflictDialog
from workbench.saving import Conflict, Saver, delete, upsert
from workbench.uploads import import_files
from workbench.workspace import Workspace


def square(x: float, size: float) -> list[list[float]]:
    return [[x, 20.0], [x + size, 20.0], [x + size, 20.0 + size], [x, 20.0 + size]]


A, B = square(20, 20), square(100, 20)
THEIRS, MINE = square(100, 60), square(100, 15)
HOLE = [[120.0, 40.0], [140.0, 40.0], [140.0, 60.0], [120.0, 60.0]]


async def _conflict(workspace: Workspace, folder: Path, theirs_deleted: bool) -> tuple[Saver, Conflict, int]:
    """Two savers on one image: "ana" changes (or deletes) spheroid B, then "bea", still on version 1,
    reshapes it too. Bea's saver, her conflict, the image."""
    (folder / "well.png").write_bytes(disc_png(seed=2))
    created = await workspace.client.call("CreateProject", name="Plate 1")
    (imported,) = await import_files(
        workspace.client, created["createProject"]["project"]["id"], [folder / "well.png"]
    )
    image_id = imported.image_id
    assert image_id is not None
    ana = Saver(workspace.client, Journals(folder / "ana", workspace.url))
    bea = Saver(workspace.client, Journals(folder / "bea", workspace.url))
    ana.open_image(image_id, 0)
    ana.edit(image_id, upsert(A))
    drawn = ana.edit(image_id, upsert(B))
    await ana.flush()
    assert ana.last_saved is not None
    second = ana.last_saved.new_ids[drawn]
    bea.open_image(image_id, 1)
    ana.edit(image_id, delete(second) if theirs_deleted else upsert(THEIRS, [HOLE], spheroid_id=second))
    await ana.flush()
    await ana.close()
    bea.edit(image_id, upsert(MINE, spheroid_id=second))
    await bea.flush()
    (conflict,) = bea.conflicts
    return bea, conflict, image_id


async def _stored(workspace: Workspace, image_id: int) -> list[list[list[float]]]:
    segmentation = (await workspace.client.call("ImageSpheroids", imageId=image_id))["image"]["segmentation"]
    return sorted(s["exterior"] for s in segmentation["spheroids"])


def _painted(view: QWidget, color: QColor) -> int:
    """How many pixels of ``view`` carry ``color``'s outline or fill (its hue, not grey)."""
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    count = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            pixel = QColor(image.pixel(x, y))
            apart = abs(pixel.hue() - color.hue())
            if pixel.saturation() > 40 and min(apart, 360 - apart) < 20:
                count += 1
    return count


@pytest.mark.parametrize("choice", ["keep_mine", "take_theirs", "keep_both"])
def test_the_dialog_shows_both_shapes_at_one_scale_and_each_choice_is_stored(
    qtbot: QtBot, run: Run, workspace: Workspace, tmp_path: Path, choice: str
) -> None:
    bea, conflict, image_id = run(_conflict(workspace, tmp_path, theirs_deleted=False))
    QApplication.setQuitOnLastWindowClosed(False)
    window = QMainWindow()
    shown(qtbot, window, 900, 600)
    dialog = QtConflictDialog(bea, conflict, window)
    resolved: list[str] = []
    dialog.sig_resolved.connect(resolved.append)
    dialog.resize(640, 420)
    dialog.open()
    # both savers are this user's: the other is "you, in another window"
    run(until(lambda: "You (in another window) changed" in dialog.headline.text(), 30, "who saved since"))
    assert dialog.isVisible() and dialog.windowModality() is not Qt.WindowModality.NonModal
    # the same scale: their 60 px square covers far more of its pane than my 15 px one
    mine_pixels = _painted(dialog.mine_view, dialog.mine_view.color)
    theirs_pixels = _painted(dialog.theirs_view, dialog.theirs_view.color)
    assert mine_pixels > 0 and theirs_pixels > 8 * mine_pixels
    assert "1 hole" in dialog.theirs_caption.text()
    if choice == "keep_mine":
        screenshot(dialog, "conflict-dialog-changed")

    button = {"keep_mine": dialog.keep_mine, "take_theirs": dialog.take_theirs, "keep_both": dialog.keep_both}
    if choice == "keep_both":  # by keyboard: Alt+B, the button's mnemonic
        qtbot.keyClick(dialog, Qt.Key.Key_B, Qt.KeyboardModifier.AltModifier)
    else:
        qtbot.mouseClick(button[choice], Qt.MouseButton.LeftButton)
    run(until(lambda: not dialog.isVisible(), 30, "the dialog to close"))

    assert resolved == [choice] and bea.conflicts == [] and bea.pending == 0
    expected = {
        "keep_mine": [A, MINE],
        "take_theirs": [A, THEIRS],
        "keep_both": [A, THEIRS, MINE],
    }[choice]
    assert run(_stored(workspace, image_id)) == sorted(expected)
    run(bea.close())


def test_a_spheroid_deleted_by_the_other_says_so_and_keep_mine_puts_it_back(
    qtbot: QtBot, run: Run, workspace: Workspace, tmp_path: Path
) -> None:
    bea, conflict, image_id = run(_conflict(workspace, tmp_path, theirs_deleted=True))
    QApplication.setQuitOnLastWindowClosed(False)
    dialog = QtConflictDialog(bea, conflict)
    qtbot.add_widget(dialog)
    dialog.resize(640, 420)
    dialog.open()
    run(until(lambda: dialog.theirs_view.empty_text == "Deleted by you (in another window)", 30, "who"))
    assert "You (in another window) deleted spheroid" in dialog.headline.text()
    screenshot(dialog, "conflict-dialog-deleted")

    qtbot.keyClick(dialog, Qt.Key.Key_Return)  # Keep mine is the default
    run(until(lambda: not dialog.isVisible(), 30, "the dialog to close"))
    assert run(_stored(workspace, image_id)) == sorted([A, MINE])
    run(bea.close())
