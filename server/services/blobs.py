"""Removing originals that no image uses any more, without racing an upload of the same content.

Deleting images (or a project) tells which content hashes lost their last image *at that commit*; by the
time the blobs are removed, an upload elsewhere may have stored the same content again. So each blob is
removed in its own transaction that first takes the content's lock (see
:func:`server.db.images.lock_content`, which uploads take too) and checks again that no image holds it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from server.db import images
from server.exceptions import StorageError
from server.services.runtime import Runtime
from server.storage import image_key

__all__ = ["remove_unused_originals"]

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
