"""The choice a conflict needs: someone else changed (or deleted) a spheroid while this user was editing it.
Both shapes side by side at the same scale, who saved since, and three ways out: keep mine, take theirs,
keep both. Opened with ``open()`` (a nested ``exec()`` loop inside a coroutine fails under qasync); the
choice runs as a task the dialog holds, and the dialog closes once the Saver has it in its journal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.api import ApiError
from workbench.qt.buttons import make_default
from workbench.qt.qt_shape_view import QtShapeView, bounds_of, ring_area
from workbench.saving import Conflict, Saver

__all__ = ["QtConflictDialog"]

logger = logging.getLogger(__name__)

MINE = QColor("#1f77b4")
THEIRS = QColor("#d62728")


class QtConflictDialog(QDialog):
    """The choice for ``conflict``, carried out through ``saver``; ``sig_resolved`` says which
    ("keep_mine", "take_theirs" or "keep_both")."""

    sig_resolved = Signal(str)

    def __init__(self, saver: Saver, conflict: Conflict, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.saver = saver
        self.conflict = conflict
        self._task: asyncio.Task[None] | None = None
        self._authors: asyncio.Task[None] | None = None
        self.setWindowTitle(f"Spheroid {conflict.spheroid_id}: both of you changed it")
        self.headline = QLabel(self._headline([]))
        self.headline.setWordWrap(True)
        frame = bounds_of([conflict.mine, conflict.theirs])
        gone = "You deleted it" if conflict.mine is None else ""
        self.mine_view = QtShapeView(conflict.mine, frame, MINE, gone)
        self.theirs_view = QtShapeView(conflict.theirs, frame, THEIRS, "Deleted by someone else")
        self.mine_caption, self.theirs_caption = QLabel(), QLabel()
        self.keep_mine = QPushButton("Keep &mine")
        self.take_theirs = QPushButton("Take &theirs")
        self.keep_both = QPushButton("Keep &both")
        self.later = QPushButton("Decide &later")
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #a00;")
        self.problem.setWordWrap(True)
        self.problem.setVisible(False)
        self._lay_out()
        self._explain()
        self._wire()
        make_default(self.keep_mine, self)

    # building

    def _lay_out(self) -> None:
        panes = QGridLayout()
        panes.addWidget(self.mine_caption, 0, 0)
        panes.addWidget(self.theirs_caption, 0, 1)
        panes.addWidget(self.mine_view, 1, 0)
        panes.addWidget(self.theirs_view, 1, 1)
        buttons = QHBoxLayout()
        for button in (self.keep_mine, self.take_theirs, self.keep_both):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.later)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addLayout(panes, 1)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)

    def _explain(self) -> None:
        conflict = self.conflict
        self.mine_caption.setText(_caption("Yours", MINE, conflict.mine))
        self.theirs_caption.setText(_caption("Stored now", THEIRS, conflict.theirs))
        deleted_mine, deleted_theirs = conflict.mine is None, conflict.theirs is None
        self.keep_mine.setToolTip(
            "Delete it anyway"
            if deleted_mine
            else "Put your shape back as a new spheroid"
            if deleted_theirs
            else "Save your shape over theirs"
        )
        self.take_theirs.setToolTip(
            "Drop your change: " + ("it stays deleted" if deleted_theirs else "the stored shape stays")
        )
        self.keep_both.setToolTip("Keep theirs as stored and add your shape as a new spheroid")
        self.keep_both.setEnabled(not deleted_mine)  # a deletion has no shape to add
        self.later.setToolTip("Close; the status line keeps the conflict until you choose")

    def _wire(self) -> None:
        self.keep_mine.clicked.connect(self._on_keep_mine_clicked)
        self.take_theirs.clicked.connect(self._on_take_theirs_clicked)
        self.keep_both.clicked.connect(self._on_keep_both_clicked)
        self.later.clicked.connect(self.reject)

    def open(self) -> None:
        """Show it (window-modal, no nested loop) and ask who saved since."""
        super().open()
        if self._authors is None:
            self._authors = asyncio.ensure_future(self._show_authors())

    async def _show_authors(self) -> None:
        try:
            names = await self.saver.authors_since(self.conflict)
        except ApiError as error:  # only the wording suffers: "someone else" stays
            logger.info("who saved image %d since is unknown: %s", self.conflict.image_id, error)
            return
        if names:
            self.headline.setText(self._headline(names))
            self.theirs_view.empty_text = f"Deleted by {_joined(names)}"
            self.theirs_view.update()

    def _headline(self, names: list[str]) -> str:
        conflict = self.conflict
        did = "deleted" if conflict.theirs is None else "changed"
        who = _joined(names) if names else "someone else"
        who = who[0].upper() + who[1:]
        return (
            f"<b>{who} {did} "
            f"spheroid {conflict.spheroid_id}</b> (saved as version {conflict.current_version}) while you "
            f"were editing it from version {conflict.base_version}. Which shape should be kept?"
        )

    # the choices

    def _on_keep_mine_clicked(self) -> None:
        self._choose("keep_mine", self.saver.keep_mine)

    def _on_take_theirs_clicked(self) -> None:
        self._choose("take_theirs", self.saver.take_theirs)

    def _on_keep_both_clicked(self) -> None:
        self._choose("keep_both", self.saver.keep_both)

    def _choose(self, choice: str, act: Callable[[Conflict], Awaitable[None]]) -> None:
        if self._task is not None and not self._task.done():
            return  # a double click
        self._set_busy(True)
        self._task = asyncio.ensure_future(self._carry_out(choice, act))

    async def _carry_out(self, choice: str, act: Callable[[Conflict], Awaitable[None]]) -> None:
        try:
            await act(self.conflict)
        except Exception as error:  # the choice is not journalled: say so, let the user try again
            logger.exception("resolving the conflict on spheroid %d failed", self.conflict.spheroid_id)
            self.problem.setText(f"Not done: {error}. Try again.")
            self.problem.setVisible(True)
            self._set_busy(False)
            return
        self.sig_resolved.emit(choice)
        self.accept()

    def _set_busy(self, busy: bool) -> None:
        for button in (self.keep_mine, self.take_theirs, self.later):
            button.setEnabled(not busy)
        self.keep_both.setEnabled(not busy and self.conflict.mine is not None)

    def done(self, result: int) -> None:
        if self._authors is not None:
            self._authors.cancel()
        super().done(result)


def _caption(title: str, color: QColor, shape: Mapping[str, Any] | None) -> str:
    if shape is None:
        return f"<b style='color:{color.name()}'>{title}</b> — deleted"
    holes = len(shape.get("holes") or ())
    with_holes = f", {holes} hole{'s' if holes != 1 else ''}" if holes else ""
    return f"<b style='color:{color.name()}'>{title}</b> — {ring_area(shape):,.0f} px²{with_holes}"


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
