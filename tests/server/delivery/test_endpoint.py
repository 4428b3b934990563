"""The origin endpoint through the real app: URLs from GraphQL, caching headers, ranges, and the refusals."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from server.db import images
from server.db.models import Image as ImageRow
from server.delivery.service import Delivery
from server.delivery.signing import ImagePath
from server.delivery.specs import rendition_key
from tests.server.conftest import Api
from tests.server.delivery.test_renditions import huge_png_header, spheroid, tiff_bytes
from tests.server.storage.test_storage import backend as backend  # a fixture: "local" or "s3"
from tests.server.storage.test_storage import stored_api as stored_api  # a fixture: the app on a folder or S3

pytestmark = pytest.mark.anyio

URLS = """query($i: Int!) { image(id: $i) { thumbnailUrl originalUrl
  previewUrl(width: 512, format: PNG, dpr: 2) previewWidths } }"""


async def _world(api: Api) -> tuple[str, int, int, bytes]:
    token = await api.user("owner")
    project = await api.project(token)
    original = tiff_bytes(spheroid(640))
    response = await api.upload(token, project, [("plate.tif", original)])
    image_id = response.json()["files"][0]["imageId"]
    return token, project, image_id, original


async def _urls(api: Api, token: str, image_id: int) -> dict[str, Any]:
    data: dict[str, Any] = (await api.ok(URLS, token, i=image_id))["image"]
    return data


async def test_thumbnails_are_made_after_upload_and_served_cacheable(api: Api) -> None:
    token, project, image_id, original = await _world(api)
    delivery = api.services.delivery
    await delivery.drain()
    sha = hashlib.sha256(original).hexdigest()
    assert await api.services.store.exists(rendition_key(sha, delivery.thumbnail))
    renders = delivery.renders
    urls = await _urls(api, token, image_id)
    assert urls["thumbnailUrl"].startswith(f"http://testserver/img/{project}/{image_id}/")  # absolute
    response = await api.client.get(urls["thumbnailUrl"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    assert delivery.renders == renders  # made once, in the background
    assert max(Image.open(io.BytesIO(response.content)).size) == 256
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["cache-tag"] == f"project-{project},image-{image_id}"
    assert response.headers["surrogate-key"] == f"project-{project} image-{image_id}"
    assert response.headers["x-display-range"].startswith("low=")
    etag = response.headers["etag"]
    again = await api.client.get(urls["thumbnailUrl"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    head = await api.client.head(urls["thumbnailUrl"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(response.content)


async def test_previews_on_demand_and_originals_with_ranges(api: Api) -> None:
    token, _, image_id, original = await _world(api)
    urls = await _urls(api, token, image_id)
    assert "/w640_h0_scale-down_q65_" in urls["previewUrl"]  # 512 CSS px at 2x, capped at the original's 640
    assert urls["previewWidths"] == [256, 384, 512, 640]
    preview = await api.client.get(urls["previewUrl"])
    assert preview.status_code == 200 and Image.open(io.BytesIO(preview.content)).size == (640, 640)
    full = await api.client.get(urls["originalUrl"])
    assert full.content == original and full.headers["content-type"] == "image/tiff"
    assert full.headers["etag"] == f'"{hashlib.sha256(original).hexdigest()}"'
    part = await api.client.get(urls["originalUrl"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == original[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(original)}"
    tail = await api.client.get(urls["originalUrl"], headers={"Range": "bytes=-10"})
    assert tail.content == original[-10:]
    beyond = await api.client.get(urls["originalUrl"], headers={"Range": f"bytes={len(original)}-"})
    assert beyond.status_code == 416


async def test_tampered_expired_and_unknown_key_urls_are_refused(api: Api) -> None:
    token, project, image_id, _ = await _world(api)
    url = (await _urls(api, token, image_id))["originalUrl"].removeprefix("http://testserver")
    parts = url.split("/")  # ['', 'img', project, image, kid, exp, sig, sha, name]
    tampered = "/".join([*parts[:6], "A" * 22, *parts[7:]])
    assert (await api.client.get(tampered)).status_code == 403
    other_image = "/".join([*parts[:3], str(image_id + 1), *parts[4:]])
    assert (await api.client.get(other_image)).status_code == 403
    signer = api.services.delivery.signer
    stale = signer.sign(ImagePath(project, image_id, parts[7], "original"), now=0).path()
    response = await api.client.get(stale)
    assert response.status_code == 403 and "expired" in response.text
    assert response.headers["cache-control"] == "private, no-store"
    assert (await api.client.get(url.replace(f"/{parts[4]}/", "/retired/"))).status_code == 404
    assert (await api.client.get("/img/1/2/nothing")).status_code == 404


async def test_a_deleted_image_is_gone_from_its_old_url(api: Api) -> None:
    token, _, image_id, _ = await _world(api)
    url = (await _urls(api, token, image_id))["thumbnailUrl"]
    deleted = await api.ok(
        "mutation($i: Int!) { deleteImages(imageIds: [$i]) { ... on ImagesDeleteSuccess "
        "{ deletedIds cdnPurgeErrors } } }",
        token,
        i=image_id,
    )
    assert deleted["deleteImages"] == {"deletedIds": [image_id], "cdnPurgeErrors": []}
    assert (await api.client.get(url)).status_code == 404


async def test_no_url_is_given_to_someone_who_may_not_see_the_image(api: Api) -> None:
    _, _, image_id, _ = await _world(api)
    stranger = await api.user("stranger")
    body = await api.gql(URLS, stranger, i=image_id)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "/img/" not in str(body)
    anonymous = await api.gql(URLS, None, i=image_id)
    assert "/img/" not in str(anonymous)


async def test_an_over_limit_original_is_refused_before_decoding(api: Api, tmp_path: Path) -> None:
    token = await api.user("owner")
    project = await api.project(token)
    source = tmp_path / "huge.png"
    source.write_bytes(huge_png_header(30_000, 30_000))
    row = await _put_original(api, project, source, "png", (30_000, 30_000), bit_depth=8)
    url = (await api.ok("query($i: Int!) { image(id: $i) { thumbnailUrl } }", token, i=row.id))["image"]
    response = await api.client.get(url["thumbnailUrl"])
    assert response.status_code == 413 and "more than the limit" in response.text


async def test_api_responses_are_private_and_uncached(api: Api) -> None:
    response = await api.client.post("/graphql", json={"query": "{ __typename }"})
    assert response.headers["cache-control"] == "private, no-store"
    token = await api.user("u")
    bad = await api.gql("query { image(id: 1) { thumbnailUrl(size: 5000) } }", token)
    assert bad.get("errors")


async def test_background_thumbnails_render_in_a_process_that_gets_idle_cpu_only(api: Api) -> None:
    """As served by `spheroseg server serve`: thumbnails after an upload yield the CPU to segmentation."""
    delivery = api.services.delivery
    delivery._background_processes = 1  # the production default (the other tests use threads)
    token, _, image_id, original = await _world(api)
    await delivery.drain()
    assert await api.services.store.exists(
        rendition_key(hashlib.sha256(original).hexdigest(), delivery.thumbnail)
    )
    pool = delivery._background_pool
    assert pool is not None
    workers = list(pool._processes)  # type: ignore[attr-defined]
    assert workers and all(os.sched_getscheduler(pid) == os.SCHED_IDLE for pid in workers)
    thumbnail = await api.client.get((await _urls(api, token, image_id))["thumbnailUrl"])
    assert thumbnail.status_code == 200 and max(Image.open(io.BytesIO(thumbnail.content)).size) == 256


async def test_a_request_does_not_wait_for_a_starved_background_render(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the workers keep the CPU busy a background render may not run at all; a request that needs
    the same rendition must not wait for it."""
    _, _, _, original = await _world(api)
    delivery = api.services.delivery
    await delivery.drain()
    starved = asyncio.Event()
    render = Delivery._render

    async def never_in_background(self: Delivery, *args: Any) -> Any:
        if args[-1]:  # the background flag
            starved.set()
            await asyncio.Event().wait()
        return await render(self, *args)

    monkeypatch.setattr(Delivery, "_render", never_in_background)
    content_hash = hashlib.sha256(original).hexdigest()
    spec = delivery.thumbnail_spec(300)  # not made at upload
    background = asyncio.create_task(delivery.rendition(content_hash, spec, background=True))
    await asyncio.wait_for(starved.wait(), 5)
    made = await asyncio.wait_for(delivery.rendition(content_hash, spec), 10)
    assert max(Image.open(io.BytesIO(made.data)).size) == 300
    again = await asyncio.wait_for(delivery.rendition(content_hash, spec), 10)  # now stored
    assert again.data == made.data
    background.cancel()


async def test_a_killed_background_renderer_is_replaced_and_the_next_upload_gets_its_thumbnail(
    api: Api,
) -> None:
    """A renderer killed (for memory, say) used to break the pool for good: no thumbnail until a restart."""
    delivery = api.services.delivery
    delivery._background_processes = 1  # the production default (the other tests use threads)
    token, project, _, _ = await _world(api)
    await delivery.drain()
    pool = delivery._background_pool
    assert pool is not None
    for pid in list(pool._processes):  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(_wait_gone, pid)
    second = tiff_bytes(spheroid(320))
    response = await api.upload(token, project, [("second.tif", second)])
    second_id = response.json()["files"][0]["imageId"]
    await delivery.drain()
    assert await api.services.store.exists(
        rendition_key(hashlib.sha256(second).hexdigest(), delivery.thumbnail)
    )
    renders = delivery.renders
    thumbnail = await api.client.get((await _urls(api, token, second_id))["thumbnailUrl"])
    assert thumbnail.status_code == 200 and max(Image.open(io.BytesIO(thumbnail.content)).size) == 256
    assert delivery.renders == renders  # made in the background, not by the request


def _wait_gone(pid: int) -> None:
    """Until the killed process is reaped by its pool (so the pool has seen it die)."""
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.05)


async def _stored_original(api: Api, tmp_path: Path, size: int) -> tuple[str, bytes]:
    """A large original put straight into the store (uploading it would cost the test seconds)."""
    token = await api.user("owner")
    project = await api.project(token)
    data = os.urandom(size)
    source = tmp_path / "large.tif"
    source.write_bytes(data)
    row = await _put_original(api, project, source, "tiff", (8192, 4096), bit_depth=8)
    return (await _urls(api, token, row.id))["originalUrl"], data


async def _put_original(
    api: Api, project: int, source: Path, fmt: str, size: tuple[int, int], bit_depth: int
) -> ImageRow:
    """The file at ``source`` stored and recorded as an image of ``project``, without the upload's checks."""
    data = source.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    await api.services.store.put_file(f"images/{sha}", source)
    async with api.services.db.begin() as db:
        return await images.add_image(
            db,
            ImageRow(
                project_id=project,
                name=source.name,
                content_hash=sha,
                format=fmt,
                width=size[0],
                height=size[1],
                bit_depth=bit_depth,
                pixel_size_um=None,
                byte_size=len(data),
                segmentation_status="none",
                review_status="unreviewed",
                current_version=0,
            ),
        )


async def test_originals_and_ranges_are_streamed_not_read_whole(api: Api, tmp_path: Path) -> None:
    """Anyone holding a signed URL may ask for a multi-gigabyte original, five ranges at a time: the server
    holds a few chunks per request, never the file (measured as the peak of Python's allocations)."""
    size = 48 * 1024**2
    url, data = await _stored_original(api, tmp_path, size)
    offsets = [i * size // 5 for i in range(5)]
    tracemalloc.start()
    try:
        parts = await asyncio.gather(*(api.client.get(url, headers=_mebibyte_at(o)) for o in offsets))
        head = await api.client.head(url, headers={"Range": "bytes=100-"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for offset, part in zip(offsets, parts, strict=True):
        assert part.status_code == 206 and part.content == data[offset : offset + 2**20]
        assert part.headers["content-range"] == f"bytes {offset}-{offset + 2**20 - 1}/{size}"
    assert head.status_code == 206 and head.content == b""
    assert int(head.headers["content-length"]) == size - 100
    assert peak < size // 2, f"{peak / 2**20:.1f} MiB held for 5 MiB of ranges of a 48 MiB original"
    full = await api.client.get(url)
    assert full.status_code == 200 and full.content == data
    assert int(full.headers["content-length"]) == size


async def test_ranges_of_an_original_in_s3_fetch_only_those_bytes(
    stored_api: Api, backend: str, tmp_path: Path
) -> None:
    """On either store the answers are the same; from S3 only the asked-for bytes are fetched (moto runs
    in this process, so its own copies rule out measuring the server's memory as above)."""
    api = stored_api
    size = 12 * 1024**2
    url, data = await _stored_original(api, tmp_path, size)
    fetched: list[str] = []
    store = api.services.store
    if backend == "s3":
        store._client.meta.events.register(
            "before-call.s3.GetObject", lambda params, **_: fetched.append(params["headers"].get("Range", ""))
        )
    parts = await asyncio.gather(*(api.client.get(url, headers=_mebibyte_at(o)) for o in (0, size // 2)))
    assert [p.content for p in parts] == [data[: 2**20], data[size // 2 : size // 2 + 2**20]]
    head = await api.client.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == size and head.content == b""
    if backend == "s3":
        assert sorted(fetched) == [f"bytes=0-{2**20 - 1}", f"bytes={size // 2}-{size // 2 + 2**20 - 1}"]


def _mebibyte_at(offset: int) -> dict[str, str]:
    return {"Range": f"bytes={offset}-{offset + 2**20 - 1}"}


async def test_a_thumbnail_of_a_large_stack_reads_one_plane_not_the_original(
    stored_api: Api, backend: str, tmp_path: Path
) -> None:
    """A 16-plane, 32 MiB stack: its thumbnail needs the first plane (2 MiB) only, on either store. On a
    local store Python's allocations are measured (moto's own copies rule that out for S3)."""
    import numpy as np
    import tifffile

    api = stored_api
    stack = np.random.default_rng(7).integers(0, 65535, (16, 1024, 1024), dtype=np.uint16)
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack)
    token = await api.user("owner")
    project = await api.project(token)
    row = await _put_original(api, project, source, "tiff", (1024, 1024), bit_depth=16)
    url = (await _urls(api, token, row.id))["thumbnailUrl"]
    measured = backend == "local"
    if measured:
        tracemalloc.start()
    try:
        answer = await api.client.get(url)
        _, peak = tracemalloc.get_traced_memory() if measured else (0, 0)
    finally:
        tracemalloc.stop()
    assert answer.status_code == 200
    thumbnail = Image.open(io.BytesIO(answer.content))
    assert max(thumbnail.size) == 256
    assert peak < source.stat().st_size // 2, f"{peak / 2**20:.1f} MiB held for a thumbnail of a 32 MiB stack"
