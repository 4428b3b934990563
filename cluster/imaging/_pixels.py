"""Pixel arrays: the dtypes we hand out, colour to grayscale, and robust normalisation for segmenters."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["as_delivered", "delivered_dtype", "normalize", "to_grayscale"]

# ITU-R BT.601 luma weights, the ones Pillow uses for its "L" conversion.
_LUMA = (0.299, 0.587, 0.114)

_KEPT = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))

_SAMPLE_TARGET = 1 << 20
"""Images with more pixels than this get their percentiles from a strided subsample of about this size."""


def delivered_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype pixels of ``dtype`` are handed out in: uint8, uint16 and float32 stay, bilevel becomes
    uint8 and everything else (int16, uint32, float64, …) float32, which holds their values without clipping.
    """
    dtype = np.dtype(dtype).newbyteorder("=")
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    return dtype if dtype in _KEPT else np.dtype(np.float32)


def as_delivered(array: NDArray[Any]) -> NDArray[Any]:
    """``array`` in its :func:`delivered_dtype`, native byte order (bilevel images become 0/255)."""
    target = delivered_dtype(array.dtype)
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    return array.astype(target, copy=False)


def to_grayscale(array: NDArray[Any]) -> NDArray[Any]:
    """Return a 2-D grayscale version of ``array``, keeping its dtype and that dtype's range.

    ``(H, W)`` is returned unchanged; ``(H, W, 1)`` is squeezed; ``(H, W, 2)`` (gray + alpha) keeps the
    gray channel; ``(H, W, 3)`` RGB and ``(H, W, 4)`` RGBA become BT.601 luminance
    (0.299 R + 0.587 G + 0.114 B; alpha is ignored), rounded and clipped for integer dtypes.
    """
    if array.ndim == 2:
        return array
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected a (H, W) or (H, W, 1..4) image, got shape {array.shape}")
    if array.shape[2] <= 2:
        return array[:, :, 0]
    work = np.result_type(array.dtype, np.float32)  # float32 for 8/16-bit: exact, and half of float64
    luma = np.zeros(array.shape[:2], dtype=work)
    for channel, weight in enumerate(_LUMA):
        luma += np.multiply(array[:, :, channel], weight, dtype=work)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        np.clip(np.rint(luma, out=luma), info.min, info.max, out=luma)
    return luma.astype(array.dtype, copy=False)


def normalize(pixels: NDArray[Any], low: float = 0.5, high: float = 99.5) -> NDArray[np.float32]:
    """Stretch ``pixels`` so the ``low`` and ``high`` percentiles map to 0 and 1, clipped to [0, 1].

    Works in floating point on the original values, so a 16-bit image that only uses 1000..1200 still
    spans 0..1. Percentiles come from a strided subsample (about a million pixels) of big images and
    ignore NaN and infinities; NaN pixels become 0. A constant image gives all zeros.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    values = np.asarray(pixels)
    sample = _subsample(values).astype(np.float64, copy=False)
    sample = sample[np.isfinite(sample)]
    out = np.zeros(values.shape, dtype=np.float32)
    if sample.size == 0:
        return out
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        return out
    out[...] = values  # float32 holds every 8- and 16-bit value exactly
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.fmax(out, np.float32(0.0), out=out)  # fmax/fmin also turn NaN into 0
    np.fmin(out, np.float32(1.0), out=out)
    return out


def _subsample(values: NDArray[Any]) -> NDArray[Any]:
    """Every k-th element along each axis, so that about :data:`_SAMPLE_TARGET` remain."""
    if values.size <= _SAMPLE_TARGET or values.ndim == 0:
        return values
    step = math.ceil((values.size / _SAMPLE_TARGET) ** (1.0 / values.ndim))
    return values[(slice(None, None, step),) * values.ndim]
