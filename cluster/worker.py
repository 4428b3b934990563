"""The worker side of cluster segmentation: the segmenter loaded once per worker, and the batch task.

:class:`SegmenterPlugin` is a Dask ``WorkerPlugin``: when a worker starts (or joins later) it builds the
segmenter named by a :class:`SegmenterSpec` (weights from ``resources/`` or a path given in the options),
runs it once on a blank image so the first real image does not pay for lazy initialisation, and records
its device and load time. :func:`segment_batch` is the task: it takes image *references* (a path, an
``s3://`` key or a URL, see :mod:`cluster.sources`), so pixels never pass through the scheduler, and returns
one small :class:`~cluster.pipeline.ImageOutcome` (polygons and metrics, or a reason) per image. A bad image
fails only its own entry. Within a task, images are read in a few threads while the segmenter works, and
a GPU segmenter gets the images of one working size in batches sized to its free memory.

The loaded segmenter is cached per process and per spec, so the plugin and a task that runs before the
plugin finished (or on a worker that never got it) share one copy: a model is loaded once per worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from distributed import WorkerPlugin
from numpy.typing import NDArray

from cluster.exceptions import ImageReadError, SegmentationError, SourceUnavailableError, SpherosegError
from cluster.imaging import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    LoadedImage,
    read_image,
    to_grayscale,
)
from cluster.methods import DEFAULT_METHOD, make_segmenter
from cluster.pipeline import DEFAULT_READ_THREADS, ImageOutcome, Reader, segment_images, segment_readers
from cluster.segmenter import Segmenter
from cluster.sources import display_name, fetch
from cluster.telemetry import telemetry

if TYPE_CHECKING:
    from distributed import Worker

__all__ = [
    "LoadedSegmenter",
    "ReadSettings",
    "SegmenterPlugin",
    "SegmenterSpec",
    "device_report",
    "has_plugin",
    "load_segmenter",
    "segment_batch",
    "segment_pixels",
    "worker_report",
]

log = logging.getLogger(__name__)

WARM_UP_SHAPE = (256, 256)


@dataclass(frozen=True)
class SegmenterSpec:
    """Which segmenter a worker builds: a method of :mod:`cluster.methods` and its options.

    The options go to :func:`cluster.methods.make_segmenter`; for the ResUNet, ``weights`` names a
    weights file (default: the shipped weights in ``resources/models``) and ``device`` where it runs::

        SegmenterSpec.of("resunet", weights="/shared/models/lab-v2.safetensors")

    ``factory`` replaces the method registry (tests and benchmarks use it for stand-in segmenters); it
    must be importable by the workers or picklable by value.
    """

    method: str = DEFAULT_METHOD
    options: tuple[tuple[str, Any], ...] = ()
    factory: Callable[..., Segmenter] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, method: str = DEFAULT_METHOD, **options: Any) -> SegmenterSpec:
        return cls(method, tuple(sorted(options.items())))

    def build(self) -> Segmenter:
        make = self.factory or partial(make_segmenter, self.method)
        return make(**dict(self.options))

    @property
    def key(self) -> str:
        """A short, stable id of this spec (the plugin's name and the cache key)."""
        factory = "" if self.factory is None else f"{self.factory.__module__}.{self.factory.__qualname__}"
        text = json.dumps(
            [self.method, [list(o) for o in self.options], factory], default=str, sort_keys=True
        )
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @property
    def plugin_name(self) -> str:
        return f"spheroseg-segmenter-{self.method}-{self.key}"


@dataclass(frozen=True)
class LoadedSegmenter:
    """A segmenter ready on this worker, with what it runs on and what loading it cost."""

    segmenter: Segmenter
    method: str
    device: str
    load_seconds: float


@dataclass(frozen=True)
class ReadSettings:
    """How a job's images are read, carried by every task of the job: the pixel size to measure with (None:
    from each file), the limits an image must keep to, and how many are read at once."""

    pixel_size_um: float | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    read_threads: int = DEFAULT_READ_THREADS
    """Images of a task fetched and decoded at once, while the segmenter works on others."""


_loaded: dict[str, LoadedSegmenter] = {}
_load_lock = threading.Lock()


def segmenter_device(segmenter: Segmenter) -> str:
    """Where ``segmenter`` runs: its ``device`` (e.g. ``"cuda:0"``), that of its loaded predictor's
    placement (the ResUNet), or ``"cpu"``."""
    device = getattr(segmenter, "device", None)
    if device is None:
        placement = getattr(getattr(segmenter, "predictor", None), "placement", None)
        device = getattr(placement, "device", None)
    return str(device) if device is not None else "cpu"


def load_segmenter(spec: SegmenterSpec, warm_up: bool = True) -> LoadedSegmenter:
    """This process's copy of the segmenter ``spec`` names, built (and warmed up) on first use."""
    with _load_lock:
        loaded = _loaded.get(spec.key)
        if loaded is not None:
            return loaded
        started = time.perf_counter()
        try:
            segmenter = spec.build()
        except TypeError as exc:
            raise SegmentationError(f"bad parameters for method {spec.method!r}: {exc}") from exc
        if warm_up:
            segmenter.segment([np.zeros(WARM_UP_SHAPE, dtype=np.float32)])
        seconds = time.perf_counter() - started
        loaded = LoadedSegmenter(segmenter, spec.method, segmenter_device(segmenter), seconds)
        _loaded[spec.key] = loaded
    telemetry().record_load(spec.method, loaded.load_seconds)
    log.info("loaded %s on %s in %.2f s", spec.method, loaded.device, loaded.load_seconds)
    return loaded


def unload_segmenter(spec: SegmenterSpec) -> None:
    with _load_lock:
        _loaded.pop(spec.key, None)


class SegmenterPlugin(WorkerPlugin):
    """Loads the segmenter of ``spec`` once on every worker, current and future."""

    def __init__(self, spec: SegmenterSpec, warm_up: bool = True) -> None:
        self.spec = spec
        self.warm_up = warm_up
        self.name = spec.plugin_name

    async def setup(self, worker: Worker) -> None:
        # Loading a model takes seconds: off the event loop, so the worker keeps its heartbeats.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, load_segmenter, self.spec, self.warm_up)

    def teardown(self, worker: Worker) -> None:
        unload_segmenter(self.spec)


def _reader(reference: str, name: str, settings: ReadSettings) -> Reader:
    """Fetches and decodes ``reference``; its reasons name the image, never the reference (that is a
    server's storage path or a presigned URL)."""

    def read() -> LoadedImage:
        try:
            source = fetch(reference)
        except SourceUnavailableError as exc:
            log.info("%s (%s) is unavailable: %s", name, display_name(reference), exc.reason)
            raise SourceUnavailableError(name, exc.reason, exc.transient) from None
        return read_image(
            source, name=name, max_pixels=settings.max_pixels, max_bytes=settings.max_decoded_bytes
        )

    return read


def segment_batch(
    batch: Sequence[tuple[int, str, str]], spec: SegmenterSpec, settings: ReadSettings = ReadSettings()
) -> list[tuple[int, ImageOutcome]]:
    """The task: segment each ``(index, reference, name)``; return ``(index, outcome)`` pairs in order.

    ``name`` is the image name the result carries (the reference may be an absolute path or a presigned
    URL). Images are fetched and decoded in a few threads while the segmenter works, and a segmenter
    that batches gets the images of one working size together (:func:`cluster.pipeline.segment_readers`).
    A failure to load the segmenter raises (the task is retried, then every image in it fails with the
    reason); a failure of one image is that image's outcome.
    """
    loaded = load_segmenter(spec)
    named = [(name, _reader(reference, name, settings)) for _, reference, name in batch]
    outcomes = segment_readers(named, loaded.segmenter, settings.pixel_size_um, threads=settings.read_threads)
    record = telemetry().record_image
    for outcome in outcomes:
        record(spec.method, outcome.seconds, outcome.ok)
    return [(index, outcome) for (index, _, _), outcome in zip(batch, outcomes, strict=True)]


def segment_pixels(
    pixels: NDArray[Any],
    name: str = "image",
    spec: SegmenterSpec = SegmenterSpec(),
    pixel_size_um: float | None = None,
) -> ImageOutcome:
    """Segment one image already in memory (a napari layer's pixels) with this process's copy of ``spec``.

    The same path as files take from the moment they are decoded (:func:`cluster.pipeline.segment_images`),
    so outlines and metrics are those ``spheroseg segment`` gives. It runs here or, submitted with
    ``client.submit(segment_pixels, ...)``, on a Dask worker, which keeps the model loaded between calls.
    ``pixels`` is a ``(height, width)`` plane or an RGB(A) one, converted to grayscale as files are. A
    problem with the image or the segmenter is the outcome's ``error``, never raised.
    """
    started = time.perf_counter()
    try:
        plane = _plane(pixels, name)
        info = ImageInfo(
            name=name,
            format="tiff",  # pixels from memory: no file format; "tiff" is what they would be saved as
            width=int(plane.shape[1]),
            height=int(plane.shape[0]),
            bit_depth=plane.dtype.itemsize * 8,
            dtype=str(plane.dtype),
            channels=1,
            pages=1,
            pixel_size_um=pixel_size_um,
        )
        segmenter = load_segmenter(spec).segmenter
        (segmentation,) = segment_images([LoadedImage(info, plane)], segmenter, pixel_size_um)
    except SpherosegError as problem:
        return ImageOutcome(name, None, str(problem), time.perf_counter() - started)
    return ImageOutcome(name, segmentation, None, time.perf_counter() - started)


def _plane(pixels: NDArray[Any], name: str) -> NDArray[Any]:
    array = np.asarray(pixels)
    try:
        plane = to_grayscale(array)
    except ValueError as problem:
        raise ImageReadError(name, f"not one 2-D image: {problem}") from None
    if plane.size == 0:
        raise ImageReadError(name, f"the image has no pixels ({plane.shape[1]} x {plane.shape[0]})")
    return plane


def worker_report(dask_worker: Worker) -> dict[str, Any]:
    """What ``spheroseg cluster status`` shows of a worker (run through ``Client.run``)."""
    loaded = [
        {"method": item.method, "device": item.device, "load_seconds": item.load_seconds}
        for item in list(_loaded.values())
    ]
    return {
        "name": str(dask_worker.name),
        "resources": dict(dask_worker.state.total_resources),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "devices": sorted({item["device"] for item in loaded}),
        "loaded": loaded,
        **telemetry().snapshot(),
    }


def has_plugin(name: str, dask_worker: Worker) -> bool:
    """Whether this worker already runs the plugin ``name`` (through ``Client.run``)."""
    return name in dask_worker.plugins


def device_report(key: str, dask_worker: Worker) -> dict[str, Any]:
    """The device the segmenter ``key`` runs on here (``None`` if not loaded) and the worker's resources."""
    loaded = _loaded.get(key)
    return {
        "device": loaded.device if loaded else None,
        "resources": dict(dask_worker.state.total_resources),
    }
