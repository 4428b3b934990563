"""Image delivery: rendition sizes, thumbnail render time (Pillow against pyvips), a real edge's savings.

1. Bytes of the thumbnail (256 px WebP), a preview (1024 px WebP) and the display master (PNG) against the
   original, for a 2048² 8-bit PNG and a 2048² 16-bit TIFF (a synthetic spheroid on a noisy background).
2. Milliseconds to render the 256 px WebP thumbnail of the 2048² 16-bit TIFF (decode with
   ``cluster.imaging``, stretch, resize, encode), median of repeated runs, with the server's Pillow renderer
   and with the same steps in pyvips (when ``pyvips`` imports; otherwise that is recorded). The faster one
   has to be clearly faster (1.5x) to be worth a second native imaging library in the server.
3. A gallery of thumbnails loaded three times, straight from the origin and through nginx as a caching
   edge (started here on 127.0.0.1, as the tests do): requests and bytes reaching the origin.
4. Latency p50 through the edge: a hit, a miss whose thumbnail was made in the background after upload,
   and a miss that renders a preview on demand.
5. Peak RSS of the origin while five concurrent Range requests read one large original (512 MiB by
   default; ``--original-mib 2048`` for the 2 GiB of the largest upload), streamed as the origin does and
   read whole as it did before (the baseline), in the same run (benchmarks/cdn_streaming.py).

The origin is the real app (SQLite, local blobs) in uvicorn on 127.0.0.1. Shared machines are noisy:
compare ratios measured in the same run; the load average is recorded. Prints a table and writes
benchmarks/results/cdn.json. Usage: python benchmarks/cdn.py [--images 24] [--runs 15] [--original-mib 512]
[--range-mib 64].
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.cdn_streaming import streaming_ranges  # noqa: E402
from cluster.imaging import read_image  # noqa: E402
from server.app import create_app  # noqa: E402
from server.composition import Services  # noqa: E402
from server.db.engine import create_engine  # noqa: E402
from server.db.migrate import upgrade  # noqa: E402
from server.delivery.renditions import render  # noqa: E402
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec  # noqa: E402
from server.settings import Settings  # noqa: E402
from spheroseg_testing import find_nginx, free_port, serve, start_nginx  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cdn.json"
LIMIT = 200_000_000
THUMB = RenditionSpec(256, 256, Fit.SCALE_DOWN, RenditionFormat.WEBP, 70)
PREVIEW = RenditionSpec(1024, 0, Fit.SCALE_DOWN, RenditionFormat.WEBP, 80)
MASTER = RenditionSpec(4096, 4096, Fit.SCALE_DOWN, RenditionFormat.PNG, 90)


def spheroid(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy, radius = size * rng.uniform(0.4, 0.6), size * rng.uniform(0.4, 0.6), size * rng.uniform(0.12, 0.2)
    body = 18_000 / (1 + np.exp((np.hypot(xx - cx, yy - cy) - radius) / (size / 200)))
    texture = rng.normal(0, 600, (size, size)) * (body > 1000)
    return (3_000 + body + texture + rng.normal(0, 250, (size, size))).clip(0, 65_535).astype(np.uint16)


def tiff16(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels)
    return buffer.getvalue()


def png8(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((pixels // 90).clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def rendition_sizes() -> list[dict[str, Any]]:
    pixels = spheroid(2048, 1)
    rows = []
    for label, original in (("8-bit PNG 2048²", png8(pixels)), ("16-bit TIFF 2048²", tiff16(pixels))):
        for name, spec in (
            ("thumbnail 256 WebP", THUMB),
            ("preview 1024 WebP", PREVIEW),
            ("master PNG", MASTER),
        ):
            made = render(original, spec, LIMIT)
            rows.append(
                {
                    "original": label,
                    "rendition": name,
                    "original_bytes": len(original),
                    "rendition_bytes": len(made.data),
                    "percent_of_original": round(100 * len(made.data) / len(original), 3),
                }
            )
    return rows


def pyvips_thumbnail(data: bytes) -> bytes:
    """The same steps as the server's renderer, in pyvips: decode, stretch from a sample, resize, encode."""
    import pyvips

    pixels = np.ascontiguousarray(read_image(data, max_pixels=LIMIT).pixels)
    step = max(1, int(np.sqrt(pixels.size // (256 * 1024))))
    low, high = np.percentile(pixels[::step, ::step], (0.5, 99.5))
    image = pyvips.Image.new_from_memory(pixels.data, pixels.shape[1], pixels.shape[0], 1, "ushort")
    small = image.thumbnail_image(256)
    display = ((small - low) * (255.0 / max(high - low, 1.0))).cast("uchar")
    out: bytes = display.webpsave_buffer(Q=70)
    return out


def median_ms(function: Any, runs: int) -> float:
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def thumbnail_timing(runs: int) -> dict[str, Any]:
    data = tiff16(spheroid(2048, 2))
    result: dict[str, Any] = {"pillow_ms": median_ms(lambda: render(data, THUMB, LIMIT), runs)}
    try:
        import pyvips

        result["pyvips_ms"] = median_ms(lambda: pyvips_thumbnail(data), runs)
        result["pyvips_version"] = f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"
    except (ImportError, OSError) as error:
        result["pyvips_ms"] = None
        result["pyvips_unavailable"] = f"{type(error).__name__}: {error}"
    pyvips_ms = result["pyvips_ms"]
    if pyvips_ms is not None and pyvips_ms * 1.5 < result["pillow_ms"]:
        result["decision"] = "pyvips is more than 1.5x faster: worth a second imaging library"
    else:
        result["decision"] = "Pillow: meets the goal, and pyvips is not 1.5x faster (or not installable)"
    return result


class ByteCounter:
    """Counts the requests and response body bytes of ``/img/`` paths reaching the origin."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0
        self.bytes = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/img/"):
            await self.app(scope, receive, send)
            return
        self.requests += 1

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.body":
                self.bytes += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting)


async def _gallery_pass(client: httpx.AsyncClient, urls: list[str]) -> list[tuple[float, str]]:
    timings = []
    for url in urls:
        start = time.perf_counter()
        response = await client.get(url)
        response.raise_for_status()
        timings.append(((time.perf_counter() - start) * 1000, response.headers.get("x-cache-status", "")))
    return timings


async def _setup(root: Path, count: int, public_url: str) -> tuple[Services, list[bytes]]:
    database = root / "db.sqlite3"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await upgrade(engine)
    await engine.dispose()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        storage_url=str(root / "blobs"),
        secret_key="bench",
        password_time_cost=1,
        password_memory_kib=1024,
        public_url=public_url,
        environment="production",
    )
    return Services.create(settings), [tiff16(spheroid(1024, 100 + i)) for i in range(count)]


async def _login(services: Services, client: httpx.AsyncClient) -> tuple[str, int]:
    from server.db import users

    async with services.db.begin() as db:
        await users.create_user(db, "bench", services.passwords.hash("bench password"), "admin")
    query = (
        'mutation { login(username: "bench", password: "bench password") { ... on LoginSuccess { token } } }'
    )
    token = (await client.post("/graphql", json={"query": query})).json()["data"]["login"]["token"]
    create = 'mutation { createProject(input: {name: "bench"}) { ... on ProjectSuccess { project { id } } } }'
    headers = {"Authorization": f"Bearer {token}"}
    body = (await client.post("/graphql", json={"query": create}, headers=headers)).json()
    return token, body["data"]["createProject"]["project"]["id"]


GALLERY = """query($p: Int!) { project(id: $p) { images(first: 500) { edges { node {
  thumbnailUrl previewUrl(width: 1024) } } } } }"""


async def gallery(count: int) -> dict[str, Any]:
    if find_nginx() is None:
        return {"skipped": "nginx is not installed (apt-get install nginx)"}
    origin_port, edge_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="spheroseg-cdn-bench-") as folder:
        root = Path(folder)
        services, originals = await _setup(root, count, f"http://127.0.0.1:{edge_port}")
        counter = ByteCounter(create_app(services=services))
        try:
            async with serve(counter, origin_port) as origin_url:
                edge = start_nginx(origin_port, edge_port, root / "edge")
                try:
                    return await _measure(services, counter, origin_url, edge.url, originals)
                finally:
                    edge.stop()
        finally:
            await services.close()


async def _measure(
    services: Services, counter: ByteCounter, origin_url: str, edge_url: str, originals: list[bytes]
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=origin_url, timeout=120) as client:
        token, project = await _login(services, client)
        headers = {"Authorization": f"Bearer {token}"}
        files = [("files", (f"well{i:03d}.tif", data, "image/tiff")) for i, data in enumerate(originals)]
        (
            await client.post(f"/api/projects/{project}/images", files=files, headers=headers)
        ).raise_for_status()
        await services.delivery.drain()
        body = (
            await client.post(
                "/graphql", json={"query": GALLERY, "variables": {"p": project}}, headers=headers
            )
        ).json()
    nodes = [e["node"] for e in body["data"]["project"]["images"]["edges"]]
    thumbs = [n["thumbnailUrl"] for n in nodes]
    direct = [u.replace(edge_url, origin_url) for u in thumbs]
    result: dict[str, Any] = {"images": len(nodes), "original_bytes_total": sum(map(len, originals))}
    async with httpx.AsyncClient(timeout=120) as viewer:
        counter.requests = counter.bytes = 0
        for _ in range(3):
            await _gallery_pass(viewer, direct)
        result["without_edge"] = {"origin_requests": counter.requests, "origin_bytes": counter.bytes}
        counter.requests = counter.bytes = 0
        passes = [await _gallery_pass(viewer, thumbs) for _ in range(3)]
        warm = {"origin_requests": counter.requests, "origin_bytes": counter.bytes}
        result["with_edge"] = warm
        previews = await _gallery_pass(viewer, [n["previewUrl"] for n in nodes])
    cold = result["without_edge"]
    result["origin_request_reduction_percent_three_passes"] = round(
        100 * (1 - warm["origin_requests"] / cold["origin_requests"]), 1
    )
    result["origin_byte_reduction_percent_three_passes"] = round(
        100 * (1 - warm["origin_bytes"] / cold["origin_bytes"]), 1
    )
    warm_hits = [t for p in passes[1:] for t in p]
    result["origin_requests_in_warm_passes"] = sum(1 for _, status in warm_hits if status != "HIT")
    result["origin_request_reduction_percent_warm_passes"] = round(
        100 * (1 - result["origin_requests_in_warm_passes"] / (2 * len(nodes))), 1
    )
    result["latency_p50_ms"] = {
        "edge_hit": round(statistics.median(t for t, _ in warm_hits), 2),
        "edge_miss_thumbnail_made_after_upload": round(statistics.median(t for t, _ in passes[0]), 2),
        "edge_miss_preview_rendered_on_demand": round(statistics.median(t for t, _ in previews), 2),
    }
    return result


async def large_original(size_mib: int, range_mib: int) -> dict[str, Any]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="spheroseg-cdn-bench-") as folder:
        services, _ = await _setup(Path(folder), 0, f"http://127.0.0.1:{port}")
        try:
            async with (
                serve(create_app(services=services), port) as origin_url,
                httpx.AsyncClient(base_url=origin_url, timeout=600) as client,
            ):
                token, project = await _login(services, client)
                return await streaming_ranges(services, client, token, project, size_mib, range_mib)
        finally:
            await services.close()


def print_streaming(result: dict[str, Any]) -> None:
    print(
        f"\n{result['concurrent_ranges']} concurrent ranges of {result['range_mib']} MiB of a "
        f"{result['original_mib']} MiB original: origin peak RSS increase"
    )
    for label, key in (("streaming", "streaming"), ("whole reads (before)", "whole_reads_baseline")):
        print(f"  {label:<22} {result[key]['peak_rss_increase_mib']:>10} MiB")
    print(f"  ratio streaming / whole reads: {result['peak_ratio_streaming_to_baseline']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--original-mib", type=int, default=512, help="size of the large original")
    parser.add_argument("--range-mib", type=int, default=64, help="size of each of the five ranges")
    args = parser.parse_args()
    sizes = rendition_sizes()
    timing = thumbnail_timing(args.runs)
    edge = asyncio.run(gallery(args.images))
    streaming = asyncio.run(large_original(args.original_mib, args.range_mib))
    thumb16 = next(
        r for r in sizes if r["original"].startswith("16") and r["rendition"].startswith("thumbnail")
    )
    goals = {
        "thumbnail_under_2_percent_of_16_bit_original": thumb16["percent_of_original"] < 2.0,
        "thumbnail_render_under_50_ms": timing["pillow_ms"] < 50.0,
        "origin_traffic_at_least_95_percent_less_with_warm_edge": edge.get(
            "origin_request_reduction_percent_warm_passes", 0
        )
        >= 95.0,
        "range_requests_peak_rss_under_a_tenth_of_whole_reads": streaming["peak_ratio_streaming_to_baseline"]
        < 0.1,
    }
    report = {
        "benchmark": "cdn",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "renditions": sizes,
        "thumbnail_256_webp_from_2048_16bit_tiff": timing,
        "gallery_three_passes": edge,
        "range_requests_of_a_large_original": streaming,
        "goals_met": goals,
    }
    print(f"{'original':<20} {'rendition':<22} {'bytes':>10} {'% of original':>14}")
    for row in sizes:
        print(
            f"{row['original']:<20} {row['rendition']:<22} {row['rendition_bytes']:>10} "
            f"{row['percent_of_original']:>14}"
        )
    print(
        f"\n256 px WebP thumbnail of a 2048² 16-bit TIFF: Pillow {timing['pillow_ms']} ms, "
        f"pyvips {timing['pyvips_ms']} ms"
    )
    print(f"  -> {timing['decision']}")
    if "skipped" in edge:
        print(f"\ngallery: {edge['skipped']}")
    else:
        print(f"\ngallery of {edge['images']} thumbnails, three passes: origin requests / bytes")
        print(
            f"  without edge: {edge['without_edge']['origin_requests']:>6} / "
            f"{edge['without_edge']['origin_bytes']}"
        )
        print(
            f"  with edge:    {edge['with_edge']['origin_requests']:>6} / {edge['with_edge']['origin_bytes']}"
        )
        print(
            f"  reduction: {edge['origin_request_reduction_percent_three_passes']}% over three passes, "
            f"{edge['origin_request_reduction_percent_warm_passes']}% in the warm passes"
        )
        for name, value in edge["latency_p50_ms"].items():
            print(f"  p50 {name}: {value} ms")
    print_streaming(streaming)
    print(f"\ngoals met: {goals}\nload average: {os.getloadavg()}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
