"""The shortcut sheet (F1): every key of the review canvas and of the review flow, on one page."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from workbench.qt.qt_review_tools import COMMANDS, REVIEW_KEYS, TOOLS

__all__ = ["QtShortcutSheet"]


class QtShortcutSheet(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Review keys")
        self.text = QLabel(self._html())
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)

    @staticmethod
    def _html() -> str:
        def rows(entries: list[tuple[str, str]]) -> str:
            return "".join(
                f"<tr><td style='padding-right:16px'><b>{escape(keys)}</b></td><td>{escape(what)}</td></tr>"
                for keys, what in entries
            )

        tools = [(", ".join(tool.keys), f"{tool.text}: {tool.tip}") for tool in TOOLS]
        commands = [(", ".join(command.keys), f"{command.text}: {command.tip}") for command in COMMANDS]
        return (
            "<h3>Tools</h3><table>" + rows(tools) + "</table>"
            "<h3>Commands</h3><table>" + rows(commands) + "</table>"
            "<h3>Review</h3><table>" + rows(list(REVIEW_KEYS)) + "</table>"
            "<p>napari's own shape keys (A, F, R and the others) are not used on the review canvas: "
            "A, F and R give the review verdicts here. Scroll to zoom, drag to pan with Select.</p>"
        )
