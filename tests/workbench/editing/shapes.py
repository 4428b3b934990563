"""Shapes for the editing tests."""

from __future__ import annotations

import numpy as np

from workbench.editing import Outline
from workbench.editing.outline import Ring


def disc(cx: float, cy: float, r: float, n: int = 64) -> Ring:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack((cx + r * np.cos(angles), cy + r * np.sin(angles)))


def rectangle(x0: float, y0: float, x1: float, y1: float) -> Ring:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def outline(exterior: Ring, *holes: Ring) -> Outline:
    return Outline.of(exterior, holes)


def area(shape: Outline) -> float:
    return float(shape.polygon().area)
