"""Helpers for tests of the whole window: one built on files of its own (settings, sessions, data folder)
and closed as a user closes it, and a wait for what the user would see."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

from tests.workbench.qt.conftest import SCREENS, Run, offline_environment
from workbench.qt.qt_main_window import QtMainWindow
from workbench.qt.settings import WindowSettings
from workbench.startup import StartOptions

__all__ = ["close", "options_in", "settings_in", "shot", "until"]


async def until(predicate: Callable[[], object], timeout: float = 60.0, what: str = "") -> None:
    """Wait, with the window repainting, until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


def options_in(folder: Path, **overrides: object) -> StartOptions:
    options = StartOptions(
        data_dir=folder / "data",
        config_dir=folder / "config",
        cache_dir=folder / "cache",
        journal_dir=folder / "edits",
        environment=offline_environment(),
    )
    for name, value in overrides.items():
        setattr(options, name, value)
    return options


def settings_in(folder: Path) -> WindowSettings:
    return WindowSettings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))


def close(window: QtMainWindow, run: Run) -> None:
    """Close as the user does (the window's close button), and wait until the workspace is closed."""
    if not shiboken6.isValid(window):
        return  # closed by the test already

    async def closing() -> None:
        window.tasks.cancel_all()  # else the window asks first (tested on its own)
        await until(lambda: not window.tasks.running, 30, "the tasks to end")
        window.close()
        await until(lambda: window._closed, 60, "the window to close")

    keep_qt_running()
    run(closing(), 70)
    window.deleteLater()


def keep_qt_running() -> None:
    """As ``workbench.qt.app.main`` does: the window, not Qt's "last window closed", ends the program
    (else closing one test's window would stop the loop under the next ``run``)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)


async def shot(widget: QWidget, name: str) -> Path:
    """Save what ``widget`` shows as ``test-output/screens/<name>.png``, from inside the running loop.

    The harness's ``screenshot`` runs Qt's events itself; while the window has asyncio work under way
    (a server starting, the live connection), that would run the loop's callbacks outside the loop.
    Here the loop runs Qt's events for a moment (layouts settle), then the widget is drawn."""
    await asyncio.sleep(0.2)
    SCREENS.mkdir(parents=True, exist_ok=True)
    target = SCREENS / f"{name}.png"
    assert widget.grab().save(str(target)), f"could not save {target}"
    return target
