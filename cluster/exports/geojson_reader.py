"""Reading GeoJSON outlines (ours, QuPath's, or any other) back into a segmentation of one image.

Accepted: a ``FeatureCollection``, a JSON array of features (QuPath's default export), a single ``Feature``
or a bare geometry. Each ``Polygon`` becomes a spheroid (first ring the exterior, the others its holes; the
closing position and the orientation of rings do not matter); each polygon of a ``MultiPolygon`` becomes a
spheroid; a ``GeometryCollection`` is read member by member. Other geometries (points, lines) and features
without a geometry are skipped with a logged warning. Coordinates are image pixels, x right, y down, origin
at the top-left corner of the top-left pixel, as QuPath writes them. A self-crossing polygon is repaired
(:func:`cluster.polygons.repair_spheroid`), and metrics are computed with :func:`cluster.metrics.measure`.

Any problem with the content raises :class:`AnnotationImportError` naming the file and the place, e.g.
``cells.geojson: feature 3: ring 1: a ring needs at least 3 points, got 2``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from cluster.exceptions import AnnotationImportError
from cluster.exports.reading import (
    InvalidAnnotation,
    expect_dict,
    expect_int,
    expect_list,
    expect_str,
    load_json,
    measured,
    member,
    optional_pixel_size,
    optional_str,
    ring_from_positions,
    spheroids_from_rings,
)
from cluster.segmentation import Segmentation, Spheroid

__all__ = ["read_geojson"]

logger = logging.getLogger(__name__)

_SKIPPED_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString"}


def read_geojson(
    path: str | Path,
    image_name: str | None = None,
    width: int | None = None,
    height: int | None = None,
    *,
    pixel_size_um: float | None = None,
) -> Segmentation:
    """The spheroids of one image from a GeoJSON file (see the module docstring).

    Arguments left ``None`` come from the file's ``spheroseg`` member when it has one (our exports do);
    otherwise the image name is the file name without ``.geojson``/``.json``, and width and height are the
    smallest that hold every outline (0 when there are none). The pixel size is needed for µm metrics.
    """
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel_size_um must be a positive number of micrometres, got {pixel_size_um!r}")
    path = Path(path)
    document = load_json(path)
    try:
        return _segmentation(document, path, image_name, width, height, pixel_size_um)
    except InvalidAnnotation as problem:
        raise AnnotationImportError(f"{path}: {problem}") from None


def _segmentation(
    document: object,
    path: Path,
    image_name: str | None,
    width: int | None,
    height: int | None,
    pixel_size_um: float | None,
) -> Segmentation:
    metadata = _metadata(document)
    if pixel_size_um is None:
        pixel_size_um = optional_pixel_size(metadata, "pixel_size_um", "spheroseg")
    spheroids: list[Spheroid] = []
    for geometry, place in _geometries(document):
        spheroids.extend(measured(_read_geometry(geometry, place), pixel_size_um, place))
    parameters = metadata.get("parameters")
    version = metadata.get("segmentation_version")
    return Segmentation(
        image_name=image_name or optional_str(metadata, "image_name", "spheroseg") or _name_from(path),
        width=width if width is not None else _size(metadata, "width", spheroids, axis=0),
        height=height if height is not None else _size(metadata, "height", spheroids, axis=1),
        spheroids=spheroids,
        pixel_size_um=pixel_size_um,
        model_name=optional_str(metadata, "model_name", "spheroseg"),
        model_version=optional_str(metadata, "model_version", "spheroseg"),
        parameters=expect_dict(parameters, "spheroseg: parameters") if parameters is not None else {},
        version=1 if version is None else expect_int(version, "spheroseg: segmentation_version", minimum=1),
    )


def _metadata(document: object) -> dict[str, Any]:
    if isinstance(document, dict) and document.get("spheroseg") is not None:
        return expect_dict(document["spheroseg"], "spheroseg")
    return {}


def _geometries(document: object) -> list[tuple[Any, str]]:
    """Every feature's geometry with its place in the file, features without geometry left out."""
    if isinstance(document, list):
        features = document
    else:
        root = expect_dict(document, "top level")
        kind = expect_str(member(root, "type", "top level"), "top level: type")
        if kind == "FeatureCollection":
            features = expect_list(member(root, "features", "top level"), "features")
        elif kind == "Feature":
            features = [root]
        else:
            return [(root, "geometry")]
    found: list[tuple[Any, str]] = []
    for index, entry in enumerate(features):
        place = f"feature {index}"
        feature = expect_dict(entry, place)
        kind = expect_str(member(feature, "type", place), f"{place}: type")
        if kind != "Feature":
            raise InvalidAnnotation(f"{place}: type: expected 'Feature', got {kind!r}")
        geometry = member(feature, "geometry", place)
        if geometry is None:
            logger.warning("%s: has no geometry; skipped", place)
            continue
        found.append((geometry, place))
    return found


def _read_geometry(value: object, place: str) -> list[Spheroid]:
    geometry = expect_dict(value, f"{place}: geometry")
    kind = expect_str(member(geometry, "type", f"{place}: geometry"), f"{place}: geometry: type")
    if kind == "GeometryCollection":
        members = expect_list(member(geometry, "geometries", place), f"{place}: geometries")
        return [
            spheroid
            for index, part in enumerate(members)
            for spheroid in _read_geometry(part, f"{place}: geometry {index}")
        ]
    if kind in _SKIPPED_TYPES:
        logger.warning("%s: a %s is not an outline; skipped", place, kind)
        return []
    if kind not in ("Polygon", "MultiPolygon"):
        raise InvalidAnnotation(f"{place}: geometry: type: {kind!r} is not a GeoJSON geometry type")
    coordinates = expect_list(member(geometry, "coordinates", place), f"{place}: coordinates")
    if kind == "Polygon":
        return _polygon(coordinates, place)
    return [
        spheroid
        for index, polygon in enumerate(coordinates)
        for spheroid in _polygon(
            expect_list(polygon, f"{place}: polygon {index}"), f"{place}: polygon {index}"
        )
    ]


def _polygon(rings: list[Any], place: str) -> list[Spheroid]:
    if not rings:
        raise InvalidAnnotation(f"{place}: a polygon needs at least its exterior ring, got none")
    parsed = [ring_from_positions(ring, f"{place}: ring {index}") for index, ring in enumerate(rings)]
    return spheroids_from_rings(parsed[0], parsed[1:], place)


def _size(metadata: dict[str, Any], key: str, spheroids: list[Spheroid], axis: int) -> int:
    if metadata.get(key) is not None:
        return expect_int(metadata[key], f"spheroseg: {key}", minimum=1)
    extent = max((float(spheroid.exterior[:, axis].max()) for spheroid in spheroids), default=0.0)
    return max(0, math.ceil(extent))


def _name_from(path: Path) -> str:
    name = path.name
    for suffix in (".geojson", ".json"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
