"""The review bar under the canvas: where the reviewer is ("37 of 120"), previous and next, the walk filter,
the verdicts and their comment, all by keyboard.

A thin view over :class:`workbench.review_walk.ReviewWalk`. The keys are window shortcuts (A accept, F needs
fix, R reject, PageUp/PageDown and Alt+Left/Alt+Right previous/next), so they work wherever the focus is in
the review page and napari's canvas, whose own shape keys include A, F and R, never sees them; typing in the
comment box is text, not verdicts (a line edit takes plain keys before shortcuts). After a verdict the walk
moves on to the next image, as a reviewer going through a plate expects: the tooltips say so. "Needs fix"
and "reject" need a comment: without one the cursor goes to the comment box and Enter there gives the
verdict. The bar asks for images with ``sig_image_requested``; the page opens them and tells the bar
through the review session's ``image_opened`` (or :meth:`QtReviewBar.show_image`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from workbench.gallery import Tile
from workbench.review_walk import ReviewedSession, ReviewWalk, Verdict, VerdictOutcome, WalkFilter
from workbench.tasks import Task, Tasks

__all__ = ["QtReviewBar"]

logger = logging.getLogger(__name__)

REVIEW_NAMES = {
    "UNREVIEWED": "unreviewed",
    "ACCEPTED": "accepted",
    "NEEDS_FIX": "needs fix",
    "REJECTED": "rejected",
}
VERDICT_KEYS = {Verdict.ACCEPTED: "A", Verdict.NEEDS_FIX: "F", Verdict.REJECTED: "R"}
VERDICT_TIPS = {
    Verdict.ACCEPTED: "The outlines are right. The next image of the walk opens.",
    Verdict.NEEDS_FIX: "The outlines need correcting: say what in the comment. The next image opens.",
    Verdict.REJECTED: "The image is unusable (blurred, empty, wrong well): say why. The next image opens.",
}


class QtReviewBar(QWidget):
    sig_image_requested = Signal(int)

    def __init__(
        self,
        walk: ReviewWalk,
        tasks: Tasks,
        session: ReviewedSession | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.walk = walk
        self._tasks = tasks
        self._running: Task | None = None
        self._pending: Verdict | None = None  # the verdict waiting for its comment
        self._focus_before: QWidget | None = None
        self._shown: tuple[int, int] | None = None  # the image the page shows, and its version
        self._deferred: Callable[[], None] | None = None  # a show_image that came during a step

        self.previous_button = QPushButton("◀ Previous", self)
        self.previous_button.setToolTip("The previous image of the walk (PageUp or Alt+Left)")
        self.position = QLabel("", self)
        self.position.setAccessibleName("Position in the walk")
        self.position.setMinimumWidth(self.fontMetrics().horizontalAdvance("1,234 of 12,345 needing a fix"))
        self.position.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.next_button = QPushButton("Next ▶", self)
        self.next_button.setToolTip("The next image of the walk (PageDown or Alt+Right)")
        self.walk_box = QComboBox(self)
        for choice in WalkFilter:
            self.walk_box.addItem(choice.value, choice.name)
        self.walk_box.setToolTip("Which of the gallery's images to walk through")
        self.verdict_buttons: dict[Verdict, QPushButton] = {}
        for verdict in Verdict:
            button = QPushButton(f"{verdict.action} ({VERDICT_KEYS[verdict]})", self)
            button.setToolTip(f"{VERDICT_TIPS[verdict]} Key: {VERDICT_KEYS[verdict]}")
            button.clicked.connect(lambda _=False, chosen=verdict: self.give(chosen))
            self.verdict_buttons[verdict] = button
        self.comment = QLineEdit(self)
        self.comment.setPlaceholderText("Comment (needed for Needs fix and Reject)")
        self.comment.setClearButtonEnabled(True)
        self.message = QLabel("", self)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.look_again = QPushButton("Look again", self)
        self.look_again.setToolTip("Open the image's current version, then give the verdict")
        self.look_again.hide()

        moving = QHBoxLayout()
        for widget in (
            self.previous_button,
            self.position,
            self.next_button,
            QLabel("Walk:", self),
            self.walk_box,
        ):
            moving.addWidget(widget)
        moving.addStretch(1)
        for button in self.verdict_buttons.values():
            moving.addWidget(button)
        commenting = QHBoxLayout()
        commenting.addWidget(self.comment, 2)
        commenting.addWidget(self.message, 3)
        commenting.addWidget(self.look_again)
        layout = QGridLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(moving, 0, 0)
        layout.addLayout(commenting, 1, 0)

        keys: list[tuple[str, Callable[[], None]]] = [
            ("PgDown", self.go_next),
            ("Alt+Right", self.go_next),
            ("PgUp", self.go_previous),
            ("Alt+Left", self.go_previous),
            *[(key, lambda chosen=verdict: self.give(chosen)) for verdict, key in VERDICT_KEYS.items()],
        ]
        self.shortcuts: list[QShortcut] = []
        for sequence, handler in keys:
            shortcut = QShortcut(QKeySequence(sequence), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)  # the canvas never sees them
            shortcut.activated.connect(handler)
            self.shortcuts.append(shortcut)
        self.previous_button.clicked.connect(self.go_previous)
        self.next_button.clicked.connect(self.go_next)
        self.walk_box.activated.connect(self._on_walk_box_activated)
        self.comment.returnPressed.connect(self._on_comment_return_pressed)
        self.look_again.clicked.connect(self._on_look_again_clicked)
        self._session = session
        self._links: list[Callable[[], None]] = []  # undone when the walk is replaced or the bar goes
        links = self._links  # not self: the lambda below runs while the bar is being destroyed
        self.destroyed.connect(lambda *_: [undo() for undo in list(links)])
        self._follow(walk)
        if session is not None:
            unwatch = session.image_opened.connect(lambda image: self.show_image(image.id, image.version))
            self.destroyed.connect(lambda *_: unwatch())
        self._update()

    def _follow(self, walk: ReviewWalk) -> None:
        self._links.append(walk.changed.connect(lambda _: self._update()))
        if self._session is not None:
            self._links.append(walk.watch(self._session))
        self._links.append(walk.close)

    # --- what the page calls

    def set_walk(self, walk: ReviewWalk) -> None:
        """Walk another list from now on (another project, or the gallery's filter or order changed),
        standing on the image shown."""
        for undo in self._links:
            undo()
        self._links.clear()
        self.walk = walk
        self._follow(walk)
        if self._shown is not None:
            self.show_image(*self._shown)
        self._update()

    def show_image(self, image_id: int, version: int) -> None:
        """The page shows ``version`` of ``image_id`` now: verdicts name that version."""
        if self._running is not None:  # after the step running now (it may be moving the walk)
            self._deferred = lambda: self.show_image(image_id, version)
            return
        self._shown = (image_id, version)
        self.walk.looking_at(image_id, version)
        self.look_again.hide()
        current = self.walk.current
        if current is None or current.image_id != image_id:
            self._pending = None
            self.comment.clear()
            self._start("Finding the image in the review walk", lambda: self.walk.start(image_id))

    # --- moving

    def go_next(self) -> None:
        self._start(
            "Next image", lambda: self._moved(self.walk.next(), "That was the last image of the walk")
        )

    def go_previous(self) -> None:
        self._start(
            "Previous image", lambda: self._moved(self.walk.previous(), "This is the first image of the walk")
        )

    async def _moved(self, moving: Awaitable[Tile | None], at_end: str) -> None:
        tile = await moving
        if tile is None:
            self._say(at_end)
            return
        self._pending = None
        self.comment.clear()
        self._say("")
        self.sig_image_requested.emit(tile.image_id)

    def _on_walk_box_activated(self, index: int) -> None:
        chosen = WalkFilter[self.walk_box.itemData(index)]
        self._start("Changing the review walk", lambda: self.walk.set_walk(chosen))

    # --- verdicts

    def give(self, verdict: Verdict) -> None:
        """Give the current image ``verdict`` (with the comment typed), then move on to the next image."""
        if self._running is not None:
            return
        if verdict.needs_comment and not self.comment.text().strip():
            self._ask_comment(verdict)
            return
        comment = self.comment.text()
        self._start(f"Review: {verdict.label.lower()}", lambda: self._give(verdict, comment))

    def _ask_comment(self, verdict: Verdict) -> None:
        self._pending = verdict
        focused = QApplication.focusWidget()
        self._focus_before = focused if focused is not self.comment else self._focus_before
        self.comment.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._say(f"“{verdict.label}” needs a comment saying why: type it, then press Enter")

    def _on_comment_return_pressed(self) -> None:
        if self._pending is not None:
            self.give(self._pending)

    async def _give(self, verdict: Verdict, comment: str) -> None:
        outcome: VerdictOutcome = await self.walk.set_verdict(verdict, comment)
        if outcome.needs_comment:
            self._ask_comment(verdict)
            return
        self._say(outcome.message)
        self.look_again.setVisible(outcome.stale)
        if not outcome.stored:
            return
        self._pending = None
        self.comment.clear()
        if self._focus_before is not None:  # back where the reviewer was before typing the comment
            self._focus_before.setFocus(Qt.FocusReason.OtherFocusReason)
            self._focus_before = None
        tile = await self.walk.next()
        if tile is None:
            self._say(f"{outcome.message}. That was the last image of the walk")
            return
        self.sig_image_requested.emit(tile.image_id)

    def _on_look_again_clicked(self) -> None:
        self.look_again.hide()
        if self.walk.current is not None:
            self.sig_image_requested.emit(self.walk.current.image_id)

    # --- the rest

    def _start(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        """One step at a time: a key pressed while the last one runs is dropped, not queued."""
        if self._running is not None:
            return

        async def step(task: Task) -> None:
            try:
                await work()
            finally:
                self._running = None
                self._update()
                deferred, self._deferred = self._deferred, None
                if deferred is not None:
                    deferred()

        self._running = self._tasks.start(name, step)
        self._update()

    def _say(self, text: str) -> None:
        self.message.setText(text)

    def _update(self) -> None:
        walk = self.walk
        text = walk.position_text()
        current = walk.current
        if current is not None and walk.position is not None and current.review_status != "UNREVIEWED":
            text = f"{text} · {REVIEW_NAMES.get(current.review_status, current.review_status.lower())}"
        self.position.setText(text)
        idle = self._running is None
        self.previous_button.setEnabled(idle and walk.has_previous)
        self.next_button.setEnabled(idle and walk.has_next)
        for button in self.verdict_buttons.values():
            button.setEnabled(idle and current is not None)
        index = self.walk_box.findData(walk.walk.name)
        if index != self.walk_box.currentIndex():
            self.walk_box.setCurrentIndex(index)
