"""Masks to polygons and back, simplification, orientation and repair of spheroid outlines."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import LinearRing, Polygon
from shapely.geometry.polygon import orient

from cluster.exceptions import GeometryError
from cluster.polygons import (
    DEFAULT_SIMPLIFY_TOLERANCE,
    labels_to_spheroids,
    mask_to_spheroids,
    orient_rings,
    repair_spheroid,
    simplify_ring,
    spheroid_to_mask,
    spheroids_to_labels,
)
from cluster.segmentation import Spheroid

Mask = NDArray[np.bool_]


def _grid(shape: tuple[int, int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """x and y of every pixel centre."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return cols + 0.5, rows + 0.5


def _ellipse(shape: tuple[int, int], cx: float, cy: float, a: float, b: float, angle: float = 0.0) -> Mask:
    x, y = _grid(shape)
    dx, dy = x - cx, y - cy
    u = dx * np.cos(angle) - dy * np.sin(angle)
    v = dx * np.sin(angle) + dy * np.cos(angle)
    inside: Mask = (u / a) ** 2 + (v / b) ** 2 <= 1
    return inside


def _lobed(shape: tuple[int, int], cx: float, cy: float, r: float, lobes: int, depth: float) -> Mask:
    x, y = _grid(shape)
    theta = np.arctan2(y - cy, x - cx)
    return np.hypot(x - cx, y - cy) <= r * (1 + depth * np.sin(lobes * theta + 0.7))


def _iou(a: Mask, b: Mask) -> float:
    return float((a & b).sum() / (a | b).sum())


def _boundary_pixels(mask: Mask) -> int:
    """Pixels of the mask with a 4-neighbour outside it: the 'one vertex per boundary pixel' baseline."""
    return int((mask & ~ndimage.binary_erosion(mask, border_value=0)).sum())


def _union(spheroids: list[Spheroid], shape: tuple[int, int]) -> Mask:
    return spheroids_to_labels(spheroids, shape) > 0


def _signed_area(ring: NDArray[np.float64]) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _realistic_shapes() -> list[tuple[str, Mask]]:
    """Spheroid-like masks: discs, ellipses and lobed blobs of radius 30..300 px, some with a necrotic
    core (a hole) and a fragment inside it (an island)."""
    shapes: list[tuple[str, Mask]] = []
    for r in (30, 50, 80, 150, 300):
        size = int(2.6 * r) + 10
        shape = (size, size)
        c = size / 2 + 0.3
        shapes.append((f"disc r={r}", _ellipse(shape, c, c - 0.2, r, r)))
        shapes.append((f"ellipse r={r}", _ellipse(shape, c, c, r, 0.65 * r, 0.4)))
        shapes.append((f"lobed r={r}", _lobed(shape, c, c, r, 5, 0.12)))
        cored = _lobed(shape, c, c, r, 3, 0.08) & ~_ellipse(shape, c + 2, c, 0.45 * r, 0.35 * r, 1.0)
        if r >= 80:
            cored |= _ellipse(shape, c + 2, c, 0.15 * r, 0.12 * r)
        shapes.append((f"cored r={r}", cored))
    return shapes


# -- coordinates and round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("tolerance", [0.0, DEFAULT_SIMPLIFY_TOLERANCE])
def test_pixel_block_bounds_follow_the_corner_origin(tolerance: float) -> None:
    mask = np.zeros((8, 12), dtype=bool)
    mask[2:4, 5:8] = True  # rows 2-3, columns 5-7

    [spheroid] = mask_to_spheroids(mask, tolerance)

    assert Polygon(spheroid.exterior).bounds == pytest.approx((5.0, 2.0, 8.0, 4.0))
    assert (spheroid_to_mask(spheroid, mask.shape) == mask).all()


def test_single_pixel_is_a_diamond_around_its_centre() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[1, 3] = True

    [spheroid] = mask_to_spheroids(mask)

    polygon = Polygon(spheroid.exterior)
    assert polygon.area == pytest.approx(0.5)
    assert polygon.centroid.coords[0] == pytest.approx((3.5, 1.5))


def test_hole_with_island_round_trips_exactly_at_zero_tolerance() -> None:
    shape = (120, 140)
    outer = _ellipse(shape, 70, 60, 55, 45)
    core = _ellipse(shape, 72, 58, 25, 20)
    island = _ellipse(shape, 72, 58, 8, 8)
    mask = (outer & ~core) | island

    spheroids = mask_to_spheroids(mask, 0.0)

    assert sorted(len(s.holes) for s in spheroids) == [0, 1]
    assert (_union(spheroids, shape) == mask).all()
    ring_owner = next(s for s in spheroids if s.holes)
    assert (spheroid_to_mask(ring_owner, shape) == (outer & ~core)).all()


def test_hole_with_island_round_trips_at_default_tolerance() -> None:
    shape = (300, 300)
    outer = _lobed(shape, 150, 150, 120, 4, 0.1)
    core = _ellipse(shape, 155, 148, 50, 40, 0.5)
    island = _ellipse(shape, 155, 148, 18, 14)
    mask = (outer & ~core) | island

    spheroids = mask_to_spheroids(mask)

    assert len(spheroids) == 2
    assert sorted(len(s.holes) for s in spheroids) == [0, 1]
    assert _iou(_union(spheroids, shape), mask) >= 0.995
    island_spheroid = next(s for s in spheroids if not s.holes)
    assert _iou(spheroid_to_mask(island_spheroid, shape), island) >= 0.98


def test_nested_rings_of_one_label_each_keep_their_own_hole() -> None:
    shape = (120, 120)
    x, y = _grid(shape)
    d = np.hypot(x - 60, y - 60)
    bands = [(d < 50) & (d >= 40), (d < 30) & (d >= 20), d < 10]
    mask = bands[0] | bands[1] | bands[2]

    spheroids = mask_to_spheroids(mask, 0.0)

    assert len(spheroids) == 3
    for spheroid, band in zip(spheroids, bands, strict=True):  # outermost first: raster order
        assert (spheroid_to_mask(spheroid, shape) == band).all()
    assert [len(s.holes) for s in spheroids] == [1, 1, 0]


def test_a_hole_is_never_subtracted_from_another_spheroid() -> None:
    shape = (100, 100)
    ring = _ellipse(shape, 50, 50, 40, 40) & ~_ellipse(shape, 50, 50, 20, 20)
    plug = _ellipse(shape, 50, 50, 20, 20)  # exactly fills the hole, under another label
    labels = np.zeros(shape, dtype=np.int32)
    labels[ring] = 1
    labels[plug] = 2

    first, second = labels_to_spheroids(labels, 0.0)

    assert len(first.holes) == 1 and not second.holes
    assert (spheroid_to_mask(first, shape) == ring).all()
    assert (spheroid_to_mask(second, shape) == plug).all()


def test_two_touching_labels_are_two_spheroids() -> None:
    labels = np.zeros((40, 60), dtype=np.int32)
    labels[5:30, 5:30] = 1
    labels[5:30, 30:55] = 2

    spheroids = labels_to_spheroids(labels)

    assert len(spheroids) == 2
    assert (spheroids_to_labels(spheroids, labels.shape) == labels).all()


def test_one_label_in_two_pieces_is_two_spheroids_in_raster_order() -> None:
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[20:30, 2:10] = 7
    labels[3:12, 25:35] = 7

    spheroids = labels_to_spheroids(labels)

    assert len(spheroids) == 2
    assert spheroids[0].exterior[:, 1].min() == pytest.approx(3.0)  # the upper piece comes first


def test_connectivity_decides_whether_diagonal_pixels_belong_together() -> None:
    mask = np.zeros((6, 6), dtype=bool)
    mask[1, 1] = mask[2, 2] = True

    assert len(mask_to_spheroids(mask)) == 1
    assert len(mask_to_spheroids(mask, connectivity=4)) == 2
    with pytest.raises(ValueError, match="connectivity"):
        mask_to_spheroids(mask, connectivity=6)


@settings(max_examples=60, deadline=None)
@given(
    labels=arrays(np.int32, st.tuples(st.integers(3, 24), st.integers(3, 24)), elements=st.integers(0, 3)),
    connectivity=st.sampled_from([4, 8]),
)
def test_zero_tolerance_gives_back_every_label_image(labels: NDArray[np.int32], connectivity: int) -> None:
    spheroids = labels_to_spheroids(labels, 0.0, connectivity=connectivity)

    structure = ndimage.generate_binary_structure(2, 2 if connectivity == 8 else 1)
    expected = sum(ndimage.label(labels == value, structure)[1] for value in range(1, 4))
    assert len(spheroids) == expected
    masks = [spheroid_to_mask(s, labels.shape) for s in spheroids]
    assert (np.sum(masks, axis=0) == (labels > 0)).all()  # every pixel covered exactly once
    for s in spheroids:
        assert Polygon(s.exterior, s.holes).is_valid


@settings(max_examples=40, deadline=None)
@given(
    labels=arrays(np.int32, st.tuples(st.integers(3, 30), st.integers(3, 30)), elements=st.integers(0, 2)),
    tolerance=st.floats(0.1, 3.0),
)
def test_simplified_outlines_are_always_valid(labels: NDArray[np.int32], tolerance: float) -> None:
    for spheroid in labels_to_spheroids(labels, tolerance):
        polygon = Polygon(spheroid.exterior, spheroid.holes)
        assert polygon.is_valid and polygon.area > 0


@pytest.mark.parametrize(("name", "mask"), _realistic_shapes(), ids=[name for name, _ in _realistic_shapes()])
def test_default_tolerance_keeps_iou_and_cuts_vertices(name: str, mask: Mask) -> None:
    spheroids = mask_to_spheroids(mask)

    vertices = sum(s.vertex_count for s in spheroids)
    assert _iou(_union(spheroids, mask.shape), mask) >= 0.995
    assert vertices <= 0.2 * _boundary_pixels(mask)


def test_labels_are_validated() -> None:
    with pytest.raises(ValueError, match="2-D"):
        labels_to_spheroids(np.zeros((2, 3, 4), dtype=np.int32))
    with pytest.raises(ValueError, match="integers"):
        labels_to_spheroids(np.zeros((3, 3), dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        labels_to_spheroids(np.full((3, 3), -1, dtype=np.int32))
    with pytest.raises(ValueError, match="tolerance"):
        labels_to_spheroids(np.zeros((3, 3), dtype=np.int32), -1.0)
    assert labels_to_spheroids(np.zeros((5, 5), dtype=np.int32)) == []


def test_huge_label_values_are_fine() -> None:
    labels = np.zeros((20, 20), dtype=np.int64)
    labels[2:8, 2:8] = 2**40
    labels[10:18, 10:18] = 5

    spheroids = labels_to_spheroids(labels)

    assert len(spheroids) == 2
    assert _union(spheroids, labels.shape).sum() == (labels > 0).sum()


# -- orientation ---------------------------------------------------------------------------------------------


def test_traced_rings_run_counter_clockwise_on_screen_and_holes_clockwise() -> None:
    shape = (60, 60)
    mask = _ellipse(shape, 30, 30, 25, 25) & ~_ellipse(shape, 30, 30, 10, 10)

    [spheroid] = mask_to_spheroids(mask)

    # y points down: counter-clockwise on screen is a negative shoelace area of the stored numbers.
    assert _signed_area(spheroid.exterior) < 0
    assert _signed_area(spheroid.holes[0]) > 0
    # Going round the top of the outline (smallest y) on screen counter-clockwise means moving towards -x.
    top = int(np.argmin(spheroid.exterior[:, 1]))
    following = spheroid.exterior[(top + 1) % len(spheroid.exterior)]
    assert following[0] < spheroid.exterior[top, 0]


def test_orient_rings_matches_shapely_orient_with_negative_sign() -> None:
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    hole = np.array([[1.0, 1.0], [1.0, 2.0], [2.0, 2.0], [2.0, 1.0]])
    spheroid = Spheroid(exterior=square, holes=(hole,))

    oriented = orient_rings(spheroid)

    expected = orient(Polygon(square, [hole]), sign=-1.0)
    assert LinearRing(oriented.exterior).equals(expected.exterior)
    assert not LinearRing(oriented.exterior).is_ccw  # shapely's ccw is y-up: clockwise in its terms
    assert LinearRing(oriented.holes[0]).is_ccw
    assert tuple(oriented.exterior[0]) == (0.0, 0.0)  # a reversed ring keeps its first vertex
    assert orient_rings(oriented).exterior.tolist() == oriented.exterior.tolist()


# -- simplify_ring -------------------------------------------------------------------------------------------


def test_simplify_ring_drops_vertices_within_tolerance_and_keeps_orientation() -> None:
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    circle = np.column_stack((100 + 50 * np.cos(angles), 100 - 50 * np.sin(angles)))

    simplified = simplify_ring(circle, 0.5)

    assert 10 < len(simplified) < 60
    assert LinearRing(simplified).is_simple
    assert np.sign(_signed_area(simplified)) == np.sign(_signed_area(circle))
    assert Polygon(circle).hausdorff_distance(Polygon(simplified)) <= 0.5 + 1e-9
    assert len(simplify_ring(circle, 0.0)) <= len(circle)
    with pytest.raises(GeometryError):
        simplify_ring([[0.0, 0.0], [1.0, 1.0]], 0.5)


# -- repair --------------------------------------------------------------------------------------------------


def test_repair_splits_a_bow_tie_into_two_triangles() -> None:
    bow_tie = [[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]]
    assert not Polygon(bow_tie).is_valid

    parts = repair_spheroid(bow_tie)

    assert len(parts) == 2
    for part in parts:
        polygon = Polygon(part.exterior)
        assert polygon.is_valid
        assert polygon.area == pytest.approx(1.0)
        assert _signed_area(part.exterior) < 0


def test_repair_cuts_a_notch_where_a_hole_crosses_the_exterior() -> None:
    square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
    crossing = [[8.0, 4.0], [12.0, 4.0], [12.0, 6.0], [8.0, 6.0]]  # pokes out of the right edge

    [part] = repair_spheroid(square, [crossing])

    polygon = Polygon(part.exterior, part.holes)
    assert polygon.is_valid
    assert not part.holes
    assert polygon.area == pytest.approx(100.0 - 4.0)


def test_repair_drops_a_hole_outside_and_keeps_one_inside() -> None:
    square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]
    inside = [[2.0, 2.0], [4.0, 2.0], [4.0, 4.0], [2.0, 4.0]]
    outside = [[20.0, 20.0], [22.0, 20.0], [22.0, 22.0]]

    [part] = repair_spheroid(square, [inside, outside])

    assert len(part.holes) == 1
    assert Polygon(part.exterior, part.holes).area == pytest.approx(96.0)
    assert _signed_area(part.holes[0]) > 0


def test_repair_hands_back_valid_rings_as_given_only_oriented() -> None:
    exterior = np.array([[3.0, 0.0], [0.0, 0.0], [0.0, 9.0], [9.0, 9.0], [9.0, 0.0]])  # counter-clockwise
    hole = np.array([[2.0, 2.0], [2.0, 4.0], [4.0, 4.0], [4.0, 2.0]])  # counter-clockwise too: turned round

    [part] = repair_spheroid(exterior, [hole])

    np.testing.assert_array_equal(part.exterior, exterior)  # every vertex, the first one first
    np.testing.assert_array_equal(part.holes[0], [[2.0, 2.0], [4.0, 2.0], [4.0, 4.0], [2.0, 4.0]])
    assert orient_rings(part).exterior.tolist() == part.exterior.tolist()


def test_repair_removes_duplicate_points() -> None:
    ring = [[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [5.0, 0.0], [5.0, 5.0], [0.0, 5.0], [0.0, 0.0]]

    [part] = repair_spheroid(ring)

    assert len(part.exterior) == 4
    assert not np.any(np.all(part.exterior == np.roll(part.exterior, 1, axis=0), axis=1))
    assert Polygon(part.exterior).area == pytest.approx(25.0)


@pytest.mark.parametrize(
    ("exterior", "holes", "message"),
    [
        ([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [], "no area"),
        ([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [], "no area"),
        ([[0.0, 0.0], [1.0, 0.0]], [], "no area"),
        ([[0.0, 0.0], [np.nan, 0.0], [1.0, 1.0]], [], "non-finite"),
        (
            [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]],
            [[[-1.0, -1.0], [3.0, -1.0], [3.0, 3.0], [-1.0, 3.0]]],
            "holes",
        ),
    ],
)
def test_repair_refuses_what_has_no_area(
    exterior: list[list[float]], holes: list[list[list[float]]], message: str
) -> None:
    with pytest.raises(GeometryError, match=message):
        repair_spheroid(exterior, holes)


def test_repaired_parts_are_valid_for_random_scribbles() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        ring = rng.uniform(0, 20, size=(int(rng.integers(3, 12)), 2))
        try:
            parts = repair_spheroid(ring, [rng.uniform(0, 20, size=(5, 2))])
        except GeometryError:
            continue
        for part in parts:
            assert shapely.is_valid(Polygon(part.exterior, part.holes))
