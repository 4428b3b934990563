"""What a person may change on an image, and the values each field may hold.

The name is what the image is shown and exported as: not empty, at most :data:`MAX_NAME` characters, no
path separators or control characters (it names files in exports). The pixel size is the edge of one
pixel in micrometres: a finite number in (0, :data:`MAX_PIXEL_SIZE_UM`], from an electron micrograph's
nanometres to a whole-slide overview's tens of micrometres, with room to spare.
"""

from __future__ import annotations

import math

from server.domain.errors import InvalidInputError

__all__ = ["MAX_NAME", "MAX_PIXEL_SIZE_UM", "checked_image_name", "checked_pixel_size"]

MAX_NAME = 255
MAX_PIXEL_SIZE_UM = 1000.0


def checked_image_name(name: str) -> str:
    """The name without surrounding blanks, or :class:`InvalidInputError` (field ``name``) saying why not."""
    name = name.strip()
    if not name:
        raise InvalidInputError("name", "must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidInputError("name", f"{len(name)} characters, at most {MAX_NAME} allowed")
    if "/" in name or "\\" in name:
        raise InvalidInputError("name", "must not contain / or \\ (it names a file, not a path)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInputError("name", "must not contain control characters")
    return name


def checked_pixel_size(pixel_size_um: float) -> float:
    """The pixel size, or :class:`InvalidInputError` (field ``pixelSizeUm``) saying why not."""
    if not math.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise InvalidInputError(
            "pixelSizeUm", f"must be a positive number of micrometres, not {pixel_size_um}"
        )
    if pixel_size_um > MAX_PIXEL_SIZE_UM:
        raise InvalidInputError(
            "pixelSizeUm", f"{pixel_size_um} µm per pixel is more than {MAX_PIXEL_SIZE_UM:g}; is it in µm?"
        )
    return float(pixel_size_um)
