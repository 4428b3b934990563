"""Tracing the outlines of a binary image: marching squares at level 0.5, vectorised.

A vertex sits at the midpoint of every crack between an inside and an outside pixel, so an outline passes
half-way between inside and outside pixel centres and rasterises back to the mask pixel for pixel (see
:mod:`cluster.polygons`, which simplifies these outlines). Rings are in index units of the image (pixel
centres at integers); the caller shifts them to image coordinates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from cluster.segmentation import Ring

__all__ = ["component_outlines", "signed_area"]


def component_outlines(image: NDArray[np.bool_], eight: bool) -> list[list[Ring]]:
    """``[exterior, *holes]`` of each connected component of ``image`` (False border), in index units."""
    rings = _trace(image, eight)
    areas = np.array([signed_area(ring) for ring in rings])
    exteriors = [ring for ring, area in zip(rings, areas, strict=True) if area > 0]
    holes = [ring for ring, area in zip(rings, areas, strict=True) if area < 0]
    if len(exteriors) == 1:
        return [[exteriors[0], *holes]]
    outlines: list[list[Ring]] = [[ring] for ring in exteriors]
    if holes:
        # A hole belongs to the smallest exterior around it (rings never touch: one vertex decides).
        shells = np.array([Polygon(ring) for ring in exteriors], dtype=object)
        hole_index, shell_index = shapely.STRtree(shells).query(
            shapely.points([hole[0] for hole in holes]), predicate="within"
        )
        by_size = np.lexsort((areas[areas > 0][shell_index], hole_index))
        hole_index, shell_index = hole_index[by_size], shell_index[by_size]
        smallest = np.flatnonzero(np.diff(hole_index, prepend=-1))
        for hole, shell in zip(hole_index[smallest].tolist(), shell_index[smallest].tolist(), strict=True):
            outlines[shell].append(holes[hole])
    return outlines


def _trace(image: NDArray[np.bool_], eight: bool) -> list[Ring]:
    """Rings ``(x, y)`` in index units of ``image`` (pixel centres at integers) around its True pixels.

    A vertex sits at the midpoint of each crack between a True and a False 4-neighbour and is followed with
    the True side on its right as seen on screen (exteriors clockwise, holes counter-clockwise). From a
    crack the next vertex is straight on or round the corner towards the True or the False side, as the two
    pixels ahead decide; at a diagonal saddle ``eight`` keeps the two True pixels together. ``image`` must
    be False on its border so that every ring closes. Each ring starts at its first vertex in raster order.
    """
    f = image
    h, w = f.shape
    v_rows, v_cols = np.nonzero(f[:, :-1] != f[:, 1:])  # cracks between (r, c) and (r, c + 1)
    h_rows, h_cols = np.nonzero(f[:-1, :] != f[1:, :])  # cracks between (r, c) and (r + 1, c)
    # Ids are read only where a crack is (np.where below discards the other branches' reads).
    v_id = np.empty((h, w - 1), dtype=np.intp)
    h_id = np.empty((h - 1, w), dtype=np.intp)
    v_id[v_rows, v_cols] = np.arange(len(v_rows))
    h_id[h_rows, h_cols] = np.arange(len(h_rows)) + len(v_rows)

    def follow(ahead_true: Any, ahead_false: Any, to_false: Any, straight: Any, to_true: Any) -> Any:
        turn_to_false = ahead_false & (ahead_true | eight)
        return np.where(turn_to_false, to_false, np.where(ahead_true & ~ahead_false, straight, to_true))

    r, c = v_rows, v_cols
    succ_v = np.where(
        f[r, c],  # True pixel left of the crack: travel down
        follow(f[r + 1, c], f[r + 1, c + 1], h_id[r, c + 1], v_id[r + 1, c], h_id[r, c]),
        follow(f[r - 1, c + 1], f[r - 1, c], h_id[r - 1, c], v_id[r - 1, c], h_id[r - 1, c + 1]),
    )
    r, c = h_rows, h_cols
    succ_h = np.where(
        f[r + 1, c],  # True pixel below the crack: travel right
        follow(f[r + 1, c + 1], f[r, c + 1], v_id[r, c], h_id[r, c + 1], v_id[r + 1, c]),
        follow(f[r, c - 1], f[r + 1, c - 1], v_id[r + 1, c - 1], h_id[r, c - 1], v_id[r, c - 1]),
    )
    points = np.concatenate(
        (np.column_stack((v_cols + 0.5, v_rows)), np.column_stack((h_cols, h_rows + 0.5)))
    )
    order, starts = _cycles(np.concatenate((succ_v, succ_h)))
    return np.split(points[order].astype(np.float64), starts[1:])


def _cycles(succ: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Walk the cycles of the permutation ``succ`` with O(log n) array passes (pointer jumping).

    Returns the nodes cycle after cycle, each cycle from its smallest node in ``succ`` order, and where
    each cycle starts in that order.
    """
    n = len(succ)
    passes = max(1, int(np.ceil(np.log2(max(n, 2)))))
    first, jump = np.arange(n), succ.copy()
    for _ in range(passes):  # first[i]: smallest node on the cycle through i
        first = np.minimum(first, first[jump])
        jump = jump[jump]
    # Cut each cycle before its first node, then rank by distance to the cut (Wyllie's list ranking).
    nxt = np.where(succ == first, np.arange(n), succ)
    to_end = (nxt != np.arange(n)).astype(np.intp)
    for _ in range(passes):
        to_end = to_end + to_end[nxt]
        nxt = nxt[nxt]
    order = np.lexsort((to_end[first] - to_end, first))
    return order, np.flatnonzero(np.diff(first[order], prepend=-1))


def signed_area(ring: Ring) -> float:
    """Shoelace area of the stored numbers: negative for counter-clockwise as seen on screen (y down)."""
    x, y = ring[:, 0], ring[:, 1]
    wrap = x[-1] * y[0] - x[0] * y[-1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]) + wrap)
