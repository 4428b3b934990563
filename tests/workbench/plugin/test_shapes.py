"""Segmentations as napari Shapes data and back: coordinates, holes, metrics as features (no window)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster import Segmentation, Spheroid, measure
from workbench.plugin.shapes import (
    features_of,
    from_napari,
    segmentation_of_layer,
    shapes_layer,
    spheroid_of_vertices,
    spheroid_vertices,
    to_napari,
    vertex_rings,
)


def square(x0: float, y0: float, size: float) -> np.ndarray:
    return np.array([[x0, y0], [x0, y0 + size], [x0 + size, y0 + size], [x0 + size, y0]], dtype=float)


def holed() -> Spheroid:
    exterior = square(10, 10, 40)
    holes = (square(15, 15, 5)[::-1], square(30, 30, 8)[::-1])
    spheroid = Spheroid(exterior, holes)
    return spheroid.with_metrics(measure(spheroid, 0.5))


def test_a_pixel_centre_is_a_whole_napari_coordinate() -> None:
    centre_of_row_3_column_7 = np.array([[7.5, 3.5]])
    np.testing.assert_array_equal(to_napari(centre_of_row_3_column_7), [[3.0, 7.0]])
    np.testing.assert_array_equal(from_napari(np.array([[3.0, 7.0]])), centre_of_row_3_column_7)


def test_holes_travel_in_one_vertex_list_and_come_back_as_rings() -> None:
    spheroid = holed()
    vertices = spheroid_vertices(spheroid)
    # exterior closed, each hole closed, one bridge back between holes: 5 + 5 + 1 + 5
    assert vertices.shape == (16, 2)
    rings = vertex_rings(vertices)
    assert len(rings) == 3
    np.testing.assert_array_equal(rings[0], spheroid.exterior)
    for ring, hole in zip(rings[1:], spheroid.holes, strict=True):
        np.testing.assert_array_equal(ring, hole)


def test_a_hand_drawn_polygon_is_one_ring() -> None:
    drawn = to_napari(square(0, 0, 10))
    (spheroid,) = spheroid_of_vertices(drawn)
    assert spheroid.holes == ()
    assert sorted(map(tuple, spheroid.exterior)) == sorted(map(tuple, square(0, 0, 10)))


def test_a_bow_tie_drawn_by_hand_is_repaired_into_two_spheroids() -> None:
    bow_tie = to_napari(np.array([[0, 0], [10, 10], [10, 0], [0, 10]], dtype=float))
    assert len(spheroid_of_vertices(bow_tie)) == 2
    assert spheroid_of_vertices(to_napari(np.array([[0, 0], [5, 5]], dtype=float)), "path") == []


def test_metrics_become_feature_columns_with_nan_for_unknown() -> None:
    spheroids = [holed(), Spheroid(square(60, 60, 10)).with_metrics(measure(Spheroid(square(60, 60, 10))))]
    features = features_of(spheroids)
    assert features["spheroid_id"] == [1.0, 2.0]
    assert features["hole_count"] == [2.0, 0.0]
    assert features["area_um2"][0] == pytest.approx(spheroids[0].metrics.area_um2)  # type: ignore[union-attr]
    assert math.isnan(features["area_um2"][1])


def test_a_layer_gives_back_the_segmentation_it_was_made_from() -> None:
    original = Segmentation("plate/A01.tif", 80, 70, [holed()], pixel_size_um=0.5, model_name="resunet")
    data, options, kind = shapes_layer(original)
    assert kind == "shapes" and options["name"] == "A01 outlines"
    napari_float32 = [vertices.astype(np.float32) for vertices in data]  # what a Shapes layer keeps
    copy = segmentation_of_layer(napari_float32, {"shape_type": ["polygon"], **options})
    assert (copy.image_name, copy.width, copy.height, copy.pixel_size_um) == ("plate/A01.tif", 80, 70, 0.5)
    (spheroid,) = copy.spheroids
    np.testing.assert_allclose(spheroid.exterior, original.spheroids[0].exterior, atol=1e-4)
    assert len(spheroid.holes) == 2
    assert spheroid.metrics is not None and spheroid.metrics.area_um2 == pytest.approx(
        original.spheroids[0].metrics.area_um2  # type: ignore[union-attr]
    )


def test_a_layer_without_our_metadata_is_sized_to_hold_its_outlines() -> None:
    copy = segmentation_of_layer([to_napari(square(0, 0, 30.2))], {"name": "drawn", "shape_type": "polygon"})
    assert (copy.image_name, copy.width, copy.height, copy.pixel_size_um) == ("drawn", 31, 31, None)


def test_an_ellipse_drawn_in_napari_becomes_a_polygon_filling_its_box() -> None:
    box = to_napari(square(0, 0, 20))  # napari keeps an ellipse as the corners of its box
    (spheroid,) = spheroid_of_vertices(box, "ellipse")
    assert spheroid.metrics is None and len(spheroid.exterior) == 64
    np.testing.assert_allclose(spheroid.exterior.min(axis=0), [0, 0], atol=0.05)
    np.testing.assert_allclose(spheroid.exterior.max(axis=0), [20, 20], atol=0.05)


def test_holes_bridged_from_another_vertex_read_as_napari_draws_them() -> None:
    exterior, hole = square(0, 0, 40), square(10, 10, 10)[::-1]
    # napari's own layout from elsewhere: bridge out from the third exterior vertex, the hole, back again
    listed = np.concatenate([exterior[:3], hole, hole[:1], exterior[2:]])
    rings = vertex_rings(to_napari(listed))
    assert len(rings) == 2
    np.testing.assert_array_equal(rings[0], exterior)
    np.testing.assert_array_equal(rings[1], hole)
    (spheroid,) = spheroid_of_vertices(to_napari(listed))
    assert len(spheroid.holes) == 1 and measure(spheroid).area_px == pytest.approx(1600 - 100)
