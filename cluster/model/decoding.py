"""From the network's probabilities to an instance label image at full resolution.

1. At working resolution, foreground is ``p_foreground > threshold``; instance seeds are the connected
   components of ``p_core > threshold`` inside it (cores of touching spheroids never touch).
2. A watershed on ``-p_core`` grows the seeds over the foreground, so touching spheroids are split along
   the valley of the core probability; foreground pieces with no seed become instances of their own.
3. **Rings are rejoined.** A hollow spheroid's wall is thin, so its core is a thin band that breaks where
   the wall narrows or the network hesitates, and step 2 then cuts the ring into arcs. Pieces that border
   the same lumen are joined again unless the cut between them is a neck: shorter than
   :data:`RING_NECK` times the thickness of the thinner piece (its widest inscribed disc). A lumen is a hole
   of the foreground at least :data:`LUMEN_REACH` times that thickness in inscribed radius. Two spheroids
   touching at a neck stay two; so do discs that touch in a circle round a gap of medium (their cuts are
   necks, and the gap is small next to them); the arcs of one ring meet across the full width of the wall.
4. **Thin objects are dropped**: the wall of a round well, a fibre or a scratch. An instance whose outline
   (holes filled, so a ring counts with its lumen) encloses more than ``max_thinness`` times its widest
   inscribed disc is a band, not a spheroid (an ellipse of axis ratio 1.8 scores 1.8, a band ``L`` long and
   ``w`` wide about ``1.3 L / w``), unless it bends like a ring's wall: a ring left open where its wall
   faded, or cut by the image's border, lies on a circle at most :data:`RING_CURVE` times as wide as the
   wall is thick and goes round at least :data:`RING_SPAN` degrees of it; a straight fibre lies on no
   circle, a well's wall on a far wider one, or on a short arc of it. Where an instance reaches the
   image's border it is measured as if it went on beyond it, so a spheroid cut by the border, even a thin
   slice of a large one, stays, and an arc that runs off the image is still a band.
5. Instances smaller than ``min_diameter_px`` (full-resolution pixels, equivalent diameter) are dropped.
6. Outlines at full resolution come from the foreground probability *resized bilinearly* to the image's
   size and thresholded there (smooth, sub-pixel edges, never stair-stepped); each foreground pixel takes
   the label of the working pixel under it, after the labels were grown by two working pixels so the finer
   outline never falls outside them. Pieces of a label that the finer threshold leaves apart from its body
   and smaller than ``min_diameter_px`` (specks where the probability hovers about the threshold) are
   dropped: each would be traced as a spheroid of its own, of a few pixels.

Pure numpy, scipy and scikit-image; the bilinear resize may also be done on the GPU by the caller.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels, watershed

__all__ = [
    "LUMEN_REACH",
    "MAX_THINNESS",
    "RING_CURVE",
    "RING_NECK",
    "RING_SPAN",
    "bilinear_resize",
    "drop_thin",
    "instances_at_working_resolution",
    "labels_to_full_resolution",
    "labels_with_sources",
    "rejoin_rings",
]

FloatArray = NDArray[np.float32]
Labels = NDArray[np.int32]

RING_NECK = 0.5
"""Pieces around one lumen stay apart only where the cut between them is shorter than this fraction of the
thinner piece's thickness: arcs of a wall meet across the wall's full width (fraction about 1), touching
discs at a neck."""

LUMEN_REACH = 0.15
"""A hole counts as a lumen when its inscribed radius is at least this fraction of the thinner piece's
thickness. Four equal discs that touch widely enough to pass the neck test enclose a gap of at most 0.11
(its radius at most 0.22 of theirs); a held-out hollow spheroid whose lumen the network had half filled
still scored 0.23 (0.25 had left it in two pieces). Five or more discs touching broadly in a circle can
pass both tests: they look like a ring to this rule."""


MAX_THINNESS = 5.0
"""Most an instance's filled area may exceed that of its widest inscribed disc (as the classical method's
``max_thinness``): a spheroid, elongated, lobed or cut by the border, stays under 3; a band scores about
1.3 times its length over its width, so one over four times as long as wide is dropped."""

RING_CURVE = 16.0
"""A thin instance can be a ring's wall only if it bends round a circle at most this many times as wide (in
radius) as it is thick. The held-out rings reach 4, the thin rings of the tests 13 (walls a tenth of their
radius); a well's wall is at least half the image's long side in radius, 128 working px, so it passes
only when over 8 px thick (as the generator draws them: 25 or more)."""

RING_SPAN = 150.0
"""...and only if it goes at least this many degrees round that circle: a ring left open where its wall
faded, or cut by the image's border (centre up to a tenth of its radius outside: 169 degrees), does;
the arc of a well's wall that crosses the image spans about 60-120 degrees."""


def instances_at_working_resolution(
    foreground: FloatArray,
    core: FloatArray,
    *,
    threshold: float = 0.5,
    min_area: float = 0.0,
    max_thinness: float = MAX_THINNESS,
) -> Labels:
    """Instance labels at working resolution (steps 1-5 of the module docstring)."""
    mask = foreground > threshold
    if not mask.any():
        return np.zeros(foreground.shape, dtype=np.int32)
    seeds, count = ndi.label((core > threshold) & mask)
    if count:
        sizes = np.bincount(seeds.ravel(), minlength=count + 1)
        small = sizes < 3
        small[0] = False
        seeds[small[seeds]] = 0
    labels = watershed(-core, markers=seeds, mask=mask).astype(np.int32)
    orphans, n_orphans = ndi.label(mask & (labels == 0))
    if n_orphans:
        offset = int(labels.max())
        labels = np.where(orphans > 0, orphans + offset, labels).astype(np.int32)
    return _drop_small(drop_thin(rejoin_rings(labels, mask), max_thinness), min_area)


def rejoin_rings(labels: Labels, mask: NDArray[np.bool_]) -> Labels:
    """``labels`` with the pieces of each hollow spheroid joined again (step 3 of the module docstring).

    ``mask`` is the foreground the labels cover. When pieces are joined the labels are renumbered 1..n,
    keeping their order.
    """
    count = int(labels.max())
    if count < 2:
        return labels
    holes, n_holes = ndi.label(ndi.binary_fill_holes(mask) & ~mask)
    if n_holes == 0:
        return labels
    index = np.arange(1, count + 1)
    thickness = np.zeros(count + 1)
    thickness[1:] = 2 * np.asarray(ndi.maximum(ndi.distance_transform_edt(mask), labels, index))
    reach = np.zeros(n_holes + 1)
    reach[1:] = ndi.maximum(ndi.distance_transform_edt(holes > 0), holes, np.arange(1, n_holes + 1))
    cuts = _cut_lengths(labels)
    around = _pieces_around_holes(labels, holes)
    parent = np.arange(count + 1)

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = int(parent[node])
        return node

    for (first, second), cut in cuts.items():
        shared = around.get(first, set()) & around.get(second, set())
        if not shared:
            continue
        thinner = min(thickness[first], thickness[second])
        lumen = max(reach[hole] for hole in shared)
        if cut >= RING_NECK * thinner and lumen >= LUMEN_REACH * thinner:
            parent[root(first)] = root(second)
    roots = np.array([root(node) for node in range(count + 1)])
    if (roots == np.arange(count + 1)).all():
        return labels
    return _sequential(roots[labels].astype(np.int32))


def _cut_lengths(labels: Labels) -> dict[tuple[int, int], int]:
    """For each pair of touching labels ``(a, b)``, ``a < b``: how many pixel edges they share."""
    pairs: list[NDArray[np.int64]] = []
    for before, after in ((labels[:-1], labels[1:]), (labels[:, :-1], labels[:, 1:])):
        touching = (before > 0) & (after > 0) & (before != after)
        low = np.minimum(before[touching], after[touching]).astype(np.int64)
        high = np.maximum(before[touching], after[touching]).astype(np.int64)
        pairs.append(low * (int(labels.max()) + 1) + high)
    keys, counts = np.unique(np.concatenate(pairs), return_counts=True)
    base = int(labels.max()) + 1
    return {(int(key) // base, int(key) % base): int(n) for key, n in zip(keys, counts, strict=True)}


def _pieces_around_holes(labels: Labels, holes: Labels) -> dict[int, set[int]]:
    """For each label, the holes it borders (pixels next to the hole, 8-connected)."""
    beside = ndi.grey_dilation(holes, size=3)
    touching = (beside > 0) & (labels > 0)
    around: dict[int, set[int]] = {}
    for piece, hole in set(zip(labels[touching].tolist(), beside[touching].tolist(), strict=True)):
        around.setdefault(int(piece), set()).add(int(hole))
    return around


def drop_thin(labels: Labels, max_thinness: float = MAX_THINNESS) -> Labels:
    """``labels`` without the bands among them: well walls, fibres, scratches (step 4 of the module
    docstring). Labels keep their numbers; dropped ones become background."""
    thin = [
        label
        for label, box in enumerate(ndi.find_objects(labels), start=1)
        if box is not None and _is_band(labels, label, box, max_thinness)
    ]
    if not thin:
        return labels
    return np.where(np.isin(labels, thin), 0, labels).astype(np.int32)


def _is_band(labels: Labels, label: int, box: tuple[slice, ...], max_thinness: float) -> bool:
    """Whether instance ``label`` (inside ``box``) is thin and does not bend like a ring's wall."""
    filled = ndi.binary_fill_holes(labels[box] == label)
    area = int(filled.sum())
    radius = _inscribed_radius(filled)
    if area <= max_thinness * math.pi * max(radius, 0.5) ** 2:
        return False
    if (
        area
        <= max_thinness * math.pi * max(_inscribed_radius(filled, _border_sides(box, labels.shape)), 0.5) ** 2
    ):
        return False
    return not _bends_like_a_ring(filled, 2 * radius)


def _bends_like_a_ring(band: NDArray[np.bool_], thickness: float) -> bool:
    """Whether the pixels of ``band`` lie on a circle (rms distance under half the thickness) at most
    :data:`RING_CURVE` times as wide as the band is thick, and go at least :data:`RING_SPAN` degrees round
    it: a ring's wall."""
    rows, cols = np.nonzero(band)
    x, y = cols.astype(np.float64), rows.astype(np.float64)
    x0, y0 = x.mean(), y.mean()
    x, y = x - x0, y - y0
    design = np.column_stack([x, y, np.ones_like(x)])
    (a, b, c), *_ = np.linalg.lstsq(design, x**2 + y**2, rcond=None)  # x^2 + y^2 = a x + b y + c
    radius_squared = c + (a**2 + b**2) / 4
    if radius_squared <= 0:
        return False
    radius = math.sqrt(radius_squared)
    spread = float(np.sqrt(np.mean((np.hypot(x - a / 2, y - b / 2) - radius) ** 2)))
    if radius > RING_CURVE * thickness or spread > thickness / 2:
        return False
    angles = np.sort(np.arctan2(y - b / 2, x - a / 2))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * math.pi]))
    return bool(2 * math.pi - gaps.max() >= math.radians(RING_SPAN))


def _border_sides(box: tuple[slice, ...], shape: tuple[int, ...]) -> list[tuple[bool, bool]]:
    """For each axis, whether ``box`` reaches the image's border before and after."""
    return [(part.start == 0, part.stop == size) for part, size in zip(box, shape, strict=True)]


def _inscribed_radius(filled: NDArray[np.bool_], border: list[tuple[bool, bool]] | None = None) -> float:
    """Radius of the widest disc inside ``filled``. Sides marked in ``border`` lie on the image's border:
    there the object is taken to go on beyond it (its edge rows repeated), so a spheroid cut by the border
    keeps the thickness it has, while a band crossing the border stays a band."""
    if border:
        reach = max(filled.shape)
        widths = [(reach * before, reach * after) for before, after in border]
        filled = np.pad(filled, widths, mode="edge")
    return float(ndi.distance_transform_edt(np.pad(filled, 1)).max())


def _drop_small(labels: Labels, min_area: float) -> Labels:
    count = int(labels.max())
    if count == 0:
        return labels
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= max(min_area, 1.0)
    keep[0] = False
    relabel = np.zeros(count + 1, dtype=np.int32)
    relabel[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return relabel[labels]


def bilinear_resize(values: FloatArray, shape: tuple[int, int]) -> FloatArray:
    """Bilinear resize with pixel-centre alignment (as ``align_corners=False``), separable, float32."""
    out = values.astype(np.float32, copy=False)
    for axis, size in enumerate(shape):
        length = out.shape[axis]
        if length == size:
            continue
        position = np.clip((np.arange(size, dtype=np.float32) + 0.5) * (length / size) - 0.5, 0, length - 1)
        lower = np.floor(position).astype(np.int64)
        upper = np.minimum(lower + 1, length - 1)
        weight = (position - lower).astype(np.float32)
        shape_w = [1, 1]
        shape_w[axis] = size
        weight = weight.reshape(shape_w)
        out = np.take(out, lower, axis=axis) * (1 - weight) + np.take(out, upper, axis=axis) * weight
    return out.astype(np.float32, copy=False)


def _nearest_index(size: int, length: int) -> NDArray[np.int64]:
    return np.minimum(((np.arange(size) + 0.5) * (length / size)).astype(np.int64), length - 1)


def labels_to_full_resolution(labels: Labels, foreground_full: NDArray[np.bool_]) -> Labels:
    """Step 6: label each full-resolution foreground pixel from the (grown) working-resolution labels."""
    return labels_with_sources(labels, foreground_full)[0]


def labels_with_sources(
    labels: Labels, foreground_full: NDArray[np.bool_], min_area: float = 0.0
) -> tuple[Labels, NDArray[np.int64]]:
    """Step 6, and for each full-resolution label ``k`` the working-resolution label it came from
    (``sources[k]``; ``sources[0]`` is 0): a working label with no full-resolution pixel left has none.
    Detached pieces of a label under ``min_area`` full-resolution pixels are dropped."""
    if not labels.any():
        return np.zeros(foreground_full.shape, dtype=np.int32), np.zeros(1, dtype=np.int64)
    grown = expand_labels(labels, distance=2)
    rows = _nearest_index(foreground_full.shape[0], labels.shape[0])
    cols = _nearest_index(foreground_full.shape[1], labels.shape[1])
    full = grown[np.ix_(rows, cols)]
    full[~foreground_full] = 0
    if min_area > 0:
        _drop_specks(full, min_area)
    present = np.unique(full)
    sources = np.concatenate(([0], present[present > 0])).astype(np.int64)
    return _sequential(full), sources


def _drop_specks(labels: Labels, min_area: float) -> None:
    """Zero, in place, each piece (8-connected) of a label smaller than ``min_area`` pixels (a label that is
    one such piece goes whole, as step 5 would have dropped it)."""
    for value, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        window = labels[box]
        pieces, _count = ndi.label(window == value, structure=np.ones((3, 3), dtype=bool))
        areas = np.bincount(pieces.ravel())
        small = np.nonzero(areas < min_area)[0]
        window[np.isin(pieces, small[small > 0])] = 0


def _sequential(labels: Labels) -> Labels:
    present = np.unique(labels)
    present = present[present > 0]
    if present.size == 0 or present[-1] == present.size:
        return labels.astype(np.int32, copy=False)
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.int32)
    lookup[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lookup[labels]


def min_working_area(min_diameter_px: float, scale: float) -> float:
    """Area in working pixels of a disc ``min_diameter_px`` full-resolution pixels across."""
    return math.pi * (min_diameter_px * scale / 2) ** 2
