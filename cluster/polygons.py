"""Masks to polygons with holes, simplification, repair, and polygons back to masks.

Coordinates follow DESIGN.md (see :mod:`cluster.segmentation`): the centre of pixel (row r, column c) is
at ``(x, y) = (c + 0.5, r + 0.5)``. Rasterising fills every pixel whose centre lies inside the polygon.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from skimage.draw import polygon as fill_polygon

from cluster.segmentation import Ring, Spheroid

__all__ = ["spheroid_to_mask", "spheroids_to_labels"]


def _fill_ring(target: NDArray[np.bool_], ring: Ring, value: bool) -> None:
    rows, cols = fill_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape=target.shape)
    target[rows, cols] = value


def spheroid_to_mask(spheroid: Spheroid, shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Boolean mask of ``shape`` (rows, cols) that is True inside the exterior and outside every hole."""
    mask = np.zeros(shape, dtype=bool)
    _fill_ring(mask, spheroid.exterior, True)
    for hole in spheroid.holes:
        _fill_ring(mask, hole, False)
    return mask


def spheroids_to_labels(spheroids: Sequence[Spheroid], shape: tuple[int, int]) -> NDArray[np.int32]:
    """Label image: spheroid ``i`` (0-based) gets label ``i + 1``; later spheroids win where they overlap."""
    labels = np.zeros(shape, dtype=np.int32)
    for index, spheroid in enumerate(spheroids, start=1):
        labels[spheroid_to_mask(spheroid, shape)] = index
    return labels
