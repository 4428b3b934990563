"""The image fetcher: disk cache by the server's headers, retries, bounded concurrency, cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cluster import Outlines, Segmentation, Spheroid, encode_outlines
from workbench.fetch import DisplayRange, FetchedImage, FetchError, ImageFetcher, LinkExpiredError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Origin:
    """A small image server: immutable, bounded and revalidated images, failures on demand, a counter."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.failures_left = 0
        self.delay = 0.0
        self.app = Starlette(
            routes=[Route("/img/{name}", self.image), Route("/outlines/{name}", self.outlines)]
        )

    async def outlines(self, request: Request) -> Response:
        """A version's outlines as the server sends them (immutable), or bytes that are none."""
        name = request.path_params["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        square = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]])
        segmentation = Segmentation("w.png", 64, 48, [Spheroid(square, id=3), Spheroid(square + 20, id=5)])
        body = encode_outlines(Outlines.of(segmentation)) if name != "garbled" else b"SSOL garbled"
        headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": f'"{name}"'}
        return Response(body, media_type="application/vnd.spheroseg.outlines", headers=headers)

    async def image(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits[name] = self.hits.get(name, 0) + 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if name == "flaky" and self.failures_left > 0:
            self.failures_left -= 1
            return Response(status_code=503)
        if name == "expired":
            return Response("expired", status_code=403)
        if name == "missing":
            return Response(status_code=404)
        headers = {
            "ETag": f'"{name}"',
            "X-Display-Range": "low=100; high=4100; percentiles=0.5,99.5; dtype=uint16",
        }
        if name == "revalidated":
            headers["Cache-Control"] = "no-cache"
            if request.headers.get("if-none-match") == f'"{name}"':
                return Response(status_code=304, headers=headers)
        else:
            headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return Response(f"pixels of {name}".encode(), media_type="image/webp", headers=headers)


def _fetcher(origin: Origin, cache: Path | None, **options: object) -> ImageFetcher:
    return ImageFetcher(cache, transport=httpx.ASGITransport(app=origin.app), **options)  # type: ignore[arg-type]


async def test_immutable_images_come_from_the_disk_cache_even_after_a_restart(tmp_path: Path) -> None:
    origin = Origin()
    async with _fetcher(origin, tmp_path) as fetcher:
        first = await fetcher.fetch("http://edge/img/a")
        second = await fetcher.fetch("http://edge/img/a")
    assert not first.from_cache and second.from_cache and second.content == b"pixels of a"
    async with _fetcher(origin, tmp_path) as restarted:
        third = await restarted.fetch("http://edge/img/a")
    assert third.from_cache and origin.hits["a"] == 1
    assert third.display_range == DisplayRange(100.0, 4100.0, "uint16")
    assert third.display_range.to_original(255) == 4100.0


async def test_no_cache_responses_are_revalidated_with_their_etag(tmp_path: Path) -> None:
    origin = Origin()
    async with _fetcher(origin, tmp_path) as fetcher:
        await fetcher.fetch("http://edge/img/revalidated")
        again = await fetcher.fetch("http://edge/img/revalidated")
    assert again.content == b"pixels of revalidated" and origin.hits["revalidated"] == 2


async def test_server_errors_are_retried_with_backoff_and_refusals_are_not(tmp_path: Path) -> None:
    origin = Origin()
    origin.failures_left = 2
    async with _fetcher(origin, None, retries=3, backoff=0.01) as fetcher:
        flaky = await fetcher.fetch("http://edge/img/flaky")
        assert flaky.content == b"pixels of flaky" and origin.hits["flaky"] == 3
        with pytest.raises(LinkExpiredError):
            await fetcher.fetch("http://edge/img/expired")
        with pytest.raises(FetchError) as missing:
            await fetcher.fetch("http://edge/img/missing")
    assert missing.value.status == 404 and origin.hits["expired"] == 1 and origin.hits["missing"] == 1
    async with ImageFetcher(None, retries=1, backoff=0.01, timeout=2) as offline:
        with pytest.raises(FetchError, match="could not reach"):
            await offline.fetch("http://127.0.0.1:9/img/a")


async def test_fetch_many_is_bounded_and_returns_failures_in_place() -> None:
    origin = Origin()
    origin.delay = 0.02
    seen: list[str] = []
    urls = [f"http://edge/img/i{n}" for n in range(12)] + ["http://edge/img/missing"]
    async with _fetcher(origin, None, max_concurrency=3) as fetcher:
        results = await fetcher.fetch_many(urls, on_result=lambda url, _: seen.append(url))
    assert origin.most_in_flight == 3
    assert [isinstance(r, FetchedImage) for r in results] == [True] * 12 + [False]
    assert sorted(seen) == sorted(urls)


async def test_cancelling_a_gallery_load_stops_its_requests() -> None:
    origin = Origin()
    origin.delay = 0.2
    urls = [f"http://edge/img/c{n}" for n in range(20)]
    async with _fetcher(origin, None, max_concurrency=2) as fetcher:
        task = asyncio.get_running_loop().create_task(fetcher.fetch_many(urls))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
    assert sum(origin.hits.values()) == 2  # only the two already running ever started


async def test_outlines_are_decoded_into_arrays_and_kept_in_the_disk_cache(tmp_path: Path) -> None:
    origin = Origin()
    async with _fetcher(origin, tmp_path) as fetcher:
        first = await fetcher.fetch_outlines("http://edge/outlines/v1")
        again = await fetcher.fetch_outlines("http://edge/outlines/v1")
        with pytest.raises(FetchError, match="outlines could not be read"):
            await fetcher.fetch_outlines("http://edge/outlines/garbled")
    assert first.ids.tolist() == again.ids.tolist() == [3, 5]
    assert first.rings(1)[0].tolist() == [[30.0, 30.0], [50.0, 30.0], [50.0, 50.0], [30.0, 50.0]]
    assert origin.hits["v1"] == 1  # immutable: the second came from disk
