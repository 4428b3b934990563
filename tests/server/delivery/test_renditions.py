"""Renditions: 16-bit and float TIFFs become small 8-bit images, contrast stretched, the stretch recorded."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from cluster.exceptions import ImageTooLargeError
from server.delivery.renditions import read_stretch, render
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec

LIMIT = 100_000_000


def spheroid(size: int, dtype: type = np.uint16, seed: int = 0) -> np.ndarray:
    """A bright round blob on a dim noisy background, in the top 40% of the 16-bit range at most."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    blob = 20_000 * np.exp(-((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (2 * (size / 5) ** 2))
    return (blob + rng.normal(3_000, 300, (size, size))).clip(0, 65_535).astype(dtype)


def tiff_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels)
    return buffer.getvalue()


def test_a_16_bit_tiff_thumbnail_is_8_bit_stretched_and_tiny() -> None:
    pixels = spheroid(1024)
    original = tiff_bytes(pixels)
    made = render(original, RenditionSpec(256, 256, quality=70), LIMIT)
    assert (made.width, made.height) == (256, 256)
    assert len(made.data) < 0.02 * len(original)
    shown = np.asarray(Image.open(io.BytesIO(made.data)).convert("L"))
    # Stretched: the blob is near white and the background near black (a linear cut would be all dark).
    assert shown[128, 128] > 230 and shown[5, 5] < 40
    low, high = np.percentile(pixels, (0.5, 99.5))
    assert made.stretch.low == pytest.approx(low, rel=0.02) and made.stretch.high == pytest.approx(
        high, rel=0.02
    )
    assert read_stretch(made.data) == made.stretch
    assert "dtype=uint16" in made.stretch.header()


def test_float_tiffs_with_nan_render_and_record_their_range() -> None:
    pixels = spheroid(256).astype(np.float32) / 1000.0
    pixels[0, :10] = np.nan
    made = render(tiff_bytes(pixels), RenditionSpec(128, 128, format=RenditionFormat.PNG), LIMIT)
    assert made.stretch.dtype == "float32" and 2.0 < made.stretch.low < made.stretch.high < 25.0
    assert Image.open(io.BytesIO(made.data)).size == (128, 128)


@pytest.mark.parametrize(
    ("fit", "box", "expected"),
    [
        (Fit.SCALE_DOWN, (400, 400), (300, 150)),  # never enlarged
        (Fit.SCALE_DOWN, (100, 100), (100, 50)),
        (Fit.CONTAIN, (600, 600), (600, 300)),  # enlarged to fit
        (Fit.COVER, (100, 100), (100, 100)),  # fills the box, cropped
    ],
)
def test_fit_modes(fit: Fit, box: tuple[int, int], expected: tuple[int, int]) -> None:
    pixels = np.tile(spheroid(150), (1, 2))
    made = render(tiff_bytes(pixels), RenditionSpec(*box, fit=fit), LIMIT)
    assert (made.width, made.height) == expected
    assert Image.open(io.BytesIO(made.data)).size == expected


@pytest.mark.parametrize("fmt", list(RenditionFormat))
def test_every_format_decodes_to_what_it_says(fmt: RenditionFormat) -> None:
    made = render(tiff_bytes(spheroid(200)), RenditionSpec(64, 64, format=fmt, quality=60), LIMIT)
    image = Image.open(io.BytesIO(made.data))
    assert image.format == {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG", "avif": "AVIF"}[fmt.value]
    assert made.media_type == f"image/{fmt.value}" and image.size == (64, 64)


def test_8_bit_pngs_render_too() -> None:
    pixels = (spheroid(300) // 256).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    made = render(buffer.getvalue(), RenditionSpec(100, 100), LIMIT)
    assert made.stretch.dtype == "uint8" and made.width == 100


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and that holds no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_an_image_over_the_pixel_limit_is_refused_from_its_header() -> None:
    # Decoding would fail as corrupt (there is no pixel data): the refusal names the limit, so it came first.
    with pytest.raises(ImageTooLargeError, match="more than the limit"):
        render(huge_png_header(30_000, 30_000), RenditionSpec(256, 256), LIMIT)
