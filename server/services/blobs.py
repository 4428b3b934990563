"""Blobs: signed downloads (``/api/blobs``), and removing originals no image uses any more.

A download link of the store (a local store makes them; an S3 store hands out presigned S3 URLs) names the
key, its expiry and a signature by the key ring; :func:`signed_download` checks them and streams the blob.

Removing originals must not race an upload of the same content.

Deleting images (or a project) tells which content hashes lost their last image *at that commit*; by the
time the blobs are removed, an upload elsewhere may have stored the same content again. So each blob is
removed in its own transaction that first takes the content's lock (see
:func:`server.db.images.lock_content`, which uploads take too) and checks again that no image holds it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from server.db import images
from server.exceptions import StorageError
from server.services.runtime import Runtime
from server.storage import download_message, image_key

__all__ = ["Download", "remove_unused_originals", "signed_download"]


@dataclass(frozen=True)
class Download:
    size: int
    chunks: AsyncIterator[bytes]
    media_type: str


async def signed_download(
    runtime: Runtime, key: str, key_id: str, expires: int, signature: str
) -> Download | None:
    """The blob under ``key``, streamed (an export may be large); ``None`` when the link's signature is
    wrong or it has expired. :class:`BlobNotFoundError` or :class:`InvalidKeyError` for no such blob."""
    problem = await runtime.keyring.verify_message(download_message(key), key_id, expires, signature)
    if problem is not None:
        return None
    size = await runtime.store.size(key)
    chunks = await runtime.store.read_range(key, 0, size - 1)
    media = "application/zip" if key.endswith(".zip") else "application/octet-stream"
    return Download(size, chunks, media)


logger = logging.getLogger(__name__)


async def remove_unused_originals(services: Runtime, content_hashes: Iterable[str]) -> None:
    """Remove the originals of these hashes that no image holds now; a storage failure leaves an orphan."""
    for content_hash in content_hashes:
        try:
            async with services.db.begin() as db:
                await images.lock_content(db, content_hash)
                if await images.content_in_use(db, content_hash):
                    continue  # uploaded again since the deletion decided: it stays
                await services.store.delete(image_key(content_hash))
        except StorageError:
            logger.exception("could not delete blob %s; it stays as an orphan", content_hash)
