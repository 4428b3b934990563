"""COCO export checked with pycocotools itself, and read back with read_coco."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from cluster.exceptions import AnnotationImportError
from cluster.exports import read_coco, write_exports
from cluster.exports.rle import counts_from_string, decode_rle, encode_mask
from cluster.polygons import orient_rings, spheroid_to_mask
from cluster.segmentation import Segmentation
from tests.cluster.test_exports import HEIGHT, WIDTH, iou, make_segmentation, square

# pycocotools' compiled part predates NumPy 2's copy keyword and says so on every decode.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def export_coco(tmp_path: Path, segmentations: list[Segmentation]) -> Path:
    return write_exports(segmentations, tmp_path, formats=["coco"])["coco"][0]


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def minimal_coco(segmentation: Any, **image: Any) -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "x.tif", "width": 40, "height": 30, **image}],
        "categories": [{"id": 1, "name": "spheroid"}],
        "annotations": [{"id": 12, "image_id": 1, "category_id": 1, "segmentation": segmentation}],
    }


def test_ann_to_mask_gives_exactly_our_masks(tmp_path: Path) -> None:
    segmentation = make_segmentation()
    assert {len(spheroid.holes) for spheroid in segmentation.spheroids} == {0, 1, 2}
    coco = COCO(str(export_coco(tmp_path, [segmentation])))
    annotations = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(annotations) == len(segmentation.spheroids)
    for spheroid, annotation in zip(segmentation.spheroids, annotations, strict=True):
        expected = spheroid_to_mask(spheroid, (HEIGHT, WIDTH))
        if spheroid.holes:
            assert isinstance(annotation["segmentation"], dict), "holes need RLE"
        else:
            assert isinstance(annotation["segmentation"], list), "no holes: a polygon"
        np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), expected)


def test_simplified_outlines_differ_from_pycocotools_only_along_the_boundary(tmp_path: Path) -> None:
    segmentation = make_segmentation(tolerance=0.5)
    coco = COCO(str(export_coco(tmp_path, [segmentation])))
    for spheroid, annotation in zip(segmentation.spheroids, coco.loadAnns(coco.getAnnIds()), strict=True):
        assert (
            iou(coco.annToMask(annotation).astype(bool), spheroid_to_mask(spheroid, (HEIGHT, WIDTH))) > 0.97
        )


def test_document_layout(tmp_path: Path) -> None:
    segmentation = make_segmentation()
    document = json.loads(export_coco(tmp_path, [segmentation, make_segmentation("B.tif", None)]).read_text())
    assert document["categories"] == [{"id": 1, "name": "spheroid", "supercategory": "spheroid"}]
    assert [image["id"] for image in document["images"]] == [1, 2]
    image = document["images"][0]
    assert (image["file_name"], image["width"], image["height"]) == ("plate1/A01.tif", WIDTH, HEIGHT)
    assert image["parameters"] == {"threshold": 0.5, "min_area_px": 20}
    assert document["info"]["models"] == [{"name": "resunet", "version": "1.2.0"}]
    annotations = document["annotations"]
    assert [annotation["id"] for annotation in annotations] == list(range(1, len(annotations) + 1))
    first = annotations[0]
    assert first["iscrowd"] == 0 and first["category_id"] == 1 and first["image_id"] == 1
    exterior = segmentation.spheroids[0].exterior
    x0, y0 = exterior.min(axis=0)
    x1, y1 = exterior.max(axis=0)
    assert first["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
    assert first["area"] == pytest.approx(segmentation.spheroids[0].metrics.area_px)  # type: ignore[union-attr]
    assert first["attributes"]["metrics"]["circularity"] == pytest.approx(
        segmentation.spheroids[0].metrics.circularity  # type: ignore[union-attr]
    )
    unknown = annotations[-1]["attributes"]["metrics"]
    assert annotations[-1]["image_id"] == 2 and unknown["area_um2"] is None


def test_round_trip_gives_the_same_masks(tmp_path: Path) -> None:
    originals = [make_segmentation(), make_segmentation("B.tif", None), Segmentation("empty.png", 20, 10)]
    read = read_coco(export_coco(tmp_path, originals))
    assert [s.image_name for s in read] == ["plate1/A01.tif", "B.tif", "empty.png"]
    assert read[2].spheroids == [] and (read[2].width, read[2].height) == (20, 10)
    assert read[0].pixel_size_um == 0.65 and read[1].pixel_size_um is None
    assert (read[0].model_name, read[0].model_version) == ("resunet", "1.2.0")
    for original, copy in zip(originals[:2], read[:2], strict=True):
        assert len(copy.spheroids) == len(original.spheroids)
        for before, after in zip(original.spheroids, copy.spheroids, strict=True):
            assert (
                iou(spheroid_to_mask(before, (HEIGHT, WIDTH)), spheroid_to_mask(after, (HEIGHT, WIDTH)))
                >= 0.99
            )
            assert len(after.holes) == len(before.holes)
            assert after.metrics is not None
            assert after.metrics.area_px == pytest.approx(before.metrics.area_px, rel=0.05)  # type: ignore[union-attr]
    assert read[0].spheroids[0].metrics.area_um2 is not None  # type: ignore[union-attr]
    assert read[1].spheroids[0].metrics.area_um2 is None  # type: ignore[union-attr]


def test_rle_read_without_simplification_gives_the_mask_exactly(tmp_path: Path) -> None:
    segmentation = make_segmentation()
    (copy,) = read_coco(export_coco(tmp_path, [segmentation]), tolerance=0)
    for before, after in zip(segmentation.spheroids, copy.spheroids, strict=True):
        if before.holes:
            np.testing.assert_array_equal(
                spheroid_to_mask(after, (HEIGHT, WIDTH)), spheroid_to_mask(before, (HEIGHT, WIDTH))
            )


def test_uncompressed_rle_is_read(tmp_path: Path) -> None:
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:20, 8:30] = True
    mask[9:13, 12:16] = False
    runs: list[int] = []
    flat = mask.ravel(order="F")
    current, length = False, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = bool(value), 1
    runs.append(length)
    path = write_json(tmp_path / "u.json", minimal_coco({"size": [30, 40], "counts": runs}))
    (segmentation,) = read_coco(path, tolerance=0)
    (spheroid,) = segmentation.spheroids
    assert len(spheroid.holes) == 1
    np.testing.assert_array_equal(spheroid_to_mask(spheroid, (30, 40)), mask)


def test_several_polygons_of_one_annotation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    separate = [square(2, 2, 10, 10).ravel().tolist(), square(20, 2, 30, 12).ravel().tolist()]
    overlapping = [square(2, 2, 10, 10).ravel().tolist(), square(6, 6, 14, 14).ravel().tolist()]
    nested = [square(2, 2, 20, 20).ravel().tolist(), square(6, 6, 10, 10).ravel().tolist()]
    with caplog.at_level(logging.INFO):
        (two,) = read_coco(write_json(tmp_path / "a.json", minimal_coco(separate)))
    assert sorted(s.metrics.area_px for s in two.spheroids) == pytest.approx([64, 100])  # type: ignore[union-attr]
    (merged,) = read_coco(write_json(tmp_path / "b.json", minimal_coco(overlapping)))
    assert [s.metrics.area_px for s in merged.spheroids] == pytest.approx([64 + 64 - 16])  # type: ignore[union-attr]
    (outer,) = read_coco(write_json(tmp_path / "c.json", minimal_coco(nested)))
    assert len(outer.spheroids) == 1 and outer.spheroids[0].holes == ()
    assert "2 separate parts" in caplog.text


def test_only_the_spheroid_category_is_read(tmp_path: Path) -> None:
    document = minimal_coco([square(2, 2, 10, 10).ravel().tolist()])
    document["categories"].append({"id": 2, "name": "debris"})
    document["annotations"].append({**document["annotations"][0], "id": 13, "category_id": 2})
    (segmentation,) = read_coco(write_json(tmp_path / "c.json", document))
    assert len(segmentation.spheroids) == 1


def test_rle_string_decoder_matches_pycocotools() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((37, 53)) > 0.6
    rle = encode_mask(mask)
    counts = counts_from_string(rle["counts"])
    assert sum(counts) == 37 * 53
    expected = mask_utils.decode({"size": [37, 53], "counts": rle["counts"].encode()}).astype(bool)
    np.testing.assert_array_equal(decode_rle(rle["counts"], 37, 53), expected)
    np.testing.assert_array_equal(decode_rle(counts, 37, 53), mask)


BAD_FILES: list[tuple[str, Any, str]] = [
    (
        "pixel size",
        {
            "images": [{"id": 1, "file_name": "a", "width": 3, "height": 3, "pixel_size_um": -1}],
            "annotations": [],
        },
        r"image 1: pixel_size_um: expected a positive number",
    ),
    ("not json", "{images: [", r"not a JSON file \(line 1"),
    ("list", [], r"top level: expected an object, got an array"),
    ("no images", {"annotations": []}, r"top level: the key 'images' is missing"),
    ("no annotations", {"images": []}, r"top level: the key 'annotations' is missing"),
    (
        "width",
        {"images": [{"id": 1, "file_name": "a", "width": "wide", "height": 3}], "annotations": []},
        r"image 1: width: expected a finite number, got \"wide\"",
    ),
    (
        "short ring",
        minimal_coco([[1, 1, 5, 1]]),
        r"annotation 12: segmentation: a ring needs at least 3 points",
    ),
    (
        "short second ring",
        minimal_coco([[1, 1, 5, 1, 5, 5], [1, 1, 2, 2, 1, 1]]),
        r"annotation 12: segmentation: polygon 1: a ring needs at least 3 points, got 2",
    ),
    ("odd numbers", minimal_coco([[1, 1, 5, 1, 5]]), r"annotation 12: segmentation: a polygon needs pairs"),
    ("text coordinate", minimal_coco([[1, 1, 5, "a", 5, 5]]), r"annotation 12: segmentation: value 3"),
    ("wrong type", minimal_coco("polygon"), r"annotation 12: segmentation: expected polygons"),
    (
        "rle size",
        minimal_coco({"size": [10, 10], "counts": "PPP"}),
        r"annotation 12: segmentation: the RLE is 10 x 10",
    ),
    ("rle total", minimal_coco({"size": [30, 40], "counts": [5, 10]}), r"runs cover 15 pixels"),
    ("rle garbage", minimal_coco({"size": [30, 40], "counts": "\x01\x02"}), r"counts: character"),
    ("rle truncated", minimal_coco({"size": [30, 40], "counts": "ooo"}), r"counts: the RLE string ends"),
]


@pytest.mark.parametrize(
    ("document", "message"), [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_files_name_the_file_and_the_place(tmp_path: Path, document: Any, message: str) -> None:
    path = tmp_path / "bad.json"
    if isinstance(document, str):
        path.write_text(document)
    else:
        write_json(path, document)
    with pytest.raises(AnnotationImportError, match=message) as caught:
        read_coco(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_unknown_image_id_and_missing_file(tmp_path: Path) -> None:
    document = minimal_coco([square(2, 2, 10, 10).ravel().tolist()])
    document["annotations"][0]["image_id"] = 7
    with pytest.raises(AnnotationImportError, match="annotation 12: image_id 7 is not the id of any image"):
        read_coco(write_json(tmp_path / "c.json", document))
    with pytest.raises(AnnotationImportError, match="cannot read the file"):
        read_coco(tmp_path / "missing.json")


def test_a_spheroid_with_holes_comes_back_with_every_vertex_as_written(tmp_path: Path) -> None:
    segmentation = make_segmentation(tolerance=0.5)  # simplified: tracing the mask could not give these
    (copy,) = read_coco(export_coco(tmp_path, [segmentation]))
    holed = [(b, a) for b, a in zip(segmentation.spheroids, copy.spheroids, strict=True) if b.holes]
    assert holed
    for written, after in holed:
        before = orient_rings(written)  # read outlines are oriented (cluster.polygons), vertices kept
        np.testing.assert_array_equal(after.exterior, before.exterior)
        assert len(after.holes) == len(before.holes)
        for hole_before, hole_after in zip(before.holes, after.holes, strict=True):
            np.testing.assert_array_equal(hole_after, hole_before)


def test_kept_rings_that_disagree_with_the_mask_are_ignored(tmp_path: Path) -> None:
    segmentation = make_segmentation()
    path = export_coco(tmp_path, [segmentation])
    document = json.loads(path.read_text())
    (annotation, before) = next(
        (a, s) for a, s in zip(document["annotations"], segmentation.spheroids, strict=True) if s.holes
    )
    annotation["attributes"]["rings"][0] = [1, 1, 5, 1, 5, 5, 1, 5]  # another tool moved the mask
    (copy,) = read_coco(write_json(path, document), tolerance=0)
    after = copy.spheroids[document["annotations"].index(annotation)]
    np.testing.assert_array_equal(
        spheroid_to_mask(after, (HEIGHT, WIDTH)), spheroid_to_mask(before, (HEIGHT, WIDTH))
    )
