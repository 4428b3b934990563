"""The measurements panel beside the review canvas: the selected spheroid's metrics, live while it is
edited; every spheroid of the image in a sortable table (a click selects that spheroid on the canvas,
Ctrl+C or "Copy as TSV" copies rows for a spreadsheet); the image's pixel size, editable.

A thin view over :class:`workbench.measurements.ImageMeasurements`, following the review session: its
``image_opened`` (the table is read from the stored metrics of the version opened), ``outlines_changed``
(the rows of the spheroids edited are measured again) and ``selection_changed`` (the rows selected follow
the canvas); a row clicked calls ``session.select``. A pixel size typed here is saved with ``updateImage``
and every value in µm follows; ``sig_pixel_size_changed`` tells the page (the canvas's scale).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QGuiApplication, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from cluster import SpheroidMetrics
from workbench.editing import ImageOutlines
from workbench.measurements import COLUMNS, ImageMeasurements, MeasuredSpheroid, stored_metrics
from workbench.tasks import Listeners, Task, Tasks
from workbench.workspace import Workspace

__all__ = ["MeasuredSession", "QtMeasurements"]

logger = logging.getLogger(__name__)

AnyIndex = QModelIndex | QPersistentModelIndex
NOTHING_SELECTED = "Click a spheroid on the image, or a row below."


class MeasuredSession(Protocol):
    """What the panel uses of the review session (``workbench.review.ReviewSession``)."""

    outlines_changed: Listeners[frozenset[int]]
    selection_changed: Listeners[frozenset[int]]
    image_opened: Listeners[Any]

    @property
    def outlines(self) -> ImageOutlines: ...

    @property
    def image(self) -> Any: ...

    def select(self, keys: Iterable[int]) -> None: ...


class _TableModel(QAbstractTableModel):
    """The rows of :class:`ImageMeasurements`; ``Qt.UserRole`` holds the value to sort by."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.measurements: ImageMeasurements | None = None
        self.headings = ["Spheroid", *(column.heading(False) for column in COLUMNS), "Touches border"]
        """The last measurements' headings: kept while the next image's are read."""

    @override
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008  (Qt's signature)
        return 0 if parent.isValid() or self.measurements is None else len(self.measurements.rows)

    @override
    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS) + 2

    @override
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or orientation != Qt.Orientation.Horizontal:
            return None
        return self.headings[section]

    @override
    def data(self, index: AnyIndex, role: int = 0) -> Any:
        if self.measurements is None or not index.isValid():
            return None
        row = self.measurements.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.measurements.text(row)[index.column()]
        if role == Qt.ItemDataRole.UserRole:
            value = self.measurements.values(row)[index.column()]
            if index.column() == 0:
                return float(row.spheroid_id if row.spheroid_id is not None else 1e12 - row.key)
            return float("inf") if value is None else value
        if role == Qt.ItemDataRole.TextAlignmentRole and 0 < index.column() <= len(COLUMNS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def reset(self, measurements: ImageMeasurements | None) -> None:
        self.beginResetModel()
        self.measurements = measurements
        if measurements is not None:
            self.headings = measurements.headings()
        self.endResetModel()

    def rows_changed(self, rows: Iterable[int]) -> None:
        last = self.columnCount() - 1
        for row in rows:
            self.dataChanged.emit(self.index(row, 0), self.index(row, last))


class QtMeasurements(QWidget):
    sig_pixel_size_changed = Signal(int, float)

    def __init__(
        self, session: MeasuredSession, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        self._workspace = workspace
        self._tasks = tasks
        self._image: Any = None
        self._syncing = False  # selecting rows because the canvas selected: do not select back
        self.measurements: ImageMeasurements | None = None
        self.loading: Task | None = None
        self._closed = False
        """The page went: the tasks it started must not touch its widgets when they end."""

        self.selected = QGroupBox("Selected spheroid", self)
        self._fields: dict[str, QLabel] = {}
        form = QFormLayout(self.selected)
        self.selection_note = QLabel(NOTHING_SELECTED, self.selected)
        self.selection_note.setWordWrap(True)
        form.addRow(self.selection_note)
        for name in ("Spheroid", *(column.title for column in COLUMNS), "Touches border"):
            self._fields[name] = QLabel("–", self.selected)
            self._fields[name].setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{name}:", self._fields[name])

        self.pixel_size = QDoubleSpinBox(self)
        self.pixel_size.setRange(0.0, 1000.0)
        self.pixel_size.setDecimals(4)
        self.pixel_size.setSingleStep(0.01)
        self.pixel_size.setSuffix(" µm per pixel")
        self.pixel_size.setSpecialValueText("unknown: values in pixels")
        self.pixel_size.setKeyboardTracking(False)
        self.pixel_size.setToolTip(
            "The edge of one pixel in µm, from the microscope and objective. Saved for this image; every "
            "value in µm follows at once."
        )
        self.pixel_note = QLabel("", self)
        self.pixel_note.setWordWrap(True)
        self.pixel_note.hide()
        pixel_row = QHBoxLayout()
        pixel_row.addWidget(QLabel("Pixel size:", self))
        pixel_row.addWidget(self.pixel_size, 1)

        self.model = _TableModel(self)
        self.sorted = QSortFilterProxyModel(self)
        self.sorted.setSourceModel(self.model)
        self.sorted.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView(self)
        self.table.setModel(self.sorted)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setAccessibleName("Spheroids of this image")
        self.count = QLabel("", self)
        self.copy_button = QPushButton("Copy as TSV", self)
        self.copy_button.setToolTip(
            "Copy every row, with the header, for a spreadsheet (Ctrl+C copies the selected rows)"
        )
        table_row = QHBoxLayout()
        table_row.addWidget(self.count, 1)
        table_row.addWidget(self.copy_button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.selected)
        layout.addLayout(pixel_row)
        layout.addWidget(self.pixel_note)
        layout.addLayout(table_row)
        layout.addWidget(self.table, 1)

        self.table.installEventFilter(self)  # Ctrl+C: the view's own copies one cell, not the rows
        self.copy_button.clicked.connect(self.copy_all)
        self.pixel_size.editingFinished.connect(self._on_pixel_size_editing_finished)
        self.table.selectionModel().selectionChanged.connect(self._on_table_selection_changed)
        for listeners, handler in (
            (session.image_opened, self._on_session_image_opened),
            (session.outlines_changed, self._on_session_outlines_changed),
            (session.selection_changed, self._on_session_selection_changed),
        ):
            disconnect = listeners.connect(handler)
            self.destroyed.connect(lambda *_, undo=disconnect: undo())
        if getattr(session, "image", None) is not None:
            self._on_session_image_opened(session.image)
        self._show_selected(frozenset())

    # --- copying

    @override
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.table
            and event.type() in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
            and isinstance(event, QKeyEvent)
            and event.matches(QKeySequence.StandardKey.Copy)
        ):
            if event.type() == QEvent.Type.KeyPress:
                self.copy_selected()
            event.accept()
            return True
        return super().eventFilter(watched, event)

    def copy_selected(self) -> None:
        """The selected rows, in the table's order, with the header row."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        self._copy([self._row_at(row) for row in rows])

    def copy_all(self) -> None:
        self._copy([self._row_at(row) for row in range(self.sorted.rowCount())])

    def _copy(self, rows: list[MeasuredSpheroid]) -> None:
        if self.measurements is not None:
            QGuiApplication.clipboard().setText(self.measurements.tsv(rows))

    def _row_at(self, proxy_row: int) -> MeasuredSpheroid:
        assert self.measurements is not None
        return self.measurements.rows[self.sorted.mapToSource(self.sorted.index(proxy_row, 0)).row()]

    def close_panel(self) -> None:
        """The page is closing: stop reading measurements; a pixel size being saved is still saved."""
        self._closed = True
        if self.loading is not None:
            self.loading.cancel()

    # --- the session

    def _on_session_image_opened(self, image: Any) -> None:
        self._image = image
        self.model.reset(None)
        self.measurements = None
        self.count.setText(f"Reading the measurements of {image.name}…")
        self._show_pixel_size(image.pixel_size_um)
        if self.loading is not None:
            self.loading.cancel()
        self.loading = self._tasks.start(f"Reading the measurements of {image.name}", self._load)

    async def _load(self, task: Task) -> None:
        image, outlines = self._image, self._session.outlines
        stored: dict[int, SpheroidMetrics] = {}
        if image.version:
            data = await self._workspace.client.call("MeasuredImage", id=image.id, version=image.version)
            segmentation = data["image"]["segmentation"]
            if segmentation is not None:  # the geometry the canvas opened: from the fetcher's cache
                decoded = await self._workspace.fetcher.fetch_outlines(segmentation["geometryUrl"])
                stored = await asyncio.to_thread(stored_metrics, decoded)
        if self._closed or image is not self._image:
            return
        self.measurements = ImageMeasurements(outlines, stored, self.pixel_size.value() or None)
        self.model.reset(self.measurements)
        self._show_count()
        self._on_session_selection_changed(self._selected_keys())

    def _on_session_outlines_changed(self, keys: frozenset[int]) -> None:
        if self.measurements is None:
            return
        rows, moved = self.measurements.update(keys)
        if moved:
            selected = self._selected_keys()  # before the reset clears the table's selection
            self.model.reset(self.measurements)
            self._on_session_selection_changed(selected)
        else:
            self.model.rows_changed(rows)
            self._show_selected(self._selected_keys())
        self._show_count()

    def _on_session_selection_changed(self, keys: frozenset[int]) -> None:
        self._show_selected(keys)
        if self.measurements is None:
            return
        selection = QItemSelection()
        for key in keys:
            row = self.measurements.row_of(key)
            if row is not None:
                index = self.sorted.mapFromSource(self.model.index(row, 0))
                selection.select(index, index)
        self._syncing = True
        try:
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.table.selectionModel().select(selection, flags)
            if not selection.isEmpty():
                self.table.scrollTo(selection.indexes()[0])
        finally:
            self._syncing = False

    def _on_table_selection_changed(self, *_: object) -> None:
        if self._syncing or self.measurements is None:
            return
        keys = frozenset(
            self._row_at(index.row()).key for index in self.table.selectionModel().selectedRows()
        )
        self._session.select(keys)
        self._show_selected(keys)

    def _selected_keys(self) -> frozenset[int]:
        if self.measurements is None:
            return frozenset()
        return frozenset(
            self._row_at(index.row()).key for index in self.table.selectionModel().selectedRows()
        )

    # --- pixel size

    def _on_pixel_size_editing_finished(self) -> None:
        value = self.pixel_size.value()
        known = self.measurements.pixel_size_um if self.measurements is not None else self._image_pixel_size()
        if self._image is None or value == (known or 0.0):
            return
        if value == 0.0:
            self._note("A pixel size once set stays set: type the right one instead.")
            self._show_pixel_size(known)
            return
        self._tasks.start(
            f"Setting the pixel size of {self._image.name}", lambda task: self._save_pixel_size(value)
        )

    async def _save_pixel_size(self, value: float) -> None:
        image = self._image
        data = await self._workspace.client.call("SetPixelSize", id=image.id, pixelSizeUm=value)
        result = data["updateImage"]
        if self._closed:
            return  # stored all the same; the page that asked has gone
        if result["__typename"] != "ImageUpdateSuccess":
            self._note(result["message"])
            return
        stored = float(result["image"]["pixelSizeUm"])
        self._note("")
        if self.measurements is not None and image is self._image:
            self.measurements.set_pixel_size(stored)
            selected = self._selected_keys()  # before the reset clears the table's selection
            self.model.reset(self.measurements)
            self._on_session_selection_changed(selected)
        self.sig_pixel_size_changed.emit(image.id, stored)

    def _note(self, text: str) -> None:
        self.pixel_note.setText(text)
        self.pixel_note.setVisible(bool(text))

    def _image_pixel_size(self) -> float | None:
        return getattr(self._image, "pixel_size_um", None)

    def _show_pixel_size(self, value: float | None) -> None:
        self.pixel_size.blockSignals(True)
        self.pixel_size.setValue(value or 0.0)
        self.pixel_size.blockSignals(False)

    # --- the selected spheroid

    def _show_count(self) -> None:
        if self.measurements is not None:
            rows = len(self.measurements.rows)
            self.count.setText(f"{rows} spheroid{'s' if rows != 1 else ''}")

    def _show_selected(self, keys: frozenset[int]) -> None:
        measurements = self.measurements
        rows = [] if measurements is None else [measurements.row_of(key) for key in keys]
        found = [row for row in rows if row is not None]
        if measurements is None or len(found) != 1:
            self.selection_note.setText(f"{len(found)} spheroids selected" if found else NOTHING_SELECTED)
            self.selection_note.show()
            for label in self._fields.values():
                label.setText("–")  # a dash, not a blank that looks like a value missing
            return
        row = measurements.rows[found[0]]
        self.selection_note.hide()
        headings = measurements.headings()
        for name, heading, cell in zip(self._fields, headings, measurements.text(row), strict=True):
            unit = heading[heading.find("(") + 1 : -1] if heading.endswith(")") else ""
            self._fields[name].setText(f"{cell} {unit}".strip() if cell != "–" else "–")
