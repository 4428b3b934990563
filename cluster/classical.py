"""The classical baseline: spheroids in brightfield images without any model.

A spheroid under a brightfield or phase-contrast microscope is a dense, textured mass, darker than the
medium around it, often with a bright halo and sometimes a brighter necrotic core or a hollow lumen, on a
background lit unevenly (vignetting, gradients, the dark rim of a well). The method:

1. **Working resolution.** Average-pool the image so its long side is about ``working_size`` pixels; all
   analysis runs there, and outlines are scaled back with sub-pixel smoothness at the end.
2. **Background flattening.** Fit a low-order polynomial surface to the brightest part of the image and
   refine it with one-sided robust trimming, so even a field-filling spheroid (darker than the medium)
   does not drag the background model down. The flattened image is ``image - background``.
3. **Local threshold.** The noise level of the flattened, smoothed image is estimated robustly (MAD of its
   non-dark half); a pixel is foreground when it is ``threshold_z`` noise levels darker than its local
   background, or when its fine-scale texture is ``texture_z`` times stronger than the background's (the
   granular interior of a spheroid with a bright core).
4. **Morphology.** An opening removes debris and single cells, a closing bridges gaps at the rim; then
   holes are filled *unless* they look like background (as bright and as smooth as the medium, judged
   away from their dark rim) and are large enough to be a real lumen, so hollow spheroids keep their hole.
5. **Size filter and splitting.** Objects smaller than ``min_diameter_px`` go; touching spheroids are split
   by a watershed on the distance transform of their outlines (lumens filled), seeded only by maxima
   separated by a neck markedly narrower than the smaller body (``split_depth``), so lobed and hollow
   spheroids stay whole.
6. **Back to full resolution.** Each object's mask is smoothed and upsampled bilinearly, then thresholded at
   one half, so outlines are smooth rather than stair-stepped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from skimage.morphology import disk, reconstruction
from skimage.segmentation import watershed

from cluster.parameters import check_ranges, parameter
from cluster.segmenter import FloatImage, LabelImage, check_segmentable

__all__ = ["ClassicalParams", "ClassicalSegmenter"]

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class ClassicalParams:
    """Parameters of the classical segmenter. Lengths are in full-resolution pixels unless noted.

    Every numeric one has an upper bound too: a server passes these from users to workers, and a
    working_size of 10**6 or an opening radius of 10**4 would spend a worker's memory or hours on one image.
    """

    working_size: int = parameter(
        512, "Long side, in pixels, of the image the analysis runs on.", minimum=64, maximum=8192
    )
    background_degree: int = parameter(
        2, "Degree of the polynomial illumination model.", minimum=0, maximum=4
    )
    smoothing_sigma: float = parameter(
        1.5, "Gaussian smoothing before thresholding, in working-resolution pixels.", minimum=0, maximum=50
    )
    threshold_z: float = parameter(
        4.0,
        "How many noise levels darker than the background a spheroid pixel is.",
        minimum=1e-3,
        maximum=100,
    )
    texture_z: float = parameter(
        2.5,
        "How many times stronger than the background's a spheroid's fine texture is.",
        minimum=1e-3,
        maximum=100,
    )
    opening_radius: float = parameter(
        2.0,
        "Radius of the opening that removes debris, in working-resolution pixels.",
        minimum=0,
        maximum=50,
    )
    closing_radius: float = parameter(
        2.0,
        "Radius of the closing that bridges gaps at the rim, in working-resolution pixels.",
        minimum=0,
        maximum=50,
    )
    min_diameter_px: float = parameter(
        24.0,
        "Objects with a smaller equivalent diameter (pixels) are dropped (debris, single cells).",
        minimum=0,
        maximum=1e6,
    )
    min_contrast: float = parameter(
        0.08,
        "Least mean darkening of an object against the medium, in normalised intensity (0..1).",
        minimum=0,
        maximum=1,
    )
    max_thinness: float = parameter(
        5.0,
        "Most an object's area may exceed that of the largest disc inside it (drops well walls, fibres).",
        minimum=1,
        maximum=1e6,
    )
    min_lumen_fraction: float = parameter(
        0.02,
        "A background-like hole is kept as a lumen only if it is at least this fraction of its spheroid.",
        minimum=0,
        maximum=1,
    )
    split_touching: bool = parameter(True, "Split touching spheroids along their neck.")
    split_depth: float = parameter(
        0.35,
        "A neck splits two bodies only if it is this fraction narrower than the smaller body's radius.",
        minimum=0,
        maximum=1,
    )

    def __post_init__(self) -> None:
        check_ranges(self)


class ClassicalSegmenter:
    """The model-free baseline; implements :class:`cluster.segmenter.Segmenter`."""

    name = "classical"
    version = "1.1"  # 1.1: lumens judged from their inside, hollow spheroids split on their outline

    def __init__(self, params: ClassicalParams | None = None) -> None:
        self.params = params or ClassicalParams()

    @property
    def parameters(self) -> Mapping[str, Any]:
        return asdict(self.params)

    def segment(self, images: Sequence[FloatImage]) -> list[LabelImage]:
        return [self.segment_one(image) for image in images]

    def segment_one(self, image: FloatImage) -> LabelImage:
        check_segmentable(image)
        p = self.params
        factor = max(1, math.ceil(max(image.shape) / p.working_size))
        small = _pool(np.asarray(image, dtype=np.float32), factor)
        flat = small - _background(small, p.background_degree)
        foreground = _foreground(flat, p)
        foreground = _clean(foreground, flat, p, factor)
        labels_small = _split(foreground, p) if p.split_touching else ndi.label(foreground)[0]
        return _upsample_labels(labels_small.astype(np.int32), factor, image.shape)


def _pool(image: FloatArray, factor: int) -> FloatArray:
    """Average-pool by ``factor``; the last partial rows and columns are pooled from what is there."""
    if factor == 1:
        return image
    rows, cols = image.shape
    pad_rows, pad_cols = -rows % factor, -cols % factor
    padded = np.pad(image, ((0, pad_rows), (0, pad_cols)), mode="edge")
    shape = (padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return np.asarray(padded.reshape(shape).mean(axis=(1, 3)), dtype=np.float32)


def _exponents(degree: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]


def _background(small: FloatArray, degree: int) -> FloatArray:
    """Robust polynomial model of the illumination, fitted to the medium rather than the spheroids."""
    grid = 48
    block_rows = max(1, small.shape[0] // grid)
    block_cols = max(1, small.shape[1] // grid)
    samples = _pool_blocks(small, block_rows, block_cols)
    rows, cols = np.meshgrid(
        (np.arange(samples.shape[0]) + 0.5) * block_rows / small.shape[0],
        (np.arange(samples.shape[1]) + 0.5) * block_cols / small.shape[1],
        indexing="ij",
    )
    exponents = _exponents(degree)
    design = np.stack([rows.ravel() ** i * cols.ravel() ** j for i, j in exponents], axis=-1)
    values = samples.ravel().astype(np.float64)
    # Start from the brightest 40 %: spheroids are darker than the medium, and may cover most of the field.
    keep = values >= np.quantile(values, 0.6)
    coefficients = np.zeros(design.shape[1])
    for _ in range(6):
        if keep.sum() < design.shape[1] * 2:
            break
        kept = design[keep]
        # Normal equations: a handful of terms, so this is exact enough and far cheaper than an SVD.
        coefficients = np.linalg.solve(kept.T @ kept + 1e-9 * np.eye(len(exponents)), kept.T @ values[keep])
        residual = values - design @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep]))) + 1e-6
        keep = (residual > -2.5 * spread) & (residual < 4.0 * spread)
    # Evaluate term by term as outer products of row and column powers: no full-size design matrix.
    row_axis = (np.arange(small.shape[0]) + 0.5) / small.shape[0]
    col_axis = (np.arange(small.shape[1]) + 0.5) / small.shape[1]
    surface = np.zeros(small.shape, dtype=np.float32)
    for (i, j), coefficient in zip(exponents, coefficients, strict=True):
        surface += np.outer(coefficient * row_axis**i, col_axis**j).astype(np.float32)
    return surface


def _pool_blocks(image: FloatArray, block_rows: int, block_cols: int) -> FloatArray:
    rows = image.shape[0] // block_rows * block_rows
    cols = image.shape[1] // block_cols * block_cols
    cropped = image[:rows, :cols]
    pooled = cropped.reshape(rows // block_rows, block_rows, cols // block_cols, block_cols).mean(axis=(1, 3))
    return np.asarray(pooled, dtype=np.float32)


def _robust_noise(values: FloatArray) -> float:
    """Noise level from the non-dark half of a flattened image (spheroids only add dark values)."""
    upper = values[values >= np.median(values)]
    centre = float(np.median(values))
    # For Gaussian noise the median of the upper half's distance to the median is 0.6745 sigma.
    return max(1.4826 * float(np.median(upper - centre)), 1e-4)


def _foreground(flat: FloatArray, p: ClassicalParams) -> BoolArray:
    """Detect pixels clearly darker than the medium, then place each object's edge at half its contrast.

    Detection needs a strict threshold (``threshold_z`` noise levels) to stay clear of noise, but an edge
    found there sits where the blurred rim has barely started to darken, several pixels outside the true
    edge; so each detected object is re-thresholded at half way between the medium and its own interior.
    """
    smooth = ndi.gaussian_filter(flat, p.smoothing_sigma)
    noise = _robust_noise(smooth)
    medium_level = float(np.median(smooth))
    detected = smooth < medium_level - p.threshold_z * noise
    labels, count = ndi.label(detected)
    if count == 0:
        return np.asarray(detected, dtype=bool)
    interior = np.asarray(ndi.mean(smooth, labels, np.arange(1, count + 1)), dtype=np.float32)
    half_way = np.minimum((interior + medium_level) / 2, medium_level - 2 * noise)
    reach = int(3 * p.smoothing_sigma) + 2
    distance, (near_rows, near_cols) = ndi.distance_transform_edt(~detected, return_indices=True)
    nearest = labels[near_rows, near_cols]
    threshold = np.concatenate([[medium_level], half_way])[nearest]
    refined = (smooth < threshold) & (distance <= reach)
    # Keep only refined pieces that hold detected pixels (no new specks from the looser threshold).
    pieces, _ = ndi.label(refined)
    anchored = np.unique(pieces[detected & refined])
    return np.asarray(np.isin(pieces, anchored[anchored > 0]), dtype=bool)


def _texture(flat: FloatArray, sigma: float) -> FloatArray:
    """Local standard deviation of the fine detail: high in granular tissue, low in the medium."""
    detail = flat - ndi.gaussian_filter(flat, sigma)
    return np.asarray(np.sqrt(ndi.gaussian_filter(detail * detail, 2.0 * sigma)), dtype=np.float32)


def _clean(foreground: BoolArray, flat: FloatArray, p: ClassicalParams, factor: int) -> BoolArray:
    if p.opening_radius > 0:
        foreground = ndi.binary_opening(foreground, structure=disk(p.opening_radius))
    if p.closing_radius > 0:
        padded = np.pad(foreground, int(p.closing_radius) + 1)
        closed = ndi.binary_closing(padded, structure=disk(p.closing_radius))
        foreground = closed[
            tuple(slice(int(p.closing_radius) + 1, -int(p.closing_radius) - 1) for _ in range(2))
        ]
    foreground = _fill_holes_except_lumens(foreground, flat, p)
    return _plausible_spheroids(foreground, flat, p, factor)


def _plausible_spheroids(
    foreground: BoolArray, flat: FloatArray, p: ClassicalParams, factor: int
) -> BoolArray:
    """Keep objects large, dark and compact enough to be spheroids.

    Drops single cells and debris (too small), dust and faint out-of-focus rings (too little contrast),
    the dark wall of a well or a fibre (too thin for their size: a spheroid's outline encloses at most a few
    times the largest disc that fits inside it).
    """
    labels, count = ndi.label(foreground)
    if count == 0:
        return foreground
    index = np.arange(1, count + 1)
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    medium_level = float(np.median(flat[~foreground]))
    contrast = medium_level - np.asarray(ndi.mean(flat, labels, index))
    filled = np.pad(ndi.binary_fill_holes(foreground), 1)  # a hollow spheroid's ring is thin, its outline not
    inscribed = np.asarray(ndi.maximum(ndi.distance_transform_edt(filled)[1:-1, 1:-1], labels, index))
    filled_areas = np.asarray(ndi.sum_labels(filled[1:-1, 1:-1], labels, index))
    thinness = filled_areas / (math.pi * np.maximum(inscribed, 0.5) ** 2)

    min_area = math.pi * (p.min_diameter_px / factor / 2) ** 2
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = (areas >= min_area) & (contrast >= p.min_contrast) & (thinness <= p.max_thinness)
    return np.asarray(keep[labels], dtype=bool)


def _fill_holes_except_lumens(foreground: BoolArray, flat: FloatArray, p: ClassicalParams) -> BoolArray:
    """Fill holes, except those as bright and as smooth as the medium and big enough to be a lumen.

    A bright necrotic core is textured tissue and gets filled; a hollow spheroid's lumen is medium and stays.
    """
    filled = ndi.binary_fill_holes(foreground)
    holes, count = ndi.label(filled & ~foreground)
    if count == 0:
        return np.asarray(filled, dtype=bool)
    medium = ~filled
    texture = _texture(flat, p.smoothing_sigma)
    noise = _robust_noise(flat)
    medium_level = float(np.median(flat[medium])) if medium.any() else 0.0
    medium_texture = float(np.median(texture[medium])) if medium.any() else float(np.median(texture))
    index = np.arange(1, count + 1)
    hole_area = ndi.sum_labels(np.ones_like(flat), holes, index)
    inside = _away_from_rim(holes, count, _texture_reach(p.smoothing_sigma))
    hole_level = ndi.mean(flat, inside, index)
    in_holes = inside > 0  # the median sorts what it is given: only the holes' pixels, not the image
    hole_texture = ndi.median(texture[in_holes], inside[in_holes], index)
    object_labels, _ = ndi.label(filled)
    object_area = np.bincount(object_labels.ravel())
    owner = ndi.maximum(object_labels, holes, index).astype(int)
    looks_like_medium = (np.abs(hole_level - medium_level) < p.threshold_z * noise) & (
        hole_texture < p.texture_z * medium_texture
    )
    big_enough = hole_area >= p.min_lumen_fraction * object_area[owner]
    lumen = np.zeros(count + 1, dtype=bool)
    lumen[1:] = looks_like_medium & big_enough
    return np.asarray(filled & ~lumen[holes], dtype=bool)


def _texture_reach(sigma: float) -> int:
    """How far, in pixels, an edge raises :func:`_texture`: its detail filter, then its smoothing."""
    return math.ceil(sigma + 2 * (2.0 * sigma))


def _away_from_rim(holes: NDArray[np.int32], count: int, reach: int) -> NDArray[np.int32]:
    """``holes`` without the band ``reach`` wide along their rims; a hole with nothing beyond it kept whole.

    The dark rim around a lumen is an edge, and an edge looks like texture to :func:`_texture`: averaged
    over a whole lumen of radius 60 px it more than doubled the texture and filled the lumen. What the
    hole holds is read from its inside, as the medium's texture is read from the median of its pixels.
    """
    inside = np.where(ndi.distance_transform_edt(holes > 0) > reach, holes, 0)
    present = np.bincount(inside.ravel(), minlength=count + 1) > 0
    thin = ~present[holes] & (holes > 0)  # holes too small to have an inside: judged from all their pixels
    return np.asarray(np.where(thin, holes, inside), dtype=np.int32)


def _split(foreground: BoolArray, p: ClassicalParams) -> NDArray[np.int32]:
    """Split touching spheroids where a neck is markedly narrower than the bodies it joins.

    Bodies and necks are measured on the outlines, lumens filled: a hollow spheroid is as wide as its
    outline, whereas its ring alone looks like a chain of thin bodies, to be cut into pieces or merged
    with a neighbour.
    """
    outlines = ndi.binary_fill_holes(foreground)
    distance = ndi.distance_transform_edt(outlines).astype(np.float32)
    labels, count = ndi.label(outlines)
    if count == 0:
        return np.asarray(labels, dtype=np.int32)
    markers = np.zeros_like(labels)
    next_marker = 1
    for index, region in enumerate(ndi.find_objects(labels), start=1):
        if region is None:
            continue
        mask = labels[region] == index
        local = np.where(mask, distance[region], 0.0)
        peak = float(local.max())
        # h-maxima: maxima that rise more than split_depth * peak above any saddle joining them.
        h = max(1.0, p.split_depth * peak)
        seeds = _domes(local, h) & mask
        seed_labels, seed_count = ndi.label(seeds)
        if seed_count <= 1:
            markers[region][mask] = next_marker
            next_marker += 1
            continue
        region_markers = np.where(seed_labels > 0, seed_labels + next_marker - 1, 0)
        markers[region] = np.where(mask, region_markers, markers[region])
        next_marker += seed_count
    split = np.zeros_like(labels)
    seeded = watershed(-distance, markers=np.where(outlines, markers, 0), mask=outlines)
    split[foreground] = seeded[foreground]
    return np.asarray(split, dtype=np.int32)


def _domes(values: NDArray[np.float32], h: float) -> BoolArray:
    """The upper half of every dome of ``values`` that rises at least ``h`` above the saddles around it.

    These are the h-maxima (reconstruction by dilation of ``values - h``), widened to a cap of depth h/2 so a
    flat ridge (a ring-shaped spheroid) gives one connected seed, not many isolated equal maxima.
    """
    seed = np.maximum(values - h, 0.0)
    reconstructed = reconstruction(seed, values, method="dilation")
    return np.asarray(values - reconstructed > h / 2, dtype=bool)


def _upsample_labels(labels: NDArray[np.int32], factor: int, shape: tuple[int, ...]) -> LabelImage:
    """Scale a working-resolution label image to ``shape`` with smooth outlines."""
    out = np.zeros(shape[:2], dtype=np.int32)
    if factor == 1 and labels.shape == out.shape:
        return labels
    best = np.zeros(shape[:2], dtype=np.float32)
    margin = 2
    for index, region in enumerate(ndi.find_objects(labels), start=1):
        if region is None:
            continue
        r0 = max(region[0].start - margin, 0)
        r1 = min(region[0].stop + margin, labels.shape[0])
        c0 = max(region[1].start - margin, 0)
        c1 = min(region[1].stop + margin, labels.shape[1])
        soft = ndi.gaussian_filter((labels[r0:r1, c0:c1] == index).astype(np.float32), 0.5)
        big = ndi.zoom(soft, factor, order=1, grid_mode=True, mode="grid-constant", cval=0.0)
        fr0, fc0 = r0 * factor, c0 * factor
        fr1, fc1 = min(fr0 + big.shape[0], shape[0]), min(fc0 + big.shape[1], shape[1])
        big = big[: fr1 - fr0, : fc1 - fc0]
        window = best[fr0:fr1, fc0:fc1]
        wins = (big > 0.5) & (big > window)
        window[wins] = big[wins]
        out[fr0:fr1, fc0:fc1][wins] = index
    return out
