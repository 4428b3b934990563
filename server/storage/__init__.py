"""Blob storage: one :class:`BlobStore` protocol, a local folder and an S3 bucket behind it
(``server.storage.s3``, imported only when a store is in S3).

Keys are made by the server, never by a client: ``images/<sha256>`` for originals,
``renditions/<sha256>/<parameter digest>.<ext>`` for display renditions and
``exports/<random>/<name>.zip`` for exports; :func:`check_key` refuses anything else, so no client-supplied
name ever reaches a path or an object key.
"""

from __future__ import annotations

from server.settings import Settings
from server.storage.base import (
    CHUNK_BYTES,
    BlobInfo,
    BlobStore,
    LinkSigner,
    check_key,
    download_message,
    image_key,
)
from server.storage.local import LocalBlobStore

__all__ = [
    "CHUNK_BYTES",
    "BlobInfo",
    "BlobStore",
    "LinkSigner",
    "LocalBlobStore",
    "check_key",
    "download_message",
    "image_key",
    "open_store",
]


def open_store(settings: Settings, signer: LinkSigner) -> BlobStore:
    """The store ``settings.storage_url`` names: ``s3://bucket/prefix`` or a local folder (whose download
    links ``signer`` signs)."""
    url = settings.storage_url
    if url.startswith("s3://"):
        # boto3 is imported only here: the offline server (and the desktop bundle, which leaves it out)
        # stores in a folder
        from server.storage.s3 import S3BlobStore

        bucket, _, prefix = url[len("s3://") :].partition("/")
        return S3BlobStore(
            bucket,
            prefix,
            settings.s3_client_kwargs(),
            multipart_threshold=settings.s3_multipart_threshold_bytes,
            worker_access=settings.s3_worker_access,
        )
    folder = url.removeprefix("file://")
    return LocalBlobStore(folder, signer)
