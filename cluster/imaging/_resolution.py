"""Pixel size in micrometres from the ways files record it: resolutions per inch, centimetre or metre,
ImageJ's ``unit=`` and OME's ``PhysicalSizeX``/``PhysicalSizeXUnit``.

Image editors stamp 72 or 96 dots per inch (and some writers 1) on files that have no calibration at all;
read literally that would be 353, 265 or 25,400 µm per pixel, so :func:`pixel_size_from_dpi` treats those
values as "unknown".
"""

from __future__ import annotations

import math

__all__ = [
    "MICROMETRES_PER_INCH",
    "micrometres_per_unit",
    "pixel_size_from_density",
    "pixel_size_from_dpi",
    "pixel_size_from_length",
]

MICROMETRES_PER_INCH = 25_400.0

_PLACEHOLDER_DPI = (1.0, 72.0, 96.0)

_UNITS_UM: dict[str, float] = {
    "pm": 1e-6,
    "å": 1e-4,
    "angstrom": 1e-4,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "µm": 1.0,  # MICRO SIGN
    "μm": 1.0,  # GREEK SMALL LETTER MU
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "m": 1e6,
    "meter": 1e6,
    "metre": 1e6,
    "inch": MICROMETRES_PER_INCH,
    "in": MICROMETRES_PER_INCH,
}


def micrometres_per_unit(unit: str) -> float | None:
    """Micrometres in one ``unit`` (``"nm"``, ``"micron"``, ImageJ's ``"\\u00B5m"``); ``None`` if unknown."""
    key = unit.strip().lower().replace("\\u00b5", "µ").replace("\\u03bc", "μ")
    return _UNITS_UM.get(key)


def pixel_size_from_density(pixels_per_unit: float, unit_um: float) -> float | None:
    """Edge of one pixel in µm, given how many pixels fit in a unit ``unit_um`` micrometres long."""
    if not math.isfinite(pixels_per_unit) or pixels_per_unit <= 0:
        return None
    return _micrometres(unit_um / pixels_per_unit)


def pixel_size_from_length(length: float, unit_um: float) -> float | None:
    """Edge of one pixel in µm, given it is ``length`` units of ``unit_um`` micrometres each."""
    return _micrometres(length * unit_um)


def pixel_size_from_dpi(dots_per_inch: float) -> float | None:
    """Edge of one pixel in µm from a dots-per-inch value, ``None`` for the 1/72/96 dpi placeholders."""
    if any(abs(dots_per_inch - screen) < 0.5 for screen in _PLACEHOLDER_DPI):
        return None
    return pixel_size_from_density(dots_per_inch, MICROMETRES_PER_INCH)


def _micrometres(size: float) -> float | None:
    """A positive, finite size, rounded to 9 significant digits: TIFF stores resolutions as fractions,
    and 1 / (3076923 / 1000000) should read as 0.325, not 0.32499999999999996."""
    return float(f"{size:.9g}") if math.isfinite(size) and size > 0 else None
