"""The one line under the review canvas that says where the edits stand: "All edits saved", "Saving 2
edits…", "3 edits kept on this computer: the server cannot be reached; they are sent when it is back", a
refusal's message, or "1 conflict — Resolve…", whose button opens the choice for the first conflict held.
It follows the Saver's ``status_changed`` (the wording is :class:`workbench.saving.SaveStatus`'s)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from workbench.qt.qt_conflict import QtConflictDialog
from workbench.saving import Saver, SaveStatus

__all__ = ["QtSaveStatus"]

# a dot before the words, so the state is seen at a glance from the corner of the eye
COLORS = {"saved": "#2e7d32", "saving": "#7a7a7a", "kept": "#b26a00", "problem": "#c62828"}


class QtSaveStatus(QWidget):
    """The save status of ``saver``'s edits, with a Resolve… button while a conflict waits."""

    def __init__(self, saver: Saver, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.saver = saver
        self.dialog: QtConflictDialog | None = None
        self.dot = QLabel("●")
        self.text = QLabel()
        self.resolve = QPushButton("&Resolve…")
        self.resolve.setToolTip("Show both shapes and choose which to keep")
        self.resolve.clicked.connect(self._on_resolve_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(self.dot)
        layout.addWidget(self.text)
        layout.addWidget(self.resolve)
        layout.addStretch(1)
        disconnect = saver.status_changed.connect(self._on_saver_status_changed)
        self.destroyed.connect(lambda: disconnect())
        self._on_saver_status_changed(saver.status)

    def _on_saver_status_changed(self, status: SaveStatus) -> None:
        text = status.text
        self.text.setText(f"{text} —" if status.conflicts else text)
        self.text.setToolTip(
            "\n".join(status.refusal.problems) if status.refusal is not None and not status.conflicts else ""
        )
        self.resolve.setVisible(bool(status.conflicts))
        self.dot.setStyleSheet(f"color: {COLORS[_kind(status)]};")

    def _on_resolve_clicked(self) -> None:
        if not self.saver.conflicts or (self.dialog is not None and self.dialog.isVisible()):
            return
        self.dialog = QtConflictDialog(self.saver, self.saver.conflicts[0], self.window())
        self.dialog.finished.connect(self.dialog.deleteLater)
        self.dialog.open()


def _kind(status: SaveStatus) -> str:
    unsent = status.pending - status.held
    if status.conflicts or (status.refusal is not None and not unsent):
        return "problem"
    if status.unreachable and unsent:
        return "kept"
    return "saving" if unsent else "saved"
