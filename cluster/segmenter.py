"""The seam between "pixels in" and "instances out" that every segmentation method implements.

A segmenter turns normalised grayscale images into label images (0 = background, 1..n = one spheroid each,
at the input's full resolution). Everything after that — polygons, metrics, exports — is shared, so the
classical baseline and the ResUNet are measured and exported by exactly the same code.

A segmenter that gains from several images per call (a network on a GPU) also implements
:class:`BatchingSegmenter`: it says which images compute at the same size and how many of them one call
should get. The pipeline groups a task's images by that; other segmenters get one image per call.

A segmenter that knows how sure it is of each spheroid also implements :class:`ConfidentSegmenter`; the
pipeline then stores that as each spheroid's ``confidence`` metric (:mod:`cluster.metrics`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from cluster.exceptions import SegmentationError

__all__ = [
    "SMALLEST_SIDE",
    "BatchingSegmenter",
    "ConfidentSegmenter",
    "FloatImage",
    "LabelImage",
    "Scored",
    "Segmenter",
    "check_segmentable",
]

FloatImage = NDArray[np.float32]
"""A 2-D grayscale image normalised by :func:`cluster.imaging.normalize` (about 0..1)."""

LabelImage = NDArray[np.int32]
"""A 2-D label image the size of its input: 0 is background, each positive label one spheroid."""

Scored = tuple[LabelImage, Mapping[int, float]]
"""A label image and the confidence (0..1) of each of its labels; a label missing from it has none."""

SMALLEST_SIDE = 8
"""Pixels an image must have on each side to be segmented."""


def check_segmentable(image: NDArray[Any]) -> None:
    """Refuse, saying what to do, an image no segmenter can work on: not one plane, or a speck."""
    if image.ndim != 2:
        raise SegmentationError(f"expected one grayscale plane, got an array of shape {image.shape}")
    if min(image.shape) < SMALLEST_SIDE:
        height, width = image.shape
        raise SegmentationError(
            f"the image is only {width} x {height} pixels, too small to segment (at least {SMALLEST_SIDE} x "
            f"{SMALLEST_SIDE}): is it a thumbnail or an icon? Import the full-size image instead"
        )


@runtime_checkable
class Segmenter(Protocol):
    """Finds spheroids in images. Implementations must be picklable (they travel to Dask workers)."""

    @property
    def name(self) -> str:
        """Short method name, e.g. ``"classical"`` or ``"resunet"``."""

    @property
    def version(self) -> str:
        """Version of the method or its weights; stored with every segmentation it makes."""

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The parameters in force, JSON-serialisable; stored with every segmentation it makes."""

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        """Return one label image per input image, each the shape of its input."""


@runtime_checkable
class BatchingSegmenter(Segmenter, Protocol):
    """A segmenter that runs several images per call faster than one at a time."""

    def batch_key(self, shape: tuple[int, int]) -> Hashable:
        """What images of ``shape`` (rows, columns) are computed at; equal keys batch together."""

    def batch_limit(self, shape: tuple[int, int]) -> int:
        """Most images of ``shape`` one call should get now (from the device and its free memory)."""


@runtime_checkable
class ConfidentSegmenter(Segmenter, Protocol):
    """A segmenter that also says how sure it is of each spheroid it finds."""

    def segment_scored(self, images: Sequence[FloatImage]) -> list[Scored]:
        """As :meth:`Segmenter.segment`, each label image with the confidence of its labels."""
