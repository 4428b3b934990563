"""Part 5 of benchmarks/cdn.py: the origin's peak memory while five Range requests read one large original.

Anyone holding a signed ``/img`` URL may ask for an original (uploads may be up to 2 GiB), several ranges at
a time, as a video-like viewer or a download manager does. The origin (the real app in uvicorn on
127.0.0.1, local blob store) serves five concurrent ranges at different offsets of one original twice:

- streaming: the server as it is, reading each range from the store a chunk at a time;
- whole reads (the baseline): the same app with a store whose reads load the whole blob and slice it, as
  the origin did before streaming (``get_bytes`` per request).

Peak RSS is the kernel's high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` before each
run), minus the RSS before the run. The original is a sparse file (reads return zeros at page-cache
speed, and it takes no disk space); the client discards what it receives as it arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from server.composition import Services
from server.db import images
from server.db.models import Image
from server.storage import BlobStore, image_key

__all__ = ["CONCURRENT", "streaming_ranges"]

CONCURRENT = 5
MIB = 1024**2


class WholeReads:
    """A store whose ranged reads load the whole blob first: the origin's reads before streaming."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        data = await self.store.get_bytes(key)
        return _once(data[start : end + 1])


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux 4.0+)


async def _large_original(services: Services, project: int, size: int) -> tuple[int, Path]:
    content_hash = hashlib.sha256(f"sparse {size}".encode()).hexdigest()
    # the benchmark's store is a local folder, where a worker's reference is the blob's file: written in
    # place, sparse, since copying it in would write every byte
    path = Path(await services.store.worker_reference(image_key(content_hash), 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    row = Image(
        project_id=project,
        name="large.tif",
        content_hash=content_hash,
        format="tiff",
        width=32_768,
        height=16_384,
        bit_depth=8,
        pixel_size_um=None,
        byte_size=size,
        segmentation_status="none",
        review_status="unreviewed",
        current_version=0,
    )
    async with services.db.begin() as db:
        return (await images.add_image(db, row)).id, path


async def _fetch_ranges(client: httpx.AsyncClient, url: str, size: int, range_bytes: int) -> int:
    async def one(offset: int) -> int:
        received = 0
        headers = {"Range": f"bytes={offset}-{offset + range_bytes - 1}"}
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 206, response.status_code
            async for chunk in response.aiter_raw():
                received += len(chunk)
        return received

    offsets = [i * (size - range_bytes) // (CONCURRENT - 1) for i in range(CONCURRENT)]
    return sum(await asyncio.gather(*(one(offset) for offset in offsets)))


async def _peak_mib(client: httpx.AsyncClient, url: str, size: int, range_bytes: int) -> dict[str, Any]:
    before = _status_kib("VmRSS")
    _reset_peak()
    received = await _fetch_ranges(client, url, size, range_bytes)
    assert received == CONCURRENT * range_bytes, received
    peak = _status_kib("VmHWM")
    return {
        "rss_before_mib": round(before / 1024, 1),
        "peak_rss_increase_mib": round((peak - before) / 1024, 1),
    }


async def streaming_ranges(
    services: Services, client: httpx.AsyncClient, token: str, project: int, size_mib: int, range_mib: int
) -> dict[str, Any]:
    """Peak RSS of the origin (this process) for five concurrent ranges, streamed and read whole."""
    size, range_bytes = size_mib * MIB, range_mib * MIB
    image_id, path = await _large_original(services, project, size)
    query = "query($i: Int!) { image(id: $i) { originalUrl } }"
    answer = await client.post(
        "/graphql",
        json={"query": query, "variables": {"i": image_id}},
        headers={"Authorization": f"Bearer {token}"},
    )
    url = answer.json()["data"]["image"]["originalUrl"]
    streamed = await _peak_mib(client, url, size, range_bytes)  # first: the baseline leaves freed heap
    store = services.delivery.store
    services.delivery.store = WholeReads(store)
    try:
        whole = await _peak_mib(client, url, size, range_bytes)
    finally:
        services.delivery.store = store
        path.unlink(missing_ok=True)
    return {
        "original_mib": size_mib,
        "concurrent_ranges": CONCURRENT,
        "range_mib": range_mib,
        "streaming": streamed,
        "whole_reads_baseline": whole,
        "peak_ratio_streaming_to_baseline": round(
            streamed["peak_rss_increase_mib"] / max(whole["peak_rss_increase_mib"], 0.1), 4
        ),
    }
