"""The two entry points: an image's header (:func:`read_image_info`) and pixels (:func:`read_image`)."""

from __future__ import annotations

from cluster.imaging._image import DEFAULT_MAX_PIXELS, ImageInfo, LoadedImage
from cluster.imaging._pillow import read_pillow, read_pillow_info
from cluster.imaging._sniff import sniff_format
from cluster.imaging._source import ImageSource, open_source
from cluster.imaging._tiff import read_tiff, read_tiff_info

__all__ = ["read_image", "read_image_info"]


def read_image_info(
    source: ImageSource, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageInfo:
    """Return format, size, bit depth, channels, pages and pixel size from the header alone.

    ``source`` is a path, the file's bytes, or a binary file object; ``name`` is used in error
    messages (default: the path or the file object's name). No pixel data is decoded, so this is cheap
    enough to call on every upload. Raises :class:`~cluster.exceptions.ImageReadError` subclasses:
    ``UnsupportedFormatError``, ``CorruptImageError``, ``EmptyImageError``, ``ImageTooLargeError``
    (a plane of more than ``max_pixels`` pixels).
    """
    with open_source(source, name) as opened:
        fmt = sniff_format(opened.head, opened.name)
        if fmt == "tiff":
            return read_tiff_info(opened.stream, opened.name, max_pixels)
        return read_pillow_info(opened.stream, opened.name, fmt, opened.head, max_pixels)


def read_image(
    source: ImageSource, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, page: int = 0
) -> LoadedImage:
    """Decode one plane of an image to a 2-D grayscale array in its own dtype (uint8, uint16, float32).

    ``page`` picks the plane of a multi-page TIFF, ImageJ stack or OME-TIFF (the first series; 0 is the
    first page, or the first channel and z-slice); other formats have only page 0, and a page out of range
    raises :class:`ValueError`. The size is checked against ``max_pixels`` before anything is decoded.
    Errors are those of :func:`read_image_info`; a library's own exception never escapes.
    """
    with open_source(source, name) as opened:
        fmt = sniff_format(opened.head, opened.name)
        if fmt == "tiff":
            return read_tiff(opened.stream, opened.name, max_pixels, page)
        image = read_pillow(opened.stream, opened.name, fmt, opened.head, max_pixels)
    if page != 0:
        raise ValueError(f"{image.info.name}: page {page} requested, but the image has 1 page (0)")
    return image
