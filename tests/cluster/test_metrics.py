"""Morphology metrics: exact values on analytic shapes, agreement with regionprops, invariances."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from skimage.measure import regionprops

from cluster.exceptions import MetricError
from cluster.metrics import SpheroidMetrics, measure, measure_all
from cluster.polygons import spheroid_to_mask
from cluster.segmentation import Spheroid

_regionprops: Callable[..., list[Any]] = regionprops

N = 4096  # vertices of the dense analytic polygons (a multiple of 4)
TIGHT = 1e-9


def _ellipse_ring(
    cx: float, cy: float, a: float, b: float, angle_deg: float = 0.0, n: int = N
) -> NDArray[np.float64]:
    """Dense polygon inscribed in an ellipse whose ``a`` axis points ``angle_deg`` counter-clockwise from +x
    as seen on screen (y down)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    u, v = a * np.cos(t), b * np.sin(t)
    angle = math.radians(angle_deg)
    # Counter-clockwise on screen: the direction (cos, -sin) in y-down coordinates.
    x = u * math.cos(angle) + v * math.sin(angle)
    y = -u * math.sin(angle) + v * math.cos(angle)
    return np.column_stack((cx + x, cy + y))


def _rectangle_ring(cx: float, cy: float, w: float, h: float, angle_deg: float = 0.0) -> NDArray[np.float64]:
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    angle = math.radians(angle_deg)
    rotation = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    ring: NDArray[np.float64] = np.array([cx, cy]) + corners @ rotation.T
    return ring


def _polygon_area(n: int, a: float, b: float) -> float:
    """Exact area of the n-gon inscribed in an ellipse at equal parameter steps."""
    return n / 2 * a * b * math.sin(2 * math.pi / n)


def _rotate(ring: NDArray[np.float64], angle_deg: float) -> NDArray[np.float64]:
    """Rotate about the origin by ``angle_deg`` counter-clockwise as seen on screen."""
    angle = math.radians(angle_deg)
    x, y = ring[:, 0], ring[:, 1]
    return np.column_stack(
        (x * math.cos(angle) + y * math.sin(angle), -x * math.sin(angle) + y * math.cos(angle))
    )


def _angle_gap(a: float, b: float) -> float:
    """Distance between two axis angles in degrees, modulo 180."""
    gap = abs(a - b) % 180.0
    return min(gap, 180.0 - gap)


# -- analytic shapes -----------------------------------------------------------------------------------------


def test_disc() -> None:
    r = 40.0
    m = measure(Spheroid(_ellipse_ring(100, 80, r, r)))

    area = _polygon_area(N, r, r)
    perimeter = 2 * N * r * math.sin(math.pi / N)
    assert m.area_px == pytest.approx(area, rel=TIGHT)
    assert m.perimeter_px == pytest.approx(perimeter, rel=TIGHT)
    assert m.perimeter_with_holes_px == m.perimeter_px
    assert m.area_px == pytest.approx(math.pi * r * r, rel=1e-6)
    assert m.equivalent_diameter_px == pytest.approx(2 * r, rel=1e-6)
    assert m.circularity == pytest.approx(4 * math.pi * area / perimeter**2, rel=TIGHT)
    assert m.circularity == pytest.approx(1.0, rel=1e-6)
    assert m.compactness == pytest.approx(1.0, rel=1e-6)
    assert m.sphericity == pytest.approx(1.0, rel=1e-6)
    assert m.convexity == pytest.approx(1.0, rel=TIGHT)
    assert m.solidity == pytest.approx(1.0, rel=TIGHT)
    assert m.extent == pytest.approx(area / (2 * r) ** 2, rel=TIGHT)
    assert m.feret_max_px == pytest.approx(2 * r, rel=TIGHT)
    assert m.feret_min_px == pytest.approx(2 * r * math.cos(math.pi / N), rel=TIGHT)
    assert m.major_axis_px == pytest.approx(2 * r, rel=1e-6)
    assert m.minor_axis_px == pytest.approx(2 * r, rel=1e-6)
    assert m.orientation_deg == 0.0  # isotropic: no major axis
    assert (m.centroid_x, m.centroid_y) == pytest.approx((100.0, 80.0), abs=1e-9)
    assert (m.bbox_x_min, m.bbox_y_min, m.bbox_x_max, m.bbox_y_max) == pytest.approx((60, 40, 140, 120))
    assert m.hole_count == 0 and m.hole_area_px == 0.0


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0])
def test_ellipse(angle: float) -> None:
    a, b = 60.0, 24.0
    m = measure(Spheroid(_ellipse_ring(200, 150, a, b, angle)))

    h = ((a - b) / (a + b)) ** 2
    ramanujan = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
    assert m.area_px == pytest.approx(_polygon_area(N, a, b), rel=TIGHT)
    assert m.perimeter_px == pytest.approx(ramanujan, rel=1e-6)
    assert m.feret_max_px == pytest.approx(2 * a, rel=1e-6)
    assert m.feret_min_px == pytest.approx(2 * b, rel=1e-6)
    assert m.major_axis_px == pytest.approx(2 * a, rel=1e-6)
    assert m.minor_axis_px == pytest.approx(2 * b, rel=1e-6)
    assert m.aspect_ratio == pytest.approx(a / b, rel=1e-6)
    assert _angle_gap(m.orientation_deg, angle) < 1e-6
    assert 0.0 <= m.orientation_deg < 180.0
    assert m.circularity == pytest.approx(4 * math.pi * m.area_px / m.perimeter_px**2, rel=TIGHT)
    assert m.sphericity == pytest.approx(2 * math.sqrt(math.pi * m.area_px) / m.perimeter_px, rel=TIGHT)
    assert m.solidity == pytest.approx(1.0, rel=TIGHT)
    assert (m.centroid_x, m.centroid_y) == pytest.approx((200.0, 150.0), abs=1e-9)


def test_orientation_is_counter_clockwise_on_screen() -> None:
    # Major axis from lower left to upper right on screen: x grows while y (down) shrinks.
    ring = np.array([[0.0, 10.0], [1.0, 11.0], [11.0, 1.0], [10.0, 0.0]])
    assert measure(Spheroid(ring)).orientation_deg == pytest.approx(45.0)
    mirrored = ring * np.array([-1.0, 1.0])  # upper left to lower right
    assert measure(Spheroid(mirrored)).orientation_deg == pytest.approx(135.0)


def test_square() -> None:
    s = 10.0
    m = measure(Spheroid(_rectangle_ring(5, 5, s, s)))

    assert m.area_px == pytest.approx(s * s, rel=TIGHT)
    assert m.perimeter_px == pytest.approx(4 * s, rel=TIGHT)
    assert m.feret_max_px == pytest.approx(s * math.sqrt(2), rel=TIGHT)
    assert m.feret_min_px == pytest.approx(s, rel=TIGHT)
    assert m.major_axis_px == pytest.approx(2 * s / math.sqrt(3), rel=TIGHT)
    assert m.minor_axis_px == pytest.approx(2 * s / math.sqrt(3), rel=TIGHT)
    assert m.aspect_ratio == pytest.approx(1.0, rel=TIGHT)
    assert m.orientation_deg == 0.0
    assert m.circularity == pytest.approx(math.pi / 4, rel=TIGHT)
    assert m.compactness == pytest.approx(4 / math.pi, rel=TIGHT)
    assert m.sphericity == pytest.approx(math.sqrt(math.pi) / 2, rel=TIGHT)
    assert m.extent == pytest.approx(1.0, rel=TIGHT)
    assert m.solidity == pytest.approx(1.0, rel=TIGHT)
    assert m.convexity == pytest.approx(1.0, rel=TIGHT)
    assert (m.bbox_x_min, m.bbox_y_min, m.bbox_x_max, m.bbox_y_max) == pytest.approx((0, 0, 10, 10))


@pytest.mark.parametrize("angle", [0.0, 20.0, 75.0, 160.0])
def test_rotated_rectangle(angle: float) -> None:
    w, h = 30.0, 8.0
    ring = _rectangle_ring(50, 40, w, h, angle)
    m = measure(Spheroid(ring))

    assert m.area_px == pytest.approx(w * h, rel=TIGHT)
    assert m.perimeter_px == pytest.approx(2 * (w + h), rel=TIGHT)
    assert m.feret_max_px == pytest.approx(math.hypot(w, h), rel=TIGHT)
    assert m.feret_min_px == pytest.approx(h, rel=TIGHT)
    assert m.major_axis_px == pytest.approx(4 * math.sqrt(w * w / 12), rel=TIGHT)
    assert m.minor_axis_px == pytest.approx(4 * math.sqrt(h * h / 12), rel=TIGHT)
    assert _angle_gap(m.orientation_deg, angle) < 1e-9
    bbox_w, bbox_h = np.ptp(ring, axis=0)
    assert m.extent == pytest.approx(w * h / (bbox_w * bbox_h), rel=TIGHT)
    assert m.solidity == pytest.approx(1.0, rel=TIGHT)


def test_annulus_uses_net_area_but_outline_shape() -> None:
    big, small = 50.0, 20.0
    hole = _ellipse_ring(100, 100, small, small)[::-1]
    m = measure(Spheroid(_ellipse_ring(100, 100, big, big), (hole,)))
    solid = measure(Spheroid(_ellipse_ring(100, 100, big, big)))

    outer_area, hole_area = _polygon_area(N, big, big), _polygon_area(N, small, small)
    assert m.area_px == pytest.approx(outer_area - hole_area, rel=TIGHT)
    assert m.hole_area_px == pytest.approx(hole_area, rel=TIGHT)
    assert m.hole_count == 1
    assert m.perimeter_px == pytest.approx(solid.perimeter_px, rel=TIGHT)
    assert m.perimeter_with_holes_px == pytest.approx(
        solid.perimeter_px + 2 * N * small * math.sin(math.pi / N), rel=TIGHT
    )
    # A hollow round spheroid is as round as a solid one...
    assert m.circularity == pytest.approx(solid.circularity, rel=TIGHT)
    assert m.sphericity == pytest.approx(solid.sphericity, rel=TIGHT)
    # ...but solidity, extent and the equivalent diameter count only what is there.
    assert m.solidity == pytest.approx((outer_area - hole_area) / outer_area, rel=TIGHT)
    assert m.extent == pytest.approx((outer_area - hole_area) / (2 * big) ** 2, rel=TIGHT)
    assert m.equivalent_diameter_px == pytest.approx(math.sqrt(4 * m.area_px / math.pi), rel=TIGHT)
    # Second moments of an annulus: variance (R² + r²) / 4 along every axis.
    assert m.major_axis_px == pytest.approx(2 * math.sqrt(big**2 + small**2), rel=1e-6)
    assert m.feret_max_px == pytest.approx(solid.feret_max_px, rel=TIGHT)


def test_off_centre_hole_moves_the_centroid_away_from_it() -> None:
    hole = _rectangle_ring(70, 50, 20, 20)
    m = measure(Spheroid(_rectangle_ring(50, 50, 100, 100), (hole,)))

    # (100² * 50 - 20² * 70) / (100² - 20²)
    assert m.centroid_x == pytest.approx((10000 * 50 - 400 * 70) / 9600, rel=TIGHT)
    assert m.centroid_y == pytest.approx(50.0, rel=TIGHT)


def test_closing_vertex_and_orientation_do_not_matter() -> None:
    ring = _ellipse_ring(30, 30, 20, 10, 25, n=64)
    reference = measure(Spheroid(ring)).as_dict()

    closed = measure(Spheroid(np.vstack((ring, ring[:1])))).as_dict()
    reversed_ = measure(Spheroid(ring[::-1].copy())).as_dict()

    for other in (closed, reversed_):
        for key, value in reference.items():
            expected = None if value is None else pytest.approx(value, rel=1e-12, abs=1e-12)
            assert other[key] == expected, key


# -- agreement with regionprops ------------------------------------------------------------------------------


def _lobed_ring(cx: float, cy: float, r: float) -> NDArray[np.float64]:
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    radius = r * (1 + 0.2 * np.sin(3 * t + 0.4) + 0.05 * np.cos(7 * t))
    return np.column_stack((cx + radius * np.cos(t), cy - 1.3 * radius * np.sin(t)))


@pytest.mark.parametrize(
    "spheroid",
    [
        Spheroid(_ellipse_ring(100, 90, 70, 30, 35, n=720)),
        Spheroid(_ellipse_ring(100, 90, 50, 45, 120, n=720)),
        Spheroid(_lobed_ring(100, 100, 55)),
        Spheroid(_ellipse_ring(100, 100, 70, 60, 10, n=720), (_ellipse_ring(110, 95, 30, 20, 70, n=360),)),
    ],
    ids=["ellipse", "near-round", "lobed", "annulus"],
)
def test_agrees_with_regionprops_on_the_rasterised_polygon(spheroid: Spheroid) -> None:
    mask = spheroid_to_mask(spheroid, (200, 200))
    props = _regionprops(mask.astype(np.uint8))[0]
    m = measure(spheroid)

    assert m.area_px == pytest.approx(props.area, rel=0.01)
    # regionprops puts pixel centres at integers; we put them at +0.5.
    assert m.centroid_y == pytest.approx(props.centroid[0] + 0.5, abs=0.1)
    assert m.centroid_x == pytest.approx(props.centroid[1] + 0.5, abs=0.1)
    assert m.major_axis_px == pytest.approx(props.axis_major_length, rel=0.01)
    assert m.minor_axis_px == pytest.approx(props.axis_minor_length, rel=0.01)
    # regionprops: angle between the row axis and the major axis; ours: from +x, counter-clockwise on screen.
    assert _angle_gap(m.orientation_deg, math.degrees(props.orientation) + 90.0) < 1.0
    # regionprops' convex hull runs round pixel corners, about half a pixel outside the outline.
    assert m.solidity == pytest.approx(props.solidity, abs=m.perimeter_px / m.area_px)
    assert m.solidity >= props.solidity
    assert m.extent == pytest.approx(props.extent, abs=0.02)
    assert m.equivalent_diameter_px == pytest.approx(props.equivalent_diameter_area, rel=0.01)


# -- invariances (hypothesis) --------------------------------------------------------------------------------

LENGTHS = (
    "perimeter_px",
    "perimeter_with_holes_px",
    "equivalent_diameter_px",
    "feret_max_px",
    "feret_min_px",
    "major_axis_px",
    "minor_axis_px",
)
AREAS = ("area_px", "hole_area_px")
RATIOS = ("circularity", "compactness", "sphericity", "convexity", "solidity", "extent", "aspect_ratio")


@st.composite
def star_spheroids(draw: st.DrawFn) -> Spheroid:
    """A random star-shaped outline (always simple), sometimes with a small hole round its centre."""
    count = draw(st.integers(5, 40))
    radii = np.array(draw(st.lists(st.floats(5.0, 30.0), min_size=count, max_size=count)))
    stretch = draw(st.floats(0.4, 1.0))
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    cx, cy = draw(st.floats(-100, 100)), draw(st.floats(-100, 100))
    exterior = np.column_stack((cx + radii * np.cos(angles), cy + stretch * radii * np.sin(angles)))
    holes: tuple[NDArray[np.float64], ...] = ()
    if draw(st.booleans()):
        holes = (_ellipse_ring(cx, cy, 2.0, 1.5 * stretch, draw(st.floats(0, 180)), n=12),)
    return Spheroid(exterior, holes)


def _scaled(spheroid: Spheroid, k: float) -> Spheroid:
    return Spheroid(spheroid.exterior * k, tuple(hole * k for hole in spheroid.holes))


@settings(max_examples=80, deadline=None)
@given(spheroid=star_spheroids(), k=st.floats(0.1, 10.0))
def test_scaling_scales_lengths_and_areas_and_keeps_ratios(spheroid: Spheroid, k: float) -> None:
    m, scaled = measure(spheroid), measure(_scaled(spheroid, k))

    for name in LENGTHS:
        assert getattr(scaled, name) == pytest.approx(getattr(m, name) * k, rel=1e-7), name
    for name in AREAS:
        assert getattr(scaled, name) == pytest.approx(getattr(m, name) * k * k, rel=1e-7, abs=1e-9), name
    for name in RATIOS:
        assert getattr(scaled, name) == pytest.approx(getattr(m, name), rel=1e-7), name
    assert (scaled.centroid_x, scaled.centroid_y) == pytest.approx(
        (m.centroid_x * k, m.centroid_y * k), abs=1e-6
    )
    if m.orientation_deg != 0.0 or scaled.orientation_deg != 0.0:
        assert _angle_gap(scaled.orientation_deg, m.orientation_deg) < 1e-5


@settings(max_examples=80, deadline=None)
@given(spheroid=star_spheroids(), angle=st.floats(-360.0, 360.0))
def test_rotation_changes_only_orientation_and_bbox(spheroid: Spheroid, angle: float) -> None:
    rotated_spheroid = Spheroid(
        _rotate(spheroid.exterior, angle), tuple(_rotate(h, angle) for h in spheroid.holes)
    )
    m, rotated = measure(spheroid), measure(rotated_spheroid)

    for name in (*LENGTHS, *AREAS, *RATIOS):
        if name == "extent":
            continue  # depends on the axis-aligned bounding box
        assert getattr(rotated, name) == pytest.approx(getattr(m, name), rel=1e-7, abs=1e-9), name
    centre = _rotate(np.array([[m.centroid_x, m.centroid_y]]), angle)[0]
    assert (rotated.centroid_x, rotated.centroid_y) == pytest.approx(tuple(centre), abs=1e-6)
    assume(m.major_axis_px > 1.01 * m.minor_axis_px)  # a clear major axis
    assert _angle_gap(rotated.orientation_deg, m.orientation_deg + angle) < 1e-4


@settings(max_examples=60, deadline=None)
@given(spheroid=star_spheroids())
def test_ferets_match_brute_force(spheroid: Spheroid) -> None:
    m = measure(spheroid)
    points = spheroid.exterior

    gaps = points[:, None, :] - points[None, :, :]
    assert m.feret_max_px == pytest.approx(np.sqrt((gaps**2).sum(-1)).max(), rel=1e-12)
    # The minimum width over every direction (finely sampled) can only be at or above the caliper minimum.
    directions = np.linspace(0, np.pi, 20000, endpoint=False)
    spans = points @ np.stack((np.cos(directions), np.sin(directions)))
    sampled = float(np.ptp(spans, axis=0).min())
    assert m.feret_min_px <= sampled + 1e-9
    assert m.feret_min_px == pytest.approx(sampled, rel=1e-3)
    assert m.feret_min_px <= m.minor_axis_px * 2  # sanity: width is not absurdly large


@settings(max_examples=40, deadline=None)
@given(spheroid=star_spheroids(), size=st.floats(0.05, 20.0))
def test_micrometres_are_pixels_times_pixel_size(spheroid: Spheroid, size: float) -> None:
    m = measure(spheroid, size)

    for name in LENGTHS:
        um = getattr(m, name.removesuffix("_px") + "_um")
        assert um == pytest.approx(getattr(m, name) * size, rel=1e-12), name
    for name in AREAS:
        um2 = getattr(m, name.removesuffix("_px") + "_um2")
        assert um2 == pytest.approx(getattr(m, name) * size * size, rel=1e-12, abs=1e-12), name


def test_micrometre_fields_are_none_without_pixel_size() -> None:
    m = measure(Spheroid(_rectangle_ring(0, 0, 4, 2)))

    for field in fields(SpheroidMetrics):
        value = getattr(m, field.name)
        if field.name.endswith(("_um", "_um2")) or SpheroidMetrics.is_given(field.name):
            assert value is None, field.name  # no pixel size; confidence is the segmenter's to give
        else:
            assert isinstance(value, (int, float)) and math.isfinite(value), field.name


@pytest.mark.parametrize("size", [0.0, -1.0, math.nan, math.inf])
def test_bad_pixel_size_is_refused(size: float) -> None:
    with pytest.raises(MetricError, match="pixel_size_um"):
        measure(Spheroid(_rectangle_ring(0, 0, 4, 2)), size)


# -- degenerate shapes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exterior", "holes", "message"),
    [
        ([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], (), "invalid|area"),
        ([[0.0, 0.0], [1.0, 1.0]], (), "at least 3"),
        ([[0.0, 0.0], [1.0, np.nan], [2.0, 0.0]], (), "non-finite"),
        ([[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0]], (), "invalid"),
        (
            [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]],
            ([[5.0, 5.0], [6.0, 5.0], [6.0, 6.0]],),
            "invalid",
        ),
        ([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], (), "at least 3"),
    ],
    ids=["collinear", "two-vertices", "nan", "bow-tie", "hole-outside", "one-point"],
)
def test_degenerate_polygons_raise_metric_error(
    exterior: list[list[float]], holes: tuple[list[list[float]], ...], message: str
) -> None:
    spheroid = Spheroid(np.array(exterior), tuple(np.array(h) for h in holes))
    with pytest.raises(MetricError, match=message):
        measure(spheroid)


def test_measure_all_sets_metrics_and_names_the_bad_spheroid() -> None:
    good = Spheroid(_rectangle_ring(10, 10, 6, 4))
    bad = Spheroid(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))

    [measured] = measure_all([good], 0.5)
    assert measured.metrics is not None
    assert measured.metrics.area_um2 == pytest.approx(24 * 0.25)
    assert measured.exterior is good.exterior
    with pytest.raises(MetricError, match="spheroid 1"):
        measure_all([good, bad], None)


def test_metrics_round_trip_by_name_and_incomplete_ones_are_refused() -> None:
    metrics = measure(Spheroid(_ellipse_ring(30, 30, 20, 10, n=64)), 0.5)
    stored = metrics.as_dict()

    assert SpheroidMetrics.names() == tuple(field.name for field in fields(SpheroidMetrics))
    assert tuple(stored) == SpheroidMetrics.names()
    assert SpheroidMetrics.from_dict({**stored, "retired_metric": 1.0}) == metrics
    del stored["hole_area_um2"]  # as stored before that metric existed
    assert SpheroidMetrics.from_dict(stored) is None


def test_metrics_at_another_pixel_size_are_those_measured_at_it() -> None:
    """A pixel size set after measuring gives every µm value that measuring with it gives, and nothing else
    moves; without one, every µm value is None."""
    ring = np.array([[0, 0], [40, 0], [40, 30], [10, 35], [0, 20]], dtype=np.float64)
    hole = np.array([[10, 10], [20, 10], [20, 20]], dtype=np.float64)
    spheroid = Spheroid(ring, (hole,))
    unknown = measure(spheroid)
    for scale in (0.25, 1.6):
        derived = unknown.at_pixel_size(scale).as_dict()
        measured = measure(spheroid, scale).as_dict()
        assert derived.keys() == measured.keys()
        for name, value in measured.items():
            if value is None:  # confidence: the segmenter's, never measured
                assert derived[name] is None, name
                continue
            assert derived[name] == pytest.approx(value, rel=1e-12), name
    cleared = measure(spheroid, 0.5).at_pixel_size(None)
    assert all(getattr(cleared, f.name) is None for f in fields(cleared) if f.name.endswith(("_um", "_um2")))
    assert cleared.area_px == unknown.area_px
    with pytest.raises(MetricError):
        unknown.at_pixel_size(0.0)
