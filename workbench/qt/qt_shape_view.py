"""One spheroid drawn small (its exterior filled, its holes cut out) in a frame shared with another view,
so that two versions of it side by side are at the same scale and place: the conflict dialog's panes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["QtShapeView", "bounds_of", "ring_area"]

MARGIN = 12.0


def _rings(shape: Mapping[str, Any]) -> list[Sequence[Sequence[float]]]:
    return [shape["exterior"], *(shape.get("holes") or ())]


def bounds_of(shapes: Iterable[Mapping[str, Any] | None]) -> QRectF:
    """The box around every ring of ``shapes`` (image pixels), never empty: the frame they share."""
    points = [point for shape in shapes if shape is not None for ring in _rings(shape) for point in ring]
    if not points:
        return QRectF(0, 0, 1, 1)
    xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
    return QRectF(min(xs), min(ys), max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0))


def ring_area(shape: Mapping[str, Any]) -> float:
    """Area in square pixels: the exterior's less its holes' (shoelace formula)."""

    def area(ring: Sequence[Sequence[float]]) -> float:
        pairs = zip(ring, [*ring[1:], ring[0]], strict=True)
        return abs(sum(float(a[0]) * float(b[1]) - float(b[0]) * float(a[1]) for a, b in pairs)) / 2

    exterior, *holes = _rings(shape)
    return area(exterior) - sum(area(hole) for hole in holes)


class QtShapeView(QWidget):
    """``shape`` (``exterior`` and ``holes`` in image pixels; ``None``: nothing, ``empty_text`` said
    instead) drawn in ``frame``, scaled to fit with the aspect kept."""

    def __init__(
        self,
        shape: Mapping[str, Any] | None,
        frame: QRectF,
        color: QColor,
        empty_text: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.shape = shape
        self.frame = frame
        self.color = color
        self.empty_text = empty_text
        self.setMinimumSize(QSize(220, 220))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802  (Qt's name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#fbfbfb"))
        painter.setPen(QPen(QColor("#c8c8c8"), 1))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        if self.shape is None:
            painter.setPen(QColor("#7a1f1f"))
            centred = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.rect(), centred, self.empty_text)
            return
        painter.setPen(QPen(self.color.darker(140), 2))
        fill = QColor(self.color)
        fill.setAlpha(90)
        painter.setBrush(QBrush(fill))
        painter.drawPath(self._path())

    def _path(self) -> QPainterPath:
        """The rings mapped into the widget (odd-even fill: the holes stay empty)."""
        assert self.shape is not None
        width, height = self.width() - 2 * MARGIN, self.height() - 2 * MARGIN
        scale = min(width / self.frame.width(), height / self.frame.height())
        left = MARGIN + (width - self.frame.width() * scale) / 2
        top = MARGIN + (height - self.frame.height() * scale) / 2
        x0, y0 = self.frame.left(), self.frame.top()
        path = QPainterPath()
        path.setFillRule(Qt.FillRule.OddEvenFill)
        for ring in _rings(self.shape):
            points = [QPointF(left + (float(x) - x0) * scale, top + (float(y) - y0) * scale) for x, y in ring]
            path.addPolygon(QPolygonF([*points, points[0]]))
        return path
