"""GeoJSON export (closed rings, holes as inner rings, QuPath properties) and read_geojson."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from cluster.exceptions import AnnotationImportError
from cluster.exports import read_geojson, write_exports
from cluster.polygons import spheroid_to_mask
from tests.cluster.test_exports import HEIGHT, WIDTH, iou, make_segmentation, square


def export(tmp_path: Path, **kwargs: Any) -> tuple[Path, Any]:
    segmentation = make_segmentation(**kwargs)
    (path,) = write_exports([segmentation], tmp_path, formats=["geojson"])["geojson"]
    return path, segmentation


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def polygon_feature(rings: list[Any], geometry_type: str = "Polygon") -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": geometry_type, "coordinates": rings}, "properties": {}}


def closed(ring: Any) -> list[list[float]]:
    points = [list(map(float, point)) for point in ring]
    return [*points, points[0]]


def test_rings_closed_holes_inner_and_oriented(tmp_path: Path) -> None:
    path, segmentation = export(tmp_path)
    document = json.loads(path.read_text())
    assert document["type"] == "FeatureCollection"
    assert len(document["features"]) == len(segmentation.spheroids)
    for feature, spheroid in zip(document["features"], segmentation.spheroids, strict=True):
        rings = feature["geometry"]["coordinates"]
        assert feature["geometry"]["type"] == "Polygon"
        assert len(rings) == 1 + len(spheroid.holes)
        for ring in rings:
            assert ring[0] == ring[-1] and len(ring) >= 4
        assert shapely.is_ccw(shapely.linearrings(rings[0])), "exterior: right-hand rule on the numbers"
        assert not any(shapely.is_ccw(shapely.linearrings(hole)) for hole in rings[1:])
        polygon = shape(feature["geometry"])
        assert polygon.is_valid
        assert polygon.area == pytest.approx(spheroid.metrics.area_px)  # type: ignore[union-attr]


def test_properties_as_qupath_reads_them(tmp_path: Path) -> None:
    path, segmentation = export(tmp_path, pixel_size_um=None)
    features = json.loads(path.read_text())["features"]
    properties = features[0]["properties"]
    assert properties["objectType"] == "annotation"
    assert properties["classification"]["name"] == "Spheroid"
    assert len(properties["classification"]["color"]) == 3
    assert properties["spheroid_id"] == 1
    measurements = properties["measurements"]
    assert measurements["area_px"] == pytest.approx(segmentation.spheroids[0].metrics.area_px)
    assert "area_um2" not in measurements, "unknown values are left out"
    assert all(isinstance(value, int | float) for value in measurements.values())
    assert len({feature["id"] for feature in features}) == len(features)
    again, _ = export(tmp_path / "again", pixel_size_um=None)
    assert [f["id"] for f in json.loads(again.read_text())["features"]] == [f["id"] for f in features]


def test_round_trip(tmp_path: Path) -> None:
    path, original = export(tmp_path)
    copy = read_geojson(path)
    assert (copy.image_name, copy.width, copy.height) == ("plate1/A01.tif", WIDTH, HEIGHT)
    assert copy.pixel_size_um == 0.65 and copy.model_name == "resunet"
    assert len(copy.spheroids) == len(original.spheroids)
    for before, after in zip(original.spheroids, copy.spheroids, strict=True):
        assert len(after.holes) == len(before.holes)
        assert (
            iou(spheroid_to_mask(before, (HEIGHT, WIDTH)), spheroid_to_mask(after, (HEIGHT, WIDTH))) >= 0.999
        )
        assert after.metrics is not None
        assert after.metrics.area_um2 == pytest.approx(before.metrics.area_um2)  # type: ignore[union-attr]


def test_qupath_array_multipolygon_and_skipped_points(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outer = closed(square(10, 10, 40, 40))
    hole = closed(square(20, 20, 30, 30))
    features = [
        {**polygon_feature([outer, hole]), "properties": {"objectType": "annotation"}},
        polygon_feature([[closed(square(50, 5, 60, 15))], [closed(square(70, 5, 80, 25))]], "MultiPolygon"),
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}, "properties": {}},
        {"type": "Feature", "geometry": None, "properties": {}},
    ]
    with caplog.at_level(logging.WARNING):
        segmentation = read_geojson(write_json(tmp_path / "qupath.geojson", features), width=100, height=50)
    assert segmentation.image_name == "qupath"
    assert (segmentation.width, segmentation.height) == (100, 50)
    areas = [spheroid.metrics.area_px for spheroid in segmentation.spheroids]  # type: ignore[union-attr]
    assert areas == pytest.approx([900 - 100, 100, 200])
    assert len(segmentation.spheroids[0].holes) == 1
    assert "feature 2: a Point is not an outline; skipped" in caplog.text
    assert "feature 3: has no geometry" in caplog.text


def test_size_from_outlines_and_explicit_name(tmp_path: Path) -> None:
    document = {
        "type": "FeatureCollection",
        "features": [polygon_feature([closed(square(1, 2, 30.2, 20.5))])],
    }
    segmentation = read_geojson(
        write_json(tmp_path / "x.json", document), image_name="x.tif", pixel_size_um=2.0
    )
    assert (segmentation.image_name, segmentation.width, segmentation.height) == ("x.tif", 31, 21)
    assert segmentation.spheroids[0].metrics.area_um2 == pytest.approx(29.2 * 18.5 * 4)  # type: ignore[union-attr]


BAD_FILES: list[tuple[str, Any, str]] = [
    ("not json", "not json at all", r"not a JSON file"),
    ("number", 42, r"top level: expected an object, got a number"),
    ("no type", {"features": []}, r"top level: the key 'type' is missing"),
    ("no features", {"type": "FeatureCollection"}, r"top level: the key 'features' is missing"),
    (
        "feature type",
        {"type": "FeatureCollection", "features": [{"type": "Point"}]},
        r"feature 0: type: expected",
    ),
    ("no geometry key", [{"type": "Feature", "properties": {}}], r"feature 0: the key 'geometry' is missing"),
    (
        "short ring",
        [polygon_feature([[[0, 0], [5, 0], [0, 0]]])],
        r"feature 0: ring 0: a ring needs at least 3",
    ),
    (
        "short hole",
        [
            polygon_feature([[[0, 0], [9, 0], [9, 9], [0, 9]]]),
            polygon_feature([closed(square(0, 0, 9, 9)), [[1, 1]]]),
        ],
        r"feature 1: ring 1: a ring needs at least 3 points, got 1",
    ),
    (
        "bad position",
        [polygon_feature([[[0, 0], [5], [5, 5]]])],
        r"feature 0: ring 0: position 1: expected \[x, y\]",
    ),
    (
        "text",
        [polygon_feature([[[0, 0], ["a", 1], [5, 5]]])],
        r"feature 0: ring 0: position 1: expected a finite",
    ),
    (
        "rings not array",
        [polygon_feature({"a": 1})],
        r"feature 0: coordinates: expected an array, got an object",
    ),
    (
        "unknown type",
        [polygon_feature([], "Circle")],
        r"feature 0: geometry: type: 'Circle' is not a GeoJSON",
    ),
    ("empty polygon", [polygon_feature([])], r"feature 0: a polygon needs at least its exterior ring"),
    (
        "flat polygon",
        [polygon_feature([[[0, 0], [1, 1], [2, 2]]])],
        r"feature 0: exterior ring encloses no area",
    ),
]


@pytest.mark.parametrize(
    ("document", "message"), [case[1:] for case in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_files_name_the_file_and_the_place(tmp_path: Path, document: Any, message: str) -> None:
    path = tmp_path / "bad.geojson"
    if isinstance(document, str):
        path.write_text(document)
    else:
        write_json(path, document)
    with pytest.raises(AnnotationImportError, match=message) as caught:
        read_geojson(path)
    assert str(caught.value).startswith(f"{path}: ")
