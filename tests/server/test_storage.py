"""Blob stores: a local folder and S3 (moto's server on 127.0.0.1) behave the same through the protocol."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import httpx
import pytest

from server.exceptions import BlobNotFoundError, InvalidKeyError, StorageError
from server.storage import LocalBlobStore, S3BlobStore, image_key

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalBlobStore | S3BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs", secret="s")
    endpoint = request.getfixturevalue("moto_endpoint")
    kwargs = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }
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


async def test_large_files_go_up_in_parts_and_presigned_urls_fetch_them(
    moto_endpoint: str, tmp_path: Path
) -> None:
    kwargs = {
        "endpoint_url": moto_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }
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


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "images/abc", "images/" + "A" * 64, "exports/x/y.zip", "/abs"]
)
async def test_keys_made_by_clients_are_refused(key: str, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, secret="s")
    with pytest.raises(InvalidKeyError):
        await store.get_bytes(key)


async def test_unreachable_s3_is_a_storage_error() -> None:
    kwargs = {
        "endpoint_url": "http://127.0.0.1:9",
        "region_name": "us-east-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }
    store = S3BlobStore("nobucket", "", kwargs)
    store._client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(StorageError):
        await store.check()
