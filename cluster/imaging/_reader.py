"""The entry points: an image's header (:func:`read_image_info`), its pixels (:func:`read_image`), and a
check that it decodes at all (:func:`check_image`)."""

from __future__ import annotations

from cluster.imaging._image import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_PIXELS, ImageInfo, LoadedImage
from cluster.imaging._pillow import read_pillow, read_pillow_info
from cluster.imaging._sniff import sniff_format
from cluster.imaging._source import ImageSource, open_source
from cluster.imaging._tiff import check_tiff, read_tiff, read_tiff_info

__all__ = ["check_image", "read_image", "read_image_info"]


def read_image_info(
    source: ImageSource,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> ImageInfo:
    """Return format, size, bit depth, channels, pages and pixel size from the header alone.

    ``source`` is a path, the file's bytes, or a binary file object; ``name`` is used in error
    messages (default: the path or the file object's name). No pixel data is decoded, so this is cheap
    enough to call on every upload. Raises :class:`~cluster.exceptions.ImageReadError` subclasses:
    ``UnsupportedFormatError``, ``CorruptImageError``, ``EmptyImageError``, ``ImageTooLargeError``
    (a plane of more than ``max_pixels`` pixels, or one whose decoded samples would take more than
    ``max_bytes``).
    """
    with open_source(source, name) as opened:
        fmt = sniff_format(opened.head, opened.name)
        if fmt == "tiff":
            return read_tiff_info(opened.stream, opened.name, max_pixels, max_bytes)
        return read_pillow_info(opened.stream, opened.name, fmt, opened.head, max_pixels, max_bytes)


def read_image(
    source: ImageSource,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    page: int = 0,
    *,
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> LoadedImage:
    """Decode one plane of an image to a 2-D grayscale array in its own dtype (uint8, uint16, float32).

    ``page`` picks the plane of a multi-page TIFF, ImageJ stack or OME-TIFF (the first series; 0 is the
    first page, or the first channel and z-slice); other formats have only page 0, and a page out of range
    raises :class:`ValueError`. Both limits are checked before anything is decoded; only the plane asked
    for is decoded. Errors are those of :func:`read_image_info`; a library's own exception never escapes.
    """
    with open_source(source, name) as opened:
        fmt = sniff_format(opened.head, opened.name)
        if fmt == "tiff":
            return read_tiff(opened.stream, opened.name, max_pixels, max_bytes, page)
        image = read_pillow(opened.stream, opened.name, fmt, opened.head, max_pixels, max_bytes)
    if page != 0:
        raise ValueError(f"{image.info.name}: page {page} requested, but the image has 1 page (0)")
    return image


def check_image(
    source: ImageSource,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> ImageInfo:
    """Return the header's facts once the pixels are known to decode: every plane of the file, or of a
    big stack as many planes as fit in ``max_bytes`` decoded bytes (the first always), one at a time.

    This is what an upload calls, so that a damaged or cut-off file is refused at the door instead of
    failing every job and thumbnail later. Errors are those of :func:`read_image_info`, plus
    ``CorruptImageError`` for pixel data that does not decode.
    """
    with open_source(source, name) as opened:
        fmt = sniff_format(opened.head, opened.name)
        if fmt == "tiff":
            return check_tiff(opened.stream, opened.name, max_pixels, max_bytes, budget=max_bytes)
        return read_pillow(opened.stream, opened.name, fmt, opened.head, max_pixels, max_bytes).info
