"""What the gallery shows of a project's images, without Qt: tiles loaded a page at a time as they come
into view, kept right by events and caught up after a lost connection.

A grid view asks :meth:`Gallery.tile` for each cell it paints; a cell not loaded yet is ``None`` (a
placeholder), and the view asks :meth:`Gallery.ensure` for the range it shows, which loads the pages that
cover it, never the same page twice at once. The API pages by cursor (no offsets), so a page is reached
from the nearest page whose cursor is known: forwards from the first page, backwards (``last``/``before``)
from the last one, which ``last`` alone reads at once, or from any page loaded around it. A jump to the
end of 10,000 images thus reads the last pages only, not the hundred before them; a page far from any
known one (the scroll bar dragged to the middle) is reached in hops of up to :data:`MAX_HOP` images that
ask only for the cursor where the hop ends, not the images between. ``len(gallery)`` is the
project's count for the filter, known from the first page, so a scroll bar is right at once. Changes come
in through :meth:`Gallery.refresh` (the image ids an event named: those tiles are read again) and
:meth:`Gallery.catch_up` (after a reconnect: whatever changed since the newest ``updatedAt`` seen). When
an image's place in the list changes (renamed, another status under a filter, deleted), the loaded pages
no longer line up, and the gallery starts again from the first page. Every change is told to
``on_change`` with the indices it touches, so a Qt model can emit ``dataChanged`` or reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import LabClient

__all__ = ["Gallery", "Tile"]

MAX_IDS = 500
"""How many images one refresh asks for (the API's limit for ``ids``)."""
MAX_HOP = 500
"""How many images one hop towards a far page passes over (the API's largest page)."""


@dataclass(frozen=True)
class Tile:
    """One image as the gallery shows it; ``position`` counts from 1 in the current filter and order."""

    image_id: int
    position: int
    name: str
    width: int
    height: int
    segmentation_status: str
    review_status: str
    updated_at: str
    thumbnail_url: str

    @classmethod
    def of(cls, edge: Mapping[str, Any]) -> Tile:
        node = edge["node"]
        return cls(
            node["id"],
            edge["position"],
            node["name"],
            node["width"],
            node["height"],
            node["segmentationStatus"],
            node["reviewStatus"],
            node["updatedAt"],
            node["thumbnailUrl"],
        )


class Gallery:
    """The images of ``project_id`` matching ``image_filter`` (the API's ``ImageFilterInput``) in
    ``order`` (an ``ImageOrder``), ``page_size`` at a time."""

    def __init__(
        self,
        client: LabClient,
        project_id: int,
        *,
        image_filter: Mapping[str, Any] | None = None,
        order: str = "NAME_ASC",
        page_size: int = 100,
        on_change: Callable[[range | None], None] | None = None,
    ) -> None:
        self._client = client
        self._project_id = project_id
        self._filter = dict(image_filter) if image_filter else None
        self._order = order
        self._page_size = page_size
        self._on_change = on_change
        self._tiles: dict[int, Tile] = {}  # by index, from 0
        # Where each reachable page is read from: `after` (forwards) or `before` (backwards) by page
        # number; page k holds the indices from k * size. The first page needs neither, the last `last`.
        self._after: dict[int, str] = {}
        self._before: dict[int, str] = {}
        self._total: int | None = None
        self._loading: dict[int, asyncio.Task[None]] = {}
        self._newest_seen = ""

    def __len__(self) -> int:
        return self._total or 0

    @property
    def loaded(self) -> bool:
        """The first page has come: ``len`` is the real count."""
        return self._total is not None

    def tile(self, index: int) -> Tile | None:
        return self._tiles.get(index)

    def index_of(self, image_id: int) -> int | None:
        """Where a loaded image is (for "image 37 of 120" and next/previous: ``index + 1`` of ``len``)."""
        return next((i for i, t in self._tiles.items() if t.image_id == image_id), None)

    async def ensure(self, indices: range) -> None:
        """Load the pages covering ``indices`` (clipped to the list), each from its nearest known page."""
        if self._total is None:
            await self._load_page(0)
        last = min(indices.stop, len(self)) - 1
        if last < indices.start:
            return
        for page in range(indices.start // self._page_size, last // self._page_size + 1):
            await self._load_page(page)

    async def refresh(self, image_ids: Iterable[int]) -> None:
        """Read these images again (an event named them); start over when one moved, left or came in."""
        wanted = sorted(set(image_ids))
        for start in range(0, len(wanted), MAX_IDS):
            await self._merge(await self._images(ids=wanted[start : start + MAX_IDS]), wanted)

    async def catch_up(self) -> None:
        """After a lost connection: read what changed since the newest change seen."""
        if not self._newest_seen:
            return self.reset()
        changed = await self._images(updatedSince=self._newest_seen)
        await self._merge(changed, [tile.image_id for tile in changed])

    def reset(self) -> None:
        """Forget every page: the view shows placeholders and asks again."""
        for task in self._loading.values():
            task.cancel()
        self._tiles.clear()
        self._after.clear()
        self._before.clear()
        self._total = None
        self._loading.clear()
        self._changed(None)

    async def _load_page(self, page: int) -> None:
        while not self._reachable(page):  # step from the nearest page that can be read, towards this one
            reachable = self._reachable_pages()
            nearest = min(reachable, key=lambda known: abs(known - page))
            if abs(nearest - page) > 1 and await self._hop(nearest, page):
                continue
            if self._has(nearest):  # its neighbour's cursor is missing: the list changed under it
                return
            await self._load_page(nearest)
            if self._reachable_pages() == reachable:
                return
        if self._has(page):
            return
        running = self._loading.get(page)
        if running is None:
            running = asyncio.ensure_future(self._fetch(page))
            self._loading[page] = running
            running.add_done_callback(lambda _: self._loading.pop(page, None))
        await asyncio.shield(running)

    async def _hop(self, start: int, page: int) -> bool:
        """Learn the cursor of a page between ``start`` (reachable) and ``page``, as near ``page`` as one
        hop goes, without reading the images between; False when no hop can start there."""
        size, last = self._page_size, self._last_page()
        hop = min(abs(page - start), MAX_HOP // size)
        if hop < 2:
            return False
        if page > start and (start == 0 or start in self._after):
            target = start + hop
            info = await self._cursor(first=hop * size, after=self._after.get(start))
            cursor, known = info["endCursor"], self._after
        elif page < start and (start == last or start in self._before):
            target = start - hop  # page `target + 1` starts where this hop's first image is
            before = self._before.get(start) if start != last else None
            count = (start - target) * size if before else len(self) - (target + 1) * size
            info = await self._cursor(first=size, last=count, before=before)
            cursor, known = info["startCursor"], self._before
        else:
            return False
        if not cursor:
            return False
        known.setdefault(target, cursor)
        return True

    async def _cursor(self, **paging: Any) -> Mapping[str, Any]:
        data = await self._client.call(
            "GalleryCursor", projectId=self._project_id, filter=self._filter, orderBy=self._order, **paging
        )
        info: Mapping[str, Any] = data["project"]["images"]["pageInfo"]
        return info

    def _last_page(self) -> int:
        return max(0, (len(self) - 1) // self._page_size)

    def _reachable_pages(self) -> set[int]:
        return {0, self._last_page(), *self._after, *self._before}

    def _reachable(self, page: int) -> bool:
        return self._total is None or page in self._reachable_pages()

    def _has(self, page: int) -> bool:
        first = page * self._page_size
        return self._total is not None and all(
            i in self._tiles for i in range(first, min(first + self._page_size, self._total))
        )

    def _page_variables(self, page: int) -> dict[str, Any]:
        if page == 0 or page in self._after:
            return {"first": self._page_size, "after": self._after.get(page)}
        if page == self._last_page():  # the tail: exactly what is left after the full pages before it
            return {"first": self._page_size, "last": len(self) - page * self._page_size}
        return {"first": self._page_size, "last": self._page_size, "before": self._before[page]}

    async def _fetch(self, page: int) -> None:
        data = await self._client.call(
            "GalleryPage",
            projectId=self._project_id,
            **self._page_variables(page),
            filter=self._filter,
            orderBy=self._order,
        )
        images = data["project"]["images"]
        self._total = images["totalCount"]
        tiles = [Tile.of(edge) for edge in images["edges"]]
        for tile in tiles:
            self._tiles[tile.position - 1] = tile
            self._newest_seen = max(self._newest_seen, tile.updated_at)
        info = images["pageInfo"]
        if tiles and page < self._last_page() and info["endCursor"]:
            self._after.setdefault(page + 1, info["endCursor"])
        if tiles and page > 0 and info["startCursor"]:
            self._before.setdefault(page - 1, info["startCursor"])
        first = page * self._page_size
        self._changed(range(first, first + len(tiles)))

    async def _images(self, **narrowed: Any) -> list[Tile]:
        data = await self._client.call(
            "GalleryImages",
            projectId=self._project_id,
            first=MAX_IDS,
            filter=self._filter,
            orderBy=self._order,
            **narrowed,
        )
        return [Tile.of(edge) for edge in data["project"]["images"]["edges"]]

    async def _merge(self, found: Sequence[Tile], asked: Sequence[int]) -> None:
        """Put re-read tiles in place, or start over when the list itself changed: an image moved, left,
        came in where a loaded one was, or came in past the end (the count grows: another member's
        import). (One that belongs where nothing is loaded yet, within the count, waits there.)"""
        loaded = {tile.image_id: index for index, tile in self._tiles.items()}
        returned = {tile.image_id for tile in found}
        for tile in found:
            index, was = tile.position - 1, loaded.get(tile.image_id)
            if (was is not None and was != index) or (was is None and index in self._tiles):
                return self.reset()
            if self._total is not None and index >= self._total:
                return self.reset()
        if any(image_id in loaded and image_id not in returned for image_id in asked):
            return self.reset()
        for tile in found:
            self._newest_seen = max(self._newest_seen, tile.updated_at)
            index = tile.position - 1
            if index in self._tiles:
                self._tiles[index] = tile
                self._changed(range(index, index + 1))
        return None

    def _changed(self, indices: range | None) -> None:
        if self._on_change is not None:
            self._on_change(indices)
