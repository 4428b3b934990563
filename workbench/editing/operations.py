"""The edits of a spheroid's outline as pure functions: outlines in, valid outlines out.

Every function returns new :class:`~workbench.editing.outline.Outline` values (largest first) and leaves its
arguments alone; :class:`~workbench.editing.history.Change` records what they replaced. Each result goes
through :func:`finished`: clipped to the image when its size is given, repaired by the core
(``cluster.repair_spheroid``: a self-crossing ring splits into the pieces it encloses, a hole that crosses or
runs along the outline becomes a notch), and pieces under ``min_area`` px² dropped as slivers. Input that
cannot be used raises :class:`~workbench.editing.exceptions.InvalidShapeError`; an edit that makes no sense
on the shapes given raises :class:`~workbench.editing.exceptions.EditRefusedError`; both say what to do.

Choices a user will notice:

- **Slice** cuts along the whole drawn polyline (``shapely.ops.split``), so a line through a concave shape
  that crosses it twice gives all the pieces it separates. A line that does not run from outside to outside
  cuts nothing and is refused.
- **Merge** unites the selected outlines. Spheroids traced from neighbouring labels touch, or nearly (a
  fraction of a pixel after simplification): gaps up to ``gap`` px (default :data:`MERGE_GAP_PX`) are
  bridged by what a morphological closing adds between them (and only there: notches elsewhere stay).
  Spheroids further apart are refused rather than joined by a hull or a bridge the user did not draw: a
  merge invents no area beyond that narrow bridge.
- **Brush** strokes are vector discs swept along the path (``LineString.buffer``, 8 segments a quarter
  circle), united with or cut from the outline: exact and smooth, with no pixel staircase that painting and
  tracing back would add. An add stroke must touch the spheroid; an erase stroke may split it (the largest
  piece keeps its id) or remove it entirely (no pieces).
- **Simplify** is Douglas-Peucker that preserves topology at a tolerance in px.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import shapely
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import split

from cluster import GeometryError, repair_spheroid
from workbench.editing.exceptions import EditRefusedError, InvalidShapeError
from workbench.editing.outline import Outline, checked_points

__all__ = [
    "MERGE_GAP_PX",
    "MIN_AREA_PX",
    "brushed",
    "finished",
    "hole_at",
    "merged",
    "reshaped",
    "simplified",
    "sliced",
    "with_hole",
    "without_hole",
]

MIN_AREA_PX: Final[float] = 2.0
"""Pieces smaller than this (px²) are slivers of an edit and are dropped."""

MERGE_GAP_PX: Final[float] = 1.5
"""Merge bridges gaps up to this wide (px): neighbouring traced outlines are this close or closer."""

Bounds = tuple[int, int] | None
"""The image's (width, height) to clip results to, or None for no clipping."""


def finished(
    geometry: shapely.Geometry, bounds: Bounds = None, min_area: float = MIN_AREA_PX
) -> list[Outline]:
    """The valid outlines in ``geometry``, largest first: clipped to ``bounds``, repaired by the core,
    slivers under ``min_area`` px² dropped (possibly none left)."""
    parts = _polygons(geometry)
    if bounds is not None:  # part by part: clipping a collection as a whole would unite its parts
        image = box(0, 0, bounds[0], bounds[1])
        parts = [clipped for part in parts for clipped in _polygons(shapely.intersection(part, image))]
    pieces: list[Outline] = []
    for part in parts:
        if part.area < min_area:
            continue
        try:
            repaired = repair_spheroid(shapely.get_coordinates(part.exterior), _hole_rings(part))
        except GeometryError:
            continue  # nothing with area: the part was degenerate
        pieces += [Outline.of_spheroid(s) for s in repaired]
    kept = [(piece.polygon().area, piece) for piece in pieces]
    return [piece for area, piece in sorted(kept, key=lambda pair: -pair[0]) if area >= min_area]


def reshaped(exterior: Any, holes: Sequence[Any] = (), bounds: Bounds = None) -> list[Outline]:
    """Rings as drawn or edited (move or edit vertices; draw a new spheroid) made valid: a ring that crosses
    itself splits into the pieces it encloses."""
    ring = checked_points(exterior, "outline", 3)
    hole_rings = [checked_points(hole, f"hole {index}", 3) for index, hole in enumerate(holes)]
    try:
        repaired = repair_spheroid(ring, hole_rings)
    except GeometryError as error:
        raise EditRefusedError(f"the outline encloses no area ({error}): draw around the spheroid") from None
    polygons = [Outline.of_spheroid(s).polygon() for s in repaired]
    return _some(finished(shapely.union_all(polygons) if len(polygons) > 1 else polygons[0], bounds))


def sliced(outline: Outline, line: Any, bounds: Bounds = None) -> list[Outline]:
    """The pieces ``line`` (a polyline of 2 or more points) cuts ``outline`` into, largest first."""
    points = checked_points(line, "slice line", 2)
    polygon = _valid(outline)
    path = LineString(points)
    if path.length == 0:
        raise InvalidShapeError("slice line: its points are all the same; draw a line across the spheroid")
    pieces = finished(split(polygon, path), bounds)
    if len(pieces) < 2:
        raise EditRefusedError(
            "the line does not cut across the spheroid: draw it from outside the outline, through it, to "
            "outside again"
        )
    return pieces


def merged(outlines: Sequence[Outline], bounds: Bounds = None, gap: float = MERGE_GAP_PX) -> Outline:
    """One outline covering all of ``outlines`` (2 or more), which must touch or lie within ``gap`` px."""
    if len(outlines) < 2:
        raise InvalidShapeError(f"merge needs two or more spheroids selected, got {len(outlines)}")
    polygons = [_valid(outline) for outline in outlines]
    union = shapely.union_all(polygons)
    if len(_polygons(union)) > 1 and gap > 0:
        union = shapely.union_all([union, *_bridges(union, gap)])
    parts = finished(union, bounds)
    if len(parts) != 1:
        apart = _largest_gap(polygons)
        raise EditRefusedError(
            f"the selected spheroids do not touch (one is {apart:.1f} px from the others; merge bridges "
            f"{gap:g} px at most): select spheroids that touch, or reshape one to reach the other"
        )
    return parts[0]


def with_hole(outline: Outline, ring: Any, bounds: Bounds = None) -> Outline:
    """``outline`` with a hole where ``ring`` is drawn, which must lie inside its exterior (a hole drawn
    over an existing hole joins it)."""
    hole = _area(checked_points(ring, "hole", 3), "hole")
    polygon = _valid(outline)
    if not Polygon(outline.exterior).contains(hole):
        raise EditRefusedError(
            "the hole must be drawn inside the outline; this one crosses it (to cut a notch, use the "
            "eraser brush)"
        )
    pieces = finished(polygon.difference(hole), bounds)
    if len(pieces) != 1:  # the hole and existing holes leave nothing, or cut it apart
        raise EditRefusedError("this hole leaves no single spheroid around it: draw a smaller hole")
    return pieces[0]


def without_hole(outline: Outline, index: int) -> Outline:
    """``outline`` with its hole ``index`` (0-based) filled."""
    if not 0 <= index < len(outline.holes):
        count = len(outline.holes)
        raise InvalidShapeError(
            f"this spheroid has {count} hole{'s' * (count != 1)}; there is no hole {index}"
        )
    return Outline(outline.exterior, outline.holes[:index] + outline.holes[index + 1 :])


def hole_at(outline: Outline, x: float, y: float) -> int | None:
    """The index of the hole under the point ``(x, y)``, or None."""
    point = Point(x, y)
    for index, hole in enumerate(outline.holes):
        if Polygon(hole).covers(point):
            return index
    return None


def brushed(
    outline: Outline, path: Any, radius: float, *, erase: bool = False, bounds: Bounds = None
) -> list[Outline]:
    """``outline`` with a brush stroke of ``radius`` px along ``path`` added (one outline) or erased (the
    pieces left, largest first; none when the stroke covered it all)."""
    if not (math.isfinite(radius) and radius > 0):
        raise InvalidShapeError(f"brush radius must be a positive number of pixels, got {radius!r}")
    points = checked_points(path, "brush stroke", 1)
    stroke = (Point(points[0]) if len(points) == 1 else LineString(points)).buffer(radius, quad_segs=8)
    polygon = _valid(outline)
    if not erase:
        if not stroke.intersects(polygon):
            raise EditRefusedError(
                "the brush stroke does not touch this spheroid: start the stroke on it (or draw a new one)"
            )
        return _some(finished(polygon.union(stroke), bounds))[:1]
    if not stroke.intersects(polygon):
        raise EditRefusedError("the eraser stroke does not touch this spheroid: nothing to erase")
    return finished(polygon.difference(stroke), bounds)


def simplified(outline: Outline, tolerance: float, bounds: Bounds = None) -> Outline:
    """``outline`` with fewer vertices, none moved more than ``tolerance`` px from the outline."""
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InvalidShapeError(f"simplify tolerance must be a number of pixels >= 0, got {tolerance!r}")
    pieces = finished(shapely.simplify(_valid(outline), tolerance, preserve_topology=True), bounds)
    if not pieces:
        raise EditRefusedError(f"simplifying at {tolerance:g} px leaves nothing: use a smaller tolerance")
    return pieces[0]


def _valid(outline: Outline) -> Polygon:
    polygon = outline.polygon()
    if not polygon.is_valid:
        reason = shapely.is_valid_reason(polygon)
        raise InvalidShapeError(
            f"the spheroid's outline is invalid ({reason}): edit its vertices to repair it"
        )
    return polygon


def _area(points: Any, name: str) -> Polygon:
    repaired = _polygons(shapely.make_valid(Polygon(points), method="structure", keep_collapsed=False))
    if not repaired:
        raise InvalidShapeError(f"{name}: the ring encloses no area")
    return max(repaired, key=lambda part: part.area)


def _some(pieces: list[Outline]) -> list[Outline]:
    if not pieces:
        raise EditRefusedError(f"nothing of {MIN_AREA_PX:g} px² or more would be left (inside the image)")
    return pieces


def _polygons(geometry: shapely.Geometry) -> list[Polygon]:
    found: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon):
            if not part.is_empty:
                found.append(part)
        elif hasattr(part, "geoms"):
            found += _polygons(part)
    return found


def _hole_rings(polygon: Polygon) -> list[Any]:
    return [shapely.get_coordinates(ring) for ring in polygon.interiors]


def _bridges(union: shapely.Geometry, gap: float) -> list[Polygon]:
    """What a closing of ``gap`` px adds between two or more of the parts of ``union``: the bridges. What
    it adds to one part alone (a narrow notch filled) is left out, so a merge changes no outline but where
    the spheroids meet."""
    parts = _polygons(union)
    closed = shapely.buffer(shapely.buffer(union, gap / 2), -gap / 2)
    added = _polygons(shapely.difference(closed, union))
    near = [shapely.buffer(piece, 1e-6) for piece in added]
    return [
        piece
        for piece, grown in zip(added, near, strict=True)
        if sum(grown.intersects(p) for p in parts) >= 2
    ]


def _largest_gap(polygons: list[Polygon]) -> float:
    """How far the spheroid furthest from all the others is from its nearest one."""
    return float(
        max(
            min(shapely.distance(polygon, other) for other in polygons if other is not polygon)
            for polygon in polygons
        )
    )
