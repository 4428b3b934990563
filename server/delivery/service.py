"""The delivery service: URLs for the API, renditions made once, background thumbnails and purges.

One :class:`Delivery` lives as long as the app. Renditions are stored under a key derived from the
original's hash and the parameters (:func:`~server.delivery.specs.rendition_key`), so each is rendered
once: concurrent requests for the same one wait for the same render, later ones read the stored bytes.
Right after an upload the standard rendition (the gallery thumbnail, or the display master when the CDN
transforms) is made in the background, a few at a time, so the first gallery view finds it ready. Those
background renders run in separate processes that get only idle CPU (``background_processes``): on a
laptop or workstation that also runs the segmentation workers, a big upload's thumbnails then wait for the
CPU the workers leave, instead of slowing the segmentation the user is waiting for. A request never waits
for such a render (it may be starved for as long as a job runs): it renders the image itself.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from cluster import DEFAULT_MAX_DECODED_BYTES
from server.delivery.outlines import OutlinesCache, outlines_name
from server.delivery.purge import Purger, PurgeReport, PurgeRequest
from server.delivery.renditions import Rendition, Stretch, read_stretch, render
from server.delivery.responsive import quality_for, snap_width
from server.delivery.signing import UrlSigner, image_prefix, project_prefix
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec, rendition_key
from server.delivery.urls import ImageRef, UrlBuilder
from server.exceptions import BlobNotFoundError, StorageError
from server.storage import BlobStore, image_key

__all__ = ["BACKGROUND_NICENESS", "OUTLINES_CACHE_BYTES", "Delivery", "StoredRendition"]

OUTLINES_CACHE_BYTES = 64 * 2**20
"""Encoded outlines kept in memory (about 40 versions of 5,000 spheroids of 64 vertices)."""

BACKGROUND_NICENESS = 19
"""Where Linux's idle scheduling class is missing: the lowest CPU priority (``nice``) instead."""

logger = logging.getLogger(__name__)


def _become_background_worker(server: int) -> None:
    """Run on idle CPU only, and end with the server: a killed server must not leave renderers behind.

    SCHED_IDLE rather than a nice level: at nice 10, the thumbnails of a 48-image upload still took a tenth
    of a 2-core machine from the Dask workers segmenting them (the server path at 0.89-0.93 of the direct
    one in benchmarks/subscriptions.py; 1.00-1.04 with SCHED_IDLE). ``server`` is the server's pid, taken
    before this process was started: a server killed while this one was still starting up has already
    handed it to another parent by the time this runs.
    """
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    else:
        os.nice(BACKGROUND_NICENESS)

    def watch() -> None:
        while os.getppid() == server:
            time.sleep(2.0)
        os._exit(0)  # the server is gone (this process was handed to another parent)

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


@dataclass(frozen=True)
class _InFlight:
    """A render under way: the future its waiters share, and whether it runs in the background."""

    future: asyncio.Future[StoredRendition]
    background: bool


class StoredRendition:
    def __init__(self, data: bytes, media_type: str, stretch: Stretch | None) -> None:
        self.data = data
        self.media_type = media_type
        self.stretch = stretch


class Delivery:
    def __init__(
        self,
        store: BlobStore,
        signer: UrlSigner,
        builder: UrlBuilder,
        purger: Purger,
        *,
        max_pixels: int,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
        thumbnail: RenditionSpec,
        preview_quality: int,
        master: RenditionSpec,
        render_threads: int = 2,
        background_processes: int = 0,
        outlines_cache_bytes: int = OUTLINES_CACHE_BYTES,
    ) -> None:
        self.store = store
        self.signer = signer
        self.builder = builder
        self.purger = purger
        self.max_pixels = max_pixels
        self.max_decoded_bytes = max_decoded_bytes
        self.thumbnail = thumbnail
        self.preview_quality = preview_quality
        self.master = master
        self._render_slots = asyncio.Semaphore(max(1, render_threads))
        self._background_processes = background_processes
        self._background_pool: ProcessPoolExecutor | None = None
        self._in_flight: dict[str, _InFlight] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.outlines = OutlinesCache(outlines_cache_bytes)
        self.renders = 0
        """Renditions rendered by this process (not read back from the store): for tests and metrics."""

    # -- specs and URLs --------------------------------------------------------------------------------

    def thumbnail_spec(self, size: int | None = None) -> RenditionSpec:
        base = self.thumbnail
        if size is None or size == base.width:
            return base
        return RenditionSpec(size, size, base.fit, base.format, base.quality, base.stretch)

    def preview_spec(
        self, width: int, original_width: int, fmt: RenditionFormat = RenditionFormat.WEBP, dpr: float = 1.0
    ) -> RenditionSpec:
        """A preview ``width`` CSS pixels wide at ``dpr``: snapped to the width ladder, quality by DPR."""
        pixels = snap_width(max(1, round(width * max(dpr, 0.5))), original_width)
        quality = quality_for(self.preview_quality, dpr)
        return RenditionSpec(pixels, 0, Fit.SCALE_DOWN, fmt, quality, self.master.stretch)

    def original_url(self, ref: ImageRef) -> str:
        return self.builder.original(ref)

    def rendition_url(self, ref: ImageRef, spec: RenditionSpec) -> str:
        return self.builder.rendition(ref, spec)

    def outlines_url(self, ref: ImageRef, version: int) -> str:
        """The signed URL of a segmentation version's outlines (:mod:`server.delivery.outlines`)."""
        return self.builder.plain(ref, outlines_name(version))

    def allowed_name(self, name: str) -> bool:
        """Whether the origin serves this rendition: any spec when it renders, else only the master."""
        return not self.builder.transforms_at_edge or name == self.master.segment()

    # -- renditions -----------------------------------------------------------------------------------

    async def rendition(
        self, content_hash: str, spec: RenditionSpec, *, background: bool = False
    ) -> StoredRendition:
        """The rendition's bytes: from the store, or rendered (once, however many ask at the same time)."""
        key = rendition_key(content_hash, spec)
        pending = self._in_flight.get(key)
        # Requests share a render, but never wait for a background one, which idle CPU only may run.
        if pending is not None and (background or not pending.background):
            return await asyncio.shield(pending.future)
        mine = _InFlight(asyncio.get_running_loop().create_future(), background)
        self._in_flight[key] = mine
        try:
            result = await self._load_or_render(key, content_hash, spec, background)
        except BaseException as error:
            mine.future.set_exception(error)
            mine.future.exception()  # retrieved: waiting requests get it, nobody else must
            raise
        finally:
            if self._in_flight.get(key) is mine:
                del self._in_flight[key]
        mine.future.set_result(result)
        return result

    async def _load_or_render(
        self, key: str, content_hash: str, spec: RenditionSpec, background: bool
    ) -> StoredRendition:
        try:
            data = await self.store.get_bytes(key)
            return StoredRendition(data, spec.media_type, await asyncio.to_thread(read_stretch, data))
        except BlobNotFoundError:
            pass
        # The renderer reads the original from a file: only the plane it shows is read, where a stack of
        # up to max_upload_bytes would otherwise sit whole in memory (and be copied to a renderer process).
        async with self.store.local_file(image_key(content_hash)) as original:
            if background:  # bounded by the pool's processes; starved ones must not hold a request's slot
                made = await self._render(original, spec, content_hash, background)
            else:
                async with self._render_slots:
                    made = await self._render(original, spec, content_hash, background)
        self.renders += 1
        await self._put(key, made.data, made.media_type)
        return StoredRendition(made.data, made.media_type, made.stretch)

    async def _put(self, key: str, data: bytes, media_type: str) -> None:
        def write() -> Path:
            with tempfile.NamedTemporaryFile(prefix="spheroseg-rendition-", delete=False) as handle:
                handle.write(data)
                return Path(handle.name)

        path = await asyncio.to_thread(write)
        try:
            await self.store.put_file(key, path, media_type)
        except StorageError:
            logger.exception("could not store rendition %s; it will be rendered again next time", key)
        finally:
            await asyncio.to_thread(path.unlink, True)

    def standard_spec(self) -> RenditionSpec:
        """What the gallery asks for first: the thumbnail, or the master a transforming CDN starts from."""
        return self.master if self.builder.transforms_at_edge else self.thumbnail

    async def _render(
        self, original: Path, spec: RenditionSpec, content_hash: str, background: bool
    ) -> Rendition:
        if not background or self._background_processes < 1:
            return await asyncio.to_thread(render, *self._render_args(original, spec, content_hash))
        args = self._render_args(original, spec, content_hash)
        try:
            return await self._render_in_pool(args)
        except BrokenProcessPool:
            # Tried once more in the new pool, not again: the image itself may be what kills renderers
            # (then a request for it renders it in the server and reports the error).
            return await self._render_in_pool(args)

    async def _render_in_pool(self, args: tuple[Path, RenditionSpec, int, str, int]) -> Rendition:
        """A render in the background pool; a renderer that dies (killed for memory, say) breaks the pool
        for good, so a broken one is replaced before the error goes on."""
        pool = self._pool()
        try:
            made: Rendition = await asyncio.get_running_loop().run_in_executor(pool, render, *args)
        except BrokenProcessPool:
            self._replace_pool(pool)
            raise
        return made

    def _pool(self) -> ProcessPoolExecutor:
        if self._background_pool is None:
            self._background_pool = ProcessPoolExecutor(
                self._background_processes,
                mp_context=multiprocessing.get_context("spawn"),  # no fork of a process with threads
                initializer=_become_background_worker,
                initargs=(os.getpid(),),
            )
        return self._background_pool

    def _replace_pool(self, broken: ProcessPoolExecutor) -> None:
        """Forget a broken pool (once, however many of its renders failed); the next render starts one."""
        if self._background_pool is broken:
            logger.warning("a background renderer died; starting new ones for the next thumbnails")
            self._background_pool = None
            broken.shutdown(wait=False, cancel_futures=True)

    def _render_args(
        self, original: Path, spec: RenditionSpec, content_hash: str
    ) -> tuple[Path, RenditionSpec, int, str, int]:
        return (original, spec, self.max_pixels, content_hash, self.max_decoded_bytes)

    def schedule_renditions(self, content_hashes: Iterable[str]) -> None:
        """Make the standard rendition of freshly uploaded originals in the background."""
        for content_hash in content_hashes:
            task = asyncio.get_running_loop().create_task(self._background_render(content_hash))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _background_render(self, content_hash: str) -> None:
        try:
            await self.rendition(content_hash, self.standard_spec(), background=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bad original must not kill the loop; the origin reports it when asked
            logger.exception("background rendition of %s failed", content_hash)

    async def drain(self) -> None:
        """Wait for the background renditions scheduled so far."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # -- purge ----------------------------------------------------------------------------------------

    def purge_request(
        self, images: Iterable[tuple[int, int]] = (), projects: Iterable[int] = ()
    ) -> PurgeRequest:
        """Everything cached of these ``(project_id, image_id)`` pairs and projects, in the form the
        provider purges best (cache tags, or path prefixes)."""
        pairs = sorted(set(images))
        project_ids = sorted(set(projects))
        if self.purger.by_tag:
            tags = [f"project-{p}" for p in project_ids] + [f"image-{i}" for _, i in pairs]
            return PurgeRequest(tags=tuple(tags))
        paths = [project_prefix(p) for p in project_ids] + [image_prefix(p, i) for p, i in pairs]
        return PurgeRequest(paths=tuple(paths))

    async def purge(self, request: PurgeRequest) -> PurgeReport:
        if request.empty:
            return PurgeReport(self.purger.name)
        report = await self.purger.purge(request)
        for error in report.errors:
            logger.error("CDN purge (%s): %s", report.provider, error)
        return report

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*list(self._background), return_exceptions=True)
        if self._background_pool is not None:
            self._background_pool.shutdown(wait=False, cancel_futures=True)
