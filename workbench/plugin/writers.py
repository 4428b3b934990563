"""Saving Shapes layers as ``*.coco.json`` or QuPath ``*.geojson`` (npe2 writers).

The files are written by the core's exports (:func:`cluster.write_exports`), so they are exactly what a
project's export gives: COCO holds every layer given, one image each (a spheroid with holes as RLE, see
:mod:`workbench.plugin.readers`); GeoJSON holds one layer, holes as inner rings. Each shape is repaired
(a self-crossing outline splits) and measured by the core on the way. The file appears whole or not at
all: it is written in a temporary folder beside it, then moved into place.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cluster import Segmentation, write_exports
from workbench.plugin.readers import COCO_SUFFIX, GEOJSON_SUFFIX
from workbench.plugin.shapes import segmentation_of_layer

__all__ = ["write_coco", "write_geojson"]


def write_coco(path: str, layers: Sequence[tuple[Any, Mapping[str, Any], str]]) -> list[str]:
    """Write the Shapes layers among ``layers`` (napari's full layer data) as one COCO file."""
    segmentations = [segmentation_of_layer(data, meta) for data, meta, kind in layers if kind == "shapes"]
    target = _named(Path(path), COCO_SUFFIX)
    return [str(_write(segmentations, "coco", target))]


def write_geojson(path: str, data: Sequence[Any], meta: Mapping[str, Any]) -> list[str]:
    """Write one Shapes layer as a GeoJSON FeatureCollection QuPath imports."""
    target = _named(Path(path), GEOJSON_SUFFIX)
    return [str(_write([segmentation_of_layer(data, meta)], "geojson", target))]


def _named(path: Path, suffix: str) -> Path:
    """``path`` with the format's suffix (napari passes the name as typed in its save dialog)."""
    return path if path.name.lower().endswith(suffix) else path.with_name(path.name + suffix)


def _write(segmentations: Sequence[Segmentation], kind: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".spheroseg-") as folder:
        (written,) = write_exports(segmentations, Path(folder), [kind])[kind]
        written.replace(target)
    return target
