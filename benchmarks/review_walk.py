"""Review walk: the next image opened with the walk's prefetch and without (goal < 150 ms), and a project's
plot data from every image's outlines file against the server's spheroid table.

Part ``next_image``: on a real offline server (started here, in a temporary folder), a plate of images with
1,000 outlines each; the review walk moves to the next image and it is opened as the canvas opens it (its
URLs asked for, the preview fetched and decoded, the outlines fetched and decoded into editable outlines),
half the images without the walk's prefetch and half with it, each side with an empty client cache, on
images nobody opened before (the server renders a preview and encodes an outlines file on their first
request, as for a plate just segmented: the prefetch takes that off the reviewer's wait; a preview already
rendered, ~10 ms of loopback, it hardly shortens). Part ``plot_data`` (same server): a project's plot values
read from every image's ``geometryUrl`` (``workbench.plots``), against paging the server's spheroid table
(``Project.spheroids``).

Prints a table and writes benchmarks/results/review_walk.json; the load average is recorded, since the
machine may be shared.

Usage: python benchmarks/review_walk.py
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

from cluster import decode_outlines  # noqa: E402
from workbench.editing import ImageOutlines  # noqa: E402
from workbench.fetch import ImageFetcher  # noqa: E402
from workbench.plots import read_project_spheroids  # noqa: E402
from workbench.review_walk import ReviewWalk  # noqa: E402
from workbench.uploads import import_files  # noqa: E402
from workbench.workspace import Workspace, open_offline  # noqa: E402

GOAL_NEXT_IMAGE_MS = 150.0


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


SAVE = """mutation($i: Int!, $s: [SpheroidInput!]!) { saveSegmentation(imageId: $i, baseVersion: 0,
  spheroids: $s) { __typename } }"""
TABLE = """query($p: Int!, $after: String) { project(id: $p) { spheroids(first: 500, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { spheroidId imageId imageName touchesBorder
  metrics { areaPx equivalentDiameterPx circularity } } } } } }"""


def _plate_png(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.normal(180, 12, (size, size)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _discs(count: int, size: int) -> list[dict[str, object]]:
    """``count`` discs of 32 vertices on a grid that fits a ``size``-pixel image."""
    angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    columns = int(np.ceil(np.sqrt(count)))
    step = (size - 20) / columns
    return [
        {
            "exterior": np.column_stack(
                (10 + step * (0.5 + k % columns) + 0.4 * step * np.cos(angles),
                 10 + step * (0.5 + k // columns) + 0.4 * step * np.sin(angles))
            ).tolist()
        }
        for k in range(count)
    ]  # fmt: skip


async def _graphql(workspace: Workspace, query: str, **variables: object) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=workspace.url, timeout=300) as http:
        answer = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {workspace.user.token}"},
        )
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def _open(
    workspace: Workspace, image_id: int, width: int, steps: dict[str, list[float]] | None = None
) -> ImageOutlines:
    """What the canvas does to open an image: its URLs, the preview decoded, the outlines decoded (each
    step's time added to ``steps``)."""
    times = [time.perf_counter()]
    image = (await workspace.client.call("WalkImage", id=image_id, previewWidth=width))["image"]
    times.append(time.perf_counter())
    preview, geometry = await asyncio.gather(
        workspace.fetcher.fetch(image["previewUrl"]),
        workspace.fetcher.fetch(image["segmentation"]["geometryUrl"]),
    )
    times.append(time.perf_counter())
    await asyncio.to_thread(lambda: Image.open(io.BytesIO(preview.content)).load())
    times.append(time.perf_counter())
    outlines = ImageOutlines.of(await asyncio.to_thread(decode_outlines, geometry.content))
    times.append(time.perf_counter())
    names = ("query", "fetch", "preview_decode", "outlines_decode")
    for name, start, end in zip(names, times[:-1], times[1:], strict=True):
        if steps is not None:
            steps.setdefault(name, []).append((end - start) * 1000)
    return outlines


async def _next_image(folder: Path, images: int, spheroids: int, size: int) -> dict[str, Any]:
    settings = {"SPHEROSEG_MAX_REQUEST_BYTES": str(64 * 1024**2), "SPHEROSEG_CLUSTER_WORKERS": "1"}
    environment = {**os.environ, **settings}  # 1,000 outlines in one save: more than 1 MiB of JSON
    workspace = await open_offline(folder / "data", cache_dir=folder / "cache-warm", environment=environment)
    try:
        created = await workspace.client.call("CreateProject", name="Benchmark plate")
        project_id = int(created["createProject"]["project"]["id"])
        paths = []
        for index in range(images):
            paths.append(folder / f"well-{index:03d}.png")
            paths[-1].write_bytes(_plate_png(index, size))
        ids = [
            int(result.image_id or 0) for result in await import_files(workspace.client, project_id, paths)
        ]
        for image_id in ids:
            await _graphql(workspace, SAVE, i=image_id, s=_discs(spheroids, size))
        half = images // 2
        timings: dict[str, list[float]] = {"without_prefetch": [], "with_prefetch": [], "move": []}
        warm_fetcher = workspace.fetcher
        steps: dict[str, list[float]] = {}  # where the time of an open with prefetch goes
        for label, prefetch, first in (("without_prefetch", False, 0), ("with_prefetch", True, half)):
            workspace.fetcher = ImageFetcher(folder / f"cache-{label}")  # nothing cached on this side yet
            walk = ReviewWalk(workspace, project_id, prefetch=prefetch)
            await walk.start(ids[first])
            walk.looking_at(ids[first], 1)
            await _open(workspace, ids[first], walk.preview_width)
            for _ in range(half - 1):
                await walk.prefetching()  # the reviewer looks at the image for a while meanwhile
                started = time.perf_counter()
                tile = await walk.next()
                timings["move"].append(_ms(started))
                assert tile is not None
                await _open(workspace, tile.image_id, walk.preview_width, steps if prefetch else None)
                timings[label].append(_ms(started))
                walk.looking_at(tile.image_id, 1)  # the page tells the walk the image is shown
            walk.close()
            await workspace.fetcher.aclose()
        workspace.fetcher = warm_fetcher
        plots = await _plot_data(workspace, project_id, folder)
    finally:
        await workspace.close()
    return {
        "images": images,
        "spheroids_per_image": spheroids,
        "image_size_px": size,
        "next_without_prefetch_ms_median": statistics.median(timings["without_prefetch"]),
        "next_with_prefetch_ms_median": statistics.median(timings["with_prefetch"]),
        "next_with_prefetch_ms_max": max(timings["with_prefetch"]),
        "walk_move_ms_median": statistics.median(timings["move"]),
        **{f"open_{name}_ms_median": statistics.median(values) for name, values in steps.items()},
        "next_repeats": len(timings["with_prefetch"]),
        **plots,
    }


async def _plot_data(workspace: Workspace, project_id: int, folder: Path) -> dict[str, Any]:
    """The project's plot values from every image's geometryUrl (as the plots read them, with an empty
    client cache), against paging the server's spheroid table."""
    started = time.perf_counter()
    async with ImageFetcher(folder / "cache-geometry") as fetcher:
        plotted = await read_project_spheroids(workspace.client, fetcher, project_id)
    geometry_ms = _ms(started)
    started = time.perf_counter()
    rows, after = 0, None
    while True:
        table = (await _graphql(workspace, TABLE, p=project_id, after=after))["project"]["spheroids"]
        rows += len(table["edges"])
        if not table["pageInfo"]["hasNextPage"]:
            break
        after = table["pageInfo"]["endCursor"]
    table_ms = _ms(started)
    assert rows == len(plotted.points)
    return {"plot_spheroids": rows, "plot_table_ms": table_ms, "plot_geometry_urls_ms": geometry_ms}


def next_image(images: int = 12, spheroids: int = 1000, size: int = 1024) -> dict[str, Any]:
    """The part ``next_image`` (with ``plot_data`` on the same server), in a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return asyncio.run(_next_image(Path(folder), images, spheroids, size))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    result = next_image()
    print(f"next image of {result['images']} ({result['spheroids_per_image']:,} outlines each, median)")
    for label, key in [
        ("without prefetch", "next_without_prefetch_ms_median"),
        ("with prefetch", "next_with_prefetch_ms_median"),
        ("with prefetch (worst)", "next_with_prefetch_ms_max"),
        ("of which the walk's move", "walk_move_ms_median"),
        ("the image's URLs (query)", "open_query_ms_median"),
        ("preview + outlines fetched", "open_fetch_ms_median"),
        ("preview decoded", "open_preview_decode_ms_median"),
        ("outlines decoded + editable", "open_outlines_decode_ms_median"),
    ]:
        print(f"{label:>30} {result[key]:>9.1f} ms")
    verdict = "met" if float(result["next_with_prefetch_ms_median"]) < GOAL_NEXT_IMAGE_MS else "MISSED"
    print(f"goal: next image < {GOAL_NEXT_IMAGE_MS:g} ms: {verdict}")
    print(f"plot data for {result['plot_spheroids']:,} spheroids")
    print(f"{'every geometryUrl (the plots)':>30} {result['plot_geometry_urls_ms']:>9.1f} ms")
    print(f"{'spheroid table, 500 a page':>30} {result['plot_table_ms']:>9.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    report = {**result, "goal_next_image_ms": GOAL_NEXT_IMAGE_MS, "load_average_1min": os.getloadavg()[0]}
    (RESULTS / "review_walk.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
