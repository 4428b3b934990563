"""Display renditions: any stored original (8/16-bit, float TIFF) to an 8-bit WebP, AVIF, PNG or JPEG.

Browsers and CDNs cannot show or transform a 16-bit or float TIFF, and a linear 16 → 8-bit cut makes most
microscope images black. So the pixels are contrast-stretched between two percentiles (0.5 and 99.5 by
default) and the stretch is recorded, both in the rendition (EXIF ImageDescription, JSON) and by the
origin in an ``X-Display-Range`` header, so the workbench can map a displayed grey back to true values.

Pillow, not pyvips: ``benchmarks/cdn.py`` measures both on the 256 px thumbnail of a 2048² 16-bit TIFF,
and Pillow (already a core dependency) is well inside the 50 ms goal. Downscaling is done in the image's
own bit depth (``I;16``/``F`` with an area filter, which is the cheap step in Pillow), then the small
result is stretched to 8 bits; enlarging stretches first and resamples the 8-bit image. Percentiles come
from a strided sample of at most ~256k pixels, which moves them by well under one display grey.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from cluster import DEFAULT_MAX_DECODED_BYTES, read_image
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec

__all__ = ["Rendition", "Stretch", "read_stretch", "render", "target_size"]

_SAMPLE_PIXELS = 256 * 1024
_PIL_FORMATS = {
    RenditionFormat.WEBP: "WEBP",
    RenditionFormat.AVIF: "AVIF",
    RenditionFormat.PNG: "PNG",
    RenditionFormat.JPEG: "JPEG",
}
_DESCRIPTION_TAG = 0x010E


@dataclass(frozen=True)
class Stretch:
    """Display grey 0 is ``low`` and 255 is ``high`` in the original's own units (linear in between)."""

    low: float
    high: float
    percentiles: tuple[float, float]
    dtype: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "stretch": [self.low, self.high],
                "percentiles": list(self.percentiles),
                "dtype": self.dtype,
            },
            separators=(",", ":"),
        )

    def header(self) -> str:
        """The ``X-Display-Range`` value: ``low=…; high=…; percentiles=…,…; dtype=…``."""
        low_p, high_p = self.percentiles
        return f"low={self.low:g}; high={self.high:g}; percentiles={low_p:g},{high_p:g}; dtype={self.dtype}"


@dataclass(frozen=True)
class Rendition:
    data: bytes
    media_type: str
    width: int
    height: int
    stretch: Stretch


def target_size(width: int, height: int, spec: RenditionSpec) -> tuple[int, int]:
    """The output size for an original of ``width`` x ``height`` (before a ``cover`` crop)."""
    box_w = spec.width or width
    box_h = spec.height or height
    if spec.fit is Fit.COVER:
        scale = max(box_w / width, box_h / height)
    else:
        scale = min(box_w / width, box_h / height)
        if spec.fit is Fit.SCALE_DOWN:
            scale = min(scale, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _stretch_of(pixels: NDArray[np.generic], spec: RenditionSpec) -> Stretch:
    step = max(1, math.isqrt(pixels.size // _SAMPLE_PIXELS))
    sample = np.asarray(pixels[::step, ::step], dtype=np.float64)
    finite = sample[np.isfinite(sample)]
    low_p, high_p = spec.percentiles
    if finite.size == 0:
        low = high = 0.0
    else:
        low, high = (float(v) for v in np.percentile(finite, (low_p, high_p)))
    if high <= low:  # a flat image: show it mid-grey rather than divide by zero
        high = low + 1.0
    return Stretch(low, high, (low_p, high_p), str(pixels.dtype))


def _to_8bit(pixels: NDArray[np.generic], stretch: Stretch) -> NDArray[np.uint8]:
    values = np.asarray(pixels, dtype=np.float32)
    scaled = (values - np.float32(stretch.low)) * np.float32(255.0 / (stretch.high - stretch.low))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    result: NDArray[np.uint8] = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    return result


def _high_depth_image(pixels: NDArray[np.generic]) -> Image.Image:
    """A Pillow image in the pixels' own depth where Pillow resamples it (uint8, uint16), else float."""
    if pixels.dtype == np.uint8:
        return Image.fromarray(pixels, mode="L")
    if pixels.dtype == np.uint16:
        return Image.fromarray(np.ascontiguousarray(pixels))
    return Image.fromarray(np.nan_to_num(np.asarray(pixels, dtype=np.float32)), mode="F")


def _crop_box(
    width: int, height: int, out_w: int, out_h: int, spec: RenditionSpec
) -> tuple[float, float, float, float]:
    """The source rectangle that a ``cover`` box keeps (centred); the whole image otherwise."""
    if spec.fit is not Fit.COVER:
        return (0.0, 0.0, float(width), float(height))
    box_w, box_h = min(spec.width, out_w), min(spec.height, out_h)
    scale = out_w / width
    src_w, src_h = box_w / scale, box_h / scale
    left, top = (width - src_w) / 2, (height - src_h) / 2
    return (left, top, left + src_w, top + src_h)


def _resized(pixels: NDArray[np.generic], spec: RenditionSpec, stretch: Stretch) -> Image.Image:
    height, width = pixels.shape
    out_w, out_h = target_size(width, height, spec)
    box = _crop_box(width, height, out_w, out_h, spec)
    size = (min(out_w, spec.width), min(out_h, spec.height)) if spec.fit is Fit.COVER else (out_w, out_h)
    if out_w <= width and out_h <= height:
        # Downscale in the original depth (area filter), then stretch the few remaining pixels.
        small = _high_depth_image(pixels).resize(size, Image.Resampling.BOX, box=box)
        return Image.fromarray(_to_8bit(np.asarray(small), stretch), mode="L")
    display = Image.fromarray(_to_8bit(pixels, stretch), mode="L")
    return display.resize(size, Image.Resampling.BICUBIC, box=box)


def render(
    data: bytes | Path,
    spec: RenditionSpec,
    max_pixels: int,
    name: str = "original",
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> Rendition:
    """Decode ``data`` (bytes, or a file of which only what is shown is read) with ``cluster.imaging`` and
    encode it.

    Both limits are checked from the header before decoding, and only the first plane, the one shown, is
    decoded (and of its samples only those shown are kept). Raises
    :class:`~cluster.exceptions.ImageReadError` for an image that cannot or may not be decoded. Blocking and
    CPU-bound: call it in a worker thread.
    """
    pixels = read_image(data, name=name, max_pixels=max_pixels, max_bytes=max_bytes).pixels
    stretch = _stretch_of(pixels, spec)
    image = _resized(pixels, spec, stretch)
    exif = Image.Exif()
    exif[_DESCRIPTION_TAG] = stretch.to_json()
    options: dict[str, object] = {"exif": exif.tobytes()}
    if spec.format is RenditionFormat.PNG:
        options["optimize"] = False
        options["compress_level"] = 6
    elif spec.format is RenditionFormat.WEBP:
        options.update(quality=spec.quality, method=4)
    elif spec.format is RenditionFormat.AVIF:
        options.update(quality=spec.quality, speed=8)
    else:
        options.update(quality=spec.quality, optimize=True, progressive=True)
    buffer = io.BytesIO()
    image.save(buffer, _PIL_FORMATS[spec.format], **options)
    return Rendition(buffer.getvalue(), spec.media_type, image.width, image.height, stretch)


def read_stretch(data: bytes) -> Stretch | None:
    """The stretch recorded in a rendition made by :func:`render`, or ``None`` when there is none."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = image.getexif().get(_DESCRIPTION_TAG)
        if not isinstance(text, str):
            return None
        found = json.loads(text)
        low, high = found["stretch"]
        low_p, high_p = found["percentiles"]
        return Stretch(float(low), float(high), (float(low_p), float(high_p)), str(found["dtype"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
