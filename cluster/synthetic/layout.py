"""Where spheroids go: how many, how large, what outline, and where in the field (inside the well).

Spheroids are placed largest first. A free spheroid is dropped at random where it overlaps nothing (its
bounding circle a few pixels clear of every other, of the image border and of the well wall); when that
fails a few times it shrinks, and when it gets too small it is left out (except the first: every scene
has at least one spheroid). With ``p_border_cut`` a free spheroid is first tried across the image's
border instead, its centre from a tenth of its radius outside the image to 0.65 of it inside, so the
border cuts it. A touching spheroid is placed against a free partner along a random direction, its outline
overlapping the partner's by ``touch_overlap`` of the smaller radius (at least two pixels, so the two label
regions always meet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cluster.synthetic.config import SceneConfig
from cluster.synthetic.fields import chance, log_uniform, uniform
from cluster.synthetic.spheroid import Outline, boundary_profile

__all__ = ["Placement", "Well", "lay_out", "sample_outline", "sample_radii", "sample_well"]

_GAP_PX = 4.0
"""Clearance between spheroids that are not meant to touch, beyond their bounding circles."""


@dataclass(frozen=True)
class Well:
    """The round wall of a well: centre and radius in pixels, and how its edge looks."""

    cy: float
    cx: float
    radius: float
    edge_width: float
    outside_darkening: float
    band_darkness: float

    def holds(self, cy: float, cx: float, extent: float) -> bool:
        """Whether a circle of radius ``extent`` at ``(cy, cx)`` lies well inside the wall."""
        return math.hypot(cy - self.cy, cx - self.cx) + extent <= self.radius - 3 * self.edge_width


@dataclass(frozen=True)
class Placement:
    """A placed outline, and the index of the spheroid it was placed touching (if any)."""

    outline: Outline
    partner: int | None


def sample_radii(rng: np.random.Generator, config: SceneConfig, shape: tuple[int, int]) -> list[float]:
    """Mean radii (pixels, largest first) of the spheroids a scene asks for."""
    low, high = config.spheroid_count
    count = 1 if chance(rng, config.p_single) or high == 1 else int(rng.integers(max(low, 2), high + 1))
    cap = config.max_radius_fraction * min(shape) / math.sqrt(count)
    r_high = max(min(config.radius_px[1], cap), config.radius_px[0])
    typical = log_uniform(rng, (config.radius_px[0], r_high))
    spread = np.exp(config.radius_spread * rng.standard_normal(count))
    radii = np.clip(typical * spread, config.radius_px[0], r_high)
    return sorted((float(r) for r in radii), reverse=True)


def sample_well(rng: np.random.Generator, config: SceneConfig, shape: tuple[int, int]) -> Well | None:
    """A well wall that crosses the image, or None."""
    if not chance(rng, config.p_well_edge):
        return None
    height, width = shape
    radius = uniform(rng, config.well_radius_fraction) * max(shape)
    phi = rng.uniform(0, 2 * math.pi)
    reach = math.hypot(height, width) / 2
    offset = max(radius - reach * rng.uniform(0.75, 1.0), 0.0)  # the wall passes inside the far corner
    return Well(
        cy=height / 2 + offset * math.sin(phi),
        cx=width / 2 + offset * math.cos(phi),
        radius=radius,
        edge_width=uniform(rng, (0.004, 0.02)) * max(shape),
        outside_darkening=uniform(rng, (0.15, 0.6)),
        band_darkness=uniform(rng, (0.1, 0.5)),
    )


def sample_outline(rng: np.random.Generator, config: SceneConfig, radius: float, cell_px: float) -> Outline:
    """A random outline of mean radius ``radius`` centred at the origin."""
    axis_ratio = uniform(rng, config.elongation)
    angle = rng.uniform(0, math.pi)
    lobes = None
    if chance(rng, config.p_lobed):
        lobes = (int(rng.integers(2, 6)), uniform(rng, config.lobe_amplitude))
    boundary = boundary_profile(
        rng,
        radius,
        cell_px,
        irregularity=uniform(rng, config.irregularity),
        lobes=lobes,
        roughness=uniform(rng, config.edge_roughness),
    )
    return Outline(0.0, 0.0, radius, axis_ratio, angle, boundary)


def lay_out(
    rng: np.random.Generator,
    config: SceneConfig,
    shape: tuple[int, int],
    outlines: list[Outline],
    well: Well | None,
) -> list[Placement]:
    """Place ``outlines`` (largest first) in the field; some may shrink or be left out."""
    placed: list[Placement] = []
    for outline in outlines:
        free = [i for i, p in enumerate(placed) if p.partner is None and not _has_partner(placed, i)]
        wants_touch = chance(rng, config.p_touching)
        result = None
        if wants_touch and free:
            partner = free[int(rng.integers(len(free)))]
            overlap = uniform(rng, config.touch_overlap)
            result = _touching(rng, shape, outline, placed, partner, overlap, well)
        if result is None and config.p_border_cut > 0 and chance(rng, config.p_border_cut):
            result = _across_border(rng, shape, outline, placed, well)
        if result is None:
            result = _free(rng, shape, outline, placed, well, config.radius_px[0])
        if result is not None:
            placed.append(result)
    return placed


def _has_partner(placed: list[Placement], index: int) -> bool:
    return any(p.partner == index for p in placed)


def _fits(
    shape: tuple[int, int],
    outline: Outline,
    placed: list[Placement],
    well: Well | None,
    skip: int | None,
    *,
    inside: bool = True,
) -> bool:
    extent = outline.max_extent
    margin = extent + 2.0
    height, width = shape
    if inside and not (margin <= outline.cy <= height - margin and margin <= outline.cx <= width - margin):
        return False
    if well is not None and not well.holds(outline.cy, outline.cx, extent):
        return False
    for i, other in enumerate(placed):
        o = other.outline
        if i != skip and math.hypot(o.cy - outline.cy, o.cx - outline.cx) < o.max_extent + extent + _GAP_PX:
            return False
    return True


def _free(
    rng: np.random.Generator,
    shape: tuple[int, int],
    outline: Outline,
    placed: list[Placement],
    well: Well | None,
    min_radius: float,
) -> Placement | None:
    """Drop ``outline`` at random where it fits, shrinking it when it does not.

    The first spheroid may shrink below ``min_radius`` (to 8 px), so no scene is left empty.
    """
    height, width = shape
    room = min(height, width) / 2 - 3.0
    if outline.max_extent > room:
        outline = outline.resized(outline.radius * room / outline.max_extent)
    floor = min_radius if placed else min(min_radius, 8.0)
    while outline.radius >= floor:
        margin = outline.max_extent + 2.0
        for _ in range(30):
            moved = outline.moved(rng.uniform(margin, height - margin), rng.uniform(margin, width - margin))
            if _fits(shape, moved, placed, well, skip=None):
                return Placement(moved, None)
        outline = outline.resized(outline.radius * 0.8)
    return None


def _across_border(
    rng: np.random.Generator,
    shape: tuple[int, int],
    outline: Outline,
    placed: list[Placement],
    well: Well | None,
) -> Placement | None:
    """``outline`` placed across one side of the image (see the module docstring), or None if it fits
    nowhere there."""
    height, width = shape
    if 2 * outline.max_extent >= max(width, height):
        return None  # it would not lie across one side only
    for _ in range(30):
        depth = outline.radius * rng.uniform(-0.1, 0.65)
        side = int(rng.integers(4))
        along = rng.uniform(outline.max_extent, max(width, height) - outline.max_extent)
        cy, cx = [(depth, along), (height - depth, along), (along, depth), (along, width - depth)][side]
        if not (0 <= cy <= height and 0 <= cx <= width):
            continue
        moved = outline.moved(cy, cx)
        if _fits(shape, moved, placed, well, skip=None, inside=False):
            return Placement(moved, None)
    return None


def _touching(
    rng: np.random.Generator,
    shape: tuple[int, int],
    outline: Outline,
    placed: list[Placement],
    partner: int,
    overlap: float,
    well: Well | None,
) -> Placement | None:
    anchor = placed[partner].outline
    overlap_px = max(overlap * min(outline.min_extent, anchor.min_extent), 2.0)
    for _ in range(24):
        phi = rng.uniform(0, 2 * math.pi)
        distance = anchor.extent(phi) + outline.extent(phi + math.pi) - overlap_px
        moved = outline.moved(anchor.cy + distance * math.sin(phi), anchor.cx + distance * math.cos(phi))
        if _fits(shape, moved, placed, well, skip=partner):
            return Placement(moved, partner)
    return None
