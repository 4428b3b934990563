"""Helpers for the whole-window workflows: the dialog a toolbar action opened, keys sent to the active
window as a user types them, and a screenshot of the window with its open dialog drawn over it (where the
user sees it) rather than two pictures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from tests.workbench.qt.conftest import SCREENS
from tests.workbench.qt.windows import until
from workbench.qt.qt_main_window import QtMainWindow

__all__ = ["SIZE", "dialog_of", "press", "scene", "tiles"]

SIZE = (1280, 800)
"""The window's size in these tests: the README's pictures are taken at it."""

D = TypeVar("D", bound=QWidget)


async def press(qtbot: QtBot, window: QtMainWindow, key: Qt.Key, modifiers: Qt.KeyboardModifier) -> None:
    """A shortcut typed into the window (shortcuts act in the active window only)."""
    window.activateWindow()
    window.raise_()
    await until(window.isActiveWindow, 10, "the window to be active")
    qtbot.keyClick(window, key, modifiers)


async def dialog_of(window: QtMainWindow, kind: type[D], timeout: float = 10.0) -> D:
    """The visible dialog of ``kind`` the window opened."""

    def shown() -> D | None:
        return next((d for d in window.findChildren(kind) if d.isVisible()), None)

    await until(shown, timeout, f"the {kind.__name__} dialog")
    found = shown()
    assert found is not None
    return found


async def scene(window: QtMainWindow, name: str, dialog: QWidget | None = None) -> Path:
    """``test-output/screens/<name>.png``: the window, with ``dialog`` drawn centred over it as it is
    shown (a dialog is a window of its own, which a grab of the main window leaves out)."""
    await asyncio.sleep(0.3)  # pending paints and layouts
    picture = window.grab()
    if dialog is not None:
        over = dialog.grab()
        painter = QPainter(picture)
        corner = QPoint((window.width() - dialog.width()) // 2, (window.height() - dialog.height()) // 2)
        painter.drawPixmap(corner, over)
        painter.setPen(QColor("#5f6368"))  # the dialog's frame, which the window manager would draw
        painter.drawRect(corner.x(), corner.y(), dialog.width() - 1, dialog.height() - 1)
        painter.end()
    SCREENS.mkdir(parents=True, exist_ok=True)
    target = SCREENS / f"{name}.png"
    assert picture.save(str(target)), f"could not save {target}"
    return target


def tiles(window: QtMainWindow) -> dict[str, str]:
    """What the gallery shows now: each loaded tile's name and its segmentation badge's status."""
    model = window.gallery.model
    shown = (model.tile(row) for row in range(model.rowCount()))
    return {tile.name: tile.segmentation_status for tile in shown if tile is not None}
