"""The notification area: each :class:`~workbench.tasks.Notice` as a card with what happened, what to do,
foldable details (a server's log lines, a traceback) and a dismiss button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.tasks import Level, Notice, Notices

__all__ = ["QtNotices"]

COLOURS = {Level.INFO: "#2f6fb0", Level.WARNING: "#b7791f", Level.ERROR: "#c0392b"}
LABELS = {Level.INFO: "Info", Level.WARNING: "Warning", Level.ERROR: "Error"}


class QtNotices(QWidget):
    """Every notice in ``notices``, newest at the top; follows the model as notices come and go."""

    def __init__(self, notices: Notices, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notices = notices
        self._cards: dict[int, _QtNoticeCard] = {}
        self._empty = QLabel("No notices.")
        self._empty.setStyleSheet("color: palette(mid);")
        self._list = QVBoxLayout()
        self._list.setSpacing(6)
        holder = QWidget()
        column = QVBoxLayout(holder)
        column.addWidget(self._empty)
        column.addLayout(self._list)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # cards wrap instead
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(holder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._disconnect = notices.changed.connect(self._on_notices_changed)
        self.destroyed.connect(lambda: self._disconnect())
        self._on_notices_changed(notices.items)

    def cards(self) -> list[_QtNoticeCard]:
        """The cards shown, newest first."""
        return [self._cards[notice.id] for notice in reversed(self.notices.items) if notice.id in self._cards]

    def _on_notices_changed(self, items: list[Notice]) -> None:
        wanted = {notice.id for notice in items}
        for notice_id in [i for i in self._cards if i not in wanted]:
            self._cards.pop(notice_id).deleteLater()
        for notice in items:
            if notice.id not in self._cards:
                card = _QtNoticeCard(notice)
                card.dismiss.clicked.connect(lambda _=False, n=notice: self.notices.dismiss(n))
                self._cards[notice.id] = card
                self._list.insertWidget(0, card)
        self._empty.setVisible(not items)


class _QtNoticeCard(QFrame):
    def __init__(self, notice: Notice) -> None:
        super().__init__()
        self.notice = notice
        self.setObjectName("notice")
        colour = COLOURS[notice.level]
        self.setStyleSheet(
            f"QFrame#notice {{ border: 1px solid {colour}; border-left: 4px solid {colour}; "
            "border-radius: 3px; }"
        )
        self.title = QLabel(f"<b>{LABELS[notice.level]}:</b> {_escaped(notice.title)}")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.advice = QLabel(notice.advice)
        self.advice.setWordWrap(True)
        self.advice.setVisible(bool(notice.advice))
        self.dismiss = QPushButton("Dismiss")
        self.dismiss.setToolTip("Remove this notice")
        self.details = QPlainTextEdit(notice.details)
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        self.details.setMinimumHeight(100)
        self.fold = QToolButton()
        self.fold.setText("Details")
        self.fold.setCheckable(True)
        self.fold.setArrowType(Qt.ArrowType.RightArrow)
        self.fold.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.fold.setVisible(bool(notice.details))
        self.fold.toggled.connect(self._on_fold_toggled)
        buttons = QHBoxLayout()
        buttons.addWidget(self.fold)
        buttons.addStretch(1)
        buttons.addWidget(self.dismiss)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.advice)
        layout.addLayout(buttons)
        layout.addWidget(self.details)

    def _on_fold_toggled(self, unfolded: bool) -> None:
        self.details.setVisible(unfolded)
        self.fold.setArrowType(Qt.ArrowType.DownArrow if unfolded else Qt.ArrowType.RightArrow)


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
