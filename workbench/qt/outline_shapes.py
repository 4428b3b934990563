"""Outlines as napari Shapes data (coordinates swapped to napari's (row, column), holes bridged or apart)
and as line segments for one draw of every outline (:class:`OutlineLines`).

napari draws a polygon with holes as one vertex list: the exterior, a step back to its first vertex, each
hole (wound the other way), a step back to the hole's first vertex; the edges walked twice (the bridges)
drop out of the triangulation, so the face has its holes. That is how the display layer draws a spheroid.
Editing such a list would show the bridge vertices, so a spheroid being edited is opened as separate
shapes, one per ring (:func:`rings_of`), and put together again from them (:func:`outline_rings`).

The outlines are in image pixels with (0, 0) the top-left corner of the first pixel; napari puts a pixel's
centre on integer coordinates, so the shape layers are shifted by half a pixel (:func:`shape_translate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from workbench.editing import Outline

__all__ = ["OutlineLines", "bridged", "outline_rings", "rings_of", "shape_translate"]

Colour = tuple[float, float, float, float]
CLEAR: Colour = (0.0, 0.0, 0.0, 0.0)
RING_VERTICES_KEPT = 8
"""However far out the view is zoomed, a ring keeps at least this many vertices (all, if it has fewer)."""


def bridged(outline: Outline) -> NDArray[np.float64]:
    """The outline as one napari polygon, (row, column), holes bridged from the exterior's first vertex."""
    exterior = _wound(outline.exterior, clockwise=False)
    parts = [exterior[:, ::-1], exterior[:1, ::-1]]
    for hole in outline.holes:
        wound = _wound(hole, clockwise=True)
        parts += [wound[:, ::-1], wound[:1, ::-1], exterior[:1, ::-1]]
    return np.concatenate(parts) if outline.holes else exterior[:, ::-1].copy()


def rings_of(outline: Outline) -> list[NDArray[np.float64]]:
    """Each ring of the outline as its own napari polygon (row, column): the exterior first."""
    return [np.asarray(ring)[:, ::-1].copy() for ring in (outline.exterior, *outline.holes)]


def outline_rings(shapes: Sequence[Any]) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
    """The exterior (the largest ring) and the holes, (x, y), from the shapes of an edit layer."""
    rings = [np.asarray(shape, dtype=np.float64)[:, -2:][:, ::-1] for shape in shapes if len(shape) >= 3]
    if not rings:
        return np.empty((0, 2)), []
    areas = [abs(shapely.area(shapely.Polygon(ring))) for ring in rings]
    largest = int(np.argmax(areas))
    return rings[largest], [ring for index, ring in enumerate(rings) if index != largest]


def shape_translate(scale: float) -> tuple[float, float]:
    """Where the shape layers sit so that outline coordinates fall on pixel corners."""
    return (-0.5 * scale, -0.5 * scale)


def _wound(ring: NDArray[np.float64], *, clockwise: bool) -> NDArray[np.float64]:
    x, y = ring[:, 0], ring[:, 1]
    signed = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
    return ring[::-1] if (signed < 0) != clockwise else ring


class OutlineLines:
    """Every spheroid's rings as line segments in three arrays that one GL_LINES draw takes whole: the
    vertices (x, y), a colour per vertex and the segments as pairs of vertex indices.

    A ring of n vertices has n segments (the last closes it), so each spheroid owns one range of rows, the
    same in the vertices and the segments: its slot. Building is numpy over all rings at once (no Python
    work per segment). An edit touches only the changed spheroids' slots: rewritten in place when the vertex
    count is unchanged (a move, a dragged vertex), else retired (segments collapsed onto one vertex, colour
    transparent: nothing drawn) and appended at the end; the retired rows are reclaimed once they are half
    of all rows, so memory stays bounded however long the editing goes on.

    Zoomed out, :meth:`decimated` gives every few vertices of each ring instead: a software rasterizer
    (Mesa's, under Xvfb or a remote desktop) spends about as long on the vertices as on the image.
    """

    def __init__(self) -> None:
        self._vertices = np.empty((0, 2), dtype=np.float32)
        self._colours = np.empty((0, 4), dtype=np.float32)
        self._segments = np.empty((0, 2), dtype=np.uint32)
        self._used = 0
        self._retired = 0
        self._slots: dict[int, tuple[int, int]] = {}
        self.segment_length = 1.0
        """The median length of a segment when the outlines were drawn anew, in image pixels."""

    def __len__(self) -> int:
        """How many spheroids are drawn."""
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    @property
    def vertices(self) -> NDArray[np.float32]:
        return self._vertices[: self._used]

    @property
    def colours(self) -> NDArray[np.float32]:
        return self._colours[: self._used]

    @property
    def segments(self) -> NDArray[np.uint32]:
        return self._segments[: self._used]

    def reset(self, outlines: Sequence[tuple[int, Outline, Colour, Colour]]) -> None:
        """Draw exactly these (key, outline, colour of its exterior, colour of its holes)."""
        rings = [ring for _, outline, _, _ in outlines for ring in (outline.exterior, *outline.holes)]
        lengths = np.array([len(ring) for ring in rings], dtype=np.int64)
        ring_colours = [
            colour
            for _, outline, outer, inner in outlines
            for colour in (outer, *[inner] * len(outline.holes))
        ]
        total = int(lengths.sum())
        self._vertices = np.concatenate(rings).astype(np.float32) if rings else np.empty((0, 2), np.float32)
        self._colours = np.repeat(np.array(ring_colours, dtype=np.float32).reshape(-1, 4), lengths, axis=0)
        self._segments = _closed(lengths, 0)
        self._used, self._retired = total, 0
        sizes = [_size(outline) for _, outline, _, _ in outlines]
        ends = np.cumsum(sizes, dtype=np.int64).tolist()
        self._slots = {
            key: (end - size, end) for (key, *_), size, end in zip(outlines, sizes, ends, strict=True)
        }
        ends_of = self._vertices[self._segments[:, 1]] - self._vertices[self._segments[:, 0]]
        self.segment_length = float(np.median(np.hypot(*ends_of.T))) if total else 1.0

    def decimated(self, step: int) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint32]]:
        """Vertices, colours and segments with every ``step``-th vertex of each ring (of a ring of few
        vertices, enough to keep :data:`RING_VERTICES_KEPT`), the retired rows left out (``step`` 1:
        every row as it is)."""
        if step <= 1:
            return self.vertices, self.colours, self.segments
        segments = self.segments.astype(np.int64)
        rows = np.arange(self._used)
        closing = np.flatnonzero((segments[:, 0] != segments[:, 1]) & (segments[:, 1] != rows + 1))
        starts = segments[closing, 1]
        lengths = closing - starts + 1
        strides = np.clip(np.minimum(step, lengths // RING_VERTICES_KEPT), 1, None)
        total = int(lengths.sum())
        within = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        kept = (np.repeat(starts, lengths) + within)[within % np.repeat(strides, lengths) == 0]
        kept_lengths = -(-lengths // strides)
        return self._vertices[kept], self._colours[kept], _closed(kept_lengths, 0)

    def put(self, key: int, outline: Outline | None, outer: Colour = CLEAR, inner: Colour = CLEAR) -> None:
        """Draw ``key`` as ``outline`` now (``None``: not at all), touching only its own slot."""
        size = 0 if outline is None else _size(outline)
        slot = self._slots.pop(key, None)
        if slot is not None and slot[1] - slot[0] != size:
            self._retire(*slot)
            slot = None
        if outline is None:
            self._reclaim()
            return
        if slot is None:
            slot = self._append(size)
        start, end = slot
        rings = [outline.exterior, *outline.holes]
        lengths = np.array([len(ring) for ring in rings], dtype=np.int64)
        self._vertices[start:end] = np.concatenate(rings)
        ring_colours = np.array([outer, *[inner] * len(outline.holes)], dtype=np.float32)
        self._colours[start:end] = np.repeat(ring_colours, lengths, axis=0)
        self._segments[start:end] = _closed(lengths, start)
        self._slots[key] = slot
        self._reclaim()

    def colour_of(self, key: int, ring: int = 0) -> Colour:
        """The colour ``key``'s exterior (``ring`` 0) or its hole ``ring - 1`` is drawn in."""
        start, _ = self._slots[key]
        row = start + sum(len(drawn) for drawn in self.drawn(key)[:ring])
        red, green, blue, alpha = (float(value) for value in self._colours[row])
        return (red, green, blue, alpha)

    def drawn(self, key: int) -> list[NDArray[np.float32]]:
        """The rings drawn for ``key``: each closed walk of its segments, as (x, y) vertices."""
        start, end = self._slots[key]
        rings, ring_start = [], start
        for row in range(start, end):
            if int(self._segments[row, 1]) == ring_start:  # the segment that closes this ring
                rings.append(self._vertices[ring_start : row + 1])
                ring_start = row + 1
        return rings

    def _retire(self, start: int, end: int) -> None:
        self._segments[start:end] = start
        self._colours[start:end] = 0.0
        self._retired += end - start

    def _append(self, size: int) -> tuple[int, int]:
        start, end = self._used, self._used + size
        if end > len(self._vertices):
            capacity = max(end, 2 * len(self._vertices), 1024)
            self._vertices = _grown(self._vertices, capacity)
            self._colours = _grown(self._colours, capacity)
            self._segments = _grown(self._segments, capacity)
        self._used = end
        return start, end

    def _reclaim(self) -> None:
        """Once half the rows are retired, drop them: every slot moved down, its segments renumbered."""
        if self._retired * 2 <= self._used:
            return
        order = sorted(self._slots.items(), key=lambda item: item[1][0])
        rows = np.concatenate([np.arange(start, end) for _, (start, end) in order] or [np.empty(0, np.int64)])
        shift = np.zeros(self._used, dtype=np.int64)
        shift[rows] = np.arange(len(rows)) - rows
        segments = self._segments[rows].astype(np.int64)
        self._segments = (segments + shift[segments]).astype(np.uint32)
        self._vertices, self._colours = self._vertices[rows], self._colours[rows]
        self._used, self._retired = len(rows), 0
        position = 0
        for key, (start, end) in order:
            self._slots[key] = (position, position + end - start)
            position += end - start


def _size(outline: Outline) -> int:
    return len(outline.exterior) + sum(len(hole) for hole in outline.holes)


def _closed(lengths: NDArray[np.int64], offset: int) -> NDArray[np.uint32]:
    """The segments of rings of ``lengths`` vertices stored one after another from row ``offset``: each
    vertex to the next, the last of each ring back to its first."""
    rows = np.arange(offset, offset + int(lengths.sum()), dtype=np.int64)
    following = rows + 1
    ends = offset + np.cumsum(lengths)
    following[ends - 1 - offset] = ends - lengths
    return np.column_stack((rows, following)).astype(np.uint32)


def _grown(array: NDArray[Any], capacity: int) -> NDArray[Any]:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
