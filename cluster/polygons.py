"""Masks to polygons with holes, simplification, repair, and polygons back to masks.

Coordinates follow DESIGN.md (see :mod:`cluster.segmentation`): the centre of pixel (row r, column c) is
at ``(x, y) = (c + 0.5, r + 0.5)``. Rasterising fills every pixel whose centre lies inside the polygon.

Masks to polygons
-----------------
Every connected component of every label becomes one spheroid. The foreground is 8-connected by default
(pixels touching at a corner belong together), so the background inside a component — its holes — is
4-connected, the pairing that keeps outlines and holes from crossing; ``connectivity=4`` swaps the two.
Outlines are traced by marching squares at level 0.5 (the same lines as
``skimage.measure.find_contours(..., fully_connected="high")``, traced here without a Python loop per
vertex): a vertex at the midpoint of every crack between an inside and an outside pixel. That line passes
half-way between inside and outside pixel centres, so it rasterises back to the mask pixel for pixel; a
single pixel becomes a diamond of area 0.5, an ``h x w`` block an octagon with bounds ``w x h``. Each label
is traced on its own crop, and a hole belongs to the smallest outline of that label around it, so a hole is
never subtracted from another spheroid, and a spheroid inside a hole (an island) is a spheroid of its own.

The traced outline, which has a vertex per crack, is then simplified at ``tolerance`` pixels: corners are
chosen by Douglas-Peucker on a lightly smoothed copy (Gaussian, sigma one vertex) so the pixel staircase
costs no vertices, and each edge is refit by least squares to the traced vertices it replaces, corners
moving to where neighbouring edges meet (plain Douglas-Peucker on the staircase reaches the IoU and the
vertex count quoted for :data:`DEFAULT_SIMPLIFY_TOLERANCE` together at no tolerance). Rings of fewer than
16 traced vertices stay as traced. A result that is not valid (shapely ``is_valid``) falls back to corners
on the trace, then to topology-preserving Douglas-Peucker, then to the trace itself, which is always valid.

Orientation
-----------
Our images have y pointing *down*. "Counter-clockwise as seen on screen" therefore means a *negative*
shoelace area ``1/2 * sum(x[i] * y[i+1] - x[i+1] * y[i])`` computed on the stored numbers (the same ring
drawn with y up would be clockwise). :func:`orient_rings` makes exteriors counter-clockwise on screen and
holes clockwise on screen: exactly what ``shapely.geometry.polygon.orient(polygon, sign=-1.0)`` and
``shapely.orient_polygons(polygon, exterior_cw=True)`` produce. Shapely's default ``sign=1.0`` (and GeoJSON's
right-hand rule) describe a y-up frame and give the opposite order on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import Polygon
from skimage.draw import polygon as fill_polygon

from cluster.exceptions import GeometryError
from cluster.segmentation import Ring, Spheroid, as_ring
from cluster.tracing import component_outlines, signed_area

__all__ = [
    "DEFAULT_SIMPLIFY_TOLERANCE",
    "labelled_spheroids",
    "labels_to_spheroids",
    "mask_to_spheroids",
    "orient_rings",
    "repair_spheroid",
    "simplify_ring",
    "spheroid_to_mask",
    "spheroids_to_labels",
]

logger = logging.getLogger(__name__)

DEFAULT_SIMPLIFY_TOLERANCE: Final[float] = 0.5
"""Simplification tolerance, in pixels, for outlines traced from masks.

Measured on discs, ellipses, lobed and rough blobs of radius 15..300 px, with holes and islands: at 0.5 px
polygons rasterise back with IoU >= 0.995 and at least 80% fewer vertices than the mask has boundary pixels
for every shape of radius >= 80 px (smooth shapes from 30 px); about 90% fewer over the whole set.
"""

_SMOOTHING: Final[float] = 1.0
"""Gaussian sigma, in traced vertices, of the copy of an outline on which corners are chosen."""

_MAX_REFIT_SHIFT: Final[float] = 3.0
"""A refit corner may move at most this many times the tolerance from its traced position."""

_MIN_SIMPLIFIED_VERTICES: Final[int] = 16
"""Rings traced with fewer vertices (components or holes of a few pixels) are kept as traced."""

_MIN_FIT_VERTICES: Final[int] = 4
"""A corner is refit only when both its edges stand for at least this many traced vertices."""

_MIN_PART_AREA: Final[float] = 1e-9
"""Pieces of a repaired polygon smaller than this (px²) are numerical slivers and are dropped."""

_MAX_DIRECT_LABEL: Final[int] = 1 << 22
"""Label values up to this are indexed directly; larger ones are renumbered first."""


_fill_polygon: Callable[..., tuple[NDArray[np.intp], NDArray[np.intp]]] = fill_polygon
"""skimage.draw.polygon, typed: rows and columns of the pixels whose centres lie inside."""


def _fill_ring(target: NDArray[np.bool_], ring: Ring, value: bool) -> None:
    rows, cols = _fill_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, shape=target.shape)
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


def labels_to_spheroids(
    labels: NDArray[np.integer[Any]] | NDArray[np.bool_],
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
    *,
    connectivity: int = 8,
) -> list[Spheroid]:
    """One spheroid per connected component of each positive label of a 2-D label image (0 = background).

    Spheroids come in order of label, then in raster order of each component's first pixel. Each has its
    exterior ring and its own holes, oriented as :func:`orient_rings` does, simplified at ``tolerance``
    pixels (0 keeps the traced outline exactly, less its collinear vertices). ``connectivity`` is 8 (pixels
    touching at a corner are connected; the default) or 4.
    """
    return [spheroid for _label, spheroid in labelled_spheroids(labels, tolerance, connectivity=connectivity)]


def labelled_spheroids(
    labels: NDArray[np.integer[Any]] | NDArray[np.bool_],
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
    *,
    connectivity: int = 8,
) -> list[tuple[int, Spheroid]]:
    """:func:`labels_to_spheroids`, each spheroid with the label it was traced from (for label values above
    2**22, renumbered first, its rank among the values present)."""
    _check_tolerance(tolerance)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    image = _checked_labels(labels)
    spheroids = []
    for value, box in enumerate(ndimage.find_objects(image), start=1):
        if box is None:
            continue
        # Padded-crop index (i, j) is image pixel (row0 + i - 1, col0 + j - 1), whose centre is +0.5.
        origin = np.array([box[1].start - 0.5, box[0].start - 0.5])
        for rings in component_outlines(np.pad(image[box] == value, 1), connectivity == 8):
            polygon = _simplified([ring + origin for ring in rings], tolerance)
            if _usable(polygon):
                spheroids.append((value, _spheroid_of(polygon)))
    return spheroids


def mask_to_spheroids(
    mask: NDArray[np.bool_],
    tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE,
    *,
    connectivity: int = 8,
) -> list[Spheroid]:
    """One spheroid per connected component of a boolean mask: 8-connected by default (pixels touching at
    a corner belong to one spheroid), or 4-connected. Same outlines as :func:`labels_to_spheroids`."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {array.shape}")
    return labels_to_spheroids(array.astype(bool, copy=False), tolerance, connectivity=connectivity)


def simplify_ring(ring: Ring | Sequence[Sequence[float]], tolerance: float) -> Ring:
    """Douglas-Peucker simplification of one ring (``tolerance`` in pixels) that never makes it cross itself.

    Vertex order and orientation are kept. Simplifying a spheroid's exterior and holes one by one may make
    them cross; outlines traced from masks are simplified together by :func:`labels_to_spheroids`.
    """
    _check_tolerance(tolerance)
    points = as_ring(ring)
    if len(points) < 3:
        raise GeometryError(f"a ring needs at least 3 vertices, got {len(points)}")
    simplified = shapely.simplify(Polygon(points), tolerance, preserve_topology=True)
    if not isinstance(simplified, Polygon) or simplified.is_empty:
        return points
    return as_ring(shapely.get_coordinates(simplified.exterior))


def orient_rings(spheroid: Spheroid) -> Spheroid:
    """The same spheroid with its exterior counter-clockwise and its holes clockwise as seen on screen.

    With y pointing down that is a negative shoelace area for the exterior and a positive one for each hole
    (``shapely.geometry.polygon.orient(polygon, sign=-1.0)``); see the module docstring. A reversed ring keeps
    its first vertex. Metrics are kept: orientation changes none of them.
    """
    exterior = _oriented(spheroid.exterior, negative=True)
    holes = tuple(_oriented(hole, negative=False) for hole in spheroid.holes)
    return replace(spheroid, exterior=exterior, holes=holes)


def repair_spheroid(
    exterior: Ring | Sequence[Sequence[float]],
    holes: Sequence[Ring | Sequence[Sequence[float]]] = (),
) -> list[Spheroid]:
    """Turn possibly invalid rings (e.g. from a user's edit) into one or more valid spheroids.

    The area enclosed by the exterior is repaired with ``shapely.make_valid(method="structure")``: repeated
    points are dropped and a self-crossing ring (a bow-tie) splits into the pieces it encloses. The holes,
    each repaired the same way, are then cut out of it: a hole outside the exterior cuts nothing and is
    dropped, a hole crossing the exterior leaves a notch. Each remaining piece becomes a spheroid (without
    metrics), largest first, oriented as :func:`orient_rings` does. Rings that already make a valid
    polygon (no repeated points) come back as given, only oriented, so reading a file or committing an edit
    never moves a vertex or the ring's first one.

    Raises :class:`GeometryError` when a ring has non-finite coordinates or when no area is left.
    """
    kept = _already_valid(exterior, holes)
    if kept is not None:
        return [kept]
    shell = _area_of(exterior, "exterior ring")
    if shell.is_empty:
        raise GeometryError("exterior ring encloses no area (fewer than 3 distinct points, or all collinear)")
    cuts = [_area_of(hole, f"hole ring {index}") for index, hole in enumerate(holes)]
    cuts = [cut for cut in cuts if not cut.is_empty]
    if cuts:
        shell = shell.difference(shapely.union_all(cuts))
    parts = sorted(_polygon_parts(shell), key=lambda part: part.area, reverse=True)
    parts = [part for part in parts if part.area > _MIN_PART_AREA]
    if not parts:
        raise GeometryError("nothing with area is left: the holes cover the whole exterior")
    return [_spheroid_of(shapely.remove_repeated_points(part)) for part in parts]


def _already_valid(
    exterior: Ring | Sequence[Sequence[float]], holes: Sequence[Ring | Sequence[Sequence[float]]]
) -> Spheroid | None:
    """The rings as one oriented spheroid when they need no repair, else ``None``."""
    rings = [as_ring(exterior), *(as_ring(hole) for hole in holes)]
    if any(len(ring) < 3 or not np.isfinite(ring).all() for ring in rings):
        return None
    if any(np.any(np.all(ring == np.roll(ring, 1, axis=0), axis=1)) for ring in rings):
        return None  # repeated points: the repair drops them
    polygon = Polygon(rings[0], rings[1:])
    if not polygon.is_valid or polygon.area <= _MIN_PART_AREA:
        return None
    return orient_rings(Spheroid(exterior=rings[0], holes=tuple(rings[1:])))


# -- tracing -----------------------------------------------------------------------------------------------


def _check_tolerance(tolerance: float) -> None:
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number of pixels >= 0, got {tolerance!r}")


def _checked_labels(labels: NDArray[Any]) -> NDArray[np.integer[Any]]:
    image = np.asarray(labels)
    if image.ndim != 2:
        raise ValueError(f"labels must be a 2-D image, got shape {image.shape}")
    if image.dtype == np.bool_:
        return image.view(np.uint8)
    if not np.issubdtype(image.dtype, np.integer):
        raise ValueError(f"labels must hold integers, got dtype {image.dtype}")
    if image.size == 0:
        return image
    low, high = int(image.min()), int(image.max())
    if low < 0:
        raise ValueError(f"labels must be >= 0 (0 is background), found {low}")
    if high > _MAX_DIRECT_LABEL:
        values, inverse = np.unique(image, return_inverse=True)
        renumbered: NDArray[np.int32] = (inverse.reshape(image.shape) + (values[0] != 0)).astype(np.int32)
        return renumbered
    return image


# -- simplification ----------------------------------------------------------------------------------------


def _simplified(rings: list[Ring], tolerance: float) -> Polygon:
    """The traced outline simplified as the module docstring says, or the best valid fallback."""
    if tolerance == 0:
        return Polygon(_without_collinear(rings[0]), [_without_collinear(ring) for ring in rings[1:]])
    # Douglas-Peucker on closed smoothed lines that carry each vertex's index in z, so corners map back.
    closed = [np.arange(len(ring) + 1) % len(ring) for ring in rings]
    coords = np.concatenate(
        [
            np.column_stack((ndimage.gaussian_filter1d(ring, _SMOOTHING, axis=0, mode="wrap")[order], order))
            for ring, order in zip(rings, closed, strict=True)
        ]
    )
    which = np.repeat(np.arange(len(rings)), [len(order) for order in closed])
    chosen = shapely.simplify(shapely.linestrings(coords, indices=which), tolerance, preserve_topology=False)
    kept = [
        np.unique(shapely.get_coordinates(line, include_z=True)[:, 2].astype(np.intp))
        if len(ring) >= _MIN_SIMPLIFIED_VERTICES
        else np.arange(len(ring))
        for ring, line in zip(rings, chosen, strict=True)
    ]
    if all(len(corners) >= 3 for corners in kept):
        shift = _MAX_REFIT_SHIFT * tolerance
        fitted = [_refit(ring, corners, shift) for ring, corners in zip(rings, kept, strict=True)]
        candidate = Polygon(fitted[0], fitted[1:])
        if _usable(candidate):
            return candidate
        candidate = Polygon(
            rings[0][kept[0]], [ring[index] for ring, index in zip(rings[1:], kept[1:], strict=True)]
        )
        if _usable(candidate):
            return candidate
    logger.debug("simplified outline was not valid; falling back to topology-preserving Douglas-Peucker")
    traced = Polygon(rings[0], rings[1:])
    candidate = shapely.simplify(traced, tolerance, preserve_topology=True)
    return candidate if _usable(candidate) else traced


def _usable(polygon: shapely.Geometry) -> bool:
    return isinstance(polygon, Polygon) and bool(polygon.is_valid) and polygon.area > 0


def _without_collinear(ring: Ring) -> Ring:
    """``ring`` without the vertices that lie on the straight line through their neighbours."""
    before, after = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
    kept: Ring = ring[_cross(ring - before, after - ring) != 0]
    return kept


def _refit(ring: Ring, corners: NDArray[np.intp], max_shift: float) -> Ring:
    """Move each kept corner of ``ring`` to where the least-squares lines of its two edges meet.

    Edge ``s`` stands for the traced vertices ``corners[s] .. corners[s + 1]`` (the last one wraps round);
    a corner stays put where its edges are (nearly) parallel or would meet more than ``max_shift`` away.
    """
    points = ring[corners]
    origin = points[0]
    span = np.concatenate((ring, ring[: corners[0] + 1])) - origin
    x, y = span[:, 0], span[:, 1]
    sums = np.zeros((len(span) + 1, 5))
    np.cumsum(np.column_stack((x, y, x * x, x * y, y * y)), axis=0, out=sums[1:])
    ends = np.append(corners[1:], corners[0] + len(ring))
    count = ends - corners + 1
    mean_x, mean_y, xx, xy, yy = ((sums[ends + 1] - sums[corners]) / count[:, None]).T
    angle = 0.5 * np.arctan2(2 * (xy - mean_x * mean_y), (xx - mean_x**2) - (yy - mean_y**2))
    centre = np.column_stack((mean_x, mean_y))
    direction = np.column_stack((np.cos(angle), np.sin(angle)))
    centre_before, direction_before = np.roll(centre, 1, axis=0), np.roll(direction, 1, axis=0)
    sine = _cross(direction_before, direction)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = _cross(centre - centre_before, direction) / sine
    meet = centre_before + step[:, None] * direction_before + origin
    shift = np.hypot(*(meet - points).T)
    usable = (
        (np.abs(sine) > 1e-9)
        & (shift <= max_shift)
        & (np.minimum(count, np.roll(count, 1)) >= _MIN_FIT_VERTICES)
    )
    fitted: Ring = np.where(usable[:, None], meet, points)
    return fitted


def _cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


# -- rings -------------------------------------------------------------------------------------------------


def _oriented(ring: Ring, *, negative: bool) -> Ring:
    points = as_ring(ring)
    if (signed_area(points) < 0) == negative:
        return points
    return np.roll(points[::-1], 1, axis=0)


def _spheroid_of(polygon: Polygon) -> Spheroid:
    exterior = as_ring(shapely.get_coordinates(polygon.exterior))
    holes = tuple(as_ring(shapely.get_coordinates(ring)) for ring in polygon.interiors)
    return orient_rings(Spheroid(exterior=exterior, holes=holes))


def _area_of(points: Ring | Sequence[Sequence[float]], name: str) -> shapely.Geometry:
    """The valid polygonal area enclosed by one ring (possibly empty)."""
    ring = as_ring(points)
    if not np.isfinite(ring).all():
        raise GeometryError(f"{name} has non-finite coordinates")
    ring = ring[np.any(ring != np.roll(ring, 1, axis=0), axis=1)]
    if len(ring) < 3:
        return Polygon()
    repaired = shapely.make_valid(Polygon(ring), method="structure", keep_collapsed=False)
    parts = _polygon_parts(repaired)
    return shapely.union_all(parts) if parts else Polygon()


def _polygon_parts(geometry: shapely.Geometry) -> list[Polygon]:
    """The non-empty polygons inside any geometry (lines and points from collapsed rings are dropped)."""
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon):
            if not part.is_empty:
                polygons.append(part)
        elif hasattr(part, "geoms"):
            polygons.extend(_polygon_parts(part))
    return polygons
