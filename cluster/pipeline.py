"""From image files to measured segmentations: read, normalise, segment, polygons, metrics.

This is the one path every caller uses — ``spheroseg segment``, the Dask worker task and the server — so a
spheroid is outlined and measured the same way whichever method found it. Per-image failures are returned
as outcomes with a reason, never raised, so one bad file cannot sink a batch.

:func:`segment_readers` is the mechanism: each image is fetched, decoded and normalised by its reader in a
small thread pool (so reading overlaps the network and the segmenter), then images of one working size are
handed to the segmenter together, as many per call as it allows
(:class:`~cluster.segmenter.BatchingSegmenter`; other segmenters get one image per call). If a call with
several images fails, each of them is segmented alone, so an image that breaks the segmenter fails with
its own reason and the others still succeed.
At most one call's worth of images per working size waits decoded in memory, plus those being read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from cluster.exceptions import SpherosegError
from cluster.imaging import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    LoadedImage,
    normalize,
    read_image,
)
from cluster.metrics import measure_all
from cluster.polygons import DEFAULT_SIMPLIFY_TOLERANCE, labelled_spheroids
from cluster.segmentation import Segmentation
from cluster.segmenter import BatchingSegmenter, ConfidentSegmenter, FloatImage, LabelImage, Scored, Segmenter

__all__ = [
    "DEFAULT_READ_THREADS",
    "ImageOutcome",
    "ImageSource",
    "Reader",
    "segment_images",
    "segment_readers",
    "segment_scored",
    "segment_sources",
    "segmentation_from_labels",
]

log = logging.getLogger(__name__)

ImageSource = str | Path | bytes | BinaryIO

Reader = Callable[[], LoadedImage]
"""Fetches and decodes one image; raises a :class:`~cluster.exceptions.SpherosegError` saying why not."""

DEFAULT_READ_THREADS = 4
"""Images read at once: enough to keep a GPU fed from a remote store, few enough to hold in memory."""


@dataclass(frozen=True)
class ImageOutcome:
    """What happened to one input: a segmentation, or the reason there is none."""

    name: str
    segmentation: Segmentation | None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.segmentation is not None


def segmentation_from_labels(
    labels: LabelImage,
    info: ImageInfo,
    segmenter: Segmenter,
    pixel_size_um: float | None = None,
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
    confidence: Mapping[int, float] | None = None,
) -> Segmentation:
    """Turn a segmenter's label image into polygons with metrics.

    ``pixel_size_um`` overrides the pixel size read from the file; with neither, µm metrics stay empty.
    ``confidence`` is the segmenter's for each label (:class:`~cluster.segmenter.ConfidentSegmenter`);
    every piece of a label gets it, and a label without one has ``None``.
    """
    pixel_size = pixel_size_um if pixel_size_um is not None else info.pixel_size_um
    traced = labelled_spheroids(labels, tolerance=tolerance)
    spheroids = measure_all([spheroid for _label, spheroid in traced], pixel_size)
    if confidence:
        spheroids = [
            spheroid.with_metrics(spheroid.metrics.with_confidence(confidence.get(label)))
            if spheroid.metrics is not None
            else spheroid
            for (label, _traced), spheroid in zip(traced, spheroids, strict=True)
        ]
    return Segmentation(
        image_name=info.name,
        width=info.width,
        height=info.height,
        spheroids=spheroids,
        pixel_size_um=pixel_size,
        model_name=segmenter.name,
        model_version=segmenter.version,
        parameters=dict(segmenter.parameters),
    )


def segment_images(
    images: Sequence[LoadedImage],
    segmenter: Segmenter,
    pixel_size_um: float | None = None,
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
) -> list[Segmentation]:
    """Segment already-decoded images in one call to the segmenter (it may batch them)."""
    scored = segment_scored(segmenter, [normalize(image.pixels) for image in images])
    return [
        segmentation_from_labels(labels, image.info, segmenter, pixel_size_um, tolerance, confidence)
        for (labels, confidence), image in zip(scored, images, strict=True)
    ]


def segment_scored(segmenter: Segmenter, images: Sequence[FloatImage]) -> list[Scored]:
    """Each image's labels with the segmenter's confidence in each label (none from a segmenter that is not
    a :class:`~cluster.segmenter.ConfidentSegmenter`)."""
    if isinstance(segmenter, ConfidentSegmenter):
        return segmenter.segment_scored(images)
    return [(labels, {}) for labels in segmenter.segment(images)]


def _source_name(source: ImageSource, index: int) -> str:
    if isinstance(source, str | Path):
        return str(source)
    return getattr(source, "name", None) or f"<image {index}>"


def segment_sources(
    sources: Sequence[ImageSource],
    segmenter: Segmenter,
    pixel_size_um: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
    *,
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    names: Sequence[str] | None = None,
    threads: int = DEFAULT_READ_THREADS,
) -> list[ImageOutcome]:
    """Read and segment each source, one outcome per source in the same order (see :func:`segment_readers`).

    ``names`` (one per source) are what outcomes and their reasons call the images; by default the path or
    file name, which on a server would show where it keeps its files.
    """
    named = []
    for index, source in enumerate(sources):
        name = names[index] if names is not None else _source_name(source, index)
        reader = partial(read_image, source, name=name, max_pixels=max_pixels, max_bytes=max_bytes)
        named.append((name, reader))
    return segment_readers(named, segmenter, pixel_size_um, tolerance, threads=threads)


@dataclass(frozen=True)
class _Read:
    """One image after its reader ran: normalised pixels, or the outcome that ends it."""

    index: int
    name: str
    info: ImageInfo | None
    pixels: FloatImage | None
    failed: ImageOutcome | None
    seconds: float


def segment_readers(
    named: Sequence[tuple[str, Reader]],
    segmenter: Segmenter,
    pixel_size_um: float | None = None,
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
    *,
    threads: int = DEFAULT_READ_THREADS,
) -> list[ImageOutcome]:
    """Segment each ``(name, reader)``, one outcome per entry in the same order.

    ``name`` is what the outcome, its segmentation and its reason call the image. Images are read by
    ``threads`` threads ahead of the segmenter and batched as the module docstring says; an outcome's
    ``seconds`` is its reading time plus its share of the call it was segmented in.
    """
    outcomes: list[ImageOutcome | None] = [None] * len(named)
    waiting: dict[Hashable, list[_Read]] = {}
    plan = _batch_plan(segmenter)

    def run(key: Hashable) -> None:
        for outcome_index, outcome in _segment_group(waiting.pop(key), segmenter, pixel_size_um, tolerance):
            outcomes[outcome_index] = outcome

    for read in _read_ahead(named, threads):
        if read.failed is not None or read.pixels is None:
            outcomes[read.index] = read.failed
            continue
        key, limit = plan((read.pixels.shape[0], read.pixels.shape[1]))
        waiting.setdefault(key, []).append(read)
        if len(waiting[key]) >= limit:
            run(key)
    for key in list(waiting):
        run(key)
    assert all(outcome is not None for outcome in outcomes)  # every image was read, then failed or segmented
    return [outcome for outcome in outcomes if outcome is not None]


def _batch_plan(segmenter: Segmenter) -> Callable[[tuple[int, int]], tuple[Hashable, int]]:
    """The batch key and images per call of an image of a given shape (one a call if it does not batch)."""
    if isinstance(segmenter, BatchingSegmenter):
        batching = segmenter
        return lambda shape: (batching.batch_key(shape), max(1, batching.batch_limit(shape)))
    return lambda shape: (shape, 1)


def _read_ahead(named: Sequence[tuple[str, Reader]], threads: int) -> Iterator[_Read]:
    """Each image read, in order, with up to ``threads`` more being read meanwhile."""
    if threads <= 1 or len(named) <= 1:
        yield from (_read(index, name, reader) for index, (name, reader) in enumerate(named))
        return
    pool = _reading_pool(threads)
    pending: deque[Future[_Read]] = deque()
    try:
        for index, (name, reader) in enumerate(named):
            pending.append(pool.submit(_read, index, name, reader))
            if len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # a caller that stops early leaves no reads running
        for future in pending:
            future.cancel()


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _reading_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` reading threads, kept: a pool started for every task cost 0.3 ms
    per image of a no-op segmenter in tasks of 8 (0.5 against 0.2 ms in one process), a tenth of the
    cluster's whole overhead goal. Keyed by process id, as a forked child cannot use its parent's threads."""
    key = (os.getpid(), threads)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="spheroseg-read")
        return pool


def _read(index: int, name: str, reader: Reader) -> _Read:
    started = time.perf_counter()
    try:
        image = reader()
        pixels = normalize(image.pixels)
    except Exception as exc:  # (each failure becomes the image's reason; see _failure)
        failed = _failure(name, exc, time.perf_counter() - started)
        return _Read(index, name, None, None, failed, failed.seconds)
    return _Read(index, name, image.info, pixels, None, time.perf_counter() - started)


def _segment_group(
    group: list[_Read], segmenter: Segmenter, pixel_size_um: float | None, tolerance: float
) -> list[tuple[int, ImageOutcome]]:
    """Segment ``group`` in one call; if that fails and there are several images, each alone."""
    started = time.perf_counter()
    try:
        scored = segment_scored(segmenter, [read.pixels for read in group if read.pixels is not None])
    except Exception as exc:  # (one image's failure is its own outcome, never the batch's)
        if len(group) > 1:
            log.info("a call with %d images failed (%s); segmenting each alone", len(group), exc)
            alone = (_segment_group([read], segmenter, pixel_size_um, tolerance) for read in group)
            return [pair for pairs in alone for pair in pairs]
        (read,) = group
        return [(read.index, _failure(read.name, exc, read.seconds + time.perf_counter() - started))]
    share = (time.perf_counter() - started) / len(group)
    return [
        (read.index, _finish(read, result, segmenter, pixel_size_um, tolerance, share))
        for read, result in zip(group, scored, strict=True)
    ]


def _finish(
    read: _Read,
    scored: Scored,
    segmenter: Segmenter,
    pixel_size_um: float | None,
    tolerance: float,
    segment_seconds: float,
) -> ImageOutcome:
    started = time.perf_counter()
    try:
        assert read.info is not None
        labels, confidence = scored
        segmentation = segmentation_from_labels(
            labels, read.info, segmenter, pixel_size_um, tolerance, confidence
        )
    except Exception as exc:  # (polygons or metrics failing cost this image only)
        seconds = read.seconds + segment_seconds + time.perf_counter() - started
        return _failure(read.name, exc, seconds)
    seconds = read.seconds + segment_seconds + time.perf_counter() - started
    return ImageOutcome(read.name, segmentation, None, seconds)


def _failure(name: str, exc: BaseException, seconds: float) -> ImageOutcome:
    """The outcome of an image that failed with ``exc``: expected errors say what was wrong, a bug says
    that it was unexpected (and the log keeps its traceback)."""
    if isinstance(exc, SpherosegError):
        log.info("%s failed: %s", name, exc)
        reason = str(exc) if str(exc).startswith(f"{name}: ") else f"{name}: {exc}"
    elif isinstance(exc, MemoryError):
        reason = f"{name}: out of memory"
    else:
        log.error("unexpected error on %s", name, exc_info=exc)
        reason = f"{name}: unexpected error ({type(exc).__name__}: {exc})"
    return ImageOutcome(name, None, reason, seconds)
