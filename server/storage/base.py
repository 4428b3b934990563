"""The blob-store protocol and the rule for keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from server.exceptions import InvalidKeyError

__all__ = ["BlobStore", "check_key", "image_key"]

_KEY = re.compile(
    r"^(images/[0-9a-f]{64}|exports/[0-9a-f]{32}/[A-Za-z0-9_-]{1,100}\.zip"
    r"|renditions/[0-9a-f]{64}/[0-9a-f]{32}\.(?:webp|avif|png|jpeg))$"
)


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidKeyError(f"{key!r} is not a blob key this server makes")
    return key


def image_key(sha256: str) -> str:
    return check_key(f"images/{sha256}")


class BlobStore(Protocol):
    """Where originals and exports live. Every method is async; blocking SDK calls run in threads."""

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        """Store the file at ``path`` under ``key`` (large files in parts)."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The blob's bytes; :class:`BlobNotFoundError` when there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the blob; no error when it is already gone."""
        ...

    async def presigned_url(self, key: str, expires_in: int) -> str:
        """A URL that fetches the blob without credentials until it expires (relative for a local store)."""
        ...

    async def check(self) -> None:
        """Raise :class:`StorageError` unless the store is reachable and writable."""
        ...
