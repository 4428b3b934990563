"""What the COCO and GeoJSON readers share: loading JSON, checking values, turning rings into spheroids.

Checkers raise :class:`InvalidAnnotation` with the place in the file (``"annotation 12: ring 0: ..."``); each
reader turns it into :class:`AnnotationImportError` with the file name in front, so no other exception type
leaves a reader because of what a file holds.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon

from cluster.exceptions import AnnotationImportError, GeometryError, MetricError
from cluster.metrics import measure
from cluster.polygons import repair_spheroid
from cluster.segmentation import Ring, Spheroid, as_ring

__all__ = [
    "InvalidAnnotation",
    "expect_dict",
    "expect_int",
    "expect_list",
    "expect_number",
    "expect_str",
    "json_type",
    "load_json",
    "measured",
    "member",
    "optional_number",
    "optional_pixel_size",
    "optional_str",
    "ring_from_flat",
    "ring_from_positions",
    "spheroids_from_rings",
    "union_of",
]

logger = logging.getLogger(__name__)


class InvalidAnnotation(Exception):  # noqa: N818 - never leaves this package, see the module docstring
    """A problem at one place of an annotation file; the message starts with the place."""


def load_json(path: Path) -> Any:
    """The parsed JSON content of ``path``; :class:`AnnotationImportError` when unreadable or not JSON."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AnnotationImportError(f"{path}: cannot read the file: {error.strerror or error}") from error
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise AnnotationImportError(
            f"{path}: not a JSON file (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except (UnicodeDecodeError, RecursionError) as error:
        raise AnnotationImportError(f"{path}: not a JSON file ({error})") from None


def json_type(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def expect_dict(value: object, place: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidAnnotation(f"{place}: expected an object, got {json_type(value)}")
    return value


def expect_list(value: object, place: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidAnnotation(f"{place}: expected an array, got {json_type(value)}")
    return value


def member(obj: dict[str, Any], key: str, place: str) -> Any:
    """``obj[key]``, or :class:`InvalidAnnotation` saying the key is missing."""
    if key not in obj:
        raise InvalidAnnotation(f"{place}: the key {key!r} is missing")
    return obj[key]


def expect_number(value: object, place: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAnnotation(f"{place}: expected a finite number, got {_shown(value)}")
    return float(value)


def expect_int(value: object, place: str, *, minimum: int | None = None) -> int:
    """A whole number (``640`` or ``640.0``), at least ``minimum`` when given."""
    number = expect_number(value, place)
    if not number.is_integer() or (minimum is not None and number < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise InvalidAnnotation(f"{place}: expected a whole number{bound}, got {_shown(value)}")
    return int(number)


def expect_str(value: object, place: str) -> str:
    if not isinstance(value, str):
        raise InvalidAnnotation(f"{place}: expected a string, got {json_type(value)}")
    return value


def optional_number(obj: dict[str, Any], key: str, place: str) -> float | None:
    value = obj.get(key)
    return None if value is None else expect_number(value, f"{place}: {key}")


def optional_pixel_size(obj: dict[str, Any], key: str, place: str) -> float | None:
    """A pixel size in µm: a positive number, or ``None`` when absent or null."""
    size = optional_number(obj, key, place)
    if size is not None and size <= 0:
        raise InvalidAnnotation(f"{place}: {key}: expected a positive number of micrometres, got {size!r}")
    return size


def optional_str(obj: dict[str, Any], key: str, place: str) -> str:
    value = obj.get(key)
    return "" if value is None else expect_str(value, f"{place}: {key}")


def ring_from_flat(values: object, place: str) -> Ring:
    """A ring from COCO's flat ``[x1, y1, x2, y2, ...]``."""
    numbers = expect_list(values, place)
    if len(numbers) % 2:
        raise InvalidAnnotation(f"{place}: a polygon needs pairs of x, y, got {len(numbers)} numbers")
    coordinates = [expect_number(value, f"{place}: value {index}") for index, value in enumerate(numbers)]
    return _checked_ring(coordinates, place)


def ring_from_positions(values: object, place: str) -> Ring:
    """A ring from GeoJSON's ``[[x1, y1], [x2, y2], ...]`` (a third coordinate, z, is ignored)."""
    positions = expect_list(values, place)
    coordinates: list[float] = []
    for index, position in enumerate(positions):
        point = expect_list(position, f"{place}: position {index}")
        if len(point) < 2:
            raise InvalidAnnotation(f"{place}: position {index}: expected [x, y], got {len(point)} numbers")
        coordinates.extend(expect_number(value, f"{place}: position {index}") for value in point[:2])
    return _checked_ring(coordinates, place)


def spheroids_from_rings(exterior: Ring, holes: Sequence[Ring], place: str) -> list[Spheroid]:
    """Valid spheroids from one exterior and its holes (:func:`cluster.polygons.repair_spheroid`).

    A self-crossing ring may split into several spheroids; each is oriented as ``orient_rings`` does.
    """
    try:
        spheroids = repair_spheroid(exterior, holes)
    except GeometryError as error:
        raise InvalidAnnotation(f"{place}: {error}") from None
    if len(spheroids) > 1:
        logger.warning(
            "%s: the outline crosses itself; it was split into %d spheroids", place, len(spheroids)
        )
    return spheroids


def union_of(spheroids: Sequence[Spheroid], place: str) -> list[Spheroid]:
    """The spheroids covering the union of the areas of ``spheroids``: overlapping ones merge, one lying
    inside another disappears in it, separate ones stay separate (largest first)."""
    if len(spheroids) < 2:
        return list(spheroids)
    union = shapely.union_all([Polygon(spheroid.exterior, list(spheroid.holes)) for spheroid in spheroids])
    parts = [part for part in shapely.get_parts(union) if isinstance(part, Polygon) and not part.is_empty]
    merged: list[Spheroid] = []
    for part in sorted(parts, key=lambda polygon: polygon.area, reverse=True):
        exterior = as_ring(shapely.get_coordinates(part.exterior))
        holes = [as_ring(shapely.get_coordinates(ring)) for ring in part.interiors]
        merged.extend(spheroids_from_rings(exterior, holes, place))
    return merged


def measured(spheroids: Sequence[Spheroid], pixel_size_um: float | None, place: str) -> list[Spheroid]:
    """The spheroids with metrics; a spheroid whose metrics cannot be computed keeps none (logged)."""
    result: list[Spheroid] = []
    for spheroid in spheroids:
        try:
            result.append(spheroid.with_metrics(measure(spheroid, pixel_size_um)))
        except (MetricError, GeometryError) as error:
            logger.warning("%s: metrics not computed: %s", place, error)
            result.append(spheroid)
    return result


def _checked_ring(coordinates: list[float], place: str) -> Ring:
    ring = as_ring(np.asarray(coordinates, dtype=np.float64))
    if len(ring) < 3:
        raise InvalidAnnotation(f"{place}: a ring needs at least 3 points, got {len(ring)}")
    return ring


def _shown(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool) or value is None else ""
    return text if text and len(text) <= 40 else json_type(value)
