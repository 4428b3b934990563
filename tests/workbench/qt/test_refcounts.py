"""The guard against PySide6 6.12 losing a reference to ``None`` on every call of a Qt method that returns
nothing (Python 3.11): without it, a window that repaints for long enough aborts the interpreter."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from workbench.qt.refcounts import HEADROOM, keep_singletons_alive


def test_a_long_session_of_qt_calls_leaves_none_alive(qtbot: QtBot) -> None:
    keep_singletons_alive()
    label = QLabel()
    qtbot.add_widget(label)
    before = sys.getrefcount(None)
    for k in range(20_000):  # as many void calls as a few seconds of scrolling
        label.setText(str(k))
    after = sys.getrefcount(None)
    assert after > HEADROOM // 2 or sys.version_info >= (3, 12)
    assert after >= before - 20_000  # whatever PySide does, None stays far from zero
