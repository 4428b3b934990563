"""What reading an image yields: header facts (:class:`ImageInfo`) and pixels (:class:`LoadedImage`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cluster.exceptions import CorruptImageError, EmptyImageError, ImageReadError, ImageTooLargeError

__all__ = [
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageFormat",
    "ImageInfo",
    "LoadedImage",
    "check_decoded_size",
    "check_pixel_count",
    "decoding_errors",
]

DEFAULT_MAX_PIXELS = 200_000_000
"""The largest plane (width x height) read by default: about 14,000 x 14,000, 400 MB as 16-bit."""

DEFAULT_MAX_DECODED_BYTES = 800_000_000
"""The most memory one decoded plane may take by default (width x height x samples x bytes per sample):
the largest plane as float32 or as 8-bit RGBA. Pixels alone do not bound it: a 2000 x 2000 TIFF with 32
float64 samples per pixel is only 4 megapixels but 1 GB decoded."""

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"})
"""Suffixes of image files picked up from folders. The format itself is always read from the bytes, so a
file named explicitly is read whatever its suffix."""

ImageFormat = Literal["tiff", "ome-tiff", "png", "jpeg", "bmp"]


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image says, read without decoding its pixels.

    ``bit_depth`` and ``dtype`` describe the grayscale pixels :func:`~cluster.imaging.read_image` returns
    (``uint8``/8, ``uint16``/16 or ``float32``/32), which are the file's own for every common microscopy
    format. ``channels`` counts colour samples per pixel (3 for RGB, 4 for RGBA) or, for a multi-channel
    stack stored one plane per channel (OME-TIFF, ImageJ), the number of channels. ``pages`` counts the
    2-D planes in the first series (1 for a plain image). ``pixel_size_um`` is the edge of one pixel in
    micrometres, or ``None`` when the file does not say.
    """

    name: str
    format: ImageFormat
    width: int
    height: int
    bit_depth: int
    dtype: str
    channels: int
    pages: int
    pixel_size_um: float | None


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image: ``pixels`` is one 2-D grayscale plane of shape ``(height, width)``."""

    info: ImageInfo
    pixels: NDArray[np.generic]


def check_pixel_count(name: str, width: int, height: int, max_pixels: int) -> None:
    """Refuse a plane with no pixels or more than ``max_pixels``, before anything is decoded."""
    if width <= 0 or height <= 0:
        raise EmptyImageError(name, f"the image has no pixels ({width} x {height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            name,
            f"the image is {width} x {height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,}; crop or downsample it before importing",
        )


def check_decoded_size(name: str, shape: tuple[int, ...], itemsize: int, max_bytes: int) -> None:
    """Refuse a plane whose decoded ``shape`` (pixels, samples, depth) of ``itemsize``-byte values would
    take more than ``max_bytes``, before anything is decoded."""
    size = itemsize
    for extent in shape:
        size *= extent
    if size > max_bytes:
        layout = " x ".join(str(extent) for extent in shape)
        raise ImageTooLargeError(
            name,
            f"decoding one plane would take {size:,} bytes ({layout} values of {itemsize} byte(s)), more "
            f"than the limit of {max_bytes:,}; save it with fewer samples per pixel or a smaller bit depth, "
            "or crop it, before importing",
        )


@contextmanager
def decoding_errors(name: str, format_label: str) -> Iterator[None]:
    """Turn whatever a decoding library raises into :class:`CorruptImageError` naming the file.

    Our own :class:`ImageReadError` passes through; so does :class:`MemoryError`, which is no fault of the
    file. The library's exception is kept as ``__cause__`` for the log.
    """
    try:
        yield
    except (ImageReadError, MemoryError):
        raise
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        raise CorruptImageError(name, f"damaged or truncated {format_label} data ({detail})") from exc
