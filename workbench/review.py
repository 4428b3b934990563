"""One image open for review and editing, without a window: what the review canvas and its panels observe.

:class:`ReviewSession` reads the image (its preview rendition at once, the original on demand) and the
outlines of its current segmentation version (``geometryUrl``, decoded off the loop), holds them as an
:class:`~workbench.editing.ImageOutlines` edited through an :class:`~workbench.editing.Editor`, and hands
every edit, undo and redo to the :class:`~workbench.saving.Saver` one spheroid at a time (journalled at
once, sent after the idle).

Keys and server ids. The editor keys a stored spheroid by its server id and one drawn here by a provisional
key (< 0). A spheroid is sent without an id until the server named it (``Saved.new_ids``, by the change id
:meth:`Saver.edit` returned); an edit of it before that is held here and sent, with the id, as soon as the
name arrives, so a spheroid drawn and reshaped quickly is stored once, not twice. A spheroid whose deletion
the server confirmed, brought back by undo, is drawn again as a new one (the server refuses an id it no
longer has). What the server confirmed is marked saved in :class:`ImageOutlines` (``unsaved`` then lists
what is still on its way, for the canvas's colours).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from cluster import read_image
from workbench.editing import Change, Editor, ImageOutlines, Outline, SegmentationChanges
from workbench.fetch import DisplayRange
from workbench.saving import Conflict, Saved, Saver, delete, upsert
from workbench.tasks import Listeners
from workbench.workspace import Workspace

__all__ = ["PREVIEW_WIDTH", "ReviewSession", "ReviewedImage"]

logger = logging.getLogger(__name__)

PREVIEW_WIDTH: Final[int] = 2048
"""The preview rendition asked for first: sharp on a full-screen canvas, a fraction of a large original."""


@dataclass(frozen=True)
class ReviewedImage:
    """The image open for review: what the canvas, the review bar and the measurements show of it."""

    id: int
    name: str
    project_id: int
    width: int
    height: int
    pixel_size_um: float | None
    version: int
    """The segmentation version shown (0: none yet)."""
    review_status: str
    review_comment: str | None
    preview_url: str
    full_url: str | None
    """The original, when the preview is smaller than it (None: the preview is full resolution)."""
    display_range: DisplayRange | None
    """How the preview's grey levels map to the original's values (None: they are the values)."""

    @property
    def preview_is_full(self) -> bool:
        return self.full_url is None


class ReviewSession:
    """One image open for review and editing; its edits saved through ``saver``."""

    def __init__(self, workspace: Workspace, saver: Saver) -> None:
        self.workspace = workspace
        self.saver = saver
        self.image: ReviewedImage | None = None
        self.outlines = ImageOutlines(0, 0, 0, {})
        self.editor = Editor(self.outlines)
        self.preview: NDArray[Any] | None = None
        """The preview rendition's grey levels, (height, width) of the preview."""
        self.full: NDArray[Any] | None = None
        """The original's pixels, once :meth:`load_full` read them."""
        self.confidence: dict[int, float] = {}
        """How sure the segmenter was of each spheroid it drew (0..1), where it said."""
        self.selection: frozenset[int] = frozenset()
        self.outlines_changed: Listeners[frozenset[int]] = Listeners()
        self.selection_changed: Listeners[frozenset[int]] = Listeners()
        self.image_opened: Listeners[ReviewedImage] = Listeners()
        self.image_changed: Listeners[ReviewedImage] = Listeners()
        """The open image's record changed: its version after a save, its pixel size, its verdict."""
        self._sent: dict[str, int] = {}
        """Change ids sent and not yet confirmed, with the key each is of."""
        self._naming: dict[str, int] = {}
        """Keys sent without an id (new spheroids), by the change id whose answer names them."""
        self._held: set[int] = set()
        """Keys edited while their name was awaited: sent once it comes."""
        self._gone: set[int] = set()
        """Keys whose deletion the server confirmed."""
        self._reloading: asyncio.Task[None] | None = None
        self._conflicted: dict[int, Conflict] = {}
        """This image's conflicts shown now, by spheroid id."""
        self._forced: set[int] = set()
        """Keys whose conflict was settled: the next reload takes the server's shape whatever we hold."""
        self._disconnects = [
            saver.saved.connect(self._on_saver_saved),
            saver.conflicts_changed.connect(self._on_saver_conflicts_changed),
        ]

    # -- opening ---------------------------------------------------------------------------------------

    async def open(self, image_id: int) -> None:
        """Read image ``image_id``, its preview and outlines; then ``image_opened`` tells the views."""
        data = await self.workspace.client.call("CanvasImage", imageId=image_id, previewWidth=PREVIEW_WIDTH)
        found = data["image"]
        segmentation = found["segmentation"]
        fetcher = self.workspace.fetcher
        preview_task = fetcher.fetch(found["previewUrl"])
        if segmentation is not None:
            fetched, decoded = await asyncio.gather(
                preview_task, fetcher.fetch_outlines(segmentation["geometryUrl"])
            )
            outlines = ImageOutlines.of(decoded, found["pixelSizeUm"])
            confidence = _confidence(decoded.ids.tolist(), decoded.metrics.get("confidence"))
        else:
            fetched = await preview_task
            outlines = ImageOutlines(found["width"], found["height"], 0, {}, found["pixelSizeUm"])
            confidence = {}
        pixels = (await asyncio.to_thread(read_image, fetched.content, found["name"])).pixels
        full = pixels.shape[1] >= found["width"] and pixels.shape[0] >= found["height"]
        image = ReviewedImage(
            id=int(found["id"]),
            name=found["name"],
            project_id=int(found["projectId"]),
            width=int(found["width"]),
            height=int(found["height"]),
            pixel_size_um=found["pixelSizeUm"],
            version=outlines.version,
            review_status=found["reviewStatus"],
            review_comment=found["reviewComment"],
            preview_url=found["previewUrl"],
            full_url=None if full and fetched.display_range is None else found["originalUrl"],
            display_range=fetched.display_range,
        )
        self._sent.clear()
        self._naming.clear()
        self._held.clear()
        self._gone.clear()
        self.image, self.preview, self.full = image, pixels, None
        self.confidence = confidence
        self.outlines = outlines
        self.editor = Editor(outlines)
        self.selection = frozenset()
        self.saver.open_image(image.id, outlines.version)
        self.image_opened.emit(image)

    def set_pixel_size(self, pixel_size_um: float | None) -> ReviewedImage:
        """The open image's pixel size was changed (stored by the measurements panel): metrics in µm and
        the canvas's scale follow. Returns the image as it is now."""
        self.outlines.pixel_size_um = pixel_size_um
        return self._change(pixel_size_um=pixel_size_um)

    def reviewed(self, image_id: int, status: str, comment: str | None) -> None:
        """A verdict was stored for ``image_id`` (by the review walk): the open image's record says so."""
        if self.image is not None and self.image.id == image_id:
            self._change(review_status=status, review_comment=comment or None)

    def _change(self, **fields: Any) -> ReviewedImage:
        image = replace(self._opened(), **fields)
        if image != self.image:
            self.image = image
            self.image_changed.emit(image)
        return image

    async def load_full(self) -> NDArray[Any]:
        """The original's pixels (its own values and dtype), for full resolution on demand."""
        image, opened = self._opened(), self.outlines  # still this opening (the record changes on saves)
        url = image.full_url or image.preview_url
        fetched = await self.workspace.fetcher.fetch(url)
        pixels = (await asyncio.to_thread(read_image, fetched.content, image.name)).pixels
        if self.outlines is opened:
            self.full = pixels
        return pixels

    def value_at(self, x: float, y: float) -> float | None:
        """The original's value at image pixel (x, y): read from the original once loaded, else from the
        preview through the display range (None: outside the image)."""
        image, preview = self._opened(), self.preview
        if preview is None or not (0 <= x < image.width and 0 <= y < image.height):
            return None
        if self.full is not None:
            return float(self.full[int(y), int(x)])
        row = min(int(y * preview.shape[0] / image.height), preview.shape[0] - 1)
        column = min(int(x * preview.shape[1] / image.width), preview.shape[1] - 1)
        grey = float(preview[row, column])
        return grey if image.display_range is None else image.display_range.to_original(grey)

    # -- selection and edits ----------------------------------------------------------------------------

    def select(self, keys: Iterable[int]) -> None:
        chosen = frozenset(key for key in keys if key in self.outlines)
        if chosen != self.selection:
            self.selection = chosen
            self.selection_changed.emit(chosen)

    def edited(self, change: Change) -> None:
        """The editor made ``change`` (an edit, an undo or a redo): save each spheroid it touched and tell
        the views. The canvas calls this with what each :class:`Editor` method returns."""
        for key in sorted(change.keys, reverse=True):
            self._send(key)
        gone = self.selection - set(self.outlines)
        if gone:
            self.select(self.selection - gone)
        self.outlines_changed.emit(change.keys)

    def undo(self) -> Change | None:
        change = self.editor.undo()
        if change is not None:
            self.edited(change)
        return change

    def redo(self) -> Change | None:
        change = self.editor.redo()
        if change is not None:
            self.edited(change)
        return change

    async def save_now(self) -> None:
        """Ctrl+S: send what is pending now and wait for the answer."""
        await self.saver.flush()

    @property
    def unsaved(self) -> frozenset[int]:
        """Keys with an edit not confirmed by the server yet."""
        return frozenset(self._sent.values()) | self._held

    def close(self) -> None:
        for disconnect in self._disconnects:
            disconnect()
        if self._reloading is not None:
            self._reloading.cancel()

    async def reload(self) -> None:
        """Take in what others saved since (after a merged save, or a conflict settled): spheroids with no
        edit of ours on the way are set to the server's current version of them."""
        # still this opening? the image's record changes as edits are saved, its outlines only on open
        image, opened = self._opened(), self.outlines
        data = await self.workspace.client.call("CanvasSegmentation", imageId=image.id)
        segmentation = data["image"]["segmentation"]
        if segmentation is None or self.outlines is not opened:
            return
        decoded = await self.workspace.fetcher.fetch_outlines(segmentation["geometryUrl"])
        if self.outlines is not opened:
            return
        theirs = ImageOutlines.of(decoded).snapshot()
        busy = (self.unsaved | set(self.outlines.unsaved)) - self._forced
        self._forced.clear()
        by_id = {self.outlines.server_id(key): key for key in self.outlines if key not in busy}
        busy_ids = {self.outlines.server_id(key) for key in busy} | set(self.outlines)
        current = self.outlines.snapshot()
        before: dict[int, Outline | None] = {}
        after: dict[int, Outline | None] = {}
        for server_id, outline in theirs.items():
            found = by_id.pop(server_id, None)
            if found is None and server_id in busy_ids:
                continue  # ours, with an edit on the way
            key = server_id if found is None else found
            mine = current.get(key)
            if mine is None or not _close(mine, outline):
                before[key], after[key] = mine, outline
        for stored_id, key in by_id.items():
            if stored_id is not None and stored_id > 0 and key not in self._gone:
                before[key], after[key] = self.outlines[key], None  # deleted by someone else
        if not after:
            return
        self.outlines.apply(Change("Others' edits", before, after))  # not an edit of ours: no undo
        self.outlines.saved(SegmentationChanges(keys=list(after)), int(segmentation["version"]), [])
        self._change(version=self.outlines.version)
        self.outlines_changed.emit(frozenset(after))

    def _reload_soon(self, after_sending: bool = False) -> None:
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._reload_logged(after_sending))

    async def _reload_logged(self, after_sending: bool) -> None:
        try:
            if after_sending:  # a kept shape is sent first: then the server's is the one chosen
                await self.saver.flush()
            await self.reload()
        except Exception:  # the next merged save tries again; the canvas keeps what it shows
            logger.warning("could not read what others saved", exc_info=True)

    def _on_saver_conflicts_changed(self, conflicts: list[Conflict]) -> None:
        if self.image is None:
            return
        now = {conflict.spheroid_id: conflict for conflict in conflicts if conflict.image_id == self.image.id}
        settled = [conflict for spheroid_id, conflict in self._conflicted.items() if spheroid_id not in now]
        self._conflicted = now
        if not settled:
            return
        keys = {self.outlines.server_id(key): key for key in self.outlines}
        for conflict in settled:
            for change_id in conflict.change_ids:
                self._sent.pop(change_id, None)
            self._forced.add(keys.get(conflict.spheroid_id, conflict.spheroid_id))
        self._reload_soon(after_sending=True)

    # -- saving ---------------------------------------------------------------------------------------

    def _send(self, key: int) -> None:
        image = self._opened()
        if key in self._naming.values():
            self._held.add(key)  # sent once the server named it
            return
        now = self.outlines.snapshot().get(key)
        server_id = None if key in self._gone else self.outlines.server_id(key)
        if now is None:
            if server_id is None:
                return  # never stored: nothing to tell the server
            change_id = self.saver.edit(image.id, delete(server_id))
        else:
            change_id = self.saver.edit(image.id, _upsert(now, server_id))
            if server_id is None:
                self._naming[change_id] = key
                self._gone.discard(key)
        self._sent[change_id] = key

    def _on_saver_saved(self, saved: Saved) -> None:
        if self.image is None or saved.image_id != self.image.id:
            return
        pending = {entry.change_id for entry in self.saver.journals.of(saved.image_id).entries()}
        confirmed = {change_id: key for change_id, key in self._sent.items() if change_id not in pending}
        for change_id in confirmed:
            del self._sent[change_id]
        named = {
            change_id: key
            for change_id, key in self._naming.items()
            if change_id in confirmed and change_id in saved.new_ids
        }
        for change_id in named:
            del self._naming[change_id]
        still_sent = set(self._sent.values())
        unsettled = still_sent | self._held
        settled = [key for key in dict.fromkeys(confirmed.values()) if key not in unsettled]
        changes = SegmentationChanges(keys=settled, new_keys=list(named.values()))
        self.outlines.saved(changes, saved.version, [saved.new_ids[change_id] for change_id in named])
        self._change(version=self.outlines.version)
        current = set(self.outlines)
        self._gone.update(key for key in settled if key not in current and self.outlines.server_id(key))
        for key in [key for key in self._held if key not in self._naming.values()]:
            self._held.discard(key)
            self._send(key)
        self.outlines_changed.emit(frozenset(settled))
        if saved.merged:
            self._reload_soon()

    def _opened(self) -> ReviewedImage:
        if self.image is None:
            raise RuntimeError("no image is open: call open(image_id) first")
        return self.image


def _confidence(ids: list[int], values: Any) -> dict[int, float]:
    if values is None:
        return {}
    return {key: float(value) for key, value in zip(ids, values, strict=True) if value == value and key > 0}


def _close(mine: Outline, theirs: Outline) -> bool:
    """The same shape give or take the server's rounding of coordinates."""
    rings = [(mine.exterior, theirs.exterior), *zip(mine.holes, theirs.holes, strict=False)]
    return len(mine.holes) == len(theirs.holes) and all(
        a.shape == b.shape and bool(np.allclose(a, b, atol=0.01)) for a, b in rings
    )


def _upsert(outline: Outline, server_id: int | None) -> dict[str, Any]:
    return dict(upsert(outline.exterior.tolist(), [hole.tolist() for hole in outline.holes], server_id))
