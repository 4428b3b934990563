"""What the workspace shows when the offline server process has died: its exit status, its last log
lines, and a Restart button that starts it again and reconnects."""

from __future__ import annotations

import signal

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

__all__ = ["QtServerCrash"]


class QtServerCrash(QFrame):
    sig_restart_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crash")
        self.setStyleSheet("QFrame#crash { border: 1px solid #c0392b; border-left: 4px solid #c0392b; }")
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.advice = QLabel()
        self.advice.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMinimumHeight(120)
        self.restart = QPushButton("&Restart the server")
        self.restart.setAutoDefault(True)  # Enter presses it, as in a dialog: the panel gives it the focus
        self.restart.clicked.connect(self._on_restart_clicked)
        row = QHBoxLayout()
        row.addWidget(self.advice, 1)
        row.addWidget(self.restart)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(row)
        layout.addWidget(self.log)
        self.setVisible(False)

    def show_crash(self, exit_status: int, log_tail: list[str]) -> None:
        how = (
            f"was killed (signal {-exit_status})"
            if exit_status < 0
            else f"stopped (exit status {exit_status})"
        )
        self.title.setText(f"<b>The offline server {how}.</b>")
        self.advice.setText(_advice(exit_status))
        self.show_log(log_tail)
        self.restart.setEnabled(True)
        self.restart.setText("&Restart the server")
        self.setVisible(True)
        self.restart.setFocus()

    def show_log(self, log_tail: list[str]) -> None:
        self.log.setPlainText("\n".join(log_tail) or "(the server wrote nothing to its log)")
        bar = self.log.verticalScrollBar()
        QTimer.singleShot(0, lambda: bar.setValue(bar.maximum()))  # the last lines say most, once laid out

    def set_restarting(self) -> None:
        self.restart.setEnabled(False)
        self.restart.setText("Restarting…")

    def _on_restart_clicked(self) -> None:
        self.sig_restart_requested.emit()


_SAFE = "Your projects and images are safe on disk. Restart the server to go on"


def _advice(exit_status: int) -> str:
    """What to tell the user: a server killed from outside leaves no last words in its log, so say who
    usually does that instead of pointing at lines that will not explain it."""
    if exit_status == -signal.SIGKILL:
        return (
            "Something outside the workbench ended it, most often the system when the computer ran short "
            f"of memory (close other programs, or segment fewer images at a time). {_SAFE}."
        )
    return f"{_SAFE}; its last log lines below say what happened."
