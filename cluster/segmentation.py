"""What a segmentation is: spheroids (an exterior ring, hole rings, metrics) found in one image.

Coordinates follow DESIGN.md: ``(x, y)`` floats in image pixels, origin at the top-left corner of the
top-left pixel (the COCO convention), so the centre of pixel ``(row r, column c)`` is ``(c + 0.5, r + 0.5)``.
A ring is an ``(N, 2)`` float64 array of vertices, N >= 3, *open* (the first vertex is not repeated).
Exterior rings run counter-clockwise and holes clockwise as seen on screen (y pointing down), which is
what :func:`cluster.polygons.orient_rings` produces; readers of our exports should not rely on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cluster.metrics import SpheroidMetrics

__all__ = ["Ring", "Segmentation", "Spheroid", "as_ring", "image_stem"]

Ring = NDArray[np.float64]


def as_ring(points: Sequence[Sequence[float]] | NDArray[Any]) -> Ring:
    """Return ``points`` as an open ``(N, 2)`` float64 ring, dropping a repeated closing vertex."""
    ring = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(ring) > 1 and np.array_equal(ring[0], ring[-1]):
        ring = ring[:-1]
    return ring


@dataclass(frozen=True, eq=False)
class Spheroid:
    """One spheroid: its outline, the holes inside it (its own, never another's) and its metrics.

    ``id`` names the spheroid within its image once a server has stored it, and stays the same across the
    versions that keep it unchanged or edit it; ``None`` for a spheroid no one has stored yet (a fresh
    segmentation, a new drawing).
    """

    exterior: Ring
    holes: tuple[Ring, ...] = ()
    metrics: SpheroidMetrics | None = None
    id: int | None = None

    def with_metrics(self, metrics: SpheroidMetrics) -> Spheroid:
        return replace(self, metrics=metrics)

    def with_id(self, spheroid_id: int) -> Spheroid:
        return replace(self, id=spheroid_id)

    @property
    def vertex_count(self) -> int:
        return len(self.exterior) + sum(len(hole) for hole in self.holes)


@dataclass
class Segmentation:
    """The spheroids of one image and what produced them.

    ``version`` starts at 1 and increases on every save (the server keeps old versions).
    ``pixel_size_um`` is the edge of one pixel in micrometres, or ``None`` when unknown.
    """

    image_name: str
    width: int
    height: int
    spheroids: list[Spheroid] = field(default_factory=list)
    pixel_size_um: float | None = None
    model_name: str = ""
    model_version: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    @property
    def stem(self) -> str:
        """The image name without folders or extension, naming export files (see :func:`image_stem`)."""
        return image_stem(self.image_name)


def image_stem(name: str) -> str:
    """A file name without folders or extension; ``.ome.tif``/``.ome.tiff`` count as one extension."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".ome.tiff", ".ome.tif"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base.rsplit(".", 1)[0] if "." in base else base
