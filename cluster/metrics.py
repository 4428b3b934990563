"""Morphology metrics of one spheroid, computed from its polygon (exterior ring and hole rings).

(Formulas and units: to be written with the implementation of :func:`measure`.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["SpheroidMetrics"]


@dataclass(frozen=True)
class SpheroidMetrics:
    """Metrics of one spheroid. ``*_px`` in pixels, ``*_um``/``*_um2`` in micrometres (``None`` when the
    pixel size is unknown); dimensionless ratios have no suffix."""

    area_px: float
    area_um2: float | None
    perimeter_px: float
    perimeter_um: float | None
    perimeter_with_holes_px: float
    perimeter_with_holes_um: float | None
    equivalent_diameter_px: float
    equivalent_diameter_um: float | None
    circularity: float
    compactness: float
    sphericity: float
    convexity: float
    solidity: float
    extent: float
    feret_max_px: float
    feret_max_um: float | None
    feret_min_px: float
    feret_min_um: float | None
    aspect_ratio: float
    major_axis_px: float
    major_axis_um: float | None
    minor_axis_px: float
    minor_axis_um: float | None
    orientation_deg: float
    centroid_x: float
    centroid_y: float
    bbox_x_min: float
    bbox_y_min: float
    bbox_x_max: float
    bbox_y_max: float
    hole_count: int
    hole_area_px: float
    hole_area_um2: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)
