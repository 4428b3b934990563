"""metrics.csv and metrics.xlsx: columns, units, empty cells for unknown values, the images sheet."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from cluster.exports import METRIC_COLUMNS, write_exports
from cluster.exports.tables import IMAGE_COLUMNS
from cluster.metrics import SpheroidMetrics
from cluster.segmentation import Segmentation
from tests.cluster.test_exports import make_segmentation

LEADING = [
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
]
UM_COLUMNS = [column for column in METRIC_COLUMNS if column.endswith(("_um", "_um2"))]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_csv_columns_in_order(tmp_path: Path) -> None:
    write_exports([make_segmentation()], tmp_path, formats=["csv"])
    header, rows = read_csv(tmp_path / "metrics.csv")
    assert header == list(METRIC_COLUMNS)
    assert header[: len(LEADING)] == LEADING
    metric_fields = list(SpheroidMetrics.__dataclass_fields__)
    rest = [name for name in metric_fields if name not in LEADING]
    assert header[len(LEADING) : len(LEADING) + len(rest)] == rest
    assert header[len(LEADING) + len(rest) : len(LEADING) + len(rest) + 2] == ["model_name", "model_version"]
    assert set(metric_fields) <= set(header)
    assert rows[0]["image"] == "plate1/A01.tif" and rows[0]["model_name"] == "resunet"
    assert [row["spheroid_id"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[0]["hole_count"] == "2" and rows[1]["hole_count"] == "0"


def test_csv_unknown_micrometre_values_are_empty_cells(tmp_path: Path) -> None:
    write_exports([make_segmentation(pixel_size_um=None)], tmp_path, formats=["csv"])
    _, rows = read_csv(tmp_path / "metrics.csv")
    for row in rows:
        assert all(row[column] == "" for column in UM_COLUMNS)
        assert float(row["area_px"]) > 0
        assert row["hole_area_px"] != ""  # zero is a known value, written as 0
    assert (tmp_path / "metrics.csv").read_text().count("nan") == 0


def test_csv_numbers_are_exact_and_micrometres_follow_the_pixel_size(tmp_path: Path) -> None:
    segmentation = make_segmentation(pixel_size_um=0.5)
    write_exports([segmentation], tmp_path, formats=["csv"])
    _, rows = read_csv(tmp_path / "metrics.csv")
    metrics = segmentation.spheroids[0].metrics
    assert metrics is not None
    assert float(rows[0]["area_px"]) == metrics.area_px
    assert float(rows[0]["area_um2"]) == pytest.approx(metrics.area_px * 0.25)
    assert float(rows[0]["perimeter_um"]) == pytest.approx(metrics.perimeter_px * 0.5)


def test_xlsx_metrics_sheet(tmp_path: Path) -> None:
    segmentation = make_segmentation(name="=HYPERLINK(1).tif", pixel_size_um=None)
    write_exports([segmentation], tmp_path, formats=["xlsx"])
    workbook = load_workbook(tmp_path / "metrics.xlsx")
    assert workbook.sheetnames == ["metrics", "images"]
    sheet = workbook["metrics"]
    assert sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(METRIC_COLUMNS)
    assert all(cell.font.bold for cell in sheet[1])
    assert len(rows) == 1 + len(segmentation.spheroids)
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["image"] == "=HYPERLINK(1).tif", "text stays text, never a formula"
    assert sheet["A2"].data_type == "s"
    assert isinstance(first["area_px"], float) and isinstance(first["spheroid_id"], int)
    assert isinstance(first["hole_count"], int)
    assert all(first[column] is None for column in UM_COLUMNS)
    assert sheet.column_dimensions["A"].width >= len("=HYPERLINK(1).tif")


def test_xlsx_images_sheet_lists_every_image(tmp_path: Path) -> None:
    images = [
        make_segmentation("A01.tif", pixel_size_um=0.65),
        Segmentation(
            image_name="empty.tif", width=64, height=48, model_name="resunet", model_version="1.2.0"
        ),
    ]
    write_exports(images, tmp_path, formats=["xlsx"])
    sheet = load_workbook(tmp_path / "metrics.xlsx")["images"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0][:6]) == ["image", "width", "height", "pixel_size_um", "spheroid_count", "model"]
    assert list(rows[0]) == list(IMAGE_COLUMNS)
    assert rows[1][:6] == ("A01.tif", 128, 96, 0.65, 4, "resunet")
    assert rows[2][:6] == ("empty.tif", 64, 48, None, 0, "resunet")
    assert sheet.freeze_panes == "A2"


def test_csv_escapes_formula_text_but_keeps_negative_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cluster.exports import tables

    row: list[str | int | float | None] = [None] * len(METRIC_COLUMNS)
    row[METRIC_COLUMNS.index("image")] = "-2+3.tif"
    row[METRIC_COLUMNS.index("model_name")] = "\t=1+1"
    row[METRIC_COLUMNS.index("orientation_deg")] = -3.5
    row[METRIC_COLUMNS.index("spheroid_id")] = -1
    monkeypatch.setattr(tables, "metric_rows", lambda images: [row])
    tables.write_csv([], tmp_path)
    _, rows = read_csv(tmp_path / "metrics.csv")
    assert rows[0]["image"] == "'-2+3.tif" and rows[0]["model_name"] == "'\t=1+1"
    assert rows[0]["orientation_deg"] == "-3.5" and rows[0]["spheroid_id"] == "-1"
