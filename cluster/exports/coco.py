"""COCO instance-segmentation JSON (``annotations.coco.json``) of all images in one file.

- ``images``: ``id`` (1-based), ``file_name`` (the image name as given), ``width``, ``height``, plus
  ``pixel_size_um``, ``model_name``, ``model_version``, ``parameters`` and ``segmentation_version``,
  which :func:`cluster.exports.read_coco` reads back and other COCO tools ignore.
- ``categories``: one, ``{"id": 1, "name": "spheroid"}``.
- ``annotations``: one per spheroid, in spheroid order, ``id`` counting from 1 across the file.
  A spheroid without holes is a polygon, ``segmentation: [[x1, y1, x2, y2, ...]]`` (the open exterior
  ring, in image pixels with the origin at the top-left corner of the top-left pixel). COCO polygons cannot
  have holes, so a spheroid with holes is its rasterised mask (:func:`cluster.polygons.spheroid_to_mask`)
  as compressed RLE, ``segmentation: {"size": [height, width], "counts": "..."}``: pycocotools'
  ``annToMask`` then gives exactly that mask, holes included. ``area`` is the polygon area (exterior minus
  holes, in pixels), ``bbox`` ``[x, y, w, h]`` the bounds of the exterior, ``iscrowd`` 0, and
  ``attributes`` holds ``spheroid_id``, ``touches_border`` (the outline reaches the image's edge, so the
  spheroid may be cut by it) and ``metrics`` (``null`` where unknown). A spheroid with holes also keeps
  its exact outline there, ``rings: [[x1, y1, ...], [hole 1], ...]`` (exterior first, flat like COCO
  polygons), which :func:`cluster.exports.read_coco` prefers to tracing the mask when the two agree, so
  a round trip keeps every vertex; tools that know only COCO use the RLE.
- ``info``: the exporter, the creation time and the models (name, version) that made the outlines.

pycocotools rasterises polygons by its own rule, which agrees with ``spheroid_to_mask`` pixel for pixel
on outlines traced along pixel edges (whole-number vertices, as masks give) and may differ by a pixel
along the boundary of other outlines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import shapely

from cluster.exports.files import atomic_write, json_bytes, json_safe
from cluster.exports.records import ExportImage, provenance
from cluster.exports.rle import encode_mask
from cluster.polygons import spheroid_to_mask
from cluster.segmentation import Spheroid

__all__ = ["COCO_FILE_NAME", "SPHEROID_CATEGORY", "coco_document", "write_coco"]

COCO_FILE_NAME = "annotations.coco.json"
SPHEROID_CATEGORY: dict[str, Any] = {"id": 1, "name": "spheroid", "supercategory": "spheroid"}


def write_coco(images: Sequence[ExportImage], out_dir: Path) -> list[Path]:
    """Write ``out_dir/annotations.coco.json``; return its path in a list."""
    document = coco_document(images)
    return [atomic_write(out_dir / COCO_FILE_NAME, json_bytes(json_safe(document)))]


def coco_document(images: Sequence[ExportImage], created: dt.datetime | None = None) -> dict[str, Any]:
    """The COCO document as plain Python data (see the module docstring for its layout)."""
    created = created or dt.datetime.now(dt.UTC)
    annotations: list[dict[str, Any]] = []
    for image in images:
        segmentation = image.segmentation
        for index, spheroid in enumerate(segmentation.spheroids):
            annotation: dict[str, Any] = {"id": len(annotations) + 1, "image_id": image.image_id}
            annotation.update(_shape(spheroid, segmentation.height, segmentation.width))
            annotation["attributes"] = {
                "spheroid_id": index + 1,
                "touches_border": image.touches_border(index),
                "metrics": image.metric_values(index),
            }
            if spheroid.holes:
                annotation["attributes"]["rings"] = [
                    [float(value) for value in ring.ravel()] for ring in (spheroid.exterior, *spheroid.holes)
                ]
            annotations.append(annotation)
    return {
        "info": _info(images, created),
        "licenses": [],
        "images": [_image(image) for image in images],
        "categories": [dict(SPHEROID_CATEGORY)],
        "annotations": annotations,
    }


def _info(images: Sequence[ExportImage], created: dt.datetime) -> dict[str, Any]:
    models: list[dict[str, str]] = []
    for image in images:
        model = {"name": image.segmentation.model_name, "version": image.segmentation.model_version}
        if model not in models:
            models.append(model)
    return {
        "description": "Spheroid outlines exported by SpheroSeg Workbench",
        "contributor": "SpheroSeg Workbench",
        "date_created": created.isoformat(timespec="seconds"),
        "year": created.year,
        "version": "1.0",
        "models": models,
    }


def _image(image: ExportImage) -> dict[str, Any]:
    segmentation = image.segmentation
    return {
        "id": image.image_id,
        "file_name": segmentation.image_name,
        **provenance(segmentation),
    }


def _shape(spheroid: Spheroid, height: int, width: int) -> dict[str, Any]:
    exterior = spheroid.exterior
    x_min, y_min = (float(value) for value in exterior.min(axis=0))
    x_max, y_max = (float(value) for value in exterior.max(axis=0))
    segmentation: list[list[float]] | dict[str, Any]
    if spheroid.holes:
        segmentation = encode_mask(spheroid_to_mask(spheroid, (height, width)))
    else:
        segmentation = [[float(value) for value in exterior.ravel()]]
    area = shapely.Polygon(exterior, [hole for hole in spheroid.holes if len(hole) >= 3]).area
    return {
        "category_id": SPHEROID_CATEGORY["id"],
        "segmentation": segmentation,
        "area": float(area),
        "bbox": [x_min, y_min, x_max - x_min, y_max - y_min],
        "iscrowd": 0,
    }
