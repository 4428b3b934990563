"""Morphology metrics of one spheroid, computed from its polygon (exterior ring and hole rings).

Every metric is computed exactly from the polygon (no rasterising). Coordinates are image pixels with y
pointing down (see :mod:`cluster.segmentation`). ``s`` is the pixel size in µm/px: a length in µm is the
length in px times ``s``, an area in µm² the area in px² times ``s²``; every ``*_um``/``*_um2`` field is
``None`` when the pixel size is unknown. Ratios have no unit and do not depend on ``s``.

Notation: ``E`` is the region enclosed by the exterior ring, ``H1..Hk`` those enclosed by the holes.

==========================  ====  ===========================================================================
field                       unit  definition
==========================  ====  ===========================================================================
area                        px²   ``A = |E| - sum |Hi|``: the net area, holes excluded (as regionprops
                                  ``area``). The outline encloses ``A_E = area + hole_area``.
perimeter                   px    ``P``: length of the exterior ring (the outline a biologist sees).
perimeter_with_holes        px    ``P`` plus the lengths of all hole rings (regionprops-like boundary length).
equivalent_diameter         px    ``sqrt(4 A / pi)``: diameter of the disc with the net area (regionprops
                                  ``equivalent_diameter_area``).
circularity                 1     ``4 pi A_E / P^2``: 1 for a disc, smaller for any other outline (ImageJ
                                  "Circ."). Uses the area the *outline* encloses, so a hollow round
                                  spheroid is as circular as a solid one: holes say nothing about the shape.
compactness                 1     ``P^2 / (4 pi A_E) = 1 / circularity``: 1 for a disc, larger otherwise.
sphericity                  1     ``2 sqrt(pi A_E) / P = sqrt(circularity)``: the AnaSP / SpheroidJ
                                  definition (the ratio of the perimeter of the disc with the outline's area
                                  to the perimeter).
convexity                   1     ``P_hull / P``: perimeter of the convex hull over the perimeter (<= 1).
solidity                    1     ``A / A_hull``: net area over convex hull area (regionprops ``solidity``,
                                  whose pixel-corner hull makes its value lower by up to about ``P / 2A``).
extent                      1     ``A / (width * height)`` of the axis-aligned bounding box (regionprops
                                  ``extent``).
feret_max                   px    largest distance between two points of the outline (between two vertices
                                  of its convex hull).
feret_min                   px    smallest distance between two parallel lines that enclose the outline
                                  (minimum caliper width; rotating calipers over the hull's edges).
major_axis, minor_axis      px    ``4 sqrt(l1)``, ``4 sqrt(l2)``, with ``l1 >= l2`` the eigenvalues of the
                                  covariance matrix of the region (second central moments over the area,
                                  holes subtracted, exact by Green's theorem): the axes of the ellipse with
                                  the same second moments, as regionprops ``axis_major_length``. For an
                                  ellipse they are its full axes.
aspect_ratio                1     ``major_axis / minor_axis`` (ImageJ "AR"), >= 1.
orientation_deg             deg   angle of the major axis from the +x axis, counter-clockwise *as seen on
                                  screen* (y down), in [0, 180): ImageJ's "Angle". An axis from lower left to
                                  upper right on screen is 45. Isotropic regions (``l1 == l2`` to within 1e-9
                                  relative, e.g. a disc or a square) have no major axis; they report 0.
centroid_x, centroid_y      px    centre of mass of the region, holes excluded.
bbox_{x,y}_{min,max}        px    axis-aligned bounding box of the exterior ring.
hole_count                  1     number of hole rings.
hole_area                   px²   ``sum |Hi|``.
confidence                  1     how sure the segmenter that drew the outline was of it, 0..1, or ``None``:
                                  not measured from the polygon but given by the segmenter
                                  (:data:`CONFIDENCE_NOTE`); :func:`measure` leaves it ``None``, so an
                                  outline a person drew or edited has none.
==========================  ====  ===========================================================================

Whether a spheroid **touches the image border** is not a metric of its polygon but of the polygon in its
image: :func:`touches_border` is true when the exterior ring comes within ``BORDER_MARGIN_PX`` (1 px) of an
edge of the ``width`` x ``height`` image. Such a spheroid may be cut by the edge: its area, diameters and
shape ratios then describe only the part in view, so statistics usually leave it out. The exports carry it
as ``touches_border`` next to the metrics.

:func:`measure` raises :class:`~cluster.exceptions.MetricError` for a ring with fewer than 3 vertices or
non-finite coordinates, for an invalid polygon (self-crossing rings, holes outside the exterior; repair it
first with :func:`cluster.polygons.repair_spheroid`) and for a zero net area. It never returns NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from cluster.exceptions import MetricError

if TYPE_CHECKING:  # segmentation.py imports this module: no runtime import back
    from cluster.segmentation import Spheroid

__all__ = [
    "BORDER_MARGIN_PX",
    "CONFIDENCE_NOTE",
    "SpheroidMetrics",
    "measure",
    "measure_all",
    "touches_border",
]

CONFIDENCE_NOTE = (
    "The ResUNet's: the mean foreground probability inside the outline times the mean contrast of that "
    "probability across it (cluster.model.confidence). The classical method gives none (it has no "
    "calibrated measure of certainty), nor does an outline a person drew or edited."
)
"""What ``confidence`` is, in one sentence for exports and the API."""

_GIVEN: frozenset[str] = frozenset({"confidence"})
"""Metrics a segmenter gives rather than the polygon: absent from a stored record means unknown."""

BORDER_MARGIN_PX = 1.0
"""How close to an image edge an outline may come before it counts as touching it: a mask cut by the edge
gives vertices on the edge itself, and smoothing may move them by a fraction of a pixel."""

_ISOTROPIC: float = 1e-9
"""Relative eigenvalue gap below which a region has no major axis (orientation reported as 0)."""


@dataclass(frozen=True)
class SpheroidMetrics:
    """Metrics of one spheroid. ``*_px`` in pixels, ``*_um``/``*_um2`` in micrometres (``None`` when the
    pixel size is unknown); dimensionless ratios have no suffix. Definitions: :mod:`cluster.metrics`."""

    area_px: float
    area_um2: float | None
    perimeter_px: float
    perimeter_um: float | None
    perimeter_with_holes_px: float
    perimeter_with_holes_um: float | None
    equivalent_diameter_px: float
    equivalent_diameter_um: float | None
    circularity: float
    compactness: float
    sphericity: float
    convexity: float
    solidity: float
    extent: float
    feret_max_px: float
    feret_max_um: float | None
    feret_min_px: float
    feret_min_um: float | None
    aspect_ratio: float
    major_axis_px: float
    major_axis_um: float | None
    minor_axis_px: float
    minor_axis_um: float | None
    orientation_deg: float
    centroid_x: float
    centroid_y: float
    bbox_x_min: float
    bbox_y_min: float
    bbox_x_max: float
    bbox_y_max: float
    hole_count: int
    hole_area_px: float
    hole_area_um2: float | None
    confidence: float | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The metric names, in declaration order: the keys of :meth:`as_dict`, stored metrics and export
        columns. The one list of them; everything else derives from it."""
        return tuple(field.name for field in fields(cls))

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def at_pixel_size(self, pixel_size_um: float | None) -> SpheroidMetrics:
        """The same metrics with every ``*_um``/``*_um2`` value derived again from its ``*_px`` value and
        ``pixel_size_um`` (``None`` when it is ``None``): for an image whose pixel size was set or
        corrected after the spheroid was measured. Nothing else depends on the pixel size."""
        scale = _checked_pixel_size(pixel_size_um)
        values: dict[str, Any] = self.as_dict()
        for name in values:
            if name.endswith("_um2"):
                px = values[name[: -len("_um2")] + "_px"]
                values[name] = None if scale is None else px * scale * scale
            elif name.endswith("_um"):
                px = values[name[: -len("_um")] + "_px"]
                values[name] = None if scale is None else px * scale
        return SpheroidMetrics(**values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpheroidMetrics | None:
        """Metrics from :meth:`as_dict`'s output (extra keys ignored); ``None`` when a metric measured from
        the polygon is missing, as in metrics stored before that metric existed. A missing ``confidence``
        (stored before segmenters gave one) is ``None``: it cannot be measured afterwards."""
        names = cls.names()
        if not all(name in values for name in names if name not in _GIVEN):
            return None
        return cls(**{name: values[name] for name in names if name in values})

    @staticmethod
    def is_given(name: str) -> bool:
        """Whether metric ``name`` is given by the segmenter (``confidence``) rather than measured from the
        outline: it may be unknown (``None``) for any spheroid, and absent from what older code stored."""
        return name in _GIVEN

    def with_confidence(self, confidence: float | None) -> SpheroidMetrics:
        """The same metrics with the segmenter's ``confidence`` (0..1, or ``None``)."""
        if confidence is not None and not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            raise MetricError(f"confidence must be a number from 0 to 1, got {confidence!r}")
        return replace(self, confidence=None if confidence is None else float(confidence))


def measure(spheroid: Spheroid, pixel_size_um: float | None = None) -> SpheroidMetrics:
    """All metrics of ``spheroid``; ``pixel_size_um`` is the edge of one pixel in µm, or ``None``."""
    scale = _checked_pixel_size(pixel_size_um)
    exterior = _checked_ring(spheroid.exterior, "exterior ring")
    holes = [_checked_ring(hole, f"hole ring {index}") for index, hole in enumerate(spheroid.holes)]
    polygon = Polygon(exterior, holes)
    if not polygon.is_valid:
        raise MetricError(
            f"invalid polygon ({shapely.is_valid_reason(polygon)}); repair it with "
            "cluster.polygons.repair_spheroid before measuring"
        )
    enclosed = abs(_shoelace(exterior))
    hole_area = sum((abs(_shoelace(hole)) for hole in holes), 0.0)
    area = enclosed - hole_area
    if not area > 0:
        raise MetricError(f"the spheroid has no area (net area {area:g} px²)")
    perimeter = _length(exterior)
    hull = _convex_hull(exterior)
    hull_area = abs(_shoelace(hull))
    feret_max, feret_min = _ferets(hull)
    major, minor, orientation, centroid = _moments(exterior, holes)
    x_min, y_min = exterior.min(axis=0)
    x_max, y_max = exterior.max(axis=0)
    circularity = 4 * math.pi * enclosed / perimeter**2

    def um(length: float) -> float | None:
        return None if scale is None else length * scale

    def um2(value: float) -> float | None:
        return None if scale is None else value * scale * scale

    with_holes = perimeter + sum((_length(hole) for hole in holes), 0.0)
    diameter = math.sqrt(4 * area / math.pi)
    metrics = SpheroidMetrics(
        area_px=area,
        area_um2=um2(area),
        perimeter_px=perimeter,
        perimeter_um=um(perimeter),
        perimeter_with_holes_px=with_holes,
        perimeter_with_holes_um=um(with_holes),
        equivalent_diameter_px=diameter,
        equivalent_diameter_um=um(diameter),
        circularity=circularity,
        compactness=1 / circularity,
        sphericity=math.sqrt(circularity),
        convexity=_length(hull) / perimeter,
        solidity=area / hull_area,
        extent=area / ((x_max - x_min) * (y_max - y_min)),
        feret_max_px=feret_max,
        feret_max_um=um(feret_max),
        feret_min_px=feret_min,
        feret_min_um=um(feret_min),
        aspect_ratio=major / minor,
        major_axis_px=major,
        major_axis_um=um(major),
        minor_axis_px=minor,
        minor_axis_um=um(minor),
        orientation_deg=orientation,
        centroid_x=centroid[0],
        centroid_y=centroid[1],
        bbox_x_min=float(x_min),
        bbox_y_min=float(y_min),
        bbox_x_max=float(x_max),
        bbox_y_max=float(y_max),
        hole_count=len(holes),
        hole_area_px=hole_area,
        hole_area_um2=um2(hole_area),
    )
    _check_finite(metrics)
    return metrics


def touches_border(spheroid: Spheroid, width: int, height: int) -> bool:
    """Whether the spheroid's outline reaches within :data:`BORDER_MARGIN_PX` of an edge of its image."""
    exterior = np.asarray(spheroid.exterior, dtype=np.float64)
    if exterior.size == 0:
        return False
    xs, ys = exterior[:, 0], exterior[:, 1]
    margin = BORDER_MARGIN_PX
    return bool(
        xs.min() < margin or ys.min() < margin or xs.max() > width - margin or ys.max() > height - margin
    )


def measure_all(spheroids: Iterable[Spheroid], pixel_size_um: float | None = None) -> list[Spheroid]:
    """The spheroids with their metrics set (:meth:`Spheroid.with_metrics`), in the same order.

    A spheroid that cannot be measured raises :class:`MetricError` naming its index.
    """
    measured = []
    for index, spheroid in enumerate(spheroids):
        try:
            measured.append(spheroid.with_metrics(measure(spheroid, pixel_size_um)))
        except MetricError as error:
            raise MetricError(f"spheroid {index}: {error}") from error
    return measured


# -- helpers -----------------------------------------------------------------------------------------------


def _checked_pixel_size(pixel_size_um: float | None) -> float | None:
    if pixel_size_um is None:
        return None
    if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise MetricError(f"pixel_size_um must be a positive number of micrometres, got {pixel_size_um!r}")
    return float(pixel_size_um)


def _checked_ring(ring: NDArray[np.float64], name: str) -> NDArray[np.float64]:
    points = np.asarray(ring, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise MetricError(f"{name} must be an (N, 2) array of (x, y), got shape {points.shape}")
    if len(points) > 1 and np.array_equal(points[0], points[-1]):
        points = points[:-1]
    if len(points) < 3:
        raise MetricError(f"{name} has {len(points)} vertices; a polygon needs at least 3")
    if not np.isfinite(points).all():
        raise MetricError(f"{name} has non-finite coordinates")
    return points


def _shoelace(ring: NDArray[np.float64]) -> float:
    """Signed area (px²) of a ring, computed about its first vertex to keep precision far from the origin."""
    local = ring - ring[0]
    x, y = local[:, 0], local[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _length(ring: NDArray[np.float64]) -> float:
    return float(np.hypot(*(np.roll(ring, -1, axis=0) - ring).T).sum())


def _convex_hull(ring: NDArray[np.float64]) -> NDArray[np.float64]:
    """Convex hull vertices of a ring, counter-clockwise in the y-up sense (positive shoelace area)."""
    hull = shapely.convex_hull(shapely.multipoints(ring))
    if not isinstance(hull, Polygon):
        raise MetricError("the outline is degenerate: its convex hull has no area")
    points: NDArray[np.float64] = shapely.get_coordinates(hull.exterior)[:-1]
    return points if _shoelace(points) > 0 else points[::-1].copy()


def _ferets(hull: NDArray[np.float64]) -> tuple[float, float]:
    """Largest and smallest caliper distances of a convex polygon (positive orientation), by rotating
    calipers: for each edge, the vertex furthest from it is found by its edge angle (vectorised)."""
    count = len(hull)
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unwrap(np.arctan2(edges[:, 1], edges[:, 0]))
    # Vertex k lies between edges k-1 and k; it is furthest from edge i where the edge direction turns past
    # the direction of edge i plus half a turn.
    extended = np.concatenate((angles, angles + 2 * math.pi))
    far = np.searchsorted(extended, angles + math.pi) % count
    lengths = np.hypot(edges[:, 0], edges[:, 1])
    widths = (edges[:, 0] * (hull[far, 1] - hull[:, 1]) - edges[:, 1] * (hull[far, 0] - hull[:, 0])) / lengths
    ends = np.stack((np.arange(count), (np.arange(count) + 1) % count))
    opposite = np.stack(((far - 1) % count, far, (far + 1) % count))
    gaps = hull[ends[:, None, :]] - hull[opposite[None, :, :]]
    feret_max = float(np.sqrt((gaps**2).sum(axis=-1).max()))
    return feret_max, float(widths.min())


def _moments(
    exterior: NDArray[np.float64], holes: list[NDArray[np.float64]]
) -> tuple[float, float, float, tuple[float, float]]:
    """Major and minor axis (px), orientation (degrees) and centroid from exact second moments."""
    origin = exterior.mean(axis=0)
    totals = _ring_moments(exterior - origin)
    for hole in holes:
        totals -= _ring_moments(hole - origin)
    area, sum_x, sum_y, sum_xx, sum_yy, sum_xy = totals
    mean_x, mean_y = sum_x / area, sum_y / area
    var_x = sum_xx / area - mean_x**2
    var_y = sum_yy / area - mean_y**2
    cov = sum_xy / area - mean_x * mean_y
    half_sum, half_gap = (var_x + var_y) / 2, math.hypot((var_x - var_y) / 2, cov)
    large, small = half_sum + half_gap, half_sum - half_gap
    if not small > 0:
        raise MetricError("the spheroid is degenerate: its second moments have no minor axis")
    if half_gap <= _ISOTROPIC * half_sum:
        orientation = 0.0
    else:
        # Angle of the major axis from +x towards +y (down); on screen, counter-clockwise is the opposite.
        orientation = -math.degrees(0.5 * math.atan2(2 * cov, var_x - var_y)) % 180.0
        orientation = 0.0 if orientation >= 180.0 else orientation
    centroid = (float(mean_x + origin[0]), float(mean_y + origin[1]))
    return 4 * math.sqrt(large), 4 * math.sqrt(small), orientation, centroid


def _ring_moments(ring: NDArray[np.float64]) -> NDArray[np.float64]:
    """Area, first and second moments (integrals of 1, x, y, x², y², xy) over the region a ring encloses,
    by Green's theorem; taken positive whatever the ring's orientation."""
    x0, y0 = ring[:, 0], ring[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    cross = x0 * y1 - x1 * y0
    moments = np.array(
        [
            cross.sum() / 2,
            ((x0 + x1) * cross).sum() / 6,
            ((y0 + y1) * cross).sum() / 6,
            ((x0 * x0 + x0 * x1 + x1 * x1) * cross).sum() / 12,
            ((y0 * y0 + y0 * y1 + y1 * y1) * cross).sum() / 12,
            ((x0 * y1 + 2 * x0 * y0 + 2 * x1 * y1 + x1 * y0) * cross).sum() / 24,
        ]
    )
    positive: NDArray[np.float64] = moments if moments[0] >= 0 else -moments
    return positive


def _check_finite(metrics: SpheroidMetrics) -> None:
    for name, value in asdict(metrics).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise MetricError(f"{name} cannot be computed for this shape (got {value})")
