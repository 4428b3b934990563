"""Uploads under attack or accident, through the real app: concurrent duplicates, request totals, a full disk,
damaged files, files that are small but huge once decoded, thumbnail sizes, and deletions racing uploads."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import subprocess
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile
from PIL import Image

from server.app import create_app
from server.composition import Services
from server.db import images
from server.db.models import Image as ImageRow
from server.services.spool import remove_stale_spools
from server.storage import image_key
from tests.data import make_images
from tests.server.conftest import Api, make_settings, png_bytes
from tests.server.delivery.test_renditions import spheroid, tiff_bytes
from tests.server.processes import SPHEROSEG, graphql, login, start_server, wait_until

pytestmark = pytest.mark.anyio

COUNT = "query($id: Int!) { project(id: $id) { stats { imageCount } } }"
DELETE = """mutation($ids: [Int!]!) {
  deleteImages(imageIds: $ids) { ... on ImagesDeleteSuccess { deletedIds } } }"""
BOUNDARY = "upload-test-boundary"


@contextlib.asynccontextmanager
async def _app(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Api]:
    """The real app with some settings changed; a server error is an answer (500), as a client sees it."""
    settings = make_settings(database_url, str(tmp_path / "blobs"), **overrides)
    services = Services.create(settings)
    await services.bus.start()
    transport = httpx.ASGITransport(app=create_app(services=services), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, services)
    finally:
        await services.close()


async def _count(api: Api, token: str, project_id: int) -> int:
    count: int = (await api.ok(COUNT, token, id=project_id))["project"]["stats"]["imageCount"]
    return count


def _multipart(files: list[tuple[str, bytes]]) -> bytes:
    body = b""
    for name, data in files:
        body += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


async def _streamed_upload(api: Api, token: str, project_id: int, files: list[tuple[str, bytes]]) -> Any:
    """An upload sent in chunks with no Content-Length, as a client streaming from disk may send it."""
    body = _multipart(files)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16_384):
            yield body[start : start + 16_384]

    return await api.client.post(
        f"/api/projects/{project_id}/images",
        content=chunks(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )


# -- the same file, concurrently ---------------------------------------------------------------------------


async def test_concurrent_uploads_of_one_file_store_it_once_and_process_every_other_file(
    database_url: str, tmp_path: Path
) -> None:
    async with _app(database_url, tmp_path) as api:
        owner = await api.user("owner")
        project_id = await api.project(owner)
        same = png_bytes(64, 48, seed=7)
        requests = [
            api.upload(
                owner, project_id, [("same.png", same), (f"other{i}.png", png_bytes(40, 30, seed=100 + i))]
            )
            for i in range(6)
        ]
        responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
        firsts = [r.json()["files"][0] for r in responses]
        (kept,) = [f for f in firsts if f["accepted"]]
        for duplicate in (f for f in firsts if not f["accepted"]):
            assert duplicate["duplicateOf"] == kept["imageId"], duplicate
            assert duplicate["reason"] == "the same file is already here as 'same.png'"
        assert all(r.json()["files"][1]["accepted"] for r in responses)
        assert await _count(api, owner, project_id) == 7


# -- limits on a whole request and on disk space ------------------------------------------------------------


async def test_a_request_over_its_total_is_refused_and_files_before_the_limit_are_kept(
    database_url: str, tmp_path: Path
) -> None:
    async with _app(database_url, tmp_path, max_upload_request_bytes=100_000) as api:
        owner = await api.user("owner")
        project_id = await api.project(owner)
        files = [(f"f{i}.png", png_bytes(250, 250, seed=i)) for i in range(3)]  # ~63 kB each
        declared = await api.upload(owner, project_id, files)
        assert declared.status_code == 413
        assert "more than the limit of 100,000 for one upload" in declared.json()["error"]
        assert await _count(api, owner, project_id) == 0

        streamed = await _streamed_upload(api, owner, project_id, files)
        assert streamed.status_code == 413
        answer = streamed.json()
        assert "pass the limit of 100,000 bytes" in answer["error"]
        assert "send the remaining files in another request" in answer["error"]
        accepted, refused, *unread = answer["files"]  # the third one may not even have been read
        assert accepted["accepted"] and accepted["name"] == "f0.png"
        assert not refused["accepted"] and refused["reason"] == answer["error"]
        assert all(not f["accepted"] for f in unread)
        assert await _count(api, owner, project_id) == 1


async def test_uploads_are_refused_when_the_disk_would_fill(database_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    async with _app(database_url, tmp_path, upload_temp_dir=str(spool), upload_min_free_bytes=2**60) as api:
        owner = await api.user("owner")
        project_id = await api.project(owner)
        files = [("a.png", png_bytes())]
        for response in (
            await api.upload(owner, project_id, files),
            await _streamed_upload(api, owner, project_id, files),
        ):
            assert response.status_code == 507, response.text
            assert "low on disk space" in response.json()["error"]
        assert await _count(api, owner, project_id) == 0
        assert list(spool.iterdir()) == []  # nothing left behind either


# -- what a file holds ---------------------------------------------------------------------------------------


async def test_a_damaged_or_cut_off_file_is_refused_at_the_door(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    names = ["truncated.tif", "truncated_lzw.tif", "truncated.png", "truncated.jpg"]
    response = await api.upload(owner, project_id, [(n, (make_images.OUT / n).read_bytes()) for n in names])
    files = response.json()["files"]
    assert [f["accepted"] for f in files] == [False] * 4, files
    assert all("damaged or truncated" in f["reason"] for f in files), files
    assert await _count(api, owner, project_id) == 0


async def test_a_small_file_that_is_huge_decoded_is_refused_and_never_decoded(
    api: Api, tmp_path: Path
) -> None:
    """A 2000 x 2000 TIFF of 32 float64 samples: 4 megapixels, under 1 kB on disk, 1 GB decoded."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    data = make_images.sample_heavy_tiff(2000, 2000, samples=32)
    (refused,) = (await api.upload(owner, project_id, [("stack.tif", data)])).json()["files"]
    assert not refused["accepted"]
    assert "1,024,000,000 bytes" in refused["reason"] and "fewer samples per pixel" in refused["reason"]

    # One stored before this limit existed is not decoded for its thumbnail either.
    sha = hashlib.sha256(data).hexdigest()
    source = tmp_path / "stack.tif"
    source.write_bytes(data)
    await api.services.store.put_file(image_key(sha), source)
    async with api.services.db.begin() as db:
        row = await images.add_image(db, _row(project_id, "stack.tif", sha, 2000, 2000, len(data)))
    urls = await api.ok("query($i: Int!) { image(id: $i) { thumbnailUrl } }", owner, i=row.id)
    response = await api.client.get(urls["image"]["thumbnailUrl"])
    assert (
        response.status_code == 413 and "decoding one plane would take 1,024,000,000 bytes" in response.text
    )


async def test_a_thumbnail_decodes_only_the_sample_it_shows(api: Api) -> None:
    """32 float64 samples stored one after another: 64 MB to decode whole, 2 MB for the one shown."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    ramp = (np.arange(500 * 500).reshape(500, 500) % 1000).astype(np.float64)
    buffer = io.BytesIO()  # under 1 MB compressed
    tifffile.imwrite(
        buffer, np.stack([ramp + s for s in range(32)]), planarconfig="separate", compression="zlib"
    )
    (stored,) = (await api.upload(owner, project_id, [("channels.tif", buffer.getvalue())])).json()["files"]
    assert stored["accepted"], stored
    await api.services.delivery.drain()
    query = "query($i: Int!) { image(id: $i) { thumbnailUrl(size: 64) } }"
    url = (await api.ok(query, owner, i=stored["imageId"]))["image"]["thumbnailUrl"]
    tracemalloc.start()  # counts the render thread's allocations too
    try:
        response = await api.client.get(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200 and max(Image.open(io.BytesIO(response.content)).size) == 64
    assert peak < 24_000_000  # one sample and its copies, not the 64 MB of all 32


def _row(project_id: int, name: str, sha: str, width: int, height: int, size: int) -> ImageRow:
    return ImageRow(
        project_id=project_id,
        name=name,
        content_hash=sha,
        format="tiff",
        width=width,
        height=height,
        bit_depth=32,
        pixel_size_um=None,
        byte_size=size,
        segmentation_status="none",
        review_status="unreviewed",
        current_version=0,
    )


async def test_thumbnail_sizes_snap_to_a_short_ladder(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("plate.tif", tiff_bytes(spheroid(640)))])
    image_id = response.json()["files"][0]["imageId"]
    sizes = [16, 64, 65, 100, 128, 129, 200, 256, 300, 600, 1000, 1024]
    fields = " ".join(f"s{size}: thumbnailUrl(size: {size})" for size in sizes)
    urls = (await api.ok(f"query($i: Int!) {{ image(id: $i) {{ {fields} }} }}", owner, i=image_id))["image"]
    assert len(set(urls.values())) == 5  # 64, 128, 256, 512 and 1024: not one rendition per size asked
    thumbnail = await api.client.get(urls["s100"])
    assert thumbnail.status_code == 200
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) == 128
    schema = await api.ok('{ __type(name: "Image") { fields { name description } } }')
    (described,) = [f["description"] for f in schema["__type"]["fields"] if f["name"] == "thumbnailUrl"]
    assert "64, 128, 256, 512 or 1024" in described


# -- deletion and upload of the same content at the same time ----------------------------------------------


async def test_an_upload_racing_the_deletion_of_the_same_content_keeps_its_original(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await api.user("owner")
    first, second = await api.project(owner, "A"), await api.project(owner, "B")
    data = png_bytes(64, 48, seed=11)
    old_id = (await api.upload(owner, first, [("x.png", data)])).json()["files"][0]["imageId"]
    store = api.services.store
    delete = store.delete
    uploads: list[asyncio.Task[httpx.Response]] = []

    async def delete_while_uploading(key: str) -> None:
        # The deletion has decided that nothing uses the blob; the same file is uploaded to B right now.
        uploads.append(asyncio.ensure_future(api.upload(owner, second, [("y.png", data)])))
        await asyncio.wait(uploads, timeout=2)
        await delete(key)

    monkeypatch.setattr(store, "delete", delete_while_uploading)
    assert (await api.ok(DELETE, owner, ids=[old_id]))["deleteImages"]["deletedIds"] == [old_id]
    (uploaded,) = await asyncio.gather(*uploads)
    (file,) = uploaded.json()["files"]
    assert file["accepted"], file
    url = await api.ok("query($i: Int!) { image(id: $i) { originalUrl } }", owner, i=file["imageId"])
    original = await api.client.get(url["image"]["originalUrl"])
    assert original.status_code == 200 and original.content == data


# -- a server killed mid-upload ------------------------------------------------------------------------------


async def test_a_server_killed_mid_upload_leaves_no_partial_file_after_its_restart(
    database_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    other_server = spool / f"spheroseg-upload-{os.getpid()}-x1y2z3"  # a live process's spool: not touched
    other_server.mkdir()
    env = {
        "SPHEROSEG_DATABASE_URL": database_url,
        "SPHEROSEG_STORAGE_URL": str(tmp_path / "blobs"),
        "SPHEROSEG_SECRET_KEY": "upload-test-secret",
        "SPHEROSEG_PASSWORD_TIME_COST": "1",
        "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024",
        "SPHEROSEG_DISPATCHER": "false",
        "TMPDIR": str(spool),  # where the server spools uploads by default
    }
    password = "a long enough password"
    subprocess.run(
        [SPHEROSEG, "server", "create-user", "ana", "--password-stdin"],
        input=password + "\n",
        text=True,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    server = start_server(env, tmp_path / "server.log")
    try:
        token = login(server.url, "ana", password)
        project = graphql(
            server.url,
            token,
            'mutation { createProject(input: {name: "P"}) { ... on ProjectSuccess { project { id } } } }',
        )["createProject"]["project"]["id"]
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.tif"\r\n\r\n'

        async def body() -> AsyncIterator[bytes]:
            yield head.encode()
            for _ in range(4):
                yield b"\0" * 1024 * 1024
            await asyncio.Event().wait()  # the rest never comes: the server dies first

        async with httpx.AsyncClient(timeout=30) as client:
            upload = asyncio.ensure_future(
                client.post(
                    f"{server.url}/api/projects/{project}/images",
                    content=body(),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                    },
                )
            )
            await wait_until(lambda: _spooled_bytes(spool) >= 3 * 1024 * 1024, 30, "the upload to be spooled")
            server.kill()
            upload.cancel()  # its body waits forever: it cannot notice the server is gone
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await upload
        assert _spooled_bytes(spool) >= 3 * 1024 * 1024  # what the killed server left
        server = start_server(env, tmp_path / "restarted.log")
        assert sorted(p.name for p in spool.iterdir() if p.name.startswith("spheroseg-upload-")) == [
            other_server.name
        ]
    finally:
        server.stop()


def _spooled_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("spheroseg-upload-*/*") if f.is_file())


def test_startup_removes_spools_no_running_server_owns(tmp_path: Path) -> None:
    """A container restarts its server under the same pid: a spool with our own pid is stale at startup."""
    ended = subprocess.Popen(["true"])  # a pid that has just ended
    ended.wait()
    folders = {
        "own": tmp_path / f"spheroseg-upload-{os.getpid()}-aaaa",
        "ended": tmp_path / f"spheroseg-upload-{ended.pid}-bbbb",
        "alive": tmp_path / f"spheroseg-upload-{os.getppid()}-cccc",
        "old, untouched": tmp_path / "spheroseg-upload-dddd",
        "old, in use": tmp_path / "spheroseg-upload-eeee",
        "not ours": tmp_path / "something-else",
    }
    for folder in folders.values():
        folder.mkdir()
    hours_ago = time.time() - 2 * 3600
    os.utime(folders["old, untouched"], (hours_ago, hours_ago))
    remove_stale_spools(tmp_path)
    assert {what for what, folder in folders.items() if folder.exists()} == {
        "alive",
        "old, in use",
        "not ours",
    }
