"""Checking spheroids a person drew before they are stored, and measuring them with ``cluster``.

A ring arrives as a list of ``(x, y)`` points in image pixels; the first point may be repeated at the end
(a closed ring as GeoJSON writes it) or not (as ``cluster`` stores it). It is refused when it has fewer
than 3 distinct vertices, a non-finite coordinate, a point outside ``[0, width] x [0, height]``, more than
:data:`MAX_RING_VERTICES` vertices, or encloses no area; the spheroid is refused when its rings cross
themselves or each other (``cluster.metrics.measure`` cannot measure it). Every problem is reported, with
the spheroid (its index among the drafts, and its id when it has one) and ring it concerns, and nothing is
stored unless all pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from cluster import MetricError, Spheroid, as_ring, measure
from server.domain.errors import InvalidSpheroidsError

__all__ = [
    "MAX_RING_VERTICES",
    "MAX_SPHEROIDS",
    "MAX_TOTAL_VERTICES",
    "SpheroidDraft",
    "checked_spheroids",
    "measure_missing",
    "measured_spheroid",
]

MAX_RING_VERTICES = 10_000
MAX_TOTAL_VERTICES = 500_000
MAX_SPHEROIDS = 20_000

Points = Sequence[Sequence[float]]


@dataclass(frozen=True)
class SpheroidDraft:
    """A spheroid as a client sends it: an exterior ring and hole rings, unmeasured; ``id`` when it
    replaces a stored spheroid (an edit)."""

    exterior: Points
    holes: Sequence[Points] = ()
    id: int | None = None

    def label(self, index: int) -> str:
        """How problems name it: ``spheroid 3``, or ``spheroid 3 (id 17)``."""
        return f"spheroid {index}" if self.id is None else f"spheroid {index} (id {self.id})"


def checked_spheroids(
    drafts: Sequence[SpheroidDraft], width: int, height: int, pixel_size_um: float | None
) -> list[Spheroid]:
    """Return the drafts as measured spheroids (with the drafts' ids), or raise
    :class:`InvalidSpheroidsError` listing problems."""
    if len(drafts) > MAX_SPHEROIDS:
        raise InvalidSpheroidsError([f"{len(drafts)} spheroids, at most {MAX_SPHEROIDS} allowed"])
    total = sum(len(d.exterior) + sum(len(h) for h in d.holes) for d in drafts)
    if total > MAX_TOTAL_VERTICES:
        raise InvalidSpheroidsError([f"{total} vertices in all, at most {MAX_TOTAL_VERTICES} allowed"])
    problems: list[str] = []
    spheroids: list[Spheroid] = []
    for index, draft in enumerate(drafts):
        rings = [("exterior ring", draft.exterior)] + [(f"hole {k}", h) for k, h in enumerate(draft.holes)]
        ring_problems = [
            f"{draft.label(index)}, {ring}: {problem}"
            for ring, points in rings
            if (problem := _ring_problem(points, width, height)) is not None
        ]
        if ring_problems:
            problems.extend(ring_problems)
            continue
        drawn = Spheroid(as_ring(draft.exterior), tuple(as_ring(h) for h in draft.holes), id=draft.id)
        if (measured := measured_spheroid(drawn, draft.label(index), pixel_size_um, problems)) is not None:
            spheroids.append(measured)
    if problems:
        raise InvalidSpheroidsError(problems)
    return spheroids


def measure_missing(spheroids: Sequence[Spheroid], pixel_size_um: float | None) -> list[Spheroid]:
    """The spheroids, those without metrics measured; :class:`InvalidSpheroidsError` lists those that
    cannot be."""
    problems: list[str] = []
    measured = [
        done
        for index, spheroid in enumerate(spheroids)
        if (done := measured_spheroid(spheroid, f"spheroid {index}", pixel_size_um, problems)) is not None
    ]
    if problems:
        raise InvalidSpheroidsError(problems)
    return measured


def measured_spheroid(
    spheroid: Spheroid, label: str, pixel_size_um: float | None, problems: list[str]
) -> Spheroid | None:
    """``spheroid`` with its metrics (kept when it has them); ``None``, with the reason added to
    ``problems`` after its ``label``, when it cannot be measured."""
    if spheroid.metrics is not None:
        return spheroid
    try:
        return spheroid.with_metrics(measure(spheroid, pixel_size_um))
    except MetricError as error:
        problems.append(f"{label}: {error}")
        return None


def _ring_problem(points: Points, width: int, height: int) -> str | None:
    if any(len(point) != 2 for point in points):
        return "every vertex needs exactly two coordinates (x, y)"
    if len(points) > MAX_RING_VERTICES + 1:
        return f"{len(points)} vertices, at most {MAX_RING_VERTICES} allowed"
    if not all(math.isfinite(value) for point in points for value in point):
        return "a coordinate is not a finite number"
    distinct = {(float(x), float(y)) for x, y in points}
    if len(distinct) < 3:
        return f"{len(distinct)} distinct vertices; a closed ring needs at least 3"
    outside = [(x, y) for x, y in points if not (0 <= x <= width and 0 <= y <= height)]
    if outside:
        x, y = outside[0]
        return f"vertex ({x:g}, {y:g}) lies outside the {width} x {height} image"
    if _area(as_ring(points).tolist()) < 1e-9:
        return "the ring encloses no area (its vertices are collinear)"
    return None


def _area(ring: Sequence[Sequence[float]]) -> float:
    total = 0.0
    for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True):
        total += x0 * y1 - x1 * y0
    return abs(total) / 2
