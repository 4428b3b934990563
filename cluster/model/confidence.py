"""How sure the ResUNet is of each outline it draws: one figure from 0 to 1 per spheroid.

From the network's foreground probability ``p`` and the instance labels decoded from it, both at working
resolution (where the network answered; the full-resolution outline is ``p`` resized and cut at the
threshold, so it adds no belief of its own):

==========  ================================================================================================
inside      mean of ``p`` over the spheroid's pixels: how sure the network is that they are spheroid
contrast    mean of ``p`` over the band just inside the outline minus its mean over the band just outside
            it (each ``BAND`` working pixels wide, chessboard distance, starting one pixel from the edge,
            so the edge pixel, which a sharp network gives its covered fraction, counts on neither side;
            the outside band leaves out pixels near another spheroid too): 1 where the network places the
            edge sharply, near 0 where its belief fades over several pixels or never rises far above the
            background's
confidence  ``inside * max(contrast, 0)``, in [0, 1]
==========  ================================================================================================

A clean, well-lit spheroid scores about 0.9 to 1; a faint, blurred or half-believed one lower, and a
reviewer walks the least certain first. A spheroid too small for an inside band (under about three working
pixels across) uses all its pixels for it; one with no background around it (it fills the image) compares
against a probability of 0.

It is a ranking, not a calibrated probability of being right. Pure numpy and scipy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

__all__ = ["BAND", "instance_confidence"]

BAND = 2
"""Width, in working pixels, of the bands inside and outside the outline whose probabilities are compared."""


def instance_confidence(foreground: NDArray[np.float32], labels: NDArray[np.int32]) -> NDArray[np.float64]:
    """Confidence of each label of ``labels`` (index ``k`` for label ``k``; index 0 unused and 0)."""
    count = int(labels.max())
    scores = np.zeros(count + 1, dtype=np.float64)
    if count == 0:
        return scores
    p = foreground.astype(np.float64, copy=False)
    inside = _means(p, labels, count, default=0.0)

    square = np.ones((3, 3), dtype=bool)
    # Bands by chessboard distance (binary morphology: a few times cheaper than distance transforms).
    deep = ndi.binary_erosion(_apart_from_neighbours(labels), square, border_value=1)
    deeper = ndi.binary_erosion(deep, square, iterations=BAND, border_value=1)
    inner = np.where(deep & ~deeper, labels, 0)
    inner_means = _means(p, inner, count, default=np.nan)
    inner_means = np.where(np.isnan(inner_means), inside, inner_means)

    near = ndi.binary_dilation(labels > 0, square)
    band = ndi.binary_dilation(near, square, iterations=BAND) & ~near
    reach = 2 * (BAND + 1) + 1
    highest = ndi.grey_dilation(labels, size=reach)
    lowest = ndi.grey_erosion(np.where(labels > 0, labels, count + 1), size=reach)
    # A pixel near two spheroids is between them, not the background around either.
    outer = np.where(band & (highest == lowest), highest, 0)
    outer_means = np.nan_to_num(_means(p, outer, count, default=np.nan), nan=0.0)

    contrast = np.clip(inner_means - outer_means, 0.0, 1.0)
    scores = np.clip(inside * contrast, 0.0, 1.0)
    scores[0] = 0.0
    return scores


def _means(
    values: NDArray[np.float64], labels: NDArray[np.int32], count: int, *, default: float
) -> NDArray[np.float64]:
    """Mean of ``values`` per label 0..count; ``default`` for a label with no pixels."""
    flat = labels.ravel()
    sums = np.bincount(flat, weights=values.ravel(), minlength=count + 1)
    sizes = np.bincount(flat, minlength=count + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(sizes > 0, sums / np.maximum(sizes, 1), default)
    return np.asarray(means, dtype=np.float64)


def _apart_from_neighbours(labels: NDArray[np.int32]) -> NDArray[np.bool_]:
    """Pixels of an instance that do not touch another instance (so each gets its own edge depth)."""
    separate = labels > 0
    for axis in (0, 1):
        for shift in (1, -1):
            neighbour = np.roll(labels, shift, axis=axis)
            separate &= (neighbour == labels) | (neighbour == 0)
    return np.asarray(separate, dtype=bool)
