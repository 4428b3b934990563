"""A project to review, on a real server: several images, each with outlines of different sizes and
shapes saved through the server's own ``saveSegmentation`` (so the server measures them), one image left
without outlines."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.server.processes import disc_png
from workbench.uploads import import_files
from workbench.workspace import Workspace

SAVE = """mutation($i: Int!, $base: Int!, $s: [SpheroidInput!]!) {
  saveSegmentation(imageId: $i, baseVersion: $base, spheroids: $s) {
    __typename ... on SegmentationSaveSuccess { segmentation { version } } } }"""
PIXEL_SIZE = "mutation($i: Int!, $p: Float!) { updateImage(id: $i, pixelSizeUm: $p) { __typename } }"
REVIEW = """query($i: Int!) { image(id: $i) { reviewStatus reviewComment
  reviewHistory(first: 5) { status comment version } segmentation { version } } }"""


@dataclass
class Project:
    id: int
    image_ids: list[int]
    """In name order (well-00.png, well-01.png, …); the last has no outlines."""
    names: list[str]


def environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {**kept, "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024", "SPHEROSEG_CLUSTER_WORKERS": "1"}


def polygon(cx: float, cy: float, radius: float, sides: int = 24, squash: float = 1.0) -> list[list[float]]:
    """A regular polygon (``squash`` < 1 flattens it into an ellipse-like one)."""
    return [
        [
            cx + radius * math.cos(2 * math.pi * k / sides),
            cy + squash * radius * math.sin(2 * math.pi * k / sides),
        ]
        for k in range(sides)
    ]


def spheroids_of(index: int) -> list[dict[str, Any]]:
    """Image ``index``'s outlines: a big round one, a flat one, and a square touching the border."""
    return [
        {"exterior": polygon(60, 60, 30 + 2 * index)},
        {"exterior": polygon(140, 60, 20, squash=0.5)},
        {"exterior": [[0.0, 150.0], [30.0 + index, 150.0], [30.0 + index, 180.0], [0.0, 180.0]]},
    ]


async def graphql(workspace: Workspace, query: str, **variables: Any) -> dict[str, Any]:
    """A query the workbench has no operation for (the test's own view of the server)."""
    async with httpx.AsyncClient(base_url=workspace.url, timeout=30) as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {workspace.user.token}"},
        )
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def save(workspace: Workspace, image_id: int, base: int, spheroids: list[dict[str, Any]]) -> int:
    data = await graphql(workspace, SAVE, i=image_id, base=base, s=spheroids)
    assert data["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess", data
    return int(data["saveSegmentation"]["segmentation"]["version"])


async def reviewed_project(
    workspace: Workspace, folder: Path, count: int = 4, *, pixel_size: float | None = None
) -> Project:
    """``count`` images with outlines and one without, in a new project."""
    created = await workspace.client.call("CreateProject", name="Plate 7, drug screen")
    project_id = int(created["createProject"]["project"]["id"])
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count + 1):
        paths.append(folder / f"well-{index:02d}.png")
        paths[-1].write_bytes(disc_png(seed=index, size=200))
    imported = await import_files(workspace.client, project_id, paths)
    by_path = {result.path: result.image_id for result in imported}
    image_ids = [int(by_path[path] or 0) for path in paths]
    for index, image_id in enumerate(image_ids[:-1]):
        await save(workspace, image_id, 0, spheroids_of(index))
        if pixel_size is not None:
            await graphql(workspace, PIXEL_SIZE, i=image_id, p=pixel_size)
    return Project(project_id, image_ids, [path.name for path in paths])
