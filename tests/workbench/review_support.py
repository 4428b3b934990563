"""An image with outlines on a real server, for the review session's and the canvas's tests: a 16-bit
image (so the preview's grey levels map back to other values) whose spheroids are saved through the API."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from workbench.api import LabClient
from workbench.uploads import import_files

WIDTH, HEIGHT = 480, 360


def disc(cx: float, cy: float, radius: float, vertices: int = 48) -> list[list[float]]:
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    return np.column_stack((cx + radius * np.cos(angles), cy + radius * np.sin(angles))).round(2).tolist()


SHAPES: list[dict[str, Any]] = [
    {"exterior": disc(100, 120, 60), "holes": [disc(100, 120, 20, 24)]},  # a spheroid with a hole
    {"exterior": disc(260, 120, 50), "holes": []},
    {
        "exterior": disc(350, 120, 30),
        "holes": [],
    },  # 10 px away: merging them is refused
    {"exterior": disc(300, 270, 45), "holes": []},
    {"exterior": disc(385, 270, 42), "holes": []},  # touches the one before: they merge
]


def plate_png(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A 16-bit brightfield-like image: dark discs where :data:`SHAPES` are, on a lighter ramp."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = 20_000 + 8_000 * xx / width
    for shape in SHAPES:
        ring = np.asarray(shape["exterior"])
        centre, radius = ring.mean(axis=0), np.abs(ring[:, 0] - ring[:, 0].mean()).max()
        image[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < radius**2] -= 12_000
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


async def segmented_image(
    client: LabClient, folder: Path, shapes: Sequence[dict[str, Any]] = SHAPES
) -> tuple[int, int]:
    """A project with one image whose first segmentation version holds ``shapes``: (project, image)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plate.png").write_bytes(plate_png())
    project_id = (await client.call("CreateProject", name="Review"))["createProject"]["project"]["id"]
    (imported,) = await import_files(client, project_id, [folder / "plate.png"])
    assert imported.image_id is not None
    answer = await client.call(
        "EditSegmentation",
        imageId=imported.image_id,
        baseVersion=0,
        changes={"upsert": list(shapes), "delete": []},
    )
    assert answer["editSegmentation"]["__typename"] == "SegmentationEditSuccess", answer
    return project_id, imported.image_id


async def stored(client: LabClient, image_id: int) -> tuple[int, dict[int, dict[str, Any]]]:
    """The image's current version and its spheroids by id, as the server keeps them."""
    segmentation = (await client.call("ImageSpheroids", imageId=image_id))["image"]["segmentation"]
    if segmentation is None:
        return 0, {}
    return segmentation["version"], {s["id"]: s for s in segmentation["spheroids"]}
