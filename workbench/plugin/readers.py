"""Opening ``*.coco.json`` and QuPath ``*.geojson`` files in napari as Shapes layers (npe2 readers).

The files are read by the core (:func:`cluster.read_coco`, :func:`cluster.read_geojson`), the same readers
the server uses, so a file opens in napari as it would import into a project:

- COCO: one layer per image of the file. Holes: COCO polygons cannot have them, so our exports write a
  spheroid with holes as RLE (the mask, holes included, as pycocotools decodes it) plus its exact rings in
  ``attributes.rings``, which the core reads back when they match the mask; other files' RLE masks are
  traced into outlines with their holes. Polygon annotations are read as they are.
- GeoJSON: one layer; each Polygon's inner rings are its holes, each MultiPolygon part a spheroid.

Each layer holds the metrics (computed again by the core, never trusted from the file) as features.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cluster import read_coco, read_geojson
from workbench.plugin.shapes import LayerData, shapes_layer

__all__ = ["COCO_SUFFIX", "GEOJSON_SUFFIX", "get_reader", "read_coco_layers", "read_geojson_layers"]

COCO_SUFFIX = ".coco.json"
GEOJSON_SUFFIX = ".geojson"

Reader = Callable[[str], list[LayerData]]


def get_reader(path: str | list[str]) -> Reader | None:
    """The reader for ``path`` (napari's ``get_reader`` hook), or ``None`` for a file this plugin does not
    read, so napari asks the next one."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    name = str(path).lower()
    if name.endswith(COCO_SUFFIX):
        return read_coco_layers
    if name.endswith(GEOJSON_SUFFIX):
        return read_geojson_layers
    return None


def read_coco_layers(path: str) -> list[LayerData]:
    """One Shapes layer per image in a COCO file; raises :class:`cluster.AnnotationImportError` naming
    the place in the file that is wrong."""
    return [shapes_layer(segmentation) for segmentation in read_coco(Path(path))]


def read_geojson_layers(path: str) -> list[LayerData]:
    """The Shapes layer of a GeoJSON file (ours or QuPath's)."""
    return [shapes_layer(read_geojson(Path(path)))]
