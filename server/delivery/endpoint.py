"""``GET /img/…``: originals, renditions and segmentation outlines behind signed, cacheable URLs (no bearer
token needed).

Answers, in order of checking:

- 404 for a path that is no image path, or is signed with a key this server does not have (so a rotated
  out key looks like nothing at all);
- 403 for a tampered or expired signature;
- 404 when the image no longer exists or is not the one the path names (deleted since the URL was given);
- 404 for outlines (``outlines-v<version>.bin``) of a version the image does not have;
- 304 when ``If-None-Match`` holds the strong ETag (the content hash, plus the rendition's digest, or the
  image id and version of outlines);
- 413 for an original over the pixel limit, refused from its header before any decoding; 422 for one
  that cannot be decoded;
- 200, or 206 for a ``Range`` of an original (streamed from the store, never read whole), with
  ``Cache-Control: public, max-age=31536000, immutable`` (the path names the bytes),
  ``Cache-Tag``/``Surrogate-Key`` for purges, and for a rendition the contrast stretch in
  ``X-Display-Range``.

Errors carry ``Cache-Control: private, no-store`` so no CDN keeps a refusal.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cluster import OUTLINES_MEDIA_TYPE, ImageReadError, ImageTooLargeError
from server.db import images
from server.db.models import Image
from server.delivery.headers import IMMUTABLE, NO_STORE, etag_matches, parse_range, tag_headers
from server.delivery.keyring import Keyring
from server.delivery.outlines import outlines_version
from server.delivery.service import Delivery
from server.delivery.signing import ImagePath, PathProblem
from server.delivery.specs import RenditionSpec, SpecError
from server.exceptions import BlobNotFoundError, StorageError
from server.storage import image_key

__all__ = ["ImageEndpoint"]

_ORIGINAL_TYPES = {
    "tiff": "image/tiff",
    "ome-tiff": "image/tiff",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "bmp": "image/bmp",
}


def _refuse(status: int, message: str) -> Response:
    return PlainTextResponse(message, status_code=status, headers={"Cache-Control": NO_STORE})


class ImageEndpoint:
    """An ASGI app for ``/img/{path}``, built with the app's delivery service and database."""

    def __init__(self, delivery: Delivery, db: async_sessionmaker[AsyncSession], keyring: Keyring) -> None:
        self.delivery = delivery
        self.db = db
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        verified = await self.keyring.verify(request.url.path)
        if verified in (PathProblem.MALFORMED, PathProblem.UNKNOWN_KEY):
            return _refuse(404, "not found")
        if verified is PathProblem.RETIRED_KEY:
            return _refuse(403, "the image link was signed with a retired key; ask the server for a new one")
        if verified is PathProblem.BAD_SIGNATURE:
            return _refuse(403, "the image link is invalid; ask the server for a new one")
        if verified is PathProblem.EXPIRED:
            return _refuse(403, "the image link has expired; ask the server for a new one")
        assert isinstance(verified, ImagePath)
        async with self.db() as db:
            row = (await images.images_by_ids(db, [verified.image_id])).get(verified.image_id)
        if row is None or row.project_id != verified.project_id or row.content_hash != verified.content_hash:
            return _refuse(404, "not found")
        headers = {**tag_headers(row.project_id, row.id), "X-Content-Type-Options": "nosniff"}
        version = outlines_version(verified.name)
        if version is not None:
            return await self._outlines(request, row, version, headers)
        try:
            if verified.is_original:
                return await self._original(request, verified, _ORIGINAL_TYPES.get(row.format), headers)
            return await self._rendition(request, verified, headers)
        except ImageTooLargeError as error:
            return _refuse(413, error.reason)
        except ImageReadError as error:
            return _refuse(422, error.reason)
        except BlobNotFoundError:
            return _refuse(404, "not found")
        except StorageError:
            return _refuse(503, "the image store is unreachable; try again shortly")

    async def _original(
        self, request: Request, path: ImagePath, media_type: str | None, headers: dict[str, str]
    ) -> Response:
        etag = f'"{path.content_hash}"'
        headers.update({"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"})
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        key = image_key(path.content_hash)
        size = await self.delivery.store.size(key)
        media = media_type or "application/octet-stream"
        if_range = request.headers.get("if-range")
        wanted = parse_range(request.headers.get("range"), size)
        if if_range is not None and if_range.strip() != etag:
            wanted = None
        if wanted is False:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status_code=416, headers={**headers, "Cache-Control": NO_STORE})
        start, end, status = 0, size - 1, 200
        if wanted is not None:
            start, end, status = wanted.start, wanted.end, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end + 1 - start)
        if request.method == "HEAD":  # the headers alone: nothing is read from the store
            return Response(status_code=status, media_type=media, headers=headers)
        # Streamed from the store a chunk at a time: originals may be gigabytes, and anyone holding a
        # signed URL may ask for them, so no request holds more than a few chunks in memory.
        chunks = await self.delivery.store.read_range(key, start, end)
        return StreamingResponse(chunks, status_code=status, media_type=media, headers=headers)

    async def _outlines(
        self, request: Request, image: Image, version: int, headers: dict[str, str]
    ) -> Response:
        encoded = await self.delivery.outlines.get(self.db, image, version)
        if encoded is None:
            return _refuse(404, "not found")
        headers.update({"ETag": encoded.etag, "Cache-Control": IMMUTABLE})
        if etag_matches(request.headers.get("if-none-match"), encoded.etag):
            return Response(status_code=304, headers=headers)
        return _body(request, encoded.data, 200, OUTLINES_MEDIA_TYPE, headers)

    async def _rendition(self, request: Request, path: ImagePath, headers: dict[str, str]) -> Response:
        try:
            spec = RenditionSpec.parse(path.name)
        except SpecError:
            return _refuse(404, "not found")
        if not self.delivery.allowed_name(path.name):
            return _refuse(404, "not found")
        etag = f'"{path.content_hash}.{spec.digest()}"'
        headers.update({"ETag": etag, "Cache-Control": IMMUTABLE})
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        stored = await self.delivery.rendition(path.content_hash, spec)
        if stored.stretch is not None:
            headers["X-Display-Range"] = stored.stretch.header()
        return _body(request, stored.data, 200, stored.media_type, headers)


def _body(request: Request, body: bytes, status: int, media_type: str, headers: dict[str, str]) -> Response:
    """The response, or for ``HEAD`` its headers alone (with the length the body would have)."""
    if request.method != "HEAD":
        return Response(body, status_code=status, media_type=media_type, headers=headers)
    response = Response(b"", status_code=status, media_type=media_type, headers=headers)
    response.headers["Content-Length"] = str(len(body))
    return response
