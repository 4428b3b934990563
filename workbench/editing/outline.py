"""One spheroid's editable outline: an exterior ring and hole rings, immutable.

Rings are ``(N, 2)`` float64 arrays of ``(x, y)`` image pixels, open (the first vertex not repeated), as in
:mod:`cluster` (``Spheroid``). An :class:`Outline` is never changed in place: its arrays are read-only and an
edit makes a new one, so the edit history can hold the very objects it replaced and give them back bit for
bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from shapely.geometry import Polygon

from cluster import Spheroid, SpheroidMetrics, measure
from workbench.editing.exceptions import InvalidShapeError

__all__ = ["Outline", "Ring", "checked_points"]

Ring = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Outline:
    """A spheroid's exterior ring and its holes (read-only arrays)."""

    exterior: Ring
    holes: tuple[Ring, ...] = ()

    @classmethod
    def of(cls, exterior: Ring | Sequence[Sequence[float]], holes: Sequence[Any] = ()) -> Outline:
        """An outline of copies of the given rings, made read-only (not validated: see
        :func:`workbench.editing.operations.repaired`)."""
        return cls(_frozen(exterior), tuple(_frozen(hole) for hole in holes))

    @classmethod
    def of_spheroid(cls, spheroid: Spheroid) -> Outline:
        return cls.of(spheroid.exterior, spheroid.holes)

    def polygon(self) -> Polygon:
        return Polygon(self.exterior, list(self.holes))

    def spheroid(self, spheroid_id: int | None = None) -> Spheroid:
        return Spheroid(self.exterior, self.holes, None, spheroid_id)

    def metrics(self, pixel_size_um: float | None = None) -> SpheroidMetrics:
        """Its metrics, measured here by the core (``cluster.measure``) as the server will measure them."""
        return measure(self.spheroid(), pixel_size_um)

    @property
    def nbytes(self) -> int:
        """Bytes its vertex arrays hold (what the edit history counts against its budget)."""
        return int(self.exterior.nbytes + sum(hole.nbytes for hole in self.holes))

    def same_as(self, other: Outline) -> bool:
        """The same rings, bit for bit."""
        return (
            len(self.holes) == len(other.holes)
            and _identical(self.exterior, other.exterior)
            and all(_identical(a, b) for a, b in zip(self.holes, other.holes, strict=True))
        )


def checked_points(points: Any, name: str, minimum: int) -> Ring:
    """``points`` as an ``(N, 2)`` float64 array of at least ``minimum`` finite points, else an
    :class:`InvalidShapeError` naming ``name``."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidShapeError(f"{name}: the points are not numbers") from None
    if array.ndim != 2 or array.shape[1] != 2:
        raise InvalidShapeError(f"{name}: points must be (x, y) pairs, got an array of shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidShapeError(f"{name}: a coordinate is not a finite number")
    if len(array) < minimum:
        raise InvalidShapeError(f"{name}: needs at least {minimum} points, got {len(array)}")
    return array


def _frozen(points: Any) -> Ring:
    ring = np.array(points, dtype=np.float64).reshape(-1, 2)
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1].copy()
    ring.flags.writeable = False
    return ring


def _identical(a: Ring, b: Ring) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()
