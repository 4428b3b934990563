"""Draws resources/spheroseg.png, the program's icon (its window's, its menu entry's, the bundle's): a
spheroid in a well, its outline traced.

Run it again after changing the drawing; the PNG is committed so the build needs no drawing step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 512
SCALE = 4
"""Drawn this many times larger and reduced, for smooth edges."""


def _radius(angle: np.ndarray) -> np.ndarray:
    """A spheroid's edge is lumpy, not a circle: its radius (fraction of the tile) at each angle."""
    return (
        0.30 + 0.018 * np.sin(3 * angle + 0.4) + 0.012 * np.sin(5 * angle + 1.3) + 0.008 * np.sin(9 * angle)
    )


def draw() -> Image.Image:
    big = SIZE * SCALE
    y, x = np.mgrid[0:big, 0:big] / big - 0.5
    distance, angle = np.hypot(x, y), np.arctan2(y, x)
    depth = 1 - distance / _radius(angle)  # 0 at the edge, 1 in the middle
    cells = (
        np.asarray(
            Image.fromarray((np.random.default_rng(7).random((96, 96)) * 255).astype(np.uint8)).resize(
                (big, big), Image.BICUBIC
            ),
            dtype=float,
        )
        / 255
    )
    light = 0.86 - 0.35 * distance**2  # a brightfield well, darker at its rim
    body = 0.20 + 0.08 * cells + 0.45 * np.clip(depth - 0.5, 0, 1)  # dark rim, paler necrotic core
    gray = np.where(depth > 0, body, light)
    image = Image.fromarray((np.clip(gray, 0, 1) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(5))
    tile = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    corners = Image.new("L", (big, big), 0)
    ImageDraw.Draw(corners).rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 6, fill=255)
    tile.paste(image.convert("RGBA"), (0, 0), corners)
    ring = np.abs(distance - _radius(angle)) < 0.013
    outline = Image.new("RGBA", (big, big), (255, 196, 0, 255))
    tile.paste(outline, (0, 0), Image.fromarray((ring * 255).astype(np.uint8)))
    return tile.resize((SIZE, SIZE), Image.LANCZOS)


if __name__ == "__main__":
    draw().save(Path(__file__).resolve().parents[2] / "resources" / "spheroseg.png", optimize=True)
