"""From image files to measured segmentations: read, normalise, segment, polygons, metrics.

This is the one path every caller uses — ``spheroseg segment``, the Dask worker task and the server — so a
spheroid is outlined and measured the same way whichever method found it. Per-image failures are returned
as outcomes with a reason, never raised, so one bad file cannot sink a batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
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
from cluster.polygons import DEFAULT_SIMPLIFY_TOLERANCE, labels_to_spheroids
from cluster.segmentation import Segmentation
from cluster.segmenter import LabelImage, Segmenter

__all__ = ["ImageOutcome", "ImageSource", "segment_images", "segment_sources", "segmentation_from_labels"]

log = logging.getLogger(__name__)

ImageSource = str | Path | bytes | BinaryIO


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
) -> Segmentation:
    """Turn a segmenter's label image into polygons with metrics.

    ``pixel_size_um`` overrides the pixel size read from the file; with neither, µm metrics stay empty.
    """
    pixel_size = pixel_size_um if pixel_size_um is not None else info.pixel_size_um
    spheroids = measure_all(labels_to_spheroids(labels, tolerance=tolerance), pixel_size)
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
    label_images = segmenter.segment([normalize(image.pixels) for image in images])
    return [
        segmentation_from_labels(labels, image.info, segmenter, pixel_size_um, tolerance)
        for labels, image in zip(label_images, images, strict=True)
    ]


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
) -> list[ImageOutcome]:
    """Read and segment each source, one outcome per source in the same order.

    Images are segmented one at a time: a batch of decoded full-size images is what runs a worker out of
    memory, and batching for speed is the segmenter's business (see ``Segmenter.segment``). ``names`` (one
    per source) are what outcomes and their reasons call the images; by default the path or file name,
    which on a server would show where it keeps its files.
    """
    outcomes: list[ImageOutcome] = []
    for index, source in enumerate(sources):
        name = names[index] if names is not None else _source_name(source, index)
        started = time.perf_counter()
        try:
            image = read_image(source, name=name, max_pixels=max_pixels, max_bytes=max_bytes)
            (segmentation,) = segment_images([image], segmenter, pixel_size_um, tolerance)
        except SpherosegError as exc:
            log.info("%s failed: %s", name, exc)
            outcomes.append(ImageOutcome(name, None, str(exc), time.perf_counter() - started))
        except MemoryError:
            outcomes.append(ImageOutcome(name, None, f"{name}: out of memory", time.perf_counter() - started))
        except Exception as exc:  # a bug must cost one image, not the batch; the log keeps the traceback
            log.exception("unexpected error on %s", name)
            reason = f"{name}: unexpected error ({type(exc).__name__}: {exc})"
            outcomes.append(ImageOutcome(name, None, reason, time.perf_counter() - started))
        else:
            outcomes.append(ImageOutcome(name, segmentation, None, time.perf_counter() - started))
    return outcomes
