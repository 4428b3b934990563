"""Responsive widths, thumbnail sizes and a device-pixel-ratio aware quality.

Requested widths are snapped up to a short ladder, so a hundred window sizes share a handful of
renditions (and CDN cache entries) instead of making a hundred. Thumbnail sizes likewise: each distinct
size is a render of the original, so without the ladder one viewer could make a thousand of every image.
On a high-DPI screen each image pixel is smaller, so compression artefacts are less visible: the quality
drops as the ratio rises, which roughly halves the bytes of a 2x preview for the same perceived quality.
"""

from __future__ import annotations

__all__ = ["THUMBNAIL_SIZES", "WIDTHS", "quality_for", "responsive_widths", "snap_thumbnail", "snap_width"]

WIDTHS = (256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)


def snap_thumbnail(requested: int) -> int:
    """The thumbnail size at or above ``requested`` (the largest for anything bigger)."""
    return next((size for size in THUMBNAIL_SIZES if size >= requested), THUMBNAIL_SIZES[-1])


def snap_width(requested: int, original_width: int) -> int:
    """The ladder width at or above ``requested``, never above the original (then: the original's)."""
    for width in WIDTHS:
        if width >= requested:
            return min(width, original_width)
    return min(WIDTHS[-1], original_width)


def responsive_widths(original_width: int, largest: int = WIDTHS[-1]) -> list[int]:
    """The widths worth offering for a ``srcset``: the ladder up to the original's width (included)."""
    widths = [w for w in WIDTHS if w < original_width and w <= largest]
    if original_width <= largest:
        widths.append(original_width)
    return widths


def quality_for(base_quality: int, dpr: float) -> int:
    """``base_quality`` at 1x; 15 less at 2x and 25 less from 3x (never under 40)."""
    if dpr <= 1.0:
        return base_quality
    drop = 15 * (dpr - 1.0) if dpr <= 2.0 else 15 + 10 * min(dpr - 2.0, 1.0)
    return max(40, min(base_quality, round(base_quality - drop)))
