"""The review canvas's toolbar: the editing tools (checkable, one at a time) and the commands, with keys.

:data:`TOOLS` and :data:`COMMANDS` are the one list of what the canvas offers and on which key, which the
toolbar's tooltips and the shortcut sheet (F1) both show. napari's own Shapes keys (A, F, R among them) are
not used: A, F and R are the review verdicts of the review bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QToolBar, QWidget

__all__ = ["COMMANDS", "REVIEW_KEYS", "TOOLS", "QtReviewTools", "ToolKey"]


@dataclass(frozen=True)
class ToolKey:
    name: str
    text: str
    keys: tuple[str, ...]
    tip: str


TOOLS: Final[tuple[ToolKey, ...]] = (
    ToolKey(
        "select",
        "Select",
        ("V",),
        "Click a spheroid to select it (Shift adds); drag a selected one to move it",
    ),
    ToolKey(
        "edit",
        "Edit vertices",
        ("E",),
        "Drag the vertices of the selected spheroid; Enter or E again keeps them",
    ),
    ToolKey("draw", "Draw", ("D",), "Draw a new spheroid: hold the button and trace its outline"),
    ToolKey("slice", "Slice", ("S",), "Draw a line across a spheroid to split it in two"),
    ToolKey("add_hole", "Add hole", ("H",), "Trace a hole inside a spheroid"),
    ToolKey("remove_hole", "Remove hole", ("Shift+H",), "Click inside a hole to fill it"),
    ToolKey("brush", "Brush", ("B",), "Paint to add to the spheroid the stroke starts on"),
    ToolKey("erase", "Erase", ("X",), "Paint to erase from the spheroid the stroke starts on"),
)
COMMANDS: Final[tuple[ToolKey, ...]] = (
    ToolKey("delete", "Delete", ("Delete", "Backspace"), "Delete the selected spheroids"),
    ToolKey("merge", "Merge", ("M",), "Merge the selected spheroids into one (they must touch)"),
    ToolKey("simplify", "Simplify", ("L",), "Simplify the outlines of the selected spheroids (1 px)"),
    ToolKey("undo", "Undo", ("Ctrl+Z",), "Undo the last edit"),
    ToolKey("redo", "Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo the edit undone"),
    ToolKey(
        "save", "Save now", ("Ctrl+S",), "Send the edits to the server now (they are saved by themselves too)"
    ),
    ToolKey(
        "full", "Full resolution", ("O",), "Load the original image at full resolution and its true values"
    ),
    ToolKey("help", "Keys", ("F1",), "Show every key of the review canvas"),
)
REVIEW_KEYS: Final[tuple[tuple[str, str], ...]] = (
    ("A", "Accept the image's outlines"),
    ("F", "Mark the image as needing a fix"),
    ("R", "Reject the image"),
    ("PageDown, Alt+Right", "Next image"),
    ("PageUp, Alt+Left", "Previous image"),
    ("Esc", "Cancel the outline being drawn or edited; else back to the gallery"),
)
"""The review flow's keys (the review bar's), listed on the shortcut sheet beside the tools'."""


class QtReviewTools(QToolBar):
    """Tools and commands; ``sig_tool_chosen(name)`` and ``sig_command_triggered(name)``."""

    sig_tool_chosen = Signal(str)
    sig_command_triggered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Review tools", parent)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.actions_by_name: dict[str, QAction] = {}
        group = QActionGroup(self)
        group.setExclusive(True)
        for tool in TOOLS:
            action = self._add(tool)
            action.setCheckable(True)
            group.addAction(action)
            action.triggered.connect(lambda _=False, name=tool.name: self.sig_tool_chosen.emit(name))
        self.addSeparator()
        for command in COMMANDS:
            action = self._add(command)
            action.triggered.connect(lambda _=False, name=command.name: self.sig_command_triggered.emit(name))
        self.addSeparator()
        self.addWidget(QLabel(" Brush "))
        self.brush_radius = QDoubleSpinBox()
        self.brush_radius.setRange(1.0, 200.0)
        self.brush_radius.setValue(8.0)
        self.brush_radius.setSuffix(" px")
        self.brush_radius.setToolTip("Radius of the brush and the eraser, in image pixels")
        self.addWidget(self.brush_radius)
        self.actions_by_name["select"].setChecked(True)

    def _add(self, tool: ToolKey) -> QAction:
        action = QAction(tool.text, self)
        action.setShortcuts([QKeySequence(key) for key in tool.keys])
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{tool.text} ({', '.join(tool.keys)}): {tool.tip}")
        action.setObjectName(f"review-{tool.name}")
        self.addAction(action)
        self.actions_by_name[tool.name] = action
        return action

    def choose(self, name: str) -> None:
        """Check tool ``name`` (as its key or button does) and tell the canvas."""
        self.actions_by_name[name].setChecked(True)
        self.sig_tool_chosen.emit(name)
