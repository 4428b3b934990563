"""Outlines as napari Shapes data: coordinates swapped to napari's (row, column), holes bridged or apart.

napari draws a polygon with holes as one vertex list: the exterior, a step back to its first vertex, each
hole (wound the other way), a step back to the hole's first vertex; the edges walked twice (the bridges)
drop out of the triangulation, so the face has its holes. That is how the display layer draws a spheroid.
Editing such a list would show the bridge vertices, so a spheroid being edited is opened as separate
shapes, one per ring (:func:`rings_of`), and put together again from them (:func:`outline_rings`).

The outlines are in image pixels with (0, 0) the top-left corner of the first pixel; napari puts a pixel's
centre on integer coordinates, so the shape layers are shifted by half a pixel (:func:`shape_translate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from workbench.editing import Outline

__all__ = ["bridged", "outline_rings", "rings_of", "shape_translate"]


def bridged(outline: Outline) -> NDArray[np.float64]:
    """The outline as one napari polygon, (row, column), holes bridged from the exterior's first vertex."""
    exterior = _wound(outline.exterior, clockwise=False)
    parts = [exterior[:, ::-1], exterior[:1, ::-1]]
    for hole in outline.holes:
        wound = _wound(hole, clockwise=True)
        parts += [wound[:, ::-1], wound[:1, ::-1], exterior[:1, ::-1]]
    return np.concatenate(parts) if outline.holes else exterior[:, ::-1].copy()


def rings_of(outline: Outline) -> list[NDArray[np.float64]]:
    """Each ring of the outline as its own napari polygon (row, column): the exterior first."""
    return [np.asarray(ring)[:, ::-1].copy() for ring in (outline.exterior, *outline.holes)]


def outline_rings(shapes: Sequence[Any]) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    """The exterior (the largest ring) and the holes, (x, y), from the shapes of an edit layer."""
    rings = [np.asarray(shape, dtype=np.float64)[:, -2:][:, ::-1] for shape in shapes if len(shape) >= 3]
    if not rings:
        return np.empty((0, 2)), []
    areas = [abs(shapely.area(shapely.Polygon(ring))) for ring in rings]
    largest = int(np.argmax(areas))
    return rings[largest], [ring for index, ring in enumerate(rings) if index != largest]


def shape_translate(scale: float) -> tuple[float, float]:
    """Where the shape layers sit so that outline coordinates fall on pixel corners."""
    return (-0.5 * scale, -0.5 * scale)


def _wound(ring: NDArray[np.float64], *, clockwise: bool) -> NDArray[np.float64]:
    x, y = ring[:, 0], ring[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    return ring[::-1] if (signed < 0) != clockwise else ring
