"""TIFF, OME-TIFF and ImageJ TIFF, read with tifffile (imagecodecs decodes the compressed ones).

A file's first series is the image: its planes (pages, frames, OME channels and z-slices) are the
``pages`` of :class:`ImageInfo`, and one of them is decoded. RGB and YCbCr planes become luminance,
palette planes go through their colour map, and other multi-sample planes keep their first sample. Where
samples are stored apart (planar configuration "separate"), only the samples shown are read and decoded.
"""

from __future__ import annotations

import logging
from typing import IO, Any
from xml.etree import ElementTree

import numpy as np
import tifffile
from numpy.typing import NDArray

from cluster.exceptions import EmptyImageError
from cluster.imaging._image import (
    ImageInfo,
    LoadedImage,
    check_decoded_size,
    check_pixel_count,
    decoding_errors,
)
from cluster.imaging._pixels import as_delivered, delivered_dtype, to_grayscale
from cluster.imaging._resolution import (
    micrometres_per_unit,
    pixel_size_from_density,
    pixel_size_from_dpi,
    pixel_size_from_length,
)

__all__ = ["check_tiff", "read_tiff", "read_tiff_info"]

_log = logging.getLogger(__name__)

_PHOTOMETRIC = tifffile.PHOTOMETRIC
_SEPARATE = tifffile.PLANARCONFIG.SEPARATE
_COLOUR = (_PHOTOMETRIC.RGB, _PHOTOMETRIC.YCBCR)
_RESUNIT = tifffile.RESUNIT
_MICROMETRES_PER_CM = 1e4


def read_tiff_info(stream: IO[bytes], name: str, max_pixels: int, max_bytes: int) -> ImageInfo:
    """Read the header of a TIFF (all IFDs, no pixel data)."""
    with decoding_errors(name, "TIFF"):
        tif = tifffile.TiffFile(stream)
    with tif, decoding_errors(name, "TIFF"):
        return _describe(tif, name, max_pixels, max_bytes)


def read_tiff(stream: IO[bytes], name: str, max_pixels: int, max_bytes: int, page: int) -> LoadedImage:
    """Read plane ``page`` of a TIFF's first series as 2-D grayscale, after checking its size."""
    with decoding_errors(name, "TIFF"):
        tif = tifffile.TiffFile(stream)
    with tif:
        with decoding_errors(name, "TIFF"):
            info = _describe(tif, name, max_pixels, max_bytes)
        _check_page(name, page, info.pages)
        with decoding_errors(name, "TIFF"):
            pixels = _read_plane(tif.series[0], page)
    return LoadedImage(info=info, pixels=pixels)


def check_tiff(stream: IO[bytes], name: str, max_pixels: int, max_bytes: int, budget: int) -> ImageInfo:
    """Decode the planes of a TIFF one at a time, the first always and the others while the bytes decoded
    so far stay within ``budget``, so a damaged or cut-off file is found before anyone relies on it."""
    with decoding_errors(name, "TIFF"):
        tif = tifffile.TiffFile(stream)
    with tif, decoding_errors(name, "TIFF"):
        info = _describe(tif, name, max_pixels, max_bytes)
        series = tif.series[0]
        plane_bytes = max(1, int(series.keyframe.nbytes))
        for page in range(max(1, min(info.pages, budget // plane_bytes))):
            _read_plane(series, page, every_sample=True)
    return info


def _check_page(name: str, page: int, pages: int) -> None:
    if not 0 <= page < pages:
        raise ValueError(f"{name}: page {page} requested, but the image has {pages} page(s) (0..{pages - 1})")


def _describe(tif: tifffile.TiffFile, name: str, max_pixels: int, max_bytes: int) -> ImageInfo:
    if not tif.series:
        raise EmptyImageError(name, "the TIFF holds no images")
    series = tif.series[0]
    keyframe = series.keyframe
    width, height = int(keyframe.imagewidth), int(keyframe.imagelength)
    check_pixel_count(name, width, height, max_pixels)
    if keyframe.dtype is None:
        raise EmptyImageError(name, "the TIFF's pixel format is not one we can decode")
    # shape holds samples and a tile's depth as well as the pixels: all of them are decoded together
    check_decoded_size(name, tuple(int(n) for n in keyframe.shape), keyframe.dtype.itemsize, max_bytes)
    dtype = np.dtype(np.uint8) if _is_palette(keyframe) else delivered_dtype(keyframe.dtype)
    return ImageInfo(
        name=name,
        format="ome-tiff" if tif.is_ome else "tiff",
        width=width,
        height=height,
        bit_depth=dtype.itemsize * 8,
        dtype=str(dtype),
        channels=_channels(series, keyframe),
        pages=len(series),
        pixel_size_um=_pixel_size(tif, keyframe),
    )


def _is_palette(keyframe: Any) -> bool:
    return bool(keyframe.photometric == _PHOTOMETRIC.PALETTE and keyframe.colormap is not None)


def _channels(series: tifffile.TiffPageSeries, keyframe: Any) -> int:
    """Colour samples per pixel, or the size of a channel axis stored as separate planes."""
    if _is_palette(keyframe):
        return 3
    samples = int(keyframe.samplesperpixel)
    if samples > 1:
        return samples
    axes = series.axes
    return int(series.shape[axes.index("C")]) if "C" in axes else 1


def _read_plane(series: tifffile.TiffPageSeries, page: int, every_sample: bool = False) -> NDArray[Any]:
    keyframe = series.keyframe
    frame = series[page]
    if frame is None:
        raise ValueError(f"plane {page} is missing from the file")
    data = _decode(keyframe, frame, every_sample)
    axes = keyframe.axes
    # Keep Y, X and samples; take the first slice of anything else (a tile's depth, for instance).
    data = data[tuple(slice(None) if axis in "YXS" else 0 for axis in axes)]
    kept = [axis for axis in axes if axis in "YXS"]
    if "S" in kept:
        data = np.moveaxis(data, kept.index("S"), -1)
        kept.append(kept.pop(kept.index("S")))
    if kept[:2] != ["Y", "X"]:
        raise ValueError(f"unexpected plane layout {keyframe.axes!r}")
    if _is_palette(keyframe):
        return to_grayscale(_apply_colormap(data, np.asarray(keyframe.colormap)))
    # Keep only the samples shown before converting, so extra samples are never copied.
    if data.ndim == 3 and keyframe.photometric in _COLOUR and data.shape[2] >= 3:
        return to_grayscale(as_delivered(data[:, :, :4]))
    if data.ndim == 3:  # a copy of the first sample, so that the others' memory is freed right away
        data = np.ascontiguousarray(data[:, :, 0])
    return as_delivered(data)


def _decode(keyframe: Any, frame: Any, every_sample: bool) -> NDArray[Any]:
    """The plane's values in the layout of ``keyframe.shape``; of samples stored apart, only those shown
    (so a 32-sample plane costs one sample's memory) unless ``every_sample``, otherwise all of them (they
    are interleaved)."""
    shown = 3 if keyframe.photometric in _COLOUR else 1
    samples = int(keyframe.samplesperpixel)
    if every_sample or keyframe.planarconfig != _SEPARATE or samples <= shown or _is_palette(keyframe):
        return np.asarray(frame.asarray()).reshape(keyframe.shape)
    _, depth, length, width, _ = keyframe.shaped
    out = np.zeros((shown, depth, length, width), keyframe.dtype)
    handle = keyframe.parent.filehandle
    per_sample = len(frame.dataoffsets) // samples  # segments are stored sample after sample
    for index in range(shown * per_sample):
        offset, count = int(frame.dataoffsets[index]), int(frame.databytecounts[index])
        handle.seek(offset)
        data = handle.read(count)
        if len(data) != count:
            raise ValueError(f"failed to read {count} bytes, got {len(data)}")
        segment, (sample, z, y, x, _), _ = keyframe.decode(
            data or None, index, jpegtables=keyframe.jpegtables
        )
        if segment is None:
            continue  # an empty segment: zeros (tifffile's fill value)
        target = out[sample, z : z + segment.shape[0], y : y + segment.shape[1], x : x + segment.shape[2]]
        target[...] = segment[: target.shape[0], : target.shape[1], : target.shape[2], 0]
    return out.reshape((shown, *keyframe.shape[1:]))


def _apply_colormap(indices: NDArray[Any], colormap: NDArray[Any]) -> NDArray[np.uint8]:
    """Palette indices to 8-bit RGB; TIFF colour maps are 16-bit, though some writers put 8-bit values."""
    cmap = np.asarray(colormap)
    cmap8 = cmap if cmap.max() <= 255 else cmap >> 8
    index = indices[:, :, 0] if indices.ndim == 3 else indices
    rgb = np.take(cmap8.astype(np.uint8), index.astype(np.intp), axis=1, mode="clip")
    return np.moveaxis(rgb, 0, -1)


def _pixel_size(tif: tifffile.TiffFile, keyframe: Any) -> float | None:
    """µm per pixel: OME's PhysicalSizeX first, then the XResolution tag (with ImageJ's unit if needed)."""
    if tif.is_ome and tif.ome_metadata:
        size = _ome_pixel_size(tif.ome_metadata)
        if size is not None:
            return size
    tags = keyframe.tags
    xres = tags.get("XResolution")
    if xres is None:
        return None
    try:
        numerator, denominator = xres.value
        density = float(numerator) / float(denominator)
        unit = int(tags.valueof("ResolutionUnit", _RESUNIT.INCH))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if unit == _RESUNIT.INCH:
        return pixel_size_from_dpi(density)
    if unit == _RESUNIT.CENTIMETER:
        return pixel_size_from_density(density, _MICROMETRES_PER_CM)
    if unit == _RESUNIT.NONE and tif.is_imagej:
        imagej_unit = (tif.imagej_metadata or {}).get("unit")
        unit_um = micrometres_per_unit(str(imagej_unit)) if imagej_unit is not None else None
        return pixel_size_from_density(density, unit_um) if unit_um is not None else None
    return None


def _ome_pixel_size(xml: str) -> float | None:
    """PhysicalSizeX of the first image's Pixels element, converted to µm (OME's default unit)."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        _log.warning("ignoring unparsable OME-XML metadata")
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        value = element.get("PhysicalSizeX")
        unit_um = micrometres_per_unit(element.get("PhysicalSizeXUnit", "µm"))
        if value is None or unit_um is None:
            return None
        try:
            return pixel_size_from_length(float(value), unit_um)
        except ValueError:
            return None
    return None
