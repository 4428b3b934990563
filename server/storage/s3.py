"""A blob store in an S3 bucket (any S3-compatible service) through boto3, called off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from server.exceptions import BlobNotFoundError, InvalidKeyError, StorageError
from server.storage.base import CHUNK_BYTES, BlobInfo, check_key, check_prefix, no_chunks

__all__ = ["S3BlobStore", "WorkerAccess"]

WorkerAccess = Literal["presigned", "direct"]
"""How workers reach an object: a presigned HTTPS URL (no credentials on the workers), or ``s3://`` with
the workers' own credentials and endpoint (``SPHEROSEG_S3_*`` in their environment, cluster.sources)."""


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str,
        client_kwargs: dict[str, Any],
        multipart_threshold: int = 16 * 1024**2,
        worker_access: WorkerAccess = "presigned",
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.worker_access = worker_access
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._client = boto3.client("s3", config=config, **client_kwargs)
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=max(multipart_threshold, 5 * 1024**2)
        )

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(functools.partial(function, *args, **kwargs))
        except ClientError as error:
            code = _code(error)
            if code in {"404", "NoSuchKey", "NotFound"}:
                raise BlobNotFoundError(f"no blob {what} in s3://{self.bucket}") from error
            raise StorageError(f"S3 refused {what} in s3://{self.bucket}: {code or error}") from error
        except S3UploadFailedError as error:  # upload_file wraps the ClientError of the put or a part
            cause = error.__context__
            code = _code(cause) if isinstance(cause, ClientError) else ""
            raise StorageError(f"S3 refused {what} in s3://{self.bucket}: {code or error}") from error
        except BotoCoreError as error:
            raise StorageError(f"S3 at s3://{self.bucket} is unreachable: {error}") from error

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        await self._call(
            key,
            self._client.upload_file,
            str(path),
            self.bucket,
            self.object_key(key),
            ExtraArgs={"ContentType": content_type},
            Config=self._transfer,
        )

    async def get_bytes(self, key: str) -> bytes:
        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
            with body:
                data: bytes = body.read()
            return data

        result: bytes = await self._call(key, read)
        return result

    @contextlib.asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        """A temporary copy, streamed to disk by boto3's transfer manager (in parts, never whole in
        memory)."""
        handle, name = await asyncio.to_thread(tempfile.mkstemp, prefix="spheroseg-blob-")
        os.close(handle)
        copy = Path(name)
        try:
            download = self._client.download_file
            await self._call(key, download, self.bucket, self.object_key(key), name, Config=self._transfer)
            yield copy
        finally:
            await asyncio.to_thread(copy.unlink, True)

    async def size(self, key: str) -> int:
        head = await self._call(key, self._client.head_object, Bucket=self.bucket, Key=self.object_key(key))
        return int(head["ContentLength"])

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if end < start:
            return no_chunks()
        answer = await self._call(
            key,
            self._client.get_object,
            Bucket=self.bucket,
            Key=self.object_key(key),
            Range=f"bytes={start}-{end}",
        )
        return self._chunks(key, answer["Body"])

    async def _chunks(self, key: str, body: Any) -> AsyncIterator[bytes]:
        """The object's body as it arrives, a chunk per thread hop; the connection is released however the
        reader stops (a client that goes away leaves no half-read connection in boto3's pool)."""
        try:  # botocore raises a broken or cut-short body as BotoCoreError: a StorageError here
            while chunk := await self._call(key, body.read, CHUNK_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(body.close)

    async def exists(self, key: str) -> bool:
        try:
            await self._call(key, self._client.head_object, Bucket=self.bucket, Key=self.object_key(key))
        except BlobNotFoundError:
            return False
        return True

    async def listing(self, prefix: str) -> list[BlobInfo]:
        start = f"{self.prefix}/" if self.prefix else ""

        def scan() -> list[BlobInfo]:
            found = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start + check_prefix(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(start) :]
                    try:
                        check_key(key)
                    except InvalidKeyError:  # not one of ours (the bucket may be shared)
                        continue
                    found.append(BlobInfo(key, int(item["Size"]), item["LastModified"]))
            return found

        result: list[BlobInfo] = await self._call(prefix, scan)
        return result

    async def delete(self, key: str) -> None:
        await self._call(key, self._client.delete_object, Bucket=self.bucket, Key=self.object_key(key))

    async def presigned_url(self, key: str, expires_in: int) -> str:
        url: str = await self._call(
            key,
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=expires_in,
        )
        return url

    async def worker_reference(self, key: str, expires_in: int) -> str:
        if self.worker_access == "direct":
            return f"s3://{self.bucket}/{self.object_key(key)}"
        return await self.presigned_url(key, expires_in)

    async def check(self) -> None:
        await self._call("the bucket", self._client.head_bucket, Bucket=self.bucket)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
