"""The outlines' line segments (one GL_LINES draw of every ring): after any sequence of edits, what is
drawn for each spheroid is exactly its rings, closed, in its state's colour; a spheroid gone draws nothing;
the rows of replaced slots are reclaimed, so memory stays bounded."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.editing import Outline
from workbench.qt.outline_shapes import RING_VERTICES_KEPT, OutlineLines

SAVED = (1.0, 0.85, 0.0, 1.0)
UNSAVED = (1.0, 0.45, 0.0, 1.0)
HOLE = (0.3, 0.6, 1.0, 1.0)


def _outline(random: np.random.Generator) -> Outline:
    centre = random.uniform(20, 400, 2)
    exterior = centre + random.uniform(5, 15) * _circle(int(random.integers(3, 40)))
    holes = [centre + 2 * _circle(int(random.integers(3, 9))) for _ in range(int(random.integers(0, 3)))]
    return Outline.of(exterior, holes)


def _circle(count: int) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.column_stack((np.cos(angles), np.sin(angles)))


def _rows(expected: dict[int, tuple[Outline, tuple[float, ...]]]) -> int:
    return sum(len(outline.exterior) + sum(map(len, outline.holes)) for outline, _ in expected.values())


def _assert_drawn(lines: OutlineLines, expected: dict[int, tuple[Outline, tuple[float, ...]]]) -> None:
    assert len(lines) == len(expected)
    for key, (outline, colour) in expected.items():
        drawn = lines.drawn(key)
        assert [ring.shape for ring in drawn] == [ring.shape for ring in (outline.exterior, *outline.holes)]
        for ring, wanted in zip(drawn, (outline.exterior, *outline.holes), strict=True):
            np.testing.assert_allclose(ring, wanted, atol=1e-3)
        assert lines.colour_of(key) == pytest.approx(colour)
    segments = lines.segments.astype(np.int64)
    visible = lines.colours[segments[:, 0], 3] > 0
    ends = lines.vertices[segments[:, 0]], lines.vertices[segments[:, 1]]
    assert int(visible.sum()) == _rows(expected)  # everything else is retired: transparent
    assert np.all(np.hypot(*(ends[0] - ends[1])[~visible].T) == 0)  # and of no length


@pytest.mark.parametrize("seed", range(5))
def test_random_edits_draw_each_spheroid_exactly_and_retired_rows_are_reclaimed(seed: int) -> None:
    random = np.random.default_rng(seed)
    expected = {key: (_outline(random), SAVED) for key in range(1, 60)}
    lines = OutlineLines()
    lines.reset([(key, outline, colour, HOLE) for key, (outline, colour) in expected.items()])
    _assert_drawn(lines, expected)
    rows_at_start = len(lines.vertices)
    next_key = -1
    for _ in range(300):
        roll = random.random()
        if roll < 0.4:  # reshaped (another vertex count)
            key = int(random.choice(list(expected)))
            expected[key] = (_outline(random), UNSAVED)
        elif roll < 0.6:  # moved: same vertex count, written in place
            key = int(random.choice(list(expected)))
            outline, _ = expected[key]
            expected[key] = (Outline.of(outline.exterior + 1, [hole + 1 for hole in outline.holes]), SAVED)
        elif roll < 0.8 and len(expected) > 1:  # deleted
            key = int(random.choice(list(expected)))
            del expected[key]
            lines.put(key, None)
            continue
        else:  # drawn
            key, next_key = next_key, next_key - 1
            expected[key] = (_outline(random), UNSAVED)
        outline, colour = expected[key]
        lines.put(key, outline, colour, HOLE)
    _assert_drawn(lines, expected)
    assert len(lines.vertices) <= 2 * _rows(expected)  # retired rows reclaimed
    assert rows_at_start > 0


def test_nothing_to_draw() -> None:
    lines = OutlineLines()
    lines.reset([])
    assert len(lines) == 0 and len(lines.vertices) == 0 and len(lines.segments) == 0
    outline = Outline.of(_circle(5) * 10 + 20)
    lines.put(-1, outline, UNSAVED, HOLE)
    assert len(lines) == 1 and lines.colour_of(-1) == pytest.approx(UNSAVED)


@pytest.mark.parametrize("step", [2, 4, 8])
def test_zoomed_out_every_few_vertices_of_each_ring_are_drawn_closed_and_small_rings_kept(step: int) -> None:
    random = np.random.default_rng(7)
    lines = OutlineLines()
    outlines = {key: _outline(random) for key in range(1, 40)}
    lines.reset([(key, outline, SAVED, HOLE) for key, outline in outlines.items()])
    for key in range(1, 10):  # some slots retired and appended: left out of what is drawn
        outlines[key] = _outline(random)
        lines.put(key, outlines[key], UNSAVED, HOLE)
    assert lines.decimated(1)[0] is lines.vertices or np.array_equal(lines.decimated(1)[0], lines.vertices)
    vertices, colours, segments = lines.decimated(step)
    assert len(vertices) == len(colours) == len(segments)
    rings = [ring for outline in outlines.values() for ring in (outline.exterior, *outline.holes)]
    expected = sum(-(-len(ring) // max(1, min(step, len(ring) // RING_VERTICES_KEPT))) for ring in rings)
    assert len(vertices) == expected
    assert np.all(colours[:, 3] == 1)  # nothing retired drawn
    following = dict(zip(segments[:, 0].tolist(), segments[:, 1].tolist(), strict=True))
    walked, start = 0, 0
    while start < len(vertices):  # each ring a closed walk of kept vertices, in order
        row, length = start, 0
        while True:
            row, length = following[row], length + 1
            if row == start:
                break
        assert length >= 3  # a ring, never a lone segment
        walked, start = walked + length, start + length
    assert walked == len(vertices)
    every = {tuple(np.round(point, 3)) for ring in rings for point in ring.astype(np.float32)}
    assert {tuple(np.round(point, 3)) for point in vertices} <= every  # true vertices, none made up
