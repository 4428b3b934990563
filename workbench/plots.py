"""A project's spheroids as its plots show them, without Qt: area, diameter and circularity of every
spheroid of every image's current segmentation, in µm when every image's pixel size is known (else all
in pixels, so the points of one plot are comparable), histogram bins and the count per image.

The values are the stored metrics that each version's outlines file (``geometryUrl``) carries as columns:
one query per 500 images for their URLs and pixel sizes, then each file through the workspace's fetcher,
whose disk cache keeps it (immutable: a plot drawn again, or an image the canvas opened, costs no request),
decoded in a thread. That is about four times faster than paging the server's spheroid table
(``Project.spheroids``, about 150 ms a page of 500 rows; ``benchmarks/review.py``, part ``plot_data``),
and the table keeps the µm values of the time each version was saved, so a pixel size set later
(``updateImage``) would not show there: here µm values are derived from the pixel size *now*. Nothing is
measured here.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster import Outlines
from workbench.api import LabClient
from workbench.fetch import ImageFetcher

__all__ = ["Bins", "PlotPoint", "ProjectSpheroids", "bins_of", "nice_ticks", "read_project_spheroids"]

PAGE = 500
"""Images per query (the server's largest page)."""
BORDER_MARGIN_PX = 1.0
"""As ``cluster.touches_border``: an exterior within 1 px of an edge touches it."""


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
    """How many images with spheroids have no pixel size (they keep the plots in pixels)."""

    @property
    def length_unit(self) -> str:
        return "µm" if self.in_um else "px"

    @property
    def area_unit(self) -> str:
        return "µm²" if self.in_um else "px²"

    def counts_per_image(self) -> list[tuple[int, str, int]]:
        """(image id, name, spheroids) for each image with spheroids, by name."""
        counts = Counter((point.image_id, point.image_name) for point in self.points)
        return sorted(((image, name, count) for (image, name), count in counts.items()), key=lambda c: c[1])


def bins_of(values: Sequence[float], count: int = 20) -> Bins:
    """A histogram of ``values`` in ``count`` equal bins from the smallest to the largest."""
    if not values:
        return Bins([], [])
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=count)
    return Bins([float(edge) for edge in edges], [int(c) for c in counts])


def nice_ticks(low: float, high: float, most: int, *, integer: bool = False) -> list[float]:
    """At most ``most`` round values from ``low`` to ``high``, 1, 2 or 5 times a power of ten apart (the
    plot says how many labels fit its axis); ``integer``: whole steps only, for counts (no 0.5 spheroid)."""
    if high <= low or most < 2:
        return [low]
    power = 10.0 ** math.floor(math.log10((high - low) / most))
    for step in (m * power * 10**k for k in range(3) for m in (1, 2, 5)):
        if integer and step < 1:
            continue
        first = math.ceil(low / step - 1e-9) * step
        ticks = [round(first + k * step, 12) for k in range(int((high - first) / step + 1e-9) + 1)]
        if len(ticks) <= most:
            return ticks
    return [low, high]


async def read_project_spheroids(
    client: LabClient,
    fetcher: ImageFetcher,
    project_id: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> ProjectSpheroids:
    """Every spheroid of the project's segmented images (``on_progress(images read, images)``)."""
    images: list[Mapping[str, Any]] = []
    after: str | None = None
    while True:
        data = await client.call("ProjectGeometries", projectId=project_id, first=PAGE, after=after)
        page = data["project"]["images"]
        images.extend(edge["node"] for edge in page["edges"] if edge["node"]["segmentation"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    done = 0

    async def read(image: Mapping[str, Any]) -> Outlines:
        nonlocal done
        outlines = await fetcher.fetch_outlines(image["segmentation"]["geometryUrl"])
        done += 1
        if on_progress is not None:
            on_progress(done, len(images))
        return outlines

    decoded = await asyncio.gather(*(read(image) for image in images))
    in_um = all(
        image["pixelSizeUm"] for image, outlines in zip(images, decoded, strict=True) if len(outlines.ids)
    )
    points = [
        point
        for image, outlines in zip(images, decoded, strict=True)
        for point in _points(image, outlines, in_um)
    ]
    without = sum(
        1
        for image, outlines in zip(images, decoded, strict=True)
        if len(outlines.ids) and not image["pixelSizeUm"]
    )
    return ProjectSpheroids(points, in_um and bool(points), without)


def _points(image: Mapping[str, Any], outlines: Outlines, in_um: bool) -> list[PlotPoint]:
    columns = outlines.metrics
    scale = float(image["pixelSizeUm"]) if in_um else 1.0
    wanted = (
        "area_px",
        "equivalent_diameter_px",
        "circularity",
        "bbox_x_min",
        "bbox_y_min",
        "bbox_x_max",
        "bbox_y_max",
    )
    if not all(name in columns for name in wanted):
        return []
    area, diameter, circularity, x0, y0, x1, y1 = (np.asarray(columns[name]) for name in wanted)
    width, height = image["width"], image["height"]
    border = (
        (x0 < BORDER_MARGIN_PX)
        | (y0 < BORDER_MARGIN_PX)
        | (x1 > width - BORDER_MARGIN_PX)
        | (y1 > height - BORDER_MARGIN_PX)
    )
    known = np.isfinite(area) & np.isfinite(diameter) & np.isfinite(circularity) & (outlines.ids >= 0)
    return [
        PlotPoint(
            image["id"],
            int(outlines.ids[k]),
            image["name"],
            float(area[k]) * scale * scale,
            float(diameter[k]) * scale,
            float(circularity[k]),
            bool(border[k]),
        )
        for k in np.flatnonzero(known)
    ]
