"""Blob storage: one :class:`BlobStore` protocol, a local folder and an S3 bucket behind it.

Keys are made by the server, never by a client: ``images/<sha256>`` for originals,
``renditions/<sha256>/<parameter digest>.<ext>`` for display renditions and
``exports/<random>/<name>.zip`` for exports; :func:`check_key` refuses anything else, so no client-supplied
name ever reaches a path or an object key.
"""

from __future__ import annotations

from server.settings import Settings
from server.storage.base import CHUNK_BYTES, BlobInfo, BlobStore, check_key, image_key
from server.storage.local import LocalBlobStore
from server.storage.s3 import S3BlobStore

__all__ = [
    "CHUNK_BYTES",
    "BlobInfo",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "check_key",
    "image_key",
    "open_store",
]


def open_store(settings: Settings) -> BlobStore:
    """The store ``settings.storage_url`` names: ``s3://bucket/prefix`` or a local folder."""
    url = settings.storage_url
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3BlobStore(
            bucket,
            prefix,
            settings.s3_client_kwargs(),
            multipart_threshold=settings.s3_multipart_threshold_bytes,
        )
    folder = url.removeprefix("file://")
    return LocalBlobStore(folder, secret=settings.secret())
