"""Each edit on concrete shapes: the pieces a user gets, and the refusals they read."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.workbench.editing.shapes import area, disc, outline, rectangle
from workbench.editing import EditRefusedError, InvalidShapeError
from workbench.editing import operations as ops

U_SHAPE = np.array([[10, 10], [90, 10], [90, 90], [60, 90], [60, 40], [40, 40], [40, 90], [10, 90]], float)
"""A U upside down on screen: two legs hanging from a bar, the gap between them open at the bottom."""


def test_a_line_crossing_a_concave_shape_twice_slices_it_into_the_three_pieces_it_separates() -> None:
    shape = outline(U_SHAPE)
    pieces = ops.sliced(shape, [[0, 70], [100, 70]])
    assert len(pieces) == 3
    assert sorted(round(area(piece)) for piece in pieces) == [600, 600, 4200]
    assert all(piece.polygon().is_valid for piece in pieces)
    assert math.isclose(sum(area(piece) for piece in pieces), area(shape))


def test_a_bent_slice_line_cuts_along_every_segment() -> None:
    pieces = ops.sliced(outline(rectangle(10, 10, 90, 90)), [[0, 50], [50, 50], [50, 100]])
    assert sorted(round(area(piece)) for piece in pieces) == [1600, 4800]


def test_a_slice_line_that_ends_inside_is_refused_with_what_to_draw() -> None:
    with pytest.raises(EditRefusedError, match="does not cut across"):
        ops.sliced(outline(rectangle(10, 10, 90, 90)), [[0, 50], [50, 50]])


def test_merging_two_touching_discs_gives_one_spheroid_covering_both() -> None:
    a, b = outline(disc(50, 50, 20)), outline(disc(80, 50, 20))
    union = ops.merged([a, b])
    assert union.holes == ()
    assert math.isclose(area(union), a.polygon().union(b.polygon()).area, rel_tol=1e-9)


def test_merging_neighbours_a_pixel_apart_bridges_the_gap_without_inventing_more() -> None:
    left, right = outline(rectangle(10, 10, 50, 50)), outline(rectangle(51, 10, 90, 50))
    union = ops.merged([left, right])
    assert area(union) == pytest.approx(area(left) + area(right) + 40, abs=1.0)


def test_merging_spheroids_far_apart_is_refused_and_says_how_far() -> None:
    with pytest.raises(EditRefusedError, match=r"do not touch \(one is 20.0 px"):
        ops.merged([outline(rectangle(10, 10, 30, 30)), outline(rectangle(50, 10, 70, 30))])
    with pytest.raises(InvalidShapeError, match="two or more"):
        ops.merged([outline(rectangle(10, 10, 30, 30))])


def test_a_hole_drawn_inside_is_cut_out_and_removing_it_fills_it_again() -> None:
    square = outline(rectangle(10, 10, 90, 90))
    holed = ops.with_hole(square, disc(50, 50, 10))
    assert len(holed.holes) == 1
    assert area(holed) == pytest.approx(6400 - area(outline(disc(50, 50, 10))))
    assert holed.metrics().hole_count == 1
    assert ops.hole_at(holed, 50, 50) == 0 and ops.hole_at(holed, 20, 20) is None
    filled = ops.without_hole(holed, 0)
    assert filled.holes == () and area(filled) == pytest.approx(6400)


def test_a_hole_touching_the_outline_becomes_a_notch() -> None:
    notched = ops.with_hole(outline(rectangle(10, 10, 90, 90)), rectangle(10, 40, 30, 60))
    assert notched.holes == () and area(notched) == pytest.approx(6400 - 400)
    assert notched.polygon().is_valid


def test_a_hole_drawn_across_the_outline_is_refused() -> None:
    with pytest.raises(EditRefusedError, match="inside the outline"):
        ops.with_hole(outline(rectangle(10, 10, 90, 90)), disc(90, 50, 10))
    with pytest.raises(InvalidShapeError, match="there is no hole 2"):
        ops.without_hole(outline(rectangle(10, 10, 90, 90)), 2)


def test_brush_adds_a_smooth_stroke_and_refuses_one_that_misses() -> None:
    square = outline(rectangle(10, 10, 50, 50))
    grown = ops.brushed(square, [[45, 30], [70, 30]], 5)
    assert len(grown) == 1 and grown[0].polygon().is_valid
    # the stroke reaches 20 px past the edge, 10 px wide, with a round end
    assert area(grown[0]) == pytest.approx(1600 + 20 * 10 + math.pi * 25 / 2, rel=0.01)
    with pytest.raises(EditRefusedError, match="does not touch"):
        ops.brushed(square, [[80, 80], [90, 90]], 5)


def test_erasing_across_a_spheroid_splits_it_and_erasing_it_all_leaves_nothing() -> None:
    square = outline(rectangle(10, 10, 90, 90))
    halves = ops.brushed(square, [[50, 0], [50, 100]], 5, erase=True)
    assert [round(area(half)) for half in halves] == [2800, 2800]
    assert ops.brushed(square, [[50, 50]], 80, erase=True) == []


def test_simplify_keeps_the_shape_with_fewer_vertices() -> None:
    round_shape = outline(disc(100, 100, 50, n=512))
    simple = ops.simplified(round_shape, 0.5)
    assert len(simple.exterior) < 100
    assert area(simple) == pytest.approx(area(round_shape), rel=0.01)
    with pytest.raises(InvalidShapeError, match="tolerance must be"):
        ops.simplified(round_shape, -1)


def test_a_self_crossing_outline_is_repaired_into_the_pieces_it_encloses() -> None:
    bow_tie = [[10, 10], [50, 50], [10, 50], [50, 10]]
    pieces = ops.reshaped(bow_tie)
    assert len(pieces) == 2 and all(piece.polygon().is_valid for piece in pieces)


def test_results_are_clipped_to_the_image_and_slivers_dropped() -> None:
    (clipped,) = ops.reshaped(rectangle(-20, -20, 30, 30), bounds=(100, 100))
    assert area(clipped) == pytest.approx(900)
    with pytest.raises(EditRefusedError, match="nothing of 2 px"):
        ops.reshaped(rectangle(10, 10, 11, 11.5))


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[0, 0], [1, 1]], "outline: needs at least 3 points, got 2"),
        ([[0, 0], [1, math.nan], [2, 0]], "outline: a coordinate is not a finite number"),
        ([1, 2, 3], r"outline: points must be \(x, y\) pairs"),
        ([[0, 0], [1, 1], [2, 2]], "encloses no area"),
    ],
)
def test_unusable_rings_are_refused_naming_what_is_wrong(points: object, message: str) -> None:
    with pytest.raises((InvalidShapeError, EditRefusedError), match=message):
        ops.reshaped(points)


def test_a_brush_of_no_radius_and_an_invalid_outline_are_refused() -> None:
    square = outline(rectangle(10, 10, 50, 50))
    with pytest.raises(InvalidShapeError, match="brush radius must be a positive"):
        ops.brushed(square, [[20, 20]], 0)
    bow_tie = outline(np.array([[10, 10], [50, 50], [10, 50], [50, 10]], float))
    with pytest.raises(InvalidShapeError, match=r"outline is invalid .*Self-intersection"):
        ops.sliced(bow_tie, [[0, 30], [60, 30]])


def test_slicing_through_a_hole_splits_the_spheroid_around_it() -> None:
    holed = outline(rectangle(10, 10, 90, 90), rectangle(40, 40, 60, 60))
    pieces = ops.sliced(holed, [[50, 0], [50, 100]])
    assert [round(area(piece)) for piece in pieces] == [3000, 3000]
    assert all(piece.holes == () for piece in pieces)


def test_bridging_a_gap_leaves_narrow_notches_elsewhere_alone() -> None:
    notch = [[10, 30.5], [30, 30.5], [30, 29.5], [10, 29.5]]  # 20 px deep, 1 px wide, on the far side
    notched = outline(np.array([[10, 10], [50, 10], [50, 50], [10, 50], *notch], float))
    union = ops.merged([notched, outline(rectangle(51, 10, 90, 50))])
    assert area(union) == pytest.approx(1600 - 20 + 1560 + 40, abs=1.0)
