"""The blob-store protocol and the rule for keys."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from server.exceptions import InvalidKeyError

__all__ = [
    "CHUNK_BYTES",
    "BlobInfo",
    "BlobStore",
    "LinkSigner",
    "check_key",
    "check_prefix",
    "download_message",
    "image_key",
    "no_chunks",
]

CHUNK_BYTES = 256 * 1024
"""What a streamed read holds at a time: a few of these per request, however large the blob."""

_KEY = re.compile(
    r"^(images/[0-9a-f]{64}|exports/[0-9a-f]{32}/[A-Za-z0-9_-]{1,100}\.zip"
    r"|renditions/[0-9a-f]{64}/[0-9a-f]{32}\.(?:webp|avif|png|jpeg))$"
)


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidKeyError(f"{key!r} is not a blob key this server makes")
    return key


_PREFIX = re.compile(r"^(images|exports|renditions)/$")


def check_prefix(prefix: str) -> str:
    """A folder of keys that may be listed: ``images/``, ``exports/`` or ``renditions/``."""
    if not _PREFIX.match(prefix):
        raise InvalidKeyError(f"{prefix!r} is not a folder of blob keys this server makes")
    return prefix


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: dt.datetime
    """When the blob was stored (timezone-aware, UTC)."""


def image_key(sha256: str) -> str:
    return check_key(f"images/{sha256}")


def download_message(key: str) -> str:
    """What a signed ``/api/blobs/<key>`` download link signs: the key, in a form no image path can take, so
    a signature made for one kind of URL never passes for the other."""
    return f"blob\n{check_key(key)}"


class LinkSigner(Protocol):
    """Signs download links with a named key that can rotate (:class:`server.delivery.signing.UrlSigner`)."""

    def sign_message(self, message: str, expires: int) -> tuple[str, str]:
        """The id of the signing key and the signature of ``message`` valid until ``expires``."""
        ...


async def no_chunks() -> AsyncIterator[bytes]:
    """The chunks of an empty range."""
    return
    yield


class BlobStore(Protocol):
    """Where originals and exports live. Every method is async; blocking SDK calls run in threads."""

    async def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        """Store the file at ``path`` under ``key`` (large files in parts)."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The blob's bytes, whole in memory; :class:`BlobNotFoundError` when there is none. Only for blobs
        known to be small (renditions) or that are decoded whole anyway; stream the rest."""
        ...

    async def size(self, key: str) -> int:
        """The blob's length in bytes; :class:`BlobNotFoundError` when there is none."""
        ...

    async def read_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive; within the blob) in chunks of at most
        :data:`CHUNK_BYTES`, each read only when the previous one was taken. The blob is opened before this
        returns (:class:`BlobNotFoundError` then); a store that fails later raises :class:`StorageError`
        from the iterator. Empty when ``end < start``."""
        ...

    def local_file(self, key: str) -> contextlib.AbstractAsyncContextManager[Path]:
        """The blob as a file on this machine while the context lasts, for a decoder that reads only the
        parts it needs (a rendition reads one plane of a stack, not the whole original into memory): the
        blob's own file for a local store, a temporary copy streamed to disk for a remote one.
        :class:`BlobNotFoundError` on entry when there is none."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def listing(self, prefix: str) -> list[BlobInfo]:
        """Every blob under ``prefix`` (see :func:`check_prefix`) whose key this server makes."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; no error when it is already gone."""
        ...

    async def presigned_url(self, key: str, expires_in: int) -> str:
        """A URL that fetches the blob without credentials until it expires (relative for a local store)."""
        ...

    async def worker_reference(self, key: str, expires_in: int) -> str:
        """How a segmentation worker reaches the blob (see :func:`cluster.sources.fetch`): a file path (a
        folder the workers share), an ``s3://bucket/key`` (workers with S3 credentials of their own) or a
        URL that fetches it without credentials for ``expires_in`` seconds."""
        ...

    async def check(self) -> None:
        """Raise :class:`StorageError` unless the store is reachable and writable."""
        ...
