"""Reading microscope images: format from the bytes, header facts, one grayscale plane, normalisation.

TIFF (8/16-bit, float32, RGB, multi-page, ImageJ, OME-TIFF; compressed ones through imagecodecs) is read
with tifffile; PNG, JPEG and BMP with Pillow. The format comes from the file's magic number, never its
name. Two limits are checked from the header before anything is decoded: pixels per plane and the bytes one
decoded plane takes (samples and bit depth included). Every failure is an
:class:`~cluster.exceptions.ImageReadError` naming the file::

    info = read_image_info("plate1/A01.tif")          # header only: size, bit depth, pixel size in µm
    info = check_image("upload.tif")                   # the same, once its pixels are known to decode
    image = read_image(upload_bytes, name="A01.png")  # one 2-D grayscale plane in its own dtype
    model_input = normalize(image.pixels)              # float32, about 0..1
"""

from __future__ import annotations

from cluster.imaging._image import (
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageFormat,
    ImageInfo,
    LoadedImage,
)
from cluster.imaging._pixels import normalize, to_grayscale
from cluster.imaging._reader import check_image, read_image, read_image_info
from cluster.imaging._sniff import sniff_format
from cluster.imaging._source import ImageSource

__all__ = [
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageFormat",
    "ImageInfo",
    "ImageSource",
    "LoadedImage",
    "check_image",
    "normalize",
    "read_image",
    "read_image_info",
    "sniff_format",
    "to_grayscale",
]
