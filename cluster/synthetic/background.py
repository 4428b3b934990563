"""The light reaching the camera with no specimen in the way: a smooth field around 1.

It multiplies blotchy unevenness (a random field a third to a half of the image across), vignetting
(quadratic fall-off from a centre near the middle), a linear gradient in a random direction, fine mottling
of the medium, and the wall of a round well: a dark band along the wall, darker beyond it, with a faint
bright reflection just inside.

All but the wall are smooth (the mottling has a grain of 15 px or more), so they are computed on nodes
every ``_STEP`` pixels and interpolated bilinearly as two matrix products; the well wall is a function
of the distance to the well's centre, read from a table at quarter-pixel steps. Both keep the background
to a few full-image operations.
"""

from __future__ import annotations

import math

import numpy as np

from cluster.synthetic.config import SceneConfig
from cluster.synthetic.fields import FloatArray, separable_product, smooth_noise, uniform
from cluster.synthetic.layout import Well

__all__ = ["illumination"]

_STEP = 4
"""Spacing in pixels of the nodes the smooth part of the illumination is computed on."""


def illumination(
    rng: np.random.Generator, config: SceneConfig, shape: tuple[int, int], well: Well | None
) -> FloatArray:
    """The illumination field of one scene (float32, about 1 at the brightest)."""
    height, width = shape
    side = float(max(shape))
    wy, wx = _interpolation(height), _interpolation(width)
    nodes = (wy.shape[1], wx.shape[1])
    y = np.arange(nodes[0], dtype=np.float32) * np.float32(_STEP)
    x = np.arange(nodes[1], dtype=np.float32) * np.float32(_STEP)

    unevenness = np.float32(uniform(rng, config.illumination_unevenness))
    coarse = 1 + unevenness * smooth_noise(rng, nodes, side * rng.uniform(0.3, 0.6) / _STEP)
    cy, cx = height * rng.uniform(0.3, 0.7), width * rng.uniform(0.3, 0.7)
    corner = max(math.hypot(a, b) for a in (cy, height - cy) for b in (cx, width - cx))
    vignetting = np.float32(uniform(rng, config.vignetting) / corner**2)
    coarse *= 1 - vignetting * (((y - cy) ** 2)[:, None] + ((x - cx) ** 2)[None, :])
    phi = rng.uniform(0, 2 * math.pi)
    slope = np.float32(uniform(rng, config.gradient) / side)
    along_y = (np.float32(slope * math.sin(phi)) * (y - height / 2))[:, None]
    coarse *= 1 + along_y + (np.float32(slope * math.cos(phi)) * (x - width / 2))[None, :]
    mottling = np.float32(uniform(rng, config.background_texture))
    coarse *= 1 + mottling * smooth_noise(rng, nodes, rng.uniform(15.0, 40.0) / _STEP)
    light: FloatArray = separable_product(wy, coarse, wx)
    if well is not None:
        light *= _well_wall(well, shape)
    np.maximum(light, 0.02, out=light)
    return light


def _interpolation(n: int) -> FloatArray:
    """Bilinear weights of ``n`` pixel centres on nodes at 0, ``_STEP``, 2 ``_STEP``, ... pixels."""
    position = (np.arange(n) + 0.5) / _STEP
    left = np.floor(position).astype(np.intp)
    frac = (position - left).astype(np.float32)
    weights = np.zeros((n, int(left[-1]) + 2), dtype=np.float32)
    weights[np.arange(n), left] = 1 - frac
    weights[np.arange(n), left + 1] = frac
    return weights


def _well_wall(well: Well, shape: tuple[int, int]) -> FloatArray:
    """Brightness factor of the well wall at each pixel (1 well inside the well)."""
    height, width = shape
    dy = np.arange(height, dtype=np.float32) + np.float32(0.5 - well.cy)
    dx = np.arange(width, dtype=np.float32) + np.float32(0.5 - well.cx)
    distance = np.sqrt((dy * dy)[:, None] + (dx * dx)[None, :])
    distance *= np.float32(4.0)
    table = _wall_profile(well, np.arange(int(distance.max()) + 2) / 4.0)
    wall: FloatArray = table[distance.astype(np.intp)]
    return wall


def _wall_profile(well: Well, distance: np.ndarray) -> FloatArray:
    """The wall's brightness factor as a function of the distance from the well's centre."""
    beyond = (distance - well.radius) / well.edge_width
    outside = 1 / (1 + np.exp(-np.clip(beyond, -30, 30)))
    factor = 1 - well.outside_darkening * outside * (1 + 0.02 * np.maximum(beyond, 0))
    factor -= well.band_darkness * np.exp(-0.5 * (beyond - 0.5) ** 2)
    factor += 0.3 * well.band_darkness * np.exp(-0.5 * ((beyond + 2.5) / 0.8) ** 2)
    return np.clip(factor, 0.05, None).astype(np.float32)
