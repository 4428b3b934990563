"""``POST /api/projects/{id}/images``: several image files in one multipart request, streamed to storage.

The body is spooled to a per-request folder as it arrives (see :mod:`server.api.multipart` for the
limits per file, per request and on free disk space, and :mod:`server.services.spool` for the folder). Each
complete file is then decoded with ``cluster`` (format from the bytes; the limits on pixels and on decoded
bytes checked from the header first; every plane, or the first planes of a big stack, decoded), so a
damaged or cut-off file is refused at the door. A file already in the project is reported as a duplicate
naming the image that holds it; the original goes to the blob store under its content hash. Each file is
recorded in its own transaction, under the lock of its content (see :func:`server.db.images.lock_content`),
so concurrent uploads of one file store it once and report the others as duplicates.

The answer lists every file with ``accepted`` and the image, or the reason it was refused. A request
refused as a whole is answered with ``error``: 413 when its declared size passes the per-request limit, 507
when the disk of the spool would keep too little free space. When either limit is passed while the body
arrives, the answer has both: the files complete by then are stored and listed, and ``error`` says why the
rest was not read.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.requests import Request
from starlette.responses import JSONResponse

from cluster.exceptions import ImageReadError
from cluster.imaging import ImageInfo, check_image
from server.api.context import build_context
from server.api.multipart import Part, Receiver, SpoolLimits, receive
from server.api.permissions import project_role
from server.db import images
from server.db.models import Image
from server.domain.roles import Action, allows
from server.exceptions import StorageError
from server.services.runtime import Runtime
from server.services.spool import free_bytes, make_spool, spool_root
from server.storage import image_key

__all__ = ["upload_images"]

logger = logging.getLogger(__name__)


async def upload_images(request: Request) -> JSONResponse:
    services: Runtime = request.app.state.services
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
    limits = _limits(services)
    root = spool_root(services.settings.upload_temp_dir)
    refusal = await asyncio.to_thread(_refusal, request, limits, root)
    if refusal is not None:
        return refusal
    folder = await asyncio.to_thread(make_spool, root)
    receiver = Receiver(folder, limits, free_bytes)
    try:
        try:
            await receive(request, MultipartParser(boundary, receiver.callbacks()), receiver)  # type: ignore[arg-type]
        except Exception as error:  # python-multipart raises its own errors for broken bodies
            return _error(400, f"the multipart body is malformed: {error}")
        files = [p for p in receiver.parts if p.field_name == "files" or p.name]
        if not files and receiver.stopped is None:
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
    body: dict[str, Any] = {"accepted": accepted, "refused": len(results) - accepted, "files": results}
    if receiver.stopped is not None:
        return JSONResponse({"error": receiver.stopped.message, **body}, status_code=receiver.stopped.status)
    return JSONResponse(body)


def _limits(services: Runtime) -> SpoolLimits:
    settings = services.settings
    return SpoolLimits(
        file_bytes=settings.max_upload_bytes,
        files=settings.max_files_per_upload,
        request_bytes=settings.max_upload_request_bytes,
        min_free_bytes=settings.upload_min_free_bytes,
    )


def _refusal(request: Request, limits: SpoolLimits, root: Path) -> JSONResponse | None:
    """Refuse, before reading any of it, a request that declares more bytes than we take or than the
    disk can hold (blocking: it asks the disk)."""
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        declared = 0
    if declared > limits.request_bytes:
        return _error(
            413,
            f"this request has {declared:,} bytes, more than the limit of {limits.request_bytes:,} for one "
            "upload; send the files in several requests",
        )
    root.mkdir(parents=True, exist_ok=True)
    if free_bytes(root) - declared < limits.min_free_bytes:
        return _error(
            507,
            "the server is low on disk space for uploads; nothing was stored: try again later, or ask the "
            "administrator to free space",
        )
    return None


async def _store(services: Runtime, project_id: int, part: Part) -> dict[str, Any]:
    name = part.name or "(unnamed)"
    path = part.path
    if part.refused or path is None:
        return _refused(name, part.refused or "the file did not arrive whole")
    settings = services.settings
    try:
        info = await asyncio.to_thread(
            check_image, path, name, settings.max_pixels, max_bytes=settings.max_decoded_bytes
        )
    except ImageReadError as error:
        return _refused(name, error.reason)
    content_hash = part.digest.hexdigest()
    async with services.db() as db:
        existing = await images.images_with_hashes(db, project_id, [content_hash])
    if content_hash in existing:  # known already: not even sent to the store
        return _duplicate(name, *existing[content_hash])
    try:
        # The long part (a big file to S3) comes before the content lock, so the lock is held briefly.
        await services.store.put_file(image_key(content_hash), path, "application/octet-stream")
        recorded = await _record(services, _image_row(project_id, name, content_hash, info, part.size), path)
    except StorageError as error:
        return _refused(name, f"storage failed: {error}")
    except OperationalError:
        logger.exception("the database refused to record the upload of %s", name)
        return _refused(name, "the database was busy and nothing was stored; upload this file again")
    if not isinstance(recorded, Image):
        return _duplicate(name, *recorded)
    return {
        "name": name,
        "accepted": True,
        "imageId": recorded.id,
        "width": info.width,
        "height": info.height,
        "bitDepth": info.bit_depth,
        "format": info.format,
        "pixelSizeUm": info.pixel_size_um,
    }


async def _record(services: Runtime, image: Image, path: Path) -> Image | tuple[int, str]:
    """Add the image under its content's lock, or return ``(id, name)`` of the one that holds its content.

    Under the lock the duplicate check is made again (a concurrent upload of the same file may have won),
    and the original is put again if a deletion elsewhere removed it after it was put.
    """
    content_hash = image.content_hash
    try:
        async with services.db.begin() as db:
            await images.lock_content(db, content_hash)
            existing = await images.images_with_hashes(db, image.project_id, [content_hash])
            if content_hash in existing:
                return existing[content_hash]
            key = image_key(content_hash)
            if not await services.store.exists(key):
                await services.store.put_file(key, path, "application/octet-stream")
            return await images.add_image(db, image)
    except IntegrityError:  # a database where the lock is not enough: the other upload won all the same
        async with services.db() as db:
            existing = await images.images_with_hashes(db, image.project_id, [content_hash])
        if content_hash in existing:
            return existing[content_hash]
        raise


def _image_row(project_id: int, name: str, content_hash: str, info: ImageInfo, size: int) -> Image:
    return Image(
        project_id=project_id,
        name=name,
        content_hash=content_hash,
        format=info.format,
        width=info.width,
        height=info.height,
        bit_depth=info.bit_depth,
        pixel_size_um=info.pixel_size_um,
        byte_size=size,
        segmentation_status="none",
        review_status="unreviewed",
        current_version=0,
    )


def _refused(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "accepted": False, "reason": reason}


def _duplicate(name: str, image_id: int, existing_name: str) -> dict[str, Any]:
    return {
        "name": name,
        "accepted": False,
        "reason": f"the same file is already here as {existing_name!r}",
        "duplicateOf": image_id,
    }


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
