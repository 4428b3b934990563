"""A blob store in a local folder; downloads go through the server's signed ``/api/blobs/…`` URLs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import time
import uuid
from pathlib import Path

from server.exceptions import BlobNotFoundError, StorageError
from server.storage.base import check_key

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

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

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
