"""Windows shown for real under Xvfb (pytest-xvfb starts it), on one asyncio loop running on Qt's (qasync),
against a real offline server process; screenshots go to ``test-output/screens/``."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import qasync
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

import workbench.qt  # noqa: F401  (its guard for PySide6 6.12 on Python 3.11, before any window)
from workbench.tasks import Notices, Tasks
from workbench.workspace import Workspace, open_offline

T = TypeVar("T")
W = TypeVar("W", bound=QWidget)
SCREENS = Path(__file__).resolve().parents[3] / "test-output" / "screens"

os.environ.setdefault("QT_QPA_PLATFORM", "xcb")


class Run(Protocol):
    def __call__(self, coroutine: Coroutine[Any, Any, T], timeout: float = ...) -> T: ...


class _TestLoop(qasync.QEventLoop):  # type: ignore[misc]  # qasync is untyped
    """qasync's loop, kept the running loop between ``run`` calls too.

    In a program the loop runs all the time. In a test, Qt also runs its events outside ``run``: qasync's
    ``run_until_complete`` runs them once more after the loop stopped, and qtbot's clicks and waits run
    them. An asyncio callback due then (a WebSocket handshake or keepalive, a subprocess pipe) would
    fail with "no running event loop", which the live channel reads as a lost connection."""

    def run_forever(self) -> Any:
        try:
            return super().run_forever()
        finally:
            asyncio.events._set_running_loop(self)


@pytest.fixture(autouse=True)
def _no_window_outlives_its_test(qapp: QApplication) -> Iterator[None]:
    """Close and delete what a test left open, while Qt is idle and between tests.

    A window a test forgot (or one of its children held by a Python cycle) would otherwise be deleted
    whenever the garbage collector next ran: in a later test, mid-way through its own Qt or asyncio work."""
    yield
    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the window runs on: asyncio's, driven by Qt's event loop."""
    event_loop = _TestLoop(qapp, already_running=False)
    asyncio.set_event_loop(event_loop)
    asyncio.events._set_running_loop(event_loop)
    yield event_loop
    event_loop.run_until_complete(asyncio.sleep(0))  # let cancelled tasks finish
    asyncio.events._set_running_loop(None)
    asyncio.set_event_loop(None)
    event_loop.close()  # now, while Qt's objects behind it still exist


@pytest.fixture
def run(loop: asyncio.AbstractEventLoop) -> Run:
    """``run(coroutine)``: run it on the Qt loop (windows repaint meanwhile), failing after ``timeout``."""

    def run_until_done(coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    return run_until_done


def offline_environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {**kept, "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024", "SPHEROSEG_CLUSTER_WORKERS": "1"}


@pytest.fixture
def workspace(run: Run, tmp_path: Path) -> Iterator[Workspace]:
    """A signed-in workspace on a fresh offline server of its own (a few seconds to start)."""
    opened = run(
        open_offline(
            tmp_path / "data",
            cache_dir=tmp_path / "cache",
            environment=offline_environment(),
            journal_dir=tmp_path / "journal",
        )
    )
    yield opened
    run(opened.close())


@pytest.fixture
def tasks() -> Tasks:
    return Tasks(Notices())


def shown(qtbot: QtBot, widget: W, width: int, height: int) -> W:
    """``widget`` alone at ``width`` x ``height``, shown and on screen; qtbot closes it after the test."""
    qtbot.add_widget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def screenshot(widget: QWidget, name: str) -> Path:
    """Save what ``widget`` shows now as ``test-output/screens/<name>.png`` (look at it)."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    QApplication.processEvents()
    target = SCREENS / f"{name}.png"
    assert widget.grab().save(str(target)), f"could not save {target}"
    return target
