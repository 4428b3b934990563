"""The gallery's Qt model: one row per image of the filtered list, over the Qt-free
:class:`~workbench.gallery.Gallery`, fetching only what the view shows.

The view tells :meth:`QtGalleryModel.want` the rows it shows (with a margin) after each scroll or resize.
The model then asks the gallery for the pages covering them (one request at a time; a newer range replaces
an older one) and fetches those rows' thumbnails through the workspace's fetcher (its disk cache first),
decoding and scaling each off the loop (``asyncio.to_thread``) into a bounded in-memory cache of pixmaps.
A thumbnail requested for a row scrolled away is cancelled, so a fast scroll to the end costs the rows
that stayed on screen, not the ones flown past. A row not loaded yet has no tile: the delegate paints a
placeholder, and the scroll bar is right from the first page (``len(gallery)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from typing_extensions import override

from workbench.fetch import FetchError
from workbench.gallery import Gallery, Tile
from workbench.tasks import Notices, notice_of
from workbench.workspace import Workspace

__all__ = ["THUMBNAIL_EDGE", "QtGalleryModel"]

logger = logging.getLogger(__name__)

THUMBNAIL_EDGE = 160
"""Edge of a tile's picture in pixels (the server's 256 px rendition, scaled down once, off the loop)."""
KEPT_PIXMAPS = 600
"""Thumbnails kept in memory (about 100 kB each): a few screens' worth; older ones come from disk again."""
IN_FLIGHT = 12
"""Thumbnails fetched at once (the fetcher lets 6 through at a time; the rest wait their turn)."""

AnyIndex = QModelIndex | QPersistentModelIndex


def _decoded(content: bytes, edge: int) -> QImage | None:
    """The thumbnail's bytes as an image fitting ``edge`` (runs in a thread: QImage is not a widget)."""
    image = QImage.fromData(content)
    if image.isNull():
        return None
    return image.scaled(
        edge, edge, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


class QtGalleryModel(QAbstractListModel):
    """Rows of a :class:`Gallery`; ``sig_loaded`` after each change of what the rows hold."""

    sig_loaded = Signal()

    def __init__(self, workspace: Workspace, notices: Notices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._notices = notices
        self.gallery: Gallery | None = None
        self._rows = 0
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._failed: set[int] = set()
        self._fetching: dict[int, asyncio.Task[None]] = {}
        self._wanted: list[int] = []  # rows whose thumbnails are wanted, in the order to fetch them
        self._pages: asyncio.Task[None] | None = None
        self._pages_for_selection: asyncio.Task[None] | None = None
        self._refreshing: set[asyncio.Task[None]] = set()
        self._shown = range(0)

    # --- what the view reads

    @override
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008  (Qt's signature)
        return 0 if parent.isValid() else self._rows

    @override
    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        tile = self.tile(index.row()) if index.isValid() else None
        if tile is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return tile.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"{tile.name}\n{tile.width} × {tile.height} px\n"
                f"segmentation: {tile.segmentation_status.lower()}\n"
                f"review: {tile.review_status.lower().replace('_', ' ')}"
            )
        return None

    def tile(self, row: int) -> Tile | None:
        return self.gallery.tile(row) if self.gallery is not None else None

    def thumbnail(self, image_id: int) -> QPixmap | None:
        return self._pixmaps.get(image_id)

    def thumbnail_failed(self, image_id: int) -> bool:
        return image_id in self._failed

    @property
    def loaded(self) -> bool:
        return self.gallery is not None and self.gallery.loaded

    # --- what the widget asks

    def show(self, project_id: int, image_filter: Mapping[str, Any] | None, order: str) -> None:
        """Show ``project_id``'s images matching ``image_filter`` in ``order`` (the first page loads now)."""
        self.close()
        self.beginResetModel()
        made: list[Gallery] = []

        def changed(rows: range | None) -> None:  # a replaced gallery's late pages are not this one's
            if made and made[0] is self.gallery:
                self._on_gallery_changed(rows)

        self.gallery = Gallery(
            self._workspace.client, project_id, image_filter=image_filter, order=order, on_change=changed
        )
        made.append(self.gallery)
        self._rows = 0
        self.endResetModel()
        self.want(range(0, 1))

    def want(self, rows: range) -> None:
        """The view shows ``rows`` now: load their pages, fetch their thumbnails, forget the others'."""
        self._shown = rows
        if self.gallery is None:
            return
        if self._pages is not None:
            self._pages.cancel()  # a page being fetched goes on (the gallery shields it): nothing is lost
        self._pages = asyncio.ensure_future(self._ensure(self.gallery, rows))
        self._fetch_thumbnails()

    def want_tiles(self, rows: range) -> None:
        """Load the tiles of ``rows`` without their thumbnails (a selection's image ids)."""
        if self.gallery is None or all(self.gallery.tile(row) is not None for row in rows):
            return
        if self._pages_for_selection is None or self._pages_for_selection.done():
            self._pages_for_selection = asyncio.ensure_future(self._ensure(self.gallery, rows))

    def refresh(self, image_ids: list[int]) -> None:
        if self.gallery is not None:
            task = asyncio.ensure_future(
                self._guarded(self.gallery.refresh(image_ids), "Updating the gallery")
            )
            self._refreshing.add(task)
            task.add_done_callback(self._refreshing.discard)

    def close(self) -> None:
        """Stop every fetch (another project is shown, or the window closes)."""
        for task in [self._pages, self._pages_for_selection, *self._fetching.values()]:
            if task is not None:
                task.cancel()
        self._fetching.clear()
        self._pages = self._pages_for_selection = None
        for task in self._refreshing:
            task.cancel()
        gallery, self.gallery = self.gallery, None
        if gallery is not None:
            gallery.reset()  # cancels its page loads; it tells nobody now (``self.gallery`` is None)

    # --- pages

    async def _ensure(self, gallery: Gallery, rows: range) -> None:
        await self._guarded(gallery.ensure(rows), "Loading the gallery")

    async def _guarded(self, work: Any, doing: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the view stays usable; the user reads what happened
            logger.exception("%s failed", doing)
            self._notices.add(notice_of(error, doing))

    def _on_gallery_changed(self, rows: range | None) -> None:
        gallery = self.gallery
        if gallery is None:
            return
        if rows is None or len(gallery) != self._rows:
            self.beginResetModel()
            self._rows = len(gallery)
            self.endResetModel()
        elif rows:
            last = min(rows.stop, self._rows) - 1
            if last >= rows.start:
                self.dataChanged.emit(self.index(rows.start), self.index(last))
        self.sig_loaded.emit()
        if rows is None:
            self.want(self._shown)  # started over: the shown rows load again
        else:
            self._fetch_thumbnails()

    # --- thumbnails

    def _fetch_thumbnails(self) -> None:
        gallery = self.gallery
        if gallery is None:
            return
        wanted: dict[int, Tile] = {}
        for row in self._shown:
            tile = gallery.tile(row)
            if tile is not None and tile.image_id not in self._pixmaps and tile.image_id not in self._failed:
                wanted[tile.image_id] = tile
        for image_id in [i for i in self._fetching if i not in wanted]:
            self._fetching.pop(image_id).cancel()  # scrolled away: not worth the bandwidth now
        for image_id, tile in wanted.items():
            if len(self._fetching) >= IN_FLIGHT:
                break
            if image_id not in self._fetching:
                task = asyncio.ensure_future(self._fetch_thumbnail(tile))
                self._fetching[image_id] = task

    async def _fetch_thumbnail(self, tile: Tile) -> None:
        try:
            fetched = await self._workspace.fetcher.fetch(tile.thumbnail_url)
            image = await asyncio.to_thread(_decoded, fetched.content, THUMBNAIL_EDGE)
        except FetchError as error:
            logger.info("no thumbnail for %s: %s", tile.name, error)
            image = None
        finally:
            self._fetching.pop(tile.image_id, None)
        if image is None:
            self._failed.add(tile.image_id)
        else:
            self._pixmaps[tile.image_id] = QPixmap.fromImage(image)
            while len(self._pixmaps) > KEPT_PIXMAPS:
                self._pixmaps.popitem(last=False)
        self._repaint(tile.image_id)
        self._fetch_thumbnails()

    def _repaint(self, image_id: int) -> None:
        if self.gallery is None:
            return
        for row in self._shown:
            tile = self.gallery.tile(row)
            if tile is not None and tile.image_id == image_id:
                self.dataChanged.emit(self.index(row), self.index(row))
                return

    def touch(self, image_id: int) -> None:
        """Keep a painted thumbnail among the newest (the cache forgets the least recently painted)."""
        with contextlib.suppress(KeyError):
            self._pixmaps.move_to_end(image_id)
