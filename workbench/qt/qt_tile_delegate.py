"""How one gallery tile is painted: the thumbnail (a placeholder while it loads), the name elided to fit,
and two badges, segmentation status (top left) and review verdict (top right).

Each badge carries a symbol and a word as well as a colour (✓ segmented, ✗ failed, ! needs fix, …), so
nobody has to tell green from red, and its colours are a dark fill under white text or a light fill under
dark text, readable on any thumbnail.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem
from typing_extensions import override

from workbench.qt.qt_gallery_model import THUMBNAIL_EDGE, QtGalleryModel

__all__ = ["CELL", "PLACEHOLDER", "REVIEW_BADGES", "STATUS_BADGES", "Badge", "QtTileDelegate"]

PAD = 8
NAME_HEIGHT = 22
CELL = QSize(THUMBNAIL_EDGE + 2 * PAD, THUMBNAIL_EDGE + NAME_HEIGHT + 2 * PAD)
PLACEHOLDER = QColor(222, 226, 231)
"""The grey a tile shows until its thumbnail has come."""


@dataclass(frozen=True)
class Badge:
    text: str
    fill: QColor
    ink: QColor
    outline: bool = False


WHITE, DARK = QColor(255, 255, 255), QColor(33, 37, 41)
STATUS_BADGES = {
    "NONE": Badge("○ not segmented", QColor(248, 249, 250), DARK, outline=True),
    "QUEUED": Badge("◌ queued", QColor(84, 96, 110), WHITE),
    "RUNNING": Badge("◐ running", QColor(25, 90, 190), WHITE),
    "DONE": Badge("✓ segmented", QColor(22, 115, 52), WHITE),
    "FAILED": Badge("✗ failed", QColor(176, 32, 28), WHITE),
}
REVIEW_BADGES = {
    "UNREVIEWED": None,  # most images, most of the time: no badge keeps the grid calm
    "ACCEPTED": Badge("✓ accepted", QColor(22, 115, 52), WHITE),
    "NEEDS_FIX": Badge("! needs fix", QColor(245, 190, 30), DARK),
    "REJECTED": Badge("✗ rejected", QColor(176, 32, 28), WHITE),
}


class QtTileDelegate(QStyledItemDelegate):
    def __init__(self, model: QtGalleryModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._badge_font = QFont()
        self._badge_font.setPointSizeF(max(6.5, self._badge_font.pointSizeF() * 0.8))

    @override
    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    @override
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        rect: QRect = option.rect
        state = option.state
        palette: QPalette = option.palette
        painter.save()
        selected = bool(state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect.adjusted(2, 2, -2, -2), palette.highlight())
        picture = QRect(rect.x() + PAD, rect.y() + PAD, THUMBNAIL_EDGE, THUMBNAIL_EDGE)
        tile = self._model.tile(index.row())
        pixmap = self._model.thumbnail(tile.image_id) if tile is not None else None
        if pixmap is None:
            painter.fillRect(picture, PLACEHOLDER)
            if tile is not None and self._model.thumbnail_failed(tile.image_id):
                painter.setPen(DARK)
                painter.drawText(picture, Qt.AlignmentFlag.AlignCenter, "no preview")
        else:
            self._model.touch(tile.image_id)  # type: ignore[union-attr]  # a pixmap means a tile
            target = QRect(0, 0, pixmap.width(), pixmap.height())
            target.moveCenter(picture.center())
            painter.drawPixmap(target, pixmap)
        if state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(QPen(palette.highlight().color(), 2))
            painter.drawRect(rect.adjusted(2, 2, -3, -3))
        name_rect = QRect(rect.x() + PAD, picture.bottom() + 2, THUMBNAIL_EDGE, NAME_HEIGHT)
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        painter.setPen(palette.color(role))
        name = tile.name if tile is not None else "…"
        elided = option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, THUMBNAIL_EDGE)
        painter.drawText(name_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, elided)
        if tile is not None:
            painter.setFont(self._badge_font)
            self._badge(painter, picture, STATUS_BADGES.get(tile.segmentation_status), left=True)
            self._badge(painter, picture, REVIEW_BADGES.get(tile.review_status), left=False)
        painter.restore()

    def _badge(self, painter: QPainter, picture: QRect, badge: Badge | None, *, left: bool) -> None:
        if badge is None:
            return
        metrics = painter.fontMetrics()
        width, height = metrics.horizontalAdvance(badge.text) + 10, metrics.height() + 4
        x = picture.x() + 3 if left else picture.right() - 3 - width
        box = QRect(x, picture.y() + 3, width, height)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(DARK, 1) if badge.outline else Qt.PenStyle.NoPen)
        painter.setBrush(badge.fill)
        painter.drawRoundedRect(box, height / 2, height / 2)
        painter.setPen(badge.ink)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, badge.text)
