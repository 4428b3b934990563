"""A blob store in a local folder; downloads go through the server's signed ``/api/blobs/…`` URLs.

The links are signed by the image URL signer (:mod:`server.delivery.signing`), so rotating its key retires
download links too. Error messages name the blob's key, never the folder: they reach clients (upload
reasons, the readiness probe); the log keeps the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from server.exceptions import BlobNotFoundError, InvalidKeyError, StorageError
from server.storage.base import (
    CHUNK_BYTES,
    BlobInfo,
    LinkSigner,
    check_key,
    check_prefix,
    download_message,
    no_chunks,
)

__all__ = ["LocalBlobStore"]

log = logging.getLogger(__name__)


def _failure(what: str, path: Path, error: OSError) -> StorageError:
    """A :class:`StorageError` saying ``what`` failed and why, without ``path``, which goes to the log."""
    reason = error.strerror or type(error).__name__
    log.warning("blob store: %s (at %s): %s", what, path, error)
    return StorageError(f"{what}: {reason}")


class LocalBlobStore:
    def __init__(self, root: str | Path, signer: LinkSigner) -> None:
        self.root = Path(root)
        self._signer = signer

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    @contextlib.asynccontextmanager
    async def local_file(self, key: str) -> AsyncIterator[Path]:
        path = self.path_of(key)
        if not await asyncio.to_thread(path.is_file):
            raise BlobNotFoundError(f"no blob {key}")
        yield path

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        target = self.path_of(key)
        await asyncio.to_thread(self._copy, path, target, key)

    @staticmethod
    def _copy(source: Path, target: Path, key: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            shutil.copyfile(source, partial)
            partial.replace(target)
        except OSError as error:
            raise _failure(f"could not write {key}", target, error) from error

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
        return _chunks(handle, start, end, key, path)

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
            raise _failure(f"could not list {prefix}", folder, error) from error

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, True)

    async def presigned_url(self, key: str, expires_in: int) -> str:
        expires = int(time.time()) + expires_in
        key_id, signature = self._signer.sign_message(download_message(key), expires)
        query = urlencode({"kid": key_id, "expires": expires, "signature": signature})
        return f"/api/blobs/{key}?{query}"

    async def worker_reference(self, key: str, expires_in: int) -> str:
        """The blob's file: the workers share this folder (a worker elsewhere reports it missing)."""
        return str(self.path_of(key).resolve())

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            probe_file = self.root / f".ready-{uuid.uuid4().hex}"
            probe_file.write_bytes(b"ok")
            probe_file.unlink()

        try:
            await asyncio.to_thread(probe)
        except OSError as error:
            raise _failure("the storage folder is not writable", self.root, error) from error


async def _chunks(handle: BinaryIO, start: int, end: int, key: str, path: Path) -> AsyncIterator[bytes]:
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
                raise _failure(f"could not read {key}", path, error) from error
            if not chunk:
                log.warning("blob store: %s ended at byte %d, before byte %d", path, offset, end)
                raise StorageError(f"{key} ended at byte {offset}, before byte {end}")
            offset += len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
