"""Reading COCO instance-segmentation JSON back into segmentations.

- Every image becomes a :class:`Segmentation` (in file order, images without annotations included), with
  pixel size, model and parameters when the file carries our extra image keys.
- If a category is named ``spheroid`` (any case), only its annotations are read and the others are skipped
  (logged); otherwise every annotation is a spheroid.
- A polygon annotation (``segmentation: [[x1, y1, ...], ...]``) means, as in pycocotools, the *union* of its
  polygons: polygons that overlap merge, one inside another adds nothing (COCO polygons cannot make holes),
  separate ones become separate spheroids. Each polygon is repaired if it crosses itself.
- An RLE annotation (compressed string or uncompressed list ``counts``) is decoded with pycocotools and
  traced with :func:`cluster.polygons.mask_to_spheroids`: one spheroid per connected part, holes included,
  simplified at ``tolerance`` pixels (by default as outlines from segmentation are). Where the annotation
  keeps the exact outline our exports write beside it (``attributes.rings``: exterior, then holes) and
  that outline rasterises to the very mask, the outline is read instead, every vertex as written; rings
  that disagree with the mask (the mask was edited by another tool) are ignored, with a log line.
- Spheroids of one annotation keep the annotations' order; their metrics are computed with
  :func:`cluster.metrics.measure` (the file's stored metrics are not trusted).

Any problem with the content raises :class:`AnnotationImportError` naming the file and the place, e.g.
``annotations.json: annotation 12: ring 1: a ring needs at least 3 points, got 2``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cluster.exceptions import AnnotationImportError
from cluster.exports.reading import (
    InvalidAnnotation,
    expect_dict,
    expect_int,
    expect_list,
    expect_str,
    json_type,
    load_json,
    measured,
    member,
    optional_pixel_size,
    optional_str,
    ring_from_flat,
    spheroids_from_rings,
    union_of,
)
from cluster.exports.rle import decode_rle
from cluster.polygons import DEFAULT_SIMPLIFY_TOLERANCE, mask_to_spheroids, spheroid_to_mask
from cluster.segmentation import Segmentation, Spheroid

__all__ = ["read_coco"]

logger = logging.getLogger(__name__)


def read_coco(path: str | Path, *, tolerance: float = DEFAULT_SIMPLIFY_TOLERANCE) -> list[Segmentation]:
    """The segmentations of every image in a COCO JSON file (see the module docstring).

    ``tolerance`` (pixels) simplifies outlines traced from RLE masks; 0 keeps them exact, so that
    rasterising them gives the decoded mask back pixel for pixel.
    """
    path = Path(path)
    document = load_json(path)
    try:
        return _segmentations(document, path, tolerance)
    except InvalidAnnotation as problem:
        raise AnnotationImportError(f"{path}: {problem}") from None


def _segmentations(document: object, path: Path, tolerance: float) -> list[Segmentation]:
    root = expect_dict(document, "top level")
    images = expect_list(member(root, "images", "top level"), "images")
    annotations = expect_list(member(root, "annotations", "top level"), "annotations")
    by_id: dict[int, Segmentation] = {}
    for index, entry in enumerate(images):
        image_id, segmentation = _image(entry, index)
        if image_id in by_id:
            raise InvalidAnnotation(f"image {image_id}: the id is used by two images")
        by_id[image_id] = segmentation
    wanted = _spheroid_category(root.get("categories"))
    skipped = 0
    for index, entry in enumerate(annotations):
        annotation = expect_dict(entry, f"annotations[{index}]")
        place = _place(annotation, index)
        if wanted is not None and annotation.get("category_id") != wanted:
            skipped += 1
            continue
        image_id = expect_int(member(annotation, "image_id", place), f"{place}: image_id")
        target = by_id.get(image_id)
        if target is None:
            raise InvalidAnnotation(f"{place}: image_id {image_id} is not the id of any image")
        shape = member(annotation, "segmentation", place)
        spheroids = _kept_rings(annotation, shape, target, place) or _spheroids(
            shape, target, place, tolerance
        )
        target.spheroids.extend(measured(spheroids, target.pixel_size_um, place))
    if skipped:
        logger.warning("%s: skipped %d annotations that are not in the 'spheroid' category", path, skipped)
    return list(by_id.values())


def _image(entry: object, index: int) -> tuple[int, Segmentation]:
    image = expect_dict(entry, f"images[{index}]")
    place = f"images[{index}]"
    image_id = expect_int(member(image, "id", place), f"{place}: id")
    place = f"image {image_id}"
    parameters = image.get("parameters")
    version = image.get("segmentation_version")
    segmentation = Segmentation(
        image_name=expect_str(member(image, "file_name", place), f"{place}: file_name"),
        width=expect_int(member(image, "width", place), f"{place}: width", minimum=1),
        height=expect_int(member(image, "height", place), f"{place}: height", minimum=1),
        pixel_size_um=optional_pixel_size(image, "pixel_size_um", place),
        model_name=optional_str(image, "model_name", place),
        model_version=optional_str(image, "model_version", place),
        parameters=expect_dict(parameters, f"{place}: parameters") if parameters is not None else {},
        version=1 if version is None else expect_int(version, f"{place}: segmentation_version", minimum=1),
    )
    return image_id, segmentation


def _spheroid_category(categories: object) -> int | None:
    """The id of the category named "spheroid", or ``None`` to take every annotation."""
    if not isinstance(categories, list):
        return None
    for category in categories:
        if isinstance(category, dict) and str(category.get("name", "")).casefold() == "spheroid":
            identifier = category.get("id")
            return identifier if isinstance(identifier, int) else None
    return None


def _place(annotation: dict[str, Any], index: int) -> str:
    identifier = annotation.get("id")
    if isinstance(identifier, int | str) and not isinstance(identifier, bool):
        return f"annotation {identifier}"
    return f"annotations[{index}]"


def _spheroids(shape: object, segmentation: Segmentation, place: str, tolerance: float) -> list[Spheroid]:
    place = f"{place}: segmentation"
    if isinstance(shape, list):
        return _from_polygons(shape, place)
    if isinstance(shape, dict):
        return _from_rle(shape, segmentation, place, tolerance)
    raise InvalidAnnotation(
        f"{place}: expected polygons (an array) or RLE (an object), got {json_type(shape)}"
    )


def _kept_rings(
    annotation: dict[str, Any], shape: object, segmentation: Segmentation, place: str
) -> list[Spheroid] | None:
    """The exact outline kept in ``attributes.rings`` beside an RLE mask, if it gives that mask."""
    attributes = annotation.get("attributes")
    if not (isinstance(shape, dict) and isinstance(attributes, dict) and "rings" in attributes):
        return None
    try:
        rings = expect_list(attributes["rings"], f"{place}: attributes: rings")
        parsed = [ring_from_flat(ring, f"{place}: attributes: rings[{n}]") for n, ring in enumerate(rings)]
        if not parsed:
            return None
        spheroids = spheroids_from_rings(parsed[0], parsed[1:], place)
        size = (segmentation.height, segmentation.width)
        drawn = np.any([spheroid_to_mask(spheroid, size) for spheroid in spheroids], axis=0)
        mask = _mask(shape, segmentation, f"{place}: segmentation")
    except InvalidAnnotation as problem:
        logger.warning("%s: attributes.rings ignored: %s", place, problem)
        return None
    if not np.array_equal(drawn, mask):
        logger.info("%s: attributes.rings do not give the RLE mask; the mask is read", place)
        return None
    return spheroids


def _from_polygons(polygons: list[Any], place: str) -> list[Spheroid]:
    if not polygons:
        raise InvalidAnnotation(f"{place}: the polygon list is empty")
    pieces: list[Spheroid] = []
    for number, polygon in enumerate(polygons):
        ring_place = f"{place}: polygon {number}" if len(polygons) > 1 else place
        pieces.extend(spheroids_from_rings(ring_from_flat(polygon, ring_place), (), ring_place))
    spheroids = union_of(pieces, place)
    if len(spheroids) > 1:
        logger.info("%s: polygons in %d separate parts, read as that many spheroids", place, len(spheroids))
    return spheroids


def _from_rle(
    rle: dict[str, Any], segmentation: Segmentation, place: str, tolerance: float
) -> list[Spheroid]:
    spheroids = mask_to_spheroids(_mask(rle, segmentation, place), tolerance)
    if not spheroids:
        logger.warning("%s: the RLE mask is empty; no spheroid read", place)
    return spheroids


def _mask(rle: dict[str, Any], segmentation: Segmentation, place: str) -> NDArray[np.bool_]:
    size = expect_list(member(rle, "size", place), f"{place}: size")
    if len(size) != 2:
        raise InvalidAnnotation(f"{place}: size: expected [height, width], got {len(size)} numbers")
    height, width = (expect_int(value, f"{place}: size", minimum=1) for value in size)
    if (height, width) != (segmentation.height, segmentation.width):
        raise InvalidAnnotation(
            f"{place}: the RLE is {height} x {width} (height x width), but the image is "
            f"{segmentation.height} x {segmentation.width}"
        )
    counts = member(rle, "counts", place)
    if isinstance(counts, list):
        counts = [expect_int(value, f"{place}: counts", minimum=0) for value in counts]
    elif not isinstance(counts, str):
        raise InvalidAnnotation(f"{place}: counts: expected a string or an array, got {json_type(counts)}")
    try:
        return decode_rle(counts, height, width)
    except ValueError as error:
        raise InvalidAnnotation(f"{place}: counts: {error}") from None
