"""Exports of segmentations (COCO, CSV, XLSX, label masks, GeoJSON) and import of COCO and GeoJSON.

:func:`write_exports` writes, into one folder::

    annotations.coco.json     all images; holes-free spheroids as polygons, spheroids with holes as RLE
    metrics.csv               one row per spheroid (columns: cluster.exports.tables.METRIC_COLUMNS)
    metrics.xlsx              the same in sheet "metrics", plus sheet "images" with one row per image
    masks/<stem>.png          label image per image: 0 background, k = spheroid k; 8-bit, 16-bit if > 255
    geojson/<stem>.geojson    FeatureCollection per image, holes as inner rings, properties as QuPath reads

Decisions shared by all formats:

- Coordinates are ``(x, y)`` image pixels with the origin at the top-left corner of the top-left pixel.
- Spheroid ``k`` of an image (1-based, in ``Segmentation.spheroids`` order) is ``spheroid_id`` ``k`` in the
  tables, label ``k`` in the mask, the ``k``-th annotation of that image in COCO, the ``k``-th feature in
  GeoJSON. Images are numbered from 1 in input order (the COCO image id).
- ``<stem>`` is ``Segmentation.stem`` made safe as a file name; when two images share a stem (regardless of
  case) the first keeps it and later ones get ``_2``, ``_3``, … (see :func:`files.unique_stems`). The
  tables carry the stem used in the column ``file_stem``.
- Metrics come from each spheroid; a spheroid without metrics is measured
  (:func:`cluster.metrics.measure`) during the export. Unknown values (µm without a pixel size) are empty
  cells in the tables, ``null`` in COCO, left out of GeoJSON measurements.
- Every file is written atomically (a temporary file in the same folder, then :func:`os.replace`).
  Existing files with the same names are replaced; other files in the folder are left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from cluster.exceptions import ExportError
from cluster.exports.coco import write_coco
from cluster.exports.coco_reader import read_coco
from cluster.exports.geojson import write_geojson
from cluster.exports.geojson_reader import read_geojson
from cluster.exports.masks import write_masks
from cluster.exports.records import ExportImage, prepare_images
from cluster.exports.tables import METRIC_COLUMNS, write_csv, write_xlsx
from cluster.segmentation import Segmentation

__all__ = ["ALL_FORMATS", "METRIC_COLUMNS", "read_coco", "read_geojson", "write_exports"]

ALL_FORMATS: tuple[str, ...] = ("coco", "csv", "xlsx", "masks", "geojson")

_WRITERS: dict[str, Callable[[Sequence[ExportImage], Path], list[Path]]] = {
    "coco": write_coco,
    "csv": write_csv,
    "xlsx": write_xlsx,
    "masks": write_masks,
    "geojson": write_geojson,
}


def write_exports(
    segmentations: Sequence[Segmentation],
    out_dir: Path,
    formats: Collection[str] = ALL_FORMATS,
) -> dict[str, list[Path]]:
    """Write the chosen formats of ``segmentations`` into ``out_dir`` (created if missing).

    Returns the paths written per format, formats in :data:`ALL_FORMATS` order, paths in image order.
    Raises :class:`ExportError` for an unknown format name (naming the valid ones), an image without a
    positive size, or a file that cannot be written (naming it); nothing is written when the arguments
    are wrong.
    """
    chosen = _chosen_formats(formats)
    images = prepare_images(segmentations)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(
            f"{out_dir}: could not create the export folder: {error.strerror or error}"
        ) from error
    return {name: _WRITERS[name](images, out_dir) for name in chosen}


def _chosen_formats(formats: Collection[str]) -> list[str]:
    names = {formats} if isinstance(formats, str) else set(formats)
    unknown = sorted(str(name) for name in names if name not in _WRITERS)
    if unknown:
        listed = ", ".join(map(repr, unknown))
        raise ExportError(f"unknown export format {listed}; valid formats are {', '.join(ALL_FORMATS)}")
    return [name for name in ALL_FORMATS if name in names]
