"""Which format an image is in, decided from its first bytes (magic numbers), never from its name."""

from __future__ import annotations

import struct
from typing import Literal

from cluster.exceptions import EmptyImageError, UnsupportedFormatError

__all__ = ["HEAD_SIZE", "SUPPORTED", "ContainerFormat", "sniff_format"]

ContainerFormat = Literal["tiff", "png", "jpeg", "bmp"]

HEAD_SIZE = 512
"""How many leading bytes :func:`sniff_format` wants to see (it copes with fewer)."""

SUPPORTED = "TIFF (including OME-TIFF and ImageJ TIFF), PNG, JPEG and BMP"

_SIGNATURES: tuple[tuple[bytes, ContainerFormat], ...] = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)

# Formats people do drop on us; naming them makes the error useful.
_KNOWN_OTHERS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"8BPS", "a Photoshop document"),
    (b"ZISRAWFILE", "a Zeiss CZI file"),
    (b"\xda\xce\xbe\x0a", "a Nikon ND2 file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 compound file (e.g. Olympus OIB)"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)

# Sizes of the BMP info headers Windows and OS/2 define; anything else is not a BMP.
_BMP_INFO_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def sniff_format(head: bytes, name: str = "<bytes>") -> ContainerFormat:
    """Return ``"tiff"``, ``"png"``, ``"jpeg"`` or ``"bmp"`` from the first bytes of an image.

    ``head`` should hold the first :data:`HEAD_SIZE` bytes (or the whole file if shorter). OME-TIFF is
    a TIFF at this level; it is told apart when its header is read. Raises :class:`EmptyImageError` for
    zero bytes and :class:`UnsupportedFormatError`, naming what the bytes look like, for anything else.
    """
    if not head:
        raise EmptyImageError(name, "the file is empty (0 bytes)")
    for magic, fmt in _SIGNATURES:
        if head.startswith(magic):
            return fmt
    if _is_bmp(head):
        return "bmp"
    raise UnsupportedFormatError(name, f"{_describe(head)}, not an image we can read; supported: {SUPPORTED}")


def _is_bmp(head: bytes) -> bool:
    """``BM`` alone is too weak a signature (text can start with it): check the info-header size too."""
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    (info_size,) = struct.unpack_from("<I", head, 14)
    return info_size in _BMP_INFO_SIZES


def _describe(head: bytes) -> str:
    """Say what unsupported bytes look like, for the error message."""
    for magic, what in _KNOWN_OTHERS:
        if head.startswith(magic):
            return f"this is {what}"
    if head[4:8] == b"ftyp":
        return "this is a HEIF/AVIF image or an MP4 video"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "this is a WebP image"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "this is a DICOM file"
    if _looks_like_text(head):
        return "this is a text file"
    return f"the format is not recognised (it starts with bytes {head[:8].hex(' ')})"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # The head may end inside a multi-byte character; judge the rest.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(char.isprintable() or char in "\r\n\t\f" for char in text.lstrip("\ufeff"))
