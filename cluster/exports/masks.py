"""Label masks: ``masks/<stem>.png``, one per image, the full image size.

Pixel value 0 is background and ``k`` is spheroid ``k`` (its ``spheroid_id``). Where spheroids overlap the
later one wins (:func:`cluster.polygons.spheroids_to_labels`). The PNG is 8-bit greyscale when the image has
at most 255 spheroids and 16-bit greyscale otherwise (decided by the spheroid count, so an image's mask
always has the same depth); more than 65,535 spheroids in one image cannot be written as PNG and raise
:class:`ExportError`. An image without spheroids gets an all-zero mask.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from cluster.exceptions import ExportError
from cluster.exports.files import atomic_write
from cluster.exports.records import ExportImage
from cluster.polygons import spheroids_to_labels

__all__ = ["MASK_FOLDER", "label_png", "write_masks"]

MASK_FOLDER = "masks"
_DEPTHS: tuple[tuple[type[np.uint8] | type[np.uint16], int], ...] = ((np.uint8, 255), (np.uint16, 65_535))


def write_masks(images: Sequence[ExportImage], out_dir: Path) -> list[Path]:
    """Write ``out_dir/masks/<stem>.png`` for every image; return the paths in image order."""
    folder = out_dir / MASK_FOLDER
    try:
        folder.mkdir(exist_ok=True)
    except OSError as error:
        raise ExportError(f"{folder}: could not create the folder: {error.strerror or error}") from error
    paths: list[Path] = []
    for image in images:
        segmentation = image.segmentation
        labels = spheroids_to_labels(segmentation.spheroids, (segmentation.height, segmentation.width))
        try:
            data = label_png(labels, len(segmentation.spheroids))
        except ValueError as error:
            raise ExportError(f"{segmentation.image_name}: {error}") from error
        paths.append(atomic_write(folder / f"{image.stem}.png", data))
    return paths


def label_png(labels: NDArray[np.integer], count: int) -> bytes:
    """PNG bytes of a label image with labels ``0..count``: 8-bit up to 255 labels, else 16-bit.

    Raises :class:`ValueError` for more than 65,535 labels.
    """
    for dtype, limit in _DEPTHS:
        if count <= limit:
            buffer = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(labels, dtype=dtype)).save(buffer, format="PNG")
            return buffer.getvalue()
    raise ValueError(f"{count} spheroids do not fit in a 16-bit PNG label mask (at most 65,535)")
