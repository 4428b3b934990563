"""Metrics tables: ``metrics.csv`` and ``metrics.xlsx``, one row per spheroid.

Columns come in the order of :data:`METRIC_COLUMNS`: ``image`` (the image name), ``spheroid_id`` (1-based
per image, the label value in the mask), ``touches_border``, ``confidence`` (the segmenter's, empty where
none was given), the commonly used metrics, the other :class:`SpheroidMetrics`
fields, ``model_name``, ``model_version``, and last ``image_id`` (the COCO image id) and ``file_stem`` (the
stem of the image's mask and GeoJSON files, which differs from the image name's when two images share a
stem). Units are in the names: ``_px``/``_um``/``_um2``; ratios have none. A value that is unknown (a
micrometre value without a pixel size, a metric that could not be computed) is an empty cell, never 0 or
NaN.

The CSV is UTF-8 (no byte-order mark), comma-separated, with a header row; numbers are written with full
precision. Text that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return: an image name, a model name typed by an editor) gets a leading ``'``, as OWASP
recommends, so opening another member's export runs nothing; numbers are never quoted this way.

The workbook has a sheet ``metrics`` (the same table; numbers stored as numbers, header frozen) and a sheet
``images`` with one row per image (:data:`IMAGE_COLUMNS`), images without spheroids included.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from cluster.exceptions import ExportError
from cluster.exports.files import atomic_write
from cluster.exports.records import ExportImage
from cluster.metrics import SpheroidMetrics

__all__ = [
    "CSV_FILE_NAME",
    "IMAGE_COLUMNS",
    "METRIC_COLUMNS",
    "XLSX_FILE_NAME",
    "image_rows",
    "metric_rows",
    "write_csv",
    "write_xlsx",
]

_XLSX_MAX_ROWS = 1_048_576
"""Rows in one Excel worksheet, the header row included."""

CSV_FILE_NAME = "metrics.csv"
XLSX_FILE_NAME = "metrics.xlsx"

Cell = str | int | float | None
Row = list[Cell]

_LEADING_COLUMNS = (
    "image",
    "spheroid_id",
    "touches_border",
    "confidence",
    "area_px",
    "area_um2",
    "perimeter_px",
    "perimeter_um",
    "equivalent_diameter_px",
    "equivalent_diameter_um",
    "circularity",
    "compactness",
    "sphericity",
    "convexity",
    "solidity",
    "extent",
    "feret_max_px",
    "feret_min_px",
    "aspect_ratio",
    "major_axis_px",
    "minor_axis_px",
    "orientation_deg",
    "centroid_x",
    "centroid_y",
    "hole_count",
    "hole_area_px",
)
METRIC_COLUMNS: tuple[str, ...] = (
    *_LEADING_COLUMNS,
    *(name for name in SpheroidMetrics.names() if name not in _LEADING_COLUMNS),
    "model_name",
    "model_version",
    "image_id",
    "file_stem",
)
IMAGE_COLUMNS: tuple[str, ...] = (
    "image",
    "width",
    "height",
    "pixel_size_um",
    "spheroid_count",
    "model",
    "model_version",
    "image_id",
    "file_stem",
)


def metric_rows(images: Sequence[ExportImage]) -> list[Row]:
    """One row per spheroid, in image then spheroid order, values in :data:`METRIC_COLUMNS` order."""
    rows: list[Row] = []
    for image in images:
        segmentation = image.segmentation
        for index in range(len(segmentation.spheroids)):
            values: dict[str, Cell] = dict(image.metric_values(index))
            values.update(
                image=segmentation.image_name,
                spheroid_id=index + 1,
                touches_border=image.touches_border(index),
                model_name=segmentation.model_name,
                model_version=segmentation.model_version,
                image_id=image.image_id,
                file_stem=image.stem,
            )
            rows.append([values[column] for column in METRIC_COLUMNS])
    return rows


def image_rows(images: Sequence[ExportImage]) -> list[Row]:
    """One row per image, values in :data:`IMAGE_COLUMNS` order."""
    return [
        [
            image.segmentation.image_name,
            image.segmentation.width,
            image.segmentation.height,
            image.segmentation.pixel_size_um,
            len(image.segmentation.spheroids),
            image.segmentation.model_name,
            image.segmentation.model_version,
            image.image_id,
            image.stem,
        ]
        for image in images
    ]


def write_csv(images: Sequence[ExportImage], out_dir: Path) -> list[Path]:
    """Write ``out_dir/metrics.csv``; return its path in a list."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(METRIC_COLUMNS)
    writer.writerows([_csv_text(value) for value in row] for row in metric_rows(images))
    return [atomic_write(out_dir / CSV_FILE_NAME, buffer.getvalue().encode("utf-8"))]


def write_xlsx(images: Sequence[ExportImage], out_dir: Path) -> list[Path]:
    """Write ``out_dir/metrics.xlsx`` (sheets ``metrics`` and ``images``); return its path in a list."""
    rows = metric_rows(images)
    if len(rows) >= _XLSX_MAX_ROWS:
        raise ExportError(
            f"{out_dir / XLSX_FILE_NAME}: {len(rows)} spheroids do not fit in one worksheet "
            f"(at most {_XLSX_MAX_ROWS - 1:,} rows); export the CSV instead"
        )
    workbook = Workbook(write_only=True)
    _add_sheet(workbook, "metrics", METRIC_COLUMNS, rows)
    _add_sheet(workbook, "images", IMAGE_COLUMNS, image_rows(images))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return [atomic_write(out_dir / XLSX_FILE_NAME, buffer.getvalue())]


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make Excel, LibreOffice or Google Sheets read a CSV cell as a formula."""


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        # Only text is escaped: -3.5 in a numeric column is a float here and stays a number.
        return "'" + value if value.startswith(_FORMULA_STARTS) else value
    return repr(value) if isinstance(value, float) else str(value)


def _add_sheet(workbook: Workbook, title: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
    sheet = workbook.create_sheet(title)
    sheet.freeze_panes = "A2"
    for number, column in enumerate(columns, start=1):
        width = _width(column, [row[number - 1] for row in rows])
        sheet.column_dimensions[get_column_letter(number)].width = width
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, column)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])


def _width(column: str, values: Sequence[Cell]) -> float:
    """Wide enough for the header and for text values (up to 60 characters); 12 for numbers."""
    text_lengths = [len(value) for value in values[:2000] if isinstance(value, str)]
    return float(min(60, max([len(column) + 2, 12, *(length + 2 for length in text_lengths)])))


def _xlsx_cell(sheet: Any, value: Cell) -> object:
    if not isinstance(value, str):
        return value
    # Text goes in as text even when it starts with "=" (no formula injection from image names).
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"
    return cell
