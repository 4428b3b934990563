"""Small things lying around the spheroids: single cells, debris, shed cells and out-of-focus dust.

Each is a small stamp multiplied into the scene's transmission after the spheroids have been blurred by
the point spread function, so every profile already includes the blur (its edge softness is at least the
PSF sigma). None of them is labelled: they are what a segmenter must learn to ignore.

- **Single cells** (diameter about one cell, at least 4 px): a dark disc with a lighter centre; in phase
  contrast a bright halo around it. One in four is a round, refractile cell: bright centre, dark ring.
- **Debris**: small elongated blobs, mostly dark, some bright, 1.5 to 10 px across.
- **Shed cells**: dark cells lying within a few cell diameters outside a spheroid's edge.
- **Dust rings**: large faint rings with a faint centre, dirt on the optics far out of focus.
- **Fibres**: long dark bands, 2 px to a twentieth of the image wide, straight or bent along a circle, running
  off the image or ending inside it: fibres, scratches, a well's wall with the medium on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cluster.synthetic.fields import FloatArray, log_uniform, uniform
from cluster.synthetic.spheroid import Outline

__all__ = ["add_cells", "add_debris", "add_dust", "add_fibres", "add_shed_cells", "shed_cell_counts"]

_MAX_STAMPS = 600
"""Upper bound on stamps of one kind per scene, to bound the time a scene takes."""


def _coords(
    shape: tuple[int, ...], cy: float, cx: float, reach: float
) -> tuple[slice, slice, FloatArray, FloatArray] | None:
    """Window around ``(cy, cx)`` and the pixel centres' offsets from it (a column and a row vector)."""
    r0, r1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, shape[0])
    c0, c1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, shape[1])
    if r0 >= r1 or c0 >= c1:
        return None
    dy = (np.arange(r0, r1, dtype=np.float32) + np.float32(0.5 - cy))[:, None]
    dx = (np.arange(c0, c1, dtype=np.float32) + np.float32(0.5 - cx))[None, :]
    return slice(r0, r1), slice(c0, c1), dy, dx


def _cell(
    transmission: FloatArray,
    rng: np.random.Generator,
    cy: float,
    cx: float,
    radius: float,
    soft: float,
    halo: float,
) -> None:
    # The stamp reaches where every profile below has faded to under 1% of the background: the refractile
    # ring's wide Gaussian decides it (3.5 sigma beyond the ring), the halo's when there is one.
    ring_sigma = 0.3 * radius + soft
    reach = max(radius + 3.5 * ring_sigma, radius + 6 * soft, (2.5 * radius + 5 * soft) if halo else 0.0)
    window = _coords(transmission.shape, cy, cx, reach)
    if window is None:
        return
    rows, cols, dy, dx = window
    r = np.sqrt(dy * dy + dx * dx)
    if rng.random() < 0.25:  # round, refractile: bright centre and a dark ring
        bright = rng.uniform(0.1, 0.5)
        factor = 1 + bright * np.exp(-0.5 * (r / (0.5 * radius + soft)) ** 2)
        factor -= rng.uniform(0.2, 0.5) * np.exp(-0.5 * ((r - radius) / ring_sigma) ** 2)
    else:
        disc = 1 / (1 + np.exp((r - radius) / soft))
        centre = np.exp(-0.5 * (r / (0.4 * radius + soft)) ** 2)
        factor = 1 - rng.uniform(0.15, 0.6) * disc * (1 - rng.uniform(0.0, 0.5) * centre)
    if halo:
        factor += halo * np.exp(-0.5 * ((r - radius - 1.5 * soft) / (0.5 * radius + soft)) ** 2)
    transmission[rows, cols] *= factor


def add_cells(
    transmission: FloatArray,
    rng: np.random.Generator,
    density: float,
    cell_px: float,
    psf: float,
    halo: float,
) -> int:
    """Scatter single cells at ``density`` per megapixel; returns how many were drawn."""
    height, width = transmission.shape
    count = min(int(rng.poisson(density * height * width / 1e6)), _MAX_STAMPS)
    for _ in range(count):
        radius = max(cell_px * rng.uniform(0.35, 0.65), 2.0)
        soft = max(psf, 0.6)
        _cell(transmission, rng, rng.uniform(0, height), rng.uniform(0, width), radius, soft, halo)
    return count


def add_shed_cells(
    transmission: FloatArray,
    rng: np.random.Generator,
    outline: Outline,
    count: int,
    cell_px: float,
    psf: float,
    halo: float,
) -> None:
    """Loose cells lying just outside ``outline``, within about three cell diameters of its edge."""
    for _ in range(count):
        phi = rng.uniform(0, 2 * math.pi)
        radius = max(cell_px * rng.uniform(0.35, 0.6), 2.0)
        distance = outline.extent(phi) + radius + cell_px * rng.uniform(0.5, 3.0)
        cy, cx = outline.cy + distance * math.sin(phi), outline.cx + distance * math.cos(phi)
        _cell(transmission, rng, cy, cx, radius, max(psf, 0.6), halo)


def add_debris(transmission: FloatArray, rng: np.random.Generator, density: float, psf: float) -> int:
    """Small elongated dark or bright blobs at ``density`` per megapixel; returns how many."""
    height, width = transmission.shape
    count = min(int(rng.poisson(density * height * width / 1e6)), _MAX_STAMPS)
    for _ in range(count):
        sy, sx = (math.hypot(log_uniform(rng, (0.6, 4.0)), psf) for _ in range(2))
        window = _coords(transmission.shape, rng.uniform(0, height), rng.uniform(0, width), 3 * max(sy, sx))
        if window is None:
            continue
        rows, cols, dy, dx = window
        angle = rng.uniform(0, math.pi)
        c, s = math.cos(angle), math.sin(angle)
        along, across = dx * c + dy * s, dy * c - dx * s
        amplitude = rng.uniform(0.15, 0.7) if rng.random() < 0.8 else -rng.uniform(0.1, 0.4)
        transmission[rows, cols] *= 1 - amplitude * np.exp(-0.5 * ((along / sx) ** 2 + (across / sy) ** 2))
    return count


def add_dust(transmission: FloatArray, rng: np.random.Generator, count: int) -> None:
    """``count`` large faint out-of-focus dust rings."""
    height, width = transmission.shape
    for _ in range(count):
        radius = uniform(rng, (0.02, 0.08)) * max(height, width)
        width_px = radius * rng.uniform(0.12, 0.3)
        window = _coords(
            transmission.shape, rng.uniform(0, height), rng.uniform(0, width), radius + 3 * width_px
        )
        if window is None:
            continue
        rows, cols, dy, dx = window
        r = np.sqrt(dy * dy + dx * dx)
        amplitude = rng.uniform(0.01, 0.05)
        factor = 1 - amplitude * np.exp(-0.5 * ((r - radius) / width_px) ** 2)
        factor += 0.5 * amplitude * np.exp(-0.5 * (r / (0.5 * radius)) ** 2)
        transmission[rows, cols] *= factor


def add_fibres(transmission: FloatArray, rng: np.random.Generator, count: int, psf: float) -> None:
    """``count`` dark bands along arcs of circles (radius 1 to 20 image sides: gently bent to straight, never
    closing round on themselves in the image as a hollow spheroid's wall does)."""
    height, width = transmission.shape
    side = float(max(height, width))
    for _ in range(count):
        radius = log_uniform(rng, (1.0, 20.0)) * side
        half_width = 0.5 * log_uniform(rng, (2.0, max(3.0, side / 20)))
        # The circle passes through a point inside the image, its centre off in a random direction.
        angle = rng.uniform(0, 2 * math.pi)
        through_y, through_x = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
        cy, cx = through_y - radius * math.sin(angle), through_x - radius * math.cos(angle)
        dy = np.arange(height, dtype=np.float32)[:, None] + np.float32(0.5 - cy)
        dx = np.arange(width, dtype=np.float32)[None, :] + np.float32(0.5 - cx)
        across = np.sqrt(dy * dy + dx * dx) - np.float32(radius)
        softness = np.float32(max(psf, 0.6))
        band = _logistic((np.float32(half_width) - np.abs(across)) / softness)
        if rng.random() < 0.5:  # a fibre or scratch ending inside the image rather than running off it
            reach = rng.uniform(0.15, 0.6) * side / radius
            turn = np.angle(np.exp(1j * (np.arctan2(dy, dx) - angle)))
            band = band * _logistic((np.float32(reach) - np.abs(turn)) * np.float32(radius / softness))
        density = rng.uniform(0.15, 1.2)
        transmission *= np.exp(-np.float32(density) * band.astype(np.float32))


def _logistic(x: FloatArray) -> FloatArray:
    """1 / (1 + e^-x) without overflow far from the band (and without importing scipy.special)."""
    return np.asarray(0.5 + 0.5 * np.tanh(0.5 * x), dtype=np.float32)


def shed_cell_counts(
    rng: np.random.Generator, outlines: Sequence[Outline], p_shed: float, count_range: tuple[int, int]
) -> list[int]:
    """How many loose cells each spheroid sheds (0 for most)."""
    return [
        int(rng.integers(count_range[0], count_range[1] + 1)) if rng.random() < p_shed else 0
        for _ in outlines
    ]
