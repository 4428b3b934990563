"""``spheroseg workbench --check`` in the window: once signed in offline, the installation check runs as a
task the Activity dock shows, its report is printed, and the window closes with the check's exit status.

The report's first line says how long the window took to appear after the program started (the bundle's
cold start: ``benchmarks/desktop_bundle.py`` reads it).
"""

from __future__ import annotations

import logging
import sys
import time

import psutil
from PySide6.QtCore import QTimer

from workbench.installation_check import check_installation
from workbench.qt.qt_main_window import QtMainWindow
from workbench.tasks import Task
from workbench.workspace import Workspace

__all__ = ["CHECK_TIMEOUT_S", "InstallationCheckRun"]

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 600
"""A check that has not ended by then (the offline server never came up, say) fails instead of waiting."""
EXIT_FAILED = 1
EXIT_TIMED_OUT = 2


class InstallationCheckRun:
    """Runs the check in ``window`` once its workspace opens; :attr:`exit_status` says how it went."""

    def __init__(self, window: QtMainWindow) -> None:
        self.window = window
        self.exit_status = EXIT_FAILED
        window.sig_workspace_opened.connect(self._on_window_workspace_opened)
        self._deadline = QTimer(window)
        self._deadline.setSingleShot(True)
        self._deadline.timeout.connect(self._on_deadline_timeout)
        self._deadline.start(CHECK_TIMEOUT_S * 1000)

    def window_shown(self) -> None:
        """Called after the window's first paint."""
        since_start = time.time() - psutil.Process().create_time()
        _say(f"Window shown {since_start:.2f} s after the program started")

    def _on_window_workspace_opened(self, workspace: Workspace) -> None:
        self.window.tasks.start("Checking this installation", self._check)

    async def _check(self, task: Task) -> None:
        assert self.window.workspace is not None
        try:
            report = await check_installation(self.window.workspace, task)
        except Exception as error:
            logger.exception("the installation check failed")
            _say(f"Installation check FAILED: {error}")
        else:
            for line in report.lines():
                _say(line)
            self.exit_status = 0 if report.passed else EXIT_FAILED
        self._deadline.stop()
        self.window.close_without_asking()

    def _on_deadline_timeout(self) -> None:
        _say(f"Installation check FAILED: not done after {CHECK_TIMEOUT_S} s (see the window's Activity)")
        self.exit_status = EXIT_TIMED_OUT
        self.window.close_without_asking()


def _say(line: str) -> None:
    # the report is for whoever ran the command, on its standard output; the log may go to a file
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
