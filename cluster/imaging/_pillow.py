"""PNG, JPEG and BMP, read with Pillow (and 16-bit colour PNGs with imagecodecs, which keeps 16 bits).

Each format's Pillow plugin is constructed directly rather than through ``Image.open``: the bytes were
already identified, and that path skips Pillow's process-wide decompression-bomb limit, so the size
check here (per call, against ``max_pixels``) is the one that refuses big images.
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left at False, so truncated data raises instead of decoding as grey.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO, Any

import imagecodecs
import numpy as np
from numpy.typing import NDArray
from PIL import BmpImagePlugin, ImageFile, JpegImagePlugin, PngImagePlugin

from cluster.exceptions import UnsupportedFormatError
from cluster.imaging._image import (
    ImageInfo,
    LoadedImage,
    check_decoded_size,
    check_pixel_count,
    decoding_errors,
)
from cluster.imaging._pixels import as_delivered, to_grayscale
from cluster.imaging._resolution import pixel_size_from_dpi
from cluster.imaging._sniff import ContainerFormat

__all__ = ["read_pillow", "read_pillow_info"]

_PLUGINS: dict[str, type[ImageFile.ImageFile]] = {
    "png": PngImagePlugin.PngImageFile,
    "jpeg": JpegImagePlugin.JpegImageFile,
    "bmp": BmpImagePlugin.BmpImageFile,
}


@dataclass(frozen=True)
class _Mode:
    """How a Pillow mode is handed out: delivered dtype, colour channels, and a mode to convert to first."""

    dtype: str
    channels: int
    convert: str | None = None


_MODES: dict[str, _Mode] = {
    "1": _Mode("uint8", 1, "L"),
    "L": _Mode("uint8", 1),
    "LA": _Mode("uint8", 2),
    "La": _Mode("uint8", 2, "LA"),
    "P": _Mode("uint8", 3, "RGB"),
    "PA": _Mode("uint8", 4, "RGBA"),
    "RGB": _Mode("uint8", 3),
    "RGBA": _Mode("uint8", 4),
    "RGBa": _Mode("uint8", 4, "RGBA"),
    "RGBX": _Mode("uint8", 3, "RGB"),
    "CMYK": _Mode("uint8", 4, "RGB"),
    "YCbCr": _Mode("uint8", 3, "RGB"),
    "LAB": _Mode("uint8", 3, "RGB"),
    "HSV": _Mode("uint8", 3, "RGB"),
    "I;16": _Mode("uint16", 1),
    "I;16L": _Mode("uint16", 1),
    "I;16B": _Mode("uint16", 1),
    "I;16N": _Mode("uint16", 1),
    "I": _Mode("float32", 1),
    "F": _Mode("float32", 1),
}

# PNG colour types with more than one sample: gray+alpha, RGB, RGBA (not palette, which is 8-bit at most).
_PNG_MULTI_SAMPLE = {4: 2, 2: 3, 6: 4}


def read_pillow_info(
    stream: IO[bytes], name: str, fmt: ContainerFormat, head: bytes, max_pixels: int, max_bytes: int
) -> ImageInfo:
    """Read the header of a PNG, JPEG or BMP without decoding its pixels."""
    _check_header_size(name, fmt, head, max_pixels)
    with decoding_errors(name, fmt.upper()), _PLUGINS[fmt](stream) as image:
        return _describe(image, name, fmt, head, max_pixels, max_bytes)


def read_pillow(
    stream: IO[bytes], name: str, fmt: ContainerFormat, head: bytes, max_pixels: int, max_bytes: int
) -> LoadedImage:
    """Decode a PNG, JPEG or BMP to a 2-D grayscale array, after checking its size."""
    _check_header_size(name, fmt, head, max_pixels)
    with decoding_errors(name, fmt.upper()):
        with _PLUGINS[fmt](stream) as image:
            info = _describe(image, name, fmt, head, max_pixels, max_bytes)
            if _is_16bit_colour_png(fmt, head):
                stream.seek(0)
                array = np.asarray(imagecodecs.png_decode(stream.read()))
            else:
                array = _pillow_array(image)
        pixels = to_grayscale(as_delivered(array))
    return LoadedImage(info=info, pixels=pixels)


def _describe(
    image: ImageFile.ImageFile, name: str, fmt: ContainerFormat, head: bytes, max_pixels: int, max_bytes: int
) -> ImageInfo:
    width, height = image.size
    check_pixel_count(name, width, height, max_pixels)
    mode = _MODES.get(image.mode)
    if mode is None:
        raise UnsupportedFormatError(name, f"{fmt.upper()} with pixel mode {image.mode!r} is not supported")
    dtype, channels = mode.dtype, mode.channels
    if image.mode == "P" and "transparency" in image.info:
        channels = 4
    if _is_16bit_colour_png(fmt, head):
        dtype, channels = "uint16", _PNG_MULTI_SAMPLE[head[25]]
    check_decoded_size(name, (height, width, channels), np.dtype(dtype).itemsize, max_bytes)
    return ImageInfo(
        name=name,
        format=fmt,
        width=width,
        height=height,
        bit_depth=np.dtype(dtype).itemsize * 8,
        dtype=dtype,
        channels=channels,
        pages=1,
        pixel_size_um=_pixel_size(image, fmt),
    )


def _pillow_array(image: ImageFile.ImageFile) -> NDArray[Any]:
    image.load()
    mode = _MODES[image.mode]
    target = mode.convert
    if image.mode == "P" and "transparency" in image.info:
        target = "RGBA"  # converting straight to RGB makes Pillow warn about the transparency
    return np.asarray(image.convert(target) if target else image)


def _pixel_size(image: ImageFile.ImageFile, fmt: ContainerFormat) -> float | None:
    """µm per pixel from a PNG's pHYs chunk (Pillow reports it as dpi when its unit is the metre)."""
    dpi = image.info.get("dpi") if fmt == "png" else None
    if not isinstance(dpi, tuple) or not dpi:
        return None
    return pixel_size_from_dpi(float(dpi[0]))


def _is_16bit_colour_png(fmt: ContainerFormat, head: bytes) -> bool:
    """Pillow reduces 16-bit RGB, RGBA and gray+alpha PNGs to 8 bits; imagecodecs keeps all 16."""
    return fmt == "png" and len(head) >= 26 and head[24] == 16 and head[25] in _PNG_MULTI_SAMPLE


def _check_header_size(name: str, fmt: ContainerFormat, head: bytes, max_pixels: int) -> None:
    """Check the dimensions a PNG or BMP header states before any decoder sees the file.

    JPEG dimensions sit behind a variable run of segments; Pillow's header parse finds them, and
    :func:`_describe` checks them before any pixel is decoded.
    """
    size: tuple[int, int] | None = None
    if fmt == "png" and len(head) >= 24 and head[12:16] == b"IHDR":
        size = struct.unpack_from(">II", head, 16)
    elif fmt == "bmp" and len(head) >= 26:
        if struct.unpack_from("<I", head, 14)[0] == 12:
            size = struct.unpack_from("<HH", head, 18)
        else:
            width, height = struct.unpack_from("<ii", head, 18)
            size = (width, abs(height))  # negative height: rows stored top-down
    if size is not None:
        check_pixel_count(name, size[0], size[1], max_pixels)
