"""Random numbers and fields the scene is built from, written for speed on one CPU core.

- :func:`normal_field`: standard normal noise through a 65,536-entry inverse-CDF table indexed by random
  16-bit integers (about 5x faster than ``Generator.standard_normal``; tails are cut at about 4.3 sigma).
- :func:`smooth_noise`: a zero-mean, unit-variance Gaussian random field with a chosen grain size, made as
  two small matrix products (``Wy @ grid @ Wx.T``), so a spheroid's texture costs time in proportion to
  its bounding box, not the image.
- :func:`gaussian_blur`: a separable Gaussian blur by shifted adds, faster than ``scipy.ndimage`` for the
  small sigmas of a point spread function.
- :func:`uniform`, :func:`log_uniform`, :func:`chance`: draws from the ranges of a
  :class:`~cluster.synthetic.config.SceneConfig`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

__all__ = [
    "FloatArray",
    "chance",
    "gaussian_blur",
    "log_uniform",
    "normal_field",
    "smooth_noise",
    "uniform",
]

FloatArray = NDArray[np.float32]

_NS_PER_MAC = 0.05
_GRID_NS = 5.0
_WHITE_NS = 20.0
_WHITE_NS_PER_SIGMA = 5.0
"""Rough costs per pixel on one core, measured: of the grid products (a fixed part plus multiply-adds)
and of blurred white noise (normal draws plus a blur growing with sigma). They pick the cheaper way to
make a field; the pick depends only on the field's shape and grain, so output stays reproducible."""

_NORMAL_TABLE: FloatArray = ndtri((np.arange(65536, dtype=np.float64) + 0.5) / 65536).astype(np.float32)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Draw uniformly from the inclusive range ``bounds``."""
    return float(rng.uniform(bounds[0], bounds[1]))


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Draw log-uniformly from ``bounds`` (both positive): each factor of two is equally likely."""
    return math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))


def chance(rng: np.random.Generator, p: float) -> bool:
    """True with probability ``p``; always consumes one draw, so later draws do not shift with ``p``."""
    return bool(rng.random() < p)


def normal_field(rng: np.random.Generator, shape: tuple[int, ...]) -> FloatArray:
    """Standard normal float32 noise of ``shape``."""
    return _NORMAL_TABLE[rng.integers(0, 65536, size=shape, dtype=np.uint16)]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], grain: float) -> FloatArray:
    """A Gaussian random field of ``shape``, mean 0 and variance 1 at every pixel, blobs ``grain`` px across.

    The field is white noise on a coarse grid (spacing ``0.4 * grain`` pixels) interpolated with Gaussian
    weights (sigma ``grain / 3``) as two matrix products, ``Wy @ grid @ Wx.T``, each row of weights scaled
    so the variance is exactly one. Where the grid would be dense enough for the products to cost more
    (a fine grain on a large field), it is white noise blurred with the same sigma instead; under a grain
    of 2.4 pixels, plain white noise (the point spread function smooths it later).
    """
    sigma = grain / 3.0
    spacing = 1.2 * sigma
    grid_ns = _GRID_NS + max(shape) / spacing * (1 + 1 / spacing) * _NS_PER_MAC
    if grid_ns > _WHITE_NS + _WHITE_NS_PER_SIGMA * sigma:
        white = normal_field(rng, shape)
        if sigma < 0.8:
            return white
        kernel = _kernel(sigma)
        white = gaussian_blur(white, sigma)
        white *= np.float32(1.0 / float((kernel * kernel).sum()))
        return white
    pad = math.ceil(4.0 * sigma / spacing)
    wy, wx = (_basis(n, sigma, spacing, pad) for n in shape)
    grid = normal_field(rng, (wy.shape[1], wx.shape[1]))
    return separable_product(wy, grid, wx)


def separable_product(wy: FloatArray, grid: FloatArray, wx: FloatArray) -> FloatArray:
    """``wy @ grid @ wx.T`` as float32, the same however many threads BLAS runs.

    A float32 BLAS product sums in an order that depends on its thread count (``OMP_NUM_THREADS=1`` in a
    Dask worker changes the last bits, and so the scene). Summing in float64 and rounding to float32 hides
    that order: a seed gives the same scene on a laptop, in a worker and in a test.
    """
    product = (wy.astype(np.float64) @ grid.astype(np.float64)) @ wx.T.astype(np.float64)
    return product.astype(np.float32)


def _basis(n: int, sigma: float, spacing: float, pad: int) -> FloatArray:
    """Weights of ``n`` pixels on grid nodes ``spacing`` apart, with ``pad`` nodes beyond each end."""
    nodes = (np.arange(math.ceil(n / spacing) + 2 * pad + 1, dtype=np.float32) - pad) * np.float32(spacing)
    pixels = np.arange(n, dtype=np.float32) + np.float32(0.5)
    weights = np.exp(np.float32(-0.5) * ((pixels[:, None] - nodes[None, :]) / np.float32(sigma)) ** 2)
    weights /= np.sqrt((weights * weights).sum(axis=1, keepdims=True))
    return weights.astype(np.float32, copy=False)


def _kernel(sigma: float) -> FloatArray:
    """Normalised Gaussian taps out to three sigma."""
    radius = max(1, math.ceil(3.0 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1, dtype=np.float64) / sigma) ** 2)
    return np.asarray(taps / taps.sum(), dtype=np.float32)


def _blur_axis0(image: FloatArray, kernel: FloatArray) -> FloatArray:
    """Convolve along the first axis by shifted adds (symmetric taps folded in pairs)."""
    radius = len(kernel) // 2
    n = image.shape[0]
    radius_used = min(radius, n - 1)
    padded = np.pad(image, ((radius_used, radius_used), (0, 0)), mode="reflect")
    if radius_used < radius:  # a window thinner than the kernel: fall back to edge padding
        padded = np.pad(padded, ((radius - radius_used, radius - radius_used), (0, 0)), mode="edge")
    out: FloatArray = padded[radius : radius + n] * kernel[radius]
    pair = np.empty_like(out)
    for i in range(1, radius + 1):
        np.add(padded[radius - i : radius - i + n], padded[radius + i : radius + i + n], out=pair)
        pair *= kernel[radius + i]
        out += pair
    return out


def gaussian_blur(image: FloatArray, sigma: float) -> FloatArray:
    """Blur a 2-D float32 image with a Gaussian of ``sigma`` pixels (reflecting edges, 3-sigma kernel)."""
    if sigma < 0.2:
        return image
    kernel = _kernel(sigma)
    return np.ascontiguousarray(_blur_axis0(_blur_axis0(image, kernel).T, kernel).T)
