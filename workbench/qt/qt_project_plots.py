"""A project's plots: histograms of spheroid diameter and area, a scatter of area against circularity
where a click opens that spheroid, and the spheroids counted per image.

Drawn with QPainter (four simple charts need no plotting library), over :mod:`workbench.plots`, which
reads the stored metrics of every segmented image's outlines file in a task. Units are those of the
data: µm when every image has a pixel size, else px (the status line says how many images lack one).
Hovering a point or a bar names it; clicking a point emits ``sig_spheroid_requested(image_id,
spheroid_id)``, for the page to open that image with it selected.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolTip, QVBoxLayout, QWidget
from typing_extensions import override

from workbench.plots import Bins, PlotPoint, ProjectSpheroids, bins_of, nice_ticks, read_project_spheroids
from workbench.tasks import Task, Tasks
from workbench.workspace import Workspace

__all__ = ["QtProjectPlots"]

MARGIN = 10
AXIS_LEFT, AXIS_BOTTOM, TITLE = 58, 38, 28
"""Room for the y tick labels, the x ticks with the axis's name, the title (above the top y label)."""
HIT_RADIUS = 6.0
"""A click within this many pixels of a point picks it."""
TICK_GAP = 10
"""Pixels at least between two tick labels of an axis."""
BAR = QColor(70, 120, 180)
BORDER = QColor(225, 140, 40)


class QtProjectPlots(QWidget):
    sig_spheroid_requested = Signal(int, int)

    def __init__(self, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._tasks = tasks
        self.project_id: int | None = None
        self.data: ProjectSpheroids | None = None
        self.loading: Task | None = None
        self._points_xy: NDArray[np.float64] = np.zeros((0, 2))
        self._bars: list[tuple[QRectF, str]] = []
        self.status = QLabel("", self)
        self.status.setWordWrap(True)  # the side panel is narrow: the line wraps rather than being cut
        self.reload_button = QPushButton("Read again", self)
        self.reload_button.setToolTip("Read the project's spheroids again (after edits or a new job)")
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.reload_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addStretch(1)
        self.setMouseTracking(True)
        self.setMinimumSize(360, 480)  # fits the review page's side panel
        self.reload_button.clicked.connect(self._on_reload_button_clicked)

    def show_project(self, project_id: int) -> None:
        """Read ``project_id``'s spheroids and plot them."""
        self.project_id = project_id
        if self.loading is not None:
            self.loading.cancel()
        self.loading = self._tasks.start("Reading the project's spheroids for its plots", self._load)

    async def _load(self, task: Task) -> None:
        project_id = self.project_id
        assert project_id is not None

        def progress(read: int, total: int) -> None:
            task.report(read / total if total else None, f"{read:,} of {total:,} images")
            self._say(f"Reading the spheroids of {read:,} of {total:,} images…")

        workspace = self._workspace
        data = await read_project_spheroids(workspace.client, workspace.fetcher, project_id, progress)
        if project_id != self.project_id:
            return
        self.data = data
        images = len(data.counts_per_image())
        text = f"{len(data.points):,} spheroids in {images:,} images · values in {data.length_unit}"
        if missing := data.without_pixel_size:
            text += f" ({missing} image{'s' if missing > 1 else ''} without a pixel size)"
        self._say(text)
        self.update()

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)

    def _on_reload_button_clicked(self) -> None:
        if self.project_id is not None:
            self.show_project(self.project_id)

    # --- what a click or a hover finds

    def point_at(self, position: QPointF) -> PlotPoint | None:
        """The scatter's point under ``position`` (within :data:`HIT_RADIUS`), nearest first."""
        if self.data is None or not len(self._points_xy):
            return None
        distances = np.hypot(self._points_xy[:, 0] - position.x(), self._points_xy[:, 1] - position.y())
        nearest = int(np.argmin(distances))
        return self.data.points[nearest] if distances[nearest] <= HIT_RADIUS else None

    def position_of(self, point: PlotPoint) -> QPointF:
        """Where ``point`` is drawn (for tests and accessibility tools)."""
        assert self.data is not None
        x, y = self._points_xy[self.data.points.index(point)]
        return QPointF(float(x), float(y))

    @override
    def mousePressEvent(self, event: QMouseEvent) -> None:
        found = self.point_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and found is not None:
            self.sig_spheroid_requested.emit(found.image_id, found.spheroid_id)
            return
        super().mousePressEvent(event)

    @override
    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        tip = self._tip_at(event.position())
        if tip:
            QToolTip.showText(event.globalPosition().toPoint(), tip, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def _tip_at(self, position: QPointF) -> str:
        found = self.point_at(position)
        if found is not None and self.data is not None:
            area = f"{found.area:,.1f} {self.data.area_unit}"
            return (
                f"{found.image_name}, spheroid {found.spheroid_id}: area {area}, "
                f"circularity {found.circularity:.3f}. Click to open it."
            )
        return next((tip for rect, tip in self._bars if rect.contains(position)), "")

    # --- drawing

    @override
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        top = self.status.geometry().bottom() + MARGIN
        area = QRectF(MARGIN, top, self.width() - 2 * MARGIN, self.height() - top - MARGIN)
        half_w, half_h = area.width() / 2, area.height() / 2
        cells = [
            QRectF(area.x() + c * half_w, area.y() + r * half_h, half_w, half_h)
            for r in (0, 1)
            for c in (0, 1)
        ]
        data = self.data
        self._bars = []
        if data is None or not data.points:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "No spheroids to plot yet" if data else "")
            self._points_xy = np.zeros((0, 2))
            return
        length, surface = data.length_unit, data.area_unit
        self._histogram(painter, cells[0], bins_of([p.diameter for p in data.points]), "Diameter", length)
        self._histogram(painter, cells[1], bins_of([p.area for p in data.points]), "Area", surface)
        self._scatter(painter, cells[2], data, surface)
        self._counts(painter, cells[3], data.counts_per_image())

    def _histogram(self, painter: QPainter, cell: QRectF, bins: Bins, name: str, unit: str) -> None:
        low, high = bins.edges[0], bins.edges[-1]
        if high <= low:
            high = low + 1.0
        top = max(bins.counts)
        plot = _frame(
            painter,
            cell,
            f"Spheroid {name.lower()}",
            f"{name} ({unit})",
            "spheroids",
            (low, high),
            (0, top),
            counts=True,
        )
        to_x, to_y = _scale(low, high, plot.left(), plot.right()), _scale(0, top, plot.bottom(), plot.top())
        painter.setPen(QPen(BAR.darker(130), 1))
        painter.setBrush(BAR)
        for left, right, count in zip(bins.edges, bins.edges[1:], bins.counts, strict=False):
            rect = QRectF(QPointF(to_x(left), to_y(count)), QPointF(to_x(right), plot.bottom()))
            painter.drawRect(rect)
            self._bars.append(
                (rect, f"{count} spheroids with {name.lower()} {left:,.1f}–{right:,.1f} {unit}")
            )

    def _scatter(self, painter: QPainter, cell: QRectF, data: ProjectSpheroids, unit: str) -> None:
        areas = np.array([p.area for p in data.points])
        circularity = np.array([p.circularity for p in data.points])
        low, high = float(areas.min()), float(areas.max())
        low, high = (
            (low - 1, high + 1) if high <= low else (low - 0.03 * (high - low), high + 0.03 * (high - low))
        )
        title = f"Area ({unit}) × circularity"
        plot = _frame(painter, cell, title, f"Area ({unit})", "circularity", (low, high), (0.0, 1.0))
        xs = plot.left() + (areas - low) / (high - low) * plot.width()
        ys = plot.bottom() - np.clip(circularity, 0, 1) * plot.height()
        self._points_xy = np.column_stack((xs, ys))
        radius = 3.0 if len(xs) < 5000 else 1.5
        border = np.array([p.touches_border for p in data.points])
        for touching, color in ((False, BAR), (True, BORDER)):
            painter.setPen(QPen(color.darker(120), 1))
            painter.setBrush(color if not touching else Qt.BrushStyle.NoBrush)
            for x, y in self._points_xy[border == touching]:
                painter.drawEllipse(QPointF(x, y), radius, radius)
        if border.any():
            painter.setPen(BORDER.darker(120))
            legend = "○ touches the image border"
            if painter.fontMetrics().horizontalAdvance(legend) > plot.width() - 4:
                legend = "○ at the border"  # the side panel's narrow plot
            _text(
                painter,
                QRectF(plot.left(), plot.bottom() - 20, plot.width() - 4, 16),
                legend,
                Qt.AlignmentFlag.AlignRight,
            )

    def _counts(self, painter: QPainter, cell: QRectF, counts: Sequence[tuple[int, str, int]]) -> None:
        top = max(count for _, _, count in counts)
        plot = _frame(
            painter,
            cell,
            "Spheroids per image",
            f"{len(counts)} images, by name",
            "spheroids",
            None,
            (0, top),
            counts=True,
        )
        to_y = _scale(0, top, plot.bottom(), plot.top())
        width = plot.width() / len(counts)
        painter.setPen(QPen(BAR.darker(130), 1))
        painter.setBrush(BAR)
        for index, (_, name, count) in enumerate(counts):
            left = plot.left() + index * width
            rect = QRectF(
                QPointF(left + width * 0.1, to_y(count)), QPointF(left + width * 0.9, plot.bottom())
            )
            painter.drawRect(rect)
            self._bars.append(
                (QRectF(rect.left(), plot.top(), rect.width(), plot.height()), f"{name}: {count} spheroids")
            )


def _scale(low: float, high: float, start: float, end: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda value: start + (value - low) / span * (end - start)


def _frame(
    painter: QPainter,
    cell: QRectF,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None,
    y_range: tuple[float, float],
    *,
    counts: bool = False,
) -> QRectF:
    """Title, axes, ticks and labels in ``cell``; the rectangle left for the data. As many ticks as their
    labels fit side by side; ``counts``: the y axis counts things, whole numbers only."""
    plot = QRectF(cell.left() + AXIS_LEFT, cell.top() + TITLE, cell.width() - AXIS_LEFT - MARGIN,
                  cell.height() - TITLE - AXIS_BOTTOM)  # fmt: skip
    painter.setPen(QPen(QColor(60, 60, 60), 1))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    font = painter.font()
    font.setBold(True)
    painter.setFont(font)
    _text(painter, QRectF(cell.left(), cell.top(), cell.width(), TITLE), title, Qt.AlignmentFlag.AlignTop)
    font.setBold(False)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    painter.drawLine(plot.bottomLeft(), plot.bottomRight())
    painter.drawLine(plot.bottomLeft(), plot.topLeft())
    to_y = _scale(*y_range, plot.bottom(), plot.top())
    most = int(plot.height() // (2 * metrics.height())) + 1  # a label's height apart at least
    for value in nice_ticks(*y_range, most, integer=counts):
        y = to_y(value)
        painter.drawLine(QPointF(plot.left() - 4, y), QPointF(plot.left(), y))
        painter.drawText(
            QRectF(cell.left(), y - 8, AXIS_LEFT - 8, 16), Qt.AlignmentFlag.AlignRight, _label(value)
        )
    if x_range is not None:
        to_x = _scale(*x_range, plot.left(), plot.right())
        for value in x_ticks(metrics, x_range, plot.width()):
            x = to_x(value)
            painter.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 4))
            left, right = x_label_span(metrics, value, x, plot.right())
            label = QRectF(left, plot.bottom() + 4, right - left, 16)
            painter.drawText(label, Qt.AlignmentFlag.AlignHCenter, _label(value))
    # the axis's name may use the cell's whole width: the y labels' column is empty down there
    _text(painter, QRectF(cell.left(), plot.bottom() + 20, cell.width(), 16), x_label)
    painter.save()
    painter.translate(cell.left() + 12, plot.center().y())
    painter.rotate(-90)
    _text(painter, QRectF(-plot.height() / 2, -12, plot.height(), 16), y_label)
    painter.restore()
    return plot


def x_ticks(metrics: QFontMetrics, x_range: tuple[float, float], width: float) -> list[float]:
    """The most round ticks whose labels fit between each other along ``width`` pixels (where not even
    two do, the round one nearest the middle)."""
    low, high = x_range
    most = max(2, int(width // TICK_GAP))
    while True:
        ticks = nice_ticks(low, high, most)
        if len(ticks) < 2:
            return ticks
        spans = [x_label_span(metrics, value, (value - low) / (high - low) * width, width) for value in ticks]
        if all(right + TICK_GAP <= left for (_, right), (left, _) in itertools.pairwise(spans)):
            return ticks
        if len(ticks) == 2:
            return [min(ticks, key=lambda tick: abs(tick - (low + high) / 2))]
        most = len(ticks) - 1


def x_label_span(metrics: QFontMetrics, value: float, x: float, right: float) -> tuple[float, float]:
    """Where the label of tick ``value`` at ``x`` is drawn: centred under it, but no further right than
    the plot's right edge ``right`` and its margin (the cell ends there)."""
    width = metrics.horizontalAdvance(_label(value)) + 2
    left = min(x - width / 2, right + MARGIN - width)
    return left, left + width


def _text(
    painter: QPainter, rect: QRectF, text: str, align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignVCenter
) -> None:
    """``text`` in ``rect`` (centred across, unless ``align`` says right), shortened with … where it
    would not fit."""
    if not align & Qt.AlignmentFlag.AlignRight:
        align |= Qt.AlignmentFlag.AlignHCenter
    shown = painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(rect.width()))
    painter.drawText(rect, align, shown)


def _label(value: float) -> str:
    if value == int(value) and abs(value) < 1e7:
        return f"{int(value):,}"
    return f"{value:.2g}" if abs(value) < 1 else f"{value:,.1f}"
