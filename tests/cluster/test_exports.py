"""write_exports as a whole: formats, numbering shared by all formats, unique file names, atomic writes.

Also holds the shapes the other ``test_exports_*`` modules use.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from openpyxl import load_workbook
from PIL import Image
from skimage.draw import disk, ellipse

from cluster.exceptions import ExportError
from cluster.exports import ALL_FORMATS, write_exports
from cluster.exports.files import unique_stems
from cluster.metrics import measure
from cluster.polygons import mask_to_spheroids, spheroid_to_mask
from cluster.segmentation import Segmentation, Spheroid, as_ring

HEIGHT, WIDTH = 96, 128


def square(x0: float, y0: float, x1: float, y1: float) -> NDArray[np.float64]:
    return as_ring([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def blob_mask(shape: tuple[int, int] = (HEIGHT, WIDTH)) -> NDArray[np.bool_]:
    """An ellipse with two round holes, and a separate disc."""
    mask = np.zeros(shape, dtype=bool)
    mask[ellipse(40, 50, 30, 38, shape=shape, rotation=0.4)] = True
    mask[disk((35, 40), 7, shape=shape)] = False
    mask[disk((48, 64), 5, shape=shape)] = False
    mask[disk((80, 110), 10, shape=shape)] = True
    return mask


def shapes(tolerance: float = 0.0) -> list[Spheroid]:
    """Traced spheroids (one with two holes, one without) and hand-made ones (square, square with hole)."""
    traced = mask_to_spheroids(blob_mask(), tolerance=tolerance)
    handmade = [
        Spheroid(square(100, 5, 120, 25)),
        Spheroid(square(5, 70, 30, 92), holes=(square(12, 76, 20, 84),)),
    ]
    return [*traced, *handmade]


def measured(spheroids: list[Spheroid], pixel_size_um: float | None) -> list[Spheroid]:
    return [spheroid.with_metrics(measure(spheroid, pixel_size_um)) for spheroid in spheroids]


def make_segmentation(
    name: str = "plate1/A01.tif", pixel_size_um: float | None = 0.65, tolerance: float = 0.0
) -> Segmentation:
    return Segmentation(
        image_name=name,
        width=WIDTH,
        height=HEIGHT,
        spheroids=measured(shapes(tolerance), pixel_size_um),
        pixel_size_um=pixel_size_um,
        model_name="resunet",
        model_version="1.2.0",
        parameters={"threshold": 0.5, "min_area_px": np.int64(20)},
    )


def iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# -- tests -------------------------------------------------------------------------------------------------


def test_all_formats_written_and_listed(tmp_path: Path) -> None:
    segmentations = [make_segmentation("A01.tif"), make_segmentation("A02.tif", pixel_size_um=None)]
    written = write_exports(segmentations, tmp_path / "out")
    assert list(written) == list(ALL_FORMATS)
    assert written["coco"] == [tmp_path / "out" / "annotations.coco.json"]
    assert written["csv"] == [tmp_path / "out" / "metrics.csv"]
    assert written["xlsx"] == [tmp_path / "out" / "metrics.xlsx"]
    assert written["masks"] == [tmp_path / "out" / "masks" / f"A0{i}.png" for i in (1, 2)]
    assert written["geojson"] == [tmp_path / "out" / "geojson" / f"A0{i}.geojson" for i in (1, 2)]
    assert all(path.is_file() for paths in written.values() for path in paths)
    assert not list((tmp_path / "out").rglob("*.tmp")), "no temporary file is left behind"


def test_only_chosen_formats_are_written(tmp_path: Path) -> None:
    written = write_exports([make_segmentation()], tmp_path, formats={"geojson", "csv"})
    assert list(written) == ["csv", "geojson"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["geojson", "metrics.csv"]


def test_a_single_format_name_as_a_string_is_one_format(tmp_path: Path) -> None:
    assert list(write_exports([make_segmentation()], tmp_path, formats="csv")) == ["csv"]


def test_unknown_format_names_the_valid_ones_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as caught:
        write_exports([make_segmentation()], tmp_path / "out", formats=["coco", "tiff"])
    message = str(caught.value)
    assert "'tiff'" in message
    for name in ALL_FORMATS:
        assert name in message
    assert not (tmp_path / "out").exists()


def test_image_without_size_is_refused(tmp_path: Path) -> None:
    bad = Segmentation(image_name="broken.tif", width=0, height=10)
    with pytest.raises(ExportError, match=r"broken\.tif: width and height"):
        write_exports([bad], tmp_path)


def test_bad_pixel_size_is_refused(tmp_path: Path) -> None:
    bad = make_segmentation("A01.tif")
    bad.pixel_size_um = 0.0
    with pytest.raises(ExportError, match=r"A01\.tif: pixel_size_um must be a positive number"):
        write_exports([make_segmentation("A00.tif"), bad], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_spheroid_id_is_the_same_in_every_format(tmp_path: Path) -> None:
    segmentation = make_segmentation()
    write_exports([segmentation], tmp_path)
    labels = np.asarray(Image.open(tmp_path / "masks" / "A01.png"))
    coco = json.loads((tmp_path / "annotations.coco.json").read_text())
    features = json.loads((tmp_path / "geojson" / "A01.geojson").read_text())["features"]
    with (tmp_path / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(coco["annotations"]) == len(features) == len(rows) == len(segmentation.spheroids)
    for index, spheroid in enumerate(segmentation.spheroids):
        spheroid_id = index + 1
        mask = spheroid_to_mask(spheroid, (HEIGHT, WIDTH))
        assert (labels[mask] == spheroid_id).all()
        assert coco["annotations"][index]["attributes"]["spheroid_id"] == spheroid_id
        assert features[index]["properties"]["spheroid_id"] == spheroid_id
        assert rows[index]["spheroid_id"] == str(spheroid_id)
        assert float(rows[index]["area_px"]) == pytest.approx(spheroid.metrics.area_px)  # type: ignore[union-attr]
        assert (labels == spheroid_id).sum() == mask.sum()


def test_same_stem_twice_gets_distinct_files(tmp_path: Path) -> None:
    first = make_segmentation("plate1/A01.tif")
    second = make_segmentation("plate2/A01.png")
    second.spheroids = second.spheroids[:1]
    written = write_exports([first, second], tmp_path)
    assert [path.name for path in written["masks"]] == ["A01.png", "A01_2.png"]
    assert [path.name for path in written["geojson"]] == ["A01.geojson", "A01_2.geojson"]
    assert np.asarray(Image.open(written["masks"][1])).max() == 1
    assert len(json.loads(written["geojson"][0].read_text())["features"]) == len(first.spheroids)
    with written["csv"][0].open(newline="") as handle:
        stems = {(row["image"], row["file_stem"]) for row in csv.DictReader(handle)}
    assert stems == {("plate1/A01.tif", "A01"), ("plate2/A01.png", "A01_2")}


def test_unique_stems_are_deterministic_and_avoid_other_images_names() -> None:
    assert unique_stems(["a", "a", "a_2", "A", "b"]) == ["a", "a_3", "a_2", "A_4", "b"]
    assert unique_stems(["x:y", "", "CON"]) == ["x_y", "image", "CON_"]


def test_image_without_spheroids_gets_empty_mask_and_collection(tmp_path: Path) -> None:
    empty = Segmentation(image_name="empty.tif", width=40, height=30)
    written = write_exports([empty], tmp_path)
    labels = np.asarray(Image.open(written["masks"][0]))
    assert labels.shape == (30, 40) and not labels.any()
    assert json.loads(written["geojson"][0].read_text())["features"] == []
    assert json.loads(written["coco"][0].read_text())["annotations"] == []


def test_spheroids_without_metrics_are_measured_on_export(tmp_path: Path) -> None:
    bare = Segmentation(
        image_name="bare.tif", width=WIDTH, height=HEIGHT, spheroids=shapes(), pixel_size_um=2.0
    )
    write_exports([bare], tmp_path, formats=["csv"])
    with (tmp_path / "metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = measure(bare.spheroids[0], 2.0)
    assert float(rows[0]["area_um2"]) == pytest.approx(expected.area_um2)


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_exports([make_segmentation()], tmp_path, formats=["csv"])
    before = (tmp_path / "metrics.csv").read_bytes()

    def broken_replace(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", broken_replace)
    with pytest.raises(ExportError, match=r"metrics\.csv: could not write the file: No space left"):
        write_exports([make_segmentation("other.tif")], tmp_path, formats=["csv"])
    assert (tmp_path / "metrics.csv").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.csv"]


def test_a_spheroid_cut_by_the_image_edge_says_so_in_every_export(tmp_path: Path) -> None:
    """Statistics leave out spheroids the edge cuts: each export marks them, and only them."""
    inside = Spheroid(as_ring([[40, 40], [60, 40], [60, 60], [40, 60]]))
    cut_left = Spheroid(as_ring([[0, 10], [20, 10], [20, 30], [0, 30]]))
    cut_bottom = Spheroid(as_ring([[70, HEIGHT - 20], [90, HEIGHT - 20], [90, HEIGHT - 0.4], [70, HEIGHT]]))
    segmentation = Segmentation(
        image_name="edge.tif",
        width=WIDTH,
        height=HEIGHT,
        spheroids=measured([inside, cut_left, cut_bottom], None),
    )
    write_exports([segmentation], tmp_path, formats=["csv", "coco", "geojson", "xlsx"])
    expected = [False, True, True]
    with (tmp_path / "metrics.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["touches_border"] for row in rows] == [str(flag) for flag in expected]
    coco = json.loads((tmp_path / "annotations.coco.json").read_text())
    assert [a["attributes"]["touches_border"] for a in coco["annotations"]] == expected
    geojson = json.loads((tmp_path / "geojson" / "edge.geojson").read_text())
    assert [f["properties"]["touches_border"] for f in geojson["features"]] == expected
    sheet = load_workbook(tmp_path / "metrics.xlsx", read_only=True)["metrics"]
    header, *values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert [row[header.index("touches_border")] for row in values] == expected
