"""Blob stores: a local folder and S3 (moto's server on 127.0.0.1) behave the same, alone and in the app."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import os
import threading
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from cluster.sources import fetch
from server.delivery.signing import UrlSigner
from server.exceptions import BlobNotFoundError, InvalidKeyError, StorageError
from server.settings import Settings
from server.storage import CHUNK_BYTES, LocalBlobStore, image_key, open_store
from server.storage.s3 import S3BlobStore, WorkerAccess
from tests.server.conftest import Api, app_with, make_settings, png_bytes
from tests.server.exports import exported

pytestmark = pytest.mark.anyio


def _s3_kwargs(endpoint: str) -> dict[str, str]:
    return {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }


def _signer() -> UrlSigner:
    return UrlSigner({"k1": b"secret"}, "k1", ttl=3600, window=60)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store this test runs on, "local" or "s3": the parameter of its ``store`` or ``stored_api``
    fixture (a step that looks inside moto's bucket or a local folder asks this, not the store's type)."""
    params = request.node.callspec.params
    return str(params.get("store", params.get("stored_api")))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalBlobStore | S3BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs", _signer())
    endpoint = request.getfixturevalue("moto_endpoint")
    kwargs = _s3_kwargs(endpoint)
    bucket = f"blobs-{os.urandom(4).hex()}"
    boto3.client("s3", **kwargs).create_bucket(Bucket=bucket)
    return S3BlobStore(bucket, "lab/prefix", kwargs, multipart_threshold=5 * 1024 * 1024)


async def test_round_trip_exists_delete(store: LocalBlobStore | S3BlobStore, tmp_path: Path) -> None:
    data = os.urandom(1000)
    source = tmp_path / "upload"
    source.write_bytes(data)
    key = image_key(hashlib.sha256(data).hexdigest())
    await store.check()
    assert not await store.exists(key)
    await store.put_file(key, source)
    assert await store.exists(key)
    assert await store.get_bytes(key) == data
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(BlobNotFoundError):
        await store.get_bytes(key)


@pytest.mark.parametrize(
    ("kind", "access", "scheme"),
    [("local", None, "/"), ("s3", "presigned", "http://"), ("s3", "direct", "s3://")],
)
async def test_a_worker_reads_a_blob_through_the_reference_its_store_gives(
    kind: str,
    access: WorkerAccess | None,
    scheme: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dispatcher hands workers ``worker_reference``; cluster.sources must read each kind (a path, a
    presigned URL, an ``s3://`` key with the worker's own SPHEROSEG_S3_* variables)."""
    if kind == "local":
        store: LocalBlobStore | S3BlobStore = LocalBlobStore(tmp_path / "blobs", _signer())
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"workers-{os.urandom(4).hex()}"
        boto3.client("s3", **_s3_kwargs(endpoint)).create_bucket(Bucket=bucket)
        store = S3BlobStore(bucket, "lab", _s3_kwargs(endpoint), worker_access=access or "presigned")
        for name, value in _worker_variables(endpoint).items():
            monkeypatch.setenv(name, value)
    data = os.urandom(3000)
    source = tmp_path / "upload"
    source.write_bytes(data)
    key = image_key(hashlib.sha256(data).hexdigest())
    await store.put_file(key, source)
    reference = await store.worker_reference(key, 60)
    assert reference.startswith(scheme)
    fetched = await asyncio.to_thread(fetch, reference)
    assert (fetched.read_bytes() if isinstance(fetched, Path) else fetched.getvalue()) == data


def _worker_variables(endpoint: str) -> dict[str, str]:
    return {
        "SPHEROSEG_S3_ENDPOINT_URL": endpoint,
        "SPHEROSEG_S3_ACCESS_KEY_ID": "k",
        "SPHEROSEG_S3_SECRET_ACCESS_KEY": "s",
    }


async def test_large_files_go_up_in_parts_and_presigned_urls_fetch_them(
    moto_endpoint: str, tmp_path: Path
) -> None:
    kwargs = _s3_kwargs(moto_endpoint)
    client = boto3.client("s3", **kwargs)
    client.create_bucket(Bucket="multipart-test")
    store = S3BlobStore("multipart-test", "", kwargs, multipart_threshold=5 * 1024 * 1024)
    data = os.urandom(11 * 1024 * 1024)
    source = tmp_path / "big"
    source.write_bytes(data)
    key = image_key(hashlib.sha256(data).hexdigest())
    await store.put_file(key, source)
    etag = client.head_object(Bucket="multipart-test", Key=key)["ETag"]
    assert etag.strip('"').endswith("-3"), etag  # three parts of 5 MiB, 5 MiB, 1 MiB
    url = await store.presigned_url(key, 60)
    assert httpx.get(url).content == data


async def test_ranged_reads_stream_in_bounded_chunks(
    store: LocalBlobStore | S3BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * CHUNK_BYTES + 17)
    source = tmp_path / "upload"
    source.write_bytes(data)
    key = image_key(hashlib.sha256(data).hexdigest())
    await store.put_file(key, source)
    assert await store.size(key) == len(data)
    chunks = [chunk async for chunk in await store.read_range(key, 0, len(data) - 1)]
    assert b"".join(chunks) == data
    assert len(chunks) == 4 and max(map(len, chunks)) <= CHUNK_BYTES
    middle = [c async for c in await store.read_range(key, CHUNK_BYTES - 5, CHUNK_BYTES + 4)]
    assert b"".join(middle) == data[CHUNK_BYTES - 5 : CHUNK_BYTES + 5]
    assert [c async for c in await store.read_range(key, 10, 9)] == []
    missing = image_key("0" * 64)
    with pytest.raises(BlobNotFoundError):
        await store.size(missing)
    with pytest.raises(BlobNotFoundError):
        await store.read_range(missing, 0, 10)


async def test_listing_names_the_servers_blobs_of_a_folder_only(
    store: Any, backend: str, tmp_path: Path
) -> None:
    source = tmp_path / "export.zip"
    source.write_bytes(b"zip" * 100)
    export = f"exports/{'a' * 32}/project-1-csv.zip"
    await store.put_file(export, source)
    await store.put_file(image_key("b" * 64), source)
    if backend == "s3":  # a shared bucket may hold objects of others under the prefix
        store._client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/exports/notes.txt", Body=b"x")
    else:  # a write under way leaves a partial file next to the blobs
        (store.root / "exports" / ("a" * 32) / ".project-2.zip.123.part").write_bytes(b"x")
    (listed,) = await store.listing("exports/")
    assert (listed.key, listed.size) == (export, 300)
    assert abs((dt.datetime.now(dt.UTC) - listed.modified).total_seconds()) < 600
    with pytest.raises(InvalidKeyError):
        await store.listing("../")


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "images/abc", "images/" + "A" * 64, "exports/x/y.zip", "/abs"]
)
async def test_keys_made_by_clients_are_refused(key: str, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, _signer())
    with pytest.raises(InvalidKeyError):
        await store.get_bytes(key)


async def test_unreachable_s3_is_a_storage_error() -> None:
    kwargs = _s3_kwargs("http://127.0.0.1:9")
    store = S3BlobStore("nobucket", "", kwargs)
    store._client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(StorageError):
        await store.check()


# -- the app on each store: uploads, exports and deletions ---------------------------------------------------

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
SAVE = """mutation($id: Int!, $sph: [SpheroidInput!]!) {
  saveSegmentation(imageId: $id, baseVersion: 0, spheroids: $sph) { __typename } }"""


def _s3_settings(endpoint: str, bucket: str) -> dict[str, Any]:
    return {
        "storage_url": f"s3://{bucket}/lab",
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": "k",
        "s3_secret_access_key": "s",
    }


@pytest.fixture(params=["local", "s3"])
async def stored_api(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The real app on SQLite or PostgreSQL, with its blobs in a local folder or in S3 (moto)."""
    if request.param == "local":
        settings = make_settings(database_url, str(tmp_path / "blobs"))
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"app-{os.urandom(4).hex()}"
        boto3.client("s3", **_s3_kwargs(endpoint)).create_bucket(Bucket=bucket)
        overrides = _s3_settings(endpoint, bucket)
        settings = make_settings(database_url, overrides.pop("storage_url"), **overrides)
    async with app_with(settings) as api:
        yield api


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _download(api: Api, url: str) -> httpx.Response:
    """A relative-to-the-app URL (local store) through the app, a presigned S3 URL over the network."""
    if url.startswith("http://testserver/"):
        return await api.client.get(url)
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url)


async def test_upload_export_and_delete_keep_blobs_in_the_store(stored_api: Api, backend: str) -> None:
    api, store = stored_api, stored_api.services.store
    owner = await api.user("owner")
    project_id = await api.project(owner)
    small, large = png_bytes(64, 48), png_bytes(1200, 1000, seed=1)  # the large one is fed in 2 parts
    response = await api.upload(owner, project_id, [("small.png", small), ("large.png", large)])
    assert response.status_code == 200 and response.json()["accepted"] == 2, response.json()
    small_id, large_id = (f["imageId"] for f in response.json()["files"])
    for data in (small, large):
        assert await store.get_bytes(image_key(_sha(data))) == data
    if backend == "s3":  # under the configured prefix, where a lab's bucket policy expects it
        head = store._client.head_object(Bucket=store.bucket, Key=f"lab/{image_key(_sha(large))}")
        assert head["ContentLength"] == len(large)
    again = (await api.upload(owner, project_id, [("copy.png", small)])).json()
    assert again["files"][0]["reason"] == "the same file is already here as 'small.png'"

    await api.ok(SAVE, owner, id=small_id, sph=[{"exterior": SQUARE}])
    result = await exported(api, owner, project_id)
    assert result["total"] == 2 and result["parameters"]["spheroidCount"] == 1
    download = await _download(api, result["url"])
    assert download.status_code == 200
    names = set(zipfile.ZipFile(io.BytesIO(download.content)).namelist())
    assert {"annotations.coco.json", "metrics.csv", "metrics.xlsx"} <= names

    deleted = await api.ok(
        "mutation($ids: [Int!]!) { deleteImages(imageIds: $ids) "
        "{ ... on ImagesDeleteSuccess { deletedIds } } }",
        owner,
        ids=[large_id],
    )
    assert deleted["deleteImages"]["deletedIds"] == [large_id]
    assert not await store.exists(image_key(_sha(large)))
    assert await store.exists(image_key(_sha(small)))


async def test_a_missing_bucket_refuses_uploads_and_records_nothing(
    database_url: str, moto_endpoint: str
) -> None:
    overrides = _s3_settings(moto_endpoint, "no-such-bucket")
    settings = make_settings(database_url, overrides.pop("storage_url"), **overrides)
    async with app_with(settings) as api:
        owner = await api.user("owner")
        project_id = await api.project(owner)
        answer = (await api.upload(owner, project_id, [("a.png", png_bytes())])).json()
        assert answer["accepted"] == 0
        assert answer["files"][0]["reason"].startswith("storage failed: S3 refused images/")
        count = "query($id: Int!) { project(id: $id) { images { totalCount } } }"
        assert (await api.ok(count, owner, id=project_id))["project"]["images"]["totalCount"] == 0
        ready = await api.client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["storage"].startswith("unreachable")


async def test_upload_parses_and_writes_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.api import multipart

    threads: set[int] = set()
    original = multipart.Receiver._data

    def recording(self: multipart.Receiver, data: bytes, start: int, end: int) -> None:
        threads.add(threading.get_ident())
        original(self, data, start, end)

    monkeypatch.setattr(multipart.Receiver, "_data", recording)
    owner = await api.user("owner")
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("large.png", png_bytes(1200, 1000, seed=2))])
    assert response.json()["accepted"] == 1
    assert threads and threading.get_ident() not in threads


async def test_a_failed_write_tells_the_client_why_without_the_server_path(
    database_url: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "lab-storage"
    blocked.write_text("a file where the blob folder should be")
    async with app_with(make_settings(database_url, str(blocked))) as api:
        owner = await api.user("owner")
        project_id = await api.project(owner)
        answer = (await api.upload(owner, project_id, [("a.png", png_bytes())])).json()
        reason = answer["files"][0]["reason"]
        assert answer["accepted"] == 0
        assert reason.startswith("storage failed: could not write images/") and "Not a directory" in reason
        assert str(tmp_path) not in reason
        ready = (await api.client.get("/health/ready")).json()
        assert ready["storage"].startswith("unreachable: the storage folder is not writable: ")
        assert str(tmp_path) not in ready["storage"]


def test_the_setting_picks_how_workers_reach_s3() -> None:
    def store(**overrides: Any) -> Any:
        return open_store(Settings(storage_url="s3://lab/prefix", **overrides), _signer())

    assert store().worker_access == "presigned"  # no credentials needed on the workers
    assert store(s3_worker_access="direct").worker_access == "direct"
