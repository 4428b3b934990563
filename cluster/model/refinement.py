"""Small spheroids outlined again at a finer scale: a second pass of the network on crops around them.

The network sees an image area-averaged to 256 working pixels on its long side, so a spheroid 20 px in
radius spans 10 working pixels in a 512 x 512 image and 5 in a 1024 x 1024 one, and its outline, cut from
the probability resized bilinearly, is only as fine as that (held-out IoU 0.89 under 20 px radius). After
the first pass (:mod:`.decoding`):

1. **Which.** In an image the first pass shrank, each instance whose equivalent radius is under
   :data:`REFINE_BELOW` working pixels, where a crop can see it at least :data:`REFINE_GAIN` times finer;
   with the second look on, the first pass keeps instances down to :data:`CANDIDATE_SHARE` of the
   smallest diameter, so a faint spheroid it drew too small is looked at again rather than dropped
   (what is still too small afterwards is dropped then, :func:`drop_under`).
2. **Where.** A square of :data:`CROP` working pixels centred on it, at the scale that gives its radius
   :data:`TARGET` working pixels but enlarges the image at most :data:`MAX_ZOOM` times, moved to lie inside
   the image and taken from the normalised image as the first pass does: area-averaged, or resized
   bilinearly where it is enlarged. Every crop has the same size, so the network runs on one shape.
3. **Decode** the crop's probabilities as the whole image's are (decoding steps 1-6), back to the crop's
   full resolution.
4. **Replace.** The crop's instances that each hold :data:`SPLIT_SHARE` of the first outline replace it:
   usually one, or the spheroids of a touching pair the first pass merged, each then a spheroid of its own;
   never one that lies more on a neighbour's pixels than on the first outline (that is the neighbour, seen
   in the crop where it touches: taken for a split-off spheroid, it was a sliver of the neck).
   Each takes its piece that covers most of the first outline, on pixels that are background or the first
   outline's own (a neighbour keeps its pixels), if their area is within a factor :data:`AREA_AGREEMENT` of
   the first; otherwise (the crop saw something else) the first outline stays.

Labels keep their numbers, so each spheroid keeps the confidence of the first pass; one split off a merged
pair takes a new number and the confidence of the outline it came from. Pure numpy and scipy;
the caller runs the network on the crops (:meth:`ResUNetSegmenter.segment_scored
<cluster.model.segmenter.ResUNetSegmenter.segment_scored>`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from cluster.model.decoding import (
    bilinear_resize,
    instances_at_working_resolution,
    labels_to_full_resolution,
    min_working_area,
)
from cluster.model.targets import area_resize

__all__ = [
    "AREA_AGREEMENT",
    "CANDIDATE_SHARE",
    "CROP",
    "MAX_ZOOM",
    "REFINE_BELOW",
    "REFINE_GAIN",
    "SPLIT_SHARE",
    "TARGET",
    "Window",
    "crop_input",
    "drop_under",
    "refinement_windows",
    "replace_outline",
]

FloatArray = NDArray[np.float32]
Labels = NDArray[np.int32]

REFINE_BELOW = 12.0
"""Instances under this equivalent radius in working pixels are refined (24 px in a 512 x 512 image)."""

REFINE_GAIN = 1.5
"""A crop must see an instance at least this many times finer than the first pass did."""

MAX_ZOOM = 2.0
"""Most a crop is enlarged (bilinearly). The network has seen only area-averaged images, sharp at their
pixels, but a spheroid 10 px in radius enlarged twice is drawn about as well as one 20 px across (IoU 0.965
at 11 px in radius in the tests, 0.94 seen at 1:1)."""

TARGET = 20.0
"""The radius, in the crop's working pixels, an instance is seen at (if the image has the pixels)."""

CROP = 128
"""Side of every crop in working pixels (a quarter of a 256 x 256 pass's pixels)."""

SPLIT_SHARE = 0.1
"""Each of the crop's instances that holds at least this share of the first outline's pixels (of those the
crop calls foreground) takes its place: one, or the spheroids of a touching pair or group the first pass
had merged into one, each a spheroid of its own."""

AREA_AGREEMENT = 2.0
"""The refined outline replaces the first only if neither area exceeds the other by more than this (a first
outline under the smallest diameter counts as that large: a faint spheroid drawn too small may grow)."""

CANDIDATE_SHARE = 0.3
"""The first pass keeps instances down to this share of the smallest diameter (``min_diameter_px``) for
the second look; what is still under it after refinement is dropped (:func:`drop_under`)."""


@dataclass(frozen=True)
class Window:
    """Where the crop of one instance lies in its image, and the scale it is seen at."""

    label: int
    top: int
    left: int
    height: int
    width: int
    scale: float
    """Crop working pixels per image pixel (up to :data:`MAX_ZOOM`)."""
    working_shape: tuple[int, int]
    """The crop's size at working resolution: :data:`CROP` square, less where the image is smaller."""
    area: int
    """The instance's area in image pixels before refinement."""

    @property
    def box(self) -> tuple[slice, slice]:
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def refinement_windows(labels: Labels, scale: float) -> list[Window]:
    """The crops the small instances of full-resolution ``labels`` are refined in (steps 1 and 2);
    ``scale`` is the first pass's working pixels per image pixel."""
    if scale >= 1.0 or not labels.any():
        return []
    areas = np.bincount(labels.ravel())
    windows = []
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        radius = math.sqrt(areas[label] / math.pi) if box is not None else 0.0
        if radius == 0 or radius * scale >= REFINE_BELOW:
            continue
        crop_scale = min(MAX_ZOOM, TARGET / radius)
        if crop_scale < REFINE_GAIN * scale:
            continue
        side = round(CROP / crop_scale)
        height, width = min(side, labels.shape[0]), min(side, labels.shape[1])
        row, col = (box[0].start + box[0].stop) / 2, (box[1].start + box[1].stop) / 2
        top = int(np.clip(round(row - height / 2), 0, labels.shape[0] - height))
        left = int(np.clip(round(col - width / 2), 0, labels.shape[1] - width))
        working = (_working(height, side, crop_scale), _working(width, side, crop_scale))
        windows.append(Window(label, top, left, height, width, crop_scale, working, int(areas[label])))
    return windows


def _working(length: int, side: int, scale: float) -> int:
    return CROP if length == side else max(1, round(length * scale))


def crop_input(image: FloatArray, window: Window) -> FloatArray:
    """The network's input for ``window``: the normalised image's crop, area-averaged to working size."""
    if window.scale <= 1:
        return area_resize(image[window.box], window.working_shape)
    return bilinear_resize(image[window.box], window.working_shape)


def replace_outline(
    labels: Labels,
    window: Window,
    foreground: FloatArray,
    core: FloatArray,
    *,
    threshold: float = 0.5,
    min_diameter_px: float = 0.0,
) -> list[int]:
    """Replace instance ``window.label`` of ``labels`` in place by the crop's (steps 3 and 4), given the
    network's probabilities on the crop. Returns the labels drawn there now: ``[window.label]``, followed
    by the new labels of the other spheroids of a pair or group the crop split it into; ``[]`` if the
    first outline stays."""
    if window.area != int(np.count_nonzero(labels[window.box] == window.label)):
        return []  # the first outline reaches beyond the crop: leave it whole
    crop_labels = instances_at_working_resolution(
        foreground,
        core,
        threshold=threshold,
        min_area=min_working_area(min_diameter_px, window.scale),
    )
    if not crop_labels.any():
        return []
    shape = (window.height, window.width)
    fine = labels_to_full_resolution(crop_labels, bilinear_resize(foreground, shape) > threshold)
    region = labels[window.box]
    first = region == window.label
    found, overlap = np.unique(fine[first], return_counts=True)
    overlap, found = overlap[found > 0], found[found > 0]
    if found.size == 0:
        return []
    # A crop instance lying more on a neighbour's pixels than on the first outline is that neighbour, seen
    # in the crop where it meets this spheroid: taken for a spheroid split off, it was a sliver of the neck.
    on_neighbours = np.bincount(fine[(region > 0) & ~first], minlength=int(fine.max()) + 1)[found]
    order = np.argsort(overlap)[::-1]
    kept = [
        int(found[i])
        for i in order
        if overlap[i] >= SPLIT_SHARE * overlap.sum() and overlap[i] >= on_neighbours[i]
    ]
    if not kept:
        return []  # the crop cuts it in many small pieces: no better than the first
    allowed = (region == 0) | first
    pieces = [_main_piece(fine == piece, allowed, first) for piece in kept]
    old_area = max(float(window.area), min_working_area(min_diameter_px, 1.0))
    new_area = float(sum(int(piece.sum()) for piece in pieces))
    if min(int(piece.sum()) for piece in pieces) == 0:
        return []
    if max(old_area, new_area) > AREA_AGREEMENT * min(old_area, new_area):
        return []
    highest = int(labels.max())
    region[first] = 0
    drawn = [window.label] + [highest + i for i in range(1, len(pieces))]
    for label, piece in zip(drawn, pieces, strict=True):
        region[piece & (region == 0)] = label
    return drawn


def _main_piece(
    mask: NDArray[np.bool_], allowed: NDArray[np.bool_], first: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """The connected piece of ``mask & allowed`` that covers most of ``first``: one spheroid, one piece."""
    mask = mask & allowed
    pieces, count = ndi.label(mask)
    if count <= 1:
        return mask
    return np.asarray(pieces == np.bincount(pieces[first & mask], minlength=count + 1)[1:].argmax() + 1)


def drop_under(labels: Labels, confidence: dict[int, float], min_area: float) -> None:
    """Zero, in place, the instances of ``labels`` under ``min_area`` pixels, and forget their confidence:
    candidates the second look did not find to be spheroids of the smallest size."""
    areas = np.bincount(labels.ravel())
    under = np.nonzero(areas < min_area)[0]
    under = under[(under > 0) & (areas[under] > 0)]
    if under.size:
        labels[np.isin(labels, under)] = 0
        for label in under:
            confidence.pop(int(label), None)
