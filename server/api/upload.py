"""``POST /api/projects/{id}/images``: several image files in one multipart request, streamed to storage.

Each part of field ``files`` is written to a temporary file while it arrives (SHA-256 and size counted on
the way, nothing held whole in memory); a part over the size limit is dropped as soon as it passes it.
Parsing, hashing and writing run in a worker thread, fed about a MiB of the body at a time, so a large
upload never blocks the event loop (nor do creating and removing the temporary folder).
Then the header is read with ``cluster`` (format from the bytes, the pixel limit, size, bit depth, pixel
size), duplicates within the project are refused, and the original goes to the blob store under its
content hash. The answer lists every file with ``accepted`` and the image, or the reason it was refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse

from cluster.exceptions import ImageReadError
from cluster.imaging import read_image_info
from server.api.context import build_context
from server.api.permissions import project_role
from server.api.services import Services
from server.db import images
from server.db.models import Image
from server.domain.roles import Action, allows
from server.exceptions import StorageError
from server.storage import image_key

__all__ = ["upload_images"]

MAX_NAME = 255
FEED_BYTES = 1024 * 1024
"""How much of the body is gathered before the parser (hashing and writing) gets it in a thread."""


@dataclass
class _Part:
    name: str = ""
    field_name: str = ""
    file: IO[bytes] | None = None
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    refused: str | None = None


class _Receiver:
    """Callbacks of the streaming multipart parser: one temporary file per part, limits as bytes arrive."""

    def __init__(self, folder: Path, max_bytes: int, max_files: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.parts: list[_Part] = []
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._header_value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._field,
            "on_header_value": self._value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
        }

    def _begin(self) -> None:
        self._headers = {}
        self.parts.append(_Part())

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_done(self) -> None:
        part = self.parts[-1]
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        part.field_name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_name = options.get(b"filename")
        part.name = (
            (raw_name or b"").decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1][:MAX_NAME]
        )
        if part.field_name != "files" or raw_name is None:
            part.refused = "not a file in the field 'files'"
        elif sum(1 for p in self.parts if p.refused is None) > self.max_files:
            part.refused = f"more than {self.max_files} files in one request"
        else:
            part.file = tempfile.NamedTemporaryFile(dir=self.folder, delete=False)  # noqa: SIM115

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        if part.file is None:
            return
        part.size += end - start
        if part.size > self.max_bytes:
            part.refused = f"larger than the limit of {self.max_bytes:,} bytes"
            part.file.close()
            part.file = None
            return
        part.digest.update(data[start:end])
        part.file.write(data[start:end])

    def _end(self) -> None:
        part = self.parts[-1]
        if part.file is not None:
            part.file.close()

    def close(self) -> None:
        """Close the file of a part the body broke off in."""
        for part in self.parts:
            if part.file is not None and not part.file.closed:
                part.file.close()


async def _receive(request: Request, parser: MultipartParser) -> None:
    """Feed the body to the parser in a worker thread, ``FEED_BYTES`` at a time, then finalize it."""

    def feed(chunks: list[bytes], final: bool) -> None:
        for chunk in chunks:
            parser.write(chunk)
        if final:
            parser.finalize()

    pending: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        pending.append(chunk)
        size += len(chunk)
        if size >= FEED_BYTES:
            await asyncio.to_thread(feed, pending, False)
            pending, size = [], 0
    await asyncio.to_thread(feed, pending, True)


async def upload_images(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    context = await build_context(services, request)
    if context.user is None:
        return _error(401, context.token_problem or "log in first: uploading needs a bearer token")
    try:
        project_id = int(request.path_params["project_id"])
    except ValueError:
        return _error(404, "no such project")
    if not allows(await project_role(context, project_id), Action.EDIT):
        return _error(403, "not found, or you may not add images to it")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        return _error(400, "send the files as multipart/form-data in the field 'files'")
    settings = services.settings
    folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="spheroseg-upload-"))
    receiver = _Receiver(folder, settings.max_upload_bytes, settings.max_files_per_upload)
    try:
        try:
            await _receive(request, MultipartParser(boundary, receiver.callbacks()))  # type: ignore[arg-type]
        except Exception as error:  # python-multipart raises its own errors for broken bodies
            return _error(400, f"the multipart body is malformed: {error}")
        files = [p for p in receiver.parts if p.field_name == "files" or p.name]
        if not files:
            return _error(400, "no file in the field 'files'")
        results = [await _store(services, project_id, part) for part in files]
        # Thumbnails (or a CDN's display masters) are made in the background, so the gallery finds them.
        stored = zip(files, results, strict=True)
        services.delivery.schedule_renditions(p.digest.hexdigest() for p, r in stored if r["accepted"])
    finally:
        receiver.close()
        await asyncio.to_thread(shutil.rmtree, folder, True)
    accepted = sum(1 for r in results if r["accepted"])
    for result in results:
        services.metrics.uploads.labels("accepted" if result["accepted"] else "refused").inc()
    return JSONResponse({"accepted": accepted, "refused": len(results) - accepted, "files": results})


async def _store(services: Services, project_id: int, part: _Part) -> dict[str, Any]:
    name = part.name or "(unnamed)"
    if part.refused:
        return {"name": name, "accepted": False, "reason": part.refused}
    path = Path(part.file.name) if part.file is not None else None
    assert path is not None
    try:
        info = await asyncio.to_thread(read_image_info, path, name, services.settings.max_pixels)
    except ImageReadError as error:
        return {"name": name, "accepted": False, "reason": error.reason}
    content_hash = part.digest.hexdigest()
    async with services.db.begin() as db:
        existing = await images.hashes_in_project(db, project_id, [content_hash])
        if content_hash in existing:
            return {
                "name": name,
                "accepted": False,
                "reason": f"the same file is already here as {existing[content_hash]!r}",
            }
        try:
            await services.store.put_file(image_key(content_hash), path, "application/octet-stream")
        except StorageError as error:
            return {"name": name, "accepted": False, "reason": f"storage failed: {error}"}
        row = await images.add_image(
            db,
            Image(
                project_id=project_id,
                name=name,
                content_hash=content_hash,
                format=info.format,
                width=info.width,
                height=info.height,
                bit_depth=info.bit_depth,
                pixel_size_um=info.pixel_size_um,
                byte_size=part.size,
                segmentation_status="none",
                review_status="unreviewed",
                current_version=0,
            ),
        )
    return {
        "name": name,
        "accepted": True,
        "imageId": row.id,
        "width": info.width,
        "height": info.height,
        "bitDepth": info.bit_depth,
        "format": info.format,
        "pixelSizeUm": info.pixel_size_um,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
