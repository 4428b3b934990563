"""A blob store in a local folder; downloads go through the server's signed ``/api/blobs/…`` URLs."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from server.exceptions import BlobNotFoundError, InvalidKeyError, StorageError
from server.storage.base import CHUNK_BYTES, BlobInfo, check_key, check_prefix, no_chunks

__all__ = ["LocalBlobStore"]


class LocalBlobStore:
    def __init__(self, root: str | Path, secret: str) -> None:
        self.root = Path(root)
        self._secret = secret.encode()

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        target = self.path_of(key)
        await asyncio.to_thread(self._copy, path, target)

    @staticmethod
    def _copy(source: Path, target: Path) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            shutil.copyfile(source, partial)
            partial.replace(target)
        except OSError as error:
            raise StorageError(f"could not write {target}: {error.strerror or error}") from error

    async def get_bytes(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as error:
            raise BlobNotFoundError(f"no blob {key}") from error

    async def size(self, key: str) -> int:
        try:
            stat = await asyncio.to_thread(self.path_of(key).stat)
        except FileNotFoundError as error:
            raise BlobNotFoundError(f"no blob {key}") from error
        return stat.st_size

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        if end < start:
            return no_chunks()
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as error:
            raise BlobNotFoundError(f"no blob {key}") from error
        return _chunks(handle, start, end, path)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def listing(self, prefix: str) -> list[BlobInfo]:
        folder = self.root / check_prefix(prefix)

        def scan() -> list[BlobInfo]:
            found = []
            for path in folder.rglob("*") if folder.is_dir() else ():
                key = path.relative_to(self.root).as_posix()
                try:
                    check_key(key)  # skips folders and the partial files of writes under way
                    stat = path.stat()
                except (InvalidKeyError, FileNotFoundError):  # not ours, or deleted meanwhile
                    continue
                modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                found.append(BlobInfo(key, stat.st_size, modified))
            return found

        try:
            return await asyncio.to_thread(scan)
        except OSError as error:
            raise StorageError(f"could not list {folder}: {error.strerror or error}") from error

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, True)

    async def presigned_url(self, key: str, expires_in: int) -> str:
        expires = int(time.time()) + expires_in
        return f"/api/blobs/{check_key(key)}?expires={expires}&signature={self.signature(key, expires)}"

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int, signature: str) -> bool:
        return expires >= time.time() and hmac.compare_digest(self.signature(key, expires), signature)

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            probe_file = self.root / f".ready-{uuid.uuid4().hex}"
            probe_file.write_bytes(b"ok")
            probe_file.unlink()

        try:
            await asyncio.to_thread(probe)
        except OSError as error:
            raise StorageError(
                f"storage folder {self.root} is not writable: {error.strerror or error}"
            ) from error


async def _chunks(handle: BinaryIO, start: int, end: int, path: Path) -> AsyncIterator[bytes]:
    """The bytes of an open file, a chunk per thread hop; the file is closed however the reader stops."""

    def read(offset: int, length: int) -> bytes:
        handle.seek(offset)
        return handle.read(length)

    try:
        offset = start
        while offset <= end:
            try:
                chunk = await asyncio.to_thread(read, offset, min(CHUNK_BYTES, end + 1 - offset))
            except OSError as error:
                raise StorageError(f"could not read {path}: {error.strerror or error}") from error
            if not chunk:
                raise StorageError(f"{path} ended at byte {offset}, before byte {end}")
            offset += len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
