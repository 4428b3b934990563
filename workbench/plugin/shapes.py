"""Segmentations as napari Shapes layer data and back: the one place coordinates cross the napari boundary.

Coordinates: a segmentation holds ``(x, y)`` image pixels with the origin at the top-left *corner* of the
top-left pixel (DESIGN.md); napari holds ``(row, column)`` with pixel *centres* at whole numbers. So
``row = y - 0.5`` and ``column = x - 0.5`` (:func:`to_napari`), and back (:func:`from_napari`).

Holes: napari (>= 0.6) draws a polygon with holes from one vertex list, each ring closed on itself and
joined to the exterior's first vertex by a bridge edge that is walked twice (there and back), which its
triangulation drops. A spheroid is therefore laid out as::

    e0 e1 ... en e0   h0 h1 ... hm h0   e0   g0 ... gk g0

(:func:`spheroid_vertices`) and :func:`vertex_rings` reads any such list back into rings the way napari's
triangulation does (an edge walked twice is no edge); a polygon a user drew by hand is one ring. napari
keeps vertices as float32, so a coordinate comes back from a layer within float32's rounding (1e-4 pixel
for images up to 2,000 pixels across).

A layer carries what the core's exports need beyond outlines in ``metadata["spheroseg"]`` (image name,
width, height, pixel size, model) and every metric as a feature column, so napari's features table shows
them and a writer can hand the core a whole :class:`cluster.Segmentation`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cluster import (
    GeometryError,
    Segmentation,
    Spheroid,
    SpheroidMetrics,
    as_ring,
    measure,
    repair_spheroid,
)

__all__ = [
    "META_KEY",
    "LayerData",
    "features_of",
    "from_napari",
    "segmentation_of_layer",
    "shapes_layer",
    "spheroid_of_vertices",
    "spheroid_vertices",
    "to_napari",
    "vertex_rings",
]

log = logging.getLogger(__name__)

LayerData = tuple[Any, dict[str, Any], str]
"""napari's layer data tuple: data, layer keyword arguments, layer type."""

META_KEY = "spheroseg"
"""The key of a layer's ``metadata`` holding the image facts (see the module docstring)."""

OUTLINE_COLOUR = "#ff8c00"  # the orange of the GeoJSON export's classification, seen on any micrograph
ELLIPSE_VERTICES = 64


def to_napari(ring: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(x, y)`` image-pixel vertices as napari ``(row, column)`` ones."""
    points = np.asarray(ring, dtype=np.float64).reshape(-1, 2)
    return points[:, ::-1] - 0.5


def from_napari(vertices: NDArray[Any]) -> NDArray[np.float64]:
    """napari ``(row, column)`` vertices as ``(x, y)`` image pixels (an open ring, see :func:`as_ring`)."""
    points = np.asarray(vertices, dtype=np.float64)[:, -2:]  # a 3-D layer's leading axes are dropped
    return as_ring(points[:, ::-1] + 0.5)


def spheroid_vertices(spheroid: Spheroid) -> NDArray[np.float64]:
    """One vertex list in napari ``(row, column)`` drawing the spheroid with its holes."""
    exterior = to_napari(spheroid.exterior)
    start = exterior[:1]
    parts = [exterior, start]
    for number, hole in enumerate(spheroid.holes):
        ring = to_napari(hole)
        parts.extend([ring, ring[:1]])
        if number < len(spheroid.holes) - 1:
            parts.append(start)  # the bridge back; napari closes the last one itself
    return np.concatenate(parts)


def vertex_rings(vertices: NDArray[Any]) -> list[NDArray[np.float64]]:
    """The rings (``(x, y)``, open) that napari draws for one polygon's vertex list.

    Read as napari's triangulation reads it: repeated vertices are one vertex, the list is closed back to
    its first, and an edge walked twice (a bridge, there and back) is no edge. What is left are the rings,
    each walked from its earliest vertex in the list's direction, so the layout of
    :func:`spheroid_vertices` comes back ring for ring and vertex for vertex, and holes bridged from any
    other vertex (another tool's layout) or a plain hand-drawn polygon read as well.
    """
    points = _napari_points(vertices)
    ids: list[int] = []
    unique: dict[tuple[float, float], int] = {}
    for x, y in points:
        ids.append(unique.setdefault((float(x), float(y)), len(unique)))
    edges: dict[tuple[int, int], tuple[int, int]] = {}  # undirected key -> the direction first walked
    for a, b in zip(ids, [*ids[1:], ids[0]], strict=True):
        if a != b:
            key = (min(a, b), max(a, b))
            if edges.pop(key, None) is None:
                edges[key] = (a, b)
    touching: dict[int, list[tuple[int, int]]] = {}
    for key in edges:
        for end in key:
            touching.setdefault(end, []).append(key)
    corners = np.array(list(unique), dtype=np.float64).reshape(-1, 2)
    rings: list[NDArray[np.float64]] = []
    while edges:
        first, current = edges.pop(next(iter(edges)))
        ring = [first]
        while current != first:
            ring.append(current)
            following = next((key for key in touching[current] if key in edges), None)
            if following is None:
                break  # an open end: the repair decides what it encloses
            del edges[following]
            current = following[0] if following[1] == current else following[1]
        if len(ring) >= 3:
            rings.append(corners[ring])
    return rings


def _napari_points(vertices: NDArray[Any]) -> NDArray[np.float64]:
    """Like :func:`from_napari`, keeping repeated vertices: they mark where rings close and bridges run."""
    points = np.asarray(vertices, dtype=np.float64)[:, -2:]
    return points[:, ::-1] + 0.5


def spheroid_of_vertices(vertices: NDArray[Any], shape_type: str = "polygon") -> list[Spheroid]:
    """The spheroids one napari shape outlines, repaired by the core (a bow-tie may give two); none for a
    shape that encloses nothing (a line, a path, a polygon with fewer than 3 distinct points)."""
    if shape_type == "ellipse":
        rings = [_ellipse_ring(_napari_points(vertices))]
    elif shape_type in ("polygon", "rectangle"):
        rings = vertex_rings(vertices)
    else:
        return []
    if not rings:
        return []
    rings.sort(key=lambda ring: -abs(_signed_area(ring)))  # the exterior encloses the others
    try:
        return repair_spheroid(rings[0], rings[1:])
    except GeometryError as problem:
        log.info("a %s shape encloses nothing and is left out: %s", shape_type, problem)
        return []


def features_of(spheroids: Sequence[Spheroid]) -> dict[str, list[float]]:
    """Feature columns: ``spheroid_id`` (1-based, as in the exports) and every metric (NaN where unknown)."""
    columns: dict[str, list[float]] = {"spheroid_id": [float(n + 1) for n in range(len(spheroids))]}
    for name in SpheroidMetrics.names():
        columns[name] = []
    for spheroid in spheroids:
        values = spheroid.metrics.as_dict() if spheroid.metrics is not None else {}
        for name in SpheroidMetrics.names():
            value = values.get(name)
            columns[name].append(float(value) if isinstance(value, int | float) else math.nan)
    return columns


def shapes_layer(segmentation: Segmentation, name: str | None = None) -> LayerData:
    """A Shapes layer of the segmentation's outlines, holes included, with its metrics as features."""
    spheroids = segmentation.spheroids
    facts = {
        "image_name": segmentation.image_name,
        "width": segmentation.width,
        "height": segmentation.height,
        "pixel_size_um": segmentation.pixel_size_um,
        "model_name": segmentation.model_name,
        "model_version": segmentation.model_version,
        "parameters": dict(segmentation.parameters),
    }
    options: dict[str, Any] = {
        "name": name or f"{segmentation.stem} outlines",
        "shape_type": "polygon",
        "edge_color": OUTLINE_COLOUR,
        "face_color": "transparent",
        "edge_width": 2,
        "features": features_of(spheroids),
        "metadata": {META_KEY: facts},
    }
    return [spheroid_vertices(spheroid) for spheroid in spheroids], options, "shapes"


def segmentation_of_layer(data: Sequence[NDArray[Any]], meta: Mapping[str, Any]) -> Segmentation:
    """The segmentation a Shapes layer outlines (``data`` and ``meta`` as napari hands them to a writer).

    Each shape is repaired and measured by the core; the image facts come from ``metadata["spheroseg"]``
    when the layer has them, else the image is named after the layer and sized to hold every outline.
    """
    shape_types = _shape_types(meta.get("shape_type"), len(data))
    spheroids = [
        piece
        for vertices, shape_type in zip(data, shape_types, strict=True)
        for piece in spheroid_of_vertices(vertices, shape_type)
    ]
    facts = dict((meta.get("metadata") or {}).get(META_KEY) or {})
    width, height = facts.get("width"), facts.get("height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        width, height = _extent(spheroids)
    pixel_size = facts.get("pixel_size_um")
    pixel_size = float(pixel_size) if isinstance(pixel_size, int | float) and pixel_size > 0 else None
    measured = [spheroid.with_metrics(measure(spheroid, pixel_size)) for spheroid in spheroids]
    return Segmentation(
        image_name=str(facts.get("image_name") or meta.get("name") or "outlines"),
        width=width,
        height=height,
        spheroids=measured,
        pixel_size_um=pixel_size,
        model_name=str(facts.get("model_name") or ""),
        model_version=str(facts.get("model_version") or ""),
        parameters=dict(facts.get("parameters") or {}),
    )


def _shape_types(given: object, count: int) -> list[str]:
    if isinstance(given, str):
        return [given] * count
    if isinstance(given, Sequence) and len(given) == count:
        return [str(kind) for kind in given]
    return ["polygon"] * count


def _extent(spheroids: Sequence[Spheroid]) -> tuple[int, int]:
    """The smallest image size (width, height) holding every outline, at least one pixel."""
    if not spheroids:
        return 1, 1
    corner = np.max([spheroid.exterior.max(axis=0) for spheroid in spheroids], axis=0)
    return max(1, math.ceil(corner[0])), max(1, math.ceil(corner[1]))


def _ellipse_ring(box: NDArray[np.float64]) -> NDArray[np.float64]:
    """An ellipse drawn in napari (the four corners of its box, turned with it) as a polygon."""
    centre = box.mean(axis=0)
    half_first, half_second = (box[1] - box[0]) / 2, (box[3] - box[0]) / 2
    angles = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)[:, None]
    ring: NDArray[np.float64] = centre + np.cos(angles) * half_first + np.sin(angles) * half_second
    return ring


def _signed_area(ring: NDArray[np.float64]) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
