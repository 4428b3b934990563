"""GeoJSON: ``geojson/<stem>.geojson``, one FeatureCollection per image, in the form QuPath imports.

Coordinates are image pixels, origin at the top-left corner of the top-left pixel, x to the right and
y down: QuPath's own convention, so outlines land where they belong when the file is dropped on the image.
Each spheroid is one ``Feature`` (in spheroid order) with a ``Polygon``: the exterior ring first, then one
inner ring per hole. Rings are closed (the last position repeats the first).

Ring orientation follows the right-hand rule of RFC 7946 applied to the numbers as written: the exterior
has a positive shoelace area and holes a negative one, i.e. exteriors run counter-clockwise if y is drawn
pointing up, which is *clockwise on screen* where y points down. Readers (QuPath included) do not depend on
it, and :func:`cluster.exports.read_geojson` accepts either orientation.

``properties`` hold ``objectType: "annotation"``, ``classification`` ``{"name": "Spheroid", "color":
[r, g, b]}``, ``isLocked: false``, ``spheroid_id``, ``touches_border`` (the outline reaches the image's
edge) and ``measurements`` (metric name to number; unknown values are left out, as QuPath measurements must
be numbers). Each feature's ``id`` is a UUID derived from
the file stem and spheroid id, so exporting the same data twice gives the same file. The collection carries
a foreign member ``spheroseg`` with the image name, size, pixel size and model, which
:func:`cluster.exports.read_geojson` reads back and other readers ignore.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shapely

from cluster.exceptions import ExportError
from cluster.exports.files import atomic_write, json_bytes, json_safe
from cluster.exports.records import ExportImage, provenance
from cluster.segmentation import Ring

__all__ = ["CLASSIFICATION", "GEOJSON_FOLDER", "feature_collection", "write_geojson"]

GEOJSON_FOLDER = "geojson"
CLASSIFICATION: dict[str, Any] = {"name": "Spheroid", "color": [255, 140, 0]}
_ID_NAMESPACE = uuid.UUID("6f1c1b1e-5d0a-4c59-9a36-2f1d9b1e5c21")


def write_geojson(images: Sequence[ExportImage], out_dir: Path) -> list[Path]:
    """Write ``out_dir/geojson/<stem>.geojson`` for every image; return the paths in image order."""
    folder = out_dir / GEOJSON_FOLDER
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise ExportError(f"{folder}: could not create the folder: {error.strerror or error}") from error
    return [
        atomic_write(
            folder / f"{image.stem}.geojson", json_bytes(json_safe(feature_collection(image)), indent=1)
        )
        for image in images
    ]


def feature_collection(image: ExportImage) -> dict[str, Any]:
    """The FeatureCollection of one image as plain Python data (see the module docstring)."""
    segmentation = image.segmentation
    features = []
    for index, spheroid in enumerate(segmentation.spheroids):
        measurements = {
            name: value for name, value in image.metric_values(index).items() if value is not None
        }
        rings = [_closed(spheroid.exterior, exterior=True)]
        rings.extend(_closed(hole, exterior=False) for hole in spheroid.holes)
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(_ID_NAMESPACE, f"{image.stem}/{index + 1}")),
                "geometry": {"type": "Polygon", "coordinates": rings},
                "properties": {
                    "objectType": "annotation",
                    "classification": dict(CLASSIFICATION),
                    "isLocked": False,
                    "spheroid_id": index + 1,
                    "touches_border": image.touches_border(index),
                    "measurements": measurements,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "spheroseg": {
            "image_name": segmentation.image_name,
            **provenance(segmentation),
        },
        "features": features,
    }


def _closed(ring: Ring, *, exterior: bool) -> list[list[float]]:
    """The ring as closed GeoJSON positions, oriented by the right-hand rule (see the module docstring)."""
    points = [[float(x), float(y)] for x, y in ring]
    if len(points) >= 3 and shapely.is_ccw(shapely.linearrings(points)) != exterior:
        points = points[:1] + points[:0:-1]  # reversed from the same first vertex, as orient_rings does
    if points and points[0] != points[-1]:
        points.append(list(points[0]))
    return points
