"""Write the small test images in ``tests/data/images/``; deterministic, so reruns give the same bytes.

    .venv/bin/python tests/data/make_images.py

The pixel builders below (``gray8()``, ``gray16()`` …) are what the files hold, so tests import them to
check what the readers return. Every image is 64 x 48 (width x height) and asymmetric, so a transposed or
flipped read cannot pass. The bad files are hand-built or cut from the good ones.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import tifffile
from numpy.typing import NDArray
from PIL import Image

OUT = Path(__file__).resolve().parent / "images"
WIDTH, HEIGHT = 64, 48

# Fixed so the OME-XML and tags do not change with the clock or the tifffile version.
_OME_FIXED = {"UUID": "urn:uuid:00000000-0000-4000-8000-000000000001", "Creator": "make_images.py"}
_SOFTWARE = "make_images.py"


def _grid() -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Column (x) and row (y) index arrays of shape (HEIGHT, WIDTH)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return x.astype(np.int64), y.astype(np.int64)


def gray8() -> NDArray[np.uint8]:
    x, y = _grid()
    return ((3 * x + 5 * y) % 256).astype(np.uint8)


def gray16() -> NDArray[np.uint16]:
    """Full 16-bit values whose low bytes vary too: an 8-bit read would not match."""
    x, y = _grid()
    return (257 * x + 911 * y + 13).astype(np.uint16)


def float32() -> NDArray[np.float32]:
    x, y = _grid()
    return ((x - 20.5) * 0.125 + y * 0.01).astype(np.float32)


def rgb8() -> NDArray[np.uint8]:
    x, y = _grid()
    return np.stack([4 * x, 5 * y, 2 * (x + y)], axis=-1).astype(np.uint8)


def rgba8() -> NDArray[np.uint8]:
    x, _ = _grid()
    alpha = (255 - 3 * x).astype(np.uint8)
    return np.concatenate([rgb8(), alpha[:, :, None]], axis=-1)


def rgb16() -> NDArray[np.uint16]:
    g = gray16()
    return np.stack([g, g // 2, 65535 - g], axis=-1).astype(np.uint16)


def stack8(pages: int = 3) -> NDArray[np.uint8]:
    """``pages`` distinct 8-bit planes."""
    return np.stack([(gray8().astype(np.int64) + 40 * page) % 256 for page in range(pages)]).astype(np.uint8)


def ome_zc16() -> NDArray[np.uint16]:
    """A (Z=2, C=2, Y, X) 16-bit stack; plane (z, c) is gray16 + 1000 * (2 z + c)."""
    planes = [gray16().astype(np.int64) + 1000 * index for index in range(4)]
    return np.stack(planes).reshape(2, 2, HEIGHT, WIDTH).astype(np.uint16)


def smooth_rgb8() -> NDArray[np.uint8]:
    """Smooth colours, so a JPEG of it stays within a few grey levels of the original."""
    x, y = _grid()
    return np.stack([2 * x + 40, 3 * y + 30, 200 - x - y], axis=-1).astype(np.uint8)


PALETTE = np.array([[255, 0, 0], [0, 160, 0], [0, 0, 255], [250, 250, 250]], dtype=np.uint8)


def palette_indices() -> NDArray[np.uint8]:
    x, y = _grid()
    return ((x // 16 + y // 12) % 4).astype(np.uint8)


def noise16() -> NDArray[np.uint16]:
    """Seeded noise: compresses badly, so cutting a file short really cuts into its pixel data."""
    return np.random.default_rng(20240611).integers(0, 65535, (HEIGHT, WIDTH), dtype=np.uint16)


# --- encoders ---------------------------------------------------------------------------------------------


def _tiff(data: NDArray[np.generic], **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    kwargs.setdefault("software", _SOFTWARE)
    tifffile.imwrite(buffer, data, **kwargs)
    return buffer.getvalue()


def _pillow(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _multipage_tiff() -> bytes:
    """One IFD per page, no metadata: how most acquisition software writes a plain stack."""
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        for plane in stack8():
            writer.write(plane, photometric="minisblack", metadata=None, software=_SOFTWARE)
    return buffer.getvalue()


def _palette_tiff() -> bytes:
    colormap = np.zeros((3, 256), dtype=np.uint16)
    colormap[:, :4] = PALETTE.T.astype(np.uint16) * 257
    return _tiff(palette_indices(), photometric="palette", colormap=colormap)


def _palette_png() -> bytes:
    image = Image.fromarray(palette_indices(), mode="P")
    image.putpalette(PALETTE.ravel().tolist())
    return _pillow(image, "PNG")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _zero_width_png() -> bytes:
    """A well-formed PNG (valid CRCs) whose header says 0 x 48."""
    header = struct.pack(">IIBBBBB", 0, HEIGHT, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * HEIGHT))
        + _png_chunk(b"IEND", b"")
    )


def _bad_crc_png() -> bytes:
    """A complete PNG with one byte of its pixel data flipped (the chunk CRC no longer matches)."""
    data = bytearray(_pillow(Image.fromarray(noise16()), "PNG"))
    data[data.index(b"IDAT") + 100] ^= 0xFF
    return bytes(data)


def huge_header_tiff(width: int = 100_000, height: int = 100_000) -> bytes:
    """A baseline 8-bit TIFF whose IFD claims ``width`` x ``height`` pixels but holds a single byte."""
    entries = [  # (tag, type, value); type 3 = SHORT, 4 = LONG
        (256, 4, width),  # ImageWidth
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: BlackIsZero
        (273, 4, 0),  # StripOffsets: patched below
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, 1),  # StripByteCounts
    ]
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, 1) + packed
    out += struct.pack("<I", 0) + b"\x00"  # no next IFD; the one byte of "pixel data"
    return bytes(out)


def sample_heavy_tiff(width: int, height: int, samples: int, bits: int = 64) -> bytes:
    """A TIFF whose IFD claims ``width`` x ``height`` pixels of ``samples`` IEEE-float samples each (so few
    pixels, but ``width * height * samples * bits / 8`` bytes decoded) and holds a single byte."""
    entries = [  # (tag, type, values); type 3 = SHORT, 4 = LONG
        (256, 4, [width]),  # ImageWidth
        (257, 4, [height]),  # ImageLength
        (258, 3, [bits] * samples),  # BitsPerSample
        (259, 3, [1]),  # Compression: none
        (262, 3, [1]),  # PhotometricInterpretation: BlackIsZero
        (273, 4, [0]),  # StripOffsets: the last byte, set below
        (277, 3, [samples]),  # SamplesPerPixel
        (278, 4, [height]),  # RowsPerStrip
        (279, 4, [1]),  # StripByteCounts
        (284, 3, [1]),  # PlanarConfiguration: contiguous
        (339, 3, [3] * samples),  # SampleFormat: IEEE float
    ]
    ifd_offset = 8
    arrays_offset = ifd_offset + 2 + 12 * len(entries) + 4
    packed = [
        b"".join(struct.pack("<H" if kind == 3 else "<I", v) for v in values) for _, kind, values in entries
    ]
    data_offset = arrays_offset + sum(len(p) for p in packed if len(p) > 4)
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    arrays = b""
    for (tag, kind, values), value in zip(entries, packed, strict=True):
        if tag == 273:
            value = struct.pack("<I", data_offset)
        if len(value) > 4:  # stored after the IFD, which holds its offset
            out += struct.pack("<HHII", tag, kind, len(values), arrays_offset + len(arrays))
            arrays += value
        else:
            out += struct.pack("<HHI", tag, kind, len(values)) + value.ljust(4, b"\x00")
    out += struct.pack("<I", 0) + arrays + b"\x00"  # no next IFD; the one byte of "pixel data"
    return bytes(out)


def _cut(data: bytes, fraction: float = 0.6) -> bytes:
    return data[: int(len(data) * fraction)]


_PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
_TEXT = b"sample,area_um2\nA01,15234.5\nA02,14980.1\n"


def good_files() -> dict[str, Callable[[], bytes]]:
    """File name -> bytes builder, for the images every reader must read."""
    return {
        "gray8.tif": lambda: _tiff(gray8()),
        "gray16.tif": lambda: _tiff(gray16()),
        "float32.tif": lambda: _tiff(float32()),
        "rgb.tif": lambda: _tiff(rgb8(), photometric="rgb"),
        "rgb_planar.tif": lambda: _tiff(
            np.moveaxis(rgb8(), -1, 0), photometric="rgb", planarconfig="separate"
        ),
        "palette.tif": _palette_tiff,
        "multipage.tif": _multipage_tiff,
        "imagej.tif": lambda: _tiff(
            stack8(),
            imagej=True,
            resolution=(1 / 0.325, 1 / 0.325),
            metadata={"axes": "ZYX", "unit": "micron"},
        ),
        "ome.ome.tif": lambda: _tiff(
            ome_zc16(),
            ome=True,
            metadata={"axes": "ZCYX", "PhysicalSizeX": 0.8, "PhysicalSizeXUnit": "µm", **_OME_FIXED},
        ),
        "ome_nm.ome.tif": lambda: _tiff(
            gray8(), ome=True, metadata={"PhysicalSizeX": 650.0, "PhysicalSizeXUnit": "nm", **_OME_FIXED}
        ),
        "res_cm.tif": lambda: _tiff(
            gray8(), resolution=(1e4 / 0.65, 1e4 / 0.65), resolutionunit="CENTIMETER"
        ),
        "res_inch.tif": lambda: _tiff(gray8(), resolution=(12_700, 12_700), resolutionunit="INCH"),
        "res_72dpi.tif": lambda: _tiff(gray8(), resolution=(72, 72), resolutionunit="INCH"),
        "lzw.tif": lambda: _tiff(gray16(), compression="lzw"),
        "gray8.png": lambda: _pillow(Image.fromarray(gray8()), "PNG"),
        "gray16.png": lambda: _pillow(Image.fromarray(gray16()), "PNG"),
        "rgb.png": lambda: _pillow(Image.fromarray(rgb8()), "PNG", dpi=(50_800, 50_800)),  # 0.5 µm
        "rgba.png": lambda: _pillow(Image.fromarray(rgba8()), "PNG"),
        "rgb16.png": lambda: bytes(imagecodecs.png_encode(rgb16())),
        "palette.png": _palette_png,
        "gray.jpg": lambda: _pillow(Image.fromarray(smooth_rgb8()).convert("L"), "JPEG", quality=95),
        "rgb.jpg": lambda: _pillow(Image.fromarray(smooth_rgb8()), "JPEG", quality=95),
        "rgb.bmp": lambda: _pillow(Image.fromarray(rgb8()), "BMP"),
        "gray8.bmp": lambda: _pillow(Image.fromarray(gray8()), "BMP"),
        "png_named.tif": lambda: _pillow(Image.fromarray(gray8()), "PNG"),
    }


def bad_files() -> dict[str, Callable[[], bytes]]:
    """File name -> bytes builder, for files every reader must refuse with a clear error."""
    return {
        "truncated.tif": lambda: _cut(_tiff(noise16())),
        "truncated_lzw.tif": lambda: _cut(_tiff(noise16(), compression="lzw")),
        "truncated.png": lambda: _cut(_pillow(Image.fromarray(noise16()), "PNG")),
        "truncated.jpg": lambda: _cut(_pillow(Image.fromarray(smooth_rgb8()), "JPEG", quality=95)),
        "bad_crc.png": _bad_crc_png,
        "empty.tif": lambda: b"",
        "zero_width.png": _zero_width_png,
        "text.png": lambda: _TEXT,
        "picture.gif": lambda: _pillow(Image.fromarray(gray8()), "GIF"),
        "document.pdf": lambda: _PDF,
        "huge_header.tif": huge_header_tiff,
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in {**good_files(), **bad_files()}.items():
        (OUT / name).write_bytes(build())


if __name__ == "__main__":
    main()
