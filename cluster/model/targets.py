"""Working resolution and training targets: what the network sees and what it should answer.

The network runs at a *working resolution*: the image is area-averaged so its long side is about
``working_size`` pixels (never enlarged). Training targets are made at that resolution from full-resolution
instance labels:

- **foreground**: the fraction of each working pixel covered by a spheroid (a soft target, so the network
  learns where inside a coarse pixel an edge lies, and bilinear upsampling of its probability puts
  outlines back at sub-pixel precision);
- **core**: pixels whose distance to their spheroid's edge (or to a touching neighbour) exceeds
  :data:`~cluster.model.network.CORE_FRACTION` of that spheroid's largest distance.

Pure numpy and scipy: no torch, so data preparation can run anywhere.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

__all__ = ["area_resize", "core_target", "make_targets", "working_shape"]

CORE_FRACTION = 0.4  # kept equal to cluster.model.network.CORE_FRACTION (that module needs torch)

FloatArray = NDArray[np.float32]


def working_shape(shape: tuple[int, int], working_size: int) -> tuple[int, int]:
    """The ``(height, width)`` an image of ``shape`` is analysed at: long side ``working_size`` at most."""
    height, width = shape
    scale = min(1.0, working_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def area_resize(array: NDArray[np.floating] | NDArray[np.bool_], shape: tuple[int, int]) -> FloatArray:
    """Average ``array`` over the area of each output pixel (exact for any, even non-integer, factor)."""
    values = np.asarray(array, dtype=np.float32)
    for axis, size in enumerate(shape):
        values = _area_resize_axis(values, size, axis)
    return values


def _area_resize_axis(values: FloatArray, size: int, axis: int) -> FloatArray:
    length = values.shape[axis]
    if length == size:
        return values
    edges = np.arange(size + 1, dtype=np.float64) * (length / size)
    cumulative = np.concatenate(
        [
            np.zeros_like(np.take(values, [0], axis=axis), dtype=np.float64),
            np.cumsum(values, axis=axis, dtype=np.float64),
        ],
        axis=axis,
    )
    lower = np.floor(edges).astype(np.int64)
    frac = edges - lower
    upper = np.minimum(lower + 1, length)
    shape = [1] * values.ndim
    shape[axis] = size + 1
    at_edges = np.take(cumulative, lower, axis=axis) + frac.reshape(shape) * (
        np.take(cumulative, upper, axis=axis) - np.take(cumulative, lower, axis=axis)
    )
    sums = np.diff(at_edges, axis=axis)
    return np.asarray(sums / (length / size), dtype=np.float32)


def _nearest(labels: NDArray[np.int32], shape: tuple[int, int]) -> NDArray[np.int32]:
    """Labels sampled at the centres of the working pixels."""
    rows = np.minimum(
        ((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(np.int64), labels.shape[0] - 1
    )
    cols = np.minimum(
        ((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(np.int64), labels.shape[1] - 1
    )
    return labels[np.ix_(rows, cols)]


def core_target(labels: NDArray[np.int32], fraction: float = CORE_FRACTION) -> NDArray[np.bool_]:
    """Core pixels of each instance of ``labels`` (see the module docstring)."""
    separate = labels > 0
    # Pixels next to a different instance count as edge, so touching spheroids get separate distances.
    for axis in (0, 1):
        for shift in (1, -1):
            neighbour = np.roll(labels, shift, axis=axis)
            separate &= (neighbour == labels) | (neighbour == 0)
    distance = ndi.distance_transform_edt(np.pad(separate, 1))[1:-1, 1:-1]
    count = int(labels.max())
    if count == 0:
        return np.zeros(labels.shape, dtype=bool)
    peak = np.zeros(count + 1, dtype=np.float64)
    peak[1:] = ndi.maximum(distance, labels, np.arange(1, count + 1))
    threshold = fraction * peak[labels]
    return np.asarray((labels > 0) & (distance > np.maximum(threshold, 0.5)), dtype=bool)


def make_targets(labels: NDArray[np.int32], shape: tuple[int, int]) -> tuple[FloatArray, FloatArray]:
    """``(foreground, core)`` targets at working ``shape`` for full-resolution instance ``labels``."""
    foreground = area_resize(labels > 0, shape)
    small = _nearest(labels, shape)
    core = core_target(small).astype(np.float32)
    return foreground, core
