"""The desktop program: one QApplication, one asyncio loop on Qt's (qasync), the window, and uncaught
errors turned into notices. ``spheroseg workbench`` calls :func:`main`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import qasync
from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from workbench.qt.errors import install_error_hooks
from workbench.qt.installation import InstallationCheckRun
from workbench.qt.qt_main_window import QtMainWindow
from workbench.startup import StartOptions

__all__ = ["main"]

logger = logging.getLogger(__name__)

APP_NAME = "SpheroSeg Workbench"
ORGANIZATION = "SpheroSeg"
ICON = Path(__file__).resolve().parents[2] / "resources" / "spheroseg.png"
"""In a source checkout and in the desktop bundle (not in a wheel: the window then has the platform's)."""


def main(argv: list[str] | None = None, options: StartOptions | None = None) -> int:
    """Run the window until it is closed (and the workspace behind it with it); the exit status."""
    app = QApplication.instance() or QApplication(sys.argv[:1] if argv is None else argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setOrganizationDomain("spheroseg.org")
    if ICON.is_file():
        app.setWindowIcon(QIcon(str(ICON)))
    app.setQuitOnLastWindowClosed(False)  # the window says when it is done: after its cleanup
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = QtMainWindow(options or StartOptions())
    check = InstallationCheckRun(window) if window.options.check else None
    uninstall = install_error_hooks(window.notices, loop)
    closed = asyncio.Event()
    # the window closes itself once its workspace is closed (the offline server stopped), so waiting for
    # it, not for Qt's "last window closed", keeps that cleanup from being cut short
    window.sig_closed.connect(closed.set)
    window.show()
    QTimer.singleShot(0, check.window_shown if check else lambda: logger.info("window shown"))  # first paint
    _close_on_terminate(window)
    if window.options.offline or window.options.sample_project or window.options.check:
        window.start_screen.start_offline()
    elif window.options.server_url and window.sessions.token_for(window.options.server_url):
        window.start_screen.connect_lab()
    try:
        with loop:
            loop.run_until_complete(closed.wait())
            loop.run_until_complete(_finish_the_rest())
    finally:
        uninstall()
        asyncio.set_event_loop(None)
    return check.exit_status if check else 0


async def _finish_the_rest(timeout: float = 5.0) -> None:
    """Cancel what still runs once the window is closed (views' watches, fetches) and let each end, as
    ``asyncio.run`` does, so none is destroyed while pending or runs after Qt's objects are gone."""
    rest = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=timeout)


def _close_on_terminate(window: QtMainWindow) -> None:
    """SIGTERM (``kill``, a logout) closes the window as its close button does, the workspace first, but
    without asking about running work: nobody is there to answer, and the session is ending anyway.

    Python runs a signal handler only when it next gets control, which Qt's event loop may not give
    for a while; a short timer gives it."""

    def terminated(number: int, frame: object) -> None:
        logger.info("signal %d: closing the window", number)
        QTimer.singleShot(0, window.close_without_asking)

    signal.signal(signal.SIGTERM, terminated)
    wake = QTimer(window)
    wake.timeout.connect(lambda: None)
    wake.start(250)
