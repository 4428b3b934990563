"""Walking through a project's images to review them, one after another, without Qt.

A reviewer opens an image from the gallery and goes on from there: next and previous within the gallery's
filter and order ("37 of 120"), narrowed by a walk filter (every image, only the unreviewed ones, only
those marked "needs fix"). The list is a :class:`workbench.gallery.Gallery` of its own (the same paging and
positions as the grid, with the walk's review condition added to the gallery's filter), so a walk through
10,000 images reads a page at a time.

While the reviewer looks at one image (once it is shown, not while it opens), the next one in the direction
of travel is **prefetched**: its
preview rendition and its outlines (``geometryUrl``) go through the workspace's
:class:`~workbench.fetch.ImageFetcher`, whose disk cache then serves the canvas when it opens that image,
with no request (both URLs are immutable and signed for a whole window, so the canvas asks for the very
same ones). A prefetch that fails is only logged: the canvas then fetches the image itself.

A **verdict** (:meth:`ReviewWalk.set_verdict`) names the segmentation version the reviewer looked at: the
one the review session showed last (its own saves included: pending edits are saved first), told through
:meth:`ReviewWalk.watch` or :meth:`ReviewWalk.looking_at`. The server refuses it (``StaleReview``) when
someone saved another version meanwhile; nothing changes and the reviewer reads :data:`STALE_MESSAGE`.
"Needs fix" and "reject" need a comment (the server's rule); without one nothing is sent and the outcome
says so, so the bar can put the cursor in the comment box. An image a verdict takes out of the walk (an
unreviewed one accepted, in a walk of the unreviewed) leaves its place to the next one, so "next" goes on
from where the reviewer was.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.api import ApiError, ServerUnreachableError
from workbench.fetch import FetchError
from workbench.gallery import Gallery, Tile
from workbench.review import PREVIEW_WIDTH  # the prefetch must ask for the canvas's very URL
from workbench.tasks import Listeners
from workbench.workspace import Workspace

__all__ = [
    "STALE_MESSAGE",
    "GivenVerdict",
    "Prefetched",
    "ReviewWalk",
    "ReviewedSession",
    "Verdict",
    "VerdictOutcome",
    "WalkFilter",
]

logger = logging.getLogger(__name__)

STALE_MESSAGE = "Someone saved a new version of this image after you opened it; look again before reviewing"
PREFETCH_DELAY = 1.0
"""Seconds after a move when the prefetch starts if nobody said the image is shown (``looking_at``)."""


class WalkFilter(enum.Enum):
    """Which images of the gallery's list the walk visits."""

    ALL = "All images"
    UNREVIEWED = "Unreviewed"
    NEEDS_FIX = "Needs fix"

    @property
    def review(self) -> frozenset[str] | None:
        """The review states it keeps (``None``: any)."""
        return {
            WalkFilter.ALL: None,
            WalkFilter.UNREVIEWED: frozenset({"UNREVIEWED"}),
            WalkFilter.NEEDS_FIX: frozenset({"NEEDS_FIX"}),
        }[self]


_WORDS = {
    WalkFilter.ALL: ("", "No images"),
    WalkFilter.UNREVIEWED: (" unreviewed", "No unreviewed images left"),
    WalkFilter.NEEDS_FIX: (" needing a fix", "No images needing a fix left"),
}


class Verdict(enum.Enum):
    ACCEPTED = "ACCEPTED"
    NEEDS_FIX = "NEEDS_FIX"
    REJECTED = "REJECTED"

    @property
    def label(self) -> str:
        return {"ACCEPTED": "Accepted", "NEEDS_FIX": "Needs fix", "REJECTED": "Rejected"}[self.value]

    @property
    def action(self) -> str:
        """What its button says."""
        return {"ACCEPTED": "Accept", "NEEDS_FIX": "Needs fix", "REJECTED": "Reject"}[self.value]

    @property
    def needs_comment(self) -> bool:
        return self is not Verdict.ACCEPTED


@dataclass(frozen=True)
class VerdictOutcome:
    """What became of a verdict: ``stored``, or why not (``message``, for the reviewer)."""

    stored: bool
    message: str
    needs_comment: bool = False
    """Nothing was sent: this verdict needs a comment saying why."""
    stale: bool = False
    """Another version was saved after the one looked at: open the image again."""


@dataclass(frozen=True)
class GivenVerdict:
    """A verdict the server stored: ``image_id`` is now ``verdict``, with ``comment`` (None: none)."""

    image_id: int
    verdict: Verdict
    comment: str | None


@dataclass(frozen=True)
class Prefetched:
    """An image whose preview and outlines are in the fetcher's cache (``geometry_url`` empty: none)."""

    image_id: int
    preview_url: str
    geometry_url: str


class ReviewedSession(Protocol):
    """What the walk reads of the review session (``workbench.review.ReviewSession``): the image shown
    (``image.id``, ``image.version``) and the version its outlines are at after its own saves."""

    image_opened: Listeners[Any]

    @property
    def image(self) -> Any: ...

    @property
    def outlines(self) -> Any: ...

    async def save_now(self) -> None: ...


class ReviewWalk:
    """Next and previous through ``project_id``'s images matching ``image_filter`` (the gallery's
    ``ImageFilterInput``) in ``order``, narrowed by ``walk``. ``changed`` tells of every move."""

    def __init__(
        self,
        workspace: Workspace,
        project_id: int,
        *,
        image_filter: Mapping[str, Any] | None = None,
        order: str = "NAME_ASC",
        walk: WalkFilter = WalkFilter.ALL,
        preview_width: int = PREVIEW_WIDTH,
        page_size: int = 100,
        prefetch: bool = True,
    ) -> None:
        self._workspace = workspace
        self.project_id = project_id
        self._gallery_filter = dict(image_filter) if image_filter else {}
        self._order = order
        self._page_size = page_size
        self.preview_width = preview_width
        self.prefetch = prefetch
        """Prefetch the next image (off only to measure what it saves: ``benchmarks/review.py``)."""
        self.walk = walk
        self.changed: Listeners[ReviewWalk] = Listeners()
        self.verdict_given: Listeners[GivenVerdict] = Listeners()
        """Each verdict stored (before the walk moves on): for views that show the image's state."""
        self.current: Tile | None = None
        self._index = 0
        self._in_list = False
        """The current image is at ``_index`` of the list; if not, ``_index`` is where the next one is."""
        self._seen: dict[int, int] = {}
        self._session: ReviewedSession | None = None
        self._prefetch: asyncio.Task[Prefetched | None] | None = None
        self._shown = asyncio.Event()  # the current image is open: the prefetch may start
        self.prefetched: dict[int, Prefetched] = {}
        """Images whose preview and outlines the cache holds, by id (the last few)."""
        self._gallery = self._list()

    # --- where the walk is

    @property
    def total(self) -> int:
        return len(self._gallery)

    @property
    def position(self) -> int | None:
        """The current image's place, from 1 (``None`` when it is not in the walk's list)."""
        return self._index + 1 if self.current is not None and self._in_list else None

    def position_text(self) -> str:
        """ "37 of 120", or what the reviewer should know instead."""
        if not self._gallery.loaded:
            return ""
        suffix, none_left = _WORDS[self.walk]
        if self.total == 0:
            return none_left
        if self.position is None:
            return f"– of {self.total}{suffix}"
        return f"{self.position} of {self.total}{suffix}"

    @property
    def has_next(self) -> bool:
        return not self._gallery.loaded or self._next_index() < self.total

    @property
    def has_previous(self) -> bool:
        return self.current is not None and self._index > 0

    # --- moving

    async def start(self, image_id: int) -> None:
        """Stand on ``image_id`` (the image the page opened): find its place in the walk's list."""
        await self._locate(image_id)
        self._start_prefetch(self._next_index())
        self.changed.emit(self)

    async def next(self) -> Tile | None:
        """Move to the next image (``None``, staying, at the end of the list)."""
        return await self._move(self._next_index(), forwards=True)

    async def previous(self) -> Tile | None:
        """Move to the previous image (``None``, staying, at the start)."""
        return await self._move(self._index - 1, forwards=False)

    async def set_walk(self, walk: WalkFilter) -> None:
        """Walk only these images from now on, standing on the current image (when the new list lacks
        it, "next" goes to the list's first image)."""
        self.walk = walk
        self._gallery = self._list()
        self._index, self._in_list = 0, False  # where it is in the new list, if anywhere: found below
        if self.current is not None:
            await self._locate(self.current.image_id)
        else:
            await self._gallery.ensure(range(0, 1))
        self.changed.emit(self)

    def _next_index(self) -> int:
        return self._index + 1 if self.current is not None and self._in_list else self._index

    async def _move(self, index: int, *, forwards: bool) -> Tile | None:
        if index < 0:
            return None
        await self._gallery.ensure(range(index, index + 1))
        tile = self._gallery.tile(index)
        if tile is None:
            return None
        self.current, self._index, self._in_list = tile, index, True
        self._start_prefetch(index + 1 if forwards else index - 1)
        self.changed.emit(self)
        return tile

    async def _locate(self, image_id: int) -> None:
        """Find ``image_id`` in the list (one query for its position, one for its page and the count)."""
        found = await self._position_of(image_id, self._filter())
        self._gallery.reset()  # a verdict or another walk filter: the pages read before are stale
        if found is None:  # not (or no longer) in this walk: the next one is where it was
            if self.current is None or self.current.image_id != image_id:
                self._index = 0
                self.current = await self._position_of(image_id, None)
            self._in_list = False
            await self._gallery.ensure(range(self._index, self._index + 1))
            return
        self._index, self._in_list = found.position - 1, True
        await self._gallery.ensure(range(self._index, self._index + 1))
        self.current = self._gallery.tile(self._index) or found

    async def _position_of(self, image_id: int, image_filter: Mapping[str, Any] | None) -> Tile | None:
        data = await self._workspace.client.call(
            "GalleryImages",
            projectId=self.project_id,
            first=1,
            filter=image_filter,
            orderBy=self._order,
            ids=[image_id],
        )
        edges = data["project"]["images"]["edges"]
        return Tile.of(edges[0]) if edges and edges[0]["position"] is not None else None

    def _filter(self) -> dict[str, Any] | None:
        combined = dict(self._gallery_filter)
        wanted = self.walk.review
        if wanted is not None:
            given = combined.get("review")
            combined["review"] = sorted(wanted & set(given) if given else wanted)
        return combined or None

    def _list(self) -> Gallery:
        return Gallery(
            self._workspace.client,
            self.project_id,
            image_filter=self._filter(),
            order=self._order,
            page_size=self._page_size,
        )

    # --- prefetch

    def _start_prefetch(self, index: int) -> None:
        if self._prefetch is not None:
            self._prefetch.cancel()
        self._prefetch = None
        self._shown = asyncio.Event()
        if self.prefetch and 0 <= index < self.total:
            self._prefetch = asyncio.ensure_future(self._prefetch_image(index, self._shown))

    async def prefetching(self) -> None:
        """Until the prefetch running now (if any) has ended (for tests and measurements)."""
        if self._prefetch is not None:
            await asyncio.wait([self._prefetch])

    async def _prefetch_image(self, index: int, shown: asyncio.Event) -> Prefetched | None:
        # Not while the image just moved to is being opened: the prefetch would compete with it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shown.wait(), PREFETCH_DELAY)
        await self._gallery.ensure(range(index, index + 1))
        tile = self._gallery.tile(index)
        if tile is None or tile.image_id in self.prefetched:
            return None
        try:
            data = await self._workspace.client.call(
                "WalkImage", id=tile.image_id, previewWidth=self.preview_width
            )
            image = data["image"]
            segmentation = image["segmentation"] or {}
            geometry = segmentation.get("geometryUrl") or ""
            fetcher = self._workspace.fetcher
            await asyncio.gather(
                fetcher.fetch(image["previewUrl"]), *([fetcher.fetch(geometry)] if geometry else [])
            )
        except (FetchError, ApiError, ServerUnreachableError) as error:  # the canvas fetches it itself
            logger.info("prefetch of image %s failed: %s", tile.image_id, error)
            return None
        done = Prefetched(tile.image_id, image["previewUrl"], geometry)
        self.prefetched = {**dict(list(self.prefetched.items())[-7:]), tile.image_id: done}
        return done

    def close(self) -> None:
        """Stop the prefetch running now."""
        if self._prefetch is not None:
            self._prefetch.cancel()

    # --- verdicts

    def looking_at(self, image_id: int, version: int) -> None:
        """The reviewer sees ``version`` of ``image_id`` now (a verdict will name it; the next image is
        prefetched from now on)."""
        self._seen[image_id] = version
        if self.current is not None and self.current.image_id == image_id:
            self._shown.set()

    def watch(self, session: ReviewedSession) -> Callable[[], None]:
        """Take the version looked at from ``session`` (the image it opened, then its own saves)."""
        self._session = session
        return session.image_opened.connect(lambda image: self.looking_at(image.id, image.version))

    async def set_verdict(self, status: Verdict | str, comment: str = "") -> VerdictOutcome:
        """Give the current image this verdict, for the version looked at."""
        verdict = Verdict(status)
        current = self.current
        if current is None:
            return VerdictOutcome(False, "Open an image before reviewing it")
        text = comment.strip()
        if verdict.needs_comment and not text:
            return VerdictOutcome(
                False, f"“{verdict.label}” needs a comment saying why: type it, then press Enter", True
            )
        version = await self._version_seen(current.image_id)
        if version is None:
            return VerdictOutcome(False, "Open the image before reviewing it: its outlines were not shown")
        data = await self._workspace.client.call(
            "SetReview",
            images=[{"imageId": current.image_id, "version": version}],
            status=verdict.value,
            comment=text or None,
        )
        result = data["setReview"]
        if result["__typename"] == "StaleReview":
            return VerdictOutcome(False, STALE_MESSAGE, stale=True)
        if result["__typename"] != "ReviewSetSuccess":
            return VerdictOutcome(False, result["message"])
        self.verdict_given.emit(GivenVerdict(current.image_id, verdict, text or None))
        await self._locate(current.image_id)  # it may have left the walk, or moved (sorted by change)
        self.changed.emit(self)
        return VerdictOutcome(True, f"{current.name}: {verdict.label.lower()}")

    async def _version_seen(self, image_id: int) -> int | None:
        session = self._session
        image = getattr(session, "image", None) if session is not None else None
        if session is not None and image is not None and image.id == image_id:
            await session.save_now()  # the reviewer's own edits are part of what they saw
            version: int = session.outlines.version
            return version
        return self._seen.get(image_id)
