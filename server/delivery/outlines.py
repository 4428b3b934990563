"""A segmentation version's outlines in the binary format of :mod:`cluster.outlines`, encoded once.

They are served like renditions: at ``/img/<project>/<image>/<key id>/<expires>/<signature>/<sha256>/
outlines-v<version>.bin``, signed by the same key ring, purged with the image, and cached for a year as
immutable (a version is never changed; the ids in the path are never reused). The token route
``GET /api/images/{id}/segmentations/{version}/geometry`` serves the same bytes.

Encoding reads the stored records as JSON text, then parses them, converts them to arrays
(:func:`server.db.records.outlines_of_records`) and encodes them in a thread, off the event loop (a version
of 5,000 spheroids is megabytes of JSON). The result is kept in a small in-process cache
(:class:`OutlinesCache`, bounded in bytes), so reviewers opening the same image, or an edge fetching it once
per location, cost one encoding.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cluster import encode_outlines
from server.db.models import Image
from server.db.records import outlines_of_records
from server.db.segmentations import spheroids_text

__all__ = ["EncodedOutlines", "OutlinesCache", "outlines_name", "outlines_version"]

_NAME = re.compile(r"^outlines-v(?P<version>[1-9]\d{0,8})\.bin$")


def outlines_name(version: int) -> str:
    """The last segment of a version's outlines URL (a name no rendition has)."""
    return f"outlines-v{version}.bin"


def outlines_version(name: str) -> int | None:
    """The version an outlines URL segment names, or ``None`` for any other segment."""
    found = _NAME.match(name)
    return int(found["version"]) if found else None


@dataclass(frozen=True)
class EncodedOutlines:
    data: bytes
    etag: str
    """A strong ETag: the image's content hash, its id and the version (which name the bytes)."""


class OutlinesCache:
    """Encoded outlines by (image id, version), the least recently used dropped beyond ``max_bytes``;
    concurrent requests for the same version share one encoding."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: collections.OrderedDict[tuple[int, int], EncodedOutlines] = collections.OrderedDict()
        self._size = 0
        self._pending: dict[tuple[int, int], asyncio.Future[EncodedOutlines | None]] = {}
        self.encodings = 0
        """Versions encoded by this process (not taken from the cache): for tests and metrics."""

    async def get(
        self, db: async_sessionmaker[AsyncSession], image: Image, version: int
    ) -> EncodedOutlines | None:
        """The encoded outlines of ``image`` at ``version``; ``None`` when it has no such version."""
        key = (image.id, version)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        mine: asyncio.Future[EncodedOutlines | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = mine
        try:
            made = await self._encode(db, image, version)
        except BaseException as error:
            mine.set_exception(error)
            mine.exception()  # retrieved: the waiters get it, nobody else must
            raise
        finally:
            del self._pending[key]
        mine.set_result(made)
        if made is not None:
            self._keep(key, made)
        return made

    async def _encode(
        self, db: async_sessionmaker[AsyncSession], image: Image, version: int
    ) -> EncodedOutlines | None:
        async with db() as session:
            text = await spheroids_text(session, image.id, version)
        if text is None:
            return None
        data = await asyncio.to_thread(_encoded, image, version, text)
        self.encodings += 1
        return EncodedOutlines(data, f'"{image.content_hash}.{image.id}.o{version}"')

    def _keep(self, key: tuple[int, int], made: EncodedOutlines) -> None:
        if len(made.data) > self.max_bytes:
            return
        self._kept[key] = made
        self._size += len(made.data)
        while self._size > self.max_bytes:
            _, dropped = self._kept.popitem(last=False)
            self._size -= len(dropped.data)


def _encoded(image: Image, version: int, text: str) -> bytes:
    """Parse, convert and encode (in a thread: the records of a big version are megabytes of JSON)."""
    return encode_outlines(outlines_of_records(image, version, json.loads(text)))
