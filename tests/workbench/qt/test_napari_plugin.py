"""The napari plugin in napari itself (napari's ``make_napari_viewer``, windows under Xvfb): its readers and
writers round-trip outlines with holes, and its samples open."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cluster import Segmentation, SegmenterSpec, read_image, segment_pixels, write_exports
from tests.workbench.qt.napari_plugin import PLUGIN, spheroseg_plugin  # noqa: F401  (the fixture)
from workbench.plugin.samples import SAMPLE_NAMES
from workbench.plugin.shapes import vertex_rings
from workbench.samples import SAMPLES

# pycocotools' compiled part predates NumPy 2's copy keyword and says so on every decode.
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.usefixtures("spheroseg_plugin"),
]

MakeViewer = Callable[..., Any]


@pytest.fixture(scope="module")
def hollow() -> Segmentation:
    """The hollow sample segmented by the shipped ResUNet: spheroids with and without holes."""
    image = read_image(SAMPLES / "hollow_spheroid.png")
    outcome = segment_pixels(image.pixels, "hollow_spheroid.png", SegmenterSpec.of("resunet"), 0.65)
    assert outcome.segmentation is not None, outcome.error
    assert any(spheroid.holes for spheroid in outcome.segmentation.spheroids)
    return outcome.segmentation


def rings_of(layer: Any) -> list[list[np.ndarray]]:
    return [vertex_rings(vertices) for vertices in layer.data]


def assert_same_rings(first: list[list[np.ndarray]], second: list[list[np.ndarray]], atol: float) -> None:
    assert [len(rings) for rings in first] == [len(rings) for rings in second]
    for rings_a, rings_b in zip(first, second, strict=True):
        for a, b in zip(rings_a, rings_b, strict=True):
            np.testing.assert_allclose(a, b, atol=atol, rtol=0)


@pytest.mark.parametrize("kind", ["coco", "geojson"])
def test_outlines_with_holes_open_and_save_back_unchanged(
    kind: str, tmp_path: Path, hollow: Segmentation, make_napari_viewer: MakeViewer
) -> None:
    exported = write_exports([hollow], tmp_path / "export", [kind])[kind][0]
    source = tmp_path / ("hollow.coco.json" if kind == "coco" else "hollow.geojson")
    exported.rename(source)
    viewer = make_napari_viewer()

    (layer,) = viewer.open(source, plugin=PLUGIN)
    assert layer.name == "hollow_spheroid outlines" and layer.nshapes == len(hollow.spheroids)
    opened = rings_of(layer)
    expected = [[spheroid.exterior, *spheroid.holes] for spheroid in hollow.spheroids]
    assert_same_rings(opened, expected, atol=1e-4)  # napari keeps vertices as float32
    assert sum(len(rings) - 1 for rings in opened) >= 1, "the holes are shapes' inner rings"
    np.testing.assert_allclose(layer.features["area_um2"], [s.metrics.area_um2 for s in hollow.spheroids])  # type: ignore[union-attr]

    saved = tmp_path / f"saved{source.name[len('hollow') :]}"
    (written,) = viewer.layers.save(str(saved), selected=False, plugin=PLUGIN)
    assert Path(written) == saved
    (again,) = viewer.open(saved, plugin=PLUGIN)
    assert_same_rings(rings_of(again), opened, atol=0)
    assert again.metadata["spheroseg"]["pixel_size_um"] == 0.65


def test_a_coco_file_keeps_holes_as_rle_other_tools_decode(
    tmp_path: Path, hollow: Segmentation, make_napari_viewer: MakeViewer
) -> None:
    from pycocotools import mask as mask_utils

    from cluster import read_coco

    viewer = make_napari_viewer()
    source = write_exports([hollow], tmp_path, ["coco"])["coco"][0]
    viewer.open(source.rename(tmp_path / "hollow.coco.json"), plugin=PLUGIN)
    saved = tmp_path / "saved.coco.json"
    viewer.layers.save(str(saved), selected=False, plugin=PLUGIN)
    document = json.loads(saved.read_text())
    holed = [a for a in document["annotations"] if a["attributes"]["metrics"]["hole_count"]]
    assert holed and all(isinstance(a["segmentation"], dict) for a in holed)
    (copy,) = read_coco(saved)
    mask = mask_utils.decode(holed[0]["segmentation"]).astype(bool)
    index = document["annotations"].index(holed[0])
    hole_centre = copy.spheroids[index].holes[0].mean(axis=0)
    assert not mask[int(hole_centre[1]), int(hole_centre[0])], "pycocotools sees the hole"


def test_shapes_drawn_in_napari_save_as_qupath_geojson(
    tmp_path: Path, make_napari_viewer: MakeViewer
) -> None:
    viewer = make_napari_viewer()
    viewer.add_shapes(
        [np.array([[10, 10], [10, 60], [60, 60], [60, 10]]), np.array([[80, 80], [80, 100], [100, 90]])],
        shape_type="polygon",
        name="drawn",
    )
    saved = tmp_path / "drawn.geojson"
    viewer.layers.save(str(saved), selected=False, plugin=PLUGIN)
    document = json.loads(saved.read_text())
    assert [feature["geometry"]["type"] for feature in document["features"]] == ["Polygon", "Polygon"]
    first = np.array(document["features"][0]["geometry"]["coordinates"][0])
    assert first.min(axis=0).tolist() == [10.5, 10.5] and first.max(axis=0).tolist() == [60.5, 60.5]
    assert document["features"][0]["properties"]["measurements"]["area_px"] == pytest.approx(2500)


@pytest.mark.parametrize("key", sorted(SAMPLE_NAMES))
def test_every_bundled_sample_opens_as_an_image(key: str, make_napari_viewer: MakeViewer) -> None:
    viewer = make_napari_viewer()
    (layer,) = viewer.open_sample(PLUGIN, key)
    expected = read_image(SAMPLES / SAMPLE_NAMES[key])
    assert layer.name == key
    np.testing.assert_array_equal(layer.data, expected.pixels)
    assert layer.metadata["pixel_size_um"] == expected.info.pixel_size_um


def test_a_hole_is_left_unpainted_when_the_outlines_are_filled(
    tmp_path: Path, hollow: Segmentation, make_napari_viewer: MakeViewer
) -> None:
    source = write_exports([hollow], tmp_path, ["coco"])["coco"][0].rename(tmp_path / "hollow.coco.json")
    viewer = make_napari_viewer(show=True)
    viewer.add_image(read_image(SAMPLES / "hollow_spheroid.png").pixels, name="hollow_spheroid")
    (layer,) = viewer.open(source, plugin=PLUGIN)
    layer.face_color = "red"
    viewer.reset_view()
    holed = next(spheroid for spheroid in hollow.spheroids if spheroid.holes)
    solid = next(spheroid for spheroid in hollow.spheroids if not spheroid.holes)

    def on_screen(x: float, y: float, shot: np.ndarray) -> np.ndarray:
        row, column = viewer.scene.camera.center[-2:]
        zoom = viewer.scene.camera.zoom
        height, width = shot.shape[:2]
        return shot[int((y - 0.5 - row) * zoom + height / 2), int((x - 0.5 - column) * zoom + width / 2), :3]

    filled = np.asarray(viewer.screenshot(canvas_only=True, flash=False)).astype(int)
    layer.visible = False
    bare = np.asarray(viewer.screenshot(canvas_only=True, flash=False)).astype(int)
    hole_x, hole_y = holed.holes[0].mean(axis=0)
    body_x, body_y = solid.exterior.mean(axis=0)
    assert np.abs(on_screen(hole_x, hole_y, filled) - on_screen(hole_x, hole_y, bare)).max() < 10
    assert np.abs(on_screen(body_x, body_y, filled) - on_screen(body_x, body_y, bare)).max() > 40
