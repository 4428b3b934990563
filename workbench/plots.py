"""A project's spheroids as its plots show them, without Qt: area, diameter and circularity of every
spheroid of every image's current segmentation, in µm when every image's pixel size is known (else all
in pixels, so the points of one plot are comparable), histogram bins and the count per image.

The values come from the server's spheroid table (``Project.spheroids``): one query per 500 spheroids
carrying only the values plotted, in px, the stored metrics as the exports have them; nothing is measured
here. The µm values are derived here from each image's pixel size *now* (one query per 500 images): the
table keeps the µm values of the time each version was saved, so a pixel size set later (``updateImage``)
would not show there. Reading each image's ``geometryUrl`` instead would fetch and decode every outline
of the project to use three of its columns (``benchmarks/review.py``, part ``plot_data``, measures both).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.api import LabClient

__all__ = ["Bins", "PlotPoint", "ProjectSpheroids", "bins_of", "read_project_spheroids"]

PAGE = 500
"""Spheroids per query (the server's largest page)."""


@dataclass(frozen=True)
class PlotPoint:
    image_id: int
    spheroid_id: int
    image_name: str
    area: float
    diameter: float
    circularity: float
    touches_border: bool


@dataclass(frozen=True)
class Bins:
    edges: list[float]
    counts: list[int]


@dataclass(frozen=True)
class ProjectSpheroids:
    points: list[PlotPoint]
    in_um: bool
    """Values in µm and µm²; else in px and px² (some image has no pixel size)."""
    without_pixel_size: int
    """How many images have no pixel size (their spheroids keep the plots in pixels)."""

    @property
    def length_unit(self) -> str:
        return "µm" if self.in_um else "px"

    @property
    def area_unit(self) -> str:
        return "µm²" if self.in_um else "px²"

    def counts_per_image(self) -> list[tuple[int, str, int]]:
        """(image id, name, spheroids) for each image with spheroids, by name."""
        counts = Counter((point.image_id, point.image_name) for point in self.points)
        return sorted(
            ((image_id, name, count) for (image_id, name), count in counts.items()), key=lambda c: c[1]
        )


def bins_of(values: Sequence[float], count: int = 20) -> Bins:
    """A histogram of ``values`` in ``count`` equal bins from the smallest to the largest."""
    if not values:
        return Bins([], [])
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=count)
    return Bins([float(edge) for edge in edges], [int(c) for c in counts])


async def read_project_spheroids(
    client: LabClient, project_id: int, on_progress: Callable[[int, int], None] | None = None
) -> ProjectSpheroids:
    """Every spheroid of the project, a page at a time (``on_progress(read, total)`` after each)."""
    pixel_sizes = await _pixel_sizes(client, project_id)
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        data = await client.call("ProjectSpheroidMetrics", projectId=project_id, first=PAGE, after=after)
        table = data["project"]["spheroids"]
        rows.extend(edge["node"] for edge in table["edges"])
        if on_progress is not None:
            on_progress(len(rows), table["totalCount"])
        if not table["pageInfo"]["hasNextPage"]:
            break
        after = table["pageInfo"]["endCursor"]
    return _plotted(rows, pixel_sizes)


async def _pixel_sizes(client: LabClient, project_id: int) -> dict[int, float | None]:
    sizes: dict[int, float | None] = {}
    after: str | None = None
    while True:
        data = await client.call("ProjectPixelSizes", projectId=project_id, first=PAGE, after=after)
        images = data["project"]["images"]
        sizes.update((edge["node"]["id"], edge["node"]["pixelSizeUm"]) for edge in images["edges"])
        if not images["pageInfo"]["hasNextPage"]:
            return sizes
        after = images["pageInfo"]["endCursor"]


def _plotted(rows: list[dict[str, Any]], pixel_sizes: dict[int, float | None]) -> ProjectSpheroids:
    unknown = {row["imageId"] for row in rows if not pixel_sizes.get(row["imageId"])}
    in_um = bool(rows) and not unknown
    points = []
    for row in rows:
        metrics = row["metrics"]
        values = (metrics["areaPx"], metrics["equivalentDiameterPx"], metrics["circularity"])
        if any(value is None for value in values):  # stored unmeasured by an older server
            continue
        scale = (pixel_sizes[row["imageId"]] or 1.0) if in_um else 1.0
        points.append(
            PlotPoint(
                row["imageId"],
                row["spheroidId"],
                row["imageName"],
                float(values[0]) * scale * scale,
                float(values[1]) * scale,
                float(values[2]),
                row["touchesBorder"],
            )
        )
    return ProjectSpheroids(points, in_um, len(unknown))
