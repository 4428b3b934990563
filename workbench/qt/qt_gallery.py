"""The gallery: a project's images as a grid of tiles that scrolls through 10,000 without a stall, with
filters, sort, multi-select, "image 37 of 120", drops of files to import, and badges that flip live.

Only what is on screen is fetched (:class:`~workbench.qt.qt_gallery_model.QtGalleryModel`); the grid is a
``QListView`` laid out as icons that flow left to right and wrap, with one size for every tile, so Qt lays
out and paints only the visible cells. (``IconMode`` proper places each item on its own, 10,000 times per
layout; the list mode with wrapping gives the same grid at the cost of one.) While a project is shown,
the widget follows its ``projectEvents`` in one held task, cancelled when another project is shown or the
widget closes: the tiles an event names are read again (badges flip as a job progresses), and after a
lost connection the gallery catches up with what changed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from workbench.api import ApiError, ChannelClosedError, Resumed, ServerUnreachableError
from workbench.qt.qt_gallery_model import QtGalleryModel
from workbench.qt.qt_tile_delegate import CELL, QtTileDelegate
from workbench.tasks import Tasks, notice_of
from workbench.workspace import Workspace

__all__ = ["ORDERS", "REVIEWS", "STATUSES", "QtGallery"]

logger = logging.getLogger(__name__)

STATUSES = [("Any status", ""), ("Not segmented", "NONE"), ("Queued", "QUEUED"), ("Running", "RUNNING"),
            ("Segmented", "DONE"), ("Failed", "FAILED")]  # fmt: skip
REVIEWS = [("Any review", ""), ("Unreviewed", "UNREVIEWED"), ("Accepted", "ACCEPTED"),
           ("Needs fix", "NEEDS_FIX"), ("Rejected", "REJECTED")]  # fmt: skip
ORDERS = [("Name A–Z", "NAME_ASC"), ("Name Z–A", "NAME_DESC"), ("Newest first", "CREATED_DESC"),
          ("Oldest first", "CREATED_ASC"), ("Recently changed", "UPDATED_DESC")]  # fmt: skip
NAME_FIELD_WIDTH = 120
TYPING_PAUSE_MS = 250
"""The name filter applies this long after the last key, not on every key."""


class _TileView(QListView):
    """The grid; it takes drops of files and folders (as paths) instead of moving tiles."""

    sig_files_dropped = Signal(list)

    @override
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    @override
    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if _paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    @override
    def dropEvent(self, event: QDropEvent) -> None:
        paths = _paths(event)
        if paths:
            event.acceptProposedAction()
            self.sig_files_dropped.emit(paths)
        else:
            event.ignore()


def _paths(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> list[Path]:
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class QtGallery(QWidget):
    sig_selection_changed = Signal()
    sig_image_activated = Signal(int)
    sig_files_dropped = Signal(list)

    def __init__(self, workspace: Workspace, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._tasks = tasks
        self._project_id: int | None = None
        self._following: asyncio.Task[None] | None = None
        self.model = QtGalleryModel(workspace, tasks.notices, self)

        self._name = QLineEdit(self)
        self._name.setPlaceholderText("Name contains…")
        self._name.setClearButtonEnabled(True)
        self._name.setAccessibleName("Filter by name")
        self._name.setMinimumWidth(NAME_FIELD_WIDTH)  # else the combos squeeze it to "N…" in a narrow pane
        self._status = self._combo(STATUSES, "Filter by segmentation status")
        self._review = self._combo(REVIEWS, "Filter by review verdict")
        self._order = self._combo(ORDERS, "Sort the images")
        self._typing = self._timer(TYPING_PAUSE_MS)
        self.view = _TileView(self)
        self._setup_view()
        self._position = QLabel(self)
        self._selected = QLabel(self)
        self._move_pending = False

        bar = QHBoxLayout()
        filter_label = QLabel("&Find:")
        filter_label.setBuddy(self._name)
        for widget in (filter_label, self._name, self._status, self._review, QLabel("Sort:"), self._order):
            bar.addWidget(widget)
        bar.setStretch(1, 1)
        footer = QHBoxLayout()
        footer.addWidget(self._position)
        footer.addStretch(1)
        footer.addWidget(self._selected)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addLayout(footer)
        self.setTabOrder(self._name, self._status)
        self.setTabOrder(self._status, self._review)
        self.setTabOrder(self._review, self._order)
        self.setTabOrder(self._order, self.view)

        self._name.textChanged.connect(self._typing.start)
        self._typing.timeout.connect(self._on_filter_changed)
        self._name.returnPressed.connect(self._on_filter_changed)
        for combo in (self._status, self._review, self._order):
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.view.verticalScrollBar().valueChanged.connect(self._on_view_scrolled)
        self.view.activated.connect(self._on_view_activated)
        self.view.sig_files_dropped.connect(self.sig_files_dropped)
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.view.selectionModel().currentChanged.connect(self._update_labels)
        self.model.modelReset.connect(self._on_view_scrolled)
        self.model.sig_loaded.connect(self._update_labels)
        self._update_labels()

    def _timer(self, interval_ms: int) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(interval_ms)
        return timer

    @staticmethod
    def _choice(combo: QComboBox) -> str:
        return str(combo.itemData(combo.currentIndex()))

    def _combo(self, choices: list[tuple[str, str]], name: str) -> QComboBox:
        combo = QComboBox(self)
        for text, value in choices:
            combo.addItem(text, value)
        combo.setAccessibleName(name)
        combo.setToolTip(name)
        return combo

    def _setup_view(self) -> None:
        view = self.view
        view.setViewMode(QListView.ViewMode.ListMode)
        view.setFlow(QListView.Flow.LeftToRight)
        view.setWrapping(True)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setUniformItemSizes(True)
        view.setGridSize(CELL)
        view.setMovement(QListView.Movement.Static)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.verticalScrollBar().setSingleStep(CELL.height() // 4)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setDragEnabled(False)
        view.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        view.setAcceptDrops(True)
        view.viewport().setAcceptDrops(True)  # drops land on the viewport, which hands them to the view
        view.setModel(self.model)
        view.setItemDelegate(QtTileDelegate(self.model, view))
        view.setAccessibleName("Images")

    # --- the API the window uses

    def show_project(self, project_id: int) -> None:
        """Show this project's images (filters kept) and follow its changes live."""
        self._stop_following()
        self._project_id = project_id
        self.model.show(project_id, self.image_filter(), self.image_order())
        self._following = asyncio.ensure_future(self._follow(project_id))

    def image_order(self) -> str:
        """The order the images show in (the API's ``ImageOrder``)."""
        return self._choice(self._order)

    @property
    def project_id(self) -> int | None:
        return self._project_id

    def image_filter(self) -> dict[str, Any] | None:
        """The filter now applied (the API's ``ImageFilterInput``), or ``None`` when every image shows."""
        applied: dict[str, Any] = {}
        # "" for "any": PySide6 6.12 loses a reference to None each time currentData() returns it
        if status := self._choice(self._status):
            applied["status"] = [status]
        if review := self._choice(self._review):
            applied["review"] = [review]
        if self._name.text().strip():
            applied["nameContains"] = self._name.text().strip()
        return applied or None

    def selected_image_ids(self) -> list[int]:
        """The selected images' ids, in the list's order (of the tiles loaded; a selection reaching past
        them loads those pages in the background, so ask again once ``sig_selection_changed`` fires)."""
        rows = sorted(index.row() for index in self.view.selectionModel().selectedIndexes())
        tiles = (self.model.tile(row) for row in rows)
        return [tile.image_id for tile in tiles if tile is not None]

    def refresh(self, image_ids: list[int]) -> None:
        """Read these images again (the window knows they changed)."""
        self.model.refresh(image_ids)

    def current_image_id(self) -> int | None:
        tile = self.model.tile(self.view.currentIndex().row()) if self.view.currentIndex().isValid() else None
        return tile.image_id if tile is not None else None

    # --- live

    async def _follow(self, project_id: int) -> None:
        """Listen to the project's events and apply them, in two halves of one task: while one refresh
        is under way, the ids of the events that arrive meanwhile gather, and go in the next one (a job
        on 10,000 images sends an event per image, faster than one refresh each would keep up with)."""
        changed: set[int] = set()
        behind = asyncio.Event()  # something to apply
        catch_up = False

        async def listen() -> None:
            nonlocal catch_up
            async for event in self._workspace.live.subscribe("ProjectEvents", projectId=project_id):
                if isinstance(event, Resumed) or event["projectEvents"]["missed"]:
                    catch_up = True
                else:
                    changed.update(event["projectEvents"]["imageIds"])
                behind.set()

        async def apply() -> None:
            nonlocal catch_up
            while True:
                await behind.wait()
                behind.clear()
                gallery, ids, resume = self.model.gallery, sorted(changed), catch_up
                changed.clear()
                catch_up = False
                if gallery is None:
                    continue
                try:
                    if resume:
                        await gallery.catch_up()
                    if ids:
                        await gallery.refresh(ids)
                except (ApiError, ServerUnreachableError) as error:  # the next Resumed catches up
                    logger.info("the gallery could not apply %d changes: %s", len(ids), error)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(listen())
                group.create_task(apply())
        except* ChannelClosedError:
            pass  # the workspace closed (the window builds a new gallery on the next one)
        except* (ApiError, ServerUnreachableError) as refused:
            self._tasks.notices.add(notice_of(refused.exceptions[0], "Following the project's changes"))

    def _stop_following(self) -> None:
        if self._following is not None:
            self._following.cancel()
            self._following = None

    @override
    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop_following()
        self.model.close()
        super().closeEvent(event)

    # --- handlers

    def _on_filter_changed(self) -> None:
        self._typing.stop()
        if self._project_id is not None:
            self.model.show(self._project_id, self.image_filter(), self._choice(self._order))

    @override
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._on_view_scrolled()

    def _on_view_scrolled(self) -> None:
        """Once per burst of scroll events, on the next turn of the loop (a zero-time QTimer can starve
        behind the loop's own timers while scrolling goes on: measured, 29 s without a page asked)."""
        if not self._move_pending:
            self._move_pending = True
            asyncio.get_event_loop().call_soon(self._on_view_moved)

    def _on_view_moved(self) -> None:
        """Tell the model which rows are on screen, with a screen's margin either side (scrolling on
        finds them loaded)."""
        self._move_pending = False
        if not shiboken6.isValid(self.view):
            return  # the gallery was closed (a restart rebuilds the views) before this turn came
        viewport = self.view.viewport()
        columns = max(1, viewport.width() // CELL.width())
        top = self.view.verticalScrollBar().value()
        first_line, last_line = top // CELL.height(), (top + viewport.height()) // CELL.height() + 1
        lines = last_line - first_line
        rows = self.model.rowCount()
        start = max(0, (first_line - lines // 2) * columns)
        stop = min(rows, (last_line + lines // 2 + 1) * columns)
        self.model.want(range(start, max(start, stop)))

    def _on_view_activated(self, index: QModelIndex) -> None:
        tile = self.model.tile(index.row())
        if tile is not None:
            self.sig_image_activated.emit(tile.image_id)

    def _on_selection_changed(self) -> None:
        rows = [index.row() for index in self.view.selectionModel().selectedIndexes()]
        if rows:
            self.model.want_tiles(range(min(rows), max(rows) + 1))
        self._update_labels()
        self.sig_selection_changed.emit()

    def _update_labels(self) -> None:
        total = self.model.rowCount()
        current = self.view.currentIndex()
        if not self.model.loaded:
            self._position.setText("Loading…" if self._project_id is not None else "No project open")
        elif total == 0:
            self._position.setText("No images match the filter" if self.image_filter() else "No images yet")
        elif current.isValid():
            self._position.setText(f"image {current.row() + 1:,} of {total:,}")
        else:
            self._position.setText(f"{total:,} image{'' if total == 1 else 's'}")
        selected = len(self.view.selectionModel().selectedIndexes())
        self._selected.setText(f"{selected:,} selected" if selected > 1 else "")

    @override
    def sizeHint(self) -> QSize:
        return QSize(CELL.width() * 5 + 40, CELL.height() * 3 + 80)

    def select_all(self) -> None:
        self.view.selectAll()

    def set_current_row(self, row: int) -> None:
        index = self.model.index(row)
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
